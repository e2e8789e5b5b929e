//! Demo customers, seeded on first start through the same path as any message, so every
//! computed trait is derived exactly as for real traffic.

use serde_json::{Value, json};
use studio_router::domain::engagement::{Moment, Schema};
use studio_router::domain::track_message::{ExternalId, MessageContext, TrackKind, TrackMessage};

use crate::segment::{Segment, intake, now_ms, rfc3339};

pub const DOCS_READER: &str = "+15555550100";
pub const NEWCOMER: &str = "+15555550101";
pub const VIP: &str = "+15555550102";
pub const RETURNING: &str = "+15555550103";
pub const RETURNING_AGENT: &str = "WK00000000000000000000000000000001";

const HOUR_MS: i64 = 3_600_000;

fn identify(id: &str, phone: &str, traits: Value) -> Value {
    let mut traits = traits;
    traits["phone"] = json!(phone);
    json!({"type": "identify", "messageId": format!("demo-identify-{id}"), "anonymousId": format!("demo-{id}"), "traits": traits})
}

fn page(id: &str, message_id: String, path: &str, at_ms: i64) -> Value {
    json!({
        "type": "page", "messageId": message_id, "anonymousId": format!("demo-{id}"), "name": "Docs",
        "properties": {"path": path, "url": format!("https://www.example.com{path}"), "title": "Docs"},
        "timestamp": rfc3339(at_ms)
    })
}

/// A wrap-up of one of the returning customer's calls, as wrap-up-ingest sends it.
fn engagement(phone: &str, n: usize, channel: &str, at_ms: i64) -> Value {
    let properties = json!({"direction": "Inbound", "channelType": channel, "lastKnownAgentWorkerSid": RETURNING_AGENT,
                            "duration": 240 + n * 60, "taskSid": format!("WTdemo{n:028}")});
    track(
        Schema::Seed.event_name(Moment::WrapUp),
        format!("demo-engagement-{n}"),
        at_ms,
        properties,
        MessageContext {
            traits: json!({"phone": phone}).as_object().cloned(),
            external_ids: vec![ExternalId::user("phone", phone)],
        },
    )
}

/// A completion of one of the returning customer's calls, as wrap-up-ingest sends it.
fn wrap_up(n: usize, topic: &str, sentiment: &str, at_ms: i64) -> Value {
    let properties =
        json!({"topic": topic, "sentiment": sentiment, "taskSid": format!("WTdemo{n:028}")});
    track(
        Schema::Seed.event_name(Moment::Completed),
        format!("demo-wrapup-{n}"),
        at_ms,
        properties,
        MessageContext::default(),
    )
}

/// The returning customer's track message, in the shape wrap-up-ingest's messages have.
fn track(
    event: &str,
    message_id: String,
    at_ms: i64,
    properties: Value,
    context: MessageContext,
) -> Value {
    let message = TrackMessage {
        kind: TrackKind::Track,
        event: event.to_owned(),
        user_id: None,
        anonymous_id: Some("demo-remy".into()),
        message_id,
        timestamp: Some(rfc3339(at_ms)),
        properties: properties.as_object().cloned().unwrap_or_default(),
        context,
    };
    serde_json::to_value(message).unwrap_or_default()
}

/// Seeds the demo customers once per database; on every start, tops up the docs reader's
/// page views (one per day, deduplicated by messageId) so they stay inside the 2-day window.
pub fn seed(segment: &Segment) -> Result<bool, String> {
    let now = now_ms();
    let day = rfc3339(now).chars().take(10).collect::<String>();
    intake::accept(
        segment,
        &page(
            "dana",
            format!("demo-dana-docs-{day}"),
            "/docs/flex/routing",
            now,
        ),
    );
    if segment
        .store
        .meta("demo_seeded")
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(false);
    }
    let messages = [
        identify(
            "dana",
            DOCS_READER,
            json!({"first_name": "Dana", "email": "dana@example.com"}),
        ),
        page(
            "dana",
            "demo-dana-docs-1".into(),
            "/docs/studio/widgets",
            now - 3 * HOUR_MS,
        ),
        page(
            "dana",
            "demo-dana-docs-2".into(),
            "/docs/segment/profile-api",
            now - 20 * HOUR_MS,
        ),
        page(
            "dana",
            "demo-dana-old".into(),
            "/docs/getting-started",
            now - 5 * 24 * HOUR_MS,
        ),
        page(
            "dana",
            "demo-dana-pricing".into(),
            "/pricing",
            now - HOUR_MS,
        ),
        identify("nico", NEWCOMER, json!({"first_name": "Nico"})),
        identify(
            "vera",
            VIP,
            json!({"first_name": "Vera", "vip": true, "lifetime_value": 12500}),
        ),
        identify("remy", RETURNING, json!({"first_name": "Remy"})),
        engagement(RETURNING, 1, "sms", now - 72 * HOUR_MS),
        engagement(RETURNING, 2, "sms", now - 48 * HOUR_MS),
        engagement(RETURNING, 3, "voice", now - 24 * HOUR_MS),
        wrap_up(1, "billing", "negative", now - 72 * HOUR_MS),
        wrap_up(2, "billing", "neutral", now - 48 * HOUR_MS),
        wrap_up(3, "delivery", "positive", now - 24 * HOUR_MS),
    ];
    for message in &messages {
        intake::accept(segment, message);
    }
    segment
        .store
        .set_meta("demo_seeded", &rfc3339(now))
        .map_err(|e| e.to_string())?;
    Ok(true)
}
