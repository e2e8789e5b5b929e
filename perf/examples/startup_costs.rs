//! Where a cold start's time goes, step by step, in a fresh process:
//!   cargo run --release -p perf --example startup_costs
use std::time::Instant;

use studio_router::http_client::HttpClient;
use studio_router::rules::{DEFAULT_RULES, RuleSet};

fn main() {
    let t = Instant::now();
    studio_router::telemetry::init();
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
    let _ = rules.evaluate(&studio_router::rules::Facts {
        traits: traits.as_object().expect("object"),
        channel: None,
    });
    println!(
        "first evaluation          {:>8.3} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let http = HttpClient::new(std::time::Duration::from_secs(1));
    let _ = http.get().expect("client");
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
    drop(runtime);
}
