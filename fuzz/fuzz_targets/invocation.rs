//! Any Lambda event, read as the Runtime API's answer is read (without the query map):
//! classified, an HTTP one read as far as a request is read (limits, payload), a Kinesis one
//! down to its records' events, without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use studio_router::edge::invocation::{Event, Invocation, Input};

fuzz_target!(|data: &[u8]| {
    let Ok(Event(event)) = serde_json::from_slice::<Event>(data) else {
        return;
    };
    match Invocation::decode(event, 64 * 1024) {
        Ok(Invocation::Http(request)) => {
            let _ = request.query_field_count();
            let _ = request.form_field_count();
            let _ = request.has_body();
            if let Ok(Input::Fields(fields)) = request.into_payload(64 * 1024) {
                let _ = studio_router::domain::identity::Identifier::from_fields(&fields, "phone");
            }
        }
        Ok(Invocation::Direct(Input::Fields(fields))) => {
            let _ = studio_router::domain::identity::Identifier::from_fields(&fields, "phone");
        }
        Ok(Invocation::Direct(Input::List(list))) => {
            let mut count = 0;
            list.for_each(|_| count += 1);
            assert_eq!(count, list.len());
        }
        Ok(Invocation::Direct(Input::Stream(batch))) => {
            // A Kinesis event: its records, each record's data read as the function reads it.
            if let Ok(records) = batch.records() {
                for record in records {
                    let Some(data) = record.data.as_deref() else { continue };
                    if let Ok(value) = studio_router::support::json_text::from_slice::<serde_json::Value>(data) {
                        let _ = studio_router::edge::taskrouter::decode(value);
                    }
                }
            }
        }
        _ => {}
    }
});
