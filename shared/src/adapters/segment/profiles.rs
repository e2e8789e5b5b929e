//! Segment's Profile API: a customer's traits by identifier.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Map, Value};

use crate::adapters::config::ProfileApiConfig;
use crate::adapters::http_client::{HttpClient, basic_authorization, retry_after, root_cause};
use crate::adapters::retry::{Attempted, Retries};
use crate::adapters::secrets::SecretCell;
use crate::adapters::segment::cache::TtlCache;
use crate::adapters::segment::pacer::Pacer;
use crate::domain::identity::Identifier;
use crate::domain::ports::{ProfileError, TraitsQuery};
use crate::support::in_flight::{Flight, InFlight};
use crate::support::metrics::{self, Counter};

/// A lookup's retries: one after a failure before any answer (the attempts' own rule), 429s
/// at the pacer's next token, at most four attempts, each within the request timeout, a retry
/// only with 100 ms left after its wait, and no back-off of its own (the pacer spaces them).
const RETRIES: Retries = Retries {
    max_attempts: 4,
    attempt_timeout: Duration::from_millis(1500),
    min_attempt: Duration::from_millis(100),
    first_backoff: Duration::ZERO,
    max_backoff: Duration::ZERO,
};

/// What a lookup's attempts have met: a failure before any answer (retried once), and the
/// last 429 (whose `Retry-After` names the failure if no later turn comes in time).
#[derive(Debug, Default)]
struct Retried {
    transport: AtomicBool,
    rate_limited: std::sync::Mutex<Option<Option<Duration>>>,
}

/// By when a request must have its token (its first caller's deadline) and its answer.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    admit_by: Instant,
    deadline: Instant,
}

type TraitsKey = (Identifier, TraitsQuery);
type Traits = Option<Map<String, Value>>;
/// Traits by (identifier, query), cached per execution environment.
type TraitCache = TtlCache<TraitsKey, Map<String, Value>>;

#[derive(Clone)]
pub struct ProfileApi {
    http: HttpClient,
    /// `{base}/v1/spaces/{space}/collections/users/profiles/`
    profiles_url: String,
    token: Arc<SecretCell>,
    request_timeout: Duration,
    /// Shared by every invocation this environment serves at once (Lambda Managed Instances).
    cache: Arc<TraitCache>,
    /// External ids by identifier, kept as long as traits: trait-sync asks for a profile's
    /// phone on each delivery that lacks one, and Engage sends several a profile.
    ids: Arc<TtlCache<Identifier, Vec<Value>>>,
    lookups: Arc<InFlight<TraitsKey, Result<Traits, ProfileError>>>,
    /// Shared by every invocation of the environment: its turn at Segment's rate.
    pacer: Arc<Pacer>,
}

/// What one GET came back with.
enum ProfileAnswer {
    Body(Value),
    NotFound,
}

impl ProfileApi {
    pub fn new(config: ProfileApiConfig, http: HttpClient) -> Self {
        Self {
            http,
            profiles_url: format!(
                "{}/v1/spaces/{}/collections/users/profiles/",
                config.base_url, config.space_id
            ),
            token: Arc::new(config.token),
            request_timeout: config.request_timeout,
            cache: Arc::new(TtlCache::new(config.cache_ttl, config.cache_capacity)),
            ids: Arc::new(TtlCache::new(config.cache_ttl, config.cache_capacity)),
            lookups: Arc::default(),
            pacer: Arc::new(Pacer::new(config.rate)),
        }
    }

    /// Builds the HTTPS client and fetches the access token now (a warm-up is an
    /// invocation, so the secrets extension answers), so the first real lookup waits for
    /// neither. Sends nothing to Segment.
    pub async fn warm_up(&self) {
        if let Err(error) = self.http.client() {
            tracing::error!(%error, "could not prepare the Profile API client");
        }
        self.token.warm_up().await;
    }

    /// Basic auth with the token as user name and an empty password, as Segment documents;
    /// a token not yet held is waited for until `deadline`.
    async fn authorization(&self, deadline: Instant) -> Result<HeaderValue, ProfileError> {
        let token = self
            .token
            .get(deadline)
            .await
            .map_err(ProfileError::Token)?;
        basic_authorization(token.expose())
            .ok_or_else(|| ProfileError::Client("the access token cannot be sent".into()))
    }

    /// The customer's traits, or `None` for a profile Segment does not know; from the cache
    /// when an identical query was answered within the TTL. Concurrent misses of one query
    /// share one request, which runs to its own end even when this caller stops waiting.
    pub async fn fetch_traits(
        &self,
        identifier: &Identifier,
        query: &TraitsQuery,
        deadline: Instant,
    ) -> Result<Traits, ProfileError> {
        let key = (identifier.clone(), query.clone());
        if let Some(hit) = self.cache.get(&key) {
            metrics::add(Counter::CacheHits, 1);
            return Ok(hit);
        }
        metrics::add(Counter::CacheMisses, 1);
        // The shared request is not cut at the first caller's deadline: a later caller may
        // have more time, and each caller's own timeout bounds its wait.
        let shared_deadline = deadline.max(Instant::now() + self.request_timeout);
        let (answer, flight) = self
            .lookups
            .get(key.clone(), || {
                let api = self.clone();
                // Its requests count in the metrics of the invocation that started it.
                metrics::carry(async move {
                    // It waits for a token only as long as its first caller can.
                    let traits = api.request_traits(&key, deadline, shared_deadline).await;
                    if let Ok(traits) = &traits {
                        api.cache.put(key, traits.clone());
                    }
                    traits
                })
            })
            .await;
        if flight == Flight::Joined {
            tracing::debug!(customer = %identifier.masked(), "joined a Profile API request already in flight");
        }
        answer.unwrap_or_else(|| {
            Err(ProfileError::Client(
                "the shared Profile API request ended without an answer".into(),
            ))
        })
    }

    async fn request_traits(
        &self,
        (identifier, query): &TraitsKey,
        admit_by: Instant,
        deadline: Instant,
    ) -> Result<Traits, ProfileError> {
        let limit = query.limit().to_string();
        let mut params = vec![("limit", limit.as_str())];
        if let Some(include) = query.included() {
            params.push(("include", include));
        }
        if let Some(class) = query.class() {
            params.push(("class", class));
        }
        let url = format!("{}{}/traits", self.profiles_url, identifier.path_segment());
        Ok(match self.get(&url, &params, admit_by, deadline).await? {
            ProfileAnswer::NotFound => None,
            ProfileAnswer::Body(body) => match body.get("traits") {
                Some(Value::Object(traits)) => Some(traits.clone()),
                Some(Value::Null) | None => Some(Map::new()),
                Some(_) => {
                    return Err(ProfileError::InvalidResponse(
                        "\"traits\" is not an object".into(),
                    ));
                }
            },
        })
    }

    /// The profile's external ids (`type`, `id`), or `None` for an unknown profile.
    pub async fn fetch_external_ids(
        &self,
        identifier: &Identifier,
        deadline: Instant,
    ) -> Result<Option<Vec<Value>>, ProfileError> {
        if let Some(hit) = self.ids.get(identifier) {
            metrics::add(Counter::CacheHits, 1);
            return Ok(hit);
        }
        metrics::add(Counter::CacheMisses, 1);
        let url = format!(
            "{}{}/external_ids",
            self.profiles_url,
            identifier.path_segment()
        );
        let body = match self
            .get(&url, &[("limit", "100")], deadline, deadline)
            .await?
        {
            ProfileAnswer::NotFound => {
                self.ids.put(identifier.clone(), None);
                return Ok(None);
            }
            ProfileAnswer::Body(body) => body,
        };
        let Some(Value::Array(data)) = body.get("data") else {
            return Err(ProfileError::InvalidResponse(
                "\"data\" is not a list".into(),
            ));
        };
        let ids: Vec<Value> = data
            .iter()
            .map(|entry| serde_json::json!({"type": entry.get("type"), "id": entry.get("id")}))
            .collect();
        self.ids.put(identifier.clone(), Some(ids.clone()));
        Ok(Some(ids))
    }

    /// One GET within `deadline`, through the retry loop and the pacer: each attempt waits
    /// for its token while one comes by `admit_by`; a 429 is retried at the next token (or
    /// after `Retry-After`) while that still fits the deadline, and a failure before any
    /// answer came back (a pooled connection that died while the instance was frozen fails
    /// exactly that way) is retried once.
    async fn get(
        &self,
        url: &str,
        params: &[(&str, &str)],
        admit_by: Instant,
        deadline: Instant,
    ) -> Result<ProfileAnswer, ProfileError> {
        let client = self
            .http
            .client()
            .map_err(|e| ProfileError::Client(e.to_string()))?;
        let authorization = self.authorization(deadline).await?;
        let request = client
            .get(crate::adapters::http_client::with_query(url, params))
            .header(AUTHORIZATION, authorization);
        let retries = Retries {
            attempt_timeout: self.request_timeout,
            ..RETRIES
        };
        let retried = Retried::default();
        let expired = || ProfileError::Timeout(self.request_timeout.as_millis() as u64);
        let by = Deadlines { admit_by, deadline };
        retries
            .run(deadline, expired, |timeout, _| {
                self.attempt(&request, by, timeout, &retried)
            })
            .await
            .map(|(answer, _)| answer)
    }

    /// One attempt of [`Self::get`]'s request, once it has its token.
    async fn attempt(
        &self,
        request: &reqwest::RequestBuilder,
        by: Deadlines,
        timeout: Duration,
        retried: &Retried,
    ) -> Attempted<ProfileAnswer, ProfileError> {
        if let Err(paced) = self.pacer.admit(by.admit_by).await {
            // After a 429, that is the reason: the turn that came too late was its retry's.
            let last = retried.rate_limited.lock().map_or(None, |last| *last);
            return Attempted::Done(Err(match last {
                Some(retry_after) => ProfileError::RateLimited { retry_after },
                None => paced,
            }));
        }
        // The wait for the token came out of this attempt's time.
        let timeout = timeout.min(by.deadline.saturating_duration_since(Instant::now()));
        let Some(request) = request.try_clone().filter(|_| !timeout.is_zero()) else {
            return Attempted::Done(Err(ProfileError::Timeout(timeout.as_millis() as u64)));
        };
        metrics::add(Counter::ProfileApiRequests, 1);
        let sent_at = Instant::now();
        let response = match request.timeout(timeout).send().await {
            Ok(response) => response,
            Err(error)
                if !error.is_timeout() && !retried.transport.swap(true, Ordering::Relaxed) =>
            {
                tracing::debug!(error = %root_cause(&error), "Profile API request failed before an answer; retrying once");
                let error = self.transport_error(&error, timeout);
                return Attempted::Retry {
                    error,
                    wait: Duration::ZERO,
                };
            }
            Err(error) => return Attempted::Done(Err(self.transport_error(&error, timeout))),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => return Attempted::Done(Err(self.transport_error(&error, timeout))),
        };
        if status == 429 {
            if let Ok(mut last) = retried.rate_limited.lock() {
                *last = Some(retry_after);
            }
            let wait = self.throttled(retry_after, sent_at);
            return Attempted::Retry {
                error: ProfileError::RateLimited { retry_after },
                wait,
            };
        }
        if matches!(status, 200..=299 | 404) {
            self.pacer.answered(sent_at.elapsed(), Instant::now());
        }
        Attempted::Done(read_answer(status, &body))
    }

    /// A 429: the pacer holds this environment back (its `Retry-After`, a lower rate), and
    /// the request may go again at its next token.
    fn throttled(&self, retry_after: Option<Duration>, sent_at: Instant) -> Duration {
        let before = self.pacer.rate();
        let wait = self.pacer.throttled(retry_after, sent_at, Instant::now());
        let after = self.pacer.rate();
        if after != before || retry_after.is_some() {
            tracing::warn!(
                rate = after,
                retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
                "Segment's Profile API answered 429; this environment paces its requests to that"
            );
        }
        wait
    }

    fn transport_error(&self, error: &reqwest::Error, timeout: Duration) -> ProfileError {
        if error.is_timeout() {
            ProfileError::Timeout(timeout.as_millis() as u64)
        } else if error.is_decode() || error.is_body() {
            ProfileError::InvalidResponse(root_cause(error))
        } else {
            ProfileError::Network(root_cause(error))
        }
    }
}

/// An answer other than a 429, read. A body is read as Python reads it (a trait cut inside an
/// emoji is still a profile), and no deeper than serde_json's 128 levels: the rules walk
/// traits recursively.
fn read_answer(status: u16, body: &[u8]) -> Result<ProfileAnswer, ProfileError> {
    match status {
        200..=299 => match crate::support::json_text::from_slice::<Value>(body) {
            Ok(value) if crate::support::json_text::nesting(&value) <= 128 => {
                Ok(ProfileAnswer::Body(value))
            }
            Ok(_) => Err(ProfileError::InvalidResponse(
                "the answer nests more than 128 levels".into(),
            )),
            Err(e) => Err(ProfileError::InvalidResponse(e.to_string())),
        },
        404 => Ok(ProfileAnswer::NotFound),
        401 | 403 => Err(ProfileError::Unauthorized(status)),
        // Segment's APIs do not redirect: a 3xx is an answer we cannot use.
        _ => Err(ProfileError::Status(status)),
    }
}
