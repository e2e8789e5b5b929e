//! wrap-up-ingest's configuration: where Segment is, the deadlines, and how TaskRouter's
//! events map to track messages (the schema, event names and attribute paths).

use std::time::Duration;

use super::{ConfigError, Startup, VariableError, Variables};
use crate::adapters::secrets::{Requirement, SecretCell};
use crate::domain::engagement::{Mapping, Schema};

/// TaskRouter waits 15 s for its callback's answer; finish well before.
const DEFAULT_DEADLINE_MS: u64 = 10_000;
/// Event Streams waits 5 s at most for a webhook sink ("The maximum timeout for a webhook
/// Sink response is 5 seconds", Twilio's Event Streams webhook quickstart), then retries.
const EVENT_STREAMS_LIMIT_MS: u64 = 4_500;

/// wrap-up-ingest's configuration.
pub struct WrapUpIngestConfig {
    pub write_key: SecretCell,
    pub tracking_api_url: String,
    pub deadline: Duration,
    pub event_streams_deadline: Duration,
    pub mapping: Mapping,
}

impl WrapUpIngestConfig {
    pub fn read(startup: &Startup<'_>) -> Result<Self, ConfigError> {
        let vars = &startup.vars;
        let write_key = super::runtime::required_secret(
            vars,
            "SEGMENT_WRITE_KEY",
            Requirement::Any,
            &startup.extension,
        )?;
        let tracking_api_url = vars.url("SEGMENT_TRACKING_API_URL", "https://api.segment.io")?;
        let deadline = vars.millis("DELIVERY_DEADLINE_MS", DEFAULT_DEADLINE_MS, 500..=14_000)?;
        let event_streams_deadline = vars
            .millis(
                "EVENT_STREAMS_DEADLINE_MS",
                EVENT_STREAMS_LIMIT_MS,
                500..=EVENT_STREAMS_LIMIT_MS,
            )?
            .min(deadline);
        Ok(Self {
            write_key,
            tracking_api_url,
            deadline,
            event_streams_deadline,
            mapping: mapping(vars)?,
        })
    }
}

/// The schema, event names and attribute paths, each overridable; paths are comma lists of
/// dotted paths.
fn mapping(vars: &Variables<'_>) -> Result<Mapping, VariableError> {
    let schema =
        Schema::named(vars.choice("EVENT_SCHEMA", &Schema::NAMES, "seed")?).unwrap_or(Schema::Seed);
    let defaults = Mapping::for_schema(schema);
    let list = |name: &'static str, default: Vec<String>| -> Result<Vec<String>, VariableError> {
        let Some(raw) = vars.optional(name) else {
            return Ok(default);
        };
        let paths: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if paths.is_empty() || paths.iter().any(|p| p.split('.').any(str::is_empty)) {
            return Err(VariableError::Invalid { name, problem: "must be a comma list of attribute paths such as customerAddress,customers.phone".into() });
        }
        Ok(paths)
    };
    // The older names (from the seed guide's event names) are still read.
    let event = |name: &str, older: &str, default: String| {
        vars.optional(name)
            .or_else(|| vars.optional(older))
            .unwrap_or(default)
    };
    Ok(Mapping {
        schema,
        wrap_up_event: event(
            "WRAP_UP_EVENT",
            "ENGAGEMENT_COMPLETED_EVENT",
            defaults.wrap_up_event,
        ),
        completed_event: event(
            "COMPLETION_EVENT",
            "WRAP_UP_COMPLETED_EVENT",
            defaults.completed_event,
        ),
        inbound_address_paths: list("CUSTOMER_ADDRESS_PATHS", defaults.inbound_address_paths)?,
        outbound_address_paths: list(
            "OUTBOUND_CUSTOMER_ADDRESS_PATHS",
            defaults.outbound_address_paths,
        )?,
        email_paths: list("CUSTOMER_EMAIL_PATHS", defaults.email_paths)?,
        user_id_paths: list("USER_ID_PATHS", defaults.user_id_paths)?,
        topic_paths: list("TOPIC_PATHS", defaults.topic_paths)?,
        sentiment_paths: list("SENTIMENT_PATHS", defaults.sentiment_paths)?,
        disposition_code_paths: list("DISPOSITION_CODE_PATHS", defaults.disposition_code_paths)?,
        phone_identifier: super::phone_identifier(vars)?,
    })
}
