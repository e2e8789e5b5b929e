//! profile-lookup's work: a customer's traits (and, on request, the identifiers their profile
//! holds) from the profile store, within the lookup's budget.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::domain::arrival::Arrival;
use crate::domain::identity::{Customer, Identifier};
use crate::domain::ports::{ProfileError, Profiles, TraitsQuery};
use crate::support::metrics;

pub struct ProfileLookup<P> {
    pub profiles: P,
    pub deadline: Duration,
    /// The identifier type that holds phone numbers (`SEGMENT_PHONE_IDENTIFIER`).
    pub phone_identifier: String,
}

/// Whose traits, which of them, and whether the profile's identifiers come too.
pub struct LookupRequest {
    pub customer: Customer,
    pub query: TraitsQuery,
    pub external_ids: bool,
}

impl LookupRequest {
    /// `include` (a comma list of trait names), `class` and `limit` as a query.
    pub fn query(include: Option<&str>, class: Option<String>, limit: Option<u16>) -> TraitsQuery {
        let include = include.map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(str::to_owned)
                .collect::<BTreeSet<_>>()
        });
        TraitsQuery::new(
            include.as_ref(),
            class,
            limit.unwrap_or(TraitsQuery::MAX_LIMIT),
        )
    }
}

impl<P: Profiles> ProfileLookup<P> {
    /// The answer's body: `found`, `identifier`, `traits` (and `external_ids`), or the lookup's
    /// failure once the budget counted from `arrival` is spent.
    pub async fn answer(
        &self,
        request: &LookupRequest,
        arrival: &Arrival,
    ) -> Result<Value, ProfileError> {
        let Customer::Identified(identifier) = &request.customer else {
            // No one to look up: every withheld caller would share one profile.
            let mut body =
                json!({"found": false, "identifier": null, "traits": {}, "withheld": true});
            if request.external_ids {
                body["external_ids"] = json!([]);
            }
            return Ok(body);
        };
        let budget = arrival.remaining(self.deadline);
        let looking = Instant::now();
        let deadline = looking + budget;
        let outcome =
            match tokio::time::timeout(budget, self.look_up(identifier, request, deadline)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ProfileError::Timeout(budget.as_millis() as u64)),
            };
        metrics::looked_up(looking.elapsed());
        if let Err(error) = &outcome {
            let latency_us = arrival.at.elapsed().as_micros() as u64;
            tracing::warn!(customer = %identifier.masked(), error = %error, latency_us, "lookup failed");
        }
        outcome
    }

    async fn look_up(
        &self,
        identifier: &Identifier,
        request: &LookupRequest,
        deadline: Instant,
    ) -> Result<Value, ProfileError> {
        let traits = self
            .profiles
            .traits(identifier, &request.query, deadline)
            .await?;
        let mut body = json!({
            "found": traits.is_some(),
            "identifier": identifier.to_string(),
            "traits": traits.clone().unwrap_or_default(),
        });
        if request.external_ids {
            let ids = match traits {
                Some(_) => self
                    .profiles
                    .external_ids(identifier, deadline)
                    .await?
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            body["external_ids"] = Value::Array(ids);
        }
        Ok(body)
    }
}
