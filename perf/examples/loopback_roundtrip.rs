//! Round trips of the functions' HTTP client to a loopback server, to see what the HTTP layer
//! costs on its own:  cargo run --release -p perf --example loopback_roundtrip
use std::time::{Duration, Instant};

use e2e::{Reply, StandIn};
use serde_json::json;
use studio_router::adapters::http_client::HttpClient;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let stand_in = server.block_on(StandIn::always(Reply::traits(
        json!({"docs_last_2_days": 3}),
    )));
    let url = format!("{}/v1/x", stand_in.url());
    let http = HttpClient::new(Duration::from_secs(1));
    let client = http.client().expect("client");
    let mut times = Vec::new();
    runtime.block_on(async {
        for _ in 0..3000 {
            let started = Instant::now();
            let response = client
                .get(&url)
                .timeout(Duration::from_millis(1500))
                .send()
                .await
                .expect("sent");
            let _ = response.bytes().await.expect("body");
            times.push(started.elapsed());
        }
    });
    times.sort();
    println!(
        "p50 {:?}  p99 {:?}",
        times[times.len() / 2],
        times[times.len() * 99 / 100]
    );
}
