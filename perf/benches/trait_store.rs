//! The peak model with the trait store (issue 30): one route-decision environment at
//! `AWS_LAMBDA_MAX_CONCURRENCY=32` reading dynalite (DynamoDB's API on 127.0.0.1) before a
//! Profile API stand-in that allows Segment's 100 requests a second and answers in 150 ms.
//! New customers arrive at a fixed rate for 3 s, each a cache miss; the table holds every
//! one of them (`hits`), or all but one in ten (`10% misses`, which go to the Profile API).
//!
//!   cargo bench -p perf --bench trait_store      # needs tests/dynalite installed
//!
//! dynalite is one Node process on LevelDB in memory: its reads are not DynamoDB's (AWS
//! states single-digit milliseconds server-side), so the latencies say what the function
//! adds around a read, and the Profile API counts say where the ceiling went.

use std::time::{Duration, Instant};

use e2e::dynalite::Dynalite;
use serde_json::json;

mod common;
use common::{Environment, Limit, SegmentLike, function_env, p50_p99, phone, studio_request};

const CUSTOMERS: usize = 2000;
const ARRIVALS_FOR: Duration = Duration::from_secs(3);

async fn run(dynalite: &Dynalite, per_second: u32, miss_every: Option<usize>) {
    let segment = SegmentLike::start(Limit::PerSecond { retry_after: None }).await;
    let mut extra = vec![("DECISION_DEADLINE_MS", "2500")];
    let table = dynalite.env();
    extra.extend(table.iter().map(|(k, v)| (*k, v.as_str())));
    let environment =
        Environment::start("route-decision", &function_env(&segment, Some(32), &extra)).await;
    let decisions = (per_second * ARRIVALS_FOR.as_secs() as u32) as usize;
    let gap = Duration::from_secs(1) / per_second;
    let started = Instant::now();
    let mut waiting = Vec::new();
    for i in 0..decisions {
        tokio::time::sleep_until((started + gap * i as u32).into()).await;
        // A miss is a customer the table does not hold (numbers past CUSTOMERS).
        let customer = match miss_every {
            Some(n) if i % n == 0 => CUSTOMERS + i,
            _ => i % CUSTOMERS,
        };
        waiting.push(environment.runtime.queue(studio_request(&phone(customer))));
    }
    let mut fallbacks = 0;
    for answer in waiting {
        let payload = tokio::time::timeout(Duration::from_secs(60), answer.answer())
            .await
            .unwrap_or_else(|_| panic!("no answer: {:?}", environment.function.logs().last()));
        let body = studio_router::edge::invocation::status_and_body(&payload).1;
        assert!(body["transition"].is_string(), "{body}");
        fallbacks += usize::from(body["fallback"] == true);
    }
    let from_store = environment
        .function
        .log_lines("decision")
        .iter()
        .filter(|line| line["traits_from"] == "store")
        .count();
    let (p50, p99) = p50_p99(environment.logged_latencies());
    println!(
        "| {per_second}/s | {} | {decisions} | {from_store} | {} | {} | {fallbacks} | {p50:.1} / {p99:.1} |",
        miss_every.map_or("hits".to_owned(), |n| format!("{}% misses", 100 / n)),
        segment.requests(),
        segment.refused(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    e2e::build_release_binaries();
    let dynalite = Dynalite::start()
        .await
        .expect("dynalite: cd tests/dynalite && npm ci");
    for i in 0..CUSTOMERS {
        dynalite
            .put(json!({
                "id": {"S": format!("phone:{}", phone(i))},
                "traits": {"M": {"docs_last_2_days": {"N": (i % 2).to_string()}, "vip": {"BOOL": false}}},
            }))
            .await;
    }
    println!(
        "| arrivals | table | decisions | from the table | Profile API requests | 429s | fallbacks | decision p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (rate, misses) in [(120, None), (300, None), (600, None), (300, Some(10))] {
        run(&dynalite, rate, misses).await;
    }
}
