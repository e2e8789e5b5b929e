//! route-decision: which transition Studio's Split takes for this customer.

use std::time::{Duration, Instant};

use crate::config::{ConfigError, Environment, Reader};
use crate::edge::{Answer, Edge, Failure, Operation};
use crate::fields::{self, Fields};
use crate::http_client::HttpClient;
use crate::identity::Identifier;
use crate::operations::StudioFacing;
use crate::routing::{DecisionRequest, Lookup, ProfileSource, Subject, decide};
use crate::rules::RuleSet;
use crate::segment::ProfileApi;
use serde_json::Value;

pub struct RouteDecision<P> {
    pub profiles: P,
    pub rules: RuleSet,
    pub deadline: Duration,
    pub phone_identifier: String,
}

/// Reads route-decision's configuration (rules first: they are the likeliest to be wrong)
/// and builds its clients.
pub async fn load(env: &dyn Environment) -> Result<Edge<RouteDecision<ProfileApi>>, ConfigError> {
    let http = HttpClient::new(Duration::from_secs(1));
    let rules = Reader::new(env, &http).rules()?;
    let setup = StudioFacing::load(env).await?;
    Ok(Edge::new(
        RouteDecision {
            profiles: setup.profiles,
            rules,
            deadline: setup.deadline,
            phone_identifier: setup.phone_identifier,
        },
        setup.auth,
    ))
}

impl<P> RouteDecision<P> {
    fn request(&self, fields: &Fields) -> Result<DecisionRequest, Failure> {
        let channel = fields::text(fields, "channel")
            .map_err(|e| Failure::bad_request("invalid_field", e))?
            .map(str::to_lowercase);
        let subject = match fields::object(fields, "traits")
            .map_err(|e| Failure::bad_request("invalid_field", e))?
        {
            Some(traits) => Subject::Traits(traits),
            None => Subject::Customer(
                Identifier::from_fields(fields, &self.phone_identifier)
                    .map_err(|e| Failure::bad_request("invalid_identifier", e))?,
            ),
        };
        Ok(DecisionRequest { subject, channel })
    }
}

impl<P: ProfileSource + Sync> Operation for RouteDecision<P> {
    const MAX_BODY_BYTES: usize = 64 * 1024;

    async fn call(&self, input: Value) -> Result<Answer, Failure> {
        let started = Instant::now();
        let fields =
            fields::fields_of(input).map_err(|e| Failure::bad_request("invalid_body", e))?;
        let request = self.request(&fields)?;
        let (decision, lookup) = decide(&self.profiles, &self.rules, &request, self.deadline).await;
        let customer = match &request.subject {
            Subject::Customer(identifier) => identifier.masked(),
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

    /// Builds the HTTPS client so the next lookup does not; sends nothing to Segment.
    async fn warm_up(&self) {
        self.profiles.prepare();
    }
}
