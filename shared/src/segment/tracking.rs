//! Segment's HTTP Tracking API: messages out in `/v1/batch` requests, every one accepted or
//! reported as not.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::Value;

use crate::config::Secret;
use crate::http_client::{HttpClient, retry_after, root_cause};

/// Segment refuses a message over 32 KB and a request over 500 KB (with 400); stay under both
/// with room for the envelope.
pub const MAX_MESSAGE_BYTES: usize = 32_000;
pub const MAX_BATCH_BYTES: usize = 490_000;
/// Segment's cap on messages in one batch.
pub const MAX_BATCH_MESSAGES: usize = 2_500;

/// One attempt may not use the whole deadline: a hung request must leave time to retry.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackingError {
    #[error("message {message_id} is {bytes} bytes, over Segment's 32 KB limit")]
    MessageTooLarge { message_id: String, bytes: usize },
    #[error("Segment's Tracking API refused the batch (HTTP {status}); check SEGMENT_WRITE_KEY")]
    Refused { status: u16 },
    #[error("Segment's Tracking API did not accept the batch before the deadline: {last_problem}")]
    NotAccepted { last_problem: String },
    #[error("{0}")]
    Client(String),
}

#[derive(Clone)]
pub struct TrackingApi {
    http: HttpClient,
    batch_url: String,
    authorization: HeaderValue,
}

/// What a successful delivery took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub messages: usize,
    pub requests: usize,
    pub retries: usize,
}

impl TrackingApi {
    pub fn new(base_url: &str, write_key: &Secret, http: HttpClient) -> Self {
        // Basic auth with the write key as user name and an empty password.
        let mut authorization = HeaderValue::from_str(&format!(
            "Basic {}",
            STANDARD.encode(format!("{}:", write_key.expose()))
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
        authorization.set_sensitive(true);
        Self {
            http,
            batch_url: format!("{base_url}/v1/batch"),
            authorization,
        }
    }

    pub fn prepare(&self) {
        if let Err(error) = self.http.get() {
            tracing::error!(%error, "could not prepare the Tracking API client");
        }
    }

    /// Sends every message, in as few `/v1/batch` requests as the size limits allow, each
    /// retried on network errors, timeouts, 5xx and 429 (honouring `Retry-After`) until
    /// `deadline`. Retrying is safe: Segment deduplicates by messageId. `sentAt` is now, so
    /// Segment can correct the clock skew of the events' own timestamps.
    pub async fn send(
        &self,
        messages: &[Value],
        deadline: Instant,
    ) -> Result<Delivered, TrackingError> {
        let sent_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let batches = batches(messages, &sent_at)?;
        let mut delivered = Delivered {
            messages: messages.len(),
            requests: 0,
            retries: 0,
        };
        for body in batches {
            delivered.retries += self.post(body, deadline).await?;
            delivered.requests += 1;
        }
        Ok(delivered)
    }

    /// One batch until accepted; the number of retries it took.
    async fn post(&self, body: Vec<u8>, deadline: Instant) -> Result<usize, TrackingError> {
        let client = self
            .http
            .get()
            .map_err(|e| TrackingError::Client(e.to_string()))?;
        let mut backoff = FIRST_BACKOFF;
        let mut retries = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let sent = client
                .post(&self.batch_url)
                .header(AUTHORIZATION, self.authorization.clone())
                .header(CONTENT_TYPE, "application/json")
                .timeout(ATTEMPT_TIMEOUT.min(remaining))
                .body(body.clone())
                .send()
                .await;
            let (problem, wait) = match sent {
                Ok(response) if response.status().is_success() => return Ok(retries),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = retry_after(&response);
                    match status {
                        429 => (
                            format!("HTTP 429 (Retry-After {retry_after:?})"),
                            retry_after.unwrap_or(backoff),
                        ),
                        500..=599 => (format!("HTTP {status}"), backoff),
                        // 4xx: the request itself is wrong (write key, size); repeating it cannot help.
                        _ => return Err(TrackingError::Refused { status }),
                    }
                }
                Err(error) => (
                    if error.is_timeout() {
                        "timed out".to_owned()
                    } else {
                        root_cause(&error)
                    },
                    backoff,
                ),
            };
            if Instant::now() + wait >= deadline {
                return Err(TrackingError::NotAccepted {
                    last_problem: problem,
                });
            }
            tracing::debug!(problem = %problem, wait_ms = wait.as_millis() as u64, "Tracking API attempt failed; retrying");
            tokio::time::sleep(wait).await;
            retries += 1;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Request bodies `{"batch": [...], "sentAt": ...}`, each under the size and count limits.
pub fn batches(messages: &[Value], sent_at: &str) -> Result<Vec<Vec<u8>>, TrackingError> {
    let head = br#"{"batch":["#;
    let tail = format!(r#"],"sentAt":"{sent_at}"}}"#).into_bytes();
    let envelope = head.len() + tail.len();
    let mut bodies = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut count = 0;
    for message in messages {
        let encoded =
            serde_json::to_vec(message).map_err(|e| TrackingError::Client(e.to_string()))?;
        if encoded.len() > MAX_MESSAGE_BYTES {
            let message_id = message
                .get("messageId")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            return Err(TrackingError::MessageTooLarge {
                message_id,
                bytes: encoded.len(),
            });
        }
        let separator = usize::from(count > 0);
        if count > 0
            && (envelope + current.len() + separator + encoded.len() > MAX_BATCH_BYTES
                || count == MAX_BATCH_MESSAGES)
        {
            bodies.push(finish(head, &current, &tail));
            current.clear();
            count = 0;
        }
        if count > 0 {
            current.push(b',');
        }
        current.extend_from_slice(&encoded);
        count += 1;
    }
    if count > 0 {
        bodies.push(finish(head, &current, &tail));
    }
    Ok(bodies)
}

fn finish(head: &[u8], messages: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(head.len() + messages.len() + tail.len());
    body.extend_from_slice(head);
    body.extend_from_slice(messages);
    body.extend_from_slice(tail);
    body
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message(i: usize, padding: usize) -> Value {
        json!({"type": "track", "event": "e", "messageId": format!("m-{i}"), "anonymousId": "a", "properties": {"pad": "x".repeat(padding)}})
    }

    #[test]
    fn a_small_delivery_is_one_batch_request() {
        let messages: Vec<Value> = (0..3).map(|i| message(i, 10)).collect();
        let bodies = batches(&messages, "2026-11-22T00:00:00.000Z").unwrap();
        assert_eq!(bodies.len(), 1);
        let body: Value = serde_json::from_slice(&bodies[0]).unwrap();
        assert_eq!(body["batch"].as_array().unwrap().len(), 3);
        assert_eq!(body["sentAt"], "2026-11-22T00:00:00.000Z");
        assert!(batches(&[], "t").unwrap().is_empty());
    }

    #[test]
    fn large_deliveries_split_under_500_kb_keeping_every_message_once() {
        let messages: Vec<Value> = (0..2000).map(|i| message(i, 1000)).collect();
        let bodies = batches(&messages, "2026-11-22T00:00:00.000Z").unwrap();
        assert!(bodies.len() >= 4, "{} requests", bodies.len());
        let mut ids = Vec::new();
        for body in &bodies {
            assert!(body.len() <= MAX_BATCH_BYTES, "{} bytes", body.len());
            let parsed: Value = serde_json::from_slice(body).unwrap();
            ids.extend(
                parsed["batch"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["messageId"].as_str().unwrap().to_owned()),
            );
        }
        let expected: Vec<String> = (0..2000).map(|i| format!("m-{i}")).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn no_batch_holds_more_than_2500_messages() {
        let messages: Vec<Value> = (0..2600).map(|i| json!({"messageId": i})).collect();
        let bodies = batches(&messages, "t").unwrap();
        let counts: Vec<usize> = bodies
            .iter()
            .map(|b| {
                serde_json::from_slice::<Value>(b).unwrap()["batch"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(counts, [2500, 100]);
    }

    #[test]
    fn a_message_over_32_kb_is_refused_by_name() {
        let error = batches(&[message(7, 40_000)], "t").unwrap_err();
        assert!(
            matches!(error, TrackingError::MessageTooLarge { ref message_id, .. } if message_id == "m-7")
        );
    }
}
