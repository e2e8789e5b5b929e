//! TaskRouter events as they arrive: a Workspace event callback (form fields, PascalCase,
//! `TaskAttributes` a JSON string), an Event Streams delivery (one CloudEvent or a list;
//! `data.payload` in snake_case), or the same fields sent as JSON directly.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::domain::engagement::{Moment, ReceivedEvent, SINK_TEST_EVENT, TaskEvent};
use crate::domain::timestamps::Timestamp;

/// Why one event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("an event must be a JSON object")]
    NotAnObject,
    #[error("the event is not valid JSON: {0}")]
    NotJson(String),
    #[error("the event has no EventType")]
    NoEventType,
    #[error("the {event_type} event has no TaskSid")]
    NoTaskSid { event_type: String },
    #[error("TaskSid {shown:?} is not a task sid (1 to 64 letters and digits)")]
    BadTaskSid { shown: String },
    #[error("TaskAttributes of task {task_sid} is not a JSON object")]
    BadTaskAttributes { task_sid: String },
    #[error(
        "TaskAttributes of task {task_sid} is {bytes} bytes, more than TaskRouter allows a task"
    )]
    TaskAttributesTooLarge { task_sid: String, bytes: usize },
    #[error("the time of task {task_sid}'s event is not a time from 1970 to 9999 ({field})")]
    BadTime {
        task_sid: String,
        field: &'static str,
    },
}

const CLOUD_EVENT_PREFIX: &str = "com.twilio.taskrouter.";
/// Twilio's test ids are UUIDs; anything longer is not logged.
const MAX_TEST_ID: usize = 64;
/// TaskRouter bounds a task's attributes to a few tens of KB; JSON text of more is not one.
const MAX_TASK_ATTRIBUTES_BYTES: usize = 128 * 1024;
/// Real task sids are 34 characters (`WT` and 32 hex digits).
const MAX_TASK_SID: usize = 64;

/// Whether a JSON event is a CloudEvent (what Event Streams delivers).
pub fn is_cloud_event(object: &Map<String, Value>) -> bool {
    object.contains_key("specversion")
}

/// One event still in the text it came as (an item of a JSON list).
pub fn decode_raw(raw: &RawValue) -> (Result<ReceivedEvent, DecodeError>, bool) {
    match crate::support::json_text::from_str::<Value>(raw.get()) {
        Ok(value) => decode(value),
        Err(error) => (Err(DecodeError::NotJson(error.to_string())), false),
    }
}

/// One event; the flag says whether it came as a CloudEvent.
pub fn decode(value: Value) -> (Result<ReceivedEvent, DecodeError>, bool) {
    let Value::Object(mut object) = value else {
        return (Err(DecodeError::NotAnObject), false);
    };
    if !is_cloud_event(&object) {
        return (from_fields(&object, None, None), false);
    }
    // CloudEvent: the fields are in data.payload (or data); its time is the event's.
    let time = object
        .get("time")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let type_name = object
        .get("type")
        .and_then(Value::as_str)
        .map(|t| t.trim_start_matches(CLOUD_EVENT_PREFIX).to_owned());
    // Webhook sinks send `data` as an object; Twilio's Kinesis samples show it as a string
    // holding the JSON object (the Event Streams quickstart), so both are read.
    let data = match object.remove("data") {
        Some(Value::String(text)) => crate::support::json_text::from_str::<Value>(&text).ok(),
        other => other,
    };
    let fields = match data {
        Some(Value::Object(mut data)) => match data.remove("payload") {
            Some(Value::Object(payload)) => payload,
            _ => data,
        },
        _ => Map::new(),
    };
    if type_name.as_deref() == Some(SINK_TEST_EVENT) {
        return (sink_test(&fields), true);
    }
    (from_fields(&fields, type_name, time), true)
}

/// A sink test names its test id; one without a usable id is an event of no interest.
fn sink_test(fields: &Map<String, Value>) -> Result<ReceivedEvent, DecodeError> {
    match text(fields, &["test_id"]) {
        Some(test_id)
            if test_id.len() <= MAX_TEST_ID
                && test_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            Ok(ReceivedEvent::SinkTest { test_id })
        }
        _ => Ok(ReceivedEvent::Other {
            event_type: SINK_TEST_EVENT.to_owned(),
        }),
    }
}

/// Reads an event from fields under any of the names the three shapes use. The type comes
/// first: only a wrap-up or a completion is read any further.
fn from_fields(
    fields: &Map<String, Value>,
    event_type: Option<String>,
    time: Option<String>,
) -> Result<ReceivedEvent, DecodeError> {
    let event_type = text(
        fields,
        &["EventType", "eventtype", "event_type", "eventType"],
    )
    .or(event_type)
    .ok_or(DecodeError::NoEventType)?;
    if Moment::of(&event_type).is_none() {
        return Ok(ReceivedEvent::Other { event_type });
    }
    let Some(task_sid) = text(fields, &["TaskSid", "task_sid", "taskSid"]) else {
        return Err(DecodeError::NoTaskSid { event_type });
    };
    // The messageId is built from it and must stay under Segment's 100 characters.
    if task_sid.len() > MAX_TASK_SID || !task_sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(DecodeError::BadTaskSid {
            shown: task_sid.chars().take(40).collect(),
        });
    }
    let attributes = match first(
        fields,
        &["TaskAttributes", "task_attributes", "taskAttributes"],
    ) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(Value::String(text)) if text.trim().is_empty() => Map::new(),
        Some(Value::String(text)) if text.len() > MAX_TASK_ATTRIBUTES_BYTES => {
            return Err(DecodeError::TaskAttributesTooLarge {
                task_sid,
                bytes: text.len(),
            });
        }
        Some(Value::String(text)) => match crate::support::json_text::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(DecodeError::BadTaskAttributes { task_sid }),
        },
        Some(_) => return Err(DecodeError::BadTaskAttributes { task_sid }),
    };
    let occurred_at = match time {
        Some(time) => Some(Timestamp::parse_rfc3339(&time).ok_or(DecodeError::BadTime {
            task_sid: task_sid.clone(),
            field: "time",
        })?),
        None => timestamp(fields).map_err(|field| DecodeError::BadTime {
            task_sid: task_sid.clone(),
            field,
        })?,
    };
    Ok(ReceivedEvent::Task(TaskEvent {
        event_type,
        task_sid,
        attributes,
        channel: text(
            fields,
            &[
                "TaskChannelUniqueName",
                "task_channel_unique_name",
                "taskChannelUniqueName",
            ],
        ),
        age_seconds: whole_number(first(fields, &["TaskAge", "task_age", "taskAge"])),
        worker_sid: text(fields, &["WorkerSid", "worker_sid", "workerSid"]),
        occurred_at: occurred_at.map(Timestamp::to_rfc3339),
    }))
}

fn first<'a>(fields: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|name| fields.get(*name))
}

fn text(fields: &Map<String, Value>, names: &[&str]) -> Option<String> {
    match first(fields, names)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// A whole, non-negative number from a JSON number or the string a form sends; fractions
/// are rounded. `None` when absent or not such a number.
fn whole_number(value: Option<&Value>) -> Option<u64> {
    let float = match value? {
        Value::Number(n) => match n.as_u64() {
            Some(whole) => return Some(whole),
            None => n.as_f64()?,
        },
        Value::String(s) => match s.trim().parse::<u64>() {
            Ok(whole) => return Some(whole),
            Err(_) => s.trim().parse::<f64>().ok()?,
        },
        _ => return None,
    };
    // `as` saturates, so 1e300 becomes u64::MAX: too large for any time, refused there.
    (float.is_finite() && float >= 0.0).then(|| float.round() as u64)
}

/// The event's time: `TimestampMs`, else `Timestamp` (epoch seconds, or milliseconds when
/// that large, or RFC 3339 text). Absent is `Ok(None)` (Segment then uses the time it
/// received the event); present but not a writable time is the field's name.
fn timestamp(fields: &Map<String, Value>) -> Result<Option<Timestamp>, &'static str> {
    let present = |names: &[&str]| {
        first(fields, names).filter(|value| match value {
            Value::Null => false,
            Value::String(s) => !s.trim().is_empty(),
            _ => true,
        })
    };
    if let Some(value) = present(&["TimestampMs", "timestamp_ms"]) {
        return whole_number(Some(value))
            .and_then(Timestamp::from_millis)
            .map(Some)
            .ok_or("TimestampMs");
    }
    let Some(value) = present(&["Timestamp", "timestamp"]) else {
        return Ok(None);
    };
    if let Value::String(s) = value
        && s.contains('T')
    {
        return Timestamp::parse_rfc3339(s).map(Some).ok_or("Timestamp");
    }
    whole_number(Some(value))
        .and_then(Timestamp::from_epoch_number)
        .map(Some)
        .ok_or("Timestamp")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fixture(path: &str) -> Value {
        let full = format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
    }

    fn one(input: Value) -> TaskEvent {
        match decode(input).0 {
            Ok(ReceivedEvent::Task(event)) => event,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_taskrouter_callback_is_read_from_its_form_fields() {
        let event = one(fixture("taskrouter/voice-inbound-reservation-wrapup.json"));
        assert_eq!(event.event_type, "reservation.wrapup");
        assert_eq!(event.task_sid, "WT0000000000000000000000000000vo01");
        assert_eq!(event.attributes["caller"], "+15555550100");
        assert_eq!(event.channel.as_deref(), Some("voice"));
        assert_eq!(event.age_seconds, Some(342));
        assert_eq!(
            event.worker_sid.as_deref(),
            Some("WK0000000000000000000000000000aa01")
        );
        assert_eq!(
            event.occurred_at.as_deref(),
            Some("2026-11-18T11:06:40.123Z")
        );
    }

    #[test]
    fn an_event_streams_cloud_event_is_read_from_its_payload() {
        let event = one(fixture("eventstreams/reservation-wrapup.json"));
        assert_eq!(event.event_type, "reservation.wrapup");
        assert_eq!(event.task_sid, "WT0000000000000000000000000000es01");
        assert_eq!(event.attributes["from"], "+15555550104");
        assert_eq!(event.age_seconds, Some(455));
        assert_eq!(
            event.worker_sid.as_deref(),
            Some("WK0000000000000000000000000000aa02")
        );
        assert_eq!(
            event.occurred_at.as_deref(),
            Some("2026-11-22T10:15:30.250Z")
        );
    }

    #[test]
    fn a_cloud_event_whose_data_is_a_json_string_is_read_like_one_whose_data_is_an_object() {
        // Twilio's Kinesis samples carry `data` as a string holding the JSON object.
        let mut event = fixture("eventstreams/reservation-wrapup.json");
        event["data"] = Value::String(event["data"].to_string());
        let read = one(event);
        assert_eq!(read.task_sid, "WT0000000000000000000000000000es01");
        assert_eq!(read.attributes["from"], "+15555550104");
        // A string that is not JSON is an event without fields, not a panic.
        let mut broken = fixture("eventstreams/reservation-wrapup.json");
        broken["data"] = json!("{not json");
        assert!(matches!(
            decode(broken).0,
            Err(DecodeError::NoEventType) | Err(DecodeError::NoTaskSid { .. })
        ));
    }

    #[test]
    fn a_sink_test_gives_its_test_id() {
        // The quickstart's test event, `data` as the string Kinesis records carry.
        let test = json!({"specversion": "1.0", "type": "com.twilio.eventstreams.test-event",
            "source": "Sink", "id": "AC1234567890123456789012",
            "data": "{\"test_id\":\"95001c1e-5b8e-45f5-830d-f9cbf1d16420\"}"});
        assert_eq!(
            decode(test).0,
            Ok(ReceivedEvent::SinkTest {
                test_id: "95001c1e-5b8e-45f5-830d-f9cbf1d16420".into()
            })
        );
        let hostile = json!({"specversion": "1.0", "type": "com.twilio.eventstreams.test-event",
            "data": {"test_id": "\n{\"level\":\"ERROR\"}"}});
        assert!(matches!(decode(hostile).0, Ok(ReceivedEvent::Other { .. })));
    }

    #[test]
    fn a_list_is_a_batch_of_events() {
        let Value::Array(items) = fixture("eventstreams/batch.json") else {
            panic!("a list")
        };
        let types: Vec<String> = items
            .into_iter()
            .map(|item| {
                let (decoded, cloud_event) = decode(item);
                assert!(cloud_event);
                decoded.unwrap().event_type().to_owned()
            })
            .collect();
        assert_eq!(
            types,
            [
                "reservation.wrapup",
                "task.completed",
                "task.created",
                "reservation.wrapup"
            ]
        );
    }

    #[test]
    fn direct_json_may_carry_attributes_as_an_object_and_seconds_timestamps() {
        let event = one(json!({
            "EventType": "task.completed", "TaskSid": "WT1", "TaskAttributes": {"from": "+15555550100"},
            "TaskAge": 12, "Timestamp": 1795000000
        }));
        assert_eq!(event.attributes["from"], "+15555550100");
        assert_eq!(event.age_seconds, Some(12));
        assert_eq!(
            event.occurred_at.as_deref(),
            Some("2026-11-18T11:06:40.000Z")
        );
    }

    #[test]
    fn broken_events_say_what_is_missing() {
        let cases = [
            (json!("text"), DecodeError::NotAnObject),
            (json!({"TaskSid": "WT1"}), DecodeError::NoEventType),
            (
                json!({"EventType": "reservation.wrapup"}),
                DecodeError::NoTaskSid {
                    event_type: "reservation.wrapup".into(),
                },
            ),
            (
                json!({"EventType": "reservation.wrapup", "TaskSid": "WT1", "TaskAttributes": "{not json"}),
                DecodeError::BadTaskAttributes {
                    task_sid: "WT1".into(),
                },
            ),
            (
                json!({"EventType": "task.completed", "TaskSid": "WT1", "TaskAttributes": "[1]"}),
                DecodeError::BadTaskAttributes {
                    task_sid: "WT1".into(),
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(decode(input.clone()).0.err(), Some(expected), "{input}");
        }
    }

    #[test]
    fn other_event_types_are_read_no_further_than_their_type() {
        // A worker event has no task at all; an Event Streams one neither.
        for input in [
            json!({"EventType": "worker.activity.update", "WorkerSid": "WK1"}),
            json!({"specversion": "1.0", "type": "com.twilio.taskrouter.worker.activity.update", "data": {"payload": {"worker_sid": "WK1"}}}),
            json!({"EventType": "task.created", "TimestampMs": "253402300800000"}),
            json!({"EventType": "task.wrapup", "TaskSid": "not a sid!"}),
        ] {
            assert!(
                matches!(decode(input.clone()).0, Ok(ReceivedEvent::Other { .. })),
                "{input}"
            );
        }
    }

    #[test]
    fn times_that_cannot_be_written_are_refused_not_crashed_on() {
        // GIVEN a completion whose time is at or after year 10000, however it is written
        for (field, value) in [
            ("TimestampMs", json!(253402300800000_u64)),
            ("TimestampMs", json!("253402300800000")),
            ("TimestampMs", json!(1e300)),
            ("TimestampMs", json!(-5)),
            ("TimestampMs", json!("soon")),
            ("Timestamp", json!(u64::MAX)),
            ("Timestamp", json!("10000-01-01T00:00:00Z")),
            ("Timestamp", json!("1969-12-31T23:59:59Z")),
        ] {
            let input = json!({"EventType": "task.completed", "TaskSid": "WT1", field: value});
            // THEN it is an event that cannot be read, naming the field
            assert_eq!(
                decode(input.clone()).0,
                Err(DecodeError::BadTime {
                    task_sid: "WT1".into(),
                    field
                }),
                "{input}"
            );
        }
        let cloud = json!({"specversion": "1.0", "type": "com.twilio.taskrouter.task.completed",
            "time": "99999-01-01T00:00:00Z", "data": {"payload": {"task_sid": "WT1"}}});
        assert_eq!(
            decode(cloud).0,
            Err(DecodeError::BadTime {
                task_sid: "WT1".into(),
                field: "time"
            })
        );
        // AND the last writable millisecond, or none at all, is fine
        let last = one(
            json!({"EventType": "task.completed", "TaskSid": "WT1", "TimestampMs": 253402300799999_u64}),
        );
        assert_eq!(
            last.occurred_at.as_deref(),
            Some("9999-12-31T23:59:59.999Z")
        );
        let none = one(
            json!({"EventType": "task.completed", "TaskSid": "WT1", "TimestampMs": "", "Timestamp": null}),
        );
        assert_eq!(none.occurred_at, None);
    }
}
