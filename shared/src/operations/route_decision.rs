//! route-decision: which transition Studio's Split takes for this customer.

use std::time::{Duration, Instant};

use crate::config::{ConfigError, Environment, ProfileApiConfig, Reader};
use crate::edge::{Answer, Edge, Failure, Operation};
use crate::fields::{self, Fields};
use crate::http_client::HttpClient;
use crate::identity::Identifier;
use crate::routing::{DecisionRequest, Lookup, ProfileSource, Subject, decide};
use crate::rules::RuleSet;
use crate::segment::ProfileApi;

/// Studio waits 10 s at most; the default leaves room for a retry by the proxy and a Flex enqueue.
const DEFAULT_DEADLINE_MS: u64 = 2500;

pub struct RouteDecision<P> {
    pub profiles: P,
    pub rules: RuleSet,
    pub deadline: Duration,
    pub phone_identifier: String,
}

/// Reads route-decision's configuration and builds its clients.
pub async fn load(env: &dyn Environment) -> Result<Edge<RouteDecision<ProfileApi>>, ConfigError> {
    let http = HttpClient::new(Duration::from_secs(1));
    let reader = Reader::new(env, &http);
    let rules = reader.rules()?;
    let deadline = reader.millis("DECISION_DEADLINE_MS", DEFAULT_DEADLINE_MS, 100..=9000)?;
    let profile_config = ProfileApiConfig::read(&reader).await?;
    if profile_config.request_timeout > deadline {
        tracing::warn!(
            "PROFILE_TIMEOUT_MS exceeds DECISION_DEADLINE_MS; lookups will be cut at the deadline"
        );
    }
    let auth = reader.authenticator().await?;
    let profiles = ProfileApi::new(&profile_config, http);
    Ok(Edge::new(
        RouteDecision {
            profiles,
            rules,
            deadline,
            phone_identifier: profile_config.phone_identifier,
        },
        auth,
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

    async fn call(&self, fields: Fields) -> Result<Answer, Failure> {
        let started = Instant::now();
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
