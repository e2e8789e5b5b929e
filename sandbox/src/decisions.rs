//! Every decision route-decision made since the sandbox started (the last [`KEPT`]), for the
//! console's live list: who asked, what the rules answered, whether it fell back, and how
//! long the Function URL took to answer.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use studio_router::adapters::segment::ProfileApi;
use studio_router::domain::identity::{Customer, Identifier};
use studio_router::domain::operations::route_decision::RouteDecision;
use studio_router::domain::routing::ShadowVerdict;
use studio_router::edge::Operation;
use studio_router::edge::functions::route_decision::decision_channel;
use studio_router::edge::invocation::{Invocation, status_and_body};

use crate::segment::now_ms;

/// How many decisions the list keeps; older ones drop off.
pub const KEPT: usize = 1000;

/// One answer of route-decision.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    /// Increases by one per decision: the console asks for those after the last it has.
    pub seq: u64,
    pub at_ms: i64,
    /// The identifier the request named (unmasked here; the console API masks it).
    pub customer: Option<(String, String)>,
    /// The sandbox profile that identifier resolves to now, if any.
    pub profile: Option<String>,
    pub status: u16,
    pub transition: Option<String>,
    pub rule: Option<String>,
    pub fallback: bool,
    pub profile_found: bool,
    /// `store` or `store+profile_api` when the trait store gave the traits.
    pub traits_from: Option<String>,
    /// The experiment's arm that decided, when the rules have an experiment.
    pub arm: Option<String>,
    /// The channel the request was for (as the function reads it).
    pub channel: Option<String>,
    /// What the shadow rule set would have answered (`SHADOW_ROUTING_RULES`), when there is one.
    pub shadow: Option<ShadowVerdict>,
    pub attributes: Map<String, Value>,
    /// A refused request's message (a 4xx or 5xx).
    pub error: Option<String>,
    /// From the request reaching the function to its answer.
    pub latency_us: u64,
}

pub struct DecisionLog {
    /// When this log began: a page that saw another start time knows the sandbox restarted
    /// and its sequence numbers began again.
    pub started_ms: i64,
    state: Mutex<State>,
}

impl Default for DecisionLog {
    fn default() -> Self {
        Self {
            started_ms: now_ms(),
            state: Mutex::default(),
        }
    }
}

#[derive(Default)]
struct State {
    next: u64,
    entries: VecDeque<Recorded>,
}

impl DecisionLog {
    /// Records route-decision's `answer` to `event`. `resolve` finds the profile of an
    /// identifier.
    pub fn record(
        &self,
        event: &Value,
        answer: &Value,
        took: Duration,
        phone_kind: &str,
        resolve: impl FnOnce(&Identifier) -> Option<String>,
        shadow_of: impl FnOnce(&Recorded) -> Option<ShadowVerdict>,
    ) {
        let (customer, channel) = request_of(event, phone_kind);
        let profile = customer.as_ref().and_then(resolve);
        let (status, body) = status_and_body(answer);
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
        let flag = |key: &str| body.get(key).and_then(Value::as_bool).unwrap_or(false);
        let error = (status != 200).then(|| {
            body.pointer("/error/message")
                .and_then(Value::as_str)
                .map_or_else(|| body.to_string(), str::to_owned)
        });
        let mut recorded = Recorded {
            seq: 0,
            at_ms: now_ms(),
            customer: customer.map(|c| (c.kind().to_owned(), c.value().to_owned())),
            profile,
            status: u16::try_from(status).unwrap_or(500),
            transition: text("transition"),
            rule: text("rule"),
            fallback: flag("fallback"),
            profile_found: flag("profile_found"),
            traits_from: text("traits_from"),
            arm: text("arm"),
            channel,
            shadow: None,
            attributes: body
                .get("attributes")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            error,
            latency_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
        };
        recorded.shadow = shadow_of(&recorded);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.next += 1;
        recorded.seq = state.next;
        if state.entries.len() == KEPT {
            state.entries.pop_front();
        }
        state.entries.push_back(recorded);
    }

    /// The decisions after `seq`, oldest first.
    pub fn after(&self, seq: u64) -> Vec<Recorded> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .entries
            .iter()
            .filter(|recorded| recorded.seq > seq)
            .cloned()
            .collect()
    }
}

/// The identifier and the channel a route-decision request names, read as the function
/// reads them.
fn request_of(event: &Value, phone_kind: &str) -> (Option<Identifier>, Option<String>) {
    let max = <RouteDecision<ProfileApi> as Operation>::MAX_BODY_BYTES;
    let input = match Invocation::decode(event.clone(), max).ok() {
        Some(Invocation::Http(request)) => request.into_payload(max).ok(),
        Some(Invocation::Direct(input)) => Some(input),
        _ => None,
    };
    let Some(fields) = input.and_then(|input| input.into_fields().ok()) else {
        return (None, None);
    };
    let channel = decision_channel(&fields).ok().flatten();
    let customer = match Identifier::from_fields(&fields, phone_kind) {
        Ok(Customer::Identified(identifier)) => Some(identifier),
        _ => None,
    };
    (customer, channel)
}
