//! How many invocations one execution environment serves at once. Classic Lambda sends one
//! at a time; Lambda Managed Instances send up to `AWS_LAMBDA_MAX_CONCURRENCY` together, and
//! `lambda_runtime::run_concurrent` then polls with that many workers. The same binary runs
//! both ways: unset, 0 or 1 is one at a time.

use std::num::NonZeroU32;

/// The variable Lambda Managed Instances set (the function's
/// `PerExecutionEnvironmentMaxConcurrency`).
pub const VARIABLE: &str = "AWS_LAMBDA_MAX_CONCURRENCY";

/// Invocations served at once by this execution environment; at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency(NonZeroU32);

impl Concurrency {
    pub const ONE: Self = Self(NonZeroU32::MIN);

    /// What a value of [`VARIABLE`] asks for: `Err` with the value when it is not a whole
    /// number. Parsed exactly as `lambda_runtime` parses it, so both agree on the mode.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None => Ok(Self::ONE),
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) => Ok(NonZeroU32::new(n).map_or(Self::ONE, Self)),
                Err(_) => Err(raw.to_owned()),
            },
        }
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }

    /// Whether invocations overlap in this environment.
    pub fn is_concurrent(self) -> bool {
        self.get() > 1
    }

    /// The Tokio runtime for it: one thread when invocations come one at a time (the classic
    /// cold start does not pay for worker threads), else one worker per core.
    pub fn runtime(self) -> std::io::Result<tokio::runtime::Runtime> {
        if self.is_concurrent() {
            let workers = std::thread::available_parallelism().map_or(1, usize::from);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_zero_and_one_serve_one_at_a_time() {
        for value in [None, Some("0"), Some("1")] {
            assert_eq!(Concurrency::parse(value), Ok(Concurrency::ONE), "{value:?}");
        }
        assert!(!Concurrency::ONE.is_concurrent());
    }

    #[test]
    fn a_whole_number_is_the_concurrency() {
        let sixteen = Concurrency::parse(Some("16")).unwrap();
        assert_eq!(sixteen.get(), 16);
        assert!(sixteen.is_concurrent());
    }

    #[test]
    fn anything_else_is_refused_with_its_value() {
        for raw in ["sixteen", "-4", "1.5", " 8", ""] {
            assert_eq!(Concurrency::parse(Some(raw)), Err(raw.to_owned()));
        }
    }

    #[test]
    fn the_runtime_follows_the_concurrency() {
        use tokio::runtime::RuntimeFlavor;
        let one = Concurrency::ONE.runtime().unwrap();
        assert_eq!(one.handle().runtime_flavor(), RuntimeFlavor::CurrentThread);
        let many = Concurrency::parse(Some("8")).unwrap().runtime().unwrap();
        assert_eq!(many.handle().runtime_flavor(), RuntimeFlavor::MultiThread);
    }
}
