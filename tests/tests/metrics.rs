//! The metrics documents (CloudWatch EMF) the real binaries write: one per invocation, and the
//! numbers in them are what the invocation did. Every document any end-to-end test produces
//! is also checked against the EMF specification (`e2e::emf`, when its function is dropped).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use e2e::{
    Reply, StandIn, TWILIO_TOKEN, event_streams_delivery, fixture, kinesis_event, signed_form_post,
    studio_function, wrap_up_function,
};
use serde_json::{Map, Value, json};

type Document = Map<String, Value>;

fn studio_request(from: &str) -> Value {
    signed_form_post(TWILIO_TOKEN, &[("From", from), ("channel", "sms")])
}

/// The metrics a document holds (its directives' names), with their values.
fn metrics(document: &Document) -> Map<String, Value> {
    document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|directive| directive["Metrics"].as_array().cloned().unwrap_or_default())
        .filter_map(|metric| {
            let name = metric["Name"].as_str()?.to_owned();
            Some((name.clone(), document[&name].clone()))
        })
        .collect()
}

fn dimensions(document: &Document) -> Vec<Value> {
    document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["Dimensions"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_decision_is_one_document_counting_its_lookup_cache_and_fallback() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    // The first customer is found; the second's lookups fail with 503.
    let segment = StandIn::start(move |request| {
        counter.fetch_add(1, Ordering::SeqCst);
        if request.path.contains("5555550100") {
            Reply::traits(json!({"docs_last_2_days": 1}))
        } else {
            Reply::json(503, json!({"error": "unavailable"}))
        }
    })
    .await;
    let (runtime, function) = studio_function(
        "route-decision",
        &segment.url(),
        &[("PROFILE_CACHE_TTL_SECS", "60")],
    )
    .await;

    let found = runtime.invoke(studio_request("+15555550100")).await.body();
    let cached = runtime.invoke(studio_request("+15555550100")).await.body();
    let failed = runtime.invoke(studio_request("+15555550199")).await.body();
    let refused = runtime
        .invoke(signed_form_post("wrong-token", &[("From", "+15555550100")]))
        .await;
    assert_eq!(
        (&found["fallback"], &cached["fallback"], &failed["fallback"]),
        (&json!(false), &json!(false), &json!(true))
    );
    assert_eq!(refused.status(), 401);

    let documents = function.metrics(4).await;
    assert_eq!(documents.len(), 4, "one document per invocation");
    let [first, second, third, fourth] = documents.try_into().expect("four");
    assert_eq!(first["function"], "route-decision");
    assert_eq!(
        (
            &first["transition"],
            &first["rule"],
            &first["fallback_reason"]
        ),
        (
            &json!("agent"),
            &json!("read-docs-recently"),
            &json!("none")
        )
    );
    let m = metrics(&first);
    assert_eq!(m["ColdStarts"], 1);
    assert_eq!((&m["Decisions"], &m["Fallbacks"]), (&json!(1), &json!(0)));
    assert_eq!(
        (&m["CacheMisses"], &m["ProfileApiRequests"]),
        (&json!(1), &json!(1))
    );
    assert!(m["LookupLatency"].as_f64().is_some_and(|ms| ms > 0.0));
    assert!(dimensions(&first).contains(&json!(["function", "transition"])));

    let m = metrics(&second);
    assert!(
        !m.contains_key("ColdStarts"),
        "only the first is the cold start"
    );
    assert_eq!(m["CacheHits"], 1);
    assert!(!m.contains_key("ProfileApiRequests"), "{second:?}");

    // 503: one request (a status is not retried), a fallback by its reason.
    let m = metrics(&third);
    assert_eq!(
        (&third["rule"], &third["fallback_reason"]),
        (&json!("on_error"), &json!("upstream_status"))
    );
    assert_eq!(
        (&m["Fallbacks"], &m["ProfileApiRequests"]),
        (&json!(1), &json!(1))
    );

    // A refusal decides nothing: no decision dimensions, nothing looked up.
    let m = metrics(&fourth);
    assert!(fourth.get("transition").is_none() && !m.contains_key("Decisions"));
    assert_eq!(dimensions(&fourth), vec![json!(["function"])]);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "what Segment saw");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrap_ups_are_counted_delivered_skipped_and_failed_with_their_batch_requests() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    // First delivery: 500 then accepted (one retry). Second: never accepted.
    let segment = StandIn::start(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::json(500, json!({"error": "internal"})),
        1 => Reply::json(200, json!({"success": true})),
        _ => Reply::json(400, json!({"error": "bad request"})),
    })
    .await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    let wrap_up = fixture("eventstreams/reservation-wrapup.json");
    let delivery = json!([wrap_up, {"not": "an event"}]);
    assert_eq!(
        runtime
            .invoke(event_streams_delivery(&delivery))
            .await
            .status(),
        204
    );
    let answer = runtime
        .invoke(kinesis_event(&[wrap_up.to_string(), wrap_up.to_string()]))
        .await
        .payload;
    assert_eq!(
        answer["batchItemFailures"].as_array().map(Vec::len),
        Some(2)
    );

    let [first, second] = function.metrics(2).await.try_into().expect("two documents");
    let m = metrics(&first);
    assert_eq!(
        (&m["WrapUpsDelivered"], &m["WrapUpsSkipped"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(
        (&m["SegmentBatchRequests"], &m["SegmentBatchRetries"]),
        (&json!(2), &json!(1))
    );
    assert!(!m.contains_key("WrapUpsFailed"));
    let m = metrics(&second);
    assert_eq!(
        (
            &m["WrapUpsFailed"],
            &m["KinesisRecordsFailed"],
            &m["SegmentBatchRequests"]
        ),
        (&json!(2), &json!(2), &json!(1))
    );
    assert!(!m.contains_key("WrapUpsDelivered"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_error_counts_a_server_error_per_invocation() {
    let (runtime, function) = studio_function(
        "profile-lookup",
        "http://127.0.0.1:9",
        &[("SEGMENT_SPACE_ID", "")],
    )
    .await;
    assert_eq!(
        runtime
            .invoke(studio_request("+15555550100"))
            .await
            .status(),
        500
    );
    let [document] = function.metrics(1).await.try_into().expect("one document");
    assert_eq!(document["function"], "profile-lookup");
    assert_eq!(metrics(&document)["ServerErrors"], 1);
}
