//! route-decision's work: which transition Studio's Split takes for this customer, from the
//! rules in use (brought up to date first) or the emergency override, and the decision's
//! metrics and log line.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::arrival::Arrival;
use crate::domain::ports::{NoUpdates, Profiles, RoutingUpdates};
use crate::domain::routing::{self, Decision, DecisionRequest, Lookup, Subject, decide_beside};
use crate::domain::rules::{RulesInUse, ShadowInUse};
use crate::support::metrics;

pub struct RouteDecision<P, U = NoUpdates> {
    pub profiles: P,
    /// Shared with whoever may replace them while the function runs (the rules feed, the
    /// local stack's file watch).
    pub rules: Arc<RulesInUse>,
    /// What may change the routing while the function runs.
    pub updates: U,
    pub deadline: Duration,
    /// The identifier type that holds phone numbers (`SEGMENT_PHONE_IDENTIFIER`).
    pub phone_identifier: String,
    /// The traits every answer carries back when the profile is read (`RESPONSE_TRAITS`).
    pub response_traits: Arc<BTreeSet<String>>,
    /// A candidate rule set judged beside the live one, never acted on
    /// (`SHADOW_ROUTING_RULES`), shared with whoever may replace it.
    pub shadow: Arc<ShadowInUse>,
}

impl<P: Profiles, U: RoutingUpdates> RouteDecision<P, U> {
    /// The decision for `request`, within the decision's budget counted from `arrival`.
    pub async fn decision(&self, request: &DecisionRequest, arrival: &Arrival) -> Decision {
        // Before the budget is read: the first decision's wait for its rules is part of it.
        self.updates.refresh(arrival.deadline(self.deadline)).await;
        let budget = arrival.remaining(self.deadline);
        let rules = self.rules.current();
        let deciding = Instant::now();
        let shadow = self.shadow.current();
        let shadow = shadow.as_ref();
        let (mut decision, lookup) = match self.updates.overriding(&rules) {
            Some(transition) => routing::overridden(transition),
            None => decide_beside(&self.profiles, &rules, shadow, request, budget).await,
        };
        if lookup.read_a_profile() {
            metrics::looked_up(deciding.elapsed());
        }
        metrics::decided(
            &decision.transition,
            &decision.rule,
            lookup.fallback_reason(),
        );
        if let Some(arm) = decision.arm {
            metrics::in_arm(arm);
        }
        if let Some(shadow) = &decision.shadow {
            metrics::shadowed(&shadow.transition);
        }
        log(request, &decision, &lookup, arrival);
        // The shadow's outcome is the operator's, not the caller's, unless it asked.
        if !request.explain {
            decision.shadow = None;
        }
        decision
    }

    /// Reads the routing updates and prepares the profile client (its HTTPS client, its
    /// token), so the next decision does neither; sends nothing to Segment.
    pub async fn prepare(&self) {
        self.updates.warm_up().await;
        self.profiles.warm_up().await;
    }
}

/// The decision's log line: the customer masked, the rule, and why a fallback was taken.
fn log(request: &DecisionRequest, decision: &Decision, lookup: &Lookup, arrival: &Arrival) {
    let customer = match &request.subject {
        Subject::Customer(identifier) => identifier.masked(),
        Subject::Withheld => "withheld".to_owned(),
        Subject::Traits(_) => "inline".to_owned(),
    };
    let failure = match lookup {
        Lookup::Failed(error) => Some(error.to_string()),
        _ => None,
    };
    tracing::info!(
        customer = %customer,
        channel = request.channel.as_deref(),
        transition = %decision.transition,
        rule = %decision.rule,
        fallback = decision.fallback,
        profile_found = decision.profile_found,
        lookup = lookup.as_str(),
        traits_from = lookup.traits_from(),
        shadow_transition = decision.shadow.as_ref().map(|s| s.transition.as_str()),
        shadow_rule = decision.shadow.as_ref().map(|s| s.rule.as_str()),
        experiment = decision.experiment.as_deref(),
        arm = decision.arm,
        lookup_error = failure,
        fallback_reason = lookup.fallback_reason(),
        latency_us = arrival.at.elapsed().as_micros() as u64,
        "decision"
    );
}
