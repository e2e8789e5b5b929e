//! profile-lookup end to end: the real binary under a Lambda Runtime API on 127.0.0.1, with
//! a Profile API stand-in on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e::{
    Answered, PROFILE_TOKEN, Reply, StandIn, TWILIO_TOKEN, basic_auth, signed_form_post,
    studio_function,
};
use serde_json::{Value, json};

const PHONE: &str = "+15555550100";

fn lookup(params: &[(&str, &str)]) -> Value {
    signed_form_post(TWILIO_TOKEN, params)
}

fn assert_error(answer: &Answered, status: u64, code: &str) {
    assert_eq!(answer.status(), status, "{:#?}", answer.payload);
    assert_eq!(answer.body()["error"]["code"], code, "{}", answer.body());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_customer_gets_their_traits() {
    let segment = StandIn::always(Reply::traits(
        json!({"docs_last_2_days": 3, "vip": true, "first_name": "Ann"}),
    ))
    .await;
    let (runtime, function) = studio_function("profile-lookup", &segment.url(), &[]).await;

    let answer = runtime
        .invoke(lookup(&[("From", &format!("whatsapp:{PHONE}"))]))
        .await;

    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.body(),
        json!({"found": true, "identifier": "phone:+15555550100", "traits": {"docs_last_2_days": 3, "vip": true, "first_name": "Ann"}})
    );
    let request = &segment.received()[0];
    assert_eq!(
        request.path,
        "/v1/spaces/spa_test/collections/users/profiles/phone:%2B15555550100/traits"
    );
    assert_eq!(request.query_param("limit").as_deref(), Some("200"));
    assert_eq!(request.query_param("include"), None);
    assert_eq!(
        request.headers.get("authorization"),
        Some(&basic_auth(PROFILE_TOKEN, ""))
    );
    let line = function.log_line("lookup").await;
    assert_eq!(
        (
            line["customer"].clone(),
            line["found"].clone(),
            line["traits"].clone()
        ),
        (json!("phone:+1******0100"), json!(true), json!(3))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_customer_is_found_false_with_a_200() {
    let segment = StandIn::always(Reply::profile_not_found()).await;
    let (runtime, _function) = studio_function("profile-lookup", &segment.url(), &[]).await;
    let answer = runtime.invoke(lookup(&[("phone", PHONE)])).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.body(),
        json!({"found": false, "identifier": "phone:+15555550100", "traits": {}})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn include_class_and_limit_are_forwarded_and_emails_encoded_lowercase() {
    let segment = StandIn::always(Reply::traits(json!({"vip": true}))).await;
    let (runtime, _function) = studio_function("profile-lookup", &segment.url(), &[]).await;
    let answer = runtime
        .invoke(lookup(&[
            ("email", "Ann+VIP@Example.com"),
            ("include", "vip, docs_last_2_days,,"),
            ("class", "audience"),
            ("limit", "20"),
        ]))
        .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.body()["identifier"], "email:ann+vip@example.com");
    let request = &segment.received()[0];
    assert_eq!(
        request.path,
        "/v1/spaces/spa_test/collections/users/profiles/email:ann%2Bvip%40example.com/traits"
    );
    assert_eq!(
        request.query_param("include").as_deref(),
        Some("docs_last_2_days,vip")
    );
    assert_eq!(request.query_param("class").as_deref(), Some("audience"));
    assert_eq!(request.query_param("limit").as_deref(), Some("20"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_fields_are_400s() {
    let segment = StandIn::always(Reply::traits(json!({}))).await;
    let (runtime, _function) = studio_function("profile-lookup", &segment.url(), &[]).await;
    for params in [
        vec![("phone", PHONE), ("class", "everything")],
        vec![("phone", PHONE), ("limit", "0")],
        vec![("phone", PHONE), ("limit", "201")],
        vec![("phone", PHONE), ("external_ids", "perhaps")],
    ] {
        assert_error(&runtime.invoke(lookup(&params)).await, 400, "invalid_field");
    }
    assert_error(
        &runtime.invoke(lookup(&[("Body", "hi")])).await,
        400,
        "invalid_identifier",
    );
    assert!(segment.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_over_studios_64_kb_is_truncated() {
    let mut traits = serde_json::Map::new();
    traits.insert("docs_last_2_days".into(), json!(3));
    traits.insert("vip".into(), json!(true));
    for i in 0..10 {
        traits.insert(
            format!("viewed_pages_{i}"),
            json!(vec!["/docs/some/long/page/path"; 400]),
        );
    }
    let segment = StandIn::always(Reply::traits(Value::Object(traits))).await;
    let (runtime, _function) = studio_function("profile-lookup", &segment.url(), &[]).await;
    let answer = runtime.invoke(lookup(&[("phone", PHONE)])).await;
    assert_eq!(answer.status(), 200);
    let raw = answer.payload["body"].as_str().unwrap_or_default();
    assert!(raw.len() <= 64_000, "body is {} bytes", raw.len());
    let body = answer.body();
    assert_eq!(body["truncated"], true);
    assert_eq!(
        body["traits"]["docs_last_2_days"], 3,
        "small traits survive"
    );
    assert_eq!(body["traits"]["vip"], true);
    let kept = body["traits"].as_object().map_or(0, |t| t.len());
    assert!((3..12).contains(&kept), "kept {kept} traits");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_lookup_within_the_ttl_is_served_from_the_cache() {
    let segment = StandIn::always(Reply::traits(json!({"vip": true}))).await;
    let (runtime, _function) = studio_function(
        "profile-lookup",
        &segment.url(),
        &[("PROFILE_CACHE_TTL_SECS", "1")],
    )
    .await;
    let request = lookup(&[("phone", PHONE), ("include", "vip")]);

    assert_eq!(
        runtime.invoke(request.clone()).await.body()["traits"]["vip"],
        true
    );
    assert_eq!(
        runtime.invoke(request.clone()).await.body()["traits"]["vip"],
        true
    );
    assert_eq!(
        segment.received().len(),
        1,
        "the second identical call is a cache hit"
    );

    // A different trait set is a different entry.
    runtime
        .invoke(lookup(&[
            ("phone", PHONE),
            ("include", "vip,docs_last_2_days"),
        ]))
        .await;
    assert_eq!(segment.received().len(), 2);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    runtime.invoke(request).await;
    assert_eq!(
        segment.received().len(),
        3,
        "past the TTL the cache is not used"
    );
}

/// Segment's 429, as the Profile API documents it (`rate_limit_error`, no `Retry-After`).
fn too_many_requests() -> Reply {
    Reply::json(
        429,
        json!({"error": {"code": "rate_limit_error", "message": "Too many requests"}}),
    )
}

/// A Profile API that answers `first` once, then the customer's traits.
async fn throttled_once(first: Reply) -> StandIn {
    let calls = Arc::new(AtomicUsize::new(0));
    StandIn::start(move |_| match calls.fetch_add(1, Ordering::SeqCst) {
        0 => first.clone(),
        _ => Reply::traits(json!({"vip": true})),
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_a_retry_after_that_fits_the_deadline_is_retried() {
    let segment = throttled_once(too_many_requests().header("retry-after", "1")).await;
    let (runtime, _function) = studio_function(
        "profile-lookup",
        &segment.url(),
        &[("DECISION_DEADLINE_MS", "2500")],
    )
    .await;
    let answer = runtime.invoke(lookup(&[("phone", PHONE)])).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.body()["traits"]["vip"], true);
    assert_eq!(segment.received().len(), 2);
    assert!(
        answer.elapsed >= Duration::from_secs(1),
        "waited for Retry-After"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_without_retry_after_waits_for_the_next_token_and_is_retried() {
    let segment = throttled_once(too_many_requests()).await;
    let (runtime, _function) = studio_function(
        "profile-lookup",
        &segment.url(),
        &[("DECISION_DEADLINE_MS", "2500")],
    )
    .await;
    let asked = std::time::Instant::now();
    let answer = runtime.invoke(lookup(&[("phone", PHONE)])).await;
    assert_eq!(answer.status(), 200, "{:#?}", answer.payload);
    assert_eq!(answer.body()["traits"]["vip"], true);
    let received = segment.received();
    assert_eq!(received.len(), 2);
    // The retry waited for the environment's next token: one request sent over the first
    // 100 ms measured is 10 a second, and a 429 paces to 0.7 of that, one every 142.9 ms
    // after the first, which went no earlier than the asking.
    let retried = received[1].at.duration_since(asked);
    assert!(
        retried >= Duration::from_millis(140),
        "retried after {retried:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_whose_retry_after_passes_the_deadline_fails_without_waiting_for_it() {
    let segment = StandIn::always(too_many_requests().header("retry-after", "30")).await;
    let (runtime, _function) = studio_function(
        "profile-lookup",
        &segment.url(),
        &[("DECISION_DEADLINE_MS", "2500")],
    )
    .await;
    let answer = runtime.invoke(lookup(&[("phone", PHONE)])).await;
    assert_error(&answer, 502, "rate_limited");
    assert_eq!(segment.received().len(), 1);
    // A second lookup is not sent at all: its token comes after the Retry-After.
    let again = runtime.invoke(lookup(&[("phone", "+15555550199")])).await;
    assert_error(&again, 502, "rate_limited");
    assert_eq!(
        segment.received().len(),
        1,
        "nothing sent inside Retry-After"
    );
    assert!(
        answer.elapsed < Duration::from_millis(2500),
        "answered before the deadline: {:?}",
        answer.elapsed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn external_ids_are_added_on_request() {
    let segment = StandIn::start(|request| {
        if request.path.ends_with("/external_ids") {
            Reply::json(
                200,
                json!({"data": [
                    {"source_id": "src", "collection": "users", "id": "+15555550100", "type": "phone", "encoding": "none"},
                    {"source_id": "src", "collection": "users", "id": "u-42", "type": "user_id", "encoding": "none"}
                ], "cursor": {"url": "", "has_more": false, "next": ""}}),
            )
        } else {
            Reply::traits(json!({"vip": true}))
        }
    })
    .await;
    let (runtime, _function) = studio_function("profile-lookup", &segment.url(), &[]).await;
    let answer = runtime
        .invoke(lookup(&[("phone", PHONE), ("external_ids", "true")]))
        .await;
    assert_eq!(
        answer.body()["external_ids"],
        json!([{"type": "phone", "id": "+15555550100"}, {"type": "user_id", "id": "u-42"}])
    );
}
