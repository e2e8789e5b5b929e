//! Back-off across the execution environment after Segment answers 429. Segment allows 100
//! Profile API requests a second per space and answers 429 beyond it; every request sent
//! into that answer only prolongs it. So after a 429 nobody in this environment calls the
//! Profile API for a window (`Retry-After` when Segment sends one, else 1 s doubling to
//! [`LONGEST`]), and decisions take their fallback at once. The first success resets it.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The first window without a `Retry-After`.
pub const FIRST: Duration = Duration::from_secs(1);
/// The longest window, whatever `Retry-After` says: a customer waiting on a fallback for
/// longer than this is worse than one more 429.
pub const LONGEST: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct State {
    /// No requests before this.
    until: Option<Instant>,
    /// The next window without a `Retry-After`.
    next: Option<Duration>,
}

#[derive(Debug, Default)]
pub struct BackOff {
    state: Mutex<State>,
}

impl BackOff {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long requests must still wait, if a window is open at `now`.
    pub fn waiting(&self, now: Instant) -> Option<Duration> {
        self.lock()
            .until
            .map(|until| until.saturating_duration_since(now))
            .filter(|wait| !wait.is_zero())
    }

    /// A 429 at `now`: opens a window and says how long it is. A 429 from a request sent
    /// before the window opened (many are in flight at once) does not lengthen it.
    pub fn rate_limited(&self, retry_after: Option<Duration>, now: Instant) -> Duration {
        let mut state = self.lock();
        if let Some(until) = state.until.filter(|until| now < *until) {
            return until - now;
        }
        let doubled = state.next.unwrap_or(FIRST);
        // `Retry-After: 0` asks for nothing: the exponential window applies, as without one.
        let window = retry_after
            .filter(|wait| !wait.is_zero())
            .unwrap_or(doubled)
            .min(LONGEST);
        state.until = Some(now + window);
        state.next = Some((doubled * 2).min(LONGEST));
        window
    }

    /// A 2xx or 404 at `now`: the next 429 starts again from [`FIRST`]. One that arrives
    /// while a window is open was sent before it opened (nothing is sent inside one), so it
    /// changes nothing: Segment answers a 429 at once and a lookup in about 150 ms, and the
    /// lookups it accepted just before must not shut the window it just asked for.
    pub fn succeeded(&self, now: Instant) {
        let mut state = self.lock();
        if state.until.is_some_and(|until| now < until) {
            return;
        }
        if state.until.is_some() || state.next.is_some() {
            *state = State::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn without_retry_after_the_window_doubles_up_to_the_longest() {
        let back_off = BackOff::default();
        let mut now = Instant::now();
        let mut windows = Vec::new();
        for _ in 0..7 {
            let window = back_off.rate_limited(None, now);
            windows.push(window.as_secs());
            now += window; // the probe after each window is refused again
        }
        assert_eq!(windows, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn retry_after_sets_the_window_within_the_longest() {
        let back_off = BackOff::default();
        let now = Instant::now();
        assert_eq!(back_off.rate_limited(Some(3 * SECOND), now), 3 * SECOND);
        assert_eq!(back_off.waiting(now + SECOND), Some(2 * SECOND));
        assert_eq!(back_off.waiting(now + 3 * SECOND), None);
        let later = now + 10 * SECOND;
        assert_eq!(back_off.rate_limited(Some(3600 * SECOND), later), LONGEST);
    }

    #[test]
    fn a_429_inside_an_open_window_does_not_lengthen_it() {
        let back_off = BackOff::default();
        let now = Instant::now();
        assert_eq!(back_off.rate_limited(None, now), SECOND);
        for _ in 0..10 {
            back_off.rate_limited(None, now + SECOND / 2);
        }
        assert_eq!(back_off.waiting(now + SECOND / 2), Some(SECOND / 2));
        // The next window after it is the doubled one, not 2^11 s.
        assert_eq!(back_off.rate_limited(None, now + SECOND), 2 * SECOND);
    }

    #[test]
    fn a_success_after_the_window_resets_it() {
        let back_off = BackOff::default();
        let now = Instant::now();
        back_off.rate_limited(None, now);
        back_off.rate_limited(None, now + SECOND); // 2 s, until now + 3 s
        back_off.succeeded(now + 3 * SECOND);
        assert_eq!(back_off.rate_limited(None, now + 5 * SECOND), SECOND);
    }

    #[test]
    fn a_success_inside_the_window_was_sent_before_it_and_changes_nothing() {
        let back_off = BackOff::default();
        let now = Instant::now();
        assert_eq!(back_off.rate_limited(None, now), SECOND);
        back_off.succeeded(now + SECOND / 10);
        assert_eq!(back_off.waiting(now + SECOND / 2), Some(SECOND / 2));
        // And the next window still doubles.
        assert_eq!(back_off.rate_limited(None, now + SECOND), 2 * SECOND);
    }

    #[test]
    fn retry_after_zero_gets_the_exponential_window() {
        let back_off = BackOff::default();
        let now = Instant::now();
        assert_eq!(back_off.rate_limited(Some(Duration::ZERO), now), SECOND);
    }
}
