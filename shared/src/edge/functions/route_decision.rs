//! route-decision's entry point: Studio's request fields into a decision request, the
//! decision as JSON, AppConfig's validator, and the function's wiring.

use std::time::Instant;

use super::{STUDIO_BODY_LIMIT, fit_within, studio_fields};
use crate::adapters::config::{ConfigError, RouteDecisionConfig, Startup};
use crate::adapters::dynamodb::DynamoTraitStore;
use crate::adapters::routing_updates::ExtensionUpdates;
use crate::adapters::segment::ProfileApi;
use crate::domain::arrival::Arrival;
use crate::domain::identity::{self, Customer, Identifier, normalise_phone};
use crate::domain::operations::route_decision::RouteDecision;
use crate::domain::ports::{Profiles, RoutingUpdates};
use crate::domain::routing::{DecisionRequest, Subject};
use crate::domain::rules::RuleSet;
use crate::domain::store_first::StoreFirst;
use crate::edge::fields::{self, Fields};
use crate::edge::invocation::Input;
use crate::edge::{Answer, Failure, Operation};

/// Where route-decision reads traits: the trait store first when one is configured, then
/// Segment's Profile API.
pub type DecisionProfiles = StoreFirst<ProfileApi, DynamoTraitStore>;

/// Reads route-decision's configuration and builds its clients. Nothing is fetched: secrets
/// and routing updates wait for the first invocation.
pub fn load(
    startup: &Startup<'_>,
) -> Result<RouteDecision<DecisionProfiles, ExtensionUpdates>, ConfigError> {
    let config = RouteDecisionConfig::read(startup)?;
    Ok(RouteDecision {
        phone_identifier: config.profile_api.phone_identifier.clone(),
        profiles: StoreFirst {
            profiles: ProfileApi::new(config.profile_api, startup.http.clone()),
            store: config.store.store,
            trusted: config.store.trusted,
            store_budget: config.store.budget,
        },
        updates: ExtensionUpdates {
            rules_feed: config.rules_feed,
            emergency: config.emergency,
            shadow_feed: config.shadow_feed,
        },
        rules: config.rules,
        deadline: config.deadline,
        response_traits: config.response_traits,
        shadow: config.shadow,
    })
}

/// What Studio asks: whose decision (an identifier, inline traits, or a withheld caller), on
/// which channel, and whether to explain it.
fn request<P, U>(
    fields: &Fields,
    function: &RouteDecision<P, U>,
) -> Result<DecisionRequest, Failure> {
    let channel = decision_channel(fields)?;
    let subject = match fields::object(fields, "traits")? {
        Some(traits) => Subject::Traits(traits),
        None => match Identifier::from_fields(fields, &function.phone_identifier)? {
            Customer::Identified(identifier) => Subject::Customer(identifier),
            Customer::Withheld => Subject::Withheld,
        },
    };
    Ok(DecisionRequest {
        subject,
        channel,
        explain: fields::flag(fields, "explain")?,
        returning: function.response_traits.clone(),
    })
}

/// The channel a decision is for: the `channel` field, lower-cased, or what `From` says.
pub fn decision_channel(fields: &Fields) -> Result<Option<String>, Failure> {
    Ok(match fields::text(fields, "channel")? {
        Some(channel) => Some(channel.to_lowercase()),
        None => channel_of_from(fields).map(str::to_owned),
    })
}

/// With no `channel` field, the channel `From` names: its prefix (`whatsapp:`, `messenger:`,
/// `client:`, ...), or for a bare phone number `voice` when the request is a call's (Twilio's
/// voice requests carry `CallSid`) and `sms` otherwise (a message trigger's `From`).
fn channel_of_from(fields: &Fields) -> Option<&'static str> {
    let from = fields::text(fields, "From").ok().flatten()?;
    if let Some(channel) = identity::channel_of_address(from) {
        return Some(channel);
    }
    normalise_phone(from)?;
    Some(if fields.contains_key("CallSid") {
        "voice"
    } else {
        "sms"
    })
}

impl<P: Profiles, U: RoutingUpdates> Operation for RouteDecision<P, U> {
    const NAME: &'static str = "route-decision";
    const MAX_BODY_BYTES: usize = 64 * 1024;

    /// Studio waits for the decision, authentication included, no longer than its deadline.
    fn authenticate_by(&self, arrival: &Arrival) -> Instant {
        arrival.deadline(self.deadline)
    }

    async fn call(&self, input: Input, arrival: Arrival) -> Result<Answer, Failure> {
        let request = request(&studio_fields(input)?, self)?;
        let decision = self.decision(&request, &arrival).await;
        let mut body = serde_json::to_value(&decision)
            .map_err(|e| Failure::new(500, "internal_error", e.to_string()))?;
        // Only returned traits can be cut; nothing else in the answer is that large.
        if body.get("traits").is_some() {
            fit_within(&mut body, STUDIO_BODY_LIMIT, "traits_truncated");
        }
        Ok(Answer::Json(body))
    }

    /// AppConfig's validator: the same compiler as `--check-rules` and the start.
    fn validate_configuration(&self, content: &[u8]) -> Result<String, String> {
        let json =
            std::str::from_utf8(content).map_err(|_| "the rules are not UTF-8 text".to_owned())?;
        let rules = RuleSet::compile(json).map_err(|e| e.to_string())?;
        let names: Vec<&str> = rules.rule_names().collect();
        let mut summary = format!("{} rules: {}", names.len(), names.join(", "));
        if let Some(experiment) = rules.experiment() {
            let theirs: Vec<&str> = experiment.rules.rule_names().collect();
            summary += &format!(
                "; experiment {} ({}): {}",
                experiment.name,
                experiment.share,
                theirs.join(", ")
            );
        }
        Ok(summary)
    }

    /// Builds the HTTPS client and fetches the token, so the next lookup does neither;
    /// sends nothing to Segment.
    async fn warm_up(&self) {
        self.prepare().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::{Value, json};

    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::adapters::memory::MemoryProfiles;
    use crate::domain::ports::NoUpdates;
    use crate::domain::ports::ProfileError;
    use crate::domain::rules::DEFAULT_RULES;
    use crate::edge::Edge;
    use crate::testing::{authenticator, signed_form, status_and_body};

    const PHONE: &str = "phone:+15555550100";
    const RULES: &str = r#"{"rules": [
        {"name": "known-agent", "when": "has(traits.last_known_service_agent) && traits.total_inbounds >= 2",
         "transition": "agent", "attributes": {"known_worker_sid": "traits.last_known_service_agent", "priority": "10"}},
        {"name": "read-docs-recently", "when": "traits.docs_last_2_days > 0", "transition": "agent"}],
        "default": "bot", "on_error": "agent"}"#;

    fn operation(profiles: MemoryProfiles, rules: &str) -> RouteDecision<MemoryProfiles> {
        RouteDecision {
            profiles,
            rules: Arc::new(RuleSet::compile(rules).unwrap().into()),
            updates: NoUpdates,
            deadline: Duration::from_millis(300),
            phone_identifier: "phone".into(),
            response_traits: Arc::default(),
            shadow: Default::default(),
        }
    }

    /// The decision for a signed Studio form with these fields.
    async fn decide(
        operation: RouteDecision<MemoryProfiles>,
        fields: &[(&str, &str)],
    ) -> (Value, MemoryProfiles) {
        let edge = Edge::new(operation, authenticator(false));
        let (status, body) = status_and_body(&edge.handle(signed_form(fields), None).await);
        assert_eq!(status, 200, "{body}");
        (body, edge.operation.profiles)
    }

    fn outcome(body: &Value) -> (&str, &str, bool, bool) {
        (
            body["transition"].as_str().unwrap_or_default(),
            body["rule"].as_str().unwrap_or_default(),
            body["fallback"] == true,
            body["profile_found"] == true,
        )
    }

    #[tokio::test]
    async fn a_customer_who_read_the_docs_goes_to_an_agent_and_only_that_trait_is_read() {
        // GIVEN a customer whose profile counts two docs page views
        let profiles =
            MemoryProfiles::new().with(PHONE, json!({"docs_last_2_days": 2, "vip": true}));
        // WHEN Studio asks for their WhatsApp message
        let (body, profiles) = decide(
            operation(profiles, DEFAULT_RULES),
            &[("From", "whatsapp:+15555550100")],
        )
        .await;
        // THEN an agent, from the recipe's rule, with only the trait it reads asked for
        assert_eq!(outcome(&body), ("agent", "read-docs-recently", false, true));
        assert_eq!(body["attributes"], json!({}));
        let asked = profiles.asked();
        assert_eq!(asked.len(), 1);
        assert_eq!(
            (asked[0].0.as_str(), asked[0].1.included()),
            (PHONE, Some("docs_last_2_days"))
        );
    }

    #[tokio::test]
    async fn without_a_channel_field_the_channel_is_the_one_from_names() {
        let rules = r#"{"rules": [{"name": "by-channel", "when": "true", "transition": "agent",
            "attributes": {"seen": "channel"}}], "default": "bot", "on_error": "agent"}"#;
        let cases: [(&[(&str, &str)], &str); 7] = [
            (&[("From", "whatsapp:+15555550100")], "whatsapp"),
            // Not a phone: the customer comes from another field, the channel still from From.
            (
                &[("From", "messenger:1234567890"), ("user_id", "u-1")],
                "messenger",
            ),
            (&[("From", "client:alice"), ("user_id", "u-1")], "voice"),
            (&[("From", "+15555550100")], "sms"),
            (&[("From", "+15555550100"), ("CallSid", "CA1")], "voice"),
            // A channel field always wins.
            (
                &[("From", "whatsapp:+15555550100"), ("channel", "Chat")],
                "chat",
            ),
            (
                &[
                    ("From", "+15555550100"),
                    ("CallSid", "CA1"),
                    ("channel", "sms"),
                ],
                "sms",
            ),
        ];
        for (fields, expected) in cases {
            let (body, _) = decide(operation(MemoryProfiles::new(), rules), fields).await;
            assert_eq!(body["attributes"]["seen"], expected, "{fields:?}: {body}");
        }
        // An email or a chat identity names no channel: the rules see none.
        let rules = r#"{"rules": [{"name": "no-channel", "when": "channel == null", "transition": "agent"}],
            "default": "bot", "on_error": "agent"}"#;
        let (body, _) = decide(
            operation(MemoryProfiles::new(), rules),
            &[("From", "kim@example.com")],
        )
        .await;
        assert_eq!(body["rule"], "no-channel", "{body}");
    }

    #[tokio::test]
    async fn explain_true_adds_how_each_rule_fared_and_nothing_else_changes() {
        let traits = json!({"docs_last_2_days": "2"});
        let profiles = || MemoryProfiles::new().with(PHONE, traits.clone());
        let (plain, _) = decide(
            operation(profiles(), DEFAULT_RULES),
            &[("From", "+15555550100")],
        )
        .await;
        assert!(
            plain.get("explanation").is_none(),
            "never by default: {plain}"
        );
        let (explained, _) = decide(
            operation(profiles(), DEFAULT_RULES),
            &[("From", "+15555550100"), ("explain", "true")],
        )
        .await;
        assert_eq!(
            explained["explanation"],
            json!([{"rule": "read-docs-recently", "outcome": "wrong_type",
                    "detail": "'>' does not apply to (string, int)"}])
        );
        let mut without = explained.clone();
        without.as_object_mut().map(|o| o.remove("explanation"));
        assert_eq!(without, plain);
    }

    #[tokio::test]
    async fn rules_hand_flex_the_attributes_they_compute() {
        let profiles = MemoryProfiles::new().with(
            PHONE,
            json!({"last_known_service_agent": "WK0000000000000000000000000000aa01", "total_inbounds": 3}),
        );
        let (body, _) = decide(operation(profiles, RULES), &[("From", "+15555550100")]).await;
        assert_eq!(outcome(&body), ("agent", "known-agent", false, true));
        assert_eq!(
            body["attributes"],
            json!({"known_worker_sid": "WK0000000000000000000000000000aa01", "priority": 10})
        );
    }

    #[tokio::test]
    async fn an_unknown_customer_and_a_withheld_caller_go_by_the_default() {
        let (body, _) = decide(
            operation(MemoryProfiles::new(), DEFAULT_RULES),
            &[("From", "+15555550100")],
        )
        .await;
        assert_eq!(outcome(&body), ("bot", "default", false, false));
        let (body, profiles) = decide(
            operation(MemoryProfiles::new(), DEFAULT_RULES),
            &[("From", "+266696687")],
        )
        .await;
        assert_eq!(outcome(&body), ("bot", "default", false, false));
        assert!(
            profiles.asked().is_empty(),
            "a withheld caller is never looked up"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_fails_or_hangs_gives_on_error_within_the_deadline() {
        for profiles in [
            MemoryProfiles::failing(ProfileError::Status(503)),
            MemoryProfiles::failing(ProfileError::RateLimited { retry_after: None }),
            MemoryProfiles::hanging(),
        ] {
            let started = tokio::time::Instant::now();
            let (body, _) = decide(
                operation(profiles, DEFAULT_RULES),
                &[("From", "+15555550100")],
            )
            .await;
            assert_eq!(outcome(&body), ("agent", "on_error", true, false));
            assert!(
                started.elapsed() <= Duration::from_millis(300),
                "{:?}",
                started.elapsed()
            );
        }
    }

    #[tokio::test]
    async fn inline_traits_are_decided_without_a_lookup() {
        let (body, profiles) = decide(
            operation(
                MemoryProfiles::failing(ProfileError::Status(500)),
                DEFAULT_RULES,
            ),
            &[("traits", r#"{"docs_last_2_days": 1}"#), ("channel", "sms")],
        )
        .await;
        assert_eq!(
            outcome(&body),
            ("agent", "read-docs-recently", false, false)
        );
        assert!(profiles.asked().is_empty());
    }

    #[tokio::test]
    async fn unusable_fields_are_400s_that_say_what_was_wrong() {
        let edge = Edge::new(
            operation(MemoryProfiles::new(), DEFAULT_RULES),
            authenticator(false),
        );
        for (fields, code, words) in [
            (
                vec![("Body", "hi")],
                "invalid_identifier",
                "no usable identifier",
            ),
            (
                vec![("From", "07700 900123")],
                "invalid_identifier",
                "From is neither a phone number",
            ),
            (
                vec![("phone", "(555) 555-0100")],
                "invalid_identifier",
                "not a phone number in international format",
            ),
            (
                vec![("traits", "[1]")],
                "invalid_field",
                "traits: must be a JSON object",
            ),
        ] {
            let (status, body) = status_and_body(&edge.handle(signed_form(&fields), None).await);
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some(code)),
                "{fields:?}: {body}"
            );
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(words)),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn the_budget_ends_with_the_invocations_own_deadline() {
        // GIVEN a store that never answers and an invocation with 50 ms left
        let operation = operation(MemoryProfiles::hanging(), DEFAULT_RULES);
        let arrival = Arrival {
            at: Instant::now(),
            answer_by: Instant::now() + Duration::from_millis(50),
        };
        let input = Input::Fields(
            json!({"From": "+15555550100"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        // THEN on_error answers when the invocation's time is up, not the configured 300 ms
        let started = Instant::now();
        let answer = operation.call(input, arrival).await.unwrap();
        assert!(matches!(answer, Answer::Json(ref body) if body["rule"] == "on_error"));
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
    }
}
