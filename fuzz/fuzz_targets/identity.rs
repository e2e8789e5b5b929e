//! Fields (as a form or a query string carries them) into a customer identifier, and any
//! text through the phone and email normalisers: no panic, and what comes out is what
//! Segment can be asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use studio_router::domain::identity::{Customer, Identifier, is_withheld, normalise_email, normalise_phone};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(phone) = normalise_phone(text) {
        assert!(phone.starts_with('+') && phone[1..].bytes().all(|b| b.is_ascii_digit()), "{phone}");
        assert_eq!(normalise_phone(&phone).as_deref(), Some(phone.as_str()));
    }
    let _ = normalise_email(text);
    let _ = is_withheld(text);
    // The same text as the fields of a form body.
    let mut fields = serde_json::Map::new();
    for pair in text.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        fields.entry(name.to_owned()).or_insert_with(|| serde_json::Value::String(value.to_owned()));
    }
    if let Ok(Customer::Identified(identifier)) = Identifier::from_fields(&fields, "phone") {
        let segment = identifier.path_segment();
        assert!(segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~:%".contains(&b)), "{segment}");
        let _ = identifier.masked();
    }
});
