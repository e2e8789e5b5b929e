//! The rules workbench: the active rules, a candidate checked by the same compiler as
//! `route-decision --check-rules`, a dry run of it over every customer, and apply.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use studio_router::domain::rules::{RuleSet, RulesError};

use super::customers::{name_of, traits_of, verdict, verdict_json};
use super::{Console, internal};
use crate::segment::now_ms;

#[derive(Deserialize)]
pub struct Candidate {
    /// The rules document, as it would be saved.
    text: String,
    /// Apply only: also write it to the rules file.
    #[serde(default)]
    save: bool,
    #[serde(default)]
    reveal: bool,
}

pub async fn active(State(console): State<Console>) -> Response {
    let rules = console.rules.live().current();
    Json(json!({
        "source": console.rules.source(),
        "file": console.rules.file().map(|p| p.display().to_string()),
        "text": console.rules.text(),
        "rules": rules.rule_names().collect::<Vec<_>>(),
        "transitions": rules.transitions().collect::<Vec<_>>(),
    }))
    .into_response()
}

pub async fn check(Json(candidate): Json<Candidate>) -> Response {
    match RuleSet::compile(&candidate.text) {
        Ok(rules) => Json(compiled(&rules)).into_response(),
        Err(error) => refused(&error),
    }
}

pub async fn dry_run(State(console): State<Console>, Json(candidate): Json<Candidate>) -> Response {
    let after = match RuleSet::compile(&candidate.text) {
        Ok(rules) => rules,
        Err(error) => return refused(&error),
    };
    let before = console.rules.live().current();
    let now = now_ms();
    let profiles = match console.segment.store.profiles() {
        Ok(profiles) => profiles,
        Err(error) => return internal(&error),
    };
    let mut customers = Vec::new();
    let mut moves: BTreeMap<String, usize> = BTreeMap::new();
    for profile in profiles {
        let traits = match traits_of(&console.segment, &profile, now) {
            Ok(traits) => traits,
            Err(error) => return internal(&error),
        };
        let (was, will) = (verdict(&before, &traits), verdict(&after, &traits));
        let moved = was.transition != will.transition;
        if moved {
            *moves
                .entry(format!("{} → {}", was.transition, will.transition))
                .or_default() += 1;
        }
        customers.push(json!({
            "profile": profile,
            "name": name_of(&traits),
            "before": verdict_json(&was, candidate.reveal),
            "after": verdict_json(&will, candidate.reveal),
            "moved": moved,
            "rule_changed": was.rule != will.rule,
        }));
    }
    let mut out = compiled(&after);
    out["customers"] = Value::Array(customers);
    out["moves"] = json!(moves);
    Json(out).into_response()
}

pub async fn apply(State(console): State<Console>, Json(candidate): Json<Candidate>) -> Response {
    // Checked before anything changes: a save that cannot happen applies nothing either.
    if candidate.save && console.rules.file().is_none() {
        let message =
            "the rules came from ROUTING_RULES, not a file, so there is no file to save to";
        return (
            StatusCode::CONFLICT,
            Json(json!({"ok": false, "error": {"message": message}})),
        )
            .into_response();
    }
    let rules = match console.rules.apply(&candidate.text) {
        Ok(rules) => rules,
        Err(error) => return refused(&error),
    };
    let names: Vec<&str> = rules.rule_names().collect();
    tracing::info!(rules = %names.join(", "), saved = candidate.save, "rules applied from the console; the next decision uses them");
    let mut out = compiled(&rules);
    out["saved"] = Value::Null;
    if candidate.save {
        match console.rules.save(&candidate.text) {
            Ok(path) => out["saved"] = json!(path.display().to_string()),
            Err(error) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"ok": false, "applied": true, "error": {"message": error.to_string()}})),
                )
                    .into_response();
            }
        }
    }
    Json(out).into_response()
}

fn compiled(rules: &RuleSet) -> Value {
    json!({
        "ok": true,
        "rules": rules.rule_names().collect::<Vec<_>>(),
        "transitions": rules.transitions().collect::<Vec<_>>(),
        "traits_requested": rules.referenced_traits().map(|keys| keys.iter().collect::<Vec<_>>()),
    })
}

/// 422 with the compiler's message and where it points.
fn refused(error: &RulesError) -> Response {
    let place = error.place();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"ok": false, "error": {
            "message": error.to_string(),
            "rule": place.rule,
            "what": place.what,
            "line": place.line,
            "column": place.column,
        }})),
    )
        .into_response()
}
