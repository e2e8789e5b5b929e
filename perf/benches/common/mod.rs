//! What the load harnesses share: a Profile API stand-in that behaves as Segment documents
//! it (about 150 ms a lookup, 100 requests in any one-second window per space, 429 beyond
//! it), an execution environment (a release binary under its own Runtime API), and the
//! figures they print.

#![allow(dead_code)] // each harness uses its own part of it

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::{Function, PROFILE_TOKEN, Reply, RuntimeApi, StandIn, TWILIO_TOKEN};
use perf::percentile;
use serde_json::{Value, json};

/// Segment's p95 for `/traits` is under 200 ms.
pub const LOOKUP: Duration = Duration::from_millis(150);
/// "Profile API Throughput: 100 requests per second" (Segment's Profile API limits).
pub const SEGMENT_LIMIT_PER_SECOND: usize = 100;

pub fn phone(i: usize) -> String {
    format!("+1555{i:07}")
}

pub fn studio_request(phone: &str) -> Value {
    e2e::signed_form_post(TWILIO_TOKEN, &[("From", phone), ("Body", "hi")])
}

/// How the stand-in limits: Segment's documented 429 carries no `Retry-After`; the harness
/// also tries one that does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    None,
    PerSecond { retry_after: Option<u64> },
}

/// The Profile API as Segment documents it, counting what it served and refused.
pub struct SegmentLike {
    pub stand_in: StandIn,
    refused: Arc<AtomicUsize>,
}

impl SegmentLike {
    pub async fn start(limit: Limit) -> Self {
        let refused = Arc::new(AtomicUsize::new(0));
        let accepted: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
        let counter = refused.clone();
        let stand_in = StandIn::start(move |request| {
            if let Limit::PerSecond { retry_after } = limit {
                let now = Instant::now();
                let mut window = accepted.lock().expect("window");
                while window
                    .front()
                    .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
                {
                    window.pop_front();
                }
                if window.len() >= SEGMENT_LIMIT_PER_SECOND {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let reply = Reply::json(
                        429,
                        json!({"error": {"code": "rate_limit_error", "message": "Too Many Requests"}}),
                    );
                    return match retry_after {
                        Some(seconds) => reply.header("retry-after", &seconds.to_string()),
                        None => reply,
                    };
                }
                window.push_back(now);
            }
            let customer: usize = request
                .path
                .split_once("%2B1555")
                .and_then(|(_, rest)| rest.get(..7))
                .and_then(|digits| digits.parse().ok())
                .unwrap_or(0);
            Reply::traits(json!({"docs_last_2_days": customer % 2, "vip": false, "first_name": "Ann"}))
                .after(LOOKUP)
        })
        .await;
        Self { stand_in, refused }
    }

    /// Requests Segment served (not refused).
    pub fn requests(&self) -> usize {
        self.stand_in.count() - self.refused()
    }

    /// Requests Segment answered 429.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// A function's variables against `segment`, at `concurrency` when given, plus `extra`.
pub fn function_env(
    segment: &SegmentLike,
    concurrency: Option<u32>,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("SEGMENT_SPACE_ID", "spa_peak".to_owned()),
        ("SEGMENT_PROFILE_API_TOKEN", PROFILE_TOKEN.to_owned()),
        ("SEGMENT_PROFILE_API_URL", segment.stand_in.url()),
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN.to_owned()),
    ];
    if let Some(concurrency) = concurrency {
        env.push(("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.to_string()));
    }
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

/// An execution environment: one process under its own Runtime API. The process is
/// dropped (killed) before its Runtime API, so it never polls one that is gone.
pub struct Environment {
    pub function: Function,
    pub runtime: RuntimeApi,
}

impl Environment {
    pub async fn start(name: &str, env: &[(&'static str, String)]) -> Self {
        let runtime = RuntimeApi::start().await;
        let function = Function::start(name, &runtime, env).await;
        Self { runtime, function }
    }

    /// The function's own decision times (its `latency_us` log field).
    pub fn logged_latencies(&self) -> Vec<Duration> {
        self.function
            .log_lines("decision")
            .iter()
            .filter_map(|line| line["latency_us"].as_u64())
            .map(Duration::from_micros)
            .collect()
    }

    /// How many decisions fell back for each reason, as `reason n, ...`.
    pub fn fallback_reasons(&self) -> String {
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for line in self.function.log_lines("decision") {
            if let Some(reason) = line["fallback_reason"].as_str() {
                *counts.entry(reason.to_owned()).or_default() += 1;
            }
        }
        let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn p50_p99(mut times: Vec<Duration>) -> (f64, f64) {
    if times.is_empty() {
        return (0.0, 0.0);
    }
    times.sort();
    (ms(percentile(&times, 0.5)), ms(percentile(&times, 0.99)))
}

/// Which binaries run: this tree's release build, or `STUDIO_ROUTER_BINARIES`'s.
pub fn binaries() -> String {
    std::env::var("STUDIO_ROUTER_BINARIES").unwrap_or_else(|_| "this tree".to_owned())
}
