//! Pacing of the Profile API across the execution environment. Segment allows 100 requests
//! a second per space and answers 429 beyond it ("Profile API limits", Segment's docs), so
//! every request of an environment takes a token first: at most one every `1 / rate` seconds
//! (a token bucket of capacity one, so no burst passes the rate in any one-second window). A
//! request that finds no token waits for the next one while it still comes in time for its
//! caller (its deadline less a lookup's expected time), and only then gives up (`paced`).
//!
//! The rate is `PROFILE_API_RATE` when set. Unset, the environment learns it as the AWS SDKs'
//! "adaptive" retry mode does (botocore `retries/adaptive.py`, `throttling.py`, `bucket.py`):
//! no limit until the first 429; then 0.7 of the rate it was getting, growing back along
//! CUBIC's curve `0.4 (t - K)^3 + W_max` while requests succeed, never past twice the
//! measured send rate (or the rate served at the last 429, whichever is more), never below 0.5
//! a second. Four choices differ from botocore, all for an environment serving many requests
//! at once against a limit counted per second: the rate it was getting is what Segment
//! answered over the last second (botocore takes what it sent, which in a burst is several
//! times what Segment serves); a 429 lowers the rate only when its request was sent more than
//! a second after the last lowering (the 429s of requests that shared a window with the old
//! rate are one event, as TCP counts one loss per round trip); the send rate is counted when a
//! request goes out, and before the first half-second is measured it is what was sent so far;
//! and a lull does not shrink the growth cap below the rate served at the last 429. A
//! `Retry-After` wins: nothing is sent before it.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::adapters::config::Rate;
use crate::domain::ports::ProfileError;

/// CUBIC's scaling constant and back-off factor (botocore `throttling.py`).
const SCALE: f64 = 0.4;
const BETA: f64 = 0.7;
/// Segment's limit is per second: the window a 429 speaks for.
const SEGMENT_WINDOW: Duration = Duration::from_secs(1);
/// The answers remembered to know the rate Segment serves: far more than one second holds at
/// any rate Segment allows, bounded whatever happens.
const MAX_REMEMBERED_ANSWERS: usize = 20_000;
/// The lowest rate, and the most it may grow past what was being sent (botocore).
const MIN_RATE: f64 = 0.5;
const MAX_GROWTH: f64 = 2.0;
/// The send rate is measured over half-second buckets, smoothed (botocore `RateClocker`).
const BUCKET: Duration = Duration::from_millis(500);
const SMOOTHING: f64 = 0.8;
/// The longest a `Retry-After` holds requests back: a customer waiting on a fallback for
/// longer than this is worse than one more 429.
pub const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(30);
/// A lookup's expected time before any was measured: Segment's p95 for `/traits` is under
/// 200 ms (perf/README.md, the peak).
const FIRST_EXPECTED: Duration = Duration::from_millis(200);

#[derive(Debug)]
struct State {
    /// Requests a second; `None` while adaptive and never throttled.
    rate: Option<f64>,
    /// When the next token is free.
    next_token: Option<Instant>,
    /// Segment's `Retry-After`: nothing is sent before it.
    not_before: Option<Instant>,
    /// CUBIC: the rate at the last throttle, its K, and when it was.
    w_max: f64,
    k: f64,
    last_throttle: Option<Instant>,
    /// The measured send rate, and the current bucket's start and count.
    measured: f64,
    bucket_start: Option<Instant>,
    bucket_count: u32,
    first_send: Option<Instant>,
    last_send: Option<Instant>,
    sent: u64,
    /// A lookup's expected time, smoothed over the answers.
    expected: Duration,
    /// When Segment answered (2xx or 404) within the last second: the rate it was serving.
    answered: VecDeque<Instant>,
}

/// The environment's pacer: one per Profile API client, shared by every invocation.
#[derive(Debug)]
pub struct Pacer {
    fixed: Option<f64>,
    state: Mutex<State>,
}

impl Pacer {
    pub fn new(rate: Rate) -> Self {
        let fixed = match rate {
            Rate::Fixed(rate) => Some(rate.max(MIN_RATE)),
            Rate::Adaptive => None,
        };
        Self {
            fixed,
            state: Mutex::new(State {
                rate: fixed,
                next_token: None,
                not_before: None,
                w_max: 0.0,
                k: 0.0,
                last_throttle: None,
                measured: 0.0,
                bucket_start: None,
                bucket_count: 0,
                first_send: None,
                last_send: None,
                sent: 0,
                expected: FIRST_EXPECTED,
                answered: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a token for one request, waiting for it while it still comes in time: by
    /// `deadline` less a lookup's expected time. `Paced` when it would not.
    pub async fn admit(&self, deadline: Instant) -> Result<(), ProfileError> {
        let wait = self.reserve(Instant::now(), deadline)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// The wait for the next token at `now`, taken; `Paced` (and nothing taken) when the
    /// token would come too late for `deadline`.
    pub fn reserve(&self, now: Instant, deadline: Instant) -> Result<Duration, ProfileError> {
        let mut state = self.lock();
        let at = state.next_free(now);
        if at + state.expected > deadline {
            return Err(ProfileError::Paced {
                wait_ms: at.saturating_duration_since(now).as_millis() as u64,
            });
        }
        if let Some(rate) = state.rate {
            state.next_token = Some(at + Duration::from_secs_f64(1.0 / rate));
        }
        state.record_send(at);
        Ok(at.saturating_duration_since(now))
    }

    /// Segment answered 429 to a request sent at `sent_at`: `Retry-After` holds every request
    /// back, and an adaptive rate is lowered. Returns how long until the next token.
    pub fn throttled(
        &self,
        retry_after: Option<Duration>,
        sent_at: Instant,
        now: Instant,
    ) -> Duration {
        let mut state = self.lock();
        if let Some(wait) = retry_after.filter(|wait| !wait.is_zero()) {
            let until = now + wait.min(LONGEST_RETRY_AFTER);
            state.not_before = Some(state.not_before.map_or(until, |at| at.max(until)));
        }
        // Segment counts requests over a second: a request sent within a second of the last
        // lowering shares its window with requests sent before it, so its 429 says nothing
        // about the new rate.
        let fresh = state
            .last_throttle
            .is_none_or(|last| sent_at > last + SEGMENT_WINDOW);
        if self.fixed.is_none() && fresh {
            state.lower(now);
        }
        state.next_free(now).saturating_duration_since(now)
    }

    /// Segment answered (2xx or 404) in `took`: the expected time learns from it, and an
    /// adaptive rate grows along its curve.
    pub fn answered(&self, took: Duration, now: Instant) {
        let mut state = self.lock();
        state.expected = state.expected.mul_f64(0.8) + took.mul_f64(0.2);
        state.answered.push_back(now);
        state.forget_answers_before(now);
        if self.fixed.is_none() && state.rate.is_some() {
            state.grow(now);
        }
    }

    /// The rate in use (requests a second), if any.
    pub fn rate(&self) -> Option<f64> {
        self.lock().rate
    }
}

impl State {
    fn next_free(&self, now: Instant) -> Instant {
        let mut at = now;
        if let Some(not_before) = self.not_before {
            at = at.max(not_before);
        }
        if let (Some(_), Some(next)) = (self.rate, self.next_token) {
            at = at.max(next);
        }
        at
    }

    fn record_send(&mut self, at: Instant) {
        self.first_send.get_or_insert(at);
        self.last_send = Some(at);
        self.sent += 1;
        let start = *self.bucket_start.get_or_insert(at);
        let elapsed = at.saturating_duration_since(start);
        if elapsed >= BUCKET {
            let current = f64::from(self.bucket_count) / elapsed.as_secs_f64();
            self.measured = current * SMOOTHING + self.measured * (1.0 - SMOOTHING);
            self.bucket_start = Some(at);
            self.bucket_count = 0;
        }
        self.bucket_count += 1;
    }

    /// The send rate: the smoothed buckets, or before the first bucket ends, what was sent
    /// so far.
    fn send_rate(&self, now: Instant) -> f64 {
        if self.measured > 0.0 {
            return self.measured;
        }
        let since = self.first_send.map_or(BUCKET, |first| {
            now.saturating_duration_since(first)
                .max(Duration::from_millis(100))
        });
        self.sent as f64 / since.as_secs_f64()
    }

    fn forget_answers_before(&mut self, now: Instant) {
        while self
            .answered
            .front()
            .is_some_and(|at| *at + SEGMENT_WINDOW < now)
            || self.answered.len() > MAX_REMEMBERED_ANSWERS
        {
            self.answered.pop_front();
        }
    }

    /// A throttle: W_max is the rate Segment was serving (its answers over the last second,
    /// when there were any; botocore's measured send rate otherwise), the new rate 0.7 of it.
    fn lower(&mut self, now: Instant) {
        self.forget_answers_before(now);
        let measured = self.send_rate(now);
        let served = self.answered.len() as f64 / SEGMENT_WINDOW.as_secs_f64();
        let getting = if served > 0.0 {
            served.min(measured)
        } else {
            measured
        };
        let rate_to_use = match self.rate {
            None => getting,
            Some(rate) => rate.min(getting),
        };
        self.w_max = rate_to_use;
        self.k = (self.w_max * (1.0 - BETA) / SCALE).cbrt();
        self.last_throttle = Some(now);
        self.set_rate(rate_to_use * BETA, measured);
        // The next token is one interval at the new rate after the last request sent.
        if let (Some(rate), Some(last)) = (self.rate, self.last_send) {
            let next = last + Duration::from_secs_f64(1.0 / rate);
            self.next_token = Some(self.next_token.map_or(next, |at| at.max(next)));
        }
    }

    /// A success after a throttle: CUBIC's curve back toward (and past) W_max.
    fn grow(&mut self, now: Instant) {
        let Some(last) = self.last_throttle else {
            return;
        };
        let t = now.saturating_duration_since(last).as_secs_f64();
        let cubic = SCALE * (t - self.k).powi(3) + self.w_max;
        // The growth cap never falls below what Segment served at the last 429: after a lull
        // the measured send rate has decayed, and a burst would otherwise crawl.
        let measured = self.send_rate(now).max(self.w_max / MAX_GROWTH);
        self.set_rate(cubic, measured);
    }

    fn set_rate(&mut self, rate: f64, measured: f64) {
        let capped = if measured > 0.0 {
            rate.min(MAX_GROWTH * measured)
        } else {
            rate
        };
        self.rate = Some(capped.max(MIN_RATE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// When each of `count` requests asked at `now` would be sent, all with time to wait.
    fn send_times(pacer: &Pacer, now: Instant, count: usize) -> Vec<Instant> {
        (0..count)
            .map(|_| now + pacer.reserve(now, now + 3600 * SECOND).expect("in time"))
            .collect()
    }

    fn most_in_any_second(times: &[Instant]) -> usize {
        times
            .iter()
            .map(|start| {
                times
                    .iter()
                    .filter(|t| **t >= *start && **t < *start + SECOND)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_fixed_rate_spaces_requests_so_no_second_holds_more_than_the_rate() {
        let pacer = Pacer::new(Rate::Fixed(100.0));
        let now = Instant::now();
        let times = send_times(&pacer, now, 250);
        assert_eq!(times[0], now, "the first goes at once");
        assert_eq!(times[1] - times[0], Duration::from_millis(10));
        assert_eq!(most_in_any_second(&times), 100);
    }

    #[test]
    fn a_token_that_would_come_too_late_is_paced_and_not_taken() {
        let pacer = Pacer::new(Rate::Fixed(2.0));
        let now = Instant::now();
        assert_eq!(pacer.reserve(now, now + SECOND), Ok(Duration::ZERO));
        // The next token is 500 ms away; with 200 ms expected for the lookup, a deadline
        // 600 ms away is too close.
        let paced = pacer.reserve(now, now + Duration::from_millis(600));
        assert_eq!(paced, Err(ProfileError::Paced { wait_ms: 500 }));
        // Nothing was taken: a caller with time gets that same token.
        assert_eq!(pacer.reserve(now, now + SECOND), Ok(SECOND / 2));
    }

    #[test]
    fn adaptive_sends_freely_until_a_429_then_at_most_0_7_of_what_it_sent() {
        let pacer = Pacer::new(Rate::Adaptive);
        let start = Instant::now();
        // 200 a second for 1.5 s: no waiting.
        let times: Vec<Instant> = (0..300)
            .map(|i| start + Duration::from_millis(5 * i))
            .collect();
        for at in &times {
            assert_eq!(pacer.reserve(*at, *at + SECOND), Ok(Duration::ZERO));
        }
        let now = start + Duration::from_millis(1500);
        pacer.throttled(None, now - Duration::from_millis(150), now);
        let rate = pacer.rate().expect("a rate after a 429");
        // 0.7 of the send rate as botocore smooths it (its first buckets start from zero).
        assert!((125.0..=145.0).contains(&rate), "0.7 of about 200: {rate}");
        // The 429s of requests sent before the lowering are the same event.
        for _ in 0..20 {
            pacer.throttled(
                None,
                now - Duration::from_millis(100),
                now + Duration::from_millis(50),
            );
        }
        assert_eq!(pacer.rate(), Some(rate));
        // So are those of requests sent within the next second: Segment's window still held
        // the old rate's requests.
        let within = now + Duration::from_millis(900);
        pacer.throttled(None, within, within + Duration::from_millis(5));
        assert_eq!(pacer.rate(), Some(rate));
        // One sent more than a second after it lowers the rate again.
        let later = now + Duration::from_millis(1100);
        pacer.throttled(None, later, later + Duration::from_millis(5));
        assert!(pacer.rate().is_some_and(|lower| lower < rate));
    }

    #[test]
    fn after_a_429_successes_grow_the_rate_back_along_the_cubic_curve() {
        let pacer = Pacer::new(Rate::Adaptive);
        let start = Instant::now();
        for i in 0..150 {
            let at = start + Duration::from_millis(10 * i);
            let _ = pacer.reserve(at, at + SECOND);
        }
        let throttled_at = start + Duration::from_millis(1500);
        pacer.throttled(None, throttled_at, throttled_at);
        let lowered = pacer.rate().expect("rate");
        pacer.answered(Duration::from_millis(150), throttled_at + SECOND);
        let after_one = pacer.rate().expect("rate");
        pacer.answered(Duration::from_millis(150), throttled_at + 4 * SECOND);
        let after_four = pacer.rate().expect("rate");
        assert!(
            lowered < after_one && after_one < after_four,
            "{lowered} {after_one} {after_four}"
        );
        // Never past twice the measured send rate (about 100 a second here).
        pacer.answered(Duration::from_millis(150), throttled_at + 60 * SECOND);
        assert!(pacer.rate().is_some_and(|rate| rate <= 2.0 * 101.0));
    }

    #[test]
    fn retry_after_holds_every_request_back_within_the_longest() {
        let pacer = Pacer::new(Rate::Fixed(100.0));
        let now = Instant::now();
        let wait = pacer.throttled(Some(3 * SECOND), now, now);
        assert_eq!(wait, 3 * SECOND);
        assert_eq!(pacer.reserve(now, now + 10 * SECOND), Ok(3 * SECOND));
        // Not in time for a decision due in 2 s.
        assert!(pacer.reserve(now, now + 2 * SECOND).is_err());
        let later = now + 10 * SECOND;
        assert_eq!(
            pacer.throttled(Some(3600 * SECOND), later, later),
            LONGEST_RETRY_AFTER
        );
        // Retry-After: 0 asks for nothing beyond the next token.
        let fresh = Pacer::new(Rate::Fixed(100.0));
        assert_eq!(
            fresh.throttled(Some(Duration::ZERO), now, now),
            Duration::ZERO
        );
    }

    #[test]
    fn the_rate_never_falls_below_one_request_every_two_seconds() {
        let pacer = Pacer::new(Rate::Adaptive);
        let mut now = Instant::now();
        let _ = pacer.reserve(now, now + SECOND);
        for _ in 0..50 {
            now += Duration::from_millis(1100);
            pacer.throttled(None, now, now + Duration::from_millis(5));
        }
        assert_eq!(pacer.rate(), Some(MIN_RATE));
    }

    #[test]
    fn in_a_burst_the_rate_after_a_429_is_what_segment_served_not_what_was_sent() {
        let pacer = Pacer::new(Rate::Adaptive);
        let start = Instant::now();
        // 400 sent in 400 ms, of which Segment answered 100 (the rest came back 429).
        for i in 0..400 {
            let at = start + Duration::from_millis(i);
            let _ = pacer.reserve(at, at + SECOND);
        }
        for i in 0..100 {
            pacer.answered(
                Duration::from_millis(150),
                start + Duration::from_millis(150 + i),
            );
        }
        let now = start + Duration::from_millis(400);
        pacer.throttled(None, now - Duration::from_millis(150), now);
        let rate = pacer.rate().expect("a rate");
        assert!(
            (65.0..=75.0).contains(&rate),
            "0.7 of the 100 served: {rate}"
        );
    }

    #[test]
    fn a_lull_does_not_shrink_a_learned_rate() {
        let pacer = Pacer::new(Rate::Adaptive);
        let start = Instant::now();
        for i in 0..150 {
            let at = start + Duration::from_millis(10 * i);
            let _ = pacer.reserve(at, at + SECOND);
            pacer.answered(Duration::from_millis(150), at + Duration::from_millis(150));
        }
        let throttled_at = start + Duration::from_millis(1500);
        pacer.throttled(None, throttled_at, throttled_at);
        let learned = pacer.rate().expect("rate");
        // Ten quiet minutes, then one request and its answer.
        let later = throttled_at + 600 * SECOND;
        let _ = pacer.reserve(later, later + SECOND);
        pacer.answered(
            Duration::from_millis(150),
            later + Duration::from_millis(150),
        );
        let after = pacer.rate().expect("rate");
        assert!(after >= learned, "{after} after a lull, {learned} before");
    }
}
