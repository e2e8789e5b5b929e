//! At Segment's limit (issue 29): one route-decision environment at
//! `AWS_LAMBDA_MAX_CONCURRENCY=32`, 120 new customers a second for 3 s (360 decisions, every
//! one a cache miss), `DECISION_DEADLINE_MS=2500`, against a Profile API stand-in that
//! answers in 150 ms and allows 100 requests in any one-second window, answering 429 beyond it
//! without `Retry-After` (as Segment documents its 429) and, in a second run, with
//! `Retry-After: 1`. Each with `PROFILE_API_RATE=100` and with the rate unset (learned).
//!
//!   cargo bench -p perf --bench at_the_limit
//!   STUDIO_ROUTER_BINARIES=/path/to/other/release cargo bench -p perf --bench at_the_limit
//!
//! The second form runs another build's binaries (a commit before the pacer) under the same
//! load; they ignore `PROFILE_API_RATE`.

use std::time::{Duration, Instant};

mod common;
use common::{Environment, Limit, SegmentLike, function_env, p50_p99, phone, studio_request};

const ARRIVALS_PER_SECOND: u32 = 120;
const ARRIVALS_FOR: Duration = Duration::from_secs(3);

async fn run(rate: Option<&'static str>, retry_after: Option<u64>) {
    let segment = SegmentLike::start(Limit::PerSecond { retry_after }).await;
    let mut extra = vec![("DECISION_DEADLINE_MS", "2500")];
    if let Some(rate) = rate {
        extra.push(("PROFILE_API_RATE", rate));
    }
    let environment =
        Environment::start("route-decision", &function_env(&segment, Some(32), &extra)).await;
    let decisions = (ARRIVALS_PER_SECOND * ARRIVALS_FOR.as_secs() as u32) as usize;
    let gap = Duration::from_secs(1) / ARRIVALS_PER_SECOND;
    let started = Instant::now();
    let mut waiting = Vec::new();
    for i in 0..decisions {
        tokio::time::sleep_until((started + gap * i as u32).into()).await;
        waiting.push(environment.runtime.queue(studio_request(&phone(i))));
    }
    let mut fallbacks = 0;
    for answer in waiting {
        // Every decision is due within its 2.5 s deadline; a function that died never answers.
        let payload = tokio::time::timeout(Duration::from_secs(60), answer.answer())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no answer within 60 s: did the function exit? {:?}",
                    environment.function.logs().last()
                )
            });
        let body = studio_router::edge::invocation::status_and_body(&payload).1;
        assert!(body["transition"].is_string(), "{body}");
        fallbacks += usize::from(body["fallback"] == true);
    }
    let (p50, p99) = p50_p99(environment.logged_latencies());
    println!(
        "| {} | {} | {decisions} | {fallbacks} ({:.1}%) | {} | {} | {} | {p50:.0} / {p99:.0} |",
        rate.map_or("unset (learned)".to_owned(), |r| format!(
            "PROFILE_API_RATE={r}"
        )),
        retry_after.map_or("none".to_owned(), |s| format!("{s} s")),
        100.0 * fallbacks as f64 / decisions as f64,
        segment.refused(),
        segment.requests(),
        environment.fallback_reasons(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    e2e::build_release_binaries();
    println!(
        "\nAt the limit ({}): {ARRIVALS_PER_SECOND} new customers a second for {} s, one environment at concurrency 32",
        common::binaries(),
        ARRIVALS_FOR.as_secs()
    );
    println!(
        "| rate | 429's Retry-After | decisions | fallbacks | 429s | Profile API requests served | fallback reasons | decision p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for retry_after in [None, Some(1)] {
        for rate in [Some("100"), None] {
            run(rate, retry_after).await;
        }
    }
}
