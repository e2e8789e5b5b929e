//! The Profile API's pacer in the real binary: requests of one environment take turns at its
//! rate (`PROFILE_API_RATE`), wait for their turn while it comes in time, and fall back
//! `paced` when it would not. The bounds are the pacer's own spacing, which a busy machine
//! can only lengthen.

use std::time::Duration;

use e2e::{Reply, RuntimeApi, StandIn, TWILIO_TOKEN, signed_form_post, studio_function};
use serde_json::{Value, json};

fn studio_request(phone: &str) -> Value {
    signed_form_post(TWILIO_TOKEN, &[("From", phone), ("Body", "hello")])
}

fn body(payload: &Value) -> Value {
    studio_router::edge::invocation::status_and_body(payload).1
}

async fn at_once(runtime: &RuntimeApi, phones: &[&str]) -> Vec<Value> {
    let waiting: Vec<_> = phones
        .iter()
        .map(|phone| runtime.queue(studio_request(phone)))
        .collect();
    let mut answers = Vec::new();
    for answer in waiting {
        answers.push(body(&answer.answer().await));
    }
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_waits_for_its_token_when_it_comes_in_time() {
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 1}))).await;
    let (runtime, _function) = studio_function(
        "route-decision",
        &segment.url(),
        &[
            ("AWS_LAMBDA_MAX_CONCURRENCY", "4"),
            ("PROFILE_API_RATE", "2"),
            ("DECISION_DEADLINE_MS", "2500"),
        ],
    )
    .await;
    let asked = std::time::Instant::now();
    let answers = at_once(&runtime, &["+15555550101", "+15555550102"]).await;
    for answer in &answers {
        assert_eq!(answer["fallback"], false, "{answer}");
    }
    let received = segment.received();
    assert_eq!(received.len(), 2);
    // Two a second: the second turn is an interval after the first, which came no earlier
    // than the asking (a busy machine can only make it later).
    let second = received[1].at.duration_since(asked);
    assert!(
        second >= Duration::from_millis(500),
        "second request after {second:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_whose_token_comes_too_late_falls_back_paced_without_calling_segment() {
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 1}))).await;
    let (runtime, function) = studio_function(
        "route-decision",
        &segment.url(),
        &[
            ("AWS_LAMBDA_MAX_CONCURRENCY", "4"),
            // One request every 2 s, and a decision due in 1 s.
            ("PROFILE_API_RATE", "0.5"),
            ("DECISION_DEADLINE_MS", "1000"),
        ],
    )
    .await;
    let answers = at_once(&runtime, &["+15555550101", "+15555550102", "+15555550103"]).await;
    let fallbacks = answers.iter().filter(|a| a["fallback"] == true).count();
    assert_eq!(fallbacks, 2, "{answers:?}");
    assert_eq!(segment.count(), 1, "only the first had a token in time");
    let mut reasons = function.fallback_reasons(3).await;
    reasons.sort_by_key(Value::to_string);
    assert_eq!(reasons, [json!("paced"), json!("paced"), Value::Null]);
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_lookup_answers_502_when_its_token_comes_too_late() {
    let segment = StandIn::always(Reply::traits(json!({"vip": true}))).await;
    let (runtime, _function) = studio_function(
        "profile-lookup",
        &segment.url(),
        &[
            ("PROFILE_API_RATE", "0.5"),
            ("DECISION_DEADLINE_MS", "1000"),
        ],
    )
    .await;
    let first = runtime.invoke(studio_request("+15555550101")).await;
    assert_eq!(first.status(), 200);
    let second = runtime.invoke(studio_request("+15555550102")).await;
    assert_eq!(second.status(), 502, "{:#?}", second.payload);
    assert_eq!(second.body()["error"]["code"], "rate_limited");
    assert!(
        second.body()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too late for the deadline")),
        "{:#?}",
        second.payload
    );
    assert_eq!(segment.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_that_is_not_a_number_is_a_configuration_error() {
    let segment = StandIn::always(Reply::traits(json!({}))).await;
    let (runtime, _function) = studio_function(
        "route-decision",
        &segment.url(),
        &[("PROFILE_API_RATE", "fast")],
    )
    .await;
    let answer = runtime.invoke(studio_request("+15555550101")).await;
    assert_eq!(answer.status(), 500);
    assert_eq!(answer.body()["error"]["code"], "configuration_error");
}
