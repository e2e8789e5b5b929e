//! The console shows phone numbers and email addresses masked the way the logs mask them,
//! unless the person at the keyboard asks to see them (`reveal=true`, loopback only).

use serde_json::Value;
use studio_router::identity::normalise_phone;
use studio_router::telemetry::{mask_email, mask_phone};

/// `+15555550100` -> `+1******0100`, `whatsapp:+15555550100` -> `whatsapp:+1******0100`,
/// `dana@example.com` -> `d***@example.com`; anything else as it is.
pub fn mask_text(text: &str) -> String {
    if let Some((prefix, rest)) = text.split_once(':')
        && !prefix.is_empty()
        && prefix.chars().all(|c| c.is_ascii_alphabetic())
        && normalise_phone(rest).is_some()
    {
        return format!("{prefix}:{}", mask_phone(rest.trim()));
    }
    if normalise_phone(text).is_some() {
        return mask_phone(text.trim());
    }
    if looks_like_email(text) {
        return mask_email(text);
    }
    text.to_owned()
}

fn looks_like_email(text: &str) -> bool {
    text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.contains(char::is_whitespace)
    })
}

/// Every phone number and email address in `value`, masked, unless `reveal`.
pub fn masked(value: &Value, reveal: bool) -> Value {
    if reveal {
        return value.clone();
    }
    match value {
        Value::String(text) => Value::String(mask_text(text)),
        Value::Array(items) => Value::Array(items.iter().map(|v| masked(v, false)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, v)| (key.clone(), masked(v, false)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// [`mask_text`] unless `reveal`.
pub fn shown(text: &str, reveal: bool) -> String {
    if reveal {
        text.to_owned()
    } else {
        mask_text(text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn phones_and_emails_are_masked_wherever_they_are_and_nothing_else_is() {
        assert_eq!(mask_text("+15555550100"), "+1******0100");
        assert_eq!(mask_text("whatsapp:+15555550100"), "whatsapp:+1******0100");
        assert_eq!(mask_text("dana@example.com"), "d***@example.com");
        for kept in [
            "demo-dana",
            "WT0000000000000000000000000000sm01",
            "1795000200",
            "/docs/flex",
        ] {
            assert_eq!(mask_text(kept), kept);
        }
        let message = json!({"context": {"traits": {"phone": "+15555550101"}},
                             "traits": {"email": "nico@example.com", "first_name": "Nico"},
                             "context2": [{"id": "+15555550101", "type": "phone"}]});
        let shown = masked(&message, false).to_string();
        assert!(
            !shown.contains("5555550101") && !shown.contains("nico@"),
            "{shown}"
        );
        assert!(
            shown.contains("Nico") && shown.contains("+1******0101"),
            "{shown}"
        );
        assert_eq!(masked(&message, true), message);
    }
}
