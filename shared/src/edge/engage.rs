//! What Segment delivers when Engage computes a trait or an audience, read into a
//! [`TraitUpdate`]. Two envelopes carry it into AWS: the AWS Lambda destination invokes with
//! the Segment message itself, and the Amazon EventBridge destination puts it in the event's
//! `detail` ("Amazon Lambda" and "Amazon EventBridge (Actions)" destination docs; segment.md
//! in the reference). The message is an `identify` whose `traits` hold the computed values,
//! or a `track`: `Audience Entered` / `Audience Exited` (`properties.audience_key` and that
//! key's boolean) or `Trait Computed` (`properties.trait_key` and that key's value); either
//! way with `context.personas` saying which computation sent it ("Using Engage data").
//!
//! Its identifiers: `userId`, `traits.email` / `traits.phone` (or `context.traits.*` on a
//! track), and `context.externalIds` when ID Sync adds them. `anonymousId` is not one: no
//! decision looks a customer up by it.

use serde_json::{Map, Value};

use crate::domain::identity::{Customer, Identifier};
use crate::domain::timestamps::Timestamp;
use crate::domain::trait_store::TraitUpdate;

/// The most identifiers one delivery may write (ID Sync sends at most three "all" ids a
/// type; the rest is hostile or a mistake).
pub const MAX_IDENTIFIERS: usize = 16;
/// The most traits one delivery may write: Engage sends what changed, a handful.
pub const MAX_TRAITS: usize = 200;

/// Why a delivery writes nothing. The messages name no value: they are logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngageError {
    #[error("not an Engage delivery: {0}")]
    NotEngage(&'static str),
    #[error("no identifier a decision can look up (userId, email, phone or context.externalIds)")]
    NoIdentifier,
    #[error("no traits to write")]
    NoTraits,
    #[error("over {MAX_TRAITS} traits in one delivery")]
    TooManyTraits,
    #[error("its timestamp is missing or not an RFC 3339 time")]
    BadTime,
}

/// The update `delivery` carries; `phone_kind` is the identifier type of phone numbers.
pub fn decode(delivery: &Value, phone_kind: &str) -> Result<TraitUpdate, EngageError> {
    let message = message_of(delivery)?;
    let context = message.get("context").and_then(Value::as_object);
    if context
        .and_then(|c| c.get("personas"))
        .and_then(Value::as_object)
        .is_none()
    {
        return Err(EngageError::NotEngage("no context.personas"));
    }
    let traits = match message.get("type").and_then(Value::as_str) {
        Some("identify") => message
            .get("traits")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        Some("track") => tracked_trait(message)?,
        _ => return Err(EngageError::NotEngage("neither an identify nor a track")),
    };
    if traits.is_empty() {
        return Err(EngageError::NoTraits);
    }
    if traits.len() > MAX_TRAITS {
        return Err(EngageError::TooManyTraits);
    }
    let at = message
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(Timestamp::parse_rfc3339)
        .ok_or(EngageError::BadTime)?;
    let identifiers = identifiers(message, context, phone_kind);
    if identifiers.is_empty() {
        return Err(EngageError::NoIdentifier);
    }
    Ok(TraitUpdate {
        identifiers,
        traits,
        at,
    })
}

/// The Segment message: the delivery itself, or an EventBridge event's `detail`.
fn message_of(delivery: &Value) -> Result<&Map<String, Value>, EngageError> {
    let object = delivery
        .as_object()
        .ok_or(EngageError::NotEngage("not a JSON object"))?;
    let is_eventbridge = object.contains_key("detail-type") && object.contains_key("source");
    if !is_eventbridge {
        return Ok(object);
    }
    object
        .get("detail")
        .and_then(Value::as_object)
        .ok_or(EngageError::NotEngage(
            "an EventBridge event without a detail object",
        ))
}

/// The one trait an Engage track carries: an audience's membership or a computed value.
fn tracked_trait(message: &Map<String, Value>) -> Result<Map<String, Value>, EngageError> {
    let properties = message.get("properties").and_then(Value::as_object);
    let key_field = match message.get("event").and_then(Value::as_str) {
        Some("Audience Entered" | "Audience Exited") => "audience_key",
        Some("Trait Computed") => "trait_key",
        _ => {
            return Err(EngageError::NotEngage(
                "a track that is not an Engage event",
            ));
        }
    };
    let Some((key, value)) = properties.and_then(|p| {
        let key = p.get(key_field)?.as_str()?;
        Some((key, p.get(key)?))
    }) else {
        return Ok(Map::new());
    };
    Ok(Map::from_iter([(key.to_owned(), value.clone())]))
}

/// Every identifier the message names, each once, phones and emails normalised as a
/// decision writes them; an unusable one (a withheld number, a bad email) is left out.
fn identifiers(
    message: &Map<String, Value>,
    context: Option<&Map<String, Value>>,
    phone_kind: &str,
) -> Vec<Identifier> {
    let text = |object: Option<&Map<String, Value>>, key: &str| -> Option<String> {
        object?
            .get(key)?
            .as_str()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let traits = message.get("traits").and_then(Value::as_object);
    let context_traits = context
        .and_then(|c| c.get("traits"))
        .and_then(Value::as_object);
    let mut named: Vec<(String, String)> = Vec::new();
    if let Some(user_id) = text(Some(message), "userId") {
        named.push(("user_id".to_owned(), user_id));
    }
    for (kind, field) in [("email", "email"), (phone_kind, "phone")] {
        if let Some(value) = text(traits, field).or_else(|| text(context_traits, field)) {
            named.push((kind.to_owned(), value));
        }
    }
    let external = context
        .and_then(|c| c.get("externalIds"))
        .and_then(Value::as_array);
    for id in external.into_iter().flatten().filter_map(Value::as_object) {
        // A type with a colon would make another identifier's key (`type:value`).
        if let (Some(kind), Some(value)) = (text(Some(id), "type"), text(Some(id), "id"))
            && !kind.contains(':')
            && !kind.contains(char::is_whitespace)
        {
            named.push((kind, value));
        }
    }
    let mut found: Vec<Identifier> = Vec::new();
    for (kind, value) in named {
        if let Ok(Customer::Identified(identifier)) =
            Identifier::of_kind(&kind, &value, phone_kind, "identifier")
            && !found.contains(&identifier)
        {
            found.push(identifier);
        }
        if found.len() == MAX_IDENTIFIERS {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn engage(message: Value) -> Value {
        let mut message = message;
        message["context"]["personas"] =
            json!({"computation_class": "trait", "computation_key": "vip", "space_id": "spa_1"});
        message["timestamp"] = json!("2026-12-01T10:00:00.000Z");
        message
    }

    fn keys(update: &TraitUpdate) -> Vec<String> {
        update.identifiers.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn an_identify_updates_its_traits_under_every_identifier_it_names() {
        let delivery = engage(json!({
            "type": "identify", "userId": "u-42", "anonymousId": "anon-1",
            "traits": {"vip": true, "email": "Ann@Example.com", "phone": "+1 (555) 555-0100"},
            "context": {"externalIds": [
                {"id": "+15555550100", "type": "phone", "collection": "users", "encoding": "none"},
                {"id": "crm-7", "type": "crm_id", "collection": "users", "encoding": "none"}
            ]}
        }));
        let update = decode(&delivery, "phone").expect("an update");
        assert_eq!(
            keys(&update),
            [
                "user_id:u-42",
                "email:ann@example.com",
                "phone:+15555550100",
                "crm_id:crm-7"
            ]
        );
        assert_eq!(update.traits["vip"], true);
        assert_eq!(
            update.at,
            Timestamp::parse_rfc3339("2026-12-01T10:00:00Z").expect("time")
        );
    }

    #[test]
    fn an_eventbridge_event_carries_the_same_message_in_its_detail() {
        let message =
            engage(json!({"type": "identify", "userId": "u-42", "traits": {"vip": true}}));
        let event = json!({
            "version": "0", "id": "e-1", "detail-type": "identify",
            "source": "aws.partner/segment.com/src_1", "detail": message.clone()
        });
        assert_eq!(decode(&event, "phone"), decode(&message, "phone"));
    }

    #[test]
    fn audience_and_trait_tracks_carry_one_trait() {
        let entered = engage(
            json!({"type": "track", "event": "Audience Entered", "userId": "u-1",
            "properties": {"audience_key": "high_value", "high_value": true}}),
        );
        assert_eq!(
            decode(&entered, "phone").expect("update").traits,
            *json!({"high_value": true}).as_object().unwrap()
        );
        let computed = engage(
            json!({"type": "track", "event": "Trait Computed", "userId": "u-1",
            "context": {"traits": {"email": "b@example.com"}},
            "properties": {"trait_key": "orders_90_days", "orders_90_days": 3}}),
        );
        let update = decode(&computed, "phone").expect("update");
        assert_eq!(update.traits["orders_90_days"], 3);
        assert_eq!(keys(&update), ["user_id:u-1", "email:b@example.com"]);
    }

    #[test]
    fn what_cannot_be_written_says_why_without_a_value() {
        let no_id =
            engage(json!({"type": "identify", "anonymousId": "a", "traits": {"vip": true}}));
        assert_eq!(decode(&no_id, "phone"), Err(EngageError::NoIdentifier));
        let withheld =
            engage(json!({"type": "identify", "traits": {"vip": true, "phone": "anonymous"}}));
        assert_eq!(decode(&withheld, "phone"), Err(EngageError::NoIdentifier));
        let nothing = engage(json!({"type": "identify", "userId": "u", "traits": {}}));
        assert_eq!(decode(&nothing, "phone"), Err(EngageError::NoTraits));
        let mut late = engage(json!({"type": "identify", "userId": "u", "traits": {"vip": true}}));
        late["timestamp"] = json!("yesterday");
        assert_eq!(decode(&late, "phone"), Err(EngageError::BadTime));
        let plain = json!({"type": "identify", "userId": "u", "traits": {"vip": true}, "timestamp": "2026-12-01T10:00:00Z"});
        assert!(matches!(
            decode(&plain, "phone"),
            Err(EngageError::NotEngage(_))
        ));
        let page = engage(json!({"type": "page", "userId": "u"}));
        assert!(matches!(
            decode(&page, "phone"),
            Err(EngageError::NotEngage(_))
        ));
        assert!(matches!(
            decode(&json!([1]), "phone"),
            Err(EngageError::NotEngage(_))
        ));
        let many: Map<String, Value> = (0..=MAX_TRAITS)
            .map(|i| (format!("t{i}"), json!(i)))
            .collect();
        let flood = engage(json!({"type": "identify", "userId": "u", "traits": many}));
        assert_eq!(decode(&flood, "phone"), Err(EngageError::TooManyTraits));
    }

    #[test]
    fn a_delivery_names_at_most_a_bounded_number_of_keys() {
        let ids: Vec<Value> = (0..100)
            .map(|i| json!({"type": "user_id", "id": format!("u-{i}")}))
            .collect();
        let delivery = engage(
            json!({"type": "identify", "traits": {"vip": true}, "context": {"externalIds": ids}}),
        );
        assert_eq!(
            decode(&delivery, "phone")
                .expect("update")
                .identifiers
                .len(),
            MAX_IDENTIFIERS
        );
    }

    #[test]
    fn an_external_id_type_cannot_forge_another_identifiers_key() {
        let delivery = engage(json!({
            "type": "identify", "userId": "u-1", "traits": {"vip": true},
            "context": {"externalIds": [
                {"id": "b", "type": "user_id:a", "collection": "users", "encoding": "none"},
                {"id": "c", "type": "crm id", "collection": "users", "encoding": "none"}
            ]}
        }));
        let update = decode(&delivery, "phone").expect("an update");
        assert_eq!(keys(&update), ["user_id:u-1"]);
    }
}
