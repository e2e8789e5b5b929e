//! Experiments (issue 31): a rules document's `experiment` decides a stable share of
//! customers, by a hash of its name and the identifier, in the real route-decision binary.

use std::collections::HashMap;

use e2e::{Reply, RuntimeApi, StandIn, TWILIO_TOKEN, signed_form_post, studio_function};
use serde_json::{Value, json};

const RULES: &str = r#"{"rules": [{"name": "vip", "when": "traits.vip == true", "transition": "agent"}],
    "default": "bot", "on_error": "agent",
    "experiment": {"name": "docs-first", "share": 0.2,
        "rules": [{"name": "read-docs", "when": "traits.docs_last_2_days > 0", "transition": "agent"}]}}"#;
const CUSTOMERS: usize = 2000;

fn phone(i: usize) -> String {
    format!("+1555{i:07}")
}

async fn arms(
    runtime: &RuntimeApi,
    customers: impl Iterator<Item = usize>,
) -> HashMap<usize, String> {
    let mut arms = HashMap::new();
    for i in customers {
        let body = runtime
            .invoke(signed_form_post(TWILIO_TOKEN, &[("From", &phone(i))]))
            .await
            .body();
        assert_eq!(body["experiment"], "docs-first", "{body}");
        let arm = body["arm"].as_str().unwrap_or_default().to_owned();
        // Each arm decided by its own rules: the treatment reads the docs rule.
        let expected = match arm.as_str() {
            "treatment" => ("agent", "read-docs"),
            "control" => ("bot", "default"),
            other => panic!("arm {other:?}: {body}"),
        };
        assert_eq!(
            (body["transition"].as_str(), body["rule"].as_str()),
            (Some(expected.0), Some(expected.1))
        );
        arms.insert(i, arm);
    }
    arms
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stable_share_of_customers_is_decided_by_the_experiments_rules() {
    let segment =
        StandIn::always(Reply::traits(json!({"vip": false, "docs_last_2_days": 2}))).await;
    let extra = [("ROUTING_RULES", RULES), ("PROFILE_CACHE_TTL_SECS", "0")];
    let (runtime, function) = studio_function("route-decision", &segment.url(), &extra).await;
    let first = arms(&runtime, 0..CUSTOMERS).await;
    let treated = first.values().filter(|a| *a == "treatment").count();
    let share = treated as f64 / CUSTOMERS as f64;
    assert!(
        (0.17..=0.23).contains(&share),
        "{treated} of {CUSTOMERS} in the treatment"
    );
    // One lookup a decision, asking for both arms' traits.
    let include = segment.received()[0]
        .query_param("include")
        .unwrap_or_default();
    assert_eq!(include, "docs_last_2_days,vip");
    // The same arm on every call...
    assert_eq!(arms(&runtime, 0..200).await, arms(&runtime, 0..200).await);
    let again = arms(&runtime, 0..200).await;
    assert!(again.iter().all(|(i, arm)| first[i] == *arm));
    // ...and in another process.
    let (other, _second) = studio_function("route-decision", &segment.url(), &extra).await;
    let elsewhere = arms(&other, 0..CUSTOMERS).await;
    assert_eq!(elsewhere, first);
    // Inline traits name no customer: the control.
    let inline = runtime
        .invoke(json!({"traits": {"docs_last_2_days": 3}}))
        .await
        .payload;
    assert_eq!(
        (&inline["arm"], &inline["rule"]),
        (&json!("control"), &json!("default")),
        "{inline}"
    );
    // The log line and the metrics carry the arm.
    let line = function.log_line("decision").await;
    assert!(
        line["arm"].is_string() && line["experiment"] == "docs-first",
        "{line}"
    );
    let documents = function.metrics(10).await;
    let with_arm: Vec<&serde_json::Map<String, Value>> =
        documents.iter().filter(|d| d.contains_key("arm")).collect();
    assert!(!with_arm.is_empty());
    let directives = with_arm[0]["_aws"]["CloudWatchMetrics"].to_string();
    assert!(directives.contains(r#"["function","arm"]"#), "{directives}");
}
