//! Evaluating the rules within the decision's deadline, whatever they cost.
//!
//! cel has no cost limit and no way to stop an evaluation. A condition that loops
//! (`traits.viewed.exists(x, traits.purchased.exists(y, x == y))`) costs what the customer's
//! data makes it cost: two 2,000-item lists took 1.5 s. Run on the async worker, such an
//! evaluation would hold the answer past its deadline and stall every other invocation that
//! worker serves. So rules that can loop (a comprehension macro, or `matches`, whose pattern
//! may come from the data) are evaluated on tokio's blocking threads, and the decision waits
//! for them only until its deadline; then it falls back (`rules_timeout`) and leaves the
//! evaluation to finish on its own. At most [`MAX_ABANDONED`] abandoned evaluations may still
//! be running in an environment: past that, decisions on such rules fall back at once
//! (`rules_busy`) instead of adding one more thread that burns a core. Rules that cannot loop
//! cost at most their size (bounded by `limits`) and are evaluated in place: the usual
//! decision pays nothing for this.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Map, Value};

use super::{Facts, RuleSet, RuleTrace, Verdict};

/// How many evaluations that outran their decision may still run at once.
pub const MAX_ABANDONED: usize = 2;

/// Evaluations abandoned by their decision and still running, in this environment.
static ABANDONED: AtomicUsize = AtomicUsize::new(0);

const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const LEFT_BEHIND: u8 = 2;

/// Why the rules gave no verdict: the decision falls back to `on_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotEvaluated {
    #[error("the rules were still being evaluated at the decision's deadline")]
    TimedOut,
    #[error("too many evaluations that outran their deadline are still running")]
    Busy,
    #[error("the evaluation stopped with a panic")]
    Failed,
}

impl NotEvaluated {
    /// The decision's `fallback_reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::TimedOut => "rules_timeout",
            Self::Busy => "rules_busy",
            Self::Failed => "rules_failed",
        }
    }
}

/// A verdict, with how each rule fared when the caller asked.
pub type Judged = (Verdict, Option<Vec<RuleTrace>>);

/// Whether these rules can cost more than their size: they are evaluated off the worker.
pub(super) fn can_loop(rules: &RuleSet) -> bool {
    rules.loops
}

impl RuleSet {
    /// The rules applied to `traits`, by `deadline`: in place when they cannot loop, else on
    /// a blocking thread that the decision stops waiting for at the deadline.
    pub async fn judge_within(
        self: &Arc<Self>,
        traits: &Map<String, Value>,
        channel: Option<&str>,
        explain: bool,
        deadline: Instant,
    ) -> Result<Judged, NotEvaluated> {
        if !can_loop(self) {
            return Ok(self.judge(traits, channel, explain));
        }
        if ABANDONED.load(Ordering::Acquire) >= MAX_ABANDONED {
            return Err(NotEvaluated::Busy);
        }
        let state = Arc::new(AtomicU8::new(RUNNING));
        let job = {
            let (rules, traits, state) = (self.clone(), traits.clone(), state.clone());
            let channel = channel.map(str::to_owned);
            tokio::task::spawn_blocking(move || {
                let judged = rules.judge(&traits, channel.as_deref(), explain);
                let finished =
                    state.compare_exchange(RUNNING, FINISHED, Ordering::AcqRel, Ordering::Acquire);
                if finished.is_err() {
                    // Its decision left without it: one fewer abandoned evaluation running.
                    ABANDONED.fetch_sub(1, Ordering::AcqRel);
                }
                judged
            })
        };
        match tokio::time::timeout_at(deadline.into(), job).await {
            Ok(Ok(judged)) => Ok(judged),
            Ok(Err(_)) => Err(NotEvaluated::Failed),
            Err(_) => {
                // Counted before the job can see it left behind, so the count never dips.
                ABANDONED.fetch_add(1, Ordering::AcqRel);
                let left = state.compare_exchange(
                    RUNNING,
                    LEFT_BEHIND,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                if left.is_err() {
                    ABANDONED.fetch_sub(1, Ordering::AcqRel);
                }
                Err(NotEvaluated::TimedOut)
            }
        }
    }

    /// The rules applied in place, traced when the caller asked.
    pub fn judge(
        &self,
        traits: &Map<String, Value>,
        channel: Option<&str>,
        explain: bool,
    ) -> Judged {
        let facts = Facts { traits, channel };
        if explain {
            let (verdict, trace) = self.explain(&facts);
            (verdict, Some(trace))
        } else {
            (self.evaluate(&facts), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    const LOOPING: &str = r#"{"rules": [{"name": "bought-what-they-viewed",
        "when": "traits.viewed.exists(x, traits.purchased.exists(y, x == y))", "transition": "agent"}],
        "default": "bot", "on_error": "agent"}"#;

    /// Two lists with nothing in common: every pair is compared.
    fn lists(n: usize) -> Map<String, Value> {
        let viewed: Vec<Value> = (0..n).map(|i| json!(format!("sku-{i}"))).collect();
        let purchased: Vec<Value> = (0..n).map(|i| json!(format!("gift-{i}"))).collect();
        json!({"viewed": viewed, "purchased": purchased})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn rules_that_loop_answer_by_the_deadline_and_fall_back_when_late() {
        let rules = Arc::new(RuleSet::compile(LOOPING).unwrap());
        assert!(can_loop(&rules));
        // GIVEN small lists: evaluated in time, on a blocking thread
        let far = Instant::now() + Duration::from_secs(30);
        let (verdict, _) = rules
            .judge_within(&lists(3), None, false, far)
            .await
            .unwrap();
        assert_eq!(verdict.rule, "default");
        // WHEN the lists make it slow and the deadline is near
        let started = Instant::now();
        let late = rules
            .judge_within(
                &lists(800),
                None,
                false,
                started + Duration::from_millis(20),
            )
            .await;
        // THEN the decision stops waiting at its deadline
        assert_eq!(late, Err(NotEvaluated::TimedOut));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn rules_that_cannot_loop_are_evaluated_in_place() {
        let rules = Arc::new(RuleSet::compile(crate::rules::DEFAULT_RULES).unwrap());
        assert!(!can_loop(&rules));
        let traits = json!({"docs_last_2_days": 1})
            .as_object()
            .cloned()
            .unwrap_or_default();
        // Even with the deadline already past: nothing was offloaded, nothing waited for.
        let judged = rules
            .judge_within(&traits, None, true, Instant::now())
            .await;
        let (verdict, trace) = judged.unwrap();
        assert_eq!(verdict.transition, "agent");
        assert!(trace.is_some());
    }
}
