//! The trait store on DynamoDB (issue 30), spoken over its JSON API with requests signed by
//! AWS's own signer (`aws-sigv4`) and sent by the function's one HTTPS client: the SDK would
//! add megabytes and tens of milliseconds to every cold start for two operations
//! (perf/README.md, "The trait store").
//!
//! One item per identifier: `id` (`phone:+15555550100`), `traits` (a map), `at` (each trait's
//! event time, epoch ms), `expires_at` (epoch seconds, the table's TTL attribute) and
//! `version`. A write reads the item, applies the domain's newer-wins rule
//! ([`StoredTraits::apply`]) and puts it back on condition that nobody wrote in between; a
//! lost race reads again. Attributes the store does not know are kept.

mod attributes;
mod signing;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

pub use signing::{AwsCredentials, Signer};

use crate::adapters::http_client::{HttpClient, root_cause};
use crate::adapters::retry::{Attempted, Retries};
use crate::domain::identity::Identifier;
use crate::domain::ports::{StoreError, TraitStore};
use crate::domain::timestamps::Timestamp;
use crate::domain::trait_store::StoredTraits;

/// A read has the store's budget: a second try only if the first failed fast.
const READS: Retries = Retries {
    max_attempts: 2,
    attempt_timeout: Duration::from_millis(1000),
    min_attempt: Duration::from_millis(20),
    first_backoff: Duration::ZERO,
    max_backoff: Duration::ZERO,
};

/// A write retries a lost race and a throttle after a short back-off, within the delivery's
/// deadline (under the 5 s Segment waits for a Lambda destination). Among writers racing for
/// one item each round has a winner, so the last needs as many attempts as there are writers:
/// Engage sends one event per identifier value, and a merge several at once.
const WRITES: Retries = Retries {
    max_attempts: 12,
    attempt_timeout: Duration::from_millis(1500),
    min_attempt: Duration::from_millis(50),
    first_backoff: Duration::from_millis(25),
    max_backoff: Duration::from_millis(400),
};

/// DynamoDB's largest item is 400 KB of names and values; its JSON form here is larger than
/// that size, so an item is refused a little early rather than ever late.
const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The endpoint is not a URL with a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a URL with a host: {0}")]
pub struct EndpointError(String);

/// Where the table is and how to reach it.
pub struct DynamoConfig {
    pub table: String,
    /// `https://dynamodb.{region}.amazonaws.com`, or `AWS_ENDPOINT_URL_DYNAMODB`.
    pub endpoint: String,
    pub signer: Signer,
    /// An item expires this long after its last write (`TRAIT_STORE_TTL_DAYS`).
    pub ttl: Duration,
}

pub struct DynamoTraitStore {
    http: HttpClient,
    config: DynamoConfig,
    url: String,
    host: String,
}

/// How one call failed.
enum CallFailure {
    /// The write's condition failed: another write came first.
    Conflict,
    /// Worth another attempt (a throttle, a 5xx, no answer).
    Retry(StoreError),
    /// Repeating cannot change it (a missing table, a refused request).
    Final(StoreError),
}

impl CallFailure {
    fn attempted<T>(self) -> Attempted<T, StoreError> {
        match self {
            Self::Conflict => Attempted::Retry {
                error: StoreError::Refused("another write kept winning".into()),
                wait: Duration::ZERO,
            },
            Self::Retry(error) => Attempted::Retry {
                error,
                wait: Duration::ZERO,
            },
            Self::Final(error) => Attempted::Done(Err(error)),
        }
    }
}

impl DynamoTraitStore {
    pub fn new(config: DynamoConfig, http: HttpClient) -> Result<Self, EndpointError> {
        let url =
            reqwest::Url::parse(&config.endpoint).map_err(|e| EndpointError(e.to_string()))?;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(EndpointError(config.endpoint.clone())),
        };
        Ok(Self {
            http,
            url: url.to_string(),
            host,
            config,
        })
    }

    /// One DynamoDB operation within `timeout`: its answer's JSON, or how it failed.
    async fn call(
        &self,
        operation: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, CallFailure> {
        let client = self
            .http
            .client()
            .map_err(|e| CallFailure::Final(StoreError::Unavailable(e.to_string())))?;
        let body = body.to_string();
        let target = format!("DynamoDB_20120810.{operation}");
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", target.as_str()),
            ("host", self.host.as_str()),
        ];
        let signed = self
            .config
            .signer
            .sign(&self.url, &headers, body.as_bytes())
            .map_err(|e| CallFailure::Final(StoreError::Refused(e.to_string())))?;
        let mut request = client.post(&self.url).timeout(timeout).body(body);
        for (name, value) in headers.iter().filter(|(name, _)| *name != "host") {
            request = request.header(*name, *value);
        }
        for (name, value) in &signed {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| {
            CallFailure::Retry(if e.is_timeout() {
                StoreError::Timeout(timeout.as_millis() as u64)
            } else {
                StoreError::Unavailable(root_cause(&e))
            })
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| CallFailure::Retry(StoreError::Unavailable(root_cause(&e))))?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        Err(failure(status.as_u16(), &answer))
    }

    /// The item under `key`, read consistently when a write is to follow.
    async fn item(
        &self,
        key: &str,
        consistent: bool,
        timeout: Duration,
    ) -> Result<Map<String, Value>, CallFailure> {
        let body = json!({
            "TableName": self.config.table,
            "Key": {"id": {"S": key}},
            "ConsistentRead": consistent,
        });
        let answer = self.call("GetItem", &body, timeout).await?;
        Ok(answer
            .get("Item")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default())
    }

    /// One read-apply-put of `traits` at `at_ms`; nothing is put when nothing is newer. Only
    /// the traits written change: a stored value this code cannot read (a set, put there by
    /// other means) is put back as it was.
    async fn write_once(
        &self,
        key: &str,
        traits: &Map<String, Value>,
        at_ms: u64,
        timeout: Duration,
    ) -> Attempted<Vec<String>, StoreError> {
        let mut item = match self.item(key, true, timeout).await {
            Ok(item) => item,
            Err(failure) => return failure.attempted(),
        };
        let now = epoch_seconds();
        // An expired item (not yet deleted) starts again from nothing.
        let live = stored_traits(&item, now);
        let mut stored = live.clone().unwrap_or_default();
        let written = stored.apply(traits, at_ms);
        if written.is_empty() {
            return Attempted::Done(Ok(written));
        }
        let kept = |name: &str| match live {
            Some(_) => raw_map(&item, name),
            None => Map::new(),
        };
        let (mut raw_traits, mut raw_at) = (kept("traits"), kept("at"));
        for name in &written {
            if let Some(value) = stored.traits.get(name).and_then(attributes::to_attribute) {
                raw_traits.insert(name.clone(), value);
                raw_at.insert(name.clone(), json!({"N": at_ms.to_string()}));
            }
        }
        // The version as read, whatever its type: the condition compares it as it is.
        let version = item.get("version").cloned();
        let next = version
            .as_ref()
            .and_then(|v| v.get("N")?.as_str()?.parse::<u64>().ok())
            .map_or(1, |v| v.saturating_add(1));
        let expires = now + self.config.ttl.as_secs();
        item.insert("id".into(), json!({"S": key}));
        item.insert("traits".into(), json!({"M": raw_traits}));
        item.insert("at".into(), json!({"M": raw_at}));
        item.insert("expires_at".into(), json!({"N": expires.to_string()}));
        item.insert("version".into(), json!({"N": next.to_string()}));
        if Value::Object(item.clone()).to_string().len() > MAX_ITEM_BYTES {
            return Attempted::Done(Err(StoreError::TooLarge));
        }
        let mut put = json!({
            "TableName": self.config.table,
            "Item": item,
            "ExpressionAttributeNames": {"#v": "version"},
            "ConditionExpression": "attribute_not_exists(#v)",
        });
        if let Some(version) = version {
            put["ConditionExpression"] = json!("#v = :v");
            put["ExpressionAttributeValues"] = json!({":v": version});
        }
        match self.call("PutItem", &put, timeout).await {
            Ok(_) => Attempted::Done(Ok(written)),
            Err(failure) => failure.attempted(),
        }
    }
}

impl TraitStore for DynamoTraitStore {
    async fn read(
        &self,
        identifier: &Identifier,
        deadline: Instant,
    ) -> Result<Option<StoredTraits>, StoreError> {
        let key = store_key(identifier);
        let key = key.as_str();
        let expired = || StoreError::Timeout(READS.attempt_timeout.as_millis() as u64);
        let (item, _) = READS
            .run(deadline, expired, |timeout, _| async move {
                match self.item(key, false, timeout).await {
                    Ok(item) => Attempted::Done(Ok(item)),
                    Err(failure) => failure.attempted(),
                }
            })
            .await?;
        Ok(stored_traits(&item, epoch_seconds()))
    }

    async fn write(
        &self,
        identifier: &Identifier,
        traits: &Map<String, Value>,
        at: Timestamp,
        deadline: Instant,
    ) -> Result<Vec<String>, StoreError> {
        let storable = storable(traits);
        if storable.len() < traits.len() {
            tracing::warn!(
                key = %identifier.masked(),
                skipped = traits.len() - storable.len(),
                "traits DynamoDB cannot hold (an empty name, a number out of its range) not stored"
            );
        }
        if storable.is_empty() {
            return Ok(Vec::new());
        }
        let key = store_key(identifier);
        let expired = || StoreError::Timeout(WRITES.attempt_timeout.as_millis() as u64);
        let (written, _) = WRITES
            .run(deadline, expired, |timeout, _| {
                self.write_once(&key, &storable, at.millis(), timeout)
            })
            .await?;
        Ok(written)
    }
}

/// The item's key: `type:value`, as route-decision looks the customer up.
pub fn store_key(identifier: &Identifier) -> String {
    format!("{}:{}", identifier.kind(), identifier.value())
}

/// The traits DynamoDB can hold: a name (attribute names are never empty) and a value within
/// its number range.
fn storable(traits: &Map<String, Value>) -> Map<String, Value> {
    traits
        .iter()
        .filter(|(name, value)| !name.is_empty() && attributes::to_attribute(value).is_some())
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// An item's traits and their times; `None` for no item, one without `traits`, or one past
/// its expiry (TTL deletes within days, and until then reads still return it: DynamoDB
/// Developer Guide, "Time to Live").
fn stored_traits(item: &Map<String, Value>, now: u64) -> Option<StoredTraits> {
    let number = |v: &Value| v.get("N")?.as_str()?.parse::<u64>().ok();
    if item
        .get("expires_at")
        .and_then(number)
        .is_some_and(|at| at <= now)
    {
        return None;
    }
    let traits = attributes::readable(item.get("traits")?.get("M")?.as_object()?);
    let written_at = item
        .get("at")
        .and_then(|at| at.get("M"))
        .and_then(Value::as_object)
        .map(|times| {
            times
                .iter()
                .filter_map(|(name, v)| Some((name.clone(), number(v)?)))
                .collect()
        })
        .unwrap_or_default();
    Some(StoredTraits { traits, written_at })
}

/// An item's map attribute as it is stored (attribute values), or an empty one.
fn raw_map(item: &Map<String, Value>, name: &str) -> Map<String, Value> {
    item.get(name)
        .and_then(|attribute| attribute.get("M"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// A refusal's kind, from DynamoDB's `__type` (`com.amazonaws.dynamodb.v20120810#Kind`):
/// throttles and 5xx are retried; a failed condition is a lost race; the rest is final.
fn failure(status: u16, answer: &Value) -> CallFailure {
    let kind = answer
        .get("__type")
        .and_then(Value::as_str)
        .and_then(|t| t.rsplit('#').next())
        .unwrap_or("");
    match kind {
        "ConditionalCheckFailedException" => CallFailure::Conflict,
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded" => CallFailure::Retry(StoreError::Throttled),
        _ if status >= 500 => {
            CallFailure::Retry(StoreError::Unavailable(format!("HTTP {status} {kind}")))
        }
        _ => CallFailure::Final(StoreError::Refused(format!("HTTP {status} {kind}"))),
    }
}

fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_refusals_are_sorted_by_what_a_retry_can_change() {
        let kind = |t: &str| json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{t}")});
        assert!(matches!(
            failure(400, &kind("ConditionalCheckFailedException")),
            CallFailure::Conflict
        ));
        for throttle in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
        ] {
            assert!(matches!(
                failure(400, &kind(throttle)),
                CallFailure::Retry(StoreError::Throttled)
            ));
        }
        assert!(matches!(failure(500, &Value::Null), CallFailure::Retry(_)));
        assert!(matches!(
            failure(400, &kind("ResourceNotFoundException")),
            CallFailure::Final(_)
        ));
    }

    #[test]
    fn an_expired_item_or_one_without_traits_is_a_miss() {
        let item = |expires: u64| {
            json!({"id": {"S": "user_id:u-42"}, "traits": {"M": {"vip": {"BOOL": true}}},
                   "expires_at": {"N": expires.to_string()}})
        };
        let now = 1_000_000;
        assert!(stored_traits(item(now + 1).as_object().unwrap(), now).is_some());
        assert!(stored_traits(item(now).as_object().unwrap(), now).is_none());
        let bare = json!({"id": {"S": "user_id:u-42"}});
        assert!(stored_traits(bare.as_object().unwrap(), now).is_none());
        // An item holding only `id` and `traits` (written by other means) is read too.
        let plain = json!({"id": {"S": "u"}, "traits": {"M": {"vip": {"BOOL": true}}}});
        let stored = stored_traits(plain.as_object().unwrap(), now).unwrap();
        assert_eq!(stored.traits["vip"], json!(true));
        assert!(stored.written_at.is_empty());
    }
}
