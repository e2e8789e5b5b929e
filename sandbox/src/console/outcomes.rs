//! The console's Outcomes (issue 31): per rule and experiment arm, what followed the
//! decisions the sandbox saw. A bot-routed customer who reached an agent (a Flex engagement,
//! as wrap-up-ingest sends it to the sandbox's Segment) within the escalation window is an
//! escalation; the engagements after any decision give the handle time and the sentiment.
//! With a shadow rule set, its disagreements with the rules: how many, which moves, and the
//! newest examples with the customer masked.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use studio_router::domain::routing::ShadowVerdict;
use studio_router::domain::rules::{Facts, RuleSet};

use super::Console;
use super::customers::traits_of;
use super::privacy::mask_text;
use crate::decisions::Recorded;
use crate::segment::Segment;
use crate::store::StoredEvent;

/// How many disagreements the Outcomes view shows as examples, newest first.
const SHADOW_EXAMPLES: usize = 5;

/// `ESCALATION_WINDOW_SECS` unless set: a customer who reaches an agent within an hour of the
/// bot's answer was not served by the bot.
pub const DEFAULT_ESCALATION_WINDOW_SECS: i64 = 3600;

/// The Flex events wrap-up-ingest sends, in either schema: each is an engagement with an agent.
const ENGAGEMENTS: [&str; 3] = [
    "Flex - Engagement Completed",
    "Flex - Engagement Initiated",
    "Flex - Wrap Up Completed",
];

#[derive(Default)]
struct Tally {
    decisions: u64,
    customers: BTreeSet<String>,
    bot_routed: u64,
    escalations: u64,
    handle_times: Vec<f64>,
    sentiments: BTreeMap<String, u64>,
}

pub async fn outcomes(State(console): State<Console>) -> Response {
    let window_ms = console.escalation_window_secs.saturating_mul(1000);
    let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut events: HashMap<String, Vec<StoredEvent>> = HashMap::new();
    let answered: Vec<Recorded> = console
        .decisions
        .after(0)
        .into_iter()
        .filter(|d| d.status == 200)
        .collect();
    for decision in &answered {
        let key = (
            decision.rule.clone().unwrap_or_default(),
            decision.arm.clone().unwrap_or_else(|| "none".to_owned()),
        );
        let tally = tallies.entry(key).or_default();
        tally.decisions += 1;
        let bot = decision.transition.as_deref() == Some("bot");
        tally.bot_routed += u64::from(bot);
        let Some(profile) = &decision.profile else {
            continue;
        };
        tally.customers.insert(profile.clone());
        let theirs = events
            .entry(profile.clone())
            .or_insert_with(|| console.segment.store.events(profile).unwrap_or_default());
        let escalated = follow(decision, theirs, window_ms, tally);
        tally.escalations += u64::from(bot && escalated);
    }
    let rows: Vec<Value> = tallies
        .into_iter()
        .map(|((rule, arm), tally)| row(rule, arm, tally))
        .collect();
    let shadow = console.shadowing.then(|| disagreements(&answered));
    axum::Json(json!({
        "escalation_window_secs": console.escalation_window_secs,
        "outcomes": rows,
        "shadow": shadow,
    }))
    .into_response()
}

/// What the shadow set would have answered for a recorded decision, judged as the function
/// judges it: its `on_error` when the decision fell back, else its rules on the customer's
/// traits as they are now (just after the decision), on the request's channel. Inline traits
/// and withheld callers are not recorded, so they are not judged.
pub fn shadow_of(
    segment: &Segment,
    shadow: &RuleSet,
    recorded: &Recorded,
) -> Option<ShadowVerdict> {
    if recorded.status != 200 || recorded.customer.is_none() {
        return None;
    }
    let channel = recorded.channel.as_deref();
    let verdict = if recorded.fallback {
        shadow.on_error(channel)
    } else {
        let traits = match &recorded.profile {
            Some(profile) => traits_of(segment, profile, recorded.at_ms).ok()?,
            None => serde_json::Map::new(),
        };
        shadow.evaluate(&Facts {
            traits: &traits,
            channel,
        })
    };
    Some(verdict.into())
}

/// The shadow's disagreements with the decisions: the count, the moves
/// (`agent -> bot`), and the newest examples, the customer masked.
fn disagreements(answered: &[Recorded]) -> Value {
    let judged: Vec<(&Recorded, &ShadowVerdict)> = answered
        .iter()
        .filter_map(|d| Some((d, d.shadow.as_ref()?)))
        .collect();
    let mut moves: BTreeMap<String, u64> = BTreeMap::new();
    let mut examples = Vec::new();
    for (decision, shadow) in judged.iter().rev() {
        let transition = decision.transition.as_deref().unwrap_or_default();
        if shadow.transition == transition {
            continue;
        }
        *moves
            .entry(format!("{transition} -> {}", shadow.transition))
            .or_default() += 1;
        if examples.len() < SHADOW_EXAMPLES {
            examples.push(json!({
                "at_ms": decision.at_ms,
                "customer": decision.customer.as_ref().map(|(_, value)| mask_text(value)),
                "transition": transition,
                "rule": decision.rule,
                "shadow_transition": shadow.transition,
                "shadow_rule": shadow.rule,
            }));
        }
    }
    let disagreed: u64 = moves.values().sum();
    json!({
        "decisions": judged.len(),
        "disagreements": disagreed,
        "moves": moves,
        "examples": examples,
    })
}

/// Adds the engagements within the window after `decision` to `tally`; whether there was one.
fn follow(decision: &Recorded, events: &[StoredEvent], window_ms: i64, tally: &mut Tally) -> bool {
    let mut engaged = false;
    let following = events.iter().filter(|e| {
        e.timestamp_ms >= decision.at_ms
            && e.timestamp_ms <= decision.at_ms.saturating_add(window_ms)
            && e.event
                .as_deref()
                .is_some_and(|name| ENGAGEMENTS.contains(&name))
    });
    for event in following {
        engaged = true;
        let properties = &event.message["properties"];
        let duration = properties["duration"]
            .as_f64()
            .or(properties["Duration"].as_f64());
        tally.handle_times.extend(duration);
        if let Some(sentiment) = properties["sentiment"].as_str() {
            *tally.sentiments.entry(sentiment.to_owned()).or_default() += 1;
        }
    }
    engaged
}

fn row(rule: String, arm: String, tally: Tally) -> Value {
    let mean = (!tally.handle_times.is_empty())
        .then(|| tally.handle_times.iter().sum::<f64>() / tally.handle_times.len() as f64);
    json!({
        "rule": rule,
        "arm": arm,
        "decisions": tally.decisions,
        "customers": tally.customers.len(),
        "bot_routed": tally.bot_routed,
        "escalations": tally.escalations,
        "mean_handle_time_secs": mean,
        "sentiment": tally.sentiments,
    })
}
