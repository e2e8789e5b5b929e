//! The event the Runtime API hands over, read without the query map.

use serde_json::{Map, Value};

/// An invocation's event as the Runtime API hands it over, read without
/// `queryStringParameters`. Function URLs and HTTP APIs send a query twice, as
/// `rawQueryString` and as that map; a 2 MB query of 200,000 short fields made the map alone
/// cost some 70 MB before any check could refuse it. The functions read only
/// `rawQueryString` (the text a signature covers, bounded before authentication), so the
/// map is skipped as it is read, never built.
#[derive(Debug)]
pub struct Event(pub Value);

impl<'de> serde::Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Skipping;
        impl<'de> serde::de::Visitor<'de> for Skipping {
            type Value = Value;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON event")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Value, A::Error> {
                let mut object = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == QUERY_MAP {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    } else {
                        object.insert(key, map.next_value()?);
                    }
                }
                Ok(Value::Object(object))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
                serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(Value::String(v.to_owned()))
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
        }
        deserializer.deserialize_any(Skipping).map(Self)
    }
}

/// The query as a map, in a payload 2.0 event: never read (see [`Event`]).
pub(super) const QUERY_MAP: &str = "queryStringParameters";
