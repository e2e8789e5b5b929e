//! What the console shows of a customer: their identifiers, traits and the decision the
//! active rules give them now; and their timeline, each event with the traits it fed.

use serde_json::{Map, Value, json};
use studio_router::domain::rules::{Facts, RuleSet, Verdict};

use super::privacy::{masked, shown};
use crate::segment::{Segment, TraitClass, rfc3339};
use crate::store::{StoreError, StoredEvent};

/// The newest events a timeline shows.
const TIMELINE_EVENTS: usize = 200;

/// A customer's traits as route-decision reads them from the Profile API.
pub fn traits_of(
    segment: &Segment,
    profile: &str,
    now_ms: i64,
) -> Result<Map<String, Value>, StoreError> {
    Ok(segment
        .traits(profile, TraitClass::All, now_ms)?
        .into_iter()
        .map(|(key, found)| (key, found.value))
        .collect())
}

/// The rules' verdict for these traits, as for a decision request without a channel.
pub fn verdict(rules: &RuleSet, traits: &Map<String, Value>) -> Verdict {
    rules.evaluate(&Facts {
        traits,
        channel: None,
    })
}

pub fn verdict_json(verdict: &Verdict, reveal: bool) -> Value {
    json!({
        "transition": verdict.transition,
        "rule": verdict.rule,
        "attributes": masked(&Value::Object(verdict.attributes.clone()), reveal),
    })
}

/// The customer's name (an identify's `first_name`, else `name`), if they gave one.
pub fn name_of(traits: &Map<String, Value>) -> Option<String> {
    ["first_name", "name"]
        .iter()
        .find_map(|key| traits.get(*key).and_then(Value::as_str))
        .map(str::to_owned)
}

/// One line of the customers list.
pub fn summary(
    segment: &Segment,
    rules: &RuleSet,
    profile: &str,
    now_ms: i64,
    reveal: bool,
) -> Result<Value, StoreError> {
    let all = segment.traits(profile, TraitClass::All, now_ms)?;
    let traits: Map<String, Value> = all
        .iter()
        .map(|(k, t)| (k.clone(), t.value.clone()))
        .collect();
    let (computed, custom): (Vec<_>, Vec<_>) = all.iter().partition(|(_, t)| t.computed);
    let object = |list: Vec<(&String, &crate::segment::Trait)>| {
        let fields: Map<String, Value> = list
            .into_iter()
            .map(|(key, t)| (key.clone(), masked(&t.value, reveal)))
            .collect();
        Value::Object(fields)
    };
    Ok(json!({
        "profile": profile,
        "name": name_of(&traits),
        "identifiers": identifiers(segment, profile, reveal)?,
        "computed_traits": object(computed),
        "traits": object(custom),
        "decision": verdict_json(&verdict(rules, &traits), reveal),
    }))
}

fn identifiers(segment: &Segment, profile: &str, reveal: bool) -> Result<Vec<Value>, StoreError> {
    Ok(segment
        .store
        .identities(profile)?
        .into_iter()
        .map(|identity| {
            json!({"type": identity.kind, "value": shown(&identity.value, reveal),
                   "since": rfc3339(identity.created_at_ms)})
        })
        .collect())
}

/// A customer's page: the summary, how each rule fared, each computed trait with the events
/// it counted, each identify trait with the call that set it, and the timeline.
pub fn detail(
    segment: &Segment,
    rules: &RuleSet,
    profile: &str,
    now_ms: i64,
    reveal: bool,
) -> Result<Option<Value>, StoreError> {
    if segment.store.profile_meta(profile)?.is_none() {
        return Ok(None);
    }
    let mut page = summary(segment, rules, profile, now_ms, reveal)?;
    let traits = traits_of(segment, profile, now_ms)?;
    let (_, trace) = rules.explain(&Facts {
        traits: &traits,
        channel: None,
    });
    let events = segment.store.events(profile)?;
    let computed = computed_traits(segment, &events, now_ms, reveal);
    let mut set_by: Map<String, Value> = Map::new();
    for event in events.iter().filter(|e| e.kind == "identify") {
        for key in identify_keys(event) {
            set_by.insert(key, json!(event.message_id));
        }
    }
    let timeline: Vec<Value> = events
        .iter()
        .rev()
        .take(TIMELINE_EVENTS)
        .map(|event| timeline_entry(segment, event, &computed, now_ms, reveal))
        .collect();
    page["explanation"] = serde_json::to_value(trace).unwrap_or_default();
    page["computed"] = Value::Array(
        computed
            .into_iter()
            .map(|(_, counted, mut about)| {
                about["counted"] = json!(counted);
                about
            })
            .collect(),
    );
    page["set_by"] = Value::Object(set_by);
    page["timeline"] = Value::Array(timeline);
    page["events_total"] = json!(events.len());
    Ok(Some(page))
}

/// Each computed trait: its key, the events it counted, and what the page shows of it.
fn computed_traits<'a>(
    segment: &Segment,
    events: &'a [StoredEvent],
    now_ms: i64,
    reveal: bool,
) -> Vec<(String, Vec<&'a str>, Value)> {
    segment
        .definitions
        .traits
        .iter()
        .map(|definition| {
            let counted = definition
                .counted(events, now_ms)
                .into_iter()
                .map(|e| e.message_id.as_str())
                .collect();
            let about = json!({
                "key": definition.key,
                "value": definition.evaluate(events, now_ms).map(|v| masked(&v, reveal)),
                "definition": definition.describe(),
            });
            (definition.key.clone(), counted, about)
        })
        .collect()
}

/// One event of the timeline: which traits it feeds, and which it is too old for.
fn timeline_entry(
    segment: &Segment,
    event: &StoredEvent,
    computed: &[(String, Vec<&str>, Value)],
    now_ms: i64,
    reveal: bool,
) -> Value {
    let mut feeds: Vec<String> = computed
        .iter()
        .filter(|(_, counted, _)| counted.contains(&event.message_id.as_str()))
        .map(|(key, _, _)| key.clone())
        .collect();
    if event.kind == "identify" {
        feeds.extend(identify_keys(event));
    }
    let expired: Vec<&str> = segment
        .definitions
        .traits
        .iter()
        .filter(|d| d.takes(event) && !d.in_window(event, now_ms))
        .map(|d| d.key.as_str())
        .collect();
    json!({
        "message_id": event.message_id,
        "type": event.kind,
        "name": event_name(event),
        "at": rfc3339(event.timestamp_ms),
        "feeds": feeds,
        "outside_window_of": expired,
        "message": masked(&event.message, reveal),
    })
}

/// The trait keys an identify call sets.
fn identify_keys(event: &StoredEvent) -> Vec<String> {
    event
        .message
        .get("traits")
        .and_then(Value::as_object)
        .map(|traits| traits.keys().cloned().collect())
        .unwrap_or_default()
}

/// A track's event name, a page's name and path, or the call's type.
fn event_name(event: &StoredEvent) -> String {
    let message = &event.message;
    match event.kind.as_str() {
        "track" => event.event.clone().unwrap_or_default(),
        "page" | "screen" => {
            let name = message.get("name").and_then(Value::as_str);
            let path = message
                .pointer("/properties/path")
                .or_else(|| message.pointer("/context/page/path"))
                .and_then(Value::as_str);
            match (name, path) {
                (Some(name), Some(path)) => format!("{name} {path}"),
                (Some(text), None) | (None, Some(text)) => text.to_owned(),
                (None, None) => String::new(),
            }
        }
        // An identify's traits are what it "feeds".
        _ => String::new(),
    }
}
