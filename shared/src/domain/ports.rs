//! The ports: what the operations need from outside, as traits. Segment's APIs implement them
//! (`segment/`), and so do in-memory adapters (`memory`) for tests and tools; the operations
//! are generic over them and never see HTTP.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::domain::identity::Identifier;
use crate::domain::rules::RuleSet;
use crate::domain::timestamps::Timestamp;
use crate::domain::track_message::EncodedMessage;
use crate::domain::trait_store::StoredTraits;

/// Where customers' profiles are read: traits, and the identifiers a profile holds.
pub trait Profiles: Send + Sync + 'static {
    /// The traits `query` asks for, or `None` for a customer the store does not know, giving
    /// up at `deadline`.
    fn traits(
        &self,
        identifier: &Identifier,
        query: &TraitsQuery,
        deadline: Instant,
    ) -> impl Future<Output = Result<Option<Map<String, Value>>, ProfileError>> + Send;

    /// The profile's external ids (`{"type", "id"}`), or `None` for an unknown customer.
    fn external_ids(
        &self,
        identifier: &Identifier,
        deadline: Instant,
    ) -> impl Future<Output = Result<Option<Vec<Value>>, ProfileError>> + Send;

    /// [`Self::traits`], and where they came from. One source (the Profile API, a test's map)
    /// says the Profile API; a source that combines the trait store with it says which.
    fn traits_found(
        &self,
        identifier: &Identifier,
        query: &TraitsQuery,
        deadline: Instant,
    ) -> impl Future<Output = Result<Option<FoundTraits>, ProfileError>> + Send {
        async move {
            let traits = self.traits(identifier, query, deadline).await?;
            Ok(traits.map(|traits| (traits, TraitsFrom::ProfileApi)))
        }
    }

    /// Gets ready to read profiles (clients, credentials) without reading any: a warm-up.
    fn warm_up(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A profile's traits, and where they came from.
pub type FoundTraits = (Map<String, Value>, TraitsFrom);

/// Where a decision's traits came from, for its log line (`traits_from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraitsFrom {
    ProfileApi,
    /// The trait store held every trait the decision needed.
    Store,
    /// The trait store held some; the Profile API gave the rest.
    StoreAndProfileApi,
}

impl TraitsFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProfileApi => "profile_api",
            Self::Store => "store",
            Self::StoreAndProfileApi => "store+profile_api",
        }
    }
}

/// Where track messages go.
pub trait EventSink: Send + Sync + 'static {
    /// Sends every message, in order, by `deadline`. When not all are accepted, the error
    /// says how many of the first were.
    fn send(
        &self,
        messages: &[EncodedMessage],
        deadline: Instant,
    ) -> impl Future<Output = Result<Delivered, Undelivered>> + Send;

    /// Gets ready to send (clients, credentials) without sending: a warm-up.
    fn warm_up(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// What changes the routing while a function runs: newer rules (AppConfig, Parameter Store)
/// and the emergency override. A decision brings them up to date first, within its budget.
pub trait RoutingUpdates: Send + Sync + 'static {
    /// Reads what is due for a read, waiting no later than `by` (the first read of an
    /// environment is waited for; later ones run in the background).
    fn refresh(&self, by: Instant) -> impl Future<Output = ()> + Send;

    /// The transition every customer goes to while the emergency override is on and `rules`
    /// name it.
    fn overriding(&self, rules: &RuleSet) -> Option<String>;

    /// Reads everything once, before the first real decision needs it.
    fn warm_up(&self) -> impl Future<Output = ()> + Send;
}

/// Where traits that Segment keeps current are kept, by identifier (the trait store).
pub trait TraitStore: Send + Sync + 'static {
    /// The item of `identifier`, if there is one, read by `deadline`.
    fn read(
        &self,
        identifier: &Identifier,
        deadline: Instant,
    ) -> impl Future<Output = Result<Option<StoredTraits>, StoreError>> + Send;

    /// Writes `traits` observed at `at` under `identifier`, each only where it is newer than
    /// the stored value ([`StoredTraits::apply`]'s rule); the names written.
    fn write(
        &self,
        identifier: &Identifier,
        traits: &Map<String, Value>,
        at: Timestamp,
        deadline: Instant,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// Why the trait store could not be read or written.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("the trait store did not answer within {0} ms")]
    Timeout(u64),
    #[error("the trait store is throttling (its capacity or a partition's is exceeded)")]
    Throttled,
    #[error("the trait store refused the request: {0}")]
    Refused(String),
    #[error("the trait store could not be reached: {0}")]
    Unavailable(String),
    /// The item would exceed DynamoDB's 400 KB: no retry can write it.
    #[error("the item would be larger than the trait store's 400 KB limit")]
    TooLarge,
}

/// Rules fixed at start: nothing changes them while the function runs.
pub struct NoUpdates;

impl RoutingUpdates for NoUpdates {
    async fn refresh(&self, _by: Instant) {}

    fn overriding(&self, _rules: &RuleSet) -> Option<String> {
        None
    }

    async fn warm_up(&self) {}
}

/// Why the profile could not be read. A profile Segment does not know is not an error.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("Segment's Profile API did not answer within {0} ms")]
    Timeout(u64),
    #[error("Segment's Profile API is rate limiting this space (HTTP 429)")]
    RateLimited { retry_after: Option<Duration> },
    /// Not sent: this environment's next turn at Segment's rate (its next token) comes
    /// `wait_ms` from now, too late for the caller's deadline.
    #[error(
        "Segment's Profile API rate is in use: this environment's next request could go in {wait_ms} ms, too late for the deadline"
    )]
    Paced { wait_ms: u64 },
    #[error(
        "Segment's Profile API refused the access token (HTTP {0}); check SEGMENT_PROFILE_API_TOKEN and SEGMENT_SPACE_ID"
    )]
    Unauthorized(u16),
    #[error("Segment's Profile API answered HTTP {0}")]
    Status(u16),
    #[error("Segment's Profile API could not be reached: {0}")]
    Network(String),
    #[error("Segment's Profile API answered with something other than the expected JSON: {0}")]
    InvalidResponse(String),
    #[error("{0}")]
    Client(String),
    /// The access token could not be had (its secret could not be fetched or is unusable).
    #[error("{0}")]
    Token(SecretError),
}

impl ProfileError {
    /// Why, in one word for logs and metrics: `timeout`, `rate_limited`, `paced`,
    /// `upstream_auth`, `upstream_status`, `network`, `invalid_response`, `client`, `secret`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::RateLimited { .. } => "rate_limited",
            Self::Paced { .. } => "paced",
            Self::Unauthorized(_) => "upstream_auth",
            Self::Status(_) => "upstream_status",
            Self::Network(_) => "network",
            Self::InvalidResponse(_) => "invalid_response",
            Self::Client(_) => "client",
            Self::Token(_) => "secret",
        }
    }
}

/// Which traits to ask for. Also half of a cache key, so it is kept small: the include list
/// is held as the `include=` value itself rather than as a set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TraitsQuery {
    /// Only these keys, sorted and comma-separated as `include=` wants them; `None` asks
    /// for all.
    include: Option<Box<str>>,
    /// `audience` or `computed_trait`.
    class: Option<String>,
    /// 1..=200. Segment answers only 10 traits unless told otherwise, so we always say.
    limit: u16,
}

impl TraitsQuery {
    pub const MAX_LIMIT: u16 = 200;

    /// Only `keys` (all traits for `None` or an empty set), of `class`, at most `limit`.
    pub fn new(keys: Option<&BTreeSet<String>>, class: Option<String>, limit: u16) -> Self {
        let include = keys.filter(|keys| !keys.is_empty()).map(|keys| {
            keys.iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(",")
                .into_boxed_str()
        });
        Self {
            include,
            class,
            limit,
        }
    }

    /// Only `keys`, any class, as many as Segment allows.
    pub fn include(keys: Option<&BTreeSet<String>>) -> Self {
        Self::new(keys, None, Self::MAX_LIMIT)
    }
}

impl TraitsQuery {
    /// The `include=` value: the keys asked for, comma-separated; `None` for all.
    pub fn included(&self) -> Option<&str> {
        self.include.as_deref()
    }

    pub fn class(&self) -> Option<&str> {
        self.class.as_deref()
    }

    pub fn limit(&self) -> u16 {
        self.limit
    }
}

/// What a successful delivery took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub messages: usize,
    pub requests: usize,
    pub retries: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackingError {
    #[error(
        "Segment's Tracking API refused the batch (HTTP {status}); check SEGMENT_TRACKING_API_URL and the messages' size"
    )]
    Refused { status: u16 },
    #[error(
        "Segment's Tracking API answered with a redirect (HTTP {status}); Segment does not redirect, so SEGMENT_TRACKING_API_URL is wrong"
    )]
    Redirected { status: u16 },
    #[error(
        "Segment's Tracking API did not accept the batch after {attempts} attempt(s): {last_problem}"
    )]
    NotAccepted {
        attempts: usize,
        last_problem: String,
    },
    #[error("{0}")]
    WriteKey(SecretError),
    #[error("{0}")]
    Client(String),
}

/// A delivery that was not wholly accepted: why, and how many of its first messages were.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Undelivered {
    pub error: TrackingError,
    /// Messages `0..accepted` were accepted; none after.
    pub accepted: usize,
}

/// Why a secret (a credential an adapter needs: the Profile API token, the write key) is not
/// available to this invocation. The ports' errors carry it; the secrets adapter makes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The extension did not answer or refused: worth trying again on the next invocation.
    #[error("{name}_SECRET_ID could not be read: {problem}")]
    Unavailable { name: &'static str, problem: String },
    /// The extension answered, but the value cannot be used: the secret must be fixed.
    #[error("{name}_SECRET_ID names a secret that cannot be used: {problem}")]
    Unusable { name: &'static str, problem: String },
}

impl SecretError {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Unavailable { name, .. } | Self::Unusable { name, .. } => name,
        }
    }
}
