//! Each function's entry point: its request read from the edge's input, its operation called,
//! its answer shaped for its caller, and `load`, which builds the operation from its
//! configuration (the Lambda binaries and the local stack call the same `load`).

pub mod profile_lookup;
pub mod route_decision;
pub mod trait_sync;
pub mod wrap_up_ingest;

use crate::edge::Failure;
use serde_json::Value;

use crate::edge::fields::Fields;
use crate::edge::invocation::Input;

/// A Studio request's fields (a form, a query string or a JSON object); anything else is
/// the caller's mistake.
fn studio_fields(input: Input) -> Result<Fields, Failure> {
    input
        .into_fields()
        .map_err(|e| Failure::bad_request("invalid_body", e))
}

/// Studio parses at most 64 kB of response; stay under it with room for the envelope.
pub const STUDIO_BODY_LIMIT: usize = 64_000;

/// Drops the largest traits until the body fits `limit` bytes, marking it with `flag`.
/// Largest first keeps the most traits; the key order breaks ties so answers are stable.
fn fit_within(body: &mut Value, limit: usize, flag: &str) -> bool {
    let size = |value: &Value| serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
    let mut total = size(body);
    if total <= limit {
        return false;
    }
    body[flag] = Value::Bool(true);
    total += format!(",\"{flag}\":true").len();
    let Some(traits) = body.get_mut("traits").and_then(Value::as_object_mut) else {
        return true;
    };
    // An entry costs its quoted key, a colon, its value and a comma.
    let mut by_size: Vec<(usize, String)> = traits
        .iter()
        .map(|(key, value)| {
            (
                size(&Value::String(key.clone())) + 1 + size(value) + 1,
                key.clone(),
            )
        })
        .collect();
    by_size.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    // Only the last entry has no comma, so `total` may overstate the size by one byte: stop
    // strictly below the limit.
    for (entry_size, key) in by_size {
        if total < limit {
            break;
        }
        traits.remove(&key);
        total = total.saturating_sub(entry_size);
    }
    true
}
