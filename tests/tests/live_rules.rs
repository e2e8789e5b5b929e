//! Rules that change without a deployment: route-decision reading its rules from an AppConfig
//! Agent extension stand-in on 127.0.0.1 that serves version 1, then 2, then an invalid 3.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e::{Reply, RuntimeApi, StandIn, TWILIO_TOKEN, signed_form_post, studio_function};
use serde_json::{Value, json};

/// Each version's rules: everyone to the bot (1), everyone to an agent (2), and one that does
/// not compile (3).
fn version(n: usize) -> &'static str {
    match n {
        1 => r#"{"rules": [], "default": "bot", "on_error": "agent"}"#,
        2 => {
            r#"{"rules": [{"name": "everyone-to-agents", "when": "true", "transition": "agent"}], "default": "bot", "on_error": "agent"}"#
        }
        _ => {
            r#"{"rules": [{"name": "broken", "when": "traits.", "transition": "bot"}], "default": "bot", "on_error": "agent"}"#
        }
    }
}

/// The AppConfig Agent as the extension serves a freeform profile: the content as it was
/// stored, its version in `Configuration-Version`.
async fn appconfig_agent(current: Arc<AtomicUsize>) -> StandIn {
    StandIn::start(move |request| {
        if request.path
            != "/applications/studio-router/environments/prod/configurations/routing-rules"
        {
            return Reply::json(404, json!({"message": "no such configuration"}));
        }
        let n = current.load(Ordering::SeqCst);
        Reply::raw(200, version(n))
            .header("content-type", "application/json")
            .header("configuration-version", &n.to_string())
    })
    .await
}

/// A decision on inline traits: the rules alone decide, no Profile API is asked.
fn decision_request() -> Value {
    signed_form_post(TWILIO_TOKEN, &[("From", "+15555550100"), ("traits", "{}")])
}

async fn transition(runtime: &RuntimeApi) -> Value {
    runtime.invoke(decision_request()).await.body()["transition"].clone()
}

/// Decides until the transition is `expected`, for at most 5 s.
async fn transition_becomes(runtime: &RuntimeApi, expected: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..50 {
        last = transition(runtime).await;
        if last == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_follow_version_1_then_2_and_stay_on_2_when_3_does_not_compile() {
    let current = Arc::new(AtomicUsize::new(1));
    let agent = appconfig_agent(current.clone()).await;
    let port = agent.addr.port().to_string();
    let unused_profile_api = "http://127.0.0.1:9";
    let (runtime, function) = studio_function(
        "route-decision",
        unused_profile_api,
        &[
            (
                "ROUTING_RULES_APPCONFIG",
                "studio-router/prod/routing-rules",
            ),
            ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", &port),
            ("RULES_MAX_AGE_SECS", "1"),
        ],
    )
    .await;

    // The first decision waits for version 1.
    assert_eq!(transition(&runtime).await, "bot");

    current.store(2, Ordering::SeqCst);
    assert_eq!(transition_becomes(&runtime, "agent").await, "agent");

    current.store(3, Ordering::SeqCst);
    // Past the max age twice over, the refresh has seen version 3: decisions stay on 2.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let _ = transition(&runtime).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..5 {
        assert_eq!(transition(&runtime).await, "agent");
    }
    let refused = function.log_lines("routing rules cannot be used; the rules in use stay");
    assert_eq!(refused.len(), 1, "logged once: {refused:#?}");
    assert_eq!(refused[0]["version"], "3");
    assert!(
        refused[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("broken")),
        "{}",
        refused[0]
    );
    let updates: Vec<Value> = function
        .log_lines("routing rules updated")
        .iter()
        .map(|line| line["version"].clone())
        .collect();
    assert_eq!(updates, [json!("1"), json!("2")]);
    // And counted: two rule sets applied, one refused (the refused one has an alarm).
    // The log lines and the documents come through one pipe that the test reads behind the
    // answers: count them once both have caught up.
    let mut decisions = function.log_lines("decision").len();
    let mut documents = function.metrics(decisions).await;
    for _ in 0..100 {
        if documents.len() == decisions {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        decisions = function.log_lines("decision").len();
        documents = function.metrics(decisions).await;
    }
    assert_eq!(
        documents.len(),
        decisions,
        "one metrics document per decision"
    );
    let total = |name: &str| -> u64 {
        documents
            .iter()
            .filter_map(|document| document.get(name).and_then(Value::as_u64))
            .sum()
    };
    assert_eq!((total("RulesUpdated"), total("RulesRejected")), (2, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_extension_the_functions_own_rules_decide() {
    let unused_profile_api = "http://127.0.0.1:9";
    let closed = e2e::refused_port().await.to_string();
    let (runtime, function) = studio_function(
        "route-decision",
        unused_profile_api,
        &[
            (
                "ROUTING_RULES_APPCONFIG",
                "studio-router/prod/routing-rules",
            ),
            ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", &closed),
            (
                "ROUTING_RULES",
                r#"{"rules": [], "default": "agent", "on_error": "agent"}"#,
            ),
        ],
    )
    .await;
    assert_eq!(transition(&runtime).await, "agent");
    let warning = function
        .log_line("routing rules could not be read; the rules in use stay")
        .await;
    assert!(
        warning["problem"]
            .as_str()
            .is_some_and(|p| p.contains("is its layer attached")),
        "{warning}"
    );
}

/// What AppConfig sends its Lambda validator.
fn validation_event(content: &str, version: &str) -> Value {
    use base64::Engine as _;
    json!({
        "applicationId": "abc1234",
        "configurationProfileId": "ur8hx2f",
        "configurationVersion": version,
        "content": base64::engine::general_purpose::STANDARD.encode(content),
        "uri": "hosted"
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn route_decision_is_appconfigs_validator_with_the_same_compiler() {
    let (runtime, function) = studio_function("route-decision", "http://127.0.0.1:9", &[]).await;

    let good = runtime.invoke(validation_event(version(2), "2")).await;
    assert_eq!(good.payload["valid"], true, "{}", good.payload);
    assert_eq!(good.payload["summary"], "1 rules: everyone-to-agents");

    // A function error is how a validator says no: the Runtime API gets /error.
    let bad = runtime.invoke(validation_event(version(3), "3")).await;
    let message = bad.payload["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("rule \"broken\""), "{}", bad.payload);
    let refused = function
        .log_line("configuration refused for AppConfig")
        .await;
    assert_eq!(refused["version"], "3");

    // A version that declares its transitions and answers another is refused the same way.
    let mistyped =
        r#"{"transitions": ["agent", "bot"], "rules": [], "default": "bto", "on_error": "agent"}"#;
    let bad = runtime.invoke(validation_event(mistyped, "4")).await;
    let message = bad.payload["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"bto\" is not one of the declared transitions"),
        "{}",
        bad.payload
    );

    let not_base64 = runtime
        .invoke(json!({"applicationId": "a", "configurationProfileId": "p", "content": "%%%"}))
        .await;
    assert!(
        not_base64.payload["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("base64")),
        "{}",
        not_base64.payload
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_function_refuses_to_validate_rather_than_pass_everything() {
    let (runtime, _function) = studio_function("profile-lookup", "http://127.0.0.1:9", &[]).await;
    let answer = runtime.invoke(validation_event(version(2), "2")).await;
    assert!(
        answer.payload["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("point the AppConfig validator at route-decision")),
        "{}",
        answer.payload
    );
}
