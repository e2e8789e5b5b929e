//! Any JSON (as Segment's Lambda or EventBridge destination would deliver it) into a trait
//! update: no panic, and what comes out is bounded: some keys, some traits, never past the
//! limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use studio_router::edge::engage::{MAX_IDENTIFIERS, MAX_TRAITS, decode};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = studio_router::support::json_text::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(update) = decode(&value, "phone") {
        assert!(!update.identifiers.is_empty() && update.identifiers.len() <= MAX_IDENTIFIERS);
        assert!(!update.traits.is_empty() && update.traits.len() <= MAX_TRAITS);
        for identifier in &update.identifiers {
            assert!(!identifier.kind().is_empty() && !identifier.value().is_empty());
            let _ = identifier.masked();
        }
    }
});
