//! Flex engagements into Segment track events: a task's wrap-up and its completion each
//! become one track event, so the computed traits routing reads (total inbounds, frequent
//! channel, last agent, last topic, sentiment) stay current.
//!
//! Which event a moment becomes, and its properties, is the [`Schema`]'s choice
//! (`schema.rs`); who the customer is comes from the task's attributes (`customer.rs`); the
//! message itself is Segment's [`TrackMessage`].

mod customer;
mod received;
mod schema;

use serde_json::{Map, Value, json};

use crate::domain::track_message::{ExternalId, MessageContext, TrackKind, TrackMessage};
pub use received::{ReceivedEvent, SINK_TEST_EVENT};
pub use schema::Schema;

use customer::{Customer, anonymous_id, direction, text_at};

/// A TaskRouter event, whatever shape it arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEvent {
    /// `reservation.wrapup`, `task.completed`, ...
    pub event_type: String,
    pub task_sid: String,
    pub attributes: Map<String, Value>,
    /// The task channel's unique name (`voice`, `chat`, `sms`, ...).
    pub channel: Option<String>,
    pub age_seconds: Option<u64>,
    pub worker_sid: Option<String>,
    /// RFC 3339, milliseconds, UTC.
    pub occurred_at: Option<String>,
}

/// The two moments of an engagement that feed the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    WrapUp,
    Completed,
}

impl Moment {
    /// One event type for each moment, so that each moment is one track event whatever order
    /// TaskRouter's events arrive in: the wrap-up comes from `reservation.wrapup`, the only
    /// one that names the agent, and the completion from `task.completed`, sent once per task
    /// (a transferred task completes several reservations). The other two name the same
    /// moments and would share their messageIds with other content; see [`Moment::superseded`].
    pub fn of(event_type: &str) -> Option<Self> {
        match event_type {
            "reservation.wrapup" => Some(Self::WrapUp),
            "task.completed" => Some(Self::Completed),
            _ => None,
        }
    }

    /// Why an event type that names one of the moments is not the one used for it.
    pub fn superseded(event_type: &str) -> Option<&'static str> {
        match event_type {
            "task.wrapup" => Some(
                "task.wrapup names no agent; the wrap-up is taken from reservation.wrapup (include it in the workspace's EventsFilter)",
            ),
            "reservation.completed" => Some(
                "a task may complete several reservations; the completion is taken from task.completed (include it in the workspace's EventsFilter)",
            ),
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

/// The schema, event names and where in the task attributes each fact is read; defaults
/// follow the Unified Profiles setup guide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub schema: Schema,
    /// The event a wrap-up becomes.
    pub wrap_up_event: String,
    /// The event a completion becomes.
    pub completed_event: String,
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

impl Mapping {
    /// The defaults of `schema`.
    pub fn for_schema(schema: Schema) -> Self {
        Self {
            schema,
            wrap_up_event: schema.event_name(Moment::WrapUp).into(),
            completed_event: schema.event_name(Moment::Completed).into(),
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

impl Default for Mapping {
    fn default() -> Self {
        Self::for_schema(Schema::Seed)
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// A Segment track message.
    Track(Box<TrackMessage>),
    /// Nothing to send, and nothing wrong: acknowledged, with the reason for the log.
    Ignored(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error(
        "task {task_sid} has no usable customer identity (no phone, email or user id in the configured task attributes)"
    )]
    NoCustomerIdentity { task_sid: String },
}

impl Mapping {
    pub fn map(&self, event: &TaskEvent) -> Result<Mapped, MappingError> {
        let Some(moment) = Moment::of(&event.event_type) else {
            return Ok(Mapped::Ignored(
                Moment::superseded(&event.event_type).unwrap_or("not a wrap-up or a completion"),
            ));
        };
        let attributes = &event.attributes;
        let direction = direction(attributes);
        let customer = self.customer(attributes, direction);
        let user_id = self.first(&self.user_id_paths, attributes);
        let customer = match (customer, &user_id) {
            (Some(Customer::Withheld), None) => {
                // Every withheld caller would merge into one profile.
                return Ok(Mapped::Ignored(
                    "the caller withheld their number and the task names no other identity",
                ));
            }
            (None, None) => {
                return Err(MappingError::NoCustomerIdentity {
                    task_sid: event.task_sid.clone(),
                });
            }
            (Some(Customer::Withheld), Some(_)) => None,
            (customer, _) => customer,
        };

        let (event_name, properties) = match moment {
            Moment::WrapUp => (&self.wrap_up_event, self.wrap_up(event, direction)),
            Moment::Completed => (&self.completed_event, self.completed(event)),
        };

        let mut context = MessageContext::default();
        match &customer {
            Some(Customer::Phone(phone)) => {
                context.traits = json!({"phone": phone}).as_object().cloned();
                context.external_ids = vec![ExternalId::user(&self.phone_identifier, phone)];
            }
            Some(Customer::Email(email)) => {
                context.traits = json!({"email": email}).as_object().cloned();
            }
            Some(Customer::Withheld) | None => {}
        }
        // One user id is the strongest identity; without it an anonymous id derived from the
        // customer keeps every task of theirs on one profile (a fresh id per task would
        // exceed Segment's identifier limits and split the profile).
        let anonymous_id = match (&user_id, &customer) {
            (None, Some(customer)) => anonymous_id(customer),
            _ => None,
        };
        Ok(Mapped::Track(Box::new(TrackMessage {
            kind: TrackKind::Track,
            event: event_name.clone(),
            user_id,
            anonymous_id,
            // Deterministic, so a redelivered event is deduplicated by Segment.
            message_id: format!("flex-{}-{}", moment.id(), event.task_sid),
            timestamp: event.occurred_at.clone(),
            properties,
            context,
        })))
    }
}

impl Mapping {
    pub(crate) fn first(
        &self,
        paths: &[String],
        attributes: &Map<String, Value>,
    ) -> Option<String> {
        paths.iter().find_map(|path| text_at(attributes, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::taskrouter;

    fn fixture(path: &str) -> TaskEvent {
        let full = format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        let value: Value = serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap();
        match taskrouter::decode(value).0 {
            Ok(ReceivedEvent::Task(event)) => event,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn mapped(mapping: &Mapping, event: &TaskEvent) -> Value {
        match mapping.map(event) {
            Ok(Mapped::Track(message)) => serde_json::to_value(&*message).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn track(path: &str) -> Value {
        mapped(&Mapping::default(), &fixture(path))
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
                "anonymousId": anonymous_id(&Customer::Phone("+15555550100".into())).unwrap(),
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
            anonymous_id(&Customer::Email("ann.lee@example.com".into())).unwrap()
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
        let message = mapped(&mapping, &event);
        assert_eq!(message["userId"], "cust-42");
        assert!(message.get("anonymousId").is_none());
        assert_eq!(message["context"]["traits"]["phone"], "+15555550100");
    }

    #[test]
    fn names_and_paths_are_configurable() {
        let mapping = Mapping {
            wrap_up_event: "Flex - Engagement Initiated".into(),
            inbound_address_paths: vec!["customers.phone".into()],
            phone_identifier: "mobile".into(),
            ..Mapping::default()
        };
        let mut event = fixture("taskrouter/voice-inbound-reservation-wrapup.json");
        event
            .attributes
            .insert("customers".into(), json!({"phone": "+1 555 555 0199"}));
        let message = mapped(&mapping, &event);
        assert_eq!(message["event"], "Flex - Engagement Initiated");
        assert_eq!(
            message["context"]["externalIds"][0],
            json!({"id": "+15555550199", "type": "mobile", "collection": "users", "encoding": "none"})
        );
    }

    #[test]
    fn events_without_a_customer_are_errors_and_other_types_are_ignored() {
        for path in [
            "taskrouter/missing-attributes-reservation-wrapup.json",
            "taskrouter/webchat-anonymous-reservation-wrapup.json",
        ] {
            let error = Mapping::default().map(&fixture(path)).unwrap_err();
            assert!(
                matches!(error, MappingError::NoCustomerIdentity { .. }),
                "{path}"
            );
        }
        let created = TaskEvent {
            event_type: "task.created".into(),
            ..fixture("taskrouter/voice-inbound-reservation-wrapup.json")
        };
        assert_eq!(
            Mapping::default().map(&created),
            Ok(Mapped::Ignored("not a wrap-up or a completion"))
        );
    }

    #[test]
    fn each_moment_comes_from_one_event_type_only() {
        // GIVEN the task's own wrap-up (no agent) and a reservation's completion
        let reservation = fixture("taskrouter/whatsapp-inbound-reservation-wrapup.json");
        let task_wrapup = TaskEvent {
            event_type: "task.wrapup".into(),
            worker_sid: None,
            ..reservation.clone()
        };
        let completion = fixture("taskrouter/whatsapp-inbound-task-completed.json");
        let reservation_completed = TaskEvent {
            event_type: "reservation.completed".into(),
            ..completion.clone()
        };
        // THEN neither becomes a track event, so the one that does is never pre-empted
        for (event, word) in [
            (&task_wrapup, "reservation.wrapup"),
            (&reservation_completed, "task.completed"),
        ] {
            match Mapping::default().map(event) {
                Ok(Mapped::Ignored(reason)) => assert!(reason.contains(word), "{reason}"),
                other => panic!("{other:?}"),
            }
        }
        let id = mapped(&Mapping::default(), &reservation)["messageId"].clone();
        assert_eq!(id, "flex-wrapup-WT0000000000000000000000000000wa01");
        assert!(id.as_str().unwrap().len() < 100);
    }

    #[test]
    fn the_current_schema_sends_twilios_enrichment_events() {
        let mapping = Mapping::for_schema(Schema::Current);
        // GIVEN a WhatsApp conversation's wrap-up and completion, on a Flex interaction
        let mut wrapup = fixture("taskrouter/whatsapp-inbound-reservation-wrapup.json");
        let mut completed = fixture("taskrouter/whatsapp-inbound-task-completed.json");
        for event in [&mut wrapup, &mut completed] {
            event.attributes.insert(
                "flexInteractionSid".into(),
                json!("KD00000000000000000000000000000001"),
            );
            event.attributes.insert(
                "flexInteractionChannelSid".into(),
                json!("UO00000000000000000000000000000001"),
            );
        }
        let wrapup = mapped(&mapping, &wrapup);
        let completed = mapped(&mapping, &completed);
        // THEN the names and properties are the ones Twilio's enrichment page lists
        assert_eq!(wrapup["event"], "Flex - Engagement Initiated");
        let properties = wrapup["properties"].as_object().unwrap();
        let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "Direction",
                "Duration",
                "channelSid",
                "channelType",
                "customerStartTime",
                "interactionSid",
                "lastKnownAgentWorkerSid"
            ]
        );
        assert_eq!(properties["Direction"], "Inbound");
        assert_eq!(
            properties["interactionSid"],
            "KD00000000000000000000000000000001"
        );
        assert_eq!(completed["event"], "Flex - Engagement Completed");
        assert_eq!(
            completed["properties"],
            json!({"channelSid": "UO00000000000000000000000000000001", "interactionSid": "KD00000000000000000000000000000001",
                   "codes": {"dispositionCode": "resolved", "topic": "delivery"}, "sentiment": "positive"})
        );
        // AND the customer and the messageIds do not depend on the schema
        let seed = mapped(
            &Mapping::default(),
            &fixture("taskrouter/whatsapp-inbound-reservation-wrapup.json"),
        );
        assert_eq!(
            (
                &wrapup["messageId"],
                &wrapup["anonymousId"],
                &wrapup["context"]
            ),
            (&seed["messageId"], &seed["anonymousId"], &seed["context"])
        );
    }

    #[test]
    fn the_start_time_is_the_event_time_less_the_task_age() {
        let mut event = fixture("taskrouter/voice-inbound-reservation-wrapup.json");
        let wrapup = mapped(&Mapping::for_schema(Schema::Current), &event);
        // 2026-11-18T11:06:40.123Z less 342 s
        assert_eq!(
            wrapup["properties"]["customerStartTime"],
            "2026-11-18T11:00:58.123Z"
        );
        // An age older than the epoch gives no start time rather than a wrong one.
        event.age_seconds = Some(u64::MAX);
        let wrapup = mapped(&Mapping::for_schema(Schema::Current), &event);
        assert!(wrapup["properties"].get("customerStartTime").is_none());
    }

    #[test]
    fn a_withheld_caller_gives_segment_no_phone() {
        let mut event = fixture("taskrouter/voice-inbound-reservation-wrapup.json");
        for key in ["from", "caller"] {
            event.attributes.insert(key.into(), json!("+266696687"));
        }
        // With nothing else to go by, the event is acknowledged and sends nothing.
        match Mapping::default().map(&event) {
            Ok(Mapped::Ignored(reason)) => assert!(reason.contains("withheld"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // With a user id, it goes out under the user id, without the sentinel as a phone.
        event.attributes.insert("userId".into(), json!("cust-7"));
        let message = mapped(&Mapping::default(), &event);
        assert_eq!(message["userId"], "cust-7");
        assert_eq!(message["context"], json!({}));
        assert!(!message.to_string().contains("266696687"));
    }
}
