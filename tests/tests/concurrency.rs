//! Many conversations at once, as on Lambda Managed Instances: the real binaries with
//! `AWS_LAMBDA_MAX_CONCURRENCY` set, under a Runtime API that serves concurrent
//! `/invocation/next` long-polls, against stand-ins that count what reaches them at once.

use std::collections::HashMap;
use std::time::Duration;

use e2e::{
    Env, ExtensionStart, Function, Received, Reply, RuntimeApi, SECRETS, StandIn, TWILIO_TOKEN,
    function_with_secrets, signed_form_post, studio_function, taskrouter_callback,
    wrap_up_function,
};
use serde_json::{Value, json};

/// About what a Profile API lookup takes (Segment's p95 for `/traits` is under 200 ms).
const LOOKUP: Duration = Duration::from_millis(150);

fn phone(i: usize) -> String {
    format!("+1555555{i:04}")
}

/// What Studio sends for the customer on `phone`.
fn studio_request(phone: &str) -> Value {
    signed_form_post(TWILIO_TOKEN, &[("From", phone), ("Body", "hello")])
}

/// The customer a Profile API request is for: the `i` of [`phone`].
fn customer_of(request: &Received) -> Option<usize> {
    let (_, rest) = request.path.split_once("phone:%2B1555555")?;
    rest.get(..4)?.parse().ok()
}

/// Odd customers read the docs (agent), even ones did not (bot); every answer takes [`LOOKUP`].
async fn profile_api_by_customer() -> StandIn {
    StandIn::start(|request| match customer_of(request) {
        Some(i) => Reply::traits(json!({"docs_last_2_days": i % 2})).after(LOOKUP),
        None => Reply::profile_not_found(),
    })
    .await
}

async fn all_at_once(runtime: &RuntimeApi, events: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let waiting: Vec<_> = events
        .into_iter()
        .map(|event| runtime.queue(event))
        .collect();
    let mut answers = Vec::new();
    for answer in waiting {
        answers.push(answer.answer().await);
    }
    answers
}

fn body(payload: &Value) -> Value {
    studio_router::edge::invocation::status_and_body(payload).1
}

fn route_decision_at(concurrency: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
    let mut env = vec![("DECISION_DEADLINE_MS", "3000")];
    if let Some(concurrency) = concurrency {
        env.push(("AWS_LAMBDA_MAX_CONCURRENCY", concurrency));
    }
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn at_concurrency_16_sixty_four_decisions_are_all_correct_and_overlap() {
    let segment = profile_api_by_customer().await;
    let (runtime, _function) = studio_function(
        "route-decision",
        &segment.url(),
        &route_decision_at(Some("16")),
    )
    .await;

    let answers = all_at_once(&runtime, (0..64).map(|i| studio_request(&phone(i)))).await;

    for (i, answer) in answers.iter().enumerate() {
        let body = body(answer);
        let expected = if i % 2 == 1 { "agent" } else { "bot" };
        assert_eq!(body["transition"], expected, "customer {i}: {body}");
        assert_eq!(body["fallback"], false, "customer {i}: {body}");
    }
    assert_eq!(segment.count(), 64, "one lookup per customer");
    // Proof of concurrency, not a timing: Segment saw many of them at once.
    assert!(
        segment.most_in_flight() >= 8,
        "at most {} lookups were in flight at once",
        segment.most_in_flight()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_two_concurrent_decisions_for_one_new_customer_send_one_lookup() {
    let segment = StandIn::always(Reply::profile_not_found().after(LOOKUP)).await;
    let (runtime, _function) = studio_function(
        "route-decision",
        &segment.url(),
        &route_decision_at(Some("32")),
    )
    .await;

    let answers = all_at_once(&runtime, (0..32).map(|_| studio_request(&phone(7)))).await;

    for answer in &answers {
        let body = body(answer);
        assert_eq!(
            (
                &body["transition"],
                &body["fallback"],
                &body["profile_found"]
            ),
            (&json!("bot"), &json!(false), &json!(false)),
            "{body}"
        );
    }
    // Two at most: one that lands between the first's answer and its cache entry.
    assert!(
        segment.count() <= 2,
        "{} Profile API requests for one customer",
        segment.count()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_429_with_a_long_retry_after_decisions_fall_back_at_once_without_calling_segment() {
    // Segment asks for 10 s; the decisions after the first all come inside that window.
    let segment = StandIn::always(
        Reply::json(429, json!({"error": "Too Many Requests"})).header("retry-after", "10"),
    )
    .await;
    let (runtime, function) = studio_function(
        "route-decision",
        &segment.url(),
        &route_decision_at(Some("16")),
    )
    .await;
    let first = runtime.invoke(studio_request(&phone(0))).await;
    assert_eq!(first.body()["fallback"], true);

    let answers = all_at_once(&runtime, (1..=20).map(|i| studio_request(&phone(i)))).await;

    for answer in &answers {
        let body = body(answer);
        assert_eq!(
            (&body["transition"], &body["fallback"]),
            (&json!("agent"), &json!(true)),
            "on_error, as a fallback: {body}"
        );
    }
    assert!(
        segment.count() <= 3,
        "{} Profile API requests inside the back-off window",
        segment.count()
    );
    let reasons = function.fallback_reasons(21).await;
    assert_eq!(reasons[0], "rate_limited");
    // Segment's Retry-After holds every request back past their deadlines: no token in time.
    let paced = reasons.iter().filter(|r| *r == "paced").count();
    assert!(paced >= 18, "fallback reasons: {reasons:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_shared_lookup_is_not_cached() {
    let segment = StandIn::always(Reply::json(500, json!({})).after(LOOKUP)).await;
    let (runtime, function) = studio_function(
        "route-decision",
        &segment.url(),
        &route_decision_at(Some("8")),
    )
    .await;

    let answers = all_at_once(&runtime, (0..8).map(|_| studio_request(&phone(3)))).await;
    for answer in &answers {
        assert_eq!(body(answer)["fallback"], true);
    }
    let shared = segment.count();
    // A 500 is an answer, not a transport failure: it is not retried, and the waiters share it.
    assert!(shared <= 2, "{shared} requests for 8 concurrent misses");

    let again = runtime.invoke(studio_request(&phone(3))).await;
    assert_eq!(again.body()["fallback"], true);
    assert_eq!(segment.count(), shared + 1, "the failure was not cached");
    let reasons = function.fallback_reasons(9).await;
    assert!(
        reasons.iter().all(|r| r == "upstream_status"),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn any_retry_after_is_survived() {
    let segment =
        StandIn::always(Reply::json(429, json!({})).header("retry-after", "18446744073709551615"))
            .await;
    let (runtime, function) = studio_function(
        "route-decision",
        &segment.url(),
        &route_decision_at(Some("4")),
    )
    .await;
    let answer = runtime.invoke(studio_request(&phone(1))).await;
    assert_eq!(answer.body()["fallback"], true);
    // The 429 itself, not a shared request that ended without an answer.
    assert_eq!(function.fallback_reasons(1).await, [json!("rate_limited")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_lookup_answers_502_inside_the_back_off_window() {
    let segment = StandIn::always(Reply::json(429, json!({})).header("retry-after", "10")).await;
    let (runtime, _function) = studio_function(
        "profile-lookup",
        &segment.url(),
        &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")],
    )
    .await;
    for i in 0..3 {
        let answer = runtime.invoke(studio_request(&phone(i))).await;
        assert_eq!(answer.status(), 502, "{:#?}", answer.payload);
        assert_eq!(answer.body()["error"]["code"], "rate_limited");
    }
    assert_eq!(segment.count(), 1, "only the first lookup reached Segment");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_first_invocations_fetch_each_secret_once() {
    let segment = profile_api_by_customer().await;
    let env = Env::studio_with_secret_ids(&segment.url()).set("AWS_LAMBDA_MAX_CONCURRENCY", "16");
    let (runtime, extension, _function) =
        function_with_secrets("route-decision", ExtensionStart::Slow, &SECRETS, env).await;

    let answers = all_at_once(&runtime, (0..16).map(|i| studio_request(&phone(i)))).await;

    for (i, answer) in answers.iter().enumerate() {
        let body = body(answer);
        assert_eq!(body["fallback"], false, "customer {i}: {body}");
    }
    let mut fetches: HashMap<String, usize> = HashMap::new();
    for request in extension.received() {
        *fetches
            .entry(request.query_param("secretId").unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(
        fetches,
        HashMap::from([
            ("studio-router/profile-token".to_owned(), 1),
            ("studio-router/auth-token".to_owned(), 1),
        ])
    );
}

async fn one_at_a_time(concurrency: Option<&'static str>) -> (StandIn, Function) {
    let segment = profile_api_by_customer().await;
    let (runtime, function) = studio_function(
        "route-decision",
        &segment.url(),
        &route_decision_at(concurrency),
    )
    .await;
    let answers = all_at_once(&runtime, (0..8).map(|i| studio_request(&phone(i)))).await;
    for (i, answer) in answers.iter().enumerate() {
        let expected = if i % 2 == 1 { "agent" } else { "bot" };
        assert_eq!(body(answer)["transition"], expected, "customer {i}");
    }
    (segment, function)
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_variable_unset_one_invocation_runs_at_a_time() {
    let (segment, function) = one_at_a_time(None).await;
    assert_eq!(segment.count(), 8);
    assert_eq!(segment.most_in_flight(), 1);
    assert!(
        !function
            .logs()
            .iter()
            .any(|line| line.contains("invocations at once")),
        "nothing said about concurrency"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unparseable_concurrency_runs_one_at_a_time_with_one_warning() {
    let (segment, function) = one_at_a_time(Some("sixteen")).await;
    assert_eq!(segment.most_in_flight(), 1);
    let warning = function
        .log_line(
            "AWS_LAMBDA_MAX_CONCURRENCY is not a whole number; serving one invocation at a time",
        )
        .await;
    assert_eq!(warning["variable"], "AWS_LAMBDA_MAX_CONCURRENCY");
    assert_eq!(warning["value"], "sixteen");
    let warnings = function
        .logs()
        .iter()
        .filter(|line| line.contains("AWS_LAMBDA_MAX_CONCURRENCY"))
        .count();
    assert_eq!(warnings, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_deliveries_of_one_event_are_both_acknowledged_with_one_message_id() {
    // Slow enough that the two deliveries overlap at Segment even on a busy machine.
    let segment =
        StandIn::always(Reply::json(200, json!({"success": true})).after(Duration::from_secs(1)))
            .await;
    let (runtime, _function) =
        wrap_up_function(&segment.url(), &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]).await;
    let event = taskrouter_callback("sms-inbound-task-completed");

    let answers = all_at_once(&runtime, [event.clone(), event]).await;

    for answer in &answers {
        assert_eq!(answer["statusCode"], 204, "{answer}");
    }
    assert_eq!(segment.most_in_flight(), 2, "the deliveries overlapped");
    let ids: Vec<Value> = segment
        .received()
        .iter()
        .map(|request| request.json()["batch"][0]["messageId"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![json!("flex-completed-WT0000000000000000000000000000sm01"); 2]
    );
}
