//! The local stack's rules follow their file: an edit shows in the next decision, and an
//! edit that does not compile leaves the rules in use.

mod common;

use std::time::Duration;

use common::{Http, TempDb, options, start};
use serde_json::Value;

fn rules(default: &str) -> String {
    format!(r#"{{"rules": [], "default": "{default}", "on_error": "agent"}}"#)
}

/// The transition for a customer the space does not know, once it is `expected` (the file
/// is looked at four times a second), or whatever it is after 5 s.
async fn transition_becomes(http: &Http, running: &sandbox::Running, expected: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let answer = http
            .function(running, "route-decision", &[("From", "+15555550199")])
            .await;
        last = answer.body["transition"].clone();
        if last == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_shows_in_the_next_decision_and_a_broken_one_changes_nothing() {
    let dir = TempDb::new("rules-reload");
    let Some(folder) = dir.0.parent() else {
        panic!("a temporary folder");
    };
    std::fs::create_dir_all(folder).expect("folder");
    let file = folder.join("rules.json");
    std::fs::write(&file, rules("bot")).expect("rules written");
    let running = start(sandbox::Options {
        function_env: vec![("ROUTING_RULES_FILE".into(), file.display().to_string())],
        ..options()
    })
    .await;
    let http = Http::new();
    assert_eq!(transition_becomes(&http, &running, "bot").await, "bot");

    std::fs::write(&file, rules("agent")).expect("rules edited");
    assert_eq!(transition_becomes(&http, &running, "agent").await, "agent");

    // A broken edit (and a rule that does not compile) leaves the last good set in use.
    std::fs::write(&file, "{\"rules\": [").expect("broken edit");
    tokio::time::sleep(Duration::from_millis(600)).await;
    std::fs::write(&file, r#"{"rules": [{"name": "x", "when": "traits.", "transition": "bot"}], "default": "bot", "on_error": "agent"}"#).expect("bad rule");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let answer = http
        .function(&running, "route-decision", &[("From", "+15555550199")])
        .await;
    assert_eq!(answer.body["transition"], "agent", "{}", answer.body);
    running.stop().await;
}
