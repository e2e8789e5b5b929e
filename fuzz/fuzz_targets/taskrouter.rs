//! Any TaskRouter callback, Event Streams delivery or direct JSON: read, mapped under both
//! schemas and encoded for Segment, without a panic; every message within Segment's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use studio_router::domain::engagement::{Mapped, Mapping, Schema};
use studio_router::domain::engagement::ReceivedEvent;
use studio_router::edge::taskrouter;
use studio_router::domain::timestamps::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Timestamp::parse_rfc3339(text);
    // JSON as Python reads it: never a panic, and the same value as serde_json's wherever
    // serde_json reads the text at all.
    let lenient = studio_router::support::json_text::from_str::<serde_json::Value>(text);
    if let Ok(strict) = serde_json::from_str::<serde_json::Value>(text) {
        assert_eq!(lenient.ok(), Some(strict));
    }
    let decoded: Vec<ReceivedEvent> = match serde_json::from_str::<Vec<Box<RawValue>>>(text) {
        Ok(items) => items
            .iter()
            .filter_map(|item| taskrouter::decode_raw(item).0.ok())
            .collect(),
        Err(_) => match serde_json::from_str(text) {
            Ok(value) => taskrouter::decode(value).0.into_iter().collect(),
            Err(_) => return,
        },
    };
    for event in decoded {
        let ReceivedEvent::Task(event) = event else { continue };
        for mapping in [Mapping::default(), Mapping::for_schema(Schema::Current)] {
            if let Ok(Mapped::Track(message)) = mapping.map(&event) {
                assert!(message.message_id.len() < 100);
                if let Ok(encoded) = message.encode() {
                    assert!(encoded.json.len() <= 32_000);
                }
            }
        }
    }
});
