//! wrap-up-ingest end to end: the real binary under a Lambda Runtime API on 127.0.0.1, with a
//! Tracking API stand-in on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e::{
    Received, Reply, StandIn, WRITE_KEY, basic_auth, event_streams_delivery, fixture,
    taskrouter_callback, wrap_up_function,
};
use serde_json::{Value, json};

fn accepted() -> Reply {
    Reply::json(200, json!({"success": true}))
}

fn batch_messages(request: &Received) -> Vec<Value> {
    request.json()["batch"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrap_up_callback_becomes_exactly_this_batch() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;

    let answer = runtime
        .invoke(taskrouter_callback("voice-inbound-reservation-wrapup"))
        .await;

    assert_eq!(answer.status(), 204, "{:#?}", answer.payload);
    let requests = segment.received();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/batch")
    );
    assert_eq!(
        request.headers.get("authorization"),
        Some(&basic_auth(WRITE_KEY, ""))
    );
    assert_eq!(
        request.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let body = request.json();
    assert!(
        body["sentAt"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
    let messages = batch_messages(request);
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    let anonymous_id = message["anonymousId"].as_str().unwrap_or_default();
    assert!(
        anonymous_id.starts_with("flex-") && !anonymous_id.contains("5555550100"),
        "{anonymous_id}"
    );
    assert_eq!(
        message,
        &json!({
            "type": "track",
            "event": "Flex - Engagement Completed",
            "anonymousId": anonymous_id,
            "messageId": "flex-wrapup-WT0000000000000000000000000000vo01",
            "timestamp": "2026-11-18T11:06:40.123Z",
            "properties": {
                "direction": "Inbound", "channelType": "voice",
                "lastKnownAgentWorkerSid": "WK0000000000000000000000000000aa01",
                "duration": 342, "taskSid": "WT0000000000000000000000000000vo01"
            },
            "context": {
                "traits": {"phone": "+15555550100"},
                "externalIds": [{"id": "+15555550100", "type": "phone", "collection": "users", "encoding": "none"}]
            }
        })
    );
    let line = function.log_line("wrap-up delivery").await;
    assert_eq!(
        (line["sent"].clone(), line["requests"].clone()),
        (json!(1), json!(1))
    );
    assert!(
        function
            .logs()
            .iter()
            .all(|l| !l.contains("+15555550100") && !l.contains(WRITE_KEY))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completion_carries_topic_and_sentiment_and_the_same_customer() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, _function) = wrap_up_function(&segment.url(), &[]).await;
    assert_eq!(
        runtime
            .invoke(taskrouter_callback("whatsapp-inbound-reservation-wrapup"))
            .await
            .status(),
        204
    );
    assert_eq!(
        runtime
            .invoke(taskrouter_callback("whatsapp-inbound-task-completed"))
            .await
            .status(),
        204
    );
    let requests = segment.received();
    let (wrapup, completed) = (
        &batch_messages(&requests[0])[0],
        &batch_messages(&requests[1])[0],
    );
    assert_eq!(completed["event"], "Flex - Wrap Up Completed");
    assert_eq!(
        completed["properties"],
        json!({"topic": "delivery", "sentiment": "positive", "dispositionCode": "resolved", "taskSid": "WT0000000000000000000000000000wa01"})
    );
    assert_eq!(
        wrapup["anonymousId"], completed["anonymousId"],
        "one customer, one anonymous id"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_event_has_the_same_message_id() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, _function) = wrap_up_function(&segment.url(), &[]).await;
    for _ in 0..2 {
        assert_eq!(
            runtime
                .invoke(taskrouter_callback("sms-inbound-task-completed"))
                .await
                .status(),
            204
        );
    }
    let ids: Vec<Value> = segment
        .received()
        .iter()
        .map(|r| batch_messages(r)[0]["messageId"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![json!("flex-completed-WT0000000000000000000000000000sm01"); 2]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_segment_500_then_200_is_retried_and_acknowledged() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let segment = StandIn::start(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::json(500, json!({"error": "internal"})),
        1 => Reply::json(429, json!({"error": "slow down"})).header("retry-after", "1"),
        _ => accepted(),
    })
    .await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    let answer = runtime
        .invoke(taskrouter_callback("voice-inbound-reservation-wrapup"))
        .await;
    assert_eq!(answer.status(), 204);
    let requests = segment.received();
    assert_eq!(requests.len(), 3);
    assert!(
        requests.iter().all(|r| r.body == requests[0].body),
        "the same batch each time"
    );
    assert!(
        answer.elapsed >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(function.log_line("wrap-up delivery").await["retries"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_events_go_out_in_requests_under_500_kb() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    let template = fixture("eventstreams/reservation-wrapup.json");
    let events: Vec<Value> = (0..2000)
        .map(|i| {
            let mut event = template.clone();
            event["data"]["payload"]["task_sid"] = json!(format!("WT{i:032}"));
            event
        })
        .collect();
    let answer = runtime
        .invoke(event_streams_delivery(&Value::Array(events)))
        .await;
    assert_eq!(answer.status(), 204, "{:#?}", answer.body());
    let requests = segment.received();
    assert!(requests.len() >= 2, "{} requests", requests.len());
    let mut ids = Vec::new();
    for request in &requests {
        assert!(
            request.body.len() <= 500_000,
            "a request of {} bytes",
            request.body.len()
        );
        ids.extend(
            batch_messages(request)
                .iter()
                .map(|m| m["messageId"].as_str().unwrap_or_default().to_owned()),
        );
    }
    let expected: Vec<String> = (0..2000)
        .map(|i| format!("flex-wrapup-WT{i:032}"))
        .collect();
    assert_eq!(ids, expected, "every event once, in order");
    let line = function.log_line("wrap-up delivery").await;
    assert_eq!(
        (line["received"].clone(), line["sent"].clone()),
        (json!(2000), json!(2000))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_streams_batch_sends_what_it_can_and_skips_what_it_cannot() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    let answer = runtime
        .invoke(event_streams_delivery(&fixture("eventstreams/batch.json")))
        .await;
    assert_eq!(answer.status(), 204);
    let requests = segment.received();
    assert_eq!(
        requests.len(),
        1,
        "one batch request for the whole delivery"
    );
    let messages = batch_messages(&requests[0]);
    let names: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["event"].as_str())
        .collect();
    assert_eq!(
        names,
        ["Flex - Engagement Completed", "Flex - Wrap Up Completed"]
    );
    assert_eq!(messages[0]["timestamp"], "2026-11-22T10:15:30.250Z");
    let line = function.log_line("wrap-up delivery").await;
    assert_eq!(
        (
            line["received"].clone(),
            line["ignored"].clone(),
            line["skipped"].clone()
        ),
        (json!(4), json!(1), json!(1))
    );
    assert!(
        function.log_line("event skipped").await["problem"]
            .as_str()
            .unwrap_or_default()
            .contains("WT0000000000000000000000000000es03")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unrelated_event_type_is_acknowledged_without_a_request() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, _function) = wrap_up_function(&segment.url(), &[]).await;
    assert_eq!(
        runtime
            .invoke(taskrouter_callback("task-created"))
            .await
            .status(),
        204
    );
    assert!(segment.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_single_events_are_400s_with_a_clear_message() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, _function) = wrap_up_function(&segment.url(), &[]).await;
    let no_identity = runtime
        .invoke(taskrouter_callback("missing-attributes-reservation-wrapup"))
        .await;
    assert_eq!(no_identity.status(), 400);
    assert_eq!(no_identity.body()["error"]["code"], "invalid_event");
    assert!(
        no_identity.body()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no usable customer identity")
    );
    let bad_attributes = runtime
        .invoke(
            json!({"EventType": "reservation.wrapup", "TaskSid": "WT1", "TaskAttributes": "{oops"}),
        )
        .await;
    assert_eq!(bad_attributes.payload["error"]["code"], "invalid_event");
    assert!(
        segment.received().is_empty(),
        "nothing made up, nothing sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_direct_invoke_gets_json_and_an_unsigned_callback_a_401() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, _function) = wrap_up_function(&segment.url(), &[]).await;
    let direct = json!({"EventType": "task.completed", "TaskSid": "WTdirect", "TaskAttributes": {"from": "+15555550100", "topic": "docs"}});
    assert_eq!(
        runtime.invoke(direct).await.payload,
        json!({"accepted": true})
    );
    let mut unsigned = taskrouter_callback("voice-inbound-reservation-wrapup");
    unsigned["headers"]["x-twilio-signature"] = json!("forged");
    assert_eq!(runtime.invoke(unsigned).await.status(), 401);
    assert_eq!(segment.received().len(), 1);
}

/// A reservation wrap-up CloudEvent for task `sid` at `time`, as text, with `extra` JSON text
/// (which serde_json alone would refuse) in a payload field nobody reads.
fn cloud_event_text(sid: &str, time: &str, extra: &str) -> String {
    let mut event = fixture("eventstreams/reservation-wrapup.json");
    event["time"] = json!(time);
    event["data"]["payload"]["task_sid"] = json!(sid);
    event["data"]["payload"]["worker_name"] = json!("EXTRA");
    event.to_string().replace("\"EXTRA\"", extra)
}

#[tokio::test(flavor = "multi_thread")]
async fn json_python_reads_and_every_rfc3339_spelling_are_delivered_not_skipped() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    // GIVEN a delivery whose events hold a name cut inside an emoji (a lone surrogate escape,
    // as Python's json.dumps writes it), Python's NaN, and times in RFC 3339's other spellings
    let events = [
        cloud_event_text("WT1", "2026-11-22t10:15:30.250z", r#""Ana \ud83d""#),
        cloud_event_text("WT2", "2026-11-22 11:15:30.250+01:00", "NaN"),
        cloud_event_text("WT3", "2026-11-22 10:15:30.250Z", r#""\ude00 Bo""#),
    ];
    let body = format!("[{}]", events.join(","));
    let answer = runtime
        .invoke(e2e::signed_json_post(e2e::TWILIO_TOKEN, "", &body))
        .await;
    // THEN all three are delivered, each at the instant its time names
    assert_eq!(answer.status(), 204, "{:#?}", answer.payload);
    let messages = batch_messages(&segment.received()[0]);
    let delivered: Vec<(Value, Value)> = messages
        .iter()
        .map(|m| (m["properties"]["taskSid"].clone(), m["timestamp"].clone()))
        .collect();
    let at = json!("2026-11-22T10:15:30.250Z");
    assert_eq!(
        delivered,
        [
            (json!("WT1"), at.clone()),
            (json!("WT2"), at.clone()),
            (json!("WT3"), at)
        ]
    );
    assert_eq!(function.log_line("wrap-up delivery").await["skipped"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_time_without_an_offset_names_no_instant_and_is_skipped() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    let body = format!(
        "[{}, {}]",
        cloud_event_text("WT1", "2026-11-22T10:15:30.250", "1"),
        cloud_event_text("WT2", "2026-11-22T10:15:30.250Z", "1")
    );
    let answer = runtime
        .invoke(e2e::signed_json_post(e2e::TWILIO_TOKEN, "", &body))
        .await;
    assert_eq!(answer.status(), 204);
    assert_eq!(batch_messages(&segment.received()[0]).len(), 1);
    assert_eq!(function.log_line("wrap-up delivery").await["skipped"], 1);
}

/// A TaskRouter callback from `fixture` whose task carries the routing the Studio flow put in
/// its attributes (issue 31): the rule, the transition and the experiment's arm.
fn routed_callback(name: &str) -> Value {
    let mut fields = fixture(&format!("taskrouter/{name}.json"));
    let mut attributes: Value =
        serde_json::from_str(fields["TaskAttributes"].as_str().unwrap_or("{}")).unwrap_or_default();
    attributes["routing_rule"] = json!("read-docs-recently");
    attributes["routing_transition"] = json!("agent");
    attributes["routing_arm"] = json!("treatment");
    fields["TaskAttributes"] = json!(attributes.to_string());
    e2e::signed_fields(&fields)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_routing_travels_into_the_wrap_up_and_completion_events_in_both_schemas() {
    for schema in ["seed", "current"] {
        let segment = StandIn::always(accepted()).await;
        let (runtime, _function) =
            wrap_up_function(&segment.url(), &[("EVENT_SCHEMA", schema)]).await;
        for name in [
            "whatsapp-inbound-reservation-wrapup",
            "whatsapp-inbound-task-completed",
        ] {
            assert_eq!(runtime.invoke(routed_callback(name)).await.status(), 204);
        }
        for request in segment.received() {
            let message = &batch_messages(&request)[0];
            let properties = &message["properties"];
            assert_eq!(
                (
                    &properties["routingRule"],
                    &properties["routingTransition"],
                    &properties["routingArm"]
                ),
                (
                    &json!("read-docs-recently"),
                    &json!("agent"),
                    &json!("treatment")
                ),
                "{schema}: {message}"
            );
        }
    }
}
