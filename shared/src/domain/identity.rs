//! Who the customer is: the Segment identifier a request names, normalised the way Segment
//! stores it (E.164 phones, lowercase emails), and its Profile API path segment.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::support::telemetry::{mask_email, mask_other, mask_phone};

/// Everything but RFC 3986 unreserved characters is encoded: Segment answers 500 to raw
/// non-alphanumerics, and a raw `+` would be read as a space.
const PATH_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Who a request is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Customer {
    Identified(Identifier),
    /// The caller withheld their number (Twilio puts `anonymous`, or a number that spells
    /// ANONYMOUS or RESTRICTED, in `From`). Never looked up: every withheld caller would
    /// otherwise share one profile, and its history would route all of them.
    Withheld,
}

impl Customer {
    /// The identifier, unless the caller withheld it.
    pub fn identifier(&self) -> Option<&Identifier> {
        match self {
            Self::Identified(identifier) => Some(identifier),
            Self::Withheld => None,
        }
    }

    /// For logs: the masked identifier, or `withheld`.
    pub fn masked(&self) -> String {
        self.identifier()
            .map_or_else(|| "withheld".to_owned(), Identifier::masked)
    }
}

/// A Segment identifier such as `phone:+15555550100` or `email:ann@example.com`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identifier {
    kind: String,
    value: String,
    /// Whether `value` is a phone number (the space's phone identifier type), for masking.
    is_phone: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error(
        "no usable identifier: send one of identifier (type:value), user_id, email, phone or From"
    )]
    Missing,
    #[error("{field} is not a phone number in international format (E.164, e.g. +15555550100)")]
    NotAPhoneNumber { field: &'static str },
    #[error("{field} is not an email address")]
    NotAnEmail { field: &'static str },
    #[error("identifier must look like type:value, e.g. phone:+15555550100")]
    Malformed,
    #[error("{field} must be a string")]
    NotAString { field: &'static str },
    #[error(
        "From is neither a phone number in international format (E.164, e.g. +15555550100, or whatsapp:+15555550100) nor an email address"
    )]
    FromNotUsable,
}

impl Identifier {
    /// The identifier type name (`phone`, `email`, `user_id`, ...).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// The Profile API path segment: `phone:%2B15555550100`.
    pub fn path_segment(&self) -> String {
        format!(
            "{}:{}",
            utf8_percent_encode(&self.kind, PATH_VALUE),
            utf8_percent_encode(&self.value, PATH_VALUE)
        )
    }

    /// The identifier with its value masked, for logs.
    pub fn masked(&self) -> String {
        let value = if self.is_phone {
            mask_phone(&self.value)
        } else if self.kind == "email" {
            mask_email(&self.value)
        } else {
            mask_other(&self.value)
        };
        format!("{}:{value}", self.kind)
    }

    /// The customer a value of `kind` names; `field` is where it came from, for the error.
    pub(crate) fn of_kind(
        kind: &str,
        value: &str,
        phone_kind: &str,
        field: &'static str,
    ) -> Result<Customer, IdentityError> {
        if kind == phone_kind {
            if is_withheld(value) {
                return Ok(Customer::Withheld);
            }
            let phone = normalise_phone(value).ok_or(IdentityError::NotAPhoneNumber { field })?;
            Ok(Customer::Identified(Self::phone(phone_kind, phone)))
        } else if kind == "email" {
            let email = normalise_email(value).ok_or(IdentityError::NotAnEmail { field })?;
            Ok(Customer::Identified(Self::plain("email", email)))
        } else {
            Ok(Customer::Identified(Self::plain(kind, value.to_owned())))
        }
    }

    pub(crate) fn phone(kind: &str, e164: String) -> Self {
        Self {
            kind: kind.to_owned(),
            value: e164,
            is_phone: true,
        }
    }

    pub(crate) fn plain(kind: &str, value: String) -> Self {
        Self {
            kind: kind.to_owned(),
            value,
            is_phone: false,
        }
    }
}

impl fmt::Display for Identifier {
    /// The unmasked `type:value`, as answered to the caller; never log this form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// What Twilio puts in `From` when a caller withholds their number: `anonymous` (since May
/// 2023, Twilio's changelog "Changes to withheld caller ID behavior"), the words carriers pass
/// through, and the numbers those words spell on a keypad (Twilio's support article "Why am I
/// getting calls from these strange numbers?"). `+464` is the one Twilio gives for no caller
/// id at all.
const WITHHELD_WORDS: [&str; 7] = [
    "anonymous",
    "restricted",
    "unknown",
    "unavailable",
    "blocked",
    "private",
    "withheld",
];
const WITHHELD_NUMBERS: [&str; 7] = [
    "266696687",   // ANONYMOUS
    "7378742833",  // RESTRICTED
    "17378742833", // RESTRICTED, as some carriers pass it
    "86282452253", // UNAVAILABLE
    "8656696",     // UNKNOWN
    "2562533",     // BLOCKED
    "464",         // no caller id
];

/// Whether an address is a withheld caller id rather than a customer's.
pub fn is_withheld(raw: &str) -> bool {
    let mut value = raw.trim();
    if let Some((prefix, rest)) = value.split_once(':')
        && CHANNEL_PREFIXES
            .iter()
            .any(|p| p[..p.len() - 1].eq_ignore_ascii_case(prefix))
    {
        value = rest.trim();
    }
    if WITHHELD_WORDS
        .iter()
        .any(|word| word.eq_ignore_ascii_case(value))
    {
        return true;
    }
    let digits = value.strip_prefix('+').unwrap_or(value);
    WITHHELD_NUMBERS.contains(&digits)
}

/// Channel prefixes Twilio puts in front of an address.
const CHANNEL_PREFIXES: [&str; 5] = ["whatsapp:", "sms:", "mms:", "rcs:", "tel:"];

/// The channel each address prefix names (Twilio writes a channel's addresses as
/// `<channel>:<address>`; Voice SDK callers are `client:<identity>`, SIP callers `sip:...`).
const ADDRESS_CHANNELS: [(&str, &str); 8] = [
    ("whatsapp", "whatsapp"),
    ("messenger", "messenger"),
    ("rcs", "rcs"),
    ("sms", "sms"),
    ("mms", "mms"),
    ("tel", "voice"),
    ("sip", "voice"),
    ("client", "voice"),
];

/// The channel an address came by, when it says: `whatsapp:+15555550100` is `whatsapp`,
/// `client:alice` is `voice`. A bare number does not say (a message or a call); an email does
/// not either.
pub fn channel_of_address(address: &str) -> Option<&'static str> {
    let (prefix, _) = address.trim().split_once(':')?;
    ADDRESS_CHANNELS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(prefix.trim()))
        .map(|(_, channel)| *channel)
}

/// `" 1555…"` -> `"1555…"`: the digits after a single space that was a `+`.
fn plus_as_space(s: &str) -> Option<&str> {
    s.strip_prefix(' ')
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// Normalises a phone number to E.164 (`+` and 8 to 15 digits, no leading zero), removing
/// channel prefixes and formatting. A national number (no `+` or `00`) cannot be resolved
/// without knowing the country, so it is not a phone number here: Segment does not normalise
/// phones, and guessing a country would look up the wrong person.
pub fn normalise_phone(raw: &str) -> Option<String> {
    // A `+` sent unencoded in a form body or query string arrives as a space: exactly one
    // space before the digits is that `+`, not formatting.
    let mut rest = raw.trim_end();
    let mut mangled_plus = false;
    match plus_as_space(rest) {
        Some(after) => (rest, mangled_plus) = (after, true),
        None => rest = rest.trim_start(),
    }
    for prefix in CHANNEL_PREFIXES {
        // `get`, not indexing: the input is any text, and a byte index may fall inside a
        // multi-byte character.
        if !mangled_plus
            && rest
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        {
            rest = &rest[prefix.len()..];
            match plus_as_space(rest) {
                Some(after) => (rest, mangled_plus) = (after, true),
                None => rest = rest.trim_start(),
            }
            break;
        }
    }
    // tel: URIs may carry parameters (`;ext=12`); they are not part of the number.
    let rest = rest.split(';').next().unwrap_or_default();
    let digits_part = match rest.strip_prefix('+') {
        Some(after) => after,
        None if mangled_plus => rest,
        None => rest.strip_prefix("00")?,
    };
    let mut digits = String::with_capacity(16);
    digits.push('+');
    let mut rest = digits_part;
    while let Some(c) = rest.chars().next() {
        // `+44 (0) 7700 900123`: a "(0)" after the country code is the national trunk
        // prefix, written for people who dial from inside the country; E.164 has no place for it.
        if let Some(after) = rest.strip_prefix("(0)")
            && (2..=4).contains(&digits.len())
        {
            rest = after;
            continue;
        }
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            _ => return None,
        }
        rest = &rest[c.len_utf8()..];
    }
    let count = digits.len() - 1;
    if !(8..=15).contains(&count) || digits.as_bytes()[1] == b'0' {
        return None;
    }
    Some(digits)
}

/// Lowercases an email (Segment matches identifier values in lowercase); `None` if it is
/// not shaped like one.
pub fn normalise_email(raw: &str) -> Option<String> {
    let email = raw.trim();
    let (local, domain) = email.split_once('@')?;
    let plausible = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
        && !domain.contains('@');
    plausible.then(|| email.to_lowercase())
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;

    fn fields(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The identifier the fields name (they must name one).
    fn identified(fields: &Map<String, Value>, phone_kind: &str) -> Identifier {
        match Identifier::from_fields(fields, phone_kind) {
            Ok(Customer::Identified(identifier)) => identifier,
            other => panic!("{fields:?}: {other:?}"),
        }
    }

    #[test]
    fn phone_numbers_lose_channel_prefixes_and_formatting() {
        for (raw, expected) in [
            ("whatsapp:+1 (555) 555-0100", "+15555550100"),
            ("WhatsApp:+15555550100", "+15555550100"),
            ("tel:+1-555-555-0100", "+15555550100"),
            ("tel:+15555550100;ext=12", "+15555550100"),
            ("sms:+44 7700 900123", "+447700900123"),
            ("+49.30.123456", "+4930123456"),
            ("0033 6 12 34 56 78", "+33612345678"),
            ("  +15555550100  ", "+15555550100"),
            // `+` sent unencoded in a form or query string, decoded as a space
            (" 15555550100", "+15555550100"),
            ("whatsapp: 15555550100", "+15555550100"),
        ] {
            assert_eq!(normalise_phone(raw).as_deref(), Some(expected), "{raw}");
        }
    }

    #[test]
    fn values_that_cannot_be_phone_numbers_are_refused() {
        for raw in [
            "(555) 555-0100",             // national format: no country to resolve it with
            "555-0100",                   // national, too short
            "07700 900123",               // UK national
            "+0123456789",                // country codes never start with 0
            "+1234567",                   // too short for E.164
            "+1234567890123456",          // too long for E.164
            "+1555CALLNOW",               // letters
            "client:alice",               // a Twilio Client identity
            "messenger:12345678",         // not a phone channel
            "  15555550100",              // two spaces are formatting, not a mangled +
            "wh\u{e9}tsapp:+15555550100", // a multi-byte character where a prefix would end
            "\u{bb}\u{bb}\u{bb}\u{bb}\u{bb}",
            "15555550100", // no + at all: national or not, we cannot tell
            "",
        ] {
            assert_eq!(normalise_phone(raw), None, "{raw}");
        }
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            normalise_email(" Ann.Lee@Example.COM ").as_deref(),
            Some("ann.lee@example.com")
        );
        assert_eq!(normalise_email("ann@localhost"), None);
        assert_eq!(normalise_email("@example.com"), None);
        assert_eq!(normalise_email("ann lee@example.com"), None);
        assert_eq!(normalise_email("ann@@example.com"), None);
    }

    #[test]
    fn studio_from_becomes_a_phone_identifier_of_the_configured_type() {
        let id = identified(&fields(json!({"From": "whatsapp:+15555550100"})), "phone");
        assert_eq!(id.to_string(), "phone:+15555550100");
        assert_eq!(id.path_segment(), "phone:%2B15555550100");
        assert_eq!(id.masked(), "phone:+1******0100");

        let custom = identified(&fields(json!({"From": "+15555550100"})), "mobile");
        assert_eq!(custom.to_string(), "mobile:+15555550100");
    }

    #[test]
    fn explicit_fields_win_over_from_in_the_documented_order() {
        let all = json!({
            "From": "+15555550100", "phone": "+15555550199", "email": "A@B.io",
            "user_id": "u-1", "identifier": "email:Z@Y.io"
        });
        assert_eq!(
            identified(&fields(all.clone()), "phone").to_string(),
            "email:z@y.io"
        );
        let mut no_identifier = fields(all);
        no_identifier.remove("identifier");
        assert_eq!(
            identified(&no_identifier, "phone").to_string(),
            "user_id:u-1"
        );
        no_identifier.remove("user_id");
        assert_eq!(
            identified(&no_identifier, "phone").to_string(),
            "email:a@b.io"
        );
        no_identifier.remove("email");
        assert_eq!(
            identified(&no_identifier, "phone").to_string(),
            "phone:+15555550199"
        );
    }

    #[test]
    fn identifier_field_is_normalised_by_its_type() {
        let phone = identified(
            &fields(json!({"identifier": "phone:+1 555 555 0100"})),
            "phone",
        );
        assert_eq!(phone.to_string(), "phone:+15555550100");
        let user = identified(&fields(json!({"identifier": "user_id:Ab/C 1"})), "phone");
        assert_eq!(user.path_segment(), "user_id:Ab%2FC%201");
        let email = identified(&fields(json!({"email": "Ann+vip@Example.com"})), "phone");
        assert_eq!(email.path_segment(), "email:ann%2Bvip%40example.com");
    }

    #[test]
    fn unusable_input_is_a_clear_error() {
        let cases = [
            (json!({}), IdentityError::Missing),
            (json!({"From": "  "}), IdentityError::Missing),
            (
                json!({"From": "client:alice"}),
                IdentityError::FromNotUsable,
            ),
            (
                json!({"From": "(555) 555-0100"}),
                IdentityError::FromNotUsable,
            ),
            (
                json!({"phone": "(555) 555-0100"}),
                IdentityError::NotAPhoneNumber { field: "phone" },
            ),
            (
                json!({"identifier": "phone:555-0100"}),
                IdentityError::NotAPhoneNumber {
                    field: "identifier",
                },
            ),
            (
                json!({"email": "nobody"}),
                IdentityError::NotAnEmail { field: "email" },
            ),
            (json!({"identifier": "nocolon"}), IdentityError::Malformed),
            (json!({"identifier": ":value"}), IdentityError::Malformed),
            (
                json!({"user_id": 42}),
                IdentityError::NotAString { field: "user_id" },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                Identifier::from_fields(&fields(input.clone()), "phone"),
                Err(expected),
                "{input}"
            );
        }
    }

    #[test]
    fn an_unencoded_plus_in_from_or_phone_is_read_as_the_plus() {
        // `curl -d From=+15550001001` sends a space where the + was.
        for field in ["From", "phone"] {
            let id = identified(&fields(json!({field: " 15555550100"})), "phone");
            assert_eq!(id.to_string(), "phone:+15555550100", "{field}");
        }
    }

    #[test]
    fn withheld_caller_ids_are_no_customer() {
        for from in [
            "anonymous",
            "Anonymous",
            "RESTRICTED",
            "unknown",
            "Unavailable",
            "blocked",
            "private",
            "+266696687",
            "+7378742833",
            "+17378742833",
            "+86282452253",
            "+8656696",
            "+2562533",
            "+464",
            "266696687",
            "tel:+266696687",
        ] {
            assert!(is_withheld(from), "{from}");
            assert_eq!(
                Identifier::from_fields(&fields(json!({"From": from})), "phone"),
                Ok(Customer::Withheld),
                "{from}"
            );
        }
        assert_eq!(
            Identifier::from_fields(&fields(json!({"phone": "+266696687"})), "phone"),
            Ok(Customer::Withheld)
        );
        assert_eq!(
            Identifier::from_fields(&fields(json!({"identifier": "phone:anonymous"})), "phone"),
            Ok(Customer::Withheld)
        );
        // A number that only contains a sentinel's digits is a customer.
        for customer in ["+12666966870", "+4926669668", "+14645550100"] {
            assert!(!is_withheld(customer), "{customer}");
        }
        assert_eq!(Customer::Withheld.masked(), "withheld");
    }

    #[test]
    fn a_trunk_zero_after_the_country_code_is_dropped() {
        for (raw, expected) in [
            ("+44 (0) 7700 900123", "+447700900123"),
            ("+44(0)7700900123", "+447700900123"),
            ("+49 (0)30 123456", "+4930123456"),
            ("+353 (0) 1 234 5678", "+35312345678"),
            ("0044 (0) 7700 900123", "+447700900123"),
        ] {
            assert_eq!(normalise_phone(raw).as_deref(), Some(expected), "{raw}");
        }
        // Anywhere else it is not a trunk prefix.
        assert_eq!(
            normalise_phone("+44 7700 (0) 900123").as_deref(),
            Some("+4477000900123")
        );
    }
}
