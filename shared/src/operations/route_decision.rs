//! route-decision: which transition Studio's Split takes for this customer.

use std::time::Duration;

use crate::config::{self, ConfigError, ProfileApiConfig, Setup};
use crate::edge::{Answer, Failure, Invoked, Operation};
use crate::fields::{self, Fields};
use crate::identity::{Customer, Identifier};
use crate::invocation::Input;
use crate::ports::Profiles;
use crate::routing::{DecisionRequest, Lookup, Subject, decide};
use crate::rules::RuleSet;
use crate::segment::ProfileApi;

pub struct RouteDecision<P> {
    pub profiles: P,
    pub rules: RuleSet,
    pub deadline: Duration,
    pub phone_identifier: String,
}

/// route-decision's configuration.
pub struct Config {
    pub rules: RuleSet,
    pub profile_api: ProfileApiConfig,
    /// `DECISION_DEADLINE_MS`.
    pub deadline: Duration,
}

impl Config {
    /// The rules first: they are the likeliest to be wrong.
    pub fn read(setup: &Setup<'_>) -> Result<Self, ConfigError> {
        let rules = config::rules(&setup.vars)?;
        let deadline = config::decision_deadline(&setup.vars)?;
        let profile_api = ProfileApiConfig::read(&setup.vars, &setup.extension)?;
        profile_api.warn_if_slower_than(deadline);
        Ok(Self {
            rules,
            profile_api,
            deadline,
        })
    }
}

/// Reads route-decision's configuration and builds its clients. Nothing is fetched: secrets
/// wait for the first invocation.
pub fn load(setup: &Setup<'_>) -> Result<RouteDecision<ProfileApi>, ConfigError> {
    let config = Config::read(setup)?;
    Ok(RouteDecision {
        phone_identifier: config.profile_api.phone_identifier.clone(),
        profiles: ProfileApi::new(config.profile_api, setup.http.clone()),
        rules: config.rules,
        deadline: config.deadline,
    })
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

impl<P: Profiles> Operation for RouteDecision<P> {
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
