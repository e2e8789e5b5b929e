//! The schemas: which event each moment becomes and which properties it carries.

use serde_json::{Map, Value, json};

use super::customer::{customer_start_time, text_at};
use super::{Mapping, Moment, TaskEvent};

/// Which event names and properties go to Segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// The Unified Profiles setup guide this product comes from: "Flex - Engagement
    /// Completed" at wrap-up (`direction`, `channelType`, `lastKnownAgentWorkerSid`,
    /// `duration`, `taskSid`), "Flex - Wrap Up Completed" at completion (`topic`,
    /// `sentiment`, `dispositionCode`, `taskSid`).
    Seed,
    /// Twilio's current enrichment page ("Enrich profiles with Flex interaction data"):
    /// "Flex - Engagement Initiated" at wrap-up (`customerStartTime`, `Duration`,
    /// `lastKnownAgentWorkerSid`, `interactionSid`, `channelSid`, `channelType`,
    /// `Direction`), "Flex - Engagement Completed" at completion (`channelSid`,
    /// `interactionSid`, `codes` {`dispositionCode`, `topic`}, `sentiment`).
    Current,
}

impl Schema {
    pub const NAMES: [&'static str; 2] = ["seed", "current"];

    pub fn named(name: &str) -> Option<Self> {
        match name {
            "seed" => Some(Self::Seed),
            "current" => Some(Self::Current),
            _ => None,
        }
    }

    /// The event each moment becomes, unless configured otherwise.
    pub fn event_name(self, moment: Moment) -> &'static str {
        match (self, moment) {
            (Self::Seed, Moment::WrapUp) => "Flex - Engagement Completed",
            (Self::Seed, Moment::Completed) => "Flex - Wrap Up Completed",
            (Self::Current, Moment::WrapUp) => "Flex - Engagement Initiated",
            (Self::Current, Moment::Completed) => "Flex - Engagement Completed",
        }
    }
}

impl Mapping {
    pub(super) fn wrap_up(
        &self,
        event: &TaskEvent,
        direction: Option<&'static str>,
    ) -> Map<String, Value> {
        let attributes = &event.attributes;
        let channel = text_at(attributes, "channelType").or_else(|| event.channel.clone());
        let mut properties = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                properties.insert(name.into(), value);
            }
        };
        match self.schema {
            Schema::Seed => {
                put("direction", direction.map(Value::from));
                put("channelType", channel.map(Value::from));
                put(
                    "lastKnownAgentWorkerSid",
                    event.worker_sid.clone().map(Value::from),
                );
                put("duration", event.age_seconds.map(Value::from));
                put("taskSid", Some(json!(event.task_sid)));
            }
            Schema::Current => {
                put(
                    "customerStartTime",
                    customer_start_time(event).map(Value::from),
                );
                put("Duration", event.age_seconds.map(Value::from));
                put(
                    "lastKnownAgentWorkerSid",
                    event.worker_sid.clone().map(Value::from),
                );
                put(
                    "interactionSid",
                    text_at(attributes, "flexInteractionSid").map(Value::from),
                );
                put(
                    "channelSid",
                    text_at(attributes, "flexInteractionChannelSid").map(Value::from),
                );
                put("channelType", channel.map(Value::from));
                put("Direction", direction.map(Value::from));
            }
        }
        properties.extend(routing(attributes));
        properties
    }

    pub(super) fn completed(&self, event: &TaskEvent) -> Map<String, Value> {
        let attributes = &event.attributes;
        let topic = self.first(&self.topic_paths, attributes);
        let sentiment = self.first(&self.sentiment_paths, attributes);
        let disposition = self.first(&self.disposition_code_paths, attributes);
        let mut properties = Map::new();
        match self.schema {
            Schema::Seed => {
                for (name, value) in [
                    ("topic", topic),
                    ("sentiment", sentiment),
                    ("dispositionCode", disposition),
                ] {
                    if let Some(value) = value {
                        properties.insert(name.into(), json!(value));
                    }
                }
                properties.insert("taskSid".into(), json!(event.task_sid));
            }
            Schema::Current => {
                for (name, path) in [
                    ("channelSid", "flexInteractionChannelSid"),
                    ("interactionSid", "flexInteractionSid"),
                ] {
                    if let Some(value) = text_at(attributes, path) {
                        properties.insert(name.into(), json!(value));
                    }
                }
                let mut codes = Map::new();
                if let Some(disposition) = disposition {
                    codes.insert("dispositionCode".into(), json!(disposition));
                }
                if let Some(topic) = topic {
                    codes.insert("topic".into(), json!(topic));
                }
                if !codes.is_empty() {
                    properties.insert("codes".into(), Value::Object(codes));
                }
                if let Some(sentiment) = sentiment {
                    properties.insert("sentiment".into(), json!(sentiment));
                }
            }
        }
        properties.extend(routing(attributes));
        properties
    }
}

/// The routing that sent the engagement where it went, as the Studio flow put it in the task's
/// attributes (`routing_rule`, `routing_transition`, `routing_arm`), under the properties'
/// camelCase: so Segment holds, per engagement, the rule and arm that routed it.
fn routing(attributes: &Map<String, Value>) -> Vec<(String, Value)> {
    [
        ("routingRule", "routing_rule"),
        ("routingTransition", "routing_transition"),
        ("routingArm", "routing_arm"),
    ]
    .into_iter()
    .filter_map(|(name, path)| Some((name.to_owned(), Value::from(text_at(attributes, path)?))))
    .collect()
}
