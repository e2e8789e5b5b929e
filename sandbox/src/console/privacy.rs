//! The console shows phone numbers and email addresses masked the way the logs mask them,
//! unless the person at the keyboard asks to see them (`reveal=true`, loopback only).

use serde_json::Value;
use studio_router::domain::identity::normalise_phone;
use studio_router::support::telemetry::{mask_email, mask_phone};

/// `+15555550100` -> `+1******0100`, `whatsapp:+15555550100` -> `whatsapp:+1******0100`,
/// `dana@example.com` -> `d***@example.com`, and so within free text (`call +15555550100`);
/// anything else as it is.
pub fn mask_text(text: &str) -> String {
    if let Some(whole) = mask_word(text) {
        return whole;
    }
    if !text.contains(char::is_whitespace) {
        return text.to_owned();
    }
    // Word by word, punctuation around a word kept, spacing kept.
    let mut out = String::with_capacity(text.len());
    for (i, piece) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let edge = |c: char| !(c.is_alphanumeric() || c == '+' || c == '@');
        let word = piece.trim_matches(edge);
        match (mask_word(word), piece.find(word)) {
            (Some(masked), Some(at)) if !word.is_empty() => {
                out.push_str(&piece[..at]);
                out.push_str(&masked);
                out.push_str(&piece[at + word.len()..]);
            }
            _ => out.push_str(piece),
        }
    }
    out
}

/// One phone number or email address, masked; `None` for anything else.
fn mask_word(text: &str) -> Option<String> {
    if let Some((prefix, rest)) = text.split_once(':')
        && !prefix.is_empty()
        && prefix.chars().all(|c| c.is_ascii_alphabetic())
        && normalise_phone(rest).is_some()
    {
        return Some(format!("{prefix}:{}", mask_phone(rest.trim())));
    }
    if normalise_phone(text).is_some() {
        return Some(mask_phone(text.trim()));
    }
    looks_like_email(text).then(|| mask_email(text))
}

fn looks_like_email(text: &str) -> bool {
    text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !text.contains(char::is_whitespace)
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
        assert_eq!(
            mask_text("call me on +15555550100, or dana@example.com."),
            "call me on +1******0100, or d***@example.com."
        );
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
