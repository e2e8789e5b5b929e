//! Who the customer is, from a task's attributes, as Segment will resolve them: a phone
//! (E.164) or an email, never a withheld caller id, and an anonymous id derived from it.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Mapping, TaskEvent};
use crate::domain::identity::{is_withheld, normalise_email, normalise_phone};
use crate::domain::timestamps::Timestamp;

/// Who the customer is, as Segment will resolve them.
pub(super) enum Customer {
    Phone(String),
    Email(String),
    /// Only a withheld caller id: no identity to give Segment.
    Withheld,
}

impl Mapping {
    pub(super) fn customer(
        &self,
        attributes: &Map<String, Value>,
        direction: Option<&str>,
    ) -> Option<Customer> {
        let address_paths = if direction == Some("Outbound") {
            &self.outbound_address_paths
        } else {
            &self.inbound_address_paths
        };
        let addresses: Vec<String> = address_paths
            .iter()
            .filter_map(|p| text_at(attributes, p))
            .collect();
        let (withheld, addresses): (Vec<String>, Vec<String>) =
            addresses.into_iter().partition(|a| is_withheld(a));
        if let Some(phone) = addresses.iter().find_map(|a| normalise_phone(a)) {
            return Some(Customer::Phone(phone));
        }
        let email = self
            .email_paths
            .iter()
            .filter_map(|p| text_at(attributes, p))
            .chain(addresses)
            .find_map(|candidate| normalise_email(&candidate))
            .map(Customer::Email);
        email.or_else(|| (!withheld.is_empty()).then_some(Customer::Withheld))
    }
}

/// `Inbound` / `Outbound` from the task's `direction` or Flex Insights' `conversations.direction`.
pub(super) fn direction(attributes: &Map<String, Value>) -> Option<&'static str> {
    let raw = text_at(attributes, "direction")
        .or_else(|| text_at(attributes, "conversations.direction"))?;
    match raw.to_ascii_lowercase().as_str() {
        "inbound" => Some("Inbound"),
        "outbound" | "outbound-api" | "outbound-dial" => Some("Outbound"),
        _ => None,
    }
}

/// When the task was created: the event's time less the task's age.
pub(super) fn customer_start_time(event: &TaskEvent) -> Option<String> {
    let at = Timestamp::parse_rfc3339(event.occurred_at.as_deref()?)?;
    let start = at.checked_sub(std::time::Duration::from_secs(event.age_seconds?))?;
    Some(start.to_rfc3339())
}

/// A non-blank string (or number) at a dotted path.
pub(super) fn text_at(attributes: &Map<String, Value>, path: &str) -> Option<String> {
    let mut segments = path.split('.');
    let mut current = attributes.get(segments.next()?)?;
    for segment in segments {
        current = current.as_object()?.get(segment)?;
    }
    match current {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Stable per customer, and not the phone number itself.
pub(super) fn anonymous_id(customer: &Customer) -> Option<String> {
    let key = match customer {
        Customer::Phone(phone) => format!("phone:{phone}"),
        Customer::Email(email) => format!("email:{email}"),
        Customer::Withheld => return None,
    };
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Some(format!("flex-{hex}"))
}
