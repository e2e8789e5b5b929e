//! Shadow rules (issue 31): a candidate rule set judged beside the live one by the real
//! route-decision binary. It never changes an answer and never adds a lookup; its outcome
//! is in the log line, the metrics documents and, when asked, the explanation.

use e2e::{Reply, StandIn, TWILIO_TOKEN, signed_form_post, studio_function};
use serde_json::{Value, json};

const LIVE: &str = r#"{"rules": [{"name": "vip", "when": "traits.vip == true", "transition": "agent"}],
    "default": "bot", "on_error": "agent"}"#;
const SHADOW: &str = r#"{"rules": [{"name": "read-docs", "when": "traits.docs_last_2_days > 0", "transition": "agent"}],
    "default": "bot", "on_error": "bot"}"#;

/// Three customers: a VIP who reads no docs (live agent, shadow bot), a docs reader who is no
/// VIP (live bot, shadow agent), and one neither (both bot).
async fn segment() -> StandIn {
    StandIn::start(|request| {
        let traits = if request.path.contains("5555550101") {
            json!({"vip": true, "docs_last_2_days": 0})
        } else if request.path.contains("5555550102") {
            json!({"vip": false, "docs_last_2_days": 3})
        } else {
            json!({"vip": false, "docs_last_2_days": 0})
        };
        Reply::traits(traits)
    })
    .await
}

fn call(phone: &str, explain: bool) -> Value {
    let mut fields = vec![("From", phone)];
    if explain {
        fields.push(("explain", "true"));
    }
    signed_form_post(TWILIO_TOKEN, &fields)
}

const PHONES: [&str; 3] = ["+15555550101", "+15555550102", "+15555550103"];

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_set_is_judged_beside_the_live_one_and_never_acted_on() {
    let plain = segment().await;
    let (runtime, _function) =
        studio_function("route-decision", &plain.url(), &[("ROUTING_RULES", LIVE)]).await;
    let mut without = Vec::new();
    for phone in PHONES {
        without.push(runtime.invoke(call(phone, false)).await.body());
    }

    let shadowed = segment().await;
    let (runtime, function) = studio_function(
        "route-decision",
        &shadowed.url(),
        &[("ROUTING_RULES", LIVE), ("SHADOW_ROUTING_RULES", SHADOW)],
    )
    .await;
    for (phone, expected) in PHONES.iter().zip(&without) {
        let body = runtime.invoke(call(phone, false)).await.body();
        assert_eq!(&body, expected, "the shadow changed the answer");
    }
    // One lookup a decision, asking for both sets' traits.
    assert_eq!(shadowed.count(), 3);
    for request in shadowed.received() {
        let include = request.query_param("include").unwrap_or_default();
        let mut names: Vec<&str> = include.split(',').collect();
        names.sort_unstable();
        assert_eq!(names, ["docs_last_2_days", "vip"], "{include}");
    }
    // The metrics documents come after the decisions' log lines through the same pipe, which
    // the test reads behind the answers: once they are in, so are the lines.
    let documents = function.metrics(3).await;
    let lines = function.log_lines("decision");
    let pairs: Vec<(Value, Value, Value)> = lines
        .iter()
        .map(|l| {
            (
                l["transition"].clone(),
                l["shadow_transition"].clone(),
                l["shadow_rule"].clone(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            (json!("agent"), json!("bot"), json!("default")),
            (json!("bot"), json!("agent"), json!("read-docs")),
            (json!("bot"), json!("bot"), json!("default")),
        ]
    );
    let shadowing: Vec<&serde_json::Map<String, Value>> = documents
        .iter()
        .filter(|d| d.contains_key("shadow_transition"))
        .collect();
    assert_eq!(shadowing.len(), 3, "{documents:?}");
    let disagreements: u64 = shadowing
        .iter()
        .filter_map(|d| d["ShadowDisagreements"].as_u64())
        .sum();
    assert_eq!(disagreements, 2);
    let dimensions = &shadowing[0]["_aws"]["CloudWatchMetrics"];
    assert!(
        dimensions
            .to_string()
            .contains(r#"["function","transition","shadow_transition"]"#),
        "{dimensions}"
    );

    // Asked to explain, the answer shows what the shadow would have done.
    let explained = runtime.invoke(call(PHONES[0], true)).await.body();
    assert_eq!(
        explained["shadow"],
        json!({"transition": "bot", "rule": "default"})
    );
    assert_eq!(explained["transition"], "agent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_set_that_does_not_compile_changes_nothing() {
    let segment = segment().await;
    let broken = r#"{"rules": [{"name": "x", "when": "traits.vip ==", "transition": "agent"}], "default": "bot", "on_error": "bot"}"#;
    let (runtime, function) = studio_function(
        "route-decision",
        &segment.url(),
        &[("ROUTING_RULES", LIVE), ("SHADOW_ROUTING_RULES", broken)],
    )
    .await;
    let body = runtime.invoke(call(PHONES[0], true)).await.body();
    assert_eq!(
        (&body["transition"], &body["rule"]),
        (&json!("agent"), &json!("vip")),
        "{body}"
    );
    assert!(body.get("shadow").is_none(), "{body}");
    let warned = function
        .log_line("shadow rules do not compile; ignored")
        .await;
    assert_eq!(warned["source"], "SHADOW_ROUTING_RULES");
    let decision = function.log_line("decision").await;
    assert!(decision.get("shadow_transition").is_none(), "{decision}");
    let include = segment.received()[0]
        .query_param("include")
        .unwrap_or_default();
    assert_eq!(include, "vip");
}

/// An AppConfig Agent stand-in serving the shadow profile: version 1 is [`SHADOW`], version 2
/// does not compile.
async fn shadow_agent(current: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> StandIn {
    StandIn::start(move |request| {
        if request.path != "/applications/studio-router/environments/shadow/configurations/shadow-rules" {
            return Reply::json(404, json!({"message": "no such configuration"}));
        }
        let n = current.load(std::sync::atomic::Ordering::SeqCst);
        let body = if n == 1 {
            SHADOW
        } else {
            r#"{"rules": [{"name": "x", "when": "traits.vip ==", "transition": "agent"}], "default": "bot", "on_error": "bot"}"#
        };
        Reply::raw(200, body)
            .header("content-type", "application/json")
            .header("configuration-version", &n.to_string())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_set_from_appconfig_arrives_while_running_and_a_broken_version_keeps_the_last() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let segment = segment().await;
    let current = std::sync::Arc::new(AtomicUsize::new(1));
    let agent = shadow_agent(current.clone()).await;
    let port = agent.addr.port().to_string();
    let (runtime, function) = studio_function(
        "route-decision",
        &segment.url(),
        &[
            ("ROUTING_RULES", LIVE),
            (
                "SHADOW_ROUTING_RULES_APPCONFIG",
                "studio-router/shadow/shadow-rules",
            ),
            ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", &port),
            ("RULES_MAX_AGE_SECS", "1"),
        ],
    )
    .await;
    // No decision waits for the shadow: it shows once the background read has brought it.
    let mut explained = Value::Null;
    for _ in 0..50 {
        explained = runtime.invoke(call(PHONES[1], true)).await.body();
        if explained.get("shadow").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        explained["shadow"],
        json!({"transition": "agent", "rule": "read-docs"})
    );
    assert_eq!(explained["transition"], "bot", "the live rules decide");
    let last = segment.received().pop().expect("a lookup");
    let include = last.query_param("include").unwrap_or_default();
    assert_eq!(
        include, "docs_last_2_days,vip",
        "one lookup covers both sets"
    );

    // Version 2 does not compile: seen past the max age, refused once, version 1 stays.
    current.store(2, Ordering::SeqCst);
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        let _ = runtime.invoke(call(PHONES[2], false)).await;
    }
    let refused = function
        .log_line("shadow routing rules cannot be used; the rules in use stay")
        .await;
    assert_eq!(refused["version"], "2");
    let body = runtime.invoke(call(PHONES[1], true)).await.body();
    assert_eq!(body["shadow"]["rule"], "read-docs", "{body}");
    let updated = function.log_lines("shadow routing rules updated");
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0]["version"], "1");
    assert_eq!(
        function
            .log_lines("shadow routing rules cannot be used; the rules in use stay")
            .len(),
        1,
        "logged once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_feed_that_hangs_never_holds_a_decision() {
    let segment = segment().await;
    let hanging =
        StandIn::always(Reply::raw(200, SHADOW).after(std::time::Duration::from_secs(30))).await;
    let port = hanging.addr.port().to_string();
    let (runtime, function) = studio_function(
        "route-decision",
        &segment.url(),
        &[
            ("ROUTING_RULES", LIVE),
            ("SHADOW_ROUTING_RULES_APPCONFIG", "a/b/c"),
            ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", &port),
            ("DECISION_DEADLINE_MS", "500"),
        ],
    )
    .await;
    for phone in PHONES {
        let body = runtime.invoke(call(phone, false)).await.body();
        assert_eq!(body["fallback"], false, "{body}");
    }
    let _ = function.metrics(3).await;
    for line in function.log_lines("decision") {
        assert!(line.get("shadow_transition").is_none(), "{line}");
    }
}
