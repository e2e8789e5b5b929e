//! The console's Outcomes (issue 31): a bot decision, then a wrap-up for the same customer
//! within the window, counted as one escalation under that rule.

mod common;

use common::{Http, options, start};
use sandbox::demo::NEWCOMER;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_decision_then_a_wrap_up_is_one_escalation_under_that_rule() {
    let running = start(sandbox::Options {
        seed_demo: true,
        ..options()
    })
    .await;
    let http = Http::new();
    let decided = http
        .function(&running, "route-decision", &[("From", NEWCOMER)])
        .await;
    assert_eq!(decided.body["transition"], "bot", "{}", decided.body);
    let rule = decided.body["rule"].as_str().unwrap_or_default().to_owned();
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
