//! TaskRouter events as they arrive: a Workspace event callback (form fields, PascalCase,
//! `TaskAttributes` a JSON string), an Event Streams delivery (one CloudEvent or a list;
//! `data.payload` in snake_case), or the same fields sent as JSON directly.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::engagement::TaskEvent;

/// Why one event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("an event must be a JSON object")]
    NotAnObject,
    #[error("the event has no EventType")]
    NoEventType,
    #[error("the {event_type} event has no TaskSid")]
    NoTaskSid { event_type: String },
    #[error("TaskSid {shown:?} is not a task sid (1 to 64 letters and digits)")]
    BadTaskSid { shown: String },
    #[error("TaskAttributes of task {task_sid} is not a JSON object")]
    BadTaskAttributes { task_sid: String },
}

/// A delivery: its events, each read or not, and whether it was a list (a batch).
pub struct Delivery {
    pub events: Vec<Result<TaskEvent, DecodeError>>,
    pub is_batch: bool,
}

pub fn decode(input: Value) -> Delivery {
    match input {
        Value::Array(items) => Delivery {
            events: items.into_iter().map(decode_one).collect(),
            is_batch: true,
        },
        single => Delivery {
            events: vec![decode_one(single)],
            is_batch: false,
        },
    }
}

const CLOUD_EVENT_PREFIX: &str = "com.twilio.taskrouter.";
/// Real task sids are 34 characters (`WT` and 32 hex digits).
const MAX_TASK_SID: usize = 64;

fn decode_one(value: Value) -> Result<TaskEvent, DecodeError> {
    let Value::Object(object) = value else {
        return Err(DecodeError::NotAnObject);
    };
    if object.contains_key("specversion") {
        // CloudEvent: the fields are in data.payload (or data); its time is the event's.
        let time = object
            .get("time")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let type_name = object
            .get("type")
            .and_then(Value::as_str)
            .map(|t| t.trim_start_matches(CLOUD_EVENT_PREFIX).to_owned());
        let data = object.get("data").and_then(Value::as_object);
        let fields = data
            .and_then(|d| d.get("payload"))
            .and_then(Value::as_object)
            .or(data)
            .cloned()
            .unwrap_or_default();
        return from_fields(&fields, type_name, time);
    }
    from_fields(&object, None, None)
}

/// Reads an event from fields under any of the names the three shapes use.
fn from_fields(
    fields: &Map<String, Value>,
    event_type: Option<String>,
    time: Option<String>,
) -> Result<TaskEvent, DecodeError> {
    let event_type = text(
        fields,
        &["EventType", "eventtype", "event_type", "eventType"],
    )
    .or(event_type)
    .ok_or(DecodeError::NoEventType)?;
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
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(DecodeError::BadTaskAttributes { task_sid }),
        },
        Some(_) => return Err(DecodeError::BadTaskAttributes { task_sid }),
    };
    let occurred_at = time.or_else(|| timestamp(fields));
    Ok(TaskEvent {
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
        age_seconds: number(fields, &["TaskAge", "task_age", "taskAge"]),
        worker_sid: text(fields, &["WorkerSid", "worker_sid", "workerSid"]),
        occurred_at,
    })
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

fn number(fields: &Map<String, Value>, names: &[&str]) -> Option<u64> {
    match first(fields, names)? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The event's time as RFC 3339: `TimestampMs`, else `Timestamp` (epoch seconds, or
/// milliseconds when that large), else an RFC 3339 string as given.
fn timestamp(fields: &Map<String, Value>) -> Option<String> {
    if let Some(ms) = number(fields, &["TimestampMs", "timestamp_ms"]) {
        return Some(rfc3339(Duration::from_millis(ms)));
    }
    match first(fields, &["Timestamp", "timestamp"])? {
        Value::String(s) if s.contains('T') => Some(s.clone()),
        _ => {
            let n = number(fields, &["Timestamp", "timestamp"])?;
            // Epoch seconds stay below 1e11 until the year 5138.
            Some(rfc3339(if n >= 100_000_000_000 {
                Duration::from_millis(n)
            } else {
                Duration::from_secs(n)
            }))
        }
    }
}

fn rfc3339(since_epoch: Duration) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + since_epoch).to_string()
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
        let delivery = decode(input);
        assert!(!delivery.is_batch);
        delivery.events.into_iter().next().unwrap().unwrap()
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
    fn a_list_is_a_batch_of_events() {
        let delivery = decode(fixture("eventstreams/batch.json"));
        assert!(delivery.is_batch);
        let types: Vec<String> = delivery
            .events
            .iter()
            .map(|e| e.as_ref().unwrap().event_type.clone())
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
                json!({"EventType": "task.wrapup"}),
                DecodeError::NoTaskSid {
                    event_type: "task.wrapup".into(),
                },
            ),
            (
                json!({"EventType": "task.wrapup", "TaskSid": "WT1", "TaskAttributes": "{not json"}),
                DecodeError::BadTaskAttributes {
                    task_sid: "WT1".into(),
                },
            ),
            (
                json!({"EventType": "task.wrapup", "TaskSid": "WT1", "TaskAttributes": "[1]"}),
                DecodeError::BadTaskAttributes {
                    task_sid: "WT1".into(),
                },
            ),
        ];
        for (input, expected) in cases {
            let delivery = decode(input.clone());
            assert_eq!(
                delivery.events[0].as_ref().err(),
                Some(&expected),
                "{input}"
            );
        }
    }
}
