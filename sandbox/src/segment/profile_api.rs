//! The Profile API: traits, external_ids, events and metadata of a profile, with Segment's
//! token auth, parameters, cursors and error bodies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::{Segment, Trait, TraitClass, basic_user, now_ms, profile_error, rfc3339};

const SOURCE_ID: &str = "sandbox";
/// Segment's events route covers the last 14 days.
const EVENTS_HORIZON_MS: i64 = 14 * 24 * 3_600_000;

pub fn router() -> Router<Arc<Segment>> {
    Router::new().route(
        "/v1/spaces/{space}/collections/users/profiles/{identifier}/{resource}",
        get(profile),
    )
}

type Params = BTreeMap<String, String>;

async fn profile(
    State(segment): State<Arc<Segment>>,
    Path((space, identifier, resource)): Path<(String, String, String)>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&segment, &headers) {
        return profile_error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "The access token is invalid or missing.",
        );
    }
    if space != segment.space_id {
        return profile_error(StatusCode::NOT_FOUND, "not_found", "Space was not found.");
    }
    let Some((kind, value)) = identifier
        .split_once(':')
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
    else {
        return profile_error(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "The identifier must look like type:value.",
        );
    };
    let value = if kind == "email" {
        value.to_lowercase()
    } else {
        value.to_owned()
    };
    let profile = match segment.store.resolve(kind, &value) {
        Ok(Some(profile)) => profile,
        Ok(None) => {
            return profile_error(StatusCode::NOT_FOUND, "not_found", "Profile was not found.");
        }
        Err(error) => return internal(&error).into_response(),
    };
    let base = format!("/v1/spaces/{space}/collections/users/profiles/{identifier}/{resource}");
    let result = match resource.as_str() {
        "traits" => traits(&segment, &profile, &params, &base),
        "external_ids" => external_ids(&segment, &profile, &params, &base),
        "events" => events(&segment, &profile, &params, &base),
        "metadata" => metadata(&segment, &profile),
        _ => {
            return profile_error(
                StatusCode::NOT_FOUND,
                "not_found",
                "Resource was not found.",
            );
        }
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn authorised(segment: &Segment, headers: &HeaderMap) -> bool {
    basic_user(headers).is_some_and(|user| user == segment.token)
}

/// A Profile API error answer.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        profile_error(self.status, self.code, &self.message)
    }
}

fn internal(error: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(%error, "Profile API request failed");
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal_error",
        message: "The request could not be completed.".into(),
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "validation_error",
        message: message.into(),
    }
}

/// `limit` within 1..=max, `default` when absent.
fn limit(params: &Params, default: usize, max: usize) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(default),
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(invalid(&format!("limit must be a number from 1 to {max}"))),
        },
    }
}

fn cursor(base: &str, has_more: bool, next: &str) -> Value {
    json!({"url": base, "has_more": has_more, "next": if has_more { next } else { "" }})
}

fn traits(
    segment: &Segment,
    profile: &str,
    params: &Params,
    base: &str,
) -> Result<Response, ApiError> {
    // Segment answers only 10 traits unless a limit says otherwise.
    let limit = limit(params, 10, 200)?;
    let class = match params.get("class").map(String::as_str) {
        None | Some("") => TraitClass::All,
        Some("computed_trait") => TraitClass::Computed,
        Some("audience") => TraitClass::Audience,
        Some(_) => return Err(invalid("class must be audience or computed_trait")),
    };
    let include: Option<BTreeSet<&str>> = params.get("include").map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect()
    });
    let verbose = params.get("verbose").is_some_and(|v| v == "true");
    let all = segment
        .traits(profile, class, now_ms())
        .map_err(|e| internal(&e))?;
    let after = params.get("next").map(String::as_str).unwrap_or_default();
    let selected: Vec<(String, Trait)> = all
        .into_iter()
        .filter(|(key, _)| {
            include
                .as_ref()
                .is_none_or(|keys| keys.contains(key.as_str()))
        })
        .filter(|(key, _)| after.is_empty() || key.as_str() > after)
        .collect();
    let has_more = selected.len() > limit;
    let page = &selected[..selected.len().min(limit)];
    let mut out = Map::new();
    for (key, found) in page {
        let value = if verbose {
            json!({"value": found.value, "source_id": SOURCE_ID, "updated_at": rfc3339(found.updated_ms)})
        } else {
            found.value.clone()
        };
        out.insert(key.clone(), value);
    }
    let next = page.last().map(|(k, _)| k.as_str()).unwrap_or_default();
    Ok(Json(json!({"traits": out, "cursor": cursor(base, has_more, next)})).into_response())
}

/// Offset-based pages for lists.
fn page<T: Clone>(
    items: &[T],
    params: &Params,
    default: usize,
    max: usize,
) -> Result<(Vec<T>, bool, String), ApiError> {
    let limit = limit(params, default, max)?;
    let offset = params
        .get("next")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(items.len());
    let end = (offset + limit).min(items.len());
    Ok((
        items[offset..end].to_vec(),
        end < items.len(),
        end.to_string(),
    ))
}

fn external_ids(
    segment: &Segment,
    profile: &str,
    params: &Params,
    base: &str,
) -> Result<Response, ApiError> {
    let identities = segment
        .store
        .identities(profile)
        .map_err(|e| internal(&e))?;
    let (items, has_more, next) = page(&identities, params, 25, 100)?;
    let data: Vec<Value> = items
        .iter()
        .map(|identity| {
            json!({
                "source_id": SOURCE_ID, "collection": "users", "id": identity.value, "type": identity.kind,
                "created_at": rfc3339(identity.created_at_ms), "encoding": "none", "first_message_id": identity.first_message_id
            })
        })
        .collect();
    Ok(Json(json!({"data": data, "cursor": cursor(base, has_more, &next)})).into_response())
}

fn events(
    segment: &Segment,
    profile: &str,
    params: &Params,
    base: &str,
) -> Result<Response, ApiError> {
    let time = |name: &str| -> Result<Option<i64>, ApiError> {
        match params.get(name) {
            None => Ok(None),
            Some(raw) => humantime::parse_rfc3339_weak(raw)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| Some(d.as_millis() as i64))
                .ok_or_else(|| invalid(&format!("{name} must be an ISO-8601 time"))),
        }
    };
    let start = time("start")?.unwrap_or(now_ms() - EVENTS_HORIZON_MS);
    let end = time("end")?.unwrap_or(i64::MAX);
    let names = |name: &str| -> Option<BTreeSet<String>> {
        params
            .get(name)
            .map(|l| l.split(',').map(|s| s.trim().to_owned()).collect())
    };
    let (include, exclude) = (names("include"), names("exclude"));
    let mut events: Vec<_> = segment
        .store
        .events(profile)
        .map_err(|e| internal(&e))?
        .into_iter()
        .filter(|e| e.timestamp_ms >= start && e.timestamp_ms <= end)
        .filter(|e| {
            let name = e.event.clone().unwrap_or_default();
            include.as_ref().is_none_or(|set| set.contains(&name))
                && exclude.as_ref().is_none_or(|set| !set.contains(&name))
        })
        .collect();
    match params.get("sort").map(String::as_str) {
        None | Some("desc") => events.reverse(),
        Some("asc") => {}
        Some(_) => return Err(invalid("sort must be asc or desc")),
    }
    let (items, has_more, next) = page(&events, params, 10, 100)?;
    let data: Vec<Value> = items
        .iter()
        .map(|e| {
            json!({
                "external_ids": e.message.pointer("/context/externalIds").cloned().unwrap_or_else(|| json!([])),
                "context": e.message.get("context").cloned().unwrap_or_else(|| json!({})),
                "type": e.kind, "message_id": e.message_id, "source_id": SOURCE_ID,
                "timestamp": rfc3339(e.timestamp_ms),
                "properties": e.message.get("properties").cloned().unwrap_or_else(|| json!({})),
                "event": e.event, "related": {"users": null}
            })
        })
        .collect();
    Ok(Json(json!({"data": data, "cursor": cursor(base, has_more, &next)})).into_response())
}

fn metadata(segment: &Segment, profile: &str) -> Result<Response, ApiError> {
    let Some(meta) = segment
        .store
        .profile_meta(profile)
        .map_err(|e| internal(&e))?
    else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: "Profile was not found.".into(),
        });
    };
    Ok(Json(json!({"metadata": {
        "created_at": rfc3339(meta.created_at_ms), "updated_at": rfc3339(meta.updated_at_ms), "expires_at": null,
        "first_message_id": meta.first_message_id, "first_source_id": SOURCE_ID,
        "last_message_id": meta.last_message_id, "last_source_id": SOURCE_ID
    }}))
    .into_response())
}
