//! Benchmarks live under `benches/`; `src/bin/echo.rs` is the cold-start baseline.
