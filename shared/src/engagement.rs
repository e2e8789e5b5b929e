//! Flex engagements into Segment track events: a task's wrap-up becomes "Flex - Engagement
//! Completed", its completion "Flex - Wrap Up Completed", so the computed traits routing reads
//! (total inbounds, frequent channel, last agent, last topic, sentiment) stay current.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::identity::{normalise_email, normalise_phone};

/// A TaskRouter event, whatever shape it arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEvent {
    /// `task.wrapup`, `reservation.completed`, ...
    pub event_type: String,
    pub task_sid: String,
    pub attributes: Map<String, Value>,
    /// The task channel's unique name (`voice`, `chat`, `sms`, ...).
    pub channel: Option<String>,
    pub age_seconds: Option<u64>,
    pub worker_sid: Option<String>,
    /// RFC 3339.
    pub occurred_at: Option<String>,
}

/// The two moments of an engagement that feed the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    WrapUp,
    Completed,
}

impl Moment {
    /// Task and reservation events alike: both name the same moment of the same task, and
    /// the messageId (moment + task) lets Segment keep one of them.
    pub fn of(event_type: &str) -> Option<Self> {
        match event_type {
            "task.wrapup" | "reservation.wrapup" => Some(Self::WrapUp),
            "task.completed" | "reservation.completed" => Some(Self::Completed),
            _ => None,
        }
    }

    fn id(self) -> &'static str {
        match self {
            Self::WrapUp => "wrapup",
            Self::Completed => "completed",
        }
    }
}

/// Event names and where in the task attributes each fact is read; defaults follow the
/// Unified Profiles setup guide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub engagement_completed_event: String,
    pub wrap_up_completed_event: String,
    /// Where the customer's address is on inbound tasks (first match wins).
    pub inbound_address_paths: Vec<String>,
    /// On outbound tasks `from` is our own number: the customer is the one called.
    pub outbound_address_paths: Vec<String>,
    pub email_paths: Vec<String>,
    pub user_id_paths: Vec<String>,
    pub topic_paths: Vec<String>,
    pub sentiment_paths: Vec<String>,
    pub disposition_code_paths: Vec<String>,
    /// The Segment identifier type for phone numbers (`context.externalIds[].type`).
    pub phone_identifier: String,
}

fn paths(list: &[&str]) -> Vec<String> {
    list.iter().map(|p| (*p).to_owned()).collect()
}

impl Default for Mapping {
    fn default() -> Self {
        Self {
            engagement_completed_event: "Flex - Engagement Completed".into(),
            wrap_up_completed_event: "Flex - Wrap Up Completed".into(),
            inbound_address_paths: paths(&["customerAddress", "from", "caller", "customers.phone"]),
            outbound_address_paths: paths(&[
                "customerAddress",
                "outbound_to",
                "to",
                "called",
                "customers.phone",
            ]),
            email_paths: paths(&["customers.email", "email"]),
            user_id_paths: paths(&["userId", "user_id"]),
            topic_paths: paths(&["topic", "codes.topic", "conversations.topic"]),
            sentiment_paths: paths(&["sentiment", "conversations.sentiment"]),
            disposition_code_paths: paths(&[
                "dispositionCode",
                "codes.dispositionCode",
                "conversations.outcome",
            ]),
            phone_identifier: "phone".into(),
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// A Segment track message.
    Track(Value),
    /// Not a wrap-up or completion: acknowledged, nothing sent.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error(
        "task {task_sid} has no usable customer identity (no phone, email or user id in the configured task attributes)"
    )]
    NoCustomerIdentity { task_sid: String },
}

/// Who the customer is, as Segment will resolve them.
enum Customer {
    Phone(String),
    Email(String),
}

impl Mapping {
    pub fn map(&self, event: &TaskEvent) -> Result<Mapped, MappingError> {
        let Some(moment) = Moment::of(&event.event_type) else {
            return Ok(Mapped::Ignored);
        };
        let direction = direction(&event.attributes);
        let customer = self.customer(&event.attributes, direction.as_deref());
        let user_id = self
            .user_id_paths
            .iter()
            .find_map(|p| text_at(&event.attributes, p));
        if customer.is_none() && user_id.is_none() {
            return Err(MappingError::NoCustomerIdentity {
                task_sid: event.task_sid.clone(),
            });
        }

        let mut properties = Map::new();
        let event_name = match moment {
            Moment::WrapUp => {
                if let Some(direction) = direction {
                    properties.insert("direction".into(), json!(direction));
                }
                let channel =
                    text_at(&event.attributes, "channelType").or_else(|| event.channel.clone());
                if let Some(channel) = channel {
                    properties.insert("channelType".into(), json!(channel));
                }
                if let Some(worker) = &event.worker_sid {
                    properties.insert("lastKnownAgentWorkerSid".into(), json!(worker));
                }
                if let Some(age) = event.age_seconds {
                    properties.insert("duration".into(), json!(age));
                }
                &self.engagement_completed_event
            }
            Moment::Completed => {
                for (name, candidates) in [
                    ("topic", &self.topic_paths),
                    ("sentiment", &self.sentiment_paths),
                    ("dispositionCode", &self.disposition_code_paths),
                ] {
                    if let Some(value) = candidates
                        .iter()
                        .find_map(|p| text_at(&event.attributes, p))
                    {
                        properties.insert(name.into(), json!(value));
                    }
                }
                &self.wrap_up_completed_event
            }
        };
        properties.insert("taskSid".into(), json!(event.task_sid));

        let mut context = Map::new();
        match &customer {
            Some(Customer::Phone(phone)) => {
                context.insert("traits".into(), json!({"phone": phone}));
                context.insert(
                    "externalIds".into(),
                    json!([{"id": phone, "type": self.phone_identifier, "collection": "users", "encoding": "none"}]),
                );
            }
            Some(Customer::Email(email)) => {
                context.insert("traits".into(), json!({"email": email}));
            }
            None => {}
        }

        let mut message = Map::new();
        message.insert("type".into(), json!("track"));
        message.insert("event".into(), json!(event_name));
        // One user id is the strongest identity; without it an anonymous id derived from the
        // customer keeps every task of theirs on one profile (a fresh id per task would
        // exceed Segment's identifier limits and split the profile).
        match (&user_id, &customer) {
            (Some(user_id), _) => message.insert("userId".into(), json!(user_id)),
            (None, Some(customer)) => {
                message.insert("anonymousId".into(), json!(anonymous_id(customer)))
            }
            (None, None) => None,
        };
        // Deterministic, so a redelivered event is deduplicated by Segment.
        message.insert(
            "messageId".into(),
            json!(format!("flex-{}-{}", moment.id(), event.task_sid)),
        );
        if let Some(at) = &event.occurred_at {
            message.insert("timestamp".into(), json!(at));
        }
        message.insert("properties".into(), Value::Object(properties));
        message.insert("context".into(), Value::Object(context));
        Ok(Mapped::Track(Value::Object(message)))
    }

    fn customer(
        &self,
        attributes: &Map<String, Value>,
        direction: Option<&str>,
    ) -> Option<Customer> {
        let address_paths = if direction == Some("Outbound") {
            &self.outbound_address_paths
        } else {
            &self.inbound_address_paths
        };
        let addresses: Vec<String> = address_paths
            .iter()
            .filter_map(|p| text_at(attributes, p))
            .collect();
        if let Some(phone) = addresses.iter().find_map(|a| normalise_phone(a)) {
            return Some(Customer::Phone(phone));
        }
        self.email_paths
            .iter()
            .filter_map(|p| text_at(attributes, p))
            .chain(addresses)
            .find_map(|candidate| normalise_email(&candidate))
            .map(Customer::Email)
    }
}

/// `Inbound` / `Outbound` from the task's `direction` or Flex Insights' `conversations.direction`.
fn direction(attributes: &Map<String, Value>) -> Option<String> {
    let raw = text_at(attributes, "direction")
        .or_else(|| text_at(attributes, "conversations.direction"))?;
    match raw.to_ascii_lowercase().as_str() {
        "inbound" => Some("Inbound".into()),
        "outbound" | "outbound-api" | "outbound-dial" => Some("Outbound".into()),
        _ => None,
    }
}

/// A non-blank string (or number) at a dotted path.
fn text_at(attributes: &Map<String, Value>, path: &str) -> Option<String> {
    let mut segments = path.split('.');
    let mut current = attributes.get(segments.next()?)?;
    for segment in segments {
        current = current.as_object()?.get(segment)?;
    }
    match current {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Stable per customer, and not the phone number itself.
fn anonymous_id(customer: &Customer) -> String {
    let key = match customer {
        Customer::Phone(phone) => format!("phone:{phone}"),
        Customer::Email(email) => format!("email:{email}"),
    };
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("flex-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskrouter;

    fn fixture(path: &str) -> TaskEvent {
        let full = format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        let value: Value = serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap();
        taskrouter::decode(value).events.remove(0).unwrap()
    }

    fn track(path: &str) -> Value {
        match Mapping::default().map(&fixture(path)) {
            Ok(Mapped::Track(message)) => message,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn an_inbound_voice_wrap_up_is_an_engagement_completed_event() {
        // GIVEN a reservation.wrapup for an inbound call
        let message = track("taskrouter/voice-inbound-reservation-wrapup.json");
        // THEN it is the whole track message the guide's traits need
        assert_eq!(
            message,
            json!({
                "type": "track",
                "event": "Flex - Engagement Completed",
                "anonymousId": anonymous_id(&Customer::Phone("+15555550100".into())),
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
    }

    #[test]
    fn an_outbound_call_identifies_the_customer_called_not_our_number() {
        let message = track("taskrouter/voice-outbound-reservation-wrapup.json");
        assert_eq!(message["properties"]["direction"], "Outbound");
        assert_eq!(message["context"]["traits"]["phone"], "+15555550101");
    }

    #[test]
    fn an_sms_completion_carries_topic_sentiment_and_disposition() {
        let message = track("taskrouter/sms-inbound-task-completed.json");
        assert_eq!(message["event"], "Flex - Wrap Up Completed");
        assert_eq!(
            message["messageId"],
            "flex-completed-WT0000000000000000000000000000sm01"
        );
        assert_eq!(
            message["properties"],
            json!({"topic": "billing", "sentiment": "negative", "dispositionCode": "refund-issued", "taskSid": "WT0000000000000000000000000000sm01"})
        );
        assert_eq!(message["context"]["traits"]["phone"], "+15555550102");
    }

    #[test]
    fn whatsapp_addresses_lose_their_prefix_and_codes_are_read() {
        let wrapup = track("taskrouter/whatsapp-inbound-reservation-wrapup.json");
        assert_eq!(wrapup["properties"]["channelType"], "whatsapp");
        assert_eq!(wrapup["context"]["externalIds"][0]["id"], "+447700900123");
        let completed = track("taskrouter/whatsapp-inbound-task-completed.json");
        assert_eq!(completed["properties"]["topic"], "delivery");
        assert_eq!(completed["properties"]["dispositionCode"], "resolved");
        assert_eq!(completed["properties"]["sentiment"], "positive");
        // One customer, one anonymous id, whichever event.
        assert_eq!(wrapup["anonymousId"], completed["anonymousId"]);
    }

    #[test]
    fn a_web_chat_customer_is_identified_by_email_when_there_is_no_phone() {
        let message = track("taskrouter/webchat-inbound-task-completed.json");
        assert_eq!(
            message["context"],
            json!({"traits": {"email": "ann.lee@example.com"}})
        );
        assert_eq!(
            message["anonymousId"],
            anonymous_id(&Customer::Email("ann.lee@example.com".into()))
        );
        assert_eq!(message["properties"]["topic"], "docs");
        assert!(
            message["properties"].get("sentiment").is_none(),
            "absent facts are left out, not null"
        );
    }

    #[test]
    fn a_configured_user_id_attribute_becomes_the_user_id() {
        let mut event = fixture("taskrouter/voice-inbound-reservation-wrapup.json");
        event
            .attributes
            .insert("crm".into(), json!({"id": "cust-42"}));
        let mapping = Mapping {
            user_id_paths: vec!["crm.id".into()],
            ..Mapping::default()
        };
        let Ok(Mapped::Track(message)) = mapping.map(&event) else {
            panic!("mapped")
        };
        assert_eq!(message["userId"], "cust-42");
        assert!(message.get("anonymousId").is_none());
        assert_eq!(message["context"]["traits"]["phone"], "+15555550100");
    }

    #[test]
    fn names_and_paths_are_configurable() {
        let mapping = Mapping {
            engagement_completed_event: "Flex - Engagement Initiated".into(),
            inbound_address_paths: vec!["customers.phone".into()],
            phone_identifier: "mobile".into(),
            ..Mapping::default()
        };
        let mut event = fixture("taskrouter/voice-inbound-reservation-wrapup.json");
        event
            .attributes
            .insert("customers".into(), json!({"phone": "+1 555 555 0199"}));
        let Ok(Mapped::Track(message)) = mapping.map(&event) else {
            panic!("mapped")
        };
        assert_eq!(message["event"], "Flex - Engagement Initiated");
        assert_eq!(
            message["context"]["externalIds"][0],
            json!({"id": "+15555550199", "type": "mobile", "collection": "users", "encoding": "none"})
        );
    }

    #[test]
    fn events_without_a_customer_are_errors_and_other_types_are_ignored() {
        for path in [
            "taskrouter/missing-attributes-task-wrapup.json",
            "taskrouter/webchat-anonymous-task-wrapup.json",
        ] {
            let error = Mapping::default().map(&fixture(path)).unwrap_err();
            assert!(
                matches!(error, MappingError::NoCustomerIdentity { .. }),
                "{path}"
            );
        }
        assert_eq!(
            Mapping::default().map(&fixture("taskrouter/task-created.json")),
            Ok(Mapped::Ignored)
        );
    }

    #[test]
    fn the_task_and_reservation_versions_of_a_moment_share_a_message_id() {
        let reservation = fixture("taskrouter/whatsapp-inbound-reservation-wrapup.json");
        let task = TaskEvent {
            event_type: "task.wrapup".into(),
            worker_sid: None,
            ..reservation.clone()
        };
        let id = |event: &TaskEvent| match Mapping::default().map(event) {
            Ok(Mapped::Track(message)) => message["messageId"].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(id(&reservation), id(&task));
        assert!(id(&task).as_str().unwrap().len() < 100);
    }
}
