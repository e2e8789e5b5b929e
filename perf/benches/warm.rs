//! Warm behaviour of the release binaries under a local Lambda Runtime API, against loopback
//! Segment stand-ins:
//! - route-decision's own added time per lookup decision (end to end minus the Profile API
//!   stand-in's service time), next to the echo baseline through the same harness;
//! - memory (RSS) after 100 and after 10,000 decisions;
//! - Segment traffic: one Profile API request per decision on a cache miss, none on a hit;
//!   one batch request per wrap-up delivery.
//!
//!   cargo bench -p perf --bench warm
//!
//! DECISIONS (default 10000) sets the count.

use std::time::Duration;

use e2e::{
    Function, PROFILE_TOKEN, Reply, RuntimeApi, StandIn, TWILIO_TOKEN, fixture, signed_form_post,
};
use perf::percentile;
use serde_json::{Value, json};

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000_000.0
}

fn rss_kib(pid: Option<u32>) -> u64 {
    let status = pid
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn report(name: &str, mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!(
        "{name:<58} p50 {:>7.1}us   p99 {:>7.1}us   max {:>8.1}us",
        us(p50),
        us(p99),
        us(times[times.len() - 1])
    );
    (p50, p99)
}

fn studio_request(i: usize) -> Value {
    // A different customer each time: every decision is a cache miss.
    signed_form_post(
        TWILIO_TOKEN,
        &[("From", &format!("+1555{i:07}")), ("Body", "hi")],
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    e2e::build_release_binaries();
    let decisions: usize = std::env::var("DECISIONS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(10_000);

    // The harness's own cost: the echo function through the same Runtime API.
    let runtime = RuntimeApi::start().await;
    let echo = Function::start("echo", &runtime, &[]).await;
    let mut echo_times = Vec::with_capacity(decisions);
    for i in 0..decisions {
        echo_times.push(runtime.invoke(json!({"i": i})).await.elapsed);
    }
    drop(echo);

    let profiles =
        StandIn::always(Reply::traits(json!({"docs_last_2_days": 3, "vip": false}))).await;
    let runtime = RuntimeApi::start().await;
    let env = [
        ("SEGMENT_SPACE_ID", "spa_bench".to_owned()),
        ("SEGMENT_PROFILE_API_TOKEN", PROFILE_TOKEN.to_owned()),
        ("SEGMENT_PROFILE_API_URL", profiles.url()),
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN.to_owned()),
    ];
    let function = Function::start("route-decision", &runtime, &env).await;
    for i in 0..100 {
        let answer = runtime.invoke(studio_request(i)).await;
        assert_eq!(answer.status(), 200, "{}", answer.payload);
    }
    let rss_100 = rss_kib(function.pid());
    let mut end_to_end = Vec::with_capacity(decisions);
    let mut added = Vec::with_capacity(decisions);
    for i in 100..100 + decisions {
        let before = profiles.count();
        let answer = runtime.invoke(studio_request(i)).await;
        assert_eq!(answer.body()["transition"], "agent");
        let served = profiles.served_since(before);
        end_to_end.push(answer.elapsed);
        added.push(answer.elapsed.saturating_sub(served));
    }
    let rss_end = rss_kib(function.pid());
    // The decision as the function times it itself (its `latency_us` log field: from the
    // decoded request to the decision, the Profile API round trip included), for the
    // measured decisions; free of the harness's scheduling noise on the Runtime API legs.
    let logged: Vec<Duration> = function
        .logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "decision")
        .filter_map(|line| line["latency_us"].as_u64())
        .skip(100)
        .map(Duration::from_micros)
        .collect();
    let misses = profiles.count();

    // Repeats of recent customers: cache hits, no request.
    let mut hit_times = Vec::with_capacity(1000);
    for i in 0..1000 {
        hit_times.push(
            runtime
                .invoke(studio_request(100 + decisions - 1 - (i % 200)))
                .await
                .elapsed,
        );
    }
    let hits_requests = profiles.count() - misses;
    let served: Vec<Duration> = profiles.received().iter().map(|r| r.served_in).collect();

    println!(
        "warm route-decision (release binary, loopback Profile API, {decisions} decisions after 100 warm-up)"
    );
    let (echo_p50, echo_p99) = report("echo through the harness (baseline)", echo_times);
    report(
        "route-decision end to end (Studio form, signature, lookup)",
        end_to_end,
    );
    report("Profile API stand-in service time", served);
    let (added_p50, added_p99) = report("route-decision end to end - stand-in", added);
    // What the function itself adds: the harness and the runtime client's own exchange with
    // the Runtime API are what the echo baseline measures, percentile for percentile.
    println!(
        "{:<58} p50 {:>7.1}us   p99 {:>7.1}us",
        "route-decision's own added time (- stand-in - echo)",
        us(added_p50.saturating_sub(echo_p50)),
        us(added_p99.saturating_sub(echo_p99))
    );
    if !logged.is_empty() {
        report("route-decision's decision time, as it logs it", logged);
    }
    report(
        "route-decision end to end, cache hit (no lookup)",
        hit_times,
    );
    println!(
        "memory: RSS {:.1} MB after 100 decisions, {:.1} MB after {} ({:+.1}%)",
        rss_100 as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        100 + decisions,
        (rss_end as f64 - rss_100 as f64) / rss_100.max(1) as f64 * 100.0
    );
    println!(
        "Segment traffic: {misses} Profile API requests for {} cache-miss decisions; {hits_requests} for 1000 cache hits",
        100 + decisions
    );
    assert_eq!(
        misses,
        100 + decisions,
        "exactly one request per decision on a miss"
    );
    assert_eq!(hits_requests, 0, "no request on a hit");
    drop(function);

    // Wrap-up deliveries: one batch request each.
    let tracking = StandIn::always(Reply::json(200, json!({"success": true}))).await;
    let runtime = RuntimeApi::start().await;
    let ingest = Function::start(
        "wrap-up-ingest",
        &runtime,
        &[
            ("SEGMENT_WRITE_KEY", "bench".to_owned()),
            ("SEGMENT_TRACKING_API_URL", tracking.url()),
            ("ALLOW_UNAUTHENTICATED", "true".to_owned()),
        ],
    )
    .await;
    let batch = fixture("eventstreams/batch.json");
    let mut ingest_times = Vec::new();
    for _ in 0..1000 {
        let answer = runtime.invoke(batch.clone()).await;
        assert_eq!(answer.payload, json!({"accepted": true}));
        ingest_times.push(answer.elapsed);
    }
    let requests = tracking.received();
    report(
        "wrap-up-ingest end to end (4-event delivery, 2 sent)",
        ingest_times,
    );
    let largest = requests.iter().map(|r| r.body.len()).max().unwrap_or(0);
    println!(
        "Segment traffic: {} batch requests for 1000 deliveries, largest {largest} bytes",
        requests.len()
    );
    assert_eq!(requests.len(), 1000, "one batch request per delivery");
    assert!(largest < 500_000);
    drop(ingest);
}
