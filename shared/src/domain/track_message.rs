//! The track message the Tracking API receives, as one typed struct: the mapping builds it,
//! the tracking client sends it, the sandbox seeds its demo customers with it.

use serde::Serialize;
use serde_json::{Map, Value};

/// Segment drops a message over 32 KB (and refuses a batch with one with 400); stay under it.
pub const MAX_MESSAGE_BYTES: usize = 32_000;

/// A Segment `track` call (HTTP Tracking API, "Track").
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackMessage {
    #[serde(rename = "type")]
    pub kind: TrackKind,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    /// Deterministic, so that a redelivered event is deduplicated by Segment.
    pub message_id: String,
    /// RFC 3339; the event's own time, so Segment's time windows count it when it happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub properties: Map<String, Value>,
    pub context: MessageContext,
}

/// Always `"track"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    #[default]
    Track,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traits: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_ids: Vec<ExternalId>,
}

/// `context.externalIds[]`: how a custom identifier such as `phone` reaches identity
/// resolution (Segment's "External IDs" page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalId {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub collection: &'static str,
    pub encoding: &'static str,
}

impl ExternalId {
    pub fn user(kind: &str, id: &str) -> Self {
        Self {
            id: id.to_owned(),
            kind: kind.to_owned(),
            collection: "users",
            encoding: "none",
        }
    }
}

/// A message serialised once, ready to go into a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedMessage {
    pub message_id: String,
    pub json: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message {message_id} is {bytes} bytes, over Segment's 32 KB limit")]
pub struct MessageTooLarge {
    pub message_id: String,
    pub bytes: usize,
}

impl TrackMessage {
    pub fn encode(&self) -> Result<EncodedMessage, MessageTooLarge> {
        // Serialising plain strings, maps and numbers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        if json.len() > MAX_MESSAGE_BYTES {
            return Err(MessageTooLarge {
                message_id: self.message_id.clone(),
                bytes: json.len(),
            });
        }
        Ok(EncodedMessage {
            message_id: self.message_id.clone(),
            json,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_message_serialises_as_segment_documents_track() {
        let message = TrackMessage {
            kind: TrackKind::Track,
            event: "Flex - Engagement Completed".into(),
            user_id: None,
            anonymous_id: Some("flex-1".into()),
            message_id: "flex-wrapup-WT1".into(),
            timestamp: Some("2026-11-18T11:06:40.123Z".into()),
            properties: Map::new(),
            context: MessageContext {
                traits: json!({"phone": "+15555550100"}).as_object().cloned(),
                external_ids: vec![ExternalId::user("phone", "+15555550100")],
            },
        };
        let encoded = message.encode().unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&encoded.json).unwrap(),
            json!({
                "type": "track", "event": "Flex - Engagement Completed", "anonymousId": "flex-1",
                "messageId": "flex-wrapup-WT1", "timestamp": "2026-11-18T11:06:40.123Z",
                "properties": {},
                "context": {"traits": {"phone": "+15555550100"},
                    "externalIds": [{"id": "+15555550100", "type": "phone", "collection": "users", "encoding": "none"}]}
            })
        );
        let mut big = message;
        big.properties
            .insert("pad".into(), json!("x".repeat(MAX_MESSAGE_BYTES)));
        assert!(
            matches!(big.encode(), Err(MessageTooLarge { ref message_id, .. }) if message_id == "flex-wrapup-WT1")
        );
    }
}
