//! route-decision end to end: the real binary under a Lambda Runtime API on 127.0.0.1,
//! with a Profile API stand-in on 127.0.0.1.

use e2e::{
    Answered, Function, PROFILE_TOKEN, Reply, RuntimeApi, StandIn, TWILIO_TOKEN, basic_auth,
    fixture, http_event, signed_form_post, studio_function,
};
use serde_json::{Value, json};

const TOKEN: &str = TWILIO_TOKEN;
const PHONE: &str = "+15555550100";
const DEADLINE_MS: u64 = 600;

/// route-decision wired to a Profile API at `profile_api`, Twilio signatures on.
async fn route_decision(
    profile_api: &str,
    extra: &[(&'static str, &str)],
) -> (RuntimeApi, Function) {
    let deadline = DEADLINE_MS.to_string();
    let mut env = vec![("DECISION_DEADLINE_MS", deadline.as_str())];
    env.extend_from_slice(extra);
    studio_function("route-decision", profile_api, &env).await
}

/// What Studio sends: a signed form POST with the message's From.
fn studio_request(from: &str) -> Value {
    signed_form_post(
        TOKEN,
        &[("From", from), ("Body", "hello"), ("channel", "whatsapp")],
    )
}

fn assert_decision(
    answer: &Answered,
    transition: &str,
    rule: &str,
    fallback: bool,
    profile_found: bool,
) {
    assert_eq!(answer.status(), 200, "{:#?}", answer.payload);
    assert_eq!(
        answer.payload["headers"]["content-type"],
        "application/json"
    );
    let body = answer.body();
    assert_eq!(body["transition"], transition, "{body}");
    assert_eq!(body["rule"], rule, "{body}");
    assert_eq!(body["fallback"], fallback, "{body}");
    assert_eq!(body["profile_found"], profile_found, "{body}");
    assert!(body["attributes"].is_object(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_who_read_the_docs_goes_to_an_agent() {
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 3}))).await;
    let (runtime, function) = route_decision(&segment.url(), &[]).await;

    let answer = runtime
        .invoke(studio_request(&format!("whatsapp:{PHONE}")))
        .await;

    assert_decision(&answer, "agent", "read-docs-recently", false, true);
    // The request Segment received: encoded identifier, Basic auth with the token, include=.
    let requests = segment.received();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.path,
        "/v1/spaces/spa_test/collections/users/profiles/phone:%2B15555550100/traits"
    );
    assert_eq!(
        request.query_param("include").as_deref(),
        Some("docs_last_2_days")
    );
    assert_eq!(request.query_param("limit").as_deref(), Some("200"));
    assert_eq!(
        request.headers.get("authorization"),
        Some(&basic_auth(PROFILE_TOKEN, ""))
    );
    // One JSON log line per decision, with the customer masked.
    let line = function.log_line("decision").await;
    assert_eq!(line["customer"], "phone:+1******0100");
    assert_eq!(line["transition"], "agent");
    assert_eq!(line["lookup"], "found");
    assert_eq!(line["channel"], "whatsapp", "the channel the rules saw");
    assert!(line["latency_us"].as_u64().is_some(), "{line}");
    assert!(
        function
            .logs()
            .iter()
            .all(|l| !l.contains(PHONE) && !l.contains(PROFILE_TOKEN))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_traits_the_flow_needs_come_back_with_the_decision_in_one_request_never_logged() {
    let segment = StandIn::always(Reply::traits(json!({
        "docs_last_2_days": 3, "first_name": "Annabel", "email": "annabel@example.com", "plan": "gold"
    })))
    .await;
    let (runtime, function) = route_decision(
        &segment.url(),
        &[("RESPONSE_TRAITS", "first_name, email,nickname")],
    )
    .await;
    let answer = runtime.invoke(studio_request(PHONE)).await;
    assert_decision(&answer, "agent", "read-docs-recently", false, true);
    // Only those named, only those the profile holds.
    assert_eq!(
        answer.body()["traits"],
        json!({"first_name": "Annabel", "email": "annabel@example.com"})
    );
    // One request, asking for what the rules read and what the answer returns.
    let received = segment.received();
    assert_eq!(received.len(), 1);
    let include = received[0].query_param("include").unwrap_or_default();
    for name in ["docs_last_2_days", "first_name", "email", "nickname"] {
        assert!(include.split(',').any(|n| n == name), "include={include}");
    }
    let logs = function.logs().join("\n");
    assert!(
        !logs.contains("Annabel") && !logs.contains("annabel@"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn traits_that_would_pass_studios_64_kb_are_cut_and_the_answer_says_so() {
    let segment = StandIn::always(Reply::traits(json!({
        "docs_last_2_days": 3, "first_name": "Ann", "notes": "x".repeat(70_000)
    })))
    .await;
    let (runtime, _function) =
        route_decision(&segment.url(), &[("RESPONSE_TRAITS", "first_name,notes")]).await;
    let answer = runtime.invoke(studio_request(PHONE)).await;
    assert_decision(&answer, "agent", "read-docs-recently", false, true);
    let body = answer.body();
    assert_eq!(body["traits"], json!({"first_name": "Ann"}));
    assert_eq!(body["traits_truncated"], true);
    assert!(body.to_string().len() < 64_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_who_read_nothing_goes_to_the_bot() {
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 0}))).await;
    let (runtime, _function) = route_decision(&segment.url(), &[]).await;
    let answer = runtime.invoke(studio_request(PHONE)).await;
    assert_decision(&answer, "bot", "default", false, true);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_customer_goes_to_the_bot_without_a_fallback() {
    let segment = StandIn::always(Reply::profile_not_found()).await;
    let (runtime, _function) = route_decision(&segment.url(), &[]).await;
    let answer = runtime.invoke(studio_request(PHONE)).await;
    assert_decision(&answer, "bot", "default", false, false);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_signature_is_refused_without_saying_why() {
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 3}))).await;
    let (runtime, _function) = route_decision(&segment.url(), &[]).await;

    let forged = signed_form_post("not-the-token", &[("From", PHONE)]);
    let unsigned = http_event(
        "POST",
        "",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some("From=%2B15555550100"),
        false,
    );
    for event in [forged, unsigned] {
        let answer = runtime.invoke(event).await;
        assert_eq!(answer.status(), 401);
        assert_eq!(
            answer.body(),
            json!({"error": {"code": "unauthorized", "message": "the request is not authenticated"}})
        );
    }
    assert!(
        segment.received().is_empty(),
        "no lookup for an unauthenticated request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_studio_json_request_is_checked_through_body_sha256() {
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 1}))).await;
    let (runtime, _function) = route_decision(&segment.url(), &[]).await;
    let event = e2e::signed_json_post(TOKEN, "", &json!({"From": PHONE}).to_string());
    assert_decision(
        &runtime.invoke(event).await,
        "agent",
        "read-docs-recently",
        false,
        true,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_with_the_shared_secret_is_accepted() {
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 1}))).await;
    let (runtime, _function) =
        route_decision(&segment.url(), &[("PROXY_SHARED_SECRET", "proxy-secret")]).await;
    let bearer = http_event(
        "GET",
        "From=%2B15555550100",
        &[("authorization", "Bearer proxy-secret")],
        None,
        false,
    );
    assert_decision(
        &runtime.invoke(bearer).await,
        "agent",
        "read-docs-recently",
        false,
        true,
    );
    let basic = basic_auth("studio", "proxy-secret");
    let studio_basic = http_event(
        "GET",
        "phone=%2B15555550100",
        &[("authorization", &basic)],
        None,
        false,
    );
    assert_decision(
        &runtime.invoke(studio_basic).await,
        "agent",
        "read-docs-recently",
        false,
        true,
    );
    let wrong = http_event(
        "GET",
        "phone=%2B15555550100",
        &[("authorization", "Bearer nope")],
        None,
        false,
    );
    assert_eq!(runtime.invoke(wrong).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_ups_answer_warm_without_calling_segment() {
    let segment = StandIn::always(Reply::traits(json!({}))).await;
    let (runtime, _function) = route_decision(&segment.url(), &[]).await;
    for event in [
        fixture("aws/example-eventbridge-schedule.json"),
        json!({"warmup": true}),
    ] {
        let answer = runtime.invoke(event).await;
        assert_eq!(answer.payload, json!({"warm": true}));
    }
    assert!(segment.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_a_usable_identifier_is_a_400() {
    let segment = StandIn::always(Reply::traits(json!({}))).await;
    let (runtime, _function) = route_decision(&segment.url(), &[]).await;
    for (params, message) in [
        (vec![("Body", "hi")], "no usable identifier"),
        (
            vec![("From", "client:alice")],
            "From is neither a phone number in international format",
        ),
        (
            vec![("phone", "(555) 555-0100")],
            "not a phone number in international format",
        ),
    ] {
        let answer = runtime.invoke(signed_form_post(TOKEN, &params)).await;
        assert_eq!(answer.status(), 400, "{params:?}");
        let body = answer.body();
        assert_eq!(body["error"]["code"], "invalid_identifier");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{body}"
        );
    }
    assert!(segment.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_traits_are_decided_without_a_lookup_and_direct_invokes_get_bare_json() {
    let segment = StandIn::always(Reply::traits(json!({}))).await;
    let (runtime, _function) = route_decision(&segment.url(), &[]).await;
    let answer = runtime
        .invoke(json!({"traits": {"docs_last_2_days": 4}, "channel": "sms"}))
        .await;
    assert_eq!(
        answer.payload,
        json!({"transition": "agent", "rule": "read-docs-recently", "fallback": false, "profile_found": false, "attributes": {}})
    );
    let direct = runtime.invoke(json!({"From": PHONE})).await;
    assert_eq!(direct.payload["transition"], "bot");
    assert_eq!(
        segment.received().len(),
        1,
        "only the direct invoke with an identifier looked up"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_rules_set_attributes_for_flex() {
    let rules = json!({
        "rules": [
            {"name": "vip", "when": "traits.vip == true", "transition": "agent", "attributes": {"priority": "100"}},
            {"name": "known-agent", "when": "has(traits.last_known_service_agent)", "transition": "agent",
             "attributes": {"known_worker_sid": "traits.last_known_service_agent", "priority": "10"}}
        ],
        "default": "bot", "on_error": "agent"
    })
    .to_string();
    let segment = StandIn::always(Reply::traits(
        json!({"last_known_service_agent": "WK0123456789abcdef0123456789abcdef"}),
    ))
    .await;
    let (runtime, _function) = route_decision(&segment.url(), &[("ROUTING_RULES", &rules)]).await;
    let answer = runtime.invoke(studio_request(PHONE)).await;
    assert_decision(&answer, "agent", "known-agent", false, true);
    assert_eq!(
        answer.body()["attributes"],
        json!({"known_worker_sid": "WK0123456789abcdef0123456789abcdef", "priority": 10})
    );
    let include = segment.received()[0]
        .query_param("include")
        .unwrap_or_default();
    assert_eq!(include, "last_known_service_agent,vip");
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_and_bodies_out_of_contract_get_their_status() {
    let segment = StandIn::always(Reply::traits(json!({}))).await;
    let (runtime, _function) = route_decision(&segment.url(), &[]).await;
    let delete = runtime
        .invoke(http_event("DELETE", "", &[], None, false))
        .await;
    assert_eq!(
        (delete.status(), delete.body()["error"]["code"].clone()),
        (405, json!("method_not_allowed"))
    );
    let huge = "x".repeat(70 * 1024);
    let too_large = runtime
        .invoke(http_event("POST", "", &[], Some(&huge), false))
        .await;
    assert_eq!(
        (
            too_large.status(),
            too_large.body()["error"]["code"].clone()
        ),
        (413, json!("body_too_large"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misconfigured_function_answers_500_and_logs_which_variable() {
    let line = refused_configuration(&[("SEGMENT_PROFILE_API_TOKEN", "t".into())]).await;
    assert_eq!(
        line["error"],
        "SEGMENT_SPACE_ID is not set (it is required)"
    );
}

/// Starts route-decision with `env`, sees a request answered 500 `configuration_error`, and
/// returns the log line that says why.
async fn refused_configuration(env: &[(&str, String)]) -> Value {
    let runtime = RuntimeApi::start().await;
    let function = Function::start("route-decision", &runtime, env).await;
    let answer = runtime.invoke(studio_request(PHONE)).await;
    assert_eq!(answer.status(), 500);
    assert_eq!(answer.body()["error"]["code"], "configuration_error");
    function
        .log_line("configuration is invalid; every request will answer 500 until it is fixed")
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_rule_set_fails_at_start_naming_the_rule() {
    let runtime = RuntimeApi::start().await;
    let rules = r#"{"rules": [{"name": "vip", "when": "traits.vip ==", "transition": "agent"}], "default": "bot", "on_error": "agent"}"#;
    let env = [
        ("SEGMENT_SPACE_ID", "spa".to_owned()),
        ("SEGMENT_PROFILE_API_TOKEN", "t".to_owned()),
        ("ROUTING_RULES", rules.to_owned()),
    ];
    let function = Function::start("route-decision", &runtime, &env).await;
    let line = function
        .log_line("configuration is invalid; every request will answer 500 until it is fixed")
        .await;
    let error = line["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("routing rules (ROUTING_RULES): rule \"vip\": condition does not parse"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_read_through_the_parameters_and_secrets_extension() {
    let extension = StandIn::always(Reply::json(
        200,
        json!({"Name": "studio-router", "SecretString": "token-from-secrets-manager"}),
    ))
    .await;
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 2}))).await;
    let port = extension.addr.port().to_string();
    let runtime = RuntimeApi::start().await;
    let env = [
        ("SEGMENT_SPACE_ID", "spa_test".to_owned()),
        (
            "SEGMENT_PROFILE_API_TOKEN_SECRET_ID",
            "studio-router/profile-token".to_owned(),
        ),
        ("SEGMENT_PROFILE_API_URL", segment.url()),
        ("ALLOW_UNAUTHENTICATED", "true".to_owned()),
        ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port),
        ("AWS_SESSION_TOKEN", "session-token".to_owned()),
    ];
    let function = Function::start("route-decision", &runtime, &env).await;
    let answer = runtime
        .invoke(http_event("GET", "From=%2B15555550100", &[], None, false))
        .await;
    assert_decision(&answer, "agent", "read-docs-recently", false, true);
    // Open to any caller: said once at start, naming the function.
    let open: Vec<String> = function
        .logs()
        .into_iter()
        .filter(|l| l.contains("ALLOW_UNAUTHENTICATED is set"))
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(
        open[0].contains(r#""function":"route-decision""#),
        "{}",
        open[0]
    );
    let fetched = extension.received();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].path, "/secretsmanager/get");
    assert_eq!(
        fetched[0].query_param("secretId").as_deref(),
        Some("studio-router/profile-token")
    );
    assert_eq!(
        fetched[0]
            .headers
            .get("x-aws-parameters-secrets-token")
            .map(String::as_str),
        Some("session-token")
    );
    assert_eq!(
        segment.received()[0].headers.get("authorization"),
        Some(&basic_auth("token-from-secrets-manager", ""))
    );
}

/// A directory of this test's own, removed when dropped, even when an assertion fails.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn check_rules_validates_a_rules_file_offline() {
    let guard = TempDir::new("check-rules");
    let dir = &guard.0;
    let good = dir.join("good.json");
    std::fs::write(&good, r#"{"rules": [{"name": "vip", "when": "traits.vip", "transition": "agent"}], "default": "bot", "on_error": "agent"}"#)
        .expect("write");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"rules": [{"name": "churn", "when": "traits.churn >", "transition": "agent"}], "default": "bot", "on_error": "agent"}"#)
        .expect("write");

    let ok = std::process::Command::new(e2e::binary("route-decision"))
        .arg("--check-rules")
        .arg(&good)
        .output()
        .expect("runs");
    assert!(ok.status.success());
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        stdout.contains("ok, 1 rule(s): vip")
            && stdout.contains("traits requested from Segment: vip"),
        "{stdout}"
    );

    let failed = std::process::Command::new(e2e::binary("route-decision"))
        .arg("--check-rules")
        .arg(&bad)
        .output()
        .expect("runs");
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("rule \"churn\": condition does not parse"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_that_answer_a_transition_they_do_not_declare_stop_the_start_by_name() {
    let mistyped = r#"{"transitions": ["agent", "bot"],
        "rules": [{"name": "vip", "when": "traits.vip == true", "transition": "agnet"}],
        "default": "bot", "on_error": "agent"}"#;
    let line = refused_configuration(&[
        ("SEGMENT_SPACE_ID", "spa_test".into()),
        ("SEGMENT_PROFILE_API_TOKEN", "t".into()),
        ("ROUTING_RULES", mistyped.into()),
    ])
    .await;
    let error = line["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("rule \"vip\"")
            && error.contains("\"agnet\" is not one of the declared transitions"),
        "{line}"
    );
}
