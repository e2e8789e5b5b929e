//! The HTTP Tracking API: track, identify, page, screen, group, alias and batch, with
//! Segment's auth, limits and answers (400 for invalid JSON or size, 200 otherwise, even
//! for a message that is then dropped), deduplicated by messageId.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{Segment, basic_user, now_ms};
use crate::store::Ingested;

pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
pub const MAX_REQUEST_BYTES: usize = 500 * 1024;
const CALLS: [&str; 6] = ["track", "identify", "page", "screen", "group", "alias"];

pub fn router() -> Router<Arc<Segment>> {
    Router::new()
        .route("/v1/batch", post(batch))
        .route("/v1/import", post(batch))
        .route("/v1/{call}", post(single))
        // Larger bodies get Segment's 400, not axum's 413.
        .layer(DefaultBodyLimit::max(4 * MAX_REQUEST_BYTES))
}

fn answer(status: StatusCode, message: Option<&str>) -> Response {
    match message {
        None => (status, Json(json!({"success": true}))).into_response(),
        Some(message) => {
            (status, Json(json!({"success": false, "message": message}))).into_response()
        }
    }
}

/// The write key from Basic auth or the body, if it is not blank.
fn write_key(headers: &HeaderMap, body: &Value) -> Option<String> {
    basic_user(headers)
        .or_else(|| {
            body.get("writeKey")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .filter(|k| !k.trim().is_empty())
}

/// The request's JSON and its write key, or the status and message Segment would answer.
fn parse(body: &Bytes, headers: &HeaderMap) -> Result<(Value, String), (StatusCode, &'static str)> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err((
            StatusCode::BAD_REQUEST,
            "Request body exceeds the 500 KB limit",
        ));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| (StatusCode::BAD_REQUEST, "Invalid JSON"))?;
    if !value.is_object() {
        return Err((StatusCode::BAD_REQUEST, "Invalid JSON"));
    }
    let Some(key) = write_key(headers, &value) else {
        return Err((StatusCode::UNAUTHORIZED, "Missing write key"));
    };
    Ok((value, key))
}

/// Whether messages sent with `key` are kept. Segment answers 200 to a wrong write key all
/// the same and drops the events (its edge is stateless: maintainers in analytics-node issue
/// 59 and analytics-ruby issue 136); with `--write-keys` set, so does the sandbox.
fn kept(segment: &Segment, key: &str, messages: usize) -> bool {
    if segment.write_keys.is_empty() || segment.write_keys.iter().any(|k| k == key) {
        return true;
    }
    tracing::warn!(
        write_key = %studio_router::telemetry::mask_other(key),
        messages,
        "dropped: not one of the sandbox's --write-keys (answered 200, as Segment answers a wrong key)"
    );
    false
}

async fn single(
    State(segment): State<Arc<Segment>>,
    Path(call): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(kind) = CALLS
        .iter()
        .find(|c| **c == call || c.starts_with(call.as_str()) && call.len() == 1)
    else {
        return answer(StatusCode::NOT_FOUND, Some("Unknown endpoint"));
    };
    let (mut message, key) = match parse(&body, &headers) {
        Ok(parsed) => parsed,
        Err((status, message)) => return answer(status, Some(message)),
    };
    if body.len() > MAX_MESSAGE_BYTES {
        return answer(
            StatusCode::BAD_REQUEST,
            Some("Message exceeds the 32 KB limit"),
        );
    }
    message["type"] = json!(kind);
    if kept(&segment, &key, 1) {
        accept(&segment, &message);
    }
    answer(StatusCode::OK, None)
}

async fn batch(State(segment): State<Arc<Segment>>, headers: HeaderMap, body: Bytes) -> Response {
    let (request, key) = match parse(&body, &headers) {
        Ok(parsed) => parsed,
        Err((status, message)) => return answer(status, Some(message)),
    };
    let Some(messages) = request.get("batch").and_then(Value::as_array) else {
        return answer(
            StatusCode::BAD_REQUEST,
            Some("batch must be a list of messages"),
        );
    };
    if messages
        .iter()
        .any(|m| serde_json::to_vec(m).map_or(true, |b| b.len() > MAX_MESSAGE_BYTES))
    {
        return answer(
            StatusCode::BAD_REQUEST,
            Some("A message exceeds the 32 KB limit"),
        );
    }
    if !kept(&segment, &key, messages.len()) {
        return answer(StatusCode::OK, None);
    }
    let shared_context = request.get("context").cloned();
    for message in messages {
        let mut message = message.clone();
        if let (Some(Value::Object(shared)), Some(object)) =
            (&shared_context, message.as_object_mut())
        {
            let context = object.entry("context").or_insert_with(|| json!({}));
            if let Some(context) = context.as_object_mut() {
                for (key, value) in shared {
                    context.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
        }
        accept(&segment, &message);
    }
    answer(StatusCode::OK, None)
}

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
