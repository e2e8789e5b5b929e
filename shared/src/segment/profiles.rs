//! Segment's Profile API: a customer's traits by identifier.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Map, Value};

use crate::config::ProfileApiConfig;
use crate::http_client::HttpClient;
use crate::identity::Identifier;

/// Why the Profile API gave no answer. A profile Segment does not know is not an error.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("Segment's Profile API did not answer within {0} ms")]
    Timeout(u64),
    #[error("Segment's Profile API is rate limiting this space (HTTP 429)")]
    RateLimited { retry_after: Option<Duration> },
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
}

/// Which traits to ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TraitsQuery {
    /// Only these keys (`include=`); `None` asks for all.
    pub include: Option<BTreeSet<String>>,
    /// `audience` or `computed_trait`.
    pub class: Option<String>,
    /// 1..=200. Segment answers only 10 traits unless told otherwise, so we always say.
    pub limit: u16,
}

impl TraitsQuery {
    pub const MAX_LIMIT: u16 = 200;

    pub fn include(keys: Option<&BTreeSet<String>>) -> Self {
        Self {
            include: keys.cloned(),
            class: None,
            limit: Self::MAX_LIMIT,
        }
    }
}

#[derive(Clone)]
pub struct ProfileApi {
    http: HttpClient,
    /// `{base}/v1/spaces/{space}/collections/users/profiles/`
    profiles_url: String,
    authorization: HeaderValue,
    request_timeout: Duration,
}

impl ProfileApi {
    pub fn new(config: &ProfileApiConfig, http: HttpClient) -> Self {
        // Basic auth with the token as user name and an empty password, as Segment documents.
        let mut authorization = HeaderValue::from_str(&format!(
            "Basic {}",
            STANDARD.encode(format!("{}:", config.token.expose()))
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
        authorization.set_sensitive(true);
        Self {
            http,
            profiles_url: format!(
                "{}/v1/spaces/{}/collections/users/profiles/",
                config.base_url, config.space_id
            ),
            authorization,
            request_timeout: config.request_timeout,
        }
    }

    /// Builds the HTTPS client now, so the first real lookup does not wait for it.
    pub fn prepare(&self) {
        if let Err(error) = self.http.get() {
            tracing::error!(%error, "could not prepare the Profile API client");
        }
    }

    /// The customer's traits, or `None` for a profile Segment does not know.
    pub async fn fetch_traits(
        &self,
        identifier: &Identifier,
        query: &TraitsQuery,
    ) -> Result<Option<Map<String, Value>>, ProfileError> {
        let limit = query.limit.to_string();
        let include = query.include.as_ref().map(|keys| {
            keys.iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(",")
        });
        let mut params = vec![("limit", limit.as_str())];
        if let Some(include) = &include {
            params.push(("include", include));
        }
        if let Some(class) = &query.class {
            params.push(("class", class));
        }
        let url = format!("{}{}/traits", self.profiles_url, identifier.path_segment());
        let Some(body) = self.get(&url, &params).await? else {
            return Ok(None);
        };
        match body.get("traits") {
            Some(Value::Object(traits)) => Ok(Some(traits.clone())),
            Some(Value::Null) | None => Ok(Some(Map::new())),
            Some(_) => Err(ProfileError::InvalidResponse(
                "\"traits\" is not an object".into(),
            )),
        }
    }

    /// One GET, retried once when it failed before any answer came back (a pooled connection
    /// that died while the instance was frozen fails exactly that way).
    async fn get(&self, url: &str, params: &[(&str, &str)]) -> Result<Option<Value>, ProfileError> {
        let client = self
            .http
            .get()
            .map_err(|e| ProfileError::Client(e.to_string()))?;
        let url = crate::http_client::with_query(url, params);
        let send = || {
            client
                .get(&url)
                .header(AUTHORIZATION, self.authorization.clone())
                .timeout(self.request_timeout)
                .send()
        };
        let response = match send().await {
            Ok(response) => response,
            Err(error) if !error.is_timeout() => {
                tracing::debug!(error = %error, "Profile API request failed before an answer; retrying once");
                send().await.map_err(|e| self.transport_error(&e))?
            }
            Err(error) => return Err(self.transport_error(&error)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        match status {
            200..=299 => serde_json::from_slice::<Value>(&body)
                .map(Some)
                .map_err(|e| ProfileError::InvalidResponse(e.to_string())),
            404 => Ok(None),
            401 | 403 => Err(ProfileError::Unauthorized(status)),
            429 => Err(ProfileError::RateLimited { retry_after }),
            _ => Err(ProfileError::Status(status)),
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> ProfileError {
        if error.is_timeout() {
            ProfileError::Timeout(self.request_timeout.as_millis() as u64)
        } else if error.is_decode() || error.is_body() {
            ProfileError::InvalidResponse(root_cause(error))
        } else {
            ProfileError::Network(root_cause(error))
        }
    }
}

/// The innermost cause: reqwest's own message rarely says what actually went wrong.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
