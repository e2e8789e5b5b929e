//! Secrets: given in the environment, or named by a Secrets Manager id (`<NAME>_SECRET_ID`)
//! and read through the AWS Parameters and Secrets Lambda Extension.
//!
//! The extension can be called only during INVOKE, never during INIT: Lambda starts the
//! runtime's init as soon as the extension has registered, before its HTTP server is ready
//! (AWS's Parameter Store guide, "Using Parameter Store parameters in Lambda functions"). So
//! nothing is fetched at start: the first invocation that needs a secret fetches it (a warm-up
//! counts), and the instance keeps it and refreshes it as [`SecretCell`] describes.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::adapters::extension::{ExtensionError, LocalExtension};
use crate::adapters::http_client::HttpClient;

mod cell;

pub use cell::{FAILURE_BACK_OFF, SecretCell};

/// The extension's own cache keeps a value 300 s by default, and at most 300 s.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

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

/// Why a secret is not available (defined with the ports, whose errors carry it).
pub use crate::domain::ports::SecretError;

/// What a secret's value must satisfy beyond not being blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Any,
    /// Compared with what a caller sends in a header: see [`Secret::fits_in_a_header`].
    HeaderSafe,
}

impl Requirement {
    pub(crate) fn check(self, secret: &Secret) -> Result<(), String> {
        match self {
            Self::HeaderSafe if !secret.fits_in_a_header() => Err(
                "it holds characters an HTTP header cannot carry (use visible ASCII only), so no caller could ever present it"
                    .into(),
            ),
            _ => Ok(()),
        }
    }
}

/// The AWS Parameters and Secrets Lambda Extension on localhost: secrets and parameters.
pub struct SecretsExtension {
    local: LocalExtension,
    ttl: Duration,
}

impl SecretsExtension {
    /// The extension listening on `port`, given Lambda's session token back, its secrets
    /// kept for `ttl`.
    pub fn new(port: u64, session_token: Option<String>, ttl: Duration, http: HttpClient) -> Self {
        Self {
            local: LocalExtension::parameters_and_secrets(port, session_token, http),
            ttl,
        }
    }

    /// The same extension, each request cut at `timeout` (tests).
    #[cfg(test)]
    pub(crate) fn with_timeout(self, timeout: Duration) -> Self {
        Self {
            local: self.local.with_timeout(timeout),
            ttl: self.ttl,
        }
    }

    /// How long a fetched secret is used before it is refreshed.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A Parameter Store parameter's version and value (`/systemsmanager/parameters/get`,
    /// answered with GetParameter's own shape).
    pub async fn parameter(&self, name: &str) -> Result<(Option<String>, String), ExtensionError> {
        let body = self
            .local
            .get_json("/systemsmanager/parameters/get", &[("name", name)])
            .await?;
        let parameter = &body["Parameter"];
        let Some(value) = parameter["Value"].as_str() else {
            return Err(self
                .local
                .unexpected(format!("parameter {name} came without a Value")));
        };
        let version = parameter["Version"].as_u64().map(|v| v.to_string());
        Ok((version, value.to_owned()))
    }

    /// `SecretString` of `secret_id`; a JSON object secret gives its `name` key.
    async fn secret_string(
        &self,
        name: &'static str,
        secret_id: &str,
    ) -> Result<String, SecretError> {
        let unusable = |problem: String| SecretError::Unusable { name, problem };
        let body = self
            .local
            .get_json("/secretsmanager/get", &[("secretId", secret_id)])
            .await
            .map_err(|error| SecretError::Unavailable {
                name,
                problem: error.to_string(),
            })?;
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
