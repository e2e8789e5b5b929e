//! A request's fields (form, JSON or query, all alike), typed reads of them, and the customer
//! they name (`Identifier::from_fields`: which field, in which order).

use serde_json::{Map, Value};

use crate::domain::identity::{
    Customer, Identifier, IdentityError, is_withheld, normalise_email, normalise_phone,
};

/// Field name -> value. Form and query values are strings; JSON bodies keep their types.
pub type Fields = Map<String, Value>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: &'static str,
    pub problem: String,
}

pub(crate) fn problem(field: &'static str, problem: impl Into<String>) -> FieldError {
    FieldError {
        field,
        problem: problem.into(),
    }
}

/// A non-blank string field.
pub fn text<'a>(fields: &'a Fields, field: &'static str) -> Result<Option<&'a str>, FieldError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(_) => Err(problem(field, "must be a string")),
    }
}

/// How deeply a JSON object field may nest. What reads it (the rules' conversion to CEL, for
/// one) walks it recursively; serde_json's own default is 128.
pub const MAX_OBJECT_NESTING: usize = 64;

/// A JSON object field; from a form it arrives as a string holding JSON.
pub fn object(
    fields: &Fields,
    field: &'static str,
) -> Result<Option<Map<String, Value>>, FieldError> {
    let map = match fields.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => match crate::support::json_text::from_str::<Value>(s) {
            Ok(Value::Object(map)) => map,
            _ => return Err(problem(field, "must be a JSON object")),
        },
        Some(_) => return Err(problem(field, "must be a JSON object")),
    };
    let nesting = 1 + map
        .values()
        .map(crate::support::json_text::nesting)
        .max()
        .unwrap_or(0);
    if nesting > MAX_OBJECT_NESTING {
        return Err(problem(
            field,
            format!("must nest at most {MAX_OBJECT_NESTING} levels (objects and lists within it)"),
        ));
    }
    Ok(Some(map))
}

/// A whole number within `range`, given as a JSON number or a string.
pub fn number_in(
    fields: &Fields,
    field: &'static str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, FieldError> {
    let parsed = match fields.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(problem(
            field,
            format!(
                "must be a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// A boolean given as JSON `true`/`false` or the strings `true`/`false`.
pub fn flag(fields: &Fields, field: &'static str) -> Result<bool, FieldError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" | "false" | "0" => Ok(false),
            "true" | "1" => Ok(true),
            _ => Err(problem(field, "must be true or false")),
        },
        Some(_) => Err(problem(field, "must be true or false")),
    }
}

/// Reading the customer from a request is the edge's part of identity: which field names
/// them, in which order. What an identifier is stays in [`crate::domain::identity`].
impl Identifier {
    /// Reads the customer from request fields, in this order: `identifier` (`type:value`),
    /// `user_id`, `email`, `phone`, then `From` (what Studio has in `trigger.message.From` or
    /// `trigger.call.From`). `phone_kind` is the space's identifier type for phone numbers.
    pub fn from_fields(
        fields: &Map<String, Value>,
        phone_kind: &str,
    ) -> Result<Customer, IdentityError> {
        if let Some(raw) = identity_text(fields, "identifier")? {
            let (kind, value) = raw.split_once(':').ok_or(IdentityError::Malformed)?;
            let (kind, value) = (kind.trim(), value.trim());
            if kind.is_empty() || value.is_empty() {
                return Err(IdentityError::Malformed);
            }
            return Self::of_kind(kind, value, phone_kind, "identifier");
        }
        if let Some(user_id) = identity_text(fields, "user_id")? {
            return Self::of_kind("user_id", user_id, phone_kind, "user_id");
        }
        if let Some(email) = identity_text(fields, "email")? {
            return Self::of_kind("email", email, phone_kind, "email");
        }
        if let Some(phone) = raw_text(fields, "phone")? {
            return Self::of_kind(phone_kind, phone, phone_kind, "phone");
        }
        if let Some(from) = raw_text(fields, "From")? {
            if is_withheld(from) {
                return Ok(Customer::Withheld);
            }
            // Studio's From is a phone for SMS, WhatsApp and voice; web chat may carry an email.
            if let Some(phone) = normalise_phone(from) {
                return Ok(Customer::Identified(Self::phone(phone_kind, phone)));
            }
            if let Some(email) = normalise_email(from) {
                return Ok(Customer::Identified(Self::plain("email", email)));
            }
            return Err(IdentityError::FromNotUsable);
        }
        Err(IdentityError::Missing)
    }
}

/// A present, non-blank string field, trimmed.
fn identity_text<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, IdentityError> {
    text(fields, name).map_err(|_| IdentityError::NotAString { field: name })
}

/// A present, non-blank string field as sent: a phone number's leading space may be the `+`
/// of an unencoded form body, which trimming would lose.
fn raw_text<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, IdentityError> {
    match fields.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s)),
        _ => identity_text(fields, name),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(value: Value) -> Fields {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn objects_come_as_json_or_as_json_in_a_form_string() {
        let direct = fields(json!({"traits": {"vip": true}}));
        let form = fields(json!({"traits": "{\"vip\": true}"}));
        assert_eq!(
            object(&direct, "traits").unwrap(),
            object(&form, "traits").unwrap()
        );
        assert!(object(&fields(json!({"traits": "[1]"})), "traits").is_err());
        assert!(object(&fields(json!({"traits": 3})), "traits").is_err());
        assert_eq!(object(&fields(json!({})), "traits").unwrap(), None);
    }

    #[test]
    fn numbers_are_range_checked() {
        assert_eq!(
            number_in(&fields(json!({"limit": "20"})), "limit", 1..=200).unwrap(),
            Some(20)
        );
        assert_eq!(
            number_in(&fields(json!({"limit": 200})), "limit", 1..=200).unwrap(),
            Some(200)
        );
        let error = number_in(&fields(json!({"limit": "0"})), "limit", 1..=200).unwrap_err();
        assert_eq!(
            error.to_string(),
            "limit: must be a whole number from 1 to 200"
        );
        assert!(number_in(&fields(json!({"limit": "ten"})), "limit", 1..=200).is_err());
        assert!(number_in(&fields(json!({"limit": -1})), "limit", 1..=200).is_err());
    }

    #[test]
    fn flags_accept_strings_and_booleans() {
        assert!(flag(&fields(json!({"x": "true"})), "x").unwrap());
        assert!(flag(&fields(json!({"x": true})), "x").unwrap());
        assert!(!flag(&fields(json!({})), "x").unwrap());
        assert!(flag(&fields(json!({"x": "maybe"})), "x").is_err());
    }
}
