//! JSON values (Segment's traits) as CEL values, and CEL results (attributes) back as JSON.

use std::collections::HashMap;
use std::sync::Arc;

use cel::Value as Cel;
use cel::objects::Key;
use serde_json::{Map, Number, Value};

/// JSON numbers become CEL ints when they are whole and fit, else doubles, so that
/// `traits.docs_last_2_days > 0` compares as users expect whatever Segment sent.
pub(super) fn json_to_cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cel::Int(i),
            None => n
                .as_u64()
                .map_or_else(|| Cel::Float(n.as_f64().unwrap_or(f64::NAN)), Cel::UInt),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Value::Object(map) => object_to_cel(map),
    }
}

pub(super) fn object_to_cel(map: &Map<String, Value>) -> Cel {
    let converted: HashMap<Key, Cel> = map
        .iter()
        .map(|(key, value)| (Key::String(Arc::new(key.clone())), json_to_cel(value)))
        .collect();
    Cel::Map(converted.into())
}

pub(super) fn cel_to_json(value: &Cel) -> Value {
    match value {
        Cel::Null => Value::Null,
        Cel::Bool(b) => Value::Bool(*b),
        Cel::Int(i) => Value::from(*i),
        Cel::UInt(u) => Value::from(*u),
        Cel::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Cel::String(s) => Value::String(s.to_string()),
        Cel::List(items) => Value::Array(items.iter().map(cel_to_json).collect()),
        Cel::Map(map) => Value::Object(
            map.map
                .iter()
                .map(|(key, value)| {
                    let key = match key {
                        Key::String(s) => s.to_string(),
                        Key::Int(i) => i.to_string(),
                        Key::Uint(u) => u.to_string(),
                        Key::Bool(b) => b.to_string(),
                    };
                    (key, cel_to_json(value))
                })
                .collect(),
        ),
        other => Value::String(format!("{other:?}")),
    }
}
