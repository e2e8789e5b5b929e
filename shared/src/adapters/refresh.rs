//! Values read from a local extension while the function runs (routing rules, the emergency
//! override), during INVOKE only, since INIT may not have the extension listening yet.
//!
//! The first use in an environment waits for the first read (at most [`FIRST_FETCH`], and
//! never past its caller's budget); later uses start a background read when the value is
//! older than its max age and never wait. A read runs as a task of its own, so a caller that
//! stops waiting does not cancel it: the next callers get what it brings.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

// Tokio's clock: the same as std's, except that tests can pause it.
use tokio::time::Instant;

/// How long the first use of an environment waits for the first read.
pub const FIRST_FETCH: Duration = Duration::from_millis(1000);

/// Something read again when it is older than its max age.
pub trait Refresh: Send + Sync + 'static {
    fn freshness(&self) -> &Freshness;

    /// Reads the value and applies it (or logs why not, keeping the last good one).
    fn read(&self) -> impl Future<Output = ()> + Send;
}

/// When a value was last read, and the lock that keeps reads one at a time.
pub struct Freshness {
    max_age: Duration,
    asked_at: Mutex<Option<Instant>>,
    /// Concurrent first uses wait for the same read; a background read holds it while it runs.
    reading: Arc<tokio::sync::Mutex<()>>,
}

impl Freshness {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            asked_at: Mutex::default(),
            reading: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    fn asked_at(&self) -> Option<Instant> {
        *self.asked_at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn asked_now(&self) {
        *self.asked_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }
}

/// Before a use of `source`: see the module's documentation.
pub async fn keep_fresh<S: Refresh>(source: &Arc<S>, within: Duration) {
    let freshness = source.freshness();
    match freshness.asked_at() {
        None => {
            let source = source.clone();
            let first = tokio::spawn(async move {
                let freshness = source.freshness();
                let _one_at_a_time = freshness.reading.lock().await;
                // A concurrent first use read it while this one waited.
                if freshness.asked_at().is_none() {
                    freshness.asked_now();
                    source.read().await;
                }
            });
            let _ = tokio::time::timeout(FIRST_FETCH.min(within), first).await;
        }
        Some(at) if at.elapsed() >= freshness.max_age => {
            if let Ok(guard) = freshness.reading.clone().try_lock_owned() {
                let source = source.clone();
                tokio::spawn(async move {
                    let _guard = guard;
                    source.freshness().asked_now();
                    source.read().await;
                });
            }
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counted {
        freshness: Freshness,
        reads: AtomicUsize,
        delay: Duration,
    }

    impl Refresh for Counted {
        fn freshness(&self) -> &Freshness {
            &self.freshness
        }

        async fn read(&self) {
            tokio::time::sleep(self.delay).await;
            self.reads.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counted(max_age: Duration, delay: Duration) -> Arc<Counted> {
        Arc::new(Counted {
            freshness: Freshness::new(max_age),
            reads: AtomicUsize::new(0),
            delay,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_first_uses_share_one_read_and_later_ones_read_only_when_stale() {
        let source = counted(Duration::from_secs(45), Duration::from_millis(10));
        tokio::join!(
            keep_fresh(&source, Duration::from_secs(1)),
            keep_fresh(&source, Duration::from_secs(1))
        );
        assert_eq!(source.reads.load(Ordering::SeqCst), 1);
        keep_fresh(&source, Duration::from_secs(1)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(source.reads.load(Ordering::SeqCst), 1, "still fresh");
        tokio::time::sleep(Duration::from_secs(45)).await;
        keep_fresh(&source, Duration::from_secs(1)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(source.reads.load(Ordering::SeqCst), 2, "stale: read again");
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_use_waits_no_longer_than_its_budget_and_the_read_goes_on() {
        let source = counted(Duration::from_secs(45), Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        keep_fresh(&source, Duration::from_millis(200)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(source.reads.load(Ordering::SeqCst), 1, "not cancelled");
    }
}
