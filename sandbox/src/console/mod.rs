//! The console: a web page on the Function URLs' port (`http://127.0.0.1:9000/`) that
//! shows the customers, their timelines, the decisions as they happen and the rules, and a
//! JSON API under `/api/` that the page reads. Plain HTML, CSS and JavaScript compiled into
//! the binary: no build step, nothing fetched from anywhere else.

pub mod customers;
pub mod outcomes;
pub mod privacy;
pub mod try_it;
pub mod workbench;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::decisions::{DecisionLog, Recorded};
use crate::editable_rules::EditableRules;
use crate::guard::{self, Origin};
use crate::lambda_urls::Functions;
use crate::segment::{Segment, now_ms, rfc3339};
use privacy::shown;

const PAGE: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");

/// What the console's handlers share.
#[derive(Clone)]
pub struct Console {
    pub segment: Arc<Segment>,
    pub rules: Arc<EditableRules>,
    pub decisions: Arc<DecisionLog>,
    pub functions: Functions,
    /// How long after a bot answer an engagement with an agent counts as an escalation.
    pub escalation_window_secs: i64,
    /// Whether a shadow rule set is judged beside the rules (`SHADOW_ROUTING_RULES`).
    pub shadowing: bool,
}

/// The page and its API; served behind [`guard::guarded`], like everything on this port.
pub fn router(console: Console) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(PAGE, "text/html; charset=utf-8") }),
        )
        .route(
            "/console.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/api/customers", get(customer_list))
        .route("/api/customers/{profile}", get(customer))
        .route("/api/decisions", get(decisions))
        .route("/api/outcomes", get(outcomes::outcomes))
        .route("/api/rules", get(workbench::active))
        .route("/api/rules/check", post(workbench::check))
        .route("/api/rules/dry-run", post(workbench::dry_run))
        .route("/api/rules/apply", post(workbench::apply))
        .route("/api/try/message", post(try_it::message))
        .route("/api/try/page-view", post(try_it::page_view))
        .route("/api/try/wrap-up", post(try_it::wrap_up))
        .layer(middleware::from_fn(own_page_only))
        .with_state(console)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            // The page runs only its own script and talks only to this server.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

/// Changes come only from the console's own page. The guard in front of this port
/// (`crate::guard`) already refuses a rebound Host and any page not served from loopback;
/// on top of that a change must be JSON (a form or text/plain post from any page needs no
/// preflight; a JSON one does, and this server grants none) and, when the browser names
/// its origin, come from this very origin: a page on another loopback port (a dev server,
/// a tool's UI) may post to the Function URLs but not drive the console.
async fn own_page_only(request: Request, next: Next) -> Response {
    if request.method() == Method::GET {
        return next.run(request).await;
    }
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !json {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send JSON (content-type: application/json)",
        );
    }
    let own = match guard::origin(&request) {
        None => true,
        Some(Origin::Loopback(origin)) => {
            guard::host(&request).is_some_and(|host| origin.strip_prefix("http://") == Some(host))
        }
        Some(Origin::Foreign) => false,
    };
    if !own {
        return refuse(
            StatusCode::FORBIDDEN,
            "changes are accepted only from the console's own page",
        );
    }
    next.run(request).await
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"ok": false, "error": {"message": message}})),
    )
        .into_response()
}

pub fn internal(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "console request failed");
    refuse(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())
}

type Params = BTreeMap<String, String>;

fn reveal(params: &Params) -> bool {
    params.get("reveal").is_some_and(|v| v == "true")
}

async fn customer_list(State(console): State<Console>, Query(params): Query<Params>) -> Response {
    let rules = console.rules.live().current();
    let now = now_ms();
    let profiles = match console.segment.store.profiles() {
        Ok(profiles) => profiles,
        Err(error) => return internal(&error),
    };
    let mut list = Vec::with_capacity(profiles.len());
    for profile in &profiles {
        match customers::summary(&console.segment, &rules, profile, now, reveal(&params)) {
            Ok(summary) => list.push(summary),
            Err(error) => return internal(&error),
        }
    }
    Json(json!({
        "customers": list,
        "rules": rules.rule_names().collect::<Vec<_>>(),
        "transitions": rules.transitions().collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn customer(
    State(console): State<Console>,
    Path(profile): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let rules = console.rules.live().current();
    match customers::detail(
        &console.segment,
        &rules,
        &profile,
        now_ms(),
        reveal(&params),
    ) {
        Ok(Some(page)) => Json(page).into_response(),
        Ok(None) => refuse(StatusCode::NOT_FOUND, &format!("no profile {profile}")),
        Err(error) => internal(&error),
    }
}

/// The decisions after `after` (a `seq`), oldest first.
async fn decisions(State(console): State<Console>, Query(params): Query<Params>) -> Response {
    let after = params
        .get("after")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let reveal = reveal(&params);
    let mut names: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut list = Vec::new();
    for decision in console.decisions.after(after) {
        let name = match &decision.profile {
            Some(profile) => names
                .entry(profile.clone())
                .or_insert_with(|| name_of_profile(&console.segment, profile))
                .clone(),
            None => None,
        };
        list.push(decision_json(&decision, name, reveal));
    }
    Json(json!({"started_ms": console.decisions.started_ms, "decisions": list})).into_response()
}

/// The name a customer gave in an identify call, if any.
fn name_of_profile(segment: &Segment, profile: &str) -> Option<String> {
    let traits = segment.store.custom_traits(profile).ok()?;
    let traits = traits
        .into_iter()
        .map(|(key, value, _)| (key, value))
        .collect();
    customers::name_of(&traits)
}

fn decision_json(decision: &Recorded, name: Option<String>, reveal: bool) -> Value {
    json!({
        "name": name,
        "seq": decision.seq,
        "at": rfc3339(decision.at_ms),
        "customer": decision.customer.as_ref().map(|(kind, value)| format!("{kind}:{}", shown(value, reveal))),
        "profile": decision.profile,
        "status": decision.status,
        "transition": decision.transition,
        "rule": decision.rule,
        "fallback": decision.fallback,
        "profile_found": decision.profile_found,
        "traits_from": decision.traits_from,
        "attributes": privacy::masked(&Value::Object(decision.attributes.clone()), reveal),
        "error": decision.error,
        "latency_ms": decision.latency_us as f64 / 1000.0,
    })
}
