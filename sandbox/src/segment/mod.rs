//! A Segment-compatible server: the HTTP Tracking API (what sources send) and the Profile
//! API (what route-decision and profile-lookup read), over the sandbox's store.

pub mod intake;
pub mod profile_api;
pub mod tracking_api;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::computed::Definitions;
use crate::store::{Store, StoreError};

/// What both APIs share.
pub struct Segment {
    pub store: Store,
    pub definitions: Definitions,
    /// The Profile API token (the user name of its Basic auth).
    pub token: String,
    pub space_id: String,
    /// The write keys the Tracking API keeps messages for; empty keeps any non-blank key.
    pub write_keys: Vec<String>,
}

/// One trait of a profile, as the Profile API answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trait {
    pub value: Value,
    pub updated_ms: i64,
    /// Computed from events, not set by an identify call.
    pub computed: bool,
}

/// Which traits to read: Segment's `class` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraitClass {
    All,
    Computed,
    /// Audiences: the sandbox defines none.
    Audience,
}

impl Segment {
    /// A profile's traits as of `now_ms`: identify's, then the computed ones (which win a
    /// clash), by key.
    pub fn traits(
        &self,
        profile: &str,
        class: TraitClass,
        now_ms: i64,
    ) -> Result<BTreeMap<String, Trait>, StoreError> {
        let mut all = BTreeMap::new();
        if class == TraitClass::All {
            for (key, value, updated_ms) in self.store.custom_traits(profile)? {
                let found = Trait {
                    value,
                    updated_ms,
                    computed: false,
                };
                all.insert(key, found);
            }
        }
        if class != TraitClass::Audience {
            let events = self.store.events(profile)?;
            for (key, value) in self.definitions.evaluate(&events, now_ms) {
                let found = Trait {
                    value,
                    updated_ms: now_ms,
                    computed: true,
                };
                all.insert(key, found);
            }
        }
        Ok(all)
    }
}

pub fn router(segment: Arc<Segment>) -> Router {
    tracking_api::router()
        .merge(profile_api::router())
        .with_state(segment)
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn rfc3339(ms: i64) -> String {
    let at = UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// The user name of HTTP Basic auth: the write key for the Tracking API, the token for the
/// Profile API (both send an empty password).
pub fn basic_user(headers: &HeaderMap) -> Option<String> {
    let encoded = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    decoded.split(':').next().map(str::to_owned)
}

/// The Profile API's error body: `{"error": {"code", "message"}}`.
pub fn profile_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}
