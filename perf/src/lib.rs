//! What the benchmarks share: percentiles of their samples.

/// The `p` percentile (0 to 1) of `sorted`, nearest rank; `sorted` must not be empty.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
