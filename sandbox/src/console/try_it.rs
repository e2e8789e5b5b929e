//! Try it: a test message as a customer (a decision through route-decision's Function URL
//! handler), a page view (through the Tracking API's intake), or a Flex wrap-up (the two
//! TaskRouter events, through wrap-up-ingest's Function URL handler, which sends to the
//! Segment server over HTTP as it would to Segment).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::privacy::masked;
use super::{Console, internal};
use crate::lambda_urls::payload_v2;
use crate::segment::{intake, now_ms, rfc3339};

/// Who the test is for: a customer in the list, or a phone number (a new customer).
#[derive(Deserialize)]
pub struct Who {
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    reveal: bool,
}

#[derive(Deserialize)]
pub struct Message {
    #[serde(flatten)]
    who: Who,
    /// `sms` (default), `whatsapp` or `voice`.
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    explain: bool,
}

#[derive(Deserialize)]
pub struct PageView {
    #[serde(flatten)]
    who: Who,
    path: String,
}

#[derive(Deserialize)]
pub struct WrapUp {
    #[serde(flatten)]
    who: Who,
    /// `voice` (default), `sms`, `whatsapp` or `web`.
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    sentiment: Option<String>,
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"ok": false, "error": {"message": message}})),
    )
        .into_response()
}

/// Why a test cannot be sent.
enum Unsendable {
    Request(String),
    Store(crate::store::StoreError),
}

impl IntoResponse for Unsendable {
    fn into_response(self) -> Response {
        match self {
            Self::Request(message) => bad_request(&message),
            Self::Store(error) => internal(&error),
        }
    }
}

/// The phone number the test is sent as.
/// The profile the phone number resolves to now, if any.
fn profile_of(console: &Console, phone: &str) -> Option<String> {
    console.segment.store.resolve("phone", phone).ok().flatten()
}

/// The phone number [`phone_of`] finds, and the channel asked for (else `default`).
fn phone_on<'a>(
    console: &Console,
    who: &Who,
    channel: &'a Option<String>,
    default: &'a str,
) -> Result<(String, &'a str), Unsendable> {
    let phone = phone_of(console, who)?;
    Ok((phone, channel.as_deref().unwrap_or(default)))
}

fn phone_of(console: &Console, who: &Who) -> Result<String, Unsendable> {
    if let Some(phone) = who
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        return studio_router::domain::identity::normalise_phone(phone).ok_or_else(|| {
            Unsendable::Request(
                "phone must be in international format (E.164, e.g. +15555550100)".into(),
            )
        });
    }
    let Some(profile) = who.profile.as_deref() else {
        return Err(Unsendable::Request(
            "name a profile or a phone number".into(),
        ));
    };
    let identities = console
        .segment
        .store
        .identities(profile)
        .map_err(Unsendable::Store)?;
    identities
        .into_iter()
        .find(|identity| identity.kind == "phone")
        .map(|identity| identity.value)
        .ok_or_else(|| Unsendable::Request(format!("{profile} has no phone identifier")))
}

/// Invokes `function` with a form post, as its Function URL handler does.
async fn post_form(console: &Console, function: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let event = payload_v2(&Method::POST, "/", "", &headers, body.as_bytes());
    let answer = console
        .functions
        .invoke(function, event)
        .await
        .unwrap_or_default();
    let (status, body) = studio_router::edge::invocation::status_and_body(&answer);
    (u16::try_from(status).unwrap_or(500), body)
}

pub async fn message(State(console): State<Console>, Json(request): Json<Message>) -> Response {
    let (phone, channel) = match phone_on(&console, &request.who, &request.channel, "sms") {
        Ok(found) => found,
        Err(unsendable) => return unsendable.into_response(),
    };
    let from = match channel {
        "sms" | "voice" => phone.clone(),
        "whatsapp" => format!("whatsapp:{phone}"),
        other => return bad_request(&format!("channel {other} is not sms, whatsapp or voice")),
    };
    let mut fields = vec![("From", from.as_str())];
    if channel == "voice" {
        // What tells a call's trigger from a message's.
        fields.push(("CallSid", "CA0000000000000000000000000000c0de"));
    }
    if request.explain {
        fields.push(("explain", "true"));
    }
    let (status, answer) = post_form(&console, "route-decision", &fields).await;
    Json(json!({"status": status, "answer": masked(&answer, request.who.reveal)})).into_response()
}

pub async fn page_view(State(console): State<Console>, Json(request): Json<PageView>) -> Response {
    let phone = match phone_of(&console, &request.who) {
        Ok(phone) => phone,
        Err(unsendable) => return unsendable.into_response(),
    };
    let path = request.path.trim();
    if !path.starts_with('/') {
        return bad_request("path must start with /, e.g. /docs/flex");
    }
    let anonymous = request
        .who
        .profile
        .as_deref()
        .and_then(|profile| console.segment.store.identities(profile).ok())
        .and_then(|ids| ids.into_iter().find(|i| i.kind == "anonymous_id"))
        .map_or_else(
            // Not the phone number: an anonymous id is shown unmasked.
            || format!("console-visitor-{}", next_id()),
            |i| i.value,
        );
    let message = json!({
        "type": "page", "messageId": format!("console-page-{}", next_id()), "anonymousId": anonymous,
        "name": "Docs", "timestamp": rfc3339(now_ms()),
        "properties": {"path": path, "url": format!("https://www.example.com{path}")},
        "context": {"traits": {"phone": phone}},
    });
    intake::accept(&console.segment, &message);
    let profile = profile_of(&console, &phone);
    Json(json!({"ok": true, "profile": profile})).into_response()
}

pub async fn wrap_up(State(console): State<Console>, Json(request): Json<WrapUp>) -> Response {
    let (phone, channel) = match phone_on(&console, &request.who, &request.channel, "voice") {
        Ok(found) => found,
        Err(unsendable) => return unsendable.into_response(),
    };
    let task_channel = match channel {
        "voice" => "voice",
        "sms" | "whatsapp" | "web" => "chat",
        other => {
            return bad_request(&format!(
                "channel {other} is not voice, sms, whatsapp or web"
            ));
        }
    };
    let task = format!("WT{:032x}", u128::from(next_id()) << 64 | now_ms() as u128);
    let mut attributes = json!({"from": phone, "direction": "inbound", "channelType": channel});
    let wrapped = attributes.to_string();
    if let Some(topic) = request.topic.as_deref().filter(|t| !t.trim().is_empty()) {
        attributes["topic"] = json!(topic.trim());
    }
    if let Some(sentiment) = request
        .sentiment
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        attributes["sentiment"] = json!(sentiment.trim());
    }
    let completed = attributes.to_string();
    let common = [
        ("TaskSid", task.as_str()),
        ("TaskChannelUniqueName", task_channel),
        ("TaskAge", "300"),
    ];
    let mut wrap_up = vec![
        ("EventType", "reservation.wrapup"),
        ("WorkerSid", "WK0000000000000000000000000000c0de"),
        ("TaskAttributes", wrapped.as_str()),
    ];
    wrap_up.extend(common);
    let mut complete = vec![
        ("EventType", "task.completed"),
        ("TaskAttributes", completed.as_str()),
    ];
    complete.extend(common);
    let mut answers = Vec::new();
    for fields in [wrap_up, complete] {
        let (status, body) = post_form(&console, "wrap-up-ingest", &fields).await;
        let answer = masked(&body, request.who.reveal);
        answers.push(json!({"event": fields[0].1, "status": status, "answer": answer}));
    }
    let ok = answers.iter().all(|a| {
        a["status"]
            .as_u64()
            .is_some_and(|s| (200..300).contains(&s))
    });
    let profile = profile_of(&console, &phone);
    Json(json!({"ok": ok, "task_sid": task, "profile": profile, "posts": answers})).into_response()
}

/// A number for test ids, unique within this process.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
