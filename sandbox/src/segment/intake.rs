//! What happens to a message the Tracking API received: checked as Segment checks it,
//! resolved to a profile by its identifiers, and stored once (by messageId).

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::{Segment, now_ms};
use crate::identities::identifiers;
use crate::store::Ingested;

/// The Tracking API's calls.
pub const CALLS: [&str; 6] = ["track", "identify", "page", "screen", "group", "alias"];

/// Stores one message; an invalid one is dropped with a log line (Segment answers 200 anyway).
pub fn accept(segment: &Segment, message: &Value) {
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !CALLS.contains(&kind) {
        tracing::warn!(kind, "message dropped: unknown type");
        return;
    }
    if kind == "track"
        && message
            .get("event")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        tracing::warn!("track message dropped: no event name");
        return;
    }
    let (identifiers, links) = identifiers(message);
    if !identifiers
        .iter()
        .any(|(k, _)| k == "user_id" || k == "anonymous_id")
    {
        tracing::warn!(kind, "message dropped: it needs a userId or an anonymousId");
        return;
    }
    let received = now_ms();
    let timestamp = ["timestamp", "originalTimestamp"]
        .iter()
        .find_map(|field| message.get(*field).and_then(Value::as_str))
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(received, |d| d.as_millis() as i64);
    let message_id = message
        .get("messageId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map_or_else(generated_message_id, str::to_owned);
    match segment.store.ingest(
        &message_id,
        message,
        &identifiers,
        &links,
        timestamp,
        received,
    ) {
        Ok(Ingested::Stored { profile }) => {
            tracing::debug!(kind, profile = %profile, "message stored")
        }
        Ok(Ingested::Duplicate) => {
            tracing::debug!(message_id = %message_id, "duplicate message ignored")
        }
        Ok(Ingested::NoIdentity) => tracing::warn!(kind, "message dropped: no identifier"),
        Err(error) => tracing::error!(%error, "message could not be stored"),
    }
}

/// Without a messageId Segment assigns a fresh one (so a retry counts twice); so do we.
fn generated_message_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "sandbox-{}-{}",
        now_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
