//! What a real deployment does that a kind local stack would not: a secrets extension that is
//! not serving during INIT and sometimes fails, a caller that sends Basic credentials only
//! after a 401 challenge, signatures made by Twilio's own validator, and Event Streams'
//! 5-second limit. The real binaries under a Runtime API on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use e2e::{
    Env, ExtensionStart, Function, FunctionUrl, PROFILE_TOKEN, Reply, RuntimeApi, SECRETS,
    SecretsExtension, StandIn, TWILIO_TOKEN, WRITE_KEY, basic_auth, event_streams_delivery,
    fixture, function_with_secrets, http_event, secrets_extension, signed_form_post,
    start_with_secrets, taskrouter_callback, wrap_up_function,
};
use serde_json::{Value, json};

const PHONE: &str = "+15555550100";
/// After a failed fetch none starts for a second: past it, the next invocation tries again.
const PAST_THE_BACK_OFF: Duration = Duration::from_millis(1100);

fn studio_request() -> Value {
    signed_form_post(TWILIO_TOKEN, &[("From", PHONE), ("Body", "hello")])
}

/// wrap-up-ingest's environment with its write key as a Secrets Manager id.
fn wrap_up_env_with_secret_id(segment: &StandIn) -> Env {
    Env::wrap_up(&segment.url())
        .unset("SEGMENT_WRITE_KEY")
        .set("SEGMENT_WRITE_KEY_SECRET_ID", "studio-router/write-key")
}

/// route-decision with [`Env::studio_with_secret_ids`] and `extra` on top, its extension
/// starting as `start`.
async fn route_decision_with_secrets(
    start: ExtensionStart,
    segment: &StandIn,
    extra: &[(&'static str, &str)],
) -> (RuntimeApi, SecretsExtension, Function) {
    let env = Env::studio_with_secret_ids(&segment.url()).with(extra);
    function_with_secrets("route-decision", start, &SECRETS, env).await
}

fn assert_found_decision(body: &Value) {
    assert_eq!(
        (
            &body["transition"],
            &body["rule"],
            &body["fallback"],
            &body["profile_found"]
        ),
        (
            &json!("agent"),
            &json!("read-docs-recently"),
            &json!(false),
            &json!(true)
        ),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_fetched_during_invoke_never_during_init() {
    // GIVEN an extension that answers 400 "not ready" until the function asks for its first
    // event, and a cold start with the event already waiting
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 2}))).await;
    let (runtime, extension) =
        secrets_extension(ExtensionStart::ReadyOnlyDuringInvoke, &SECRETS).await;
    let first = runtime.queue(studio_request());
    let env = Env::studio_with_secret_ids(&segment.url());
    let _function = start_with_secrets("route-decision", &runtime, &extension, env).await;
    // THEN the very first request is authenticated and decided on the real profile
    let answer = first.answer().await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("null")).unwrap();
    assert_found_decision(&body);
    // AND each secret was fetched once, with the session token the extension requires
    let fetched = extension.received();
    let mut ids: Vec<String> = fetched
        .iter()
        .map(|r| r.query_param("secretId").unwrap_or_default())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["studio-router/auth-token", "studio-router/profile-token"]
    );
    assert!(fetched.iter().all(|r| {
        r.path == "/secretsmanager/get"
            && r.headers
                .get("x-aws-parameters-secrets-token")
                .map(String::as_str)
                == Some("session-token")
    }));
    assert_eq!(
        segment.received()[0].headers.get("authorization"),
        Some(&basic_auth(PROFILE_TOKEN, ""))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrap_up_ingest_reads_its_write_key_during_invoke() {
    let segment = StandIn::always(Reply::json(200, json!({"success": true}))).await;
    let (runtime, extension) =
        secrets_extension(ExtensionStart::ReadyOnlyDuringInvoke, &SECRETS).await;
    let first = runtime.queue(taskrouter_callback("voice-inbound-reservation-wrapup"));
    let env = wrap_up_env_with_secret_id(&segment);
    let _function = start_with_secrets("wrap-up-ingest", &runtime, &extension, env).await;
    assert_eq!(first.answer().await["statusCode"], 204);
    assert_eq!(
        segment.received()[0].headers.get("authorization"),
        Some(&basic_auth(WRITE_KEY, ""))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_fetch_fails_only_that_invocation() {
    // The Profile API token: the decision falls back, as when Segment is down...
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 2}))).await;
    let (runtime, _extension, _function) = route_decision_with_secrets(
        ExtensionStart::FailsOnce,
        &segment,
        &[("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)],
    )
    .await;
    let first = runtime.invoke(studio_request()).await;
    assert_eq!(first.status(), 200);
    let body = first.body();
    assert_eq!(
        (&body["transition"], &body["rule"], &body["fallback"]),
        (&json!("agent"), &json!("on_error"), &json!(true)),
        "{body}"
    );
    assert!(segment.received().is_empty());
    // ...and the next request past the back-off gets its real decision.
    tokio::time::sleep(PAST_THE_BACK_OFF).await;
    assert_found_decision(&runtime.invoke(studio_request()).await.body());

    // The caller's secret: 503 (Studio takes its failed branch), then accepted.
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 2}))).await;
    let (runtime, _extension, _function) = route_decision_with_secrets(
        ExtensionStart::FailsOnce,
        &segment,
        &[
            ("SEGMENT_PROFILE_API_TOKEN", PROFILE_TOKEN),
            (
                "PROXY_SHARED_SECRET_SECRET_ID",
                "studio-router/proxy-secret",
            ),
        ],
    )
    .await;
    let bearer = || {
        http_event(
            "GET",
            "From=%2B15555550100",
            &[("authorization", "Bearer proxy-secret")],
            None,
            false,
        )
    };
    let first = runtime.invoke(bearer()).await;
    assert_eq!(first.status(), 503, "{:?}", first.payload);
    assert_eq!(first.body()["error"]["code"], "secrets_unavailable");
    tokio::time::sleep(PAST_THE_BACK_OFF).await;
    assert_found_decision(&runtime.invoke(bearer()).await.body());
}

#[tokio::test(flavor = "multi_thread")]
async fn wrap_up_ingest_answers_503_until_its_write_key_can_be_read() {
    let segment = StandIn::always(Reply::json(200, json!({"success": true}))).await;
    let env = wrap_up_env_with_secret_id(&segment);
    let (runtime, _extension, _function) =
        function_with_secrets("wrap-up-ingest", ExtensionStart::FailsOnce, &SECRETS, env).await;
    let callback = || taskrouter_callback("voice-inbound-reservation-wrapup");
    let first = runtime.invoke(callback()).await;
    assert_eq!(first.status(), 503, "{:?}", first.payload);
    assert_eq!(first.body()["error"]["code"], "secrets_unavailable");
    assert!(segment.received().is_empty());
    tokio::time::sleep(PAST_THE_BACK_OFF).await;
    assert_eq!(runtime.invoke(callback()).await.status(), 204);
    assert_eq!(segment.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_up_fetches_the_secrets_and_a_failed_refresh_keeps_the_last_good_value() {
    // GIVEN an extension that answers once and then fails, and a 1 s refresh age
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 2}))).await;
    let (runtime, extension, function) = route_decision_with_secrets(
        ExtensionStart::FailsAfterFirst,
        &segment,
        &[
            ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
            ("SECRETS_TTL_SECS", "1"),
            // Every decision reads the profile, so every decision needs the token.
            ("PROFILE_CACHE_TTL_SECS", "0"),
        ],
    )
    .await;
    // WHEN a warm-up runs, the token is fetched then (a warm-up is an invocation)
    assert_eq!(
        runtime.invoke(json!({"warmup": true})).await.payload,
        json!({"warm": true})
    );
    assert_eq!(extension.received().len(), 1);
    // AND a request inside the refresh age does not fetch again
    assert_found_decision(&runtime.invoke(studio_request()).await.body());
    assert_eq!(extension.received().len(), 1);
    // THEN past the refresh age the last good value serves at once, while the refresh is
    // tried in the background and fails
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_found_decision(&runtime.invoke(studio_request()).await.body());
    let warning = function
        .log_line("refreshing the secret failed; the last good value stays in use")
        .await;
    assert_eq!(extension.received().len(), 2);
    assert_eq!(warning["secret"], "SEGMENT_PROFILE_API_TOKEN");
    assert!(
        !function
            .logs()
            .iter()
            .any(|line| line.contains(PROFILE_TOKEN))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_that_sends_credentials_only_after_a_challenge_gets_its_decision() {
    // GIVEN route-decision behind a Function URL, with the shared secret configured
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 2}))).await;
    let runtime = Arc::new(RuntimeApi::start().await);
    let env = Env::studio(&segment.url())
        .unset("TWILIO_AUTH_TOKEN")
        .set("PROXY_SHARED_SECRET", "proxy-secret");
    let function = Function::start("route-decision", &runtime, env.vars()).await;
    let url = FunctionUrl::start(runtime.clone()).await;
    // WHEN Python's urllib calls it as Twilio does: no credentials until a 401 challenges
    // it (urllib's HTTPBasicAuthHandler answers only a Basic challenge)
    let script = r#"
import json, sys, urllib.request
url = sys.argv[1] + "/?From=%2B15555550100"
passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
passwords.add_password(None, sys.argv[1], "studio", "proxy-secret")
opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords))
with opener.open(url, timeout=10) as response:
    print(json.dumps({"status": response.status, "body": json.loads(response.read())}))
"#;
    let output = tokio::process::Command::new("python3")
        .args(["-c", script, &url.base_url()])
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("json");
    // THEN it got its decision, after exactly one challenge
    assert_eq!(result["status"], 200, "{result}");
    assert_found_decision(&result["body"]);
    function.log_line("decision").await;
    let refused: Vec<Value> = function
        .logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "request refused")
        .collect();
    assert_eq!(refused.len(), 1, "{:#?}", function.logs());
    assert_eq!(refused[0]["status"], 401);
    assert_eq!(
        refused[0]["function"], "route-decision",
        "which function refused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_challenges_for_basic_only_when_the_shared_secret_is_configured() {
    let segment = StandIn::always(Reply::traits(json!({}))).await;
    let unsigned = || http_event("GET", "From=%2B15555550100", &[], None, false);
    let (with_secret, _a) = e2e::studio_function(
        "route-decision",
        &segment.url(),
        &[("PROXY_SHARED_SECRET", "proxy-secret")],
    )
    .await;
    let refused = with_secret.invoke(unsigned()).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Basic realm=\"studio-router\"")
    );
    // The body says nothing about which check failed.
    assert_eq!(
        refused.body(),
        json!({"error": {"code": "unauthorized", "message": "the request is not authenticated"}})
    );
    let (signature_only, _b) = e2e::studio_function("route-decision", &segment.url(), &[]).await;
    let refused = signature_only.invoke(unsigned()).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.header("www-authenticate"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_made_by_twilios_own_validator_are_accepted() {
    // GIVEN requests signed by twilio-python's RequestValidator (scripts/twilio_signatures.py;
    // CI checks the fixture against the library), some over the URL with its credentials
    let signed = fixture("twilio/signatures.json");
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 2}))).await;
    let (runtime, _function) = e2e::studio_function("route-decision", &segment.url(), &[]).await;
    let basic = basic_auth(
        signed["basic_user"].as_str().unwrap_or_default(),
        signed["basic_password"].as_str().unwrap_or_default(),
    );
    let cases = signed["cases"].as_array().cloned().unwrap_or_default();
    assert_eq!(cases.len(), 5);
    for case in &cases {
        let signature = case["signature"].as_str().unwrap_or_default();
        let mut headers = vec![("x-twilio-signature", signature)];
        if case["basic"] == true {
            headers.push(("authorization", basic.as_str()));
        }
        let (body, content_type) = match case.get("json") {
            Some(json) => (json.as_str().unwrap_or_default(), "application/json"),
            None => (
                case["form"].as_str().unwrap_or_default(),
                "application/x-www-form-urlencoded",
            ),
        };
        headers.push(("content-type", content_type));
        // For JSON the query carries bodySHA256, as Twilio sends it.
        let query = case["query"].as_str().unwrap_or_default();
        // THEN each is accepted...
        let answer = runtime
            .invoke(http_event("POST", query, &headers, Some(body), true))
            .await;
        assert_eq!(
            answer.status(),
            200,
            "{}: {:?}",
            case["name"],
            answer.payload
        );
        assert_found_decision(&answer.body());
        // ...and the same signature over another body is not.
        let tampered = body.replace("15555550100", "15555550199");
        let answer = runtime
            .invoke(http_event("POST", query, &headers, Some(&tampered), true))
            .await;
        assert_eq!(answer.status(), 401, "{}", case["name"]);
    }
}

/// A Tracking API that answers 503 for its first five seconds, then accepts.
async fn unavailable_for_five_seconds() -> StandIn {
    let started = std::time::Instant::now();
    StandIn::start(move |_| {
        if started.elapsed() < Duration::from_secs(5) {
            Reply::json(503, json!({"error": "unavailable"}))
        } else {
            Reply::json(200, json!({"success": true}))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_streams_delivery_is_answered_within_4_5_s_and_a_callback_keeps_its_15_s() {
    // GIVEN a Tracking API that is unavailable for five seconds
    let segment = unavailable_for_five_seconds().await;
    let (runtime, _function) = wrap_up_function(&segment.url(), &[]).await;
    // WHEN Event Streams delivers (its webhook sink waits 5 s at most)
    let delivery =
        event_streams_delivery(&json!([fixture("eventstreams/reservation-wrapup.json")]));
    let answer = runtime.invoke(delivery).await;
    // THEN it is answered in time with a 5xx, so Event Streams redelivers
    assert!(
        answer.elapsed < Duration::from_millis(4_800),
        "answered after {:?}",
        answer.elapsed
    );
    assert_eq!(answer.status(), 502, "{:?}", answer.payload);
    assert_eq!(answer.body()["error"]["code"], "delivery_failed");
    assert!(segment.count() >= 2, "retried within the 4.5 s");

    // BUT a TaskRouter callback, whose sender waits 15 s, keeps retrying until Segment is back
    let segment = unavailable_for_five_seconds().await;
    let (runtime, _function) = wrap_up_function(&segment.url(), &[]).await;
    let answer = runtime
        .invoke(taskrouter_callback("voice-inbound-reservation-wrapup"))
        .await;
    assert_eq!(answer.status(), 204, "{:?}", answer.payload);
    assert!(answer.elapsed >= Duration::from_secs(5));
    assert!(answer.elapsed < Duration::from_secs(11));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_streams_delivery_is_answered_within_4_5_s_against_a_tracking_api_that_hangs() {
    let hanging =
        StandIn::always(Reply::json(200, json!({"success": true})).after(Duration::from_secs(30)))
            .await;
    let (runtime, _function) = wrap_up_function(&hanging.url(), &[]).await;
    let delivery =
        event_streams_delivery(&json!([fixture("eventstreams/reservation-wrapup.json")]));
    let answer = runtime.invoke(delivery).await;
    assert!(
        answer.elapsed < Duration::from_millis(4_800),
        "answered after {:?}",
        answer.elapsed
    );
    assert_eq!(answer.status(), 502, "{:?}", answer.payload);
    assert!(
        answer.body()["error"]["message"]
            .as_str()
            // Either timer may fire first on a busy machine: the attempt's own timeout or the
            // delivery's deadline around it. Both say the same to the sender.
            .is_some_and(|m| m.contains("timed out") || m.contains("no answer before the deadline")),
        "{:?}",
        answer.payload
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_extension_that_hangs_costs_an_invocation_at_most_its_fetch_timeout() {
    // GIVEN an extension that accepts requests and never answers
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 2}))).await;
    let (runtime, _extension, _function) = route_decision_with_secrets(
        ExtensionStart::Hangs,
        &segment,
        &[("DECISION_DEADLINE_MS", "3000")],
    )
    .await;
    // WHEN a request needs the Auth Token to be checked
    let answer = runtime.invoke(studio_request()).await;
    // THEN it is answered 503 once the fetch gives up (2 s), not when the invocation times out
    assert_eq!(answer.status(), 503, "{:?}", answer.payload);
    assert!(
        answer.elapsed >= Duration::from_secs(2) && answer.elapsed < Duration::from_millis(2_800),
        "answered after {:?}",
        answer.elapsed
    );
    // AND with the Auth Token given, the Profile API token's fetch is cut by the decision
    // deadline: the decision falls back within it
    let (runtime, _extension, _function) = route_decision_with_secrets(
        ExtensionStart::Hangs,
        &segment,
        &[
            ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
            ("DECISION_DEADLINE_MS", "1000"),
        ],
    )
    .await;
    let answer = runtime.invoke(studio_request()).await;
    assert_eq!(answer.body()["rule"], "on_error", "{:?}", answer.payload);
    assert!(
        answer.elapsed < Duration::from_millis(1_400),
        "{:?}",
        answer.elapsed
    );
    assert_eq!(segment.count(), 0);
}
