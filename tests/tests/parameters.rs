//! What route-decision reads from Parameter Store while it runs, through a Parameters and
//! Secrets extension stand-in that, like the real one, serves nothing during INIT and caches
//! each parameter for its TTL: the emergency override (everyone to one transition until it is
//! lifted) and, where an operator prefers it to AppConfig, the routing rules themselves.

use std::time::Duration;

use e2e::{
    Env, ExtensionStart, Function, Reply, RuntimeApi, SecretsExtension, StandIn, TWILIO_TOKEN,
    signed_form_post, start_with_secrets,
};
use serde_json::{Value, json};

const OVERRIDE: &str = "/studio-router/routing-override";
const RULES: &str = "/studio-router/routing-rules";
/// The extension's cache in these tests (its default is 300 s; the template sets 5).
const CACHE: Duration = Duration::from_millis(300);

async fn route_decision(
    profile_api: &str,
    extra: &[(&'static str, &str)],
) -> (RuntimeApi, SecretsExtension, Function) {
    let runtime = RuntimeApi::start().await;
    let extension = SecretsExtension::with_parameter_cache(
        ExtensionStart::ReadyOnlyDuringInvoke,
        runtime.invoking(),
        &[],
        CACHE,
    )
    .await;
    let env = Env::studio(profile_api).with(extra);
    let function = start_with_secrets("route-decision", &runtime, &extension, env).await;
    (runtime, extension, function)
}

async fn decide(runtime: &RuntimeApi) -> Value {
    runtime
        .invoke(signed_form_post(TWILIO_TOKEN, &[("From", "+15555550100")]))
        .await
        .body()
}

/// Decides until `rule` decides, for at most 5 s; the last decision.
async fn decided_by(runtime: &RuntimeApi, rule: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..50 {
        last = decide(runtime).await;
        if last["rule"] == rule {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread")]
async fn the_override_sends_everyone_to_one_transition_without_asking_segment_until_lifted() {
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 0}))).await;
    let (runtime, extension, function) = route_decision(
        &segment.url(),
        &[
            ("ROUTING_OVERRIDE_PARAMETER", OVERRIDE),
            ("OVERRIDE_MAX_AGE_SECS", "1"),
        ],
    )
    .await;
    extension.put_parameter(OVERRIDE, "off");
    let normal = decide(&runtime).await;
    assert_eq!(
        (&normal["transition"], &normal["rule"]),
        (&json!("bot"), &json!("default"))
    );
    assert_eq!(segment.count(), 1);

    // `aws ssm put-parameter --name ... --value agent --overwrite`
    extension.put_parameter(OVERRIDE, "agent");
    let overridden = decided_by(&runtime, "emergency-override").await;
    assert_eq!(
        (&overridden["transition"], &overridden["fallback"]),
        (&json!("agent"), &json!(false)),
        "{overridden}"
    );
    let asked = segment.count();
    for _ in 0..3 {
        assert_eq!(decide(&runtime).await["transition"], "agent");
    }
    assert_eq!(segment.count(), asked, "nothing looked up while it is on");
    let on = function.log_lines(
        "emergency override on: every decision goes to this transition until it is lifted",
    );
    assert_eq!(on.len(), 1, "{on:#?}");
    assert_eq!(on[0]["transition"], "agent");

    extension.put_parameter(OVERRIDE, "off");
    let lifted = decided_by(&runtime, "default").await;
    assert_eq!(lifted["transition"], "bot", "{lifted}");
    // A customer the cache does not hold: looked up again.
    let other = runtime
        .invoke(signed_form_post(TWILIO_TOKEN, &[("From", "+15555550101")]))
        .await
        .body();
    assert_eq!(other["profile_found"], true, "{other}");
    assert!(segment.count() > asked, "the rules look customers up again");
    assert_eq!(
        function
            .log_lines("emergency override lifted: the rules decide again")
            .len(),
        1
    );

    // The decisions' metrics carry the override as their rule.
    let decisions = function.log_lines("decision").len();
    let documents = function.metrics(decisions).await;
    assert!(
        documents
            .iter()
            .any(|d| d["rule"] == "emergency-override" && d["transition"] == "agent")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_override_to_a_transition_the_rules_do_not_name_is_ignored_and_logged_once() {
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 0}))).await;
    let (runtime, extension, function) =
        route_decision(&segment.url(), &[("ROUTING_OVERRIDE_PARAMETER", OVERRIDE)]).await;
    // A typo: Studio's Split has no `agnet` branch, so the rules keep deciding.
    extension.put_parameter(OVERRIDE, "agnet");
    for _ in 0..3 {
        let decision = decide(&runtime).await;
        assert_eq!(
            (&decision["transition"], &decision["rule"]),
            (&json!("bot"), &json!("default"))
        );
    }
    let ignored =
        function.log_lines("emergency override ignored: the rules name no such transition");
    assert_eq!(ignored.len(), 1, "{ignored:#?}");
    assert_eq!(ignored[0]["known"], "agent, bot");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_override_parameter_that_is_missing_leaves_the_rules_deciding() {
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 2}))).await;
    let (runtime, _extension, function) =
        route_decision(&segment.url(), &[("ROUTING_OVERRIDE_PARAMETER", OVERRIDE)]).await;
    assert_eq!(decide(&runtime).await["rule"], "read-docs-recently");
    let line = function
        .log_line("emergency override could not be read; it stays as it was")
        .await;
    assert!(
        line["problem"]
            .as_str()
            .is_some_and(|p| p.contains("HTTP 400")),
        "{line}"
    );
}

/// Each version's rules: everyone to the bot (1), everyone to an agent (2), one that does not
/// compile (3).
const VERSIONS: [&str; 3] = [
    r#"{"rules": [], "default": "bot", "on_error": "agent"}"#,
    r#"{"rules": [{"name": "everyone-to-agents", "when": "true", "transition": "agent"}], "default": "bot", "on_error": "agent"}"#,
    r#"{"rules": [{"name": "broken", "when": "traits.", "transition": "bot"}], "default": "bot", "on_error": "agent"}"#,
];

#[tokio::test(flavor = "multi_thread")]
async fn rules_from_a_parameter_follow_version_1_then_2_and_stay_on_2_when_3_does_not_compile() {
    let unused_profile_api = "http://127.0.0.1:9";
    let (runtime, extension, function) = route_decision(
        unused_profile_api,
        &[
            ("ROUTING_RULES_PARAMETER", RULES),
            ("RULES_MAX_AGE_SECS", "1"),
        ],
    )
    .await;
    extension.put_parameter(RULES, VERSIONS[0]);
    assert_eq!(
        decide(&runtime).await["transition"],
        "bot",
        "the first decision waits for version 1"
    );

    extension.put_parameter(RULES, VERSIONS[1]);
    assert_eq!(
        decided_by(&runtime, "everyone-to-agents").await["transition"],
        "agent"
    );

    extension.put_parameter(RULES, VERSIONS[2]);
    // Past the max age and the extension's cache twice over: version 3 has been read.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let _ = decide(&runtime).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        assert_eq!(decide(&runtime).await["rule"], "everyone-to-agents");
    }
    let refused = function.log_lines("routing rules cannot be used; the rules in use stay");
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0]["version"], "3");
    let updates: Vec<Value> = function
        .log_lines("routing rules updated")
        .iter()
        .map(|line| line["version"].clone())
        .collect();
    assert_eq!(updates, [json!("1"), json!("2")]);
}
