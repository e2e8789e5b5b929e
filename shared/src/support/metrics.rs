//! Metrics in CloudWatch's Embedded Metric Format: one document per invocation, a JSON line on
//! stdout beside the log lines, which CloudWatch Logs turns into metrics in the `StudioRouter`
//! namespace. Formatted by awslabs' metrique (`metrique-writer-format-emf`).
//!
//! What an invocation counts is gathered in its [`InvocationCounts`], reachable from anywhere inside the
//! invocation (the Segment clients count their requests without being handed anything) through
//! a task-local set by the edge. Dimensions are low-cardinality only: the function, and for a
//! decision its transition, rule and fallback reason. Never a customer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use metrique_writer_core::format::Format;
use metrique_writer_core::unit::{AsCount, Millisecond, WithUnit};
use metrique_writer_core::{Entry, EntryWriter};
use metrique_writer_format_emf::{Emf, MetricDefinition, MetricDirective};

/// The CloudWatch namespace every metric is published in.
pub const NAMESPACE: &str = "StudioRouter";
/// The dimension every metric has: the function's name.
pub const FUNCTION: &str = "function";

/// Something an invocation counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A profile read answered from this environment's cache.
    CacheHits,
    /// A profile read the cache could not answer (or the cache is off).
    CacheMisses,
    /// An HTTP request sent to Segment's Profile API (retries included).
    ProfileApiRequests,
    /// A wrap-up event whose track message Segment accepted.
    WrapUpsDelivered,
    /// A wrap-up event that could never be delivered (malformed), skipped.
    WrapUpsSkipped,
    /// A wrap-up event Segment did not accept (the sender retries it).
    WrapUpsFailed,
    /// A batch request sent to Segment's Tracking API (retries included).
    SegmentBatchRequests,
    /// A batch request sent again after a failure.
    SegmentBatchRetries,
    /// A Kinesis record reported back to Lambda as failed (retried by the event source mapping).
    KinesisRecordsFailed,
    /// A rule set from AppConfig that did not compile; the running one stayed.
    RulesRejected,
    /// A rule set from AppConfig that replaced the running one.
    RulesUpdated,
    /// An answer with a 5xx status (or a direct invoke's error of that kind).
    ServerErrors,
    /// A trait value trait-sync wrote to the store (a repeat or an older value is not one).
    TraitsWritten,
    /// An Engage delivery trait-sync could never write (no identifier, no traits), skipped.
    TraitDeliveriesSkipped,
}

impl Counter {
    const ALL: [Counter; 14] = [
        Counter::CacheHits,
        Counter::CacheMisses,
        Counter::ProfileApiRequests,
        Counter::WrapUpsDelivered,
        Counter::WrapUpsSkipped,
        Counter::WrapUpsFailed,
        Counter::SegmentBatchRequests,
        Counter::SegmentBatchRetries,
        Counter::KinesisRecordsFailed,
        Counter::RulesRejected,
        Counter::RulesUpdated,
        Counter::ServerErrors,
        Counter::TraitsWritten,
        Counter::TraitDeliveriesSkipped,
    ];

    /// The metric's name in CloudWatch.
    pub fn name(self) -> &'static str {
        match self {
            Counter::CacheHits => "CacheHits",
            Counter::CacheMisses => "CacheMisses",
            Counter::ProfileApiRequests => "ProfileApiRequests",
            Counter::WrapUpsDelivered => "WrapUpsDelivered",
            Counter::WrapUpsSkipped => "WrapUpsSkipped",
            Counter::WrapUpsFailed => "WrapUpsFailed",
            Counter::SegmentBatchRequests => "SegmentBatchRequests",
            Counter::SegmentBatchRetries => "SegmentBatchRetries",
            Counter::KinesisRecordsFailed => "KinesisRecordsFailed",
            Counter::RulesRejected => "RulesRejected",
            Counter::RulesUpdated => "RulesUpdated",
            Counter::ServerErrors => "ServerErrors",
            Counter::TraitsWritten => "TraitsWritten",
            Counter::TraitDeliveriesSkipped => "TraitDeliveriesSkipped",
        }
    }
}

/// The decision an invocation made: its dimensions in the decision metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decided {
    transition: String,
    rule: String,
    fallback_reason: Option<&'static str>,
    /// What the shadow rule set answered, when there is one.
    shadow_transition: Option<String>,
    /// The experiment's arm that decided, when the rules have an experiment.
    arm: Option<&'static str>,
}

#[derive(Debug, Default)]
struct Record {
    /// Written: later counts (a shared request landing after its first caller answered) are
    /// dropped rather than added to a document already out.
    closed: bool,
    counts: [u64; Counter::ALL.len()],
    decided: Option<Decided>,
    lookup: Option<Duration>,
}

/// What one invocation counted.
#[derive(Debug, Default)]
pub struct InvocationCounts(Mutex<Record>);

impl InvocationCounts {
    fn with<R>(&self, f: impl FnOnce(&mut Record) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn close(&self) -> Record {
        self.with(|record| {
            record.closed = true;
            std::mem::take(record)
        })
    }
}

tokio::task_local! {
    static TALLY: Arc<InvocationCounts>;
}

fn current() -> Option<Arc<InvocationCounts>> {
    TALLY.try_with(Arc::clone).ok()
}

fn record(f: impl FnOnce(&mut Record)) {
    if let Some(tally) = current() {
        tally.with(|record| {
            if !record.closed {
                f(record)
            }
        });
    }
}

/// Counts `n` of `counter` in the current invocation (nothing outside one).
pub fn add(counter: Counter, n: u64) {
    record(|record| record.counts[counter as usize] += n);
}

/// Records the invocation's decision.
pub fn decided(transition: &str, rule: &str, fallback_reason: Option<&'static str>) {
    record(|record| {
        record.decided = Some(Decided {
            transition: transition.to_owned(),
            rule: rule.to_owned(),
            fallback_reason,
            shadow_transition: None,
            arm: None,
        })
    });
}

/// Records which arm of the rules' experiment decided (after [`decided`]).
pub fn in_arm(arm: &'static str) {
    record(|record| {
        if let Some(decided) = &mut record.decided {
            decided.arm = Some(arm);
        }
    });
}

/// Records what the shadow rule set answered beside the invocation's decision (after
/// [`decided`]): a disagreement counts under both transitions.
pub fn shadowed(shadow_transition: &str) {
    record(|record| {
        if let Some(decided) = &mut record.decided {
            decided.shadow_transition = Some(shadow_transition.to_owned());
        }
    });
}

/// Records how long the invocation's profile read took.
pub fn looked_up(latency: Duration) {
    record(|record| record.lookup = Some(latency));
}

/// `future`, counting into the current invocation's tally wherever it runs: for work spawned
/// on the invocation's behalf (a shared Profile API request).
pub fn carry<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let tally = current();
    async move {
        match tally {
            Some(tally) => TALLY.scope(tally, future).await,
            None => future.await,
        }
    }
}

/// Where documents go.
enum Output {
    Stdout,
    /// Kept, for this module's tests.
    #[cfg(test)]
    Memory(Mutex<Vec<String>>),
}

/// One function's metric documents: its formatters, and whether its first invocation (the
/// cold start) has been.
pub struct MetricsWriter {
    /// The deployed function's name (`AWS_LAMBDA_FUNCTION_NAME`): two stacks in one account
    /// publish apart, and the template's alarms name each function exactly.
    function: Arc<str>,
    /// Built at the first document, after the first answer: a cold start's answer does not
    /// wait for the formatter's code to be paged in.
    formats: OnceLock<Formats>,
    /// `METRICS=off`: no documents (custom metrics cost money; the logs still say it all).
    enabled: bool,
    warm: AtomicBool,
    output: Output,
}

struct Formats {
    /// For an invocation that made no decision (a refusal, a warm-up, every wrap-up).
    plain: Mutex<Emf>,
    /// For a decision: decisions by transition and by rule, fallbacks by reason as well. A
    /// directive's dimensions must all be in the document, so only a decision's has them.
    /// Indexed by [`Formats::index`]: with a shadow rule set, its agreements (0) and
    /// disagreements (1) by the pair of transitions (their mean is the disagreement rate);
    /// with an experiment, decisions and fallbacks by arm.
    deciding: [Mutex<Emf>; 4],
}

impl Formats {
    fn new() -> Self {
        let builder = || Emf::builder(NAMESPACE.to_owned(), vec![vec![FUNCTION.to_owned()]]);
        let count = |name| MetricDefinition {
            name,
            unit: metrique_writer_core::Unit::Count,
            storage_resolution: None,
        };
        let deciding = || {
            builder()
                .directive(MetricDirective {
                    dimensions: vec![vec![FUNCTION, "transition"], vec![FUNCTION, "rule"]],
                    metrics: vec![count(DECISIONS)],
                    namespace: NAMESPACE,
                })
                .directive(MetricDirective {
                    dimensions: vec![vec![FUNCTION, "fallback_reason"]],
                    metrics: vec![count(FALLBACKS)],
                    namespace: NAMESPACE,
                })
        };
        let format = |shadow: bool, arm: bool| {
            let mut emf = deciding();
            if shadow {
                emf = emf.directive(MetricDirective {
                    dimensions: vec![vec![FUNCTION, "transition", "shadow_transition"]],
                    metrics: vec![count(SHADOW_DISAGREEMENTS)],
                    namespace: NAMESPACE,
                });
            }
            if arm {
                emf = emf.directive(MetricDirective {
                    dimensions: vec![vec![FUNCTION, "arm"], vec![FUNCTION, "arm", "transition"]],
                    metrics: vec![count(DECISIONS), count(FALLBACKS)],
                    namespace: NAMESPACE,
                });
            }
            Mutex::new(emf.build())
        };
        Self {
            plain: Mutex::new(builder().build()),
            deciding: [
                format(false, false),
                format(true, false),
                format(false, true),
                format(true, true),
            ],
        }
    }

    /// Which of `deciding` formats a decision's document.
    fn index(decided: &Decided) -> usize {
        usize::from(decided.shadow_transition.is_some()) | usize::from(decided.arm.is_some()) << 1
    }
}

impl MetricsWriter {
    /// A writer of `function`'s documents to stdout.
    pub fn new(function: &str) -> Self {
        Self::to(function, Output::Stdout)
    }

    /// The writer, writing (`METRICS=emf`, the default) or not (`off`).
    pub fn enabled(self, enabled: bool) -> Self {
        Self { enabled, ..self }
    }

    /// A writer that keeps its documents in memory, for tests: see [`Self::written`].
    #[cfg(test)]
    fn in_memory(function: &str) -> Self {
        Self::to(function, Output::Memory(Mutex::default()))
    }

    fn to(function: &str, output: Output) -> Self {
        Self {
            function: function.into(),
            formats: OnceLock::new(),
            enabled: true,
            warm: AtomicBool::new(false),
            output,
        }
    }

    /// Runs `invocation` with a fresh tally, then writes its document from a task of its
    /// own: the answer does not wait for it. The task runs while the runtime posts the answer,
    /// before the runtime asks for the next event (after which Lambda may freeze the
    /// environment).
    pub async fn measure<F: Future>(self: &Arc<Self>, invocation: F) -> F::Output {
        if !self.enabled {
            return invocation.await;
        }
        let tally = Arc::new(InvocationCounts::default());
        let output = TALLY.scope(tally.clone(), invocation).await;
        // Decided here, in invocation order, not by whichever writing task runs first.
        let cold_start = !self.warm.swap(true, Ordering::Relaxed);
        let (documents, record) = (self.clone(), tally.close());
        tokio::spawn(async move {
            // To the back of the queue: on one thread, the task that writes the answer to
            // the Runtime API is woken after this one, and goes first.
            tokio::task::yield_now().await;
            documents.write(record, cold_start)
        });
        output
    }

    fn write(&self, record: Record, cold_start: bool) {
        let document = Document {
            function: &self.function,
            cold_start,
            record,
        };
        let mut line = Vec::with_capacity(512);
        let formats = self.formats.get_or_init(Formats::new);
        let emf = match &document.record.decided {
            Some(decided) => &formats.deciding[Formats::index(decided)],
            None => &formats.plain,
        };
        let formatted = emf
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .format(&document, &mut line);
        if let Err(error) = formatted {
            tracing::warn!(function = %self.function, %error, "metrics document could not be written");
            return;
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        match &self.output {
            // One write of the whole line, under stdout's lock: a log line written at the same
            // moment by another invocation cannot land inside it.
            Output::Stdout => {
                use std::io::Write;
                let _ = std::io::stdout().lock().write_all(&line);
            }
            #[cfg(test)]
            Output::Memory(kept) => kept
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(String::from_utf8_lossy(&line).trim_end().to_owned()),
        }
    }

    /// The documents kept by [`Self::in_memory`] so far.
    #[cfg(test)]
    fn written(&self) -> Vec<String> {
        match &self.output {
            Output::Stdout => Vec::new(),
            Output::Memory(kept) => kept.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        }
    }
}

const DECISIONS: &str = "Decisions";
const FALLBACKS: &str = "Fallbacks";
const SHADOW_DISAGREEMENTS: &str = "ShadowDisagreements";

/// One invocation's document.
struct Document<'a> {
    function: &'a str,
    cold_start: bool,
    record: Record,
}

impl Entry for Document<'_> {
    fn write<'a>(&'a self, writer: &mut impl EntryWriter<'a>) {
        writer.timestamp(SystemTime::now());
        writer.value(FUNCTION, self.function);
        if self.cold_start {
            writer.value("ColdStarts", &AsCount::from(1u64));
        }
        if let Some(decided) = &self.record.decided {
            writer.value("transition", decided.transition.as_str());
            writer.value("rule", decided.rule.as_str());
            // Always present, `none` when the decision did not fall back: the directive that
            // names it must find it in every decision's document.
            writer.value("fallback_reason", decided.fallback_reason.unwrap_or("none"));
            writer.value(DECISIONS, &AsCount::from(1u64));
            let fallbacks = u64::from(decided.fallback_reason.is_some());
            writer.value(FALLBACKS, &AsCount::from(fallbacks));
            if let Some(arm) = decided.arm {
                writer.value("arm", arm);
            }
            if let Some(shadow) = &decided.shadow_transition {
                writer.value("shadow_transition", shadow.as_str());
                let disagreed = u64::from(*shadow != decided.transition);
                writer.value(SHADOW_DISAGREEMENTS, &AsCount::from(disagreed));
            }
        }
        if let Some(latency) = self.record.lookup {
            writer.value("LookupLatency", &WithUnit::<_, Millisecond>::from(latency));
        }
        for counter in Counter::ALL {
            let n = self.record.counts[counter as usize];
            if n > 0 {
                writer.value(counter.name(), &AsCount::from(n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The documents written so far, once their writing tasks have run.
    async fn parsed(documents: &MetricsWriter) -> Vec<Value> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        documents
            .written()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn an_invocation_writes_one_document_with_what_it_counted() {
        let documents = Arc::new(MetricsWriter::in_memory("route-decision"));
        documents
            .measure(async {
                add(Counter::ProfileApiRequests, 1);
                add(Counter::CacheMisses, 1);
                looked_up(Duration::from_micros(12_500));
                decided("agent", "on_error", Some("timeout"));
            })
            .await;
        documents
            .measure(async { add(Counter::CacheHits, 2) })
            .await;
        // Each is written by a task of its own: the decision's first here.
        let mut written = parsed(&documents).await;
        written.sort_by_key(|document| document.get("transition").is_none());
        let [first, second] = written.try_into().unwrap();
        // Only a decision's document names the decision dimensions.
        assert_eq!(
            second["_aws"]["CloudWatchMetrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(first["function"], "route-decision");
        assert_eq!(
            first["ColdStarts"], 1,
            "the first invocation is the cold start"
        );
        assert!(second.get("ColdStarts").is_none());
        assert_eq!(
            (
                &first["transition"],
                &first["rule"],
                &first["fallback_reason"]
            ),
            (
                &Value::from("agent"),
                &Value::from("on_error"),
                &Value::from("timeout")
            )
        );
        assert_eq!(
            (&first["Decisions"], &first["Fallbacks"]),
            (&1.into(), &1.into())
        );
        assert_eq!(first["LookupLatency"], 12.5);
        assert_eq!(first["ProfileApiRequests"], 1);
        assert!(first.get("CacheHits").is_none());
        let directives = first["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert!(directives.iter().all(|d| d["Namespace"] == NAMESPACE));
        assert!(
            directives
                .iter()
                .any(|d| d["Dimensions"] == serde_json::json!([["function", "fallback_reason"]]))
        );
        assert_eq!(second["CacheHits"], 2);
    }

    #[tokio::test]
    async fn metrics_off_writes_nothing() {
        assert!(!MetricsWriter::new("route-decision").enabled(false).enabled);
        let documents = Arc::new(MetricsWriter::in_memory("route-decision").enabled(false));
        documents
            .measure(async { add(Counter::CacheHits, 1) })
            .await;
        assert!(parsed(&documents).await.is_empty());
    }

    #[tokio::test]
    async fn counts_outside_an_invocation_go_nowhere_and_spawned_work_can_carry_them() {
        add(Counter::CacheHits, 1);
        let documents = Arc::new(MetricsWriter::in_memory("profile-lookup"));
        documents
            .measure(async {
                tokio::spawn(carry(async { add(Counter::ProfileApiRequests, 3) }))
                    .await
                    .unwrap();
                // Not carried: not this invocation's.
                tokio::spawn(async { add(Counter::ProfileApiRequests, 100) })
                    .await
                    .unwrap();
            })
            .await;
        let [document] = parsed(&documents).await.try_into().unwrap();
        assert_eq!(document["ProfileApiRequests"], 3);
        assert!(document.get("CacheHits").is_none());
    }
}
