//! Segment's HTTP Tracking API: messages out in `/v1/batch` requests, every one accepted or
//! reported as not.
//!
//! Segment answers 200 even to a wrong write key and drops the events (its edge is
//! stateless: maintainers in analytics-node issue 59 and analytics-ruby issue 136), so a 200
//! means "received", not "stored": check a new key in the source's debugger.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use crate::adapters::http_client::{HttpClient, basic_authorization, retry_after, root_cause};
use crate::adapters::retry::{Attempted, Retries};
use crate::adapters::secrets::SecretCell;
use crate::domain::ports::{Delivered, TrackingError, Undelivered};
use crate::domain::timestamps::Timestamp;
pub use crate::domain::track_message::{EncodedMessage, MAX_MESSAGE_BYTES};
use crate::support::metrics::{self, Counter};

/// Segment refuses a request over 500 KB with 400; stay under it with room for the envelope.
pub const MAX_BATCH_BYTES: usize = 490_000;
/// Segment's cap on messages in one batch.
pub const MAX_BATCH_MESSAGES: usize = 2_500;

/// A batch's retries: up to 8 attempts, each at most 3 s (a hung request must leave time to
/// retry), waiting 100 ms doubling to 2 s between them (longer when `Retry-After` says so),
/// and a retry only with 100 ms left after its wait.
pub const RETRIES: Retries = Retries {
    max_attempts: 8,
    attempt_timeout: Duration::from_secs(3),
    min_attempt: Duration::from_millis(100),
    first_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_secs(2),
};

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
    /// longer when `Retry-After` says so) until `deadline` or the attempts run out ([`RETRIES`]). Retrying is
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

    /// One batch until accepted, through the retry loop; the number of retries it took.
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
        let request = client
            .post(&self.batch_url)
            .header(AUTHORIZATION, authorization.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let expired = || TrackingError::NotAccepted {
            attempts: 0,
            last_problem: "no time left before the deadline".into(),
        };
        RETRIES
            .run(deadline, expired, |timeout, number| {
                attempt(&request, timeout, number)
            })
            .await
            .map(|((), retries)| retries)
    }
}

/// One attempt of a batch: retried on network errors, timeouts, 5xx and 429 (waiting at least
/// the back-off, longer when `Retry-After` says so); a 3xx or another 4xx is final.
async fn attempt(
    request: &reqwest::RequestBuilder,
    timeout: Duration,
    number: usize,
) -> Attempted<(), TrackingError> {
    metrics::add(Counter::SegmentBatchRequests, 1);
    if number > 1 {
        metrics::add(Counter::SegmentBatchRetries, 1);
    }
    let Some(request) = request.try_clone() else {
        return Attempted::Done(Err(TrackingError::Client(
            "the batch cannot be sent again".into(),
        )));
    };
    let retry = |last_problem: String, wait: Duration| Attempted::Retry {
        error: TrackingError::NotAccepted {
            attempts: number,
            last_problem,
        },
        wait,
    };
    match request.timeout(timeout).send().await {
        Ok(response) if response.status().is_success() => Attempted::Done(Ok(())),
        Ok(response) => match response.status().as_u16() {
            // Retry-After may say 0 (or nothing): the back-off still applies (the loop waits
            // at least that), or a throttled space would be sent a storm of retries.
            429 => {
                let retry_after = retry_after(&response);
                let said = retry_after.map_or("none".to_owned(), |d| format!("{} s", d.as_secs()));
                retry(
                    format!("HTTP 429 (Retry-After {said})"),
                    retry_after.unwrap_or_default(),
                )
            }
            status @ 500..=599 => retry(format!("HTTP {status}"), Duration::ZERO),
            status @ 300..=399 => Attempted::Done(Err(TrackingError::Redirected { status })),
            // 4xx: the request itself is wrong; repeating it cannot help.
            status => Attempted::Done(Err(TrackingError::Refused { status })),
        },
        Err(error) if error.is_timeout() => {
            retry("the request timed out".to_owned(), Duration::ZERO)
        }
        Err(error) => retry(root_cause(&error), Duration::ZERO),
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
/// [`TrackMessage::encode`]: crate::domain::track_message::TrackMessage::encode
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
