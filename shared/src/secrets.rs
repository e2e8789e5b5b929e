//! Secrets: given in the environment, or named by a Secrets Manager id (`<NAME>_SECRET_ID`)
//! and read through the AWS Parameters and Secrets Lambda Extension.
//!
//! The extension can be called only during INVOKE, never during INIT: Lambda starts the
//! runtime's init as soon as the extension has registered, before its HTTP server is ready
//! (AWS's Parameter Store guide, "Using Parameter Store parameters in Lambda functions"). So
//! nothing is fetched at start: the first invocation that needs a secret fetches it (a warm-up
//! counts), the instance keeps it for `SECRETS_TTL_SECS`, and a failed fetch fails only the
//! invocation that made it. A refresh that fails keeps serving the last good value.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::environment::{VariableError, Variables};
use crate::http_client::{HttpClient, root_cause, with_query};

/// The extension's own cache keeps a value 300 s by default, and at most 300 s.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// One fetch through the extension; on a cache miss the extension itself calls Secrets Manager.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// A secret value: never blank, printable only on purpose.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value with surrounding whitespace removed, or `None` when nothing is left: an
    /// empty secret is a configuration error, never a key (an empty shared secret would let
    /// `Basic base64("anyone:")` in, an empty Auth Token would make signatures forgeable).
    pub fn new(value: &str) -> Option<Self> {
        let value = value.trim();
        (!value.is_empty()).then(|| Self(value.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it can travel in an HTTP header as it is (`Authorization: Bearer <secret>`):
    /// visible ASCII and spaces only.
    pub fn fits_in_a_header(&self) -> bool {
        self.0.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a secret is not available to this invocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The extension did not answer or refused: worth trying again on the next invocation.
    #[error(
        "{name}_SECRET_ID could not be read through the Parameters and Secrets extension: {problem}"
    )]
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

/// What a secret's value must satisfy beyond not being blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Any,
    /// Compared with what a caller sends in a header: see [`Secret::fits_in_a_header`].
    HeaderSafe,
}

impl Requirement {
    fn check(self, secret: &Secret) -> Result<(), String> {
        match self {
            Self::HeaderSafe if !secret.fits_in_a_header() => Err(
                "it holds characters an HTTP header cannot carry (use visible ASCII only), so no caller could ever present it"
                    .into(),
            ),
            _ => Ok(()),
        }
    }
}

/// The AWS Parameters and Secrets Lambda Extension on localhost.
pub struct SecretsExtension {
    base_url: String,
    session_token: Option<String>,
    http: HttpClient,
    ttl: Duration,
}

impl SecretsExtension {
    /// `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` (default 2773), `AWS_SESSION_TOKEN` (Lambda
    /// sets it; the extension requires it back), `SECRETS_TTL_SECS` (default 300).
    pub fn from_variables(vars: &Variables<'_>, http: HttpClient) -> Result<Self, VariableError> {
        let port = vars.number("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", 2773, 1..=65_535)?;
        let ttl = vars.number("SECRETS_TTL_SECS", DEFAULT_TTL.as_secs(), 0..=3600)?;
        Ok(Self {
            base_url: format!("http://localhost:{port}"),
            session_token: vars.optional("AWS_SESSION_TOKEN"),
            http,
            ttl: Duration::from_secs(ttl),
        })
    }

    /// A Parameter Store parameter's value and version (`/systemsmanager/parameters/get`,
    /// answered with GetParameter's own shape). The error says what went wrong.
    pub async fn parameter(&self, name: &str) -> Result<(Option<String>, String), String> {
        let body = self
            .get("/systemsmanager/parameters/get", "name", name)
            .await?;
        let parameter = &body["Parameter"];
        let Some(value) = parameter["Value"].as_str() else {
            return Err(format!("parameter {name} came without a Value"));
        };
        let version = parameter["Version"].as_u64().map(|v| v.to_string());
        Ok((version, value.to_owned()))
    }

    /// One JSON answer of the extension for `path?key=value`, with the session token it
    /// requires.
    async fn get(&self, path: &str, key: &str, value: &str) -> Result<Value, String> {
        let client = self.http.client().map_err(|e| e.to_string())?;
        let mut request = client
            .get(with_query(
                &format!("{}{path}", self.base_url),
                &[(key, value)],
            ))
            .timeout(FETCH_TIMEOUT);
        if let Some(token) = &self.session_token {
            request = request.header("X-Aws-Parameters-Secrets-Token", token);
        }
        let response = request.send().await.map_err(|e| {
            format!(
                "the extension did not answer ({}); is its layer attached?",
                root_cause(&e)
            )
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "the extension answered HTTP {} for {value}; check the name and the function's permission to read it",
                status.as_u16()
            ));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("the answer was cut short: {}", root_cause(&e)))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("unexpected answer: {e}"))
    }

    /// `SecretString` of `secret_id`; a JSON object secret gives its `name` key.
    async fn fetch(&self, name: &'static str, secret_id: &str) -> Result<String, SecretError> {
        let unavailable = |problem: String| SecretError::Unavailable { name, problem };
        let unusable = |problem: String| SecretError::Unusable { name, problem };
        let body = self
            .get("/secretsmanager/get", "secretId", secret_id)
            .await
            .map_err(unavailable)?;
        let Some(text) = body.get("SecretString").and_then(Value::as_str) else {
            return Err(unusable("the secret has no SecretString".into()));
        };
        // A JSON secret may hold several values; take the one named like the variable.
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
            return match map.get(name) {
                Some(Value::String(value)) => Ok(value.clone()),
                Some(_) => Err(unusable(format!("its \"{name}\" key is not a string"))),
                None => Err(unusable(format!(
                    "it is a JSON object without a \"{name}\" key"
                ))),
            };
        }
        Ok(text.to_owned())
    }
}

/// One secret of the function: its value, or where to fetch it from.
pub struct SecretCell {
    name: &'static str,
    source: Source,
}

enum Source {
    Given(Arc<Secret>),
    Fetched(Box<Fetched>),
}

struct Fetched {
    secret_id: String,
    requirement: Requirement,
    extension: Arc<SecretsExtension>,
    held: RwLock<Option<Held>>,
    /// Single flight: one fetch at a time, the others wait for it and then read its result.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Held {
    value: Arc<Secret>,
    fetched_at: Instant,
}

impl SecretCell {
    /// `NAME` from the environment, else `NAME_SECRET_ID`, else `None` (not configured).
    /// A value given directly is checked now; a fetched one when it arrives.
    pub fn from_variables(
        vars: &Variables<'_>,
        name: &'static str,
        requirement: Requirement,
        extension: &Arc<SecretsExtension>,
    ) -> Result<Option<Self>, VariableError> {
        if let Some(value) = vars.optional(name) {
            let secret = Secret::new(&value).ok_or(VariableError::Missing(name))?;
            requirement
                .check(&secret)
                .map_err(|problem| VariableError::Invalid { name, problem })?;
            return Ok(Some(Self::given(name, secret)));
        }
        let Some(secret_id) = vars.optional(&format!("{name}_SECRET_ID")) else {
            return Ok(None);
        };
        Ok(Some(Self {
            name,
            source: Source::Fetched(Box::new(Fetched {
                secret_id,
                requirement,
                extension: extension.clone(),
                held: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(()),
            })),
        }))
    }

    /// Like [`Self::from_variables`], for a secret the function cannot do without.
    pub fn required(
        vars: &Variables<'_>,
        name: &'static str,
        requirement: Requirement,
        extension: &Arc<SecretsExtension>,
    ) -> Result<Self, VariableError> {
        Self::from_variables(vars, name, requirement, extension)?
            .ok_or(VariableError::MissingSecret(name))
    }

    /// A secret known up front (tests, the sandbox).
    pub fn given(name: &'static str, secret: Secret) -> Self {
        Self {
            name,
            source: Source::Given(Arc::new(secret)),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value: held, or fetched now when it was never fetched or is older than the TTL.
    pub async fn get(&self) -> Result<Arc<Secret>, SecretError> {
        let fetched = match &self.source {
            Source::Given(secret) => return Ok(secret.clone()),
            Source::Fetched(fetched) => fetched,
        };
        let ttl = fetched.extension.ttl;
        let fresh = |held: &Option<Held>| {
            held.as_ref()
                .filter(|held| held.fetched_at.elapsed() < ttl)
                .map(|held| held.value.clone())
        };
        if let Some(value) = fresh(&read(&fetched.held)) {
            return Ok(value);
        }
        let _flight = fetched.refresh.lock().await;
        // Another invocation may have fetched it while this one waited.
        let previous = read(&fetched.held);
        if let Some(value) = fresh(&previous) {
            return Ok(value);
        }
        match self.fetch(fetched).await {
            Ok(value) => {
                let value = Arc::new(value);
                *fetched
                    .held
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Held {
                    value: value.clone(),
                    fetched_at: Instant::now(),
                });
                Ok(value)
            }
            Err(error) => match previous {
                Some(held) => {
                    tracing::warn!(secret = self.name, %error, "refreshing the secret failed; the last good value stays in use");
                    Ok(held.value)
                }
                None => {
                    // Logged here, once per failed fetch, with the reason the caller's answer
                    // leaves out.
                    tracing::error!(secret = self.name, %error, "the secret could not be read");
                    Err(error)
                }
            },
        }
    }

    async fn fetch(&self, fetched: &Fetched) -> Result<Secret, SecretError> {
        let text = fetched
            .extension
            .fetch(self.name, &fetched.secret_id)
            .await?;
        let secret = Secret::new(&text).ok_or(SecretError::Unusable {
            name: self.name,
            problem: "its value is blank".into(),
        })?;
        fetched
            .requirement
            .check(&secret)
            .map_err(|problem| SecretError::Unusable {
                name: self.name,
                problem,
            })?;
        Ok(secret)
    }
}

fn read(held: &RwLock<Option<Held>>) -> Option<Held> {
    held.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_value_is_not_a_secret() {
        assert_eq!(Secret::new(""), None);
        assert_eq!(Secret::new(" \t\n"), None);
        assert_eq!(Secret::new(" s3cret ").map(|s| s.0), Some("s3cret".into()));
        assert_eq!(format!("{:?}", Secret::new("x")), "Some(Secret(***))");
    }

    #[test]
    fn only_visible_ascii_fits_in_a_header() {
        assert!(Secret::new("Ab1-_~ !x").is_some_and(|s| s.fits_in_a_header()));
        assert!(Secret::new("caf\u{e9}").is_some_and(|s| !s.fits_in_a_header()));
        assert!(Secret::new("a\u{7f}b").is_some_and(|s| !s.fits_in_a_header()));
        assert!(
            Requirement::HeaderSafe
                .check(&Secret("caf\u{e9}".into()))
                .is_err()
        );
        assert!(Requirement::Any.check(&Secret("caf\u{e9}".into())).is_ok());
    }
}
