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
use crate::adapters::segment::back_off::BackOff;
use crate::adapters::segment::cache::TtlCache;
use crate::domain::identity::Identifier;
use crate::domain::ports::{ProfileError, TraitsQuery};
use crate::support::in_flight::{Flight, InFlight};
use crate::support::metrics::{self, Counter};

/// A lookup's retries: at most one after a failure before any answer and one after a 429
/// (the attempts' own rule), each attempt within the request timeout, a retry only with
/// 100 ms left after its wait, and no back-off (a customer is waiting).
const RETRIES: Retries = Retries {
    max_attempts: 3,
    attempt_timeout: Duration::from_millis(1500),
    min_attempt: Duration::from_millis(100),
    first_backoff: Duration::ZERO,
    max_backoff: Duration::ZERO,
};

/// Which kinds of failure a lookup has already retried (once each).
#[derive(Debug, Default)]
struct Retried {
    transport: AtomicBool,
    rate_limit: AtomicBool,
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
    lookups: Arc<InFlight<TraitsKey, Result<Traits, ProfileError>>>,
    back_off: Arc<BackOff>,
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
            lookups: Arc::default(),
            back_off: Arc::default(),
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
        // Refused here rather than inside the shared request: a window that opens while
        // callers join must not hold them for a request that would be refused anyway.
        self.backing_off()?;
        // The shared request is not cut at the first caller's deadline: a later caller may
        // have more time, and each caller's own timeout bounds its wait.
        let shared_deadline = deadline.max(Instant::now() + self.request_timeout);
        let (answer, flight) = self
            .lookups
            .get(key.clone(), || {
                let api = self.clone();
                // Its requests count in the metrics of the invocation that started it.
                metrics::carry(async move {
                    let traits = api.request_traits(&key, shared_deadline).await;
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

    fn backing_off(&self) -> Result<(), ProfileError> {
        match self.back_off.waiting(Instant::now()) {
            Some(wait) => Err(ProfileError::BackingOff {
                remaining_ms: wait.as_millis() as u64,
            }),
            None => Ok(()),
        }
    }

    async fn request_traits(
        &self,
        (identifier, query): &TraitsKey,
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
        Ok(match self.get(&url, &params, deadline).await? {
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
        let url = format!(
            "{}{}/external_ids",
            self.profiles_url,
            identifier.path_segment()
        );
        let body = match self.get(&url, &[("limit", "100")], deadline).await? {
            ProfileAnswer::NotFound => return Ok(None),
            ProfileAnswer::Body(body) => body,
        };
        let Some(Value::Array(data)) = body.get("data") else {
            return Err(ProfileError::InvalidResponse(
                "\"data\" is not a list".into(),
            ));
        };
        Ok(Some(
            data.iter()
                .map(|entry| serde_json::json!({"type": entry.get("type"), "id": entry.get("id")}))
                .collect(),
        ))
    }

    /// One GET within `deadline`, through the retry loop: retried once when it failed before
    /// any answer came back (a pooled connection that died while the instance was frozen
    /// fails exactly that way), and once after a 429 when its `Retry-After` still fits the
    /// deadline; otherwise 429 fails fast, leaving the decision to the caller's fallback.
    async fn get(
        &self,
        url: &str,
        params: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<ProfileAnswer, ProfileError> {
        let client = self
            .http
            .client()
            .map_err(|e| ProfileError::Client(e.to_string()))?;
        let authorization = self.authorization(deadline).await?;
        self.backing_off()?;
        let request = client
            .get(crate::adapters::http_client::with_query(url, params))
            .header(AUTHORIZATION, authorization);
        let retries = Retries {
            attempt_timeout: self.request_timeout,
            ..RETRIES
        };
        let retried = Retried::default();
        let expired = || ProfileError::Timeout(self.request_timeout.as_millis() as u64);
        retries
            .run(deadline, expired, |timeout, number| {
                self.attempt(&request, timeout, number, &retried)
            })
            .await
            .map(|(answer, _)| answer)
    }

    /// One attempt of [`Self::get`]'s request.
    async fn attempt(
        &self,
        request: &reqwest::RequestBuilder,
        timeout: Duration,
        number: usize,
        retried: &Retried,
    ) -> Attempted<ProfileAnswer, ProfileError> {
        // Another 429 may have opened a longer window while this call waited.
        if number > 1
            && let Err(refused) = self.backing_off()
        {
            return Attempted::Done(Err(refused));
        }
        let Some(request) = request.try_clone() else {
            return Attempted::Done(Err(ProfileError::Client(
                "the request cannot be sent again".into(),
            )));
        };
        metrics::add(Counter::ProfileApiRequests, 1);
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
        self.note_status(status, retry_after);
        let rate_limited = ProfileError::RateLimited { retry_after };
        match (status, retry_after) {
            (429, Some(wait)) if !retried.rate_limit.swap(true, Ordering::Relaxed) => {
                Attempted::Retry {
                    error: rate_limited,
                    wait,
                }
            }
            (429, _) => Attempted::Done(Err(rate_limited)),
            _ => Attempted::Done(read_answer(status, &body)),
        }
    }

    /// What an answer's status tells the environment's back-off: a 429 opens a window, an
    /// answer Segment served closes it.
    fn note_status(&self, status: u16, retry_after: Option<Duration>) {
        if status == 429 {
            let window = self.back_off.rate_limited(retry_after, Instant::now());
            tracing::warn!(
                window_ms = window.as_millis() as u64,
                "Segment's Profile API answered 429; no lookups from this environment until the window ends"
            );
        } else if matches!(status, 200..=299 | 404) {
            self.back_off.succeeded(Instant::now());
        }
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
