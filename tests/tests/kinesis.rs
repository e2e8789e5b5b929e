//! wrap-up-ingest reading Event Streams' Kinesis sink through a Lambda event source mapping,
//! end to end: the real binary under the local Runtime API, Kinesis events built as Lambda
//! builds them, a Tracking API stand-in. The answer is a partial batch response: only records
//! whose messages Segment accepted are left out of `batchItemFailures`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use e2e::{
    PROFILE_TOKEN, Received, Reply, StandIn, fixture, kinesis_event, sequence_number,
    wrap_up_function,
};
use serde_json::{Value, json};

fn accepted() -> Reply {
    Reply::json(200, json!({"success": true}))
}

/// A reservation wrap-up CloudEvent for task `i`, as Event Streams writes it to the stream.
fn cloud_event(i: usize) -> Value {
    let mut event = fixture("eventstreams/reservation-wrapup.json");
    event["id"] = json!(format!("EZ{i:032}"));
    event["data"]["payload"]["task_sid"] = json!(format!("WT{i:032}"));
    event
}

/// A task completion CloudEvent for task `i` whose topic is `topic_bytes` long.
fn completion(i: usize, topic_bytes: usize) -> Value {
    let attributes =
        json!({"from": "+15555550104", "direction": "inbound", "topic": "t".repeat(topic_bytes)});
    json!({"specversion": "1.0", "type": "com.twilio.taskrouter.task.completed", "source": "/v1/Workspaces/WS1/Tasks",
           "id": format!("EZc{i:031}"), "time": "2026-11-22T10:20:00.000Z",
           "data": {"payload": {"eventtype": "task.completed", "task_sid": format!("WT{i:032}"),
                                "task_attributes": attributes.to_string()}}})
}

fn message_ids(requests: &[Received]) -> Vec<String> {
    requests
        .iter()
        .flat_map(|r| r.json()["batch"].as_array().cloned().unwrap_or_default())
        .map(|m| m["messageId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The sequence numbers a partial batch response names.
fn failures(answer: &Value) -> Vec<String> {
    answer["batchItemFailures"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn all_accepted_is_one_batch_and_no_failures() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    // One record holds a CloudEvent, another a list of two, as the sink may write them.
    let data = [
        cloud_event(1).to_string(),
        json!([cloud_event(2), completion(2, 10)]).to_string(),
        cloud_event(3).to_string(),
    ];
    let answer = runtime.invoke(kinesis_event(&data)).await.payload;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let requests = segment.received();
    assert_eq!(requests.len(), 1, "one batch for the invocation");
    assert_eq!(
        message_ids(&requests),
        [
            "flex-wrapup-WT00000000000000000000000000000001",
            "flex-wrapup-WT00000000000000000000000000000002",
            "flex-completed-WT00000000000000000000000000000002",
            "flex-wrapup-WT00000000000000000000000000000003"
        ]
    );
    let line = function.log_line("stream delivery").await;
    assert_eq!(
        (line["records"].clone(), line["sent"].clone()),
        (json!(3), json!(4))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn segment_down_reports_every_record_and_acknowledges_none() {
    let segment = StandIn::always(Reply::json(503, json!({}))).await;
    let (runtime, _function) =
        wrap_up_function(&segment.url(), &[("DELIVERY_DEADLINE_MS", "800")]).await;
    let data: Vec<String> = (0..3).map(|i| cloud_event(i).to_string()).collect();
    let answer = runtime.invoke(kinesis_event(&data)).await.payload;
    assert_eq!(
        failures(&answer),
        (0..3).map(sequence_number).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_second_of_two_batches_fails_exactly_its_records_are_reported() {
    // GIVEN Segment accepts the first request and fails every one after
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let segment = StandIn::start(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
        0 => accepted(),
        _ => Reply::json(500, json!({})),
    })
    .await;
    let (runtime, _function) =
        wrap_up_function(&segment.url(), &[("DELIVERY_DEADLINE_MS", "800")]).await;
    // AND 400 records of about 1.7 KB each: more than one 500 KB batch
    let data: Vec<String> = (0..400).map(|i| completion(i, 1_500).to_string()).collect();
    let answer = runtime.invoke(kinesis_event(&data)).await.payload;
    // THEN the records of the first batch are not reported, those of the second all are
    let requests = segment.received();
    let first_batch = requests[0].json()["batch"].as_array().map_or(0, Vec::len);
    assert!(first_batch > 0 && first_batch < 400, "{first_batch}");
    assert!(
        requests[1..].iter().all(|r| r.body == requests[1].body),
        "the second batch retried"
    );
    assert_eq!(
        failures(&answer),
        (first_batch..400).map(sequence_number).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_record_is_logged_and_never_blocks_the_shard() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    let mut far_future = cloud_event(2);
    far_future["time"] = json!("99999-01-01T00:00:00Z");
    let data = [
        cloud_event(1).to_string(),
        "this is not JSON".to_owned(),
        far_future.to_string(),
        cloud_event(3).to_string(),
    ];
    let answer = runtime.invoke(kinesis_event(&data)).await.payload;
    // The good records are delivered; the poison ones are reported as delivered, not retried.
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(
        message_ids(&segment.received()),
        [
            "flex-wrapup-WT00000000000000000000000000000001",
            "flex-wrapup-WT00000000000000000000000000000003"
        ]
    );
    let skipped = function.log_line("event skipped").await;
    let problem = skipped["problem"].as_str().unwrap_or_default();
    assert!(problem.contains(&sequence_number(1)), "{problem}");
    assert_eq!(function.log_line("stream delivery").await["skipped"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_of_the_same_records_has_the_same_message_ids() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, _function) = wrap_up_function(&segment.url(), &[]).await;
    let data: Vec<String> = (0..5).map(|i| cloud_event(i).to_string()).collect();
    runtime.invoke(kinesis_event(&data)).await;
    runtime.invoke(kinesis_event(&data)).await;
    let requests = segment.received();
    assert_eq!(requests.len(), 2);
    let (first, second) = (message_ids(&requests[..1]), message_ids(&requests[1..]));
    assert_eq!(first.len(), 5);
    assert_eq!(
        first, second,
        "Segment deduplicates the replay by messageId"
    );
    // The replay changes nothing in what is sent, so Segment keeps each message once.
    let timestamps = |r: &[Received]| -> Vec<Value> {
        r.iter()
            .flat_map(|r| r.json()["batch"].as_array().cloned().unwrap_or_default())
            .map(|m| m["timestamp"].clone())
            .collect()
    };
    assert_eq!(timestamps(&requests[..1]), timestamps(&requests[1..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_into_a_segment_compatible_server_keeps_each_engagement_once() {
    // The sandbox's Tracking API deduplicates by messageId as Segment does.
    let sandbox = sandbox::start(sandbox::Options {
        functions_addr: "127.0.0.1:0".parse().expect("addr"),
        segment_addr: "127.0.0.1:0".parse().expect("addr"),
        data: None,
        token: PROFILE_TOKEN.into(),
        space_id: "spa_test".into(),
        seed_demo: false,
        ..sandbox::Options::default()
    })
    .await
    .expect("sandbox starts");
    let (runtime, _function) = wrap_up_function(&sandbox.segment_url(), &[]).await;
    let day: Vec<String> = (0..3).map(|i| cloud_event(i).to_string()).collect();
    // The live mapping reads the day once; after a fix, a mapping at a timestamp reads it
    // again, in other batches.
    let live = runtime.invoke(kinesis_event(&day)).await.payload;
    let replay_one = runtime.invoke(kinesis_event(&day[..2])).await.payload;
    let replay_two = runtime.invoke(kinesis_event(&day[1..])).await.payload;
    for answer in [live, replay_one, replay_two] {
        assert_eq!(answer, json!({"batchItemFailures": []}));
    }
    let store = &sandbox.segment.store;
    let profile = store
        .resolve("phone", "+15555550104")
        .expect("store")
        .expect("the customer's profile");
    let events: Vec<String> = store
        .events(&profile)
        .expect("store")
        .into_iter()
        .filter(|e| e.kind == "track")
        .map(|e| e.message_id)
        .collect();
    assert_eq!(
        events,
        [
            "flex-wrapup-WT00000000000000000000000000000000",
            "flex-wrapup-WT00000000000000000000000000000001",
            "flex-wrapup-WT00000000000000000000000000000002"
        ],
        "three engagements, each once"
    );
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sinks_test_event_is_acknowledged_and_its_test_id_logged() {
    // `twilio api:events:v1:sinks:test:create` writes this to the stream; validating the
    // sink takes its test_id, which the operator finds in the function's log.
    let segment = StandIn::always(accepted()).await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    let test = json!({"specversion": "1.0", "type": "com.twilio.eventstreams.test-event",
        "source": "Sink", "id": "AC1234567890123456789012",
        "dataschema": "https://events-schemas.twilio.com/EventStreams.TestSink/1.json",
        "datacontenttype": "application/json", "time": "2020-08-18T21:10:02.113Z",
        "data": "{\"test_id\":\"95001c1e-5b8e-45f5-830d-f9cbf1d16420\"}"});
    let answer = runtime
        .invoke(kinesis_event(&[test.to_string()]))
        .await
        .payload;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(segment.count(), 0, "nothing to send");
    let line = function
        .log_line("Event Streams sink test received: validate the sink with this test_id")
        .await;
    assert_eq!(line["test_id"], "95001c1e-5b8e-45f5-830d-f9cbf1d16420");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_error_fails_the_invocation_so_lambda_retries_the_batch() {
    // GIVEN wrap-up-ingest configured wrongly: a blank write key and a deadline past its range
    let segment = StandIn::always(accepted()).await;
    let (runtime, _function) = wrap_up_function(
        &segment.url(),
        &[
            ("SEGMENT_WRITE_KEY", " "),
            ("DELIVERY_DEADLINE_MS", "15000"),
        ],
    )
    .await;
    // WHEN a batch of records arrives
    let data: Vec<String> = (0..3).map(|i| cloud_event(i).to_string()).collect();
    let answer = runtime.invoke(kinesis_event(&data)).await;
    // THEN the invocation fails: a response without `batchItemFailures` would be read as
    // "every record delivered", and the batch checkpointed and gone
    assert!(answer.failed, "{}", answer.payload);
    assert_eq!(segment.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_batch_sent_to_a_studio_function_is_never_answered_as_delivered() {
    // An event source mapping wired to the wrong function: nothing there delivers wrap-ups.
    let profiles = StandIn::always(Reply::profile_not_found()).await;
    let (runtime, _function) = e2e::studio_function("route-decision", &profiles.url(), &[]).await;
    let answer = runtime
        .invoke(kinesis_event(&[cloud_event(1).to_string()]))
        .await;
    assert!(answer.failed, "{}", answer.payload);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_is_not_base64_is_skipped_and_the_rest_delivered() {
    let segment = StandIn::always(accepted()).await;
    let (runtime, function) = wrap_up_function(&segment.url(), &[]).await;
    let data: Vec<String> = (0..3).map(|i| cloud_event(i).to_string()).collect();
    let mut event = kinesis_event(&data);
    event["Records"][1]["kinesis"]["data"] = json!("this is *not* base64!");
    let answer = runtime.invoke(event).await;
    // The poison record can never be delivered: logged with its sequence number, counted,
    // skipped; the other two are delivered and the batch is a real partial batch response.
    assert!(!answer.failed, "{}", answer.payload);
    assert_eq!(answer.payload, json!({"batchItemFailures": []}));
    assert_eq!(
        message_ids(&segment.received()),
        [
            "flex-wrapup-WT00000000000000000000000000000000",
            "flex-wrapup-WT00000000000000000000000000000002"
        ]
    );
    let skipped = function.log_line("event skipped").await;
    let problem = skipped["problem"].as_str().unwrap_or_default();
    assert!(problem.contains(&sequence_number(1)), "{problem}");
    assert!(problem.contains("base64"), "{problem}");
    assert_eq!(function.log_line("stream delivery").await["skipped"], 1);
    let poison = function
        .log_line("poison records skipped: they can never be delivered, so they are not retried")
        .await;
    assert_eq!(poison["sequence_numbers"], sequence_number(1));
}
