//! The one retry-and-deadline loop every outbound call uses (Segment's Profile and Tracking
//! APIs). A caller says, attempt by attempt, whether it is done (an answer, or a failure that
//! repeating cannot change) or worth retrying after some wait (`Retry-After`); the loop owns
//! the rest: each attempt's timeout within the deadline, the back-off between attempts, the
//! attempt limit, and giving up when a retry could no longer finish in time.

use std::future::Future;
use std::time::{Duration, Instant};

/// How a call is retried.
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    /// Attempts at most, whatever the deadline allows.
    pub max_attempts: usize,
    /// The longest one attempt may take: a hung request must leave time to retry.
    pub attempt_timeout: Duration,
    /// The least time a retry must still have after its wait; one with less would only time
    /// out.
    pub min_attempt: Duration,
    /// The wait before the first retry, doubling up to `max_backoff` (zero: at once).
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

/// What one attempt came to.
pub enum Attempted<T, E> {
    /// An answer, or a failure that repeating the request cannot change.
    Done(Result<T, E>),
    /// A failure worth another attempt, after at least `wait` (and the back-off).
    Retry { error: E, wait: Duration },
}

/// The call's answer and how many retries it took, or the last failure.
pub type Outcome<T, E> = Result<(T, usize), E>;

impl Retries {
    /// Runs `attempt` (given its timeout and its number, from 1) until it is done, the
    /// attempts run out, or a retry could not finish before `deadline`: then the last
    /// failure. With no time left before an attempt, `expired()`.
    pub async fn run<T, E, F, Fut>(
        &self,
        deadline: Instant,
        expired: impl Fn() -> E,
        mut attempt: F,
    ) -> Outcome<T, E>
    where
        F: FnMut(Duration, usize) -> Fut,
        Fut: Future<Output = Attempted<T, E>>,
    {
        let mut backoff = self.first_backoff;
        let mut attempts = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(expired());
            }
            attempts += 1;
            // Never past the deadline: the caller has stopped waiting by then.
            let timeout = self.attempt_timeout.min(remaining);
            let (error, wait) = match attempt(timeout, attempts).await {
                Attempted::Done(done) => return done.map(|answer| (answer, attempts - 1)),
                Attempted::Retry { error, wait } => (error, wait.max(backoff)),
            };
            // checked_add: a `Retry-After` of any size is the server's to send.
            let in_time = Instant::now()
                .checked_add(wait + self.min_attempt)
                .is_some_and(|retry_done| retry_done < deadline);
            if attempts >= self.max_attempts || !in_time {
                return Err(error);
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const RETRIES: Retries = Retries {
        max_attempts: 4,
        attempt_timeout: Duration::from_millis(200),
        min_attempt: Duration::from_millis(10),
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
    };

    async fn run_with(
        deadline: Duration,
        outcomes: Vec<Attempted<&'static str, String>>,
    ) -> (Outcome<&'static str, String>, usize) {
        let calls = AtomicUsize::new(0);
        let mut outcomes = outcomes.into_iter();
        let outcome = RETRIES
            .run(
                Instant::now() + deadline,
                || "expired".to_owned(),
                |_, _| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let next = outcomes.next().unwrap_or(Attempted::Done(Ok("last")));
                    async move { next }
                },
            )
            .await;
        (outcome, calls.load(Ordering::SeqCst))
    }

    fn retry(error: &str, wait_ms: u64) -> Attempted<&'static str, String> {
        Attempted::Retry {
            error: error.to_owned(),
            wait: Duration::from_millis(wait_ms),
        }
    }

    #[tokio::test]
    async fn an_answer_after_retries_says_how_many() {
        let (outcome, calls) =
            run_with(Duration::from_secs(1), vec![retry("a", 0), retry("b", 0)]).await;
        assert_eq!(outcome, Ok(("last", 2)));
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn a_final_failure_is_not_retried_and_the_attempts_are_bounded() {
        let (outcome, calls) = run_with(
            Duration::from_secs(1),
            vec![Attempted::Done(Err("no".into()))],
        )
        .await;
        assert_eq!((outcome, calls), (Err("no".to_owned()), 1));
        let many = (0..10).map(|_| retry("again", 0)).collect();
        let (outcome, calls) = run_with(Duration::from_secs(1), many).await;
        assert_eq!(
            (outcome, calls),
            (Err("again".to_owned()), RETRIES.max_attempts)
        );
    }

    #[tokio::test]
    async fn a_wait_that_would_pass_the_deadline_ends_the_call_at_once() {
        let started = Instant::now();
        let (outcome, calls) =
            run_with(Duration::from_millis(100), vec![retry("429", 60_000)]).await;
        assert_eq!((outcome, calls), (Err("429".to_owned()), 1));
        // It did not sleep through the 60 s `Retry-After`.
        assert!(started.elapsed() < Duration::from_secs(30));
        let (outcome, calls) = run_with(Duration::ZERO, vec![]).await;
        assert_eq!((outcome, calls), (Err("expired".to_owned()), 0));
    }
}
