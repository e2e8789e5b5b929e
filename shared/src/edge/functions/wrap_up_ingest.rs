//! wrap-up-ingest's entry point: a TaskRouter callback, an Event Streams delivery (a JSON
//! list) or a Kinesis batch read one event at a time into the domain's delivery, each answered
//! the way its sender retries, and the function's wiring.
//!
//! It acknowledges (204) only once Segment accepted every message; otherwise it answers 5xx
//! so that a sender that retries (Event Streams) redelivers, and the deterministic messageIds
//! make the redelivery safe.

use std::time::Duration;

use aws_lambda_events::streams::KinesisEventResponse;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::adapters::config::{ConfigError, Startup, WrapUpIngestConfig};
use crate::adapters::segment::tracking::TrackingApi;
use crate::domain::arrival::Arrival;
use crate::domain::engagement::ReceivedEvent;
use crate::domain::operations::wrap_up::{EventsRead, LOGGED_SKIPS, WrapUpIngest};
use crate::domain::ports::EventSink;
use crate::edge::invocation::{Input, JsonList, StreamBatch, StreamRecord};
use crate::edge::taskrouter::{self, DecodeError};
use crate::edge::{Answer, Failure, Operation};
use crate::support::metrics::{self, Counter};

/// The most events one delivery may hold. An Event Streams CloudEvent of a TaskRouter event
/// is about a kilobyte (its envelope and some thirty payload fields), so Lambda's 6 MB request
/// holds about 6,000 of them; the bound keeps the messages a delivery becomes in memory.
pub const MAX_EVENTS: usize = 10_000;
/// The largest single event: TaskRouter bounds a task's attributes to a few tens of KB, and
/// an event read as JSON takes several times its size in memory.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Reads wrap-up-ingest's configuration and builds its client. Nothing is fetched: the
/// write key waits for the first invocation.
pub fn load(startup: &Startup<'_>) -> Result<WrapUpIngest<TrackingApi>, ConfigError> {
    let config = WrapUpIngestConfig::read(startup)?;
    Ok(WrapUpIngest {
        sink: TrackingApi::new(
            &config.tracking_api_url,
            config.write_key,
            startup.http.clone(),
        ),
        mapping: config.mapping,
        deadline: config.deadline,
        event_streams_deadline: config.event_streams_deadline,
    })
}

fn too_large(bytes: usize) -> String {
    format!("an event of {bytes} bytes, over the {MAX_EVENT_BYTES} one event may take")
}

/// The decoder's answer as the domain takes it: an event, or why it can never be delivered.
fn received(
    (decoded, cloud_event): (Result<ReceivedEvent, DecodeError>, bool),
) -> (Result<ReceivedEvent, String>, bool) {
    (decoded.map_err(|e| e.to_string()), cloud_event)
}

impl<S: EventSink> WrapUpIngest<S> {
    /// A batch of Kinesis records (Event Streams' Kinesis sink, through an event source
    /// mapping): every record's events in one delivery, answered with a partial batch response
    /// naming the records whose messages Segment did not accept. A record that can never be
    /// delivered is logged with its sequence number and reported as delivered, so that it
    /// cannot block the shard.
    async fn stream(&self, batch: StreamBatch, arrival: Arrival) -> Result<Answer, Failure> {
        let records = batch.records()?;
        let mut tally = EventsRead::default();
        // The record each message came from, by the message's place in the delivery.
        let mut record_of: Vec<usize> = Vec::new();
        // Records with an event that can never be delivered: each is named once.
        let mut poison: Vec<&str> = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let (sent_before, skipped_before) = (tally.messages.len(), tally.skipped);
            self.read_record(&mut tally, record);
            if tally.skipped > skipped_before {
                poison.push(&record.sequence_number);
            }
            record_of.extend(std::iter::repeat_n(
                index,
                tally.messages.len() - sent_before,
            ));
        }
        if !poison.is_empty() {
            tracing::warn!(
                records = poison.len(),
                sequence_numbers = %poison.join(","),
                "poison records skipped: they can never be delivered, so they are not retried"
            );
        }
        let mut response = KinesisEventResponse::default();
        if !tally.messages.is_empty() {
            let sent = self
                .deliver(&tally.messages, arrival.deadline(self.deadline))
                .await;
            if let Err(undelivered) = sent {
                let mut failed: Vec<usize> = record_of[undelivered.accepted..].to_vec();
                failed.dedup();
                for index in failed {
                    response.add_failure(records[index].sequence_number.clone());
                }
                tracing::error!(
                    records = records.len(),
                    failed = response.batch_item_failures.len(),
                    error = %undelivered.error,
                    "stream records not accepted; Lambda retries them"
                );
            }
        }
        metrics::add(Counter::WrapUpsSkipped, tally.skipped as u64);
        metrics::add(
            Counter::KinesisRecordsFailed,
            response.batch_item_failures.len() as u64,
        );
        tracing::info!(
            records = records.len(),
            received = tally.received,
            ignored = tally.ignored,
            skipped = tally.skipped,
            sent = tally.messages.len(),
            failed_records = response.batch_item_failures.len(),
            latency_us = arrival.at.elapsed().as_micros() as u64,
            "stream delivery"
        );
        serde_json::to_value(response)
            .map(Answer::Json)
            .map_err(|e| Failure::new(500, "internal_error", e.to_string()))
    }

    /// One record's events into the tally; an event that can never be delivered is skipped,
    /// named by the record's sequence number.
    fn read_record(&self, tally: &mut EventsRead, record: &StreamRecord) {
        let take = |tally: &mut EventsRead, outcome: Result<(), String>| {
            if let Err(problem) = outcome {
                tally.skip(&format!("record {}: {problem}", record.sequence_number));
            }
        };
        let Some(data) = &record.data else {
            return take(tally, Err("its data is not base64".into()));
        };
        match std::str::from_utf8(data) {
            Err(_) => take(tally, Err("its data is not UTF-8 text".into())),
            Ok(text) if text.trim_start().starts_with('[') => {
                match JsonList::parse(text.to_owned()) {
                    Ok(list) => list.for_each(|item| {
                        let outcome = self.take_item(tally, item);
                        take(tally, outcome);
                    }),
                    Err(error) => take(tally, Err(format!("its data is not JSON: {error}"))),
                }
            }
            Ok(text) if text.len() > MAX_EVENT_BYTES => take(tally, Err(too_large(text.len()))),
            Ok(text) => {
                let outcome = match crate::support::json_text::from_str::<Value>(text) {
                    Ok(value) => self.take(tally, received(taskrouter::decode(value))),
                    Err(error) => Err(format!("its data is not JSON: {error}")),
                };
                take(tally, outcome);
            }
        }
    }

    /// A delivery's events into the tally; one that can never be delivered is skipped, so
    /// that it holds back neither the others nor, redelivered, every later delivery.
    fn read_list(&self, tally: &mut EventsRead, list: &JsonList) -> Result<(), Failure> {
        if list.len() > MAX_EVENTS {
            return Err(Failure::new(
                413,
                "too_many_events",
                format!(
                    "the delivery holds {} events; one delivery is at most {MAX_EVENTS}",
                    list.len()
                ),
            ));
        }
        tally.messages.reserve(list.len());
        list.for_each(|item| {
            if let Err(problem) = self.take_item(tally, item) {
                tally.skip(&problem);
            }
        });
        if tally.skipped > LOGGED_SKIPS {
            tracing::warn!(
                skipped = tally.skipped,
                logged = LOGGED_SKIPS,
                "more events skipped than are logged one by one"
            );
        }
        Ok(())
    }

    /// One item of a JSON list: skipped when over what one event may take.
    fn take_item(&self, tally: &mut EventsRead, item: &RawValue) -> Result<(), String> {
        if item.get().len() > MAX_EVENT_BYTES {
            return Err(too_large(item.get().len()));
        }
        self.take(tally, received(taskrouter::decode_raw(item)))
    }
}

impl<S: EventSink> Operation for WrapUpIngest<S> {
    const NAME: &'static str = "wrap-up-ingest";
    /// Segment's Tracking API may take longer than the Profile API to accept a connection.
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// Lambda's own limit for a synchronous request. Event Streams documents no batch size,
    /// and it discards a delivery answered with a 4xx: a lower limit could lose events. The
    /// events are read one at a time, so the memory this takes stays bounded (see docs/src/wrap-up-ingest.md).
    const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
    /// A JSON object is one event.
    const MAX_OBJECT_BYTES: usize = MAX_EVENT_BYTES;

    async fn call(&self, input: Input, arrival: Arrival) -> Result<Answer, Failure> {
        let mut tally = EventsRead::default();
        match input {
            Input::Stream(batch) => return self.stream(batch, arrival).await,
            Input::Fields(fields) => {
                // A single event that cannot be used is the sender's to fix.
                self.take(
                    &mut tally,
                    received(taskrouter::decode(Value::Object(fields))),
                )
                .map_err(|problem| Failure::bad_request("invalid_event", problem))?;
            }
            Input::List(list) => self.read_list(&mut tally, &list)?,
        }
        self.deliver_read(tally, &arrival).await?;
        Ok(Answer::Accepted)
    }

    async fn warm_up(&self) {
        self.sink.warm_up().await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::adapters::memory::MemorySink;
    use crate::adapters::secrets::SecretError;
    use crate::domain::engagement::Mapping;
    use crate::domain::ports::TrackingError;
    use crate::edge::Edge;
    use crate::testing::{self, authenticator, event, signed_form};

    fn fixture(path: &str) -> Value {
        let full = format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
    }

    fn edge(sink: MemorySink) -> Edge<WrapUpIngest<MemorySink>> {
        Edge::new(
            WrapUpIngest {
                sink,
                mapping: Mapping::default(),
                deadline: Duration::from_secs(10),
                event_streams_deadline: Duration::from_millis(4_500),
            },
            authenticator(false),
        )
    }

    /// A TaskRouter callback with the fixture's fields, signed as TaskRouter signs it.
    fn callback(name: &str) -> Value {
        let fields = fixture(&format!("taskrouter/{name}.json"));
        let pairs: Vec<(String, String)> = fields
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        signed_form(&borrowed)
    }

    #[tokio::test]
    async fn a_wrap_up_callback_sends_its_one_message() {
        let edge = edge(MemorySink::new());
        let response = edge
            .handle(callback("voice-inbound-reservation-wrapup"), None)
            .await;
        assert_eq!(response["statusCode"], 204);
        let sent = edge.operation.sink.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["event"], "Flex - Engagement Completed");
        assert_eq!(
            sent[0]["messageId"],
            "flex-wrapup-WT0000000000000000000000000000vo01"
        );
        assert_eq!(
            sent[0]["properties"]["lastKnownAgentWorkerSid"],
            "WK0000000000000000000000000000aa01"
        );
    }

    #[tokio::test]
    async fn a_batch_sends_what_it_can_and_skips_what_it_cannot() {
        // GIVEN an Event Streams batch of a wrap-up and a completion, a task.created, a
        // web-chat wrap-up without an identity, and more events that can never be delivered
        let Value::Array(mut items) = fixture("eventstreams/batch.json") else {
            panic!("a list")
        };
        items.push(json!({"specversion": "1.0", "type": "com.twilio.taskrouter.reservation.wrapup", "data": {"payload": {"task_sid": "no sid!"}}}));
        items.push(json!("not an event"));
        items.push(json!({"EventType": "task.completed", "TaskSid": "WT1", "TaskAttributes": {"pad": "x".repeat(MAX_EVENT_BYTES)}}));
        let edge = edge(MemorySink::new());
        let answer = edge
            .operation
            .call(Input::from(Value::Array(items)), arrival())
            .await;
        // THEN it is acknowledged, and only the deliverable events went out, in order
        assert_eq!(answer, Ok(Answer::Accepted));
        let ids: Vec<String> = edge
            .operation
            .sink
            .sent()
            .iter()
            .map(|m| m["messageId"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            ids,
            [
                "flex-wrapup-WT0000000000000000000000000000es01",
                "flex-completed-WT0000000000000000000000000000es01"
            ]
        );
    }

    fn arrival() -> Arrival {
        let now = std::time::Instant::now();
        Arrival {
            at: now,
            answer_by: now + Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn other_event_types_are_acknowledged_and_send_nothing() {
        let edge = edge(MemorySink::new());
        for event in [
            json!({"EventType": "task.created", "TaskSid": "WT1"}),
            json!({"EventType": "worker.activity.update"}),
            json!({"EventType": "task.wrapup", "TaskSid": "WT1"}),
        ] {
            assert_eq!(
                edge.operation
                    .call(Input::from(event.clone()), arrival())
                    .await,
                Ok(Answer::Accepted),
                "{event}"
            );
        }
        assert!(edge.operation.sink.sent().is_empty());
    }

    #[tokio::test]
    async fn a_single_unusable_event_is_a_400_and_a_too_large_delivery_a_413() {
        let edge = edge(MemorySink::new());
        let (status, code) = testing::code(
            &edge
                .handle(callback("missing-attributes-reservation-wrapup"), None)
                .await,
        );
        assert_eq!((status, code.as_str()), (400, "invalid_event"));
        let many = Value::Array((0..=MAX_EVENTS).map(|_| json!({})).collect());
        let failure = edge
            .operation
            .call(Input::from(many), arrival())
            .await
            .unwrap_err();
        assert_eq!((failure.status, failure.code), (413, "too_many_events"));
        let big = format!(
            "{{\"EventType\": \"task.completed\", \"pad\": \"{}\"}}",
            "x".repeat(MAX_EVENT_BYTES)
        );
        let (status, code) = testing::code(
            &edge
                .handle(
                    event(
                        "POST",
                        "",
                        &[("content-type", "application/json")],
                        Some(&big),
                    ),
                    None,
                )
                .await,
        );
        assert_eq!(
            (status, code.as_str()),
            (401, "unauthorized"),
            "refused before it is read"
        );
        assert!(edge.operation.sink.sent().is_empty());
    }

    #[tokio::test]
    async fn what_the_sink_does_not_accept_is_not_acknowledged() {
        for (sink, status, code) in [
            (
                MemorySink::failing(TrackingError::NotAccepted {
                    attempts: 8,
                    last_problem: "HTTP 503".into(),
                }),
                502,
                "delivery_failed",
            ),
            (
                MemorySink::failing(TrackingError::Redirected { status: 302 }),
                502,
                "delivery_failed",
            ),
            (
                MemorySink::failing(TrackingError::WriteKey(SecretError::Unavailable {
                    name: "SEGMENT_WRITE_KEY",
                    problem: "down".into(),
                })),
                503,
                "secrets_unavailable",
            ),
        ] {
            let (got, got_code) = testing::code(
                &edge(sink)
                    .handle(callback("voice-inbound-reservation-wrapup"), None)
                    .await,
            );
            assert_eq!((got, got_code.as_str()), (status, code));
        }
    }

    /// How long a delivery of `input` waits for a sink that never answers (virtual time).
    async fn waited_for_a_sink_that_hangs(input: Input) -> Duration {
        let edge = edge(MemorySink::hanging());
        let started = tokio::time::Instant::now();
        let failure = edge.operation.call(input, arrival()).await.unwrap_err();
        assert_eq!(failure.code, "delivery_failed");
        started.elapsed()
    }

    fn about(elapsed: Duration, budget: Duration) -> bool {
        elapsed >= budget - Duration::from_millis(50)
            && elapsed <= budget + Duration::from_millis(10)
    }

    #[tokio::test(start_paused = true)]
    async fn event_streams_gets_its_answer_within_4_5_s() {
        let cloud_events = Input::from(json!([fixture("eventstreams/reservation-wrapup.json")]));
        let waited = waited_for_a_sink_that_hangs(cloud_events).await;
        assert!(about(waited, Duration::from_millis(4_500)), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_taskrouter_callback_waits_its_own_deadline() {
        let callback = Input::from(fixture("taskrouter/voice-inbound-reservation-wrapup.json"));
        let waited = waited_for_a_sink_that_hangs(callback).await;
        assert!(about(waited, Duration::from_secs(10)), "{waited:?}");
    }

    /// A Kinesis event of one record per item of `data`, sequence numbers `seq-0`, `seq-1`...
    fn kinesis(data: &[Value]) -> Input {
        use base64::Engine as _;
        let records: Vec<Value> = data
            .iter()
            .enumerate()
            .map(|(i, data)| {
                json!({"eventSource": "aws:kinesis", "kinesis": {"sequenceNumber": format!("seq-{i}"), "partitionKey": "p",
                    "approximateArrivalTimestamp": 1795000000.0,
                    "data": base64::engine::general_purpose::STANDARD.encode(data.to_string())}})
            })
            .collect();
        match crate::edge::invocation::Invocation::decode(json!({"Records": records}), 1 << 20) {
            Ok(crate::edge::invocation::Invocation::Direct(input)) => input,
            other => panic!("{other:?}"),
        }
    }

    fn item_failures(answer: Result<Answer, Failure>) -> Vec<String> {
        let Ok(Answer::Json(body)) = answer else {
            panic!("{answer:?}")
        };
        body["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| f["itemIdentifier"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_stream_batch_reports_exactly_the_records_segment_did_not_accept() {
        let event = fixture("eventstreams/reservation-wrapup.json");
        let mut second = event.clone();
        second["data"]["payload"]["task_sid"] = json!("WT2");
        let records = [
            event.clone(),
            json!([second, "poison"]),
            json!("not an event"),
        ];
        // All accepted: no failures, the poison items logged and reported delivered.
        let edge = edge(MemorySink::new());
        assert!(item_failures(edge.operation.call(kinesis(&records), arrival()).await).is_empty());
        assert_eq!(edge.operation.sink.sent().len(), 2);
        // The first message accepted, the second not: only the second's record is reported.
        let error = TrackingError::Refused { status: 400 };
        let edge = edge_with(MemorySink::failing_after(1, error));
        assert_eq!(
            item_failures(edge.operation.call(kinesis(&records), arrival()).await),
            ["seq-1"]
        );
        // Nothing accepted (the write key could not be had): every record with a message.
        let unavailable = TrackingError::WriteKey(SecretError::Unavailable {
            name: "SEGMENT_WRITE_KEY",
            problem: "down".into(),
        });
        let edge = edge_with(MemorySink::failing(unavailable));
        assert_eq!(
            item_failures(edge.operation.call(kinesis(&records), arrival()).await),
            ["seq-0", "seq-1"]
        );
    }

    fn edge_with(sink: MemorySink) -> Edge<WrapUpIngest<MemorySink>> {
        edge(sink)
    }
}
