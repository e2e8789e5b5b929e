//! wrap-up-ingest: Flex wrap-up and completion events into Segment, with nothing lost.
//!
//! It acknowledges (204) only once Segment accepted every message; otherwise it answers 502
//! so TaskRouter or Event Streams redelivers, and the deterministic messageIds make the
//! redelivery safe.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::{ConfigError, Environment, Reader};
use crate::edge::{Answer, Edge, Failure, Operation};
use crate::engagement::{Mapped, Mapping};
use crate::http_client::HttpClient;
use crate::segment::tracking::{TrackingApi, TrackingError};
use crate::taskrouter;

/// TaskRouter waits 15 s for its callback's answer; finish well before.
const DEFAULT_DEADLINE_MS: u64 = 10_000;

pub struct WrapUpIngest {
    pub tracking: TrackingApi,
    pub mapping: Mapping,
    pub deadline: Duration,
}

/// Reads wrap-up-ingest's configuration and builds its client.
pub async fn load(env: &dyn Environment) -> Result<Edge<WrapUpIngest>, ConfigError> {
    let http = HttpClient::new(Duration::from_secs(2));
    let reader = Reader::new(env, &http);
    let write_key = reader.required_secret("SEGMENT_WRITE_KEY").await?;
    let base_url = reader.url("SEGMENT_TRACKING_API_URL", "https://api.segment.io")?;
    let deadline = reader.millis("DELIVERY_DEADLINE_MS", DEFAULT_DEADLINE_MS, 500..=14_000)?;
    let mapping = mapping(&reader)?;
    let auth = reader.authenticator().await?;
    Ok(Edge::new(
        WrapUpIngest {
            tracking: TrackingApi::new(&base_url, &write_key, http),
            mapping,
            deadline,
        },
        auth,
    ))
}

/// Event names and attribute paths, each overridable; paths are comma lists of dotted paths.
fn mapping(reader: &Reader<'_>) -> Result<Mapping, ConfigError> {
    let defaults = Mapping::default();
    let list = |name: &'static str, default: Vec<String>| -> Result<Vec<String>, ConfigError> {
        let Some(raw) = reader.optional(name) else {
            return Ok(default);
        };
        let paths: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if paths.is_empty() || paths.iter().any(|p| p.split('.').any(str::is_empty)) {
            return Err(ConfigError::Invalid { name, problem: "must be a comma list of attribute paths such as customerAddress,customers.phone".into() });
        }
        Ok(paths)
    };
    Ok(Mapping {
        engagement_completed_event: reader
            .optional("ENGAGEMENT_COMPLETED_EVENT")
            .unwrap_or(defaults.engagement_completed_event),
        wrap_up_completed_event: reader
            .optional("WRAP_UP_COMPLETED_EVENT")
            .unwrap_or(defaults.wrap_up_completed_event),
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
        phone_identifier: reader
            .optional("SEGMENT_PHONE_IDENTIFIER")
            .unwrap_or(defaults.phone_identifier),
    })
}

impl From<TrackingError> for Failure {
    fn from(error: TrackingError) -> Self {
        Failure::new(
            502,
            "delivery_failed",
            format!("{error}; nothing was acknowledged, redeliver the event"),
        )
    }
}

impl Operation for WrapUpIngest {
    /// Lambda's own limit for a synchronous request: an Event Streams batch can be large.
    const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

    async fn call(&self, input: Value) -> Result<Answer, Failure> {
        let started = Instant::now();
        let delivery = taskrouter::decode(input);
        let received = delivery.events.len();
        let mut messages = Vec::new();
        let (mut ignored, mut skipped) = (0, 0);
        for event in delivery.events {
            let mapped = match event {
                Ok(event) => self.mapping.map(&event).map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            match mapped {
                Ok(Mapped::Track(message)) => messages.push(message),
                Ok(Mapped::Ignored) => ignored += 1,
                // A single event that cannot be used is the sender's to fix; inside a batch it
                // must not hold back the others, so it is reported here and skipped.
                Err(problem) if !delivery.is_batch => {
                    return Err(Failure::bad_request("invalid_event", problem));
                }
                Err(problem) => {
                    tracing::warn!(problem = %problem, "event skipped");
                    skipped += 1;
                }
            }
        }
        if messages.is_empty() {
            tracing::info!(received, ignored, skipped, sent = 0, "wrap-up delivery");
            return Ok(Answer::Accepted);
        }
        let deadline = started + self.deadline;
        match self.tracking.send(&messages, deadline).await {
            Ok(delivered) => {
                tracing::info!(
                    received,
                    ignored,
                    skipped,
                    sent = delivered.messages,
                    requests = delivered.requests,
                    retries = delivered.retries,
                    latency_us = started.elapsed().as_micros() as u64,
                    "wrap-up delivery"
                );
                Ok(Answer::Accepted)
            }
            Err(error) => {
                tracing::error!(received, error = %error, latency_us = started.elapsed().as_micros() as u64, "wrap-up delivery not accepted");
                Err(error.into())
            }
        }
    }

    async fn warm_up(&self) {
        self.tracking.prepare();
    }
}
