//! When a request arrived and by when its answer is due: every budget (the decision's, a
//! delivery's) counts from the arrival, because the caller's clock started then.

use std::time::{Duration, Instant};

/// When a request arrived, and by when its answer must be ready: the invocation's own
/// deadline (its context's), less a margin to send the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub at: Instant,
    pub answer_by: Instant,
}

impl Arrival {
    /// When `budget`, counted from the arrival, runs out; never after `answer_by`.
    pub fn deadline(&self, budget: Duration) -> Instant {
        (self.at + budget).min(self.answer_by)
    }

    /// What is left of `budget` now.
    pub fn remaining(&self, budget: Duration) -> Duration {
        self.deadline(budget)
            .saturating_duration_since(Instant::now())
    }
}
