//! profile-lookup's entry point: Studio's request fields into a lookup request, the answer
//! fitted to what Studio reads, and the function's wiring.

use std::time::Instant;

use serde_json::Map;

use super::{STUDIO_BODY_LIMIT, fit_within, studio_fields};
use crate::adapters::config::{ConfigError, ProfileLookupConfig, Startup};
use crate::adapters::segment::ProfileApi;
use crate::domain::arrival::Arrival;
use crate::domain::identity::{Customer, Identifier};
use crate::domain::operations::profile_lookup::{LookupRequest, ProfileLookup};
use crate::domain::ports::{Profiles, TraitsQuery};
use crate::edge::fields::{self, Fields};
use crate::edge::invocation::Input;
use crate::edge::{Answer, Failure, Operation};

/// Reads profile-lookup's configuration and builds its clients. Nothing is fetched: secrets
/// wait for the first invocation.
pub fn load(startup: &Startup<'_>) -> Result<ProfileLookup<ProfileApi>, ConfigError> {
    let config = ProfileLookupConfig::read(startup)?;
    Ok(ProfileLookup {
        phone_identifier: config.profile_api.phone_identifier.clone(),
        profiles: ProfileApi::new(config.profile_api, startup.http.clone()),
        deadline: config.deadline,
    })
}

fn request(fields: &Fields, phone_identifier: &str) -> Result<LookupRequest, Failure> {
    let customer = Identifier::from_fields(fields, phone_identifier)?;
    let class = match fields::text(fields, "class")? {
        None => None,
        Some(class @ ("audience" | "computed_trait")) => Some(class.to_owned()),
        Some(_) => {
            return Err(Failure::bad_request(
                "invalid_field",
                "class: must be audience or computed_trait",
            ));
        }
    };
    let limit = fields::number_in(fields, "limit", 1..=u64::from(TraitsQuery::MAX_LIMIT))?;
    Ok(LookupRequest {
        customer,
        query: LookupRequest::query(
            fields::text(fields, "include")?,
            class,
            limit.map(|n| n as u16),
        ),
        external_ids: fields::flag(fields, "external_ids")?,
    })
}

impl<P: Profiles> Operation for ProfileLookup<P> {
    const NAME: &'static str = "profile-lookup";
    const MAX_BODY_BYTES: usize = 16 * 1024;

    async fn call(&self, input: Input, arrival: Arrival) -> Result<Answer, Failure> {
        let request = request(&studio_fields(input)?, &self.phone_identifier)?;
        let mut body = self.answer(&request, &arrival).await?;
        let customer = match &request.customer {
            Customer::Identified(identifier) => identifier.masked(),
            Customer::Withheld => "withheld".to_owned(),
        };
        let truncated = fit_within(&mut body, STUDIO_BODY_LIMIT, "truncated");
        tracing::info!(
            customer = %customer,
            found = body["found"] == true,
            traits = body["traits"].as_object().map_or(0, Map::len),
            truncated,
            latency_us = arrival.at.elapsed().as_micros() as u64,
            "lookup"
        );
        Ok(Answer::Json(body))
    }

    /// Studio waits for the lookup, authentication included, no longer than its deadline.
    fn authenticate_by(&self, arrival: &Arrival) -> Instant {
        arrival.deadline(self.deadline)
    }

    async fn warm_up(&self) {
        self.profiles.warm_up().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use serde_json::{Value, json};

    use crate::adapters::memory::MemoryProfiles;
    use crate::adapters::secrets::SecretError;
    use crate::domain::ports::ProfileError;
    use crate::edge::Edge;
    use crate::testing::{authenticator, signed_form, status_and_body};

    const PHONE: &str = "phone:+15555550100";

    fn edge(profiles: MemoryProfiles) -> Edge<ProfileLookup<MemoryProfiles>> {
        Edge::new(
            ProfileLookup {
                profiles,
                deadline: Duration::from_millis(300),
                phone_identifier: "phone".into(),
            },
            authenticator(false),
        )
    }

    async fn look_up(
        edge: &Edge<ProfileLookup<MemoryProfiles>>,
        fields: &[(&str, &str)],
    ) -> (u64, Value) {
        status_and_body(&edge.handle(signed_form(fields), None).await)
    }

    #[tokio::test]
    async fn a_known_customer_gets_the_traits_asked_for() {
        let edge = edge(MemoryProfiles::new().with(
            PHONE,
            json!({"docs_last_2_days": 3, "vip": true, "first_name": "Ann"}),
        ));
        let (status, body) = look_up(&edge, &[("From", "whatsapp:+15555550100")]).await;
        assert_eq!(
            (status, body),
            (
                200,
                json!({"found": true, "identifier": PHONE, "traits": {"docs_last_2_days": 3, "vip": true, "first_name": "Ann"}})
            )
        );
        // include, class and limit reach the store as one query
        let (_, body) = look_up(
            &edge,
            &[
                ("phone", "+15555550100"),
                ("include", "vip, docs_last_2_days"),
                ("class", "audience"),
                ("limit", "5"),
            ],
        )
        .await;
        assert_eq!(body["traits"], json!({"docs_last_2_days": 3, "vip": true}));
        let (_, query) = edge.operation.profiles.asked().pop().unwrap();
        assert_eq!(
            (query.included(), query.class(), query.limit()),
            (Some("docs_last_2_days,vip"), Some("audience"), 5)
        );
    }

    #[tokio::test]
    async fn an_unknown_customer_is_found_false_and_a_withheld_caller_is_not_looked_up() {
        let edge = edge(MemoryProfiles::new());
        let (status, body) = look_up(&edge, &[("email", "Ann@Example.com")]).await;
        assert_eq!(
            (status, body),
            (
                200,
                json!({"found": false, "identifier": "email:ann@example.com", "traits": {}})
            )
        );
        let (status, body) =
            look_up(&edge, &[("From", "anonymous"), ("external_ids", "true")]).await;
        assert_eq!(
            (status, body),
            (
                200,
                json!({"found": false, "identifier": null, "traits": {}, "withheld": true, "external_ids": []})
            )
        );
        assert_eq!(edge.operation.profiles.asked().len(), 1);
    }

    #[tokio::test]
    async fn external_ids_come_on_request() {
        let edge = edge(MemoryProfiles::new().with(PHONE, json!({"vip": true})));
        let (_, body) = look_up(
            &edge,
            &[("phone", "+15555550100"), ("external_ids", "true")],
        )
        .await;
        assert_eq!(
            body["external_ids"],
            json!([{"type": "phone", "id": "+15555550100"}])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_fails_or_hangs_is_a_5xx_studio_takes_its_failed_branch_on() {
        for (profiles, status, code) in [
            (
                MemoryProfiles::failing(ProfileError::Status(500)),
                502,
                "upstream_error",
            ),
            (
                MemoryProfiles::failing(ProfileError::RateLimited { retry_after: None }),
                502,
                "rate_limited",
            ),
            (
                MemoryProfiles::failing(ProfileError::Unauthorized(401)),
                502,
                "upstream_auth",
            ),
            (
                MemoryProfiles::failing(ProfileError::Token(SecretError::Unavailable {
                    name: "SEGMENT_PROFILE_API_TOKEN",
                    problem: "down".into(),
                })),
                503,
                "secrets_unavailable",
            ),
            (MemoryProfiles::hanging(), 504, "upstream_timeout"),
        ] {
            let (got, body) = look_up(&edge(profiles), &[("phone", "+15555550100")]).await;
            assert_eq!(
                (got, body["error"]["code"].as_str()),
                (status, Some(code)),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn bad_fields_are_400s() {
        let edge = edge(MemoryProfiles::new());
        for fields in [
            vec![("phone", "+15555550100"), ("class", "everything")],
            vec![("phone", "+15555550100"), ("limit", "0")],
            vec![("phone", "+15555550100"), ("limit", "201")],
            vec![("phone", "+15555550100"), ("external_ids", "maybe")],
        ] {
            let (status, body) = look_up(&edge, &fields).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_field")),
                "{fields:?}"
            );
        }
        assert!(edge.operation.profiles.asked().is_empty());
    }

    #[test]
    fn a_small_body_is_left_alone() {
        let mut body = json!({"found": true, "identifier": "phone:+1", "traits": {"a": 1}});
        assert!(!fit_within(&mut body, 1000, "truncated"));
        assert!(body.get("truncated").is_none());
    }

    #[test]
    fn the_largest_traits_go_first_until_the_body_fits() {
        // GIVEN three small traits and two large ones, over the limit together
        let mut body = json!({"found": true, "identifier": "phone:+1", "traits": {
            "small_a": 1, "small_b": "x", "small_c": true,
            "big_list": "y".repeat(600), "bigger_list": "z".repeat(900)
        }});
        // WHEN it is fitted into 1000 bytes
        assert!(fit_within(&mut body, 1000, "truncated"));
        // THEN only the biggest trait went, and the body says it was truncated
        let traits = body["traits"].as_object().unwrap();
        assert!(!traits.contains_key("bigger_list"));
        assert!(traits.contains_key("big_list") && traits.contains_key("small_a"));
        assert_eq!(body["truncated"], true);
        assert!(serde_json::to_vec(&body).unwrap().len() <= 1000);
    }
}
