//! route-decision: which transition Studio's Split takes for this customer.

use std::time::Duration;

use crate::config::{self, ConfigError, Environment};
use crate::edge::{Answer, Edge, Failure, Invoked, Operation};
use crate::fields::{self, Fields};
use crate::identity::{Customer, Identifier};
use crate::invocation::Input;
use crate::operations::{ProfileReading, Setup};
use crate::routing::{DecisionRequest, Lookup, ProfileSource, Subject, decide};
use crate::rules::RuleSet;
use crate::segment::ProfileApi;

pub struct RouteDecision<P> {
    pub profiles: P,
    pub rules: RuleSet,
    pub deadline: Duration,
    pub phone_identifier: String,
}

/// Reads route-decision's configuration (rules first: they are the likeliest to be wrong)
/// and builds its clients. Nothing is fetched: secrets wait for the first invocation.
pub fn load(env: &dyn Environment) -> Result<Edge<RouteDecision<ProfileApi>>, ConfigError> {
    let setup = Setup::new(env, Duration::from_secs(1))?;
    let rules = config::rules(&setup.vars)?;
    let reading = ProfileReading::load(&setup)?;
    Ok(Edge::new(
        RouteDecision {
            profiles: reading.profiles,
            rules,
            deadline: reading.deadline,
            phone_identifier: reading.phone_identifier,
        },
        setup.authenticator()?,
    ))
}

impl<P> RouteDecision<P> {
    fn request(&self, fields: &Fields) -> Result<DecisionRequest, Failure> {
        let channel = fields::text(fields, "channel")?.map(str::to_lowercase);
        let subject = match fields::object(fields, "traits")? {
            Some(traits) => Subject::Traits(traits),
            None => match Identifier::from_fields(fields, &self.phone_identifier)? {
                Customer::Identified(identifier) => Subject::Customer(identifier),
                Customer::Withheld => Subject::Withheld,
            },
        };
        Ok(DecisionRequest { subject, channel })
    }
}

impl<P: ProfileSource + Sync> Operation for RouteDecision<P> {
    const MAX_BODY_BYTES: usize = 64 * 1024;

    async fn call(&self, input: Input, invoked: Invoked) -> Result<Answer, Failure> {
        let started = invoked.at;
        let fields =
            fields::fields_of(input).map_err(|e| Failure::bad_request("invalid_body", e))?;
        let request = self.request(&fields)?;
        let budget = invoked.remaining(self.deadline);
        let (decision, lookup) = decide(&self.profiles, &self.rules, &request, budget).await;
        let customer = match &request.subject {
            Subject::Customer(identifier) => identifier.masked(),
            Subject::Withheld => "withheld".to_owned(),
            Subject::Traits(_) => "inline".to_owned(),
        };
        let failure = match &lookup {
            Lookup::Failed(reason) => Some(reason.as_str()),
            _ => None,
        };
        tracing::info!(
            customer = %customer,
            transition = %decision.transition,
            rule = %decision.rule,
            fallback = decision.fallback,
            profile_found = decision.profile_found,
            lookup = lookup.as_str(),
            lookup_error = failure,
            latency_us = started.elapsed().as_micros() as u64,
            "decision"
        );
        serde_json::to_value(&decision)
            .map(Answer::Json)
            .map_err(|e| Failure::new(500, "internal_error", e.to_string()))
    }

    /// Builds the HTTPS client and fetches the token, so the next lookup does neither;
    /// sends nothing to Segment.
    async fn warm_up(&self) {
        self.profiles.warm_up().await;
    }
}
