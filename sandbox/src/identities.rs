//! The identifiers a Segment message carries, as identity resolution reads them.

use serde_json::Value;

/// Values Segment blocks as identifiers by default.
fn blocked(value: &str) -> bool {
    value.is_empty()
        || value.chars().all(|c| c == '0' || c == '-')
        || ["-1", "null", "anonymous", "undefined"].contains(&value.to_ascii_lowercase().as_str())
}

/// The (type, value) identifiers a message carries: `userId`, `anonymousId`, email and phone
/// from `context.traits`, `traits` and `properties`, and `context.externalIds`; and, for an
/// alias, the `previousId` it links.
pub fn identifiers(message: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let mut found: Vec<(String, String)> = Vec::new();
    let mut push = |kind: &str, value: &str| {
        let value = value.trim();
        let value = if kind == "email" {
            value.to_lowercase()
        } else {
            value.to_owned()
        };
        if !blocked(&value) && !found.iter().any(|(k, v)| k == kind && *v == value) {
            found.push((kind.to_owned(), value));
        }
    };
    let text = |value: Option<&Value>| -> Option<String> {
        match value? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    if let Some(user) = text(message.get("userId")) {
        push("user_id", &user);
    }
    if let Some(anonymous) = text(message.get("anonymousId")) {
        push("anonymous_id", &anonymous);
    }
    for container in [
        message.pointer("/context/traits"),
        message.get("traits"),
        message.get("properties"),
    ]
    .into_iter()
    .flatten()
    {
        for kind in ["email", "phone"] {
            if let Some(value) = text(container.get(kind)) {
                push(kind, &value);
            }
        }
    }
    if let Some(Value::Array(external)) = message.pointer("/context/externalIds") {
        for id in external {
            if let (Some(kind), Some(value)) =
                (id.get("type").and_then(Value::as_str), text(id.get("id")))
            {
                push(kind, &value);
            }
        }
    }
    let links = match (
        message.get("type").and_then(Value::as_str),
        text(message.get("previousId")),
    ) {
        (Some("alias"), Some(previous)) if !blocked(&previous) => vec![previous],
        _ => Vec::new(),
    };
    (found, links)
}
