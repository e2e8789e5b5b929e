//! Computed traits, defined in a JSON file the way Segment's UI defines them: event counter,
//! aggregation, most frequent, first, last, unique list (and its count), each over one event
//! with property conditions and an optional window relative to now.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::store::StoredEvent;

/// The defaults: the recipe's `docs_last_2_days` and the traits the Unified Profiles guide
/// recommends.
pub const DEFAULT_DEFINITIONS: &str = include_str!("../computed-traits.json");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definitions {
    pub traits: Vec<Definition>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Definition {
    /// The trait key the Profile API returns (`docs_last_2_days`).
    pub key: String,
    #[serde(flatten)]
    pub kind: Kind,
    pub event: EventMatch,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub window: Option<Window>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    EventCounter,
    Aggregation {
        function: Aggregate,
        property: String,
    },
    MostFrequent {
        property: String,
        #[serde(default = "default_minimum_frequency")]
        minimum_frequency: usize,
    },
    First {
        property: String,
    },
    Last {
        property: String,
    },
    UniqueList {
        property: String,
    },
    UniqueListCount {
        property: String,
    },
}

fn default_minimum_frequency() -> usize {
    2
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Sum,
    Avg,
    Min,
    Max,
}

/// A track event by name (`"Flex - Engagement Completed"`), or a call type
/// (`{"type": "page"}`, optionally with a `name`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EventMatch {
    Track(String),
    Call {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        name: Option<String>,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Dotted path within `properties` (or from the message root, e.g. `context.page.path`).
    pub property: String,
    pub operator: Operator,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Equals,
    NotEquals,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    Contains,
    DoesNotContain,
    StartsWith,
    EndsWith,
    Exists,
    DoesNotExist,
    EqualsOneOf,
}

/// "Within the last N days/hours".
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default)]
    pub days: u64,
    #[serde(default)]
    pub hours: u64,
}

impl Window {
    fn millis(self) -> i64 {
        ((self.days * 24 + self.hours) * 3_600_000) as i64
    }
}

impl Definitions {
    pub fn parse(json: &str) -> Result<Self, String> {
        let definitions: Self = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut keys = std::collections::BTreeSet::new();
        for definition in &definitions.traits {
            if definition.key.trim().is_empty() {
                return Err("a computed trait needs a key".into());
            }
            if !keys.insert(definition.key.clone()) {
                return Err(format!(
                    "computed trait {} is defined twice",
                    definition.key
                ));
            }
        }
        Ok(definitions)
    }

    /// Every computed trait of a profile with these events, as of `now_ms`. A trait with no
    /// value (no matching event with the property) is absent, as in Segment; counters are 0.
    pub fn evaluate(&self, events: &[StoredEvent], now_ms: i64) -> BTreeMap<String, Value> {
        self.traits
            .iter()
            .filter_map(|definition| {
                definition
                    .evaluate(events, now_ms)
                    .map(|value| (definition.key.clone(), value))
            })
            .collect()
    }
}

impl Definition {
    /// The events the trait counts as of `now_ms`: inside its window, of its event, meeting
    /// its conditions, and (but for a counter) carrying its property.
    pub fn counted<'a>(&self, events: &'a [StoredEvent], now_ms: i64) -> Vec<&'a StoredEvent> {
        events
            .iter()
            .filter(|e| self.in_window(e, now_ms) && self.takes(e))
            .collect()
    }

    /// Whether the event is inside the trait's window (any event is, without a window).
    pub fn in_window(&self, event: &StoredEvent, now_ms: i64) -> bool {
        self.window
            .is_none_or(|w| event.timestamp_ms >= now_ms - w.millis())
    }

    /// Whether the trait would count the event, its window aside.
    pub fn takes(&self, event: &StoredEvent) -> bool {
        let property = self.kind.property();
        self.event.matches(event)
            && self.conditions.iter().all(|c| c.holds(&event.message))
            && property.is_none_or(|p| lookup(&event.message, p).is_some_and(|v| !v.is_null()))
    }

    /// What the trait is, in the words of Segment's editor: `event counter of page calls
    /// where path starts_with "/docs", within 2 days`.
    pub fn describe(&self) -> String {
        let kind = match &self.kind {
            Kind::EventCounter => "event counter".to_owned(),
            Kind::Aggregation { function, property } => {
                format!("{} of {property}", format!("{function:?}").to_lowercase())
            }
            Kind::MostFrequent {
                property,
                minimum_frequency,
            } => format!("most frequent {property} (at least {minimum_frequency} times)"),
            Kind::First { property } => format!("first {property}"),
            Kind::Last { property } => format!("last {property}"),
            Kind::UniqueList { property } => format!("unique list of {property}"),
            Kind::UniqueListCount { property } => format!("unique count of {property}"),
        };
        let event = match &self.event {
            EventMatch::Track(name) => format!("\"{name}\" events"),
            EventMatch::Call { kind, name: None } => format!("{kind} calls"),
            EventMatch::Call {
                kind,
                name: Some(name),
            } => format!("{kind} calls named \"{name}\""),
        };
        let mut text = format!("{kind} over {event}");
        for (i, condition) in self.conditions.iter().enumerate() {
            let joint = if i == 0 { "where" } else { "and" };
            let operator = format!("{:?}", condition.operator);
            text.push_str(&format!(
                " {joint} {} {}",
                condition.property,
                snake(&operator)
            ));
            if !condition.value.is_null() {
                text.push_str(&format!(" {}", condition.value));
            }
        }
        if let Some(window) = self.window {
            let (amount, unit) = match (window.days, window.hours) {
                (days, 0) => (days, "day"),
                (days, hours) => (days * 24 + hours, "hour"),
            };
            let plural = if amount == 1 { "" } else { "s" };
            text.push_str(&format!(", within {amount} {unit}{plural}"));
        }
        text
    }

    pub fn evaluate(&self, events: &[StoredEvent], now_ms: i64) -> Option<Value> {
        let matching = self.counted(events, now_ms);
        let values = |property: &str| -> Vec<Value> {
            matching
                .iter()
                .filter_map(|e| lookup(&e.message, property))
                .filter(|v| !v.is_null())
                .cloned()
                .collect()
        };
        match &self.kind {
            Kind::EventCounter => Some(json!(matching.len())),
            Kind::Aggregation { function, property } => {
                let numbers: Vec<f64> = values(property).iter().filter_map(number).collect();
                if numbers.is_empty() {
                    return None;
                }
                let result = match function {
                    Aggregate::Sum => numbers.iter().sum(),
                    Aggregate::Avg => numbers.iter().sum::<f64>() / numbers.len() as f64,
                    Aggregate::Min => numbers.iter().copied().fold(f64::INFINITY, f64::min),
                    Aggregate::Max => numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                };
                Some(whole_if_possible(result))
            }
            Kind::MostFrequent {
                property,
                minimum_frequency,
            } => {
                let mut counts: BTreeMap<String, (usize, Value)> = BTreeMap::new();
                for value in values(property) {
                    let entry = counts.entry(text(&value)).or_insert((0, value));
                    entry.0 += 1;
                }
                // BTreeMap iterates alphabetically, and max_by keeps the last maximum: reverse
                // so a tie goes to the alphabetically first value, as Segment documents.
                counts
                    .into_iter()
                    .rev()
                    .filter(|(_, (count, _))| count >= minimum_frequency)
                    .max_by_key(|(_, (count, _))| *count)
                    .map(|(_, (_, value))| value)
            }
            Kind::First { property } => values(property).into_iter().next(),
            Kind::Last { property } => values(property).into_iter().last(),
            Kind::UniqueList { property } => Some(Value::Array(unique(values(property)))),
            Kind::UniqueListCount { property } => Some(json!(unique(values(property)).len())),
        }
    }
}

impl Kind {
    /// The property the trait reads, if it reads one.
    fn property(&self) -> Option<&str> {
        match self {
            Self::EventCounter => None,
            Self::Aggregation { property, .. }
            | Self::MostFrequent { property, .. }
            | Self::First { property }
            | Self::Last { property }
            | Self::UniqueList { property }
            | Self::UniqueListCount { property } => Some(property),
        }
    }
}

/// `StartsWith` -> `starts_with`, as the definitions file writes operators.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

impl EventMatch {
    fn matches(&self, event: &StoredEvent) -> bool {
        match self {
            Self::Track(name) => {
                event.kind == "track" && event.event.as_deref() == Some(name.as_str())
            }
            Self::Call { kind, name } => {
                event.kind == *kind
                    && name.as_ref().is_none_or(|wanted| {
                        event.event.as_deref() == Some(wanted.as_str())
                            || event.message.get("name").and_then(Value::as_str)
                                == Some(wanted.as_str())
                    })
            }
        }
    }
}

impl Condition {
    fn holds(&self, message: &Value) -> bool {
        let actual = lookup(message, &self.property).filter(|v| !v.is_null());
        let Some(actual) = actual else {
            return matches!(
                self.operator,
                Operator::DoesNotExist | Operator::NotEquals | Operator::DoesNotContain
            );
        };
        match self.operator {
            Operator::Exists => true,
            Operator::DoesNotExist => false,
            Operator::Equals => equal(actual, &self.value),
            Operator::NotEquals => !equal(actual, &self.value),
            Operator::EqualsOneOf => self
                .value
                .as_array()
                .is_some_and(|options| options.iter().any(|o| equal(actual, o))),
            Operator::GreaterThan => compare(actual, &self.value).is_some_and(|o| o.is_gt()),
            Operator::GreaterThanOrEqual => compare(actual, &self.value).is_some_and(|o| o.is_ge()),
            Operator::LessThan => compare(actual, &self.value).is_some_and(|o| o.is_lt()),
            Operator::LessThanOrEqual => compare(actual, &self.value).is_some_and(|o| o.is_le()),
            Operator::Contains => text(actual).contains(&text(&self.value)),
            Operator::DoesNotContain => !text(actual).contains(&text(&self.value)),
            Operator::StartsWith => text(actual).starts_with(&text(&self.value)),
            Operator::EndsWith => text(actual).ends_with(&text(&self.value)),
        }
    }
}

/// A property by dotted path, in `properties` first, then from the message's root.
fn lookup<'a>(message: &'a Value, path: &str) -> Option<&'a Value> {
    let walk = |mut current: &'a Value| {
        for segment in path.split('.') {
            current = current.get(segment)?;
        }
        Some(current)
    };
    message
        .get("properties")
        .and_then(walk)
        .or_else(|| walk(message))
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn equal(actual: &Value, expected: &Value) -> bool {
    actual == expected
        || number(actual)
            .zip(number(expected))
            .is_some_and(|(a, b)| a == b)
        || text(actual) == text(expected)
}

fn compare(actual: &Value, expected: &Value) -> Option<std::cmp::Ordering> {
    number(actual)?.partial_cmp(&number(expected)?)
}

fn whole_if_possible(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

fn unique(values: Vec<Value>) -> Vec<Value> {
    let mut seen = Vec::new();
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_definitions_parse() {
        let definitions = Definitions::parse(DEFAULT_DEFINITIONS).unwrap();
        let keys: Vec<&str> = definitions.traits.iter().map(|d| d.key.as_str()).collect();
        assert!(
            keys.contains(&"docs_last_2_days") && keys.contains(&"last_known_service_agent"),
            "{keys:?}"
        );
    }

    #[test]
    fn bad_definitions_are_refused_with_a_reason() {
        assert!(
            Definitions::parse(r#"{"traits": [{"key": "x", "type": "median", "event": "e"}]}"#)
                .is_err()
        );
        let twice = r#"{"traits": [{"key": "x", "type": "event_counter", "event": "e"}, {"key": "x", "type": "event_counter", "event": "e"}]}"#;
        assert_eq!(
            Definitions::parse(twice).unwrap_err(),
            "computed trait x is defined twice"
        );
    }
}
