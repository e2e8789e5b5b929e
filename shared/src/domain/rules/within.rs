//! Evaluating the rules within the decision's deadline, whatever they cost.
//!
//! cel has no cost limit and no way to stop an evaluation. A condition that loops
//! (`traits.viewed.exists(x, traits.purchased.exists(y, x == y))`) costs what the customer's
//! data makes it cost: two 2,000-item lists took 1.5 s. Run on the async worker, such an
//! evaluation would hold the answer past its deadline and stall every other invocation that
//! worker serves. So rules that can loop (a comprehension macro, or `matches`, whose pattern
//! may come from the data) are evaluated on tokio's blocking threads, and the decision waits
//! for them only until its deadline; then it falls back (`rules_timeout`) and leaves the
//! evaluation to finish on its own. While [`MAX_ABANDONED`] abandoned evaluations are still
//! running in an environment, decisions on such rules fall back at once (`rules_busy`)
//! instead of adding one more thread that burns a core. (Decisions already evaluating when
//! the count is reached may still be abandoned: at most `MAX_ABANDONED - 1` plus the
//! invocations an environment serves at once, so 2 on classic Lambda.) Rules that cannot
//! loop touch each value they read a bounded number of times (their size is bounded by
//! `limits`) and are evaluated in place: the usual decision pays nothing for this.

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

/// Marks an evaluation finished when it ends, however it ends (a panic included), and
/// counts one fewer abandoned evaluation when its decision had already left.
struct Finish(Arc<AtomicU8>);

impl Drop for Finish {
    fn drop(&mut self) {
        let finished =
            self.0
                .compare_exchange(RUNNING, FINISHED, Ordering::AcqRel, Ordering::Acquire);
        if finished.is_err() {
            ABANDONED.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A verdict, with how each rule fared when the caller asked.
pub type Judged = (Verdict, Option<Vec<RuleTrace>>);

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
        if !self.loops {
            return Ok(self.judge(traits, channel, explain));
        }
        if ABANDONED.load(Ordering::Acquire) >= MAX_ABANDONED {
            return Err(NotEvaluated::Busy);
        }
        let state = Arc::new(AtomicU8::new(RUNNING));
        let job = {
            let (rules, traits) = (self.clone(), traits.clone());
            let finish = Finish(state.clone());
            let channel = channel.map(str::to_owned);
            tokio::task::spawn_blocking(move || {
                // Still queued when its decision left: nobody will read it.
                if finish.0.load(Ordering::Acquire) == LEFT_BEHIND {
                    return None;
                }
                let judged = rules.judge(&traits, channel.as_deref(), explain);
                drop(finish);
                Some(judged)
            })
        };
        match tokio::time::timeout_at(deadline.into(), job).await {
            Ok(Ok(Some(judged))) => Ok(judged),
            Ok(Ok(None) | Err(_)) => Err(NotEvaluated::Failed),
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

    #[test]
    fn rules_that_loop_answer_by_the_deadline_and_fall_back_when_late() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let rules = Arc::new(RuleSet::compile(LOOPING).unwrap());
        assert!(rules.loops);
        // GIVEN small lists: evaluated in time, on a blocking thread
        let far = Instant::now() + Duration::from_secs(30);
        let judged = runtime.block_on(rules.judge_within(&lists(3), None, false, far));
        assert_eq!(judged.unwrap().0.rule, "default");
        // WHEN the lists make it take a minute and more, and the deadline is near
        let started = Instant::now();
        let near = started + Duration::from_millis(20);
        let late = runtime.block_on(rules.judge_within(&lists(5_000), None, false, near));
        // THEN the decision stops waiting at its deadline, long before the evaluation ends
        assert_eq!(late, Err(NotEvaluated::TimedOut));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        // AND the evaluation left behind is counted until it ends
        assert_eq!(ABANDONED.load(Ordering::Acquire), 1);
        // Not waited for: the evaluation ends with the test's process.
        runtime.shutdown_background();
    }

    #[tokio::test]
    async fn rules_that_cannot_loop_are_evaluated_in_place() {
        let rules = Arc::new(RuleSet::compile(crate::domain::rules::DEFAULT_RULES).unwrap());
        assert!(!rules.loops);
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
