//! The HTTP Tracking API: track, identify, page, screen, group, alias and batch, with
//! Segment's auth, limits and answers (400 for invalid JSON or size, 200 otherwise, even
//! for a message that is then dropped), deduplicated by messageId.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::intake::{CALLS, accept};
use super::{Segment, basic_user};

pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
pub const MAX_REQUEST_BYTES: usize = 500 * 1024;

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
        write_key = %studio_router::support::telemetry::mask_other(key),
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
