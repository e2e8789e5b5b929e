//! The Segment-compatible server's Profile API, over seeded demo customers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

#[derive(Clone)]
struct Server {
    token: Arc<str>,
    space_id: Arc<str>,
    profiles: Arc<HashMap<String, Value>>,
}

/// Demo customers that exercise every branch of the default rules and the README's examples.
fn demo_profiles() -> HashMap<String, Value> {
    HashMap::from([
        (
            "phone:+15555550100".into(),
            json!({"first_name": "Dana", "docs_last_2_days": 4}),
        ),
        (
            "phone:+15555550101".into(),
            json!({"first_name": "Nico", "docs_last_2_days": 0}),
        ),
        (
            "phone:+15555550102".into(),
            json!({"first_name": "Vera", "vip": true, "lifetime_value": 12500, "docs_last_2_days": 0}),
        ),
        (
            "phone:+15555550103".into(),
            json!({"first_name": "Remy", "total_inbounds": 6, "last_known_service_agent": "WK00000000000000000000000000000001", "docs_last_2_days": 0}),
        ),
    ])
}

pub fn router(token: &str, space_id: &str) -> Router {
    let server = Server {
        token: token.into(),
        space_id: space_id.into(),
        profiles: Arc::new(demo_profiles()),
    };
    Router::new()
        .route(
            "/v1/spaces/{space}/collections/users/profiles/{identifier}/traits",
            get(traits),
        )
        .with_state(server)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn authorised(server: &Server, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    decoded.is_some_and(|pair| {
        pair.split_once(':')
            .is_some_and(|(user, _)| user == &*server.token)
    })
}

async fn traits(
    State(server): State<Server>,
    Path((space, identifier)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&server, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "Authentication failed",
        );
    }
    if space != *server.space_id {
        return error(StatusCode::NOT_FOUND, "not_found", "Space was not found.");
    }
    match server.profiles.get(&identifier) {
        Some(traits) => axum::Json(
            json!({"traits": traits, "cursor": {"url": "", "has_more": false, "next": ""}}),
        )
        .into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "Profile was not found."),
    }
}
