//! The sandbox with the trait store (`--trait-store`): dynalite started by the sandbox, its
//! computed traits fed to trait-sync as Engage would, and route-decision reading the table
//! first, as the console's decision list shows. Without dynalite installed the test says so
//! and passes, unless CI is set.

mod common;

use std::time::{Duration, Instant};

use common::{Http, options, start};
use sandbox::demo::DOCS_READER;
use sandbox::engage::TraitStoreOption;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(dynalite),
    ignore = "dynalite is not installed: cd tests/dynalite && npm ci"
)]
async fn decisions_read_the_computed_traits_the_sandbox_synced_to_the_table() {
    let dynalite = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/dynalite/node_modules/.bin/dynalite");
    if !dynalite.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "dynalite is not installed"
        );
        eprintln!("SKIPPED: dynalite is not installed (cd tests/dynalite && npm ci)");
        return;
    }
    let running = start(sandbox::Options {
        seed_demo: true,
        trait_store: Some(TraitStoreOption::Start),
        ..options()
    })
    .await;
    let http = Http::new();
    // Engage's part runs every second: within a few, the docs reader's computed traits are
    // in the table and her decision reads them there.
    let started = Instant::now();
    let body = loop {
        let answer = http
            .function(&running, "route-decision", &[("From", DOCS_READER)])
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        if answer.body["traits_from"].is_string() || started.elapsed() > Duration::from_secs(10) {
            break answer.body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let from = body["traits_from"].as_str().unwrap_or("none");
    assert!(from.starts_with("store"), "{body}");
    assert_eq!(body["rule"], "read-docs-recently", "{body}");
    // The console lists where each decision's traits came from.
    let listed = http.console(&running, "decisions?after=0").await;
    let decisions = listed.body["decisions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let last: Option<&Value> = decisions.last();
    assert_eq!(
        last.map(|d| d["traits_from"].clone()),
        Some(body["traits_from"].clone())
    );
    running.stop().await;
}
