//! Where a cold start's time goes, step by step, in a fresh process:
//!   cargo run --release -p perf --example startup_costs
use std::time::Instant;

use studio_router::adapters::http_client::HttpClient;
use studio_router::domain::rules::{DEFAULT_RULES, RuleSet};

fn main() {
    let t = Instant::now();
    studio_router::adapters::config::runtime::start_logging(
        &studio_router::adapters::config::ProcessEnv,
    );
    println!(
        "telemetry init            {:>8.3} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let rules = RuleSet::compile(DEFAULT_RULES).expect("rules");
    println!(
        "rules compile (first)     {:>8.3} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let _again = RuleSet::compile(DEFAULT_RULES).expect("rules");
    println!(
        "rules compile (second)    {:>8.3} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let traits = serde_json::json!({"docs_last_2_days": 1});
    let _ = rules.evaluate(&studio_router::domain::rules::Facts {
        traits: traits.as_object().expect("object"),
        channel: None,
    });
    println!(
        "first evaluation          {:>8.3} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let http = HttpClient::new(std::time::Duration::from_secs(1));
    let _ = http.client().expect("client");
    println!(
        "https client build        {:>8.3} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "tokio runtime             {:>8.3} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    // The first request of a process against later ones: what the first lookup pays for
    // code and connection setup, against a loopback Profile API stand-in.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let stand_in = server.block_on(e2e::StandIn::always(e2e::Reply::traits(
        serde_json::json!({"docs_last_2_days": 3}),
    )));
    let url = format!("{}/v1/x", stand_in.url());
    let client = http.client().expect("client");
    for label in ["first request", "second request", "third request"] {
        let t = Instant::now();
        runtime.block_on(async {
            let response = client.get(&url).send().await.expect("sent");
            let _ = response.bytes().await.expect("body");
        });
        println!("{label:<26}{:>8.3} ms", t.elapsed().as_secs_f64() * 1000.0);
    }
    drop(runtime);
}
