//! Segment's HTTP Tracking API: messages out in `/v1/batch` requests, every one accepted or
//! reported as not.
//!
//! Segment answers 200 even to a wrong write key and drops the events (its edge is
//! stateless: maintainers in analytics-node issue 59 and analytics-ruby issue 136), so a 200
//! means "received", not "stored": check a new key in the source's debugger.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use crate::http_client::{HttpClient, basic_authorization, retry_after, root_cause};
use crate::metrics::{self, Counter};
use crate::ports::{Delivered, TrackingError, Undelivered};
use crate::secrets::SecretCell;
use crate::timestamps::Timestamp;
pub use crate::track_message::{EncodedMessage, MAX_MESSAGE_BYTES};

/// Segment refuses a request over 500 KB with 400; stay under it with room for the envelope.
pub const MAX_BATCH_BYTES: usize = 490_000;
/// Segment's cap on messages in one batch.
pub const MAX_BATCH_MESSAGES: usize = 2_500;

/// One attempt may not use the whole deadline: a hung request must leave time to retry.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// The least time an attempt is given; one with less would only time out.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Attempts per batch, whatever the deadline and `Retry-After` allow.
pub const MAX_ATTEMPTS: usize = 8;

#[derive(Clone)]
pub struct TrackingApi {
    http: HttpClient,
    batch_url: String,
    write_key: Arc<SecretCell>,
}

impl TrackingApi {
    pub fn new(base_url: &str, write_key: SecretCell, http: HttpClient) -> Self {
        Self {
            http,
            batch_url: format!("{base_url}/v1/batch"),
            write_key: Arc::new(write_key),
        }
    }

    /// Builds the HTTPS client and fetches the write key, sending nothing to Segment.
    pub async fn warm_up(&self) {
        if let Err(error) = self.http.client() {
            tracing::error!(%error, "could not prepare the Tracking API client");
        }
        self.write_key.warm_up().await;
    }

    /// Basic auth with the write key as user name and an empty password; a key not yet held
    /// is waited for until `deadline`.
    async fn authorization(&self, deadline: Instant) -> Result<HeaderValue, TrackingError> {
        let key = self
            .write_key
            .get(deadline)
            .await
            .map_err(TrackingError::WriteKey)?;
        basic_authorization(key.expose())
            .ok_or_else(|| TrackingError::Client("the write key cannot be sent".into()))
    }

    /// Sends every message, in as few `/v1/batch` requests as the size limits allow, each
    /// retried on network errors, timeouts, 5xx and 429 (waiting at least the back-off,
    /// longer when `Retry-After` says so) until `deadline` or [`MAX_ATTEMPTS`]. Retrying is
    /// safe: Segment deduplicates by messageId. `sentAt` is now, so Segment can correct the
    /// clock skew of the events' own timestamps. The batches go out in order and the first
    /// that is not accepted ends the delivery: what came before it was accepted.
    pub async fn send(
        &self,
        messages: &[EncodedMessage],
        deadline: Instant,
    ) -> Result<Delivered, Undelivered> {
        let nothing = |error| Undelivered { error, accepted: 0 };
        let authorization = self.authorization(deadline).await.map_err(nothing)?;
        let sent_at = Timestamp::now().map(Timestamp::to_rfc3339);
        let mut delivered = Delivered {
            messages: messages.len(),
            requests: 0,
            retries: 0,
        };
        let mut accepted = 0;
        for batch in batches(messages, sent_at.as_deref()) {
            delivered.retries += self
                .post(batch.body, &authorization, deadline)
                .await
                .map_err(|error| Undelivered { error, accepted })?;
            delivered.requests += 1;
            accepted += batch.messages;
        }
        Ok(delivered)
    }

    /// One batch until accepted; the number of retries it took.
    async fn post(
        &self,
        body: Vec<u8>,
        authorization: &HeaderValue,
        deadline: Instant,
    ) -> Result<usize, TrackingError> {
        let client = self
            .http
            .client()
            .map_err(|e| TrackingError::Client(e.to_string()))?;
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0;
        loop {
            attempts += 1;
            metrics::add(Counter::SegmentBatchRequests, 1);
            if attempts > 1 {
                metrics::add(Counter::SegmentBatchRetries, 1);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let sent = client
                .post(&self.batch_url)
                .header(AUTHORIZATION, authorization.clone())
                .header(CONTENT_TYPE, "application/json")
                .timeout(ATTEMPT_TIMEOUT.min(remaining).max(MIN_ATTEMPT))
                .body(body.clone())
                .send()
                .await;
            let (problem, wait) = match sent {
                Ok(response) if response.status().is_success() => return Ok(attempts - 1),
                Ok(response) => {
                    let status = response.status().as_u16();
                    match status {
                        // Retry-After may say 0 (or nothing): the back-off still applies, or
                        // a throttled space would be sent a storm of retries.
                        429 => {
                            let retry_after = retry_after(&response);
                            (
                                format!(
                                    "HTTP 429 (Retry-After {})",
                                    retry_after.map_or("none".to_owned(), |d| format!(
                                        "{} s",
                                        d.as_secs()
                                    ))
                                ),
                                retry_after.unwrap_or_default().max(backoff),
                            )
                        }
                        500..=599 => (format!("HTTP {status}"), backoff),
                        300..=399 => return Err(TrackingError::Redirected { status }),
                        // 4xx: the request itself is wrong; repeating it cannot help.
                        _ => return Err(TrackingError::Refused { status }),
                    }
                }
                Err(error) => (
                    if error.is_timeout() {
                        "the request timed out".to_owned()
                    } else {
                        root_cause(&error)
                    },
                    backoff,
                ),
            };
            if attempts >= MAX_ATTEMPTS || Instant::now() + wait + MIN_ATTEMPT >= deadline {
                return Err(TrackingError::NotAccepted {
                    attempts,
                    last_problem: problem,
                });
            }
            tracing::debug!(problem = %problem, wait_ms = wait.as_millis() as u64, "Tracking API attempt failed; retrying");
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// One `/v1/batch` request's body, and how many messages it carries.
pub struct Batch {
    pub body: Vec<u8>,
    pub messages: usize,
}

/// Request bodies `{"batch": [...], "sentAt": ...}`, each under the size and count limits.
/// Every message is already under [`MAX_MESSAGE_BYTES`] ([`TrackMessage::encode`]).
///
/// [`TrackMessage::encode`]: crate::track_message::TrackMessage::encode
pub fn batches(messages: &[EncodedMessage], sent_at: Option<&str>) -> Vec<Batch> {
    let head = br#"{"batch":["#;
    let tail = match sent_at {
        Some(sent_at) => format!(r#"],"sentAt":"{sent_at}"}}"#).into_bytes(),
        None => b"]}".to_vec(),
    };
    let envelope = head.len() + tail.len();
    let mut bodies = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut count = 0;
    for message in messages {
        let encoded = &message.json;
        let separator = usize::from(count > 0);
        if count > 0
            && (envelope + current.len() + separator + encoded.len() > MAX_BATCH_BYTES
                || count == MAX_BATCH_MESSAGES)
        {
            bodies.push(Batch {
                body: finish(head, &current, &tail),
                messages: count,
            });
            current.clear();
            count = 0;
        }
        if count > 0 {
            current.push(b',');
        }
        current.extend_from_slice(encoded);
        count += 1;
    }
    if count > 0 {
        bodies.push(Batch {
            body: finish(head, &current, &tail),
            messages: count,
        });
    }
    bodies
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
    use serde_json::{Value, json};

    use super::*;

    fn message(i: usize, padding: usize) -> EncodedMessage {
        let value = json!({"type": "track", "event": "e", "messageId": format!("m-{i}"), "anonymousId": "a", "properties": {"pad": "x".repeat(padding)}});
        EncodedMessage {
            message_id: format!("m-{i}"),
            json: serde_json::to_vec(&value).unwrap(),
        }
    }

    #[test]
    fn a_small_delivery_is_one_batch_request() {
        let messages: Vec<EncodedMessage> = (0..3).map(|i| message(i, 10)).collect();
        let bodies = batches(&messages, Some("2026-11-22T00:00:00.000Z"));
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0].messages, 3);
        let body: Value = serde_json::from_slice(&bodies[0].body).unwrap();
        assert_eq!(body["batch"].as_array().unwrap().len(), 3);
        assert_eq!(body["sentAt"], "2026-11-22T00:00:00.000Z");
        assert!(batches(&[], Some("t")).is_empty());
    }

    #[test]
    fn large_deliveries_split_under_500_kb_keeping_every_message_once() {
        let messages: Vec<EncodedMessage> = (0..2000).map(|i| message(i, 1000)).collect();
        let bodies = batches(&messages, Some("2026-11-22T00:00:00.000Z"));
        assert!(bodies.len() >= 4, "{} requests", bodies.len());
        let mut ids = Vec::new();
        for batch in &bodies {
            let body = &batch.body;
            assert!(body.len() <= MAX_BATCH_BYTES, "{} bytes", body.len());
            let parsed: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(parsed["batch"].as_array().unwrap().len(), batch.messages);
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
        let messages: Vec<EncodedMessage> = (0..2600).map(|i| message(i, 0)).collect();
        let bodies = batches(&messages, None);
        let counts: Vec<usize> = bodies
            .iter()
            .map(|b| {
                serde_json::from_slice::<Value>(&b.body).unwrap()["batch"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(counts, [2500, 100]);
    }
}
