//! JSON values as DynamoDB attribute values and back (the low-level API's "data type
//! descriptors": `S`, `N`, `BOOL`, `NULL`, `L`, `M`; DynamoDB Developer Guide, "Low-level
//! API"). Numbers travel as their text, so a trait's number comes back as it was sent.

use serde_json::{Map, Number, Value, json};

/// The widest magnitudes DynamoDB stores (Developer Guide, "Data types": positive numbers
/// from 1E-130 to 9.9999999999999999999999999999999999999E+125). A number outside them would
/// fail the whole write, and Segment would send that delivery again for hours.
/// Every number below this bound (exclusive) and at least `SMALLEST` is stored.
const BOUND: f64 = 1e126;
const SMALLEST: f64 = 1e-130;

/// `value` as an attribute value, or `None` for a number DynamoDB cannot hold (or, inside a
/// list or map, a value holding one).
pub fn to_attribute(value: &Value) -> Option<Value> {
    Some(match value {
        Value::Null => json!({"NULL": true}),
        Value::Bool(b) => json!({"BOOL": b}),
        Value::Number(n) => {
            let magnitude = n.as_f64().map(f64::abs)?;
            if magnitude >= BOUND || (magnitude != 0.0 && magnitude < SMALLEST) {
                return None;
            }
            json!({"N": n.to_string()})
        }
        Value::String(s) => json!({"S": s}),
        Value::Array(items) => {
            let items: Option<Vec<Value>> = items.iter().map(to_attribute).collect();
            json!({"L": items?})
        }
        Value::Object(fields) => json!({"M": to_map(fields)?}),
    })
}

/// An object as an `M` map's content; `None` when any value cannot be stored.
pub fn to_map(fields: &Map<String, Value>) -> Option<Map<String, Value>> {
    fields
        .iter()
        .map(|(name, value)| Some((name.clone(), to_attribute(value)?)))
        .collect()
}

/// An attribute value as JSON; `None` for the types a trait never is (sets, binary).
pub fn from_attribute(attribute: &Value) -> Option<Value> {
    let (kind, value) = attribute.as_object()?.iter().next()?;
    Some(match (kind.as_str(), value) {
        ("NULL", _) => Value::Null,
        ("BOOL", Value::Bool(b)) => Value::Bool(*b),
        ("S", Value::String(s)) => Value::String(s.clone()),
        ("N", Value::String(n)) => Value::Number(number(n)?),
        ("L", Value::Array(items)) => {
            Value::Array(items.iter().map(from_attribute).collect::<Option<_>>()?)
        }
        ("M", Value::Object(fields)) => Value::Object(from_map(fields)?),
        _ => return None,
    })
}

/// An `M` map's content as an object.
pub fn from_map(fields: &Map<String, Value>) -> Option<Map<String, Value>> {
    fields
        .iter()
        .map(|(name, value)| Some((name.clone(), from_attribute(value)?)))
        .collect()
}

/// The traits of an item's `traits` map that read as JSON; one that does not (a set, binary)
/// is left out rather than costing the others.
pub fn readable(fields: &Map<String, Value>) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|(name, value)| Some((name.clone(), from_attribute(value)?)))
        .collect()
}

/// DynamoDB's number text as a JSON number: integers exactly, the rest as the nearest double.
fn number(text: &str) -> Option<Number> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(n.into());
    }
    if let Ok(n) = text.parse::<u64>() {
        return Some(n.into());
    }
    Number::from_f64(text.parse::<f64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traits_go_in_and_come_back_as_they_were() {
        let traits = json!({
            "vip": true, "plan": "gold", "ltv": 1234.5, "visits": 7, "none": null,
            "tags": ["a", 1], "address": {"city": "Lyon", "zip": "69001"}, "empty": ""
        });
        let map = to_map(traits.as_object().unwrap()).unwrap();
        assert_eq!(map["vip"], json!({"BOOL": true}));
        assert_eq!(map["visits"], json!({"N": "7"}));
        assert_eq!(map["tags"], json!({"L": [{"S": "a"}, {"N": "1"}]}));
        assert_eq!(Value::Object(from_map(&map).unwrap()), traits);
    }

    #[test]
    fn numbers_dynamodb_cannot_hold_are_refused_not_sent() {
        for n in [1e130, -1e200, 1e-140] {
            assert_eq!(to_attribute(&json!(n)), None, "{n}");
            assert_eq!(to_attribute(&json!({"deep": [n]})), None, "{n}");
        }
        assert!(to_attribute(&json!(0.0)).is_some());
        assert!(to_attribute(&json!(u64::MAX)).is_some());
    }

    #[test]
    fn sets_and_binary_are_not_traits() {
        assert_eq!(from_attribute(&json!({"SS": ["a"]})), None);
        assert_eq!(from_attribute(&json!({"B": "AAAA"})), None);
        assert_eq!(from_attribute(&json!({"N": "not a number"})), None);
    }
}
