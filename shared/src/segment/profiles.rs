//! Segment's Profile API: a customer's traits by identifier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Map, Value};

use crate::config::ProfileApiConfig;
use crate::http_client::{HttpClient, basic_authorization, retry_after, root_cause};
use crate::identity::Identifier;
use crate::ports::{ProfileError, TraitsQuery};
use crate::secrets::SecretCell;
use crate::segment::cache::{self, TtlCache};

/// The least time a retried request is given; a retry with less would only time out.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// Traits by (identifier, query), cached per warm instance.
type TraitCache = TtlCache<(Identifier, TraitsQuery), Map<String, Value>>;

#[derive(Clone)]
pub struct ProfileApi {
    http: HttpClient,
    /// `{base}/v1/spaces/{space}/collections/users/profiles/`
    profiles_url: String,
    token: Arc<SecretCell>,
    request_timeout: Duration,
    cache: Arc<TraitCache>,
}

/// What one GET came back with.
enum Outcome {
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
            cache: Arc::new(TtlCache::new(config.cache_ttl, cache::DEFAULT_CAPACITY)),
        }
    }

    /// Builds the HTTPS client and fetches the access token now (a warm-up is an
    /// invocation, so the secrets extension answers), so the first real lookup waits for
    /// neither. Sends nothing to Segment.
    pub async fn warm_up(&self) {
        if let Err(error) = self.http.client() {
            tracing::error!(%error, "could not prepare the Profile API client");
        }
        // A failure is logged by the cell; the next lookup tries again.
        let _ = self.token.get().await;
    }

    /// Basic auth with the token as user name and an empty password, as Segment documents.
    async fn authorization(&self) -> Result<HeaderValue, ProfileError> {
        let token = self.token.get().await.map_err(ProfileError::Token)?;
        basic_authorization(token.expose())
            .ok_or_else(|| ProfileError::Client("the access token cannot be sent".into()))
    }

    /// The customer's traits, or `None` for a profile Segment does not know; from the cache
    /// when an identical query was answered within the TTL.
    pub async fn fetch_traits(
        &self,
        identifier: &Identifier,
        query: &TraitsQuery,
        deadline: Instant,
    ) -> Result<Option<Map<String, Value>>, ProfileError> {
        let key = (identifier.clone(), query.clone());
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let limit = query.limit().to_string();
        let mut params = vec![("limit", limit.as_str())];
        if let Some(include) = query.included() {
            params.push(("include", include));
        }
        if let Some(class) = query.class() {
            params.push(("class", class));
        }
        let url = format!("{}{}/traits", self.profiles_url, identifier.path_segment());
        let traits = match self.get(&url, &params, deadline).await? {
            Outcome::NotFound => None,
            Outcome::Body(body) => match body.get("traits") {
                Some(Value::Object(traits)) => Some(traits.clone()),
                Some(Value::Null) | None => Some(Map::new()),
                Some(_) => {
                    return Err(ProfileError::InvalidResponse(
                        "\"traits\" is not an object".into(),
                    ));
                }
            },
        };
        self.cache.put(key, traits.clone());
        Ok(traits)
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
            Outcome::NotFound => return Ok(None),
            Outcome::Body(body) => body,
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

    /// One GET within `deadline`. Retried once when it failed before any answer came back (a
    /// pooled connection that died while the instance was frozen fails exactly that way), and
    /// once after a 429 when its `Retry-After` still fits the deadline; otherwise 429 fails
    /// fast, leaving the decision to the caller's fallback.
    async fn get(
        &self,
        url: &str,
        params: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<Outcome, ProfileError> {
        let client = self
            .http
            .client()
            .map_err(|e| ProfileError::Client(e.to_string()))?;
        let authorization = self.authorization().await?;
        let url = crate::http_client::with_query(url, params);
        let mut retried_transport = false;
        let mut retried_rate_limit = false;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ProfileError::Timeout(
                    self.request_timeout.as_millis() as u64
                ));
            }
            let timeout = self.request_timeout.min(remaining);
            let sent = client
                .get(&url)
                .header(AUTHORIZATION, authorization.clone())
                .timeout(timeout)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) if !error.is_timeout() && !retried_transport => {
                    tracing::debug!(error = %root_cause(&error), "Profile API request failed before an answer; retrying once");
                    retried_transport = true;
                    continue;
                }
                Err(error) => return Err(self.transport_error(&error, timeout)),
            };
            let status = response.status().as_u16();
            let retry_after = retry_after(&response);
            let body = response
                .bytes()
                .await
                .map_err(|e| self.transport_error(&e, timeout))?;
            return match status {
                200..=299 => serde_json::from_slice::<Value>(&body)
                    .map(Outcome::Body)
                    .map_err(|e| ProfileError::InvalidResponse(e.to_string())),
                404 => Ok(Outcome::NotFound),
                401 | 403 => Err(ProfileError::Unauthorized(status)),
                429 => match retry_after {
                    // Worth waiting only if the retry itself still has time to run.
                    Some(wait)
                        if !retried_rate_limit
                            && Instant::now() + wait + MIN_ATTEMPT < deadline =>
                    {
                        retried_rate_limit = true;
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    _ => Err(ProfileError::RateLimited { retry_after }),
                },
                // Segment's APIs do not redirect: a 3xx is an answer we cannot use.
                _ => Err(ProfileError::Status(status)),
            };
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
