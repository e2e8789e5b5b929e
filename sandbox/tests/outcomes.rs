//! The console's Outcomes (issue 31): a bot decision, then a wrap-up for the same customer
//! within the window, counted as one escalation under that rule.

mod common;

use common::{Http, options, start};
use sandbox::demo::NEWCOMER;
use serde_json::{Value, json};

/// A sandbox with the demo customers and `function_env`, and the newcomer's decision there
/// (the sandbox's rules send them to the bot).
async fn newcomer_decided(function_env: Vec<(String, String)>) -> (sandbox::Running, Http, Value) {
    let running = start(sandbox::Options {
        seed_demo: true,
        function_env,
        ..options()
    })
    .await;
    let http = Http::new();
    let decided = http
        .function(&running, "route-decision", &[("From", NEWCOMER)])
        .await;
    assert_eq!(decided.body["transition"], "bot", "{}", decided.body);
    (running, http, decided.body)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_decision_then_a_wrap_up_is_one_escalation_under_that_rule() {
    let (running, http, decided) = newcomer_decided(Vec::new()).await;
    let rule = decided["rule"].as_str().unwrap_or_default().to_owned();
    let outcome = |body: &Value| -> Value {
        body["outcomes"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["rule"] == rule.as_str()).cloned())
            .unwrap_or(Value::Null)
    };
    let before = http.console(&running, "outcomes").await;
    assert_eq!(before.status, 200, "{}", before.body);
    let escalations_before = outcome(&before.body)["escalations"].as_u64().unwrap_or(0);

    let list = http.console(&running, "customers?reveal=true").await.body;
    let profile = list["customers"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|c| c["identifiers"].to_string().contains(&NEWCOMER[1..]))
                .and_then(|c| c["profile"].as_str().map(str::to_owned))
        })
        .expect("the newcomer's profile");
    let wrap_up = http
        .console_post(
            &running,
            "try/wrap-up",
            &json!({"profile": profile, "channel": "sms", "topic": "billing", "sentiment": "negative"}),
        )
        .await;
    assert_eq!(wrap_up.status, 200, "{}", wrap_up.body);

    let after = http.console(&running, "outcomes").await.body;
    let row = outcome(&after);
    assert_eq!(after["escalation_window_secs"], 3600);
    assert_eq!(
        row["escalations"].as_u64(),
        Some(escalations_before + 1),
        "{after}"
    );
    assert_eq!(row["arm"], "none");
    assert!(row["bot_routed"].as_u64().unwrap_or(0) >= 1, "{row}");
    assert_eq!(row["sentiment"]["negative"], 1, "{row}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_sets_disagreements_are_counted_by_move_with_masked_examples() {
    let everyone_to_agents = r#"{"rules": [], "default": "agent", "on_error": "agent"}"#;
    let env = vec![("SHADOW_ROUTING_RULES".into(), everyone_to_agents.into())];
    // The shadow never changes the answer: still the bot, and no shadow in it.
    let (running, http, decided) = newcomer_decided(env).await;
    assert!(decided.get("shadow").is_none(), "{decided}");

    let body = http.console(&running, "outcomes").await.body;
    let shadow = &body["shadow"];
    assert_eq!(shadow["decisions"], 1, "{body}");
    assert_eq!(shadow["disagreements"], 1, "{body}");
    assert_eq!(shadow["moves"], json!({"bot -> agent": 1}));
    let example = &shadow["examples"][0];
    assert_eq!(
        (
            &example["transition"],
            &example["shadow_transition"],
            &example["shadow_rule"]
        ),
        (&json!("bot"), &json!("agent"), &json!("default"))
    );
    let customer = example["customer"].as_str().unwrap_or_default();
    assert!(customer.contains("******"), "masked: {customer}");
    assert!(
        !body.to_string().contains(&NEWCOMER[2..]),
        "no full number: {body}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_shadow_set_outcomes_have_no_shadow_section() {
    let running = start(options()).await;
    let body = Http::new().console(&running, "outcomes").await.body;
    assert_eq!(body["shadow"], Value::Null, "{body}");
    running.stop().await;
}
