//! Configuration from the environment, read and validated once at start. Every error names
//! the variable and what is wrong with it; secrets never appear in messages or `Debug`.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::auth::Authenticator;
use crate::http_client::HttpClient;
use crate::rules::{DEFAULT_RULES, RuleSet, RulesError};

/// A secret value: printable only on purpose.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{0} is not set (it is required; or set {0}_SECRET_ID to read it from Secrets Manager)"
    )]
    MissingSecret(&'static str),
    #[error("{0} is not set (it is required)")]
    Missing(&'static str),
    #[error("{name} is invalid: {problem}")]
    Invalid { name: &'static str, problem: String },
    #[error(
        "{name}_SECRET_ID could not be read through the Parameters and Secrets extension: {problem}"
    )]
    SecretFetch { name: &'static str, problem: String },
    #[error("routing rules ({source_name}): {error}")]
    Rules {
        source_name: String,
        error: RulesError,
    },
}

/// Where variables come from: the process environment, or a map in tests and the sandbox.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Environment for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Reads variables, treating blank values as unset.
pub struct Reader<'a> {
    env: &'a dyn Environment,
    http: &'a HttpClient,
}

impl<'a> Reader<'a> {
    pub fn new(env: &'a dyn Environment, http: &'a HttpClient) -> Self {
        Self { env, http }
    }

    pub fn optional(&self, name: &str) -> Option<String> {
        self.env
            .var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn url(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.optional(name).unwrap_or_else(|| default.to_owned());
        let lower = value.to_ascii_lowercase();
        let host = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        match host {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {
                Ok(value.trim_end_matches('/').to_owned())
            }
            _ => Err(ConfigError::Invalid {
                name,
                problem: "must be an http:// or https:// URL".into(),
            }),
        }
    }

    pub fn millis(
        &self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, range).map(Duration::from_millis)
    }

    pub fn number(
        &self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.optional(name) else {
            return Ok(default);
        };
        match raw.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError::Invalid {
                name,
                problem: format!(
                    "must be a whole number from {} to {}, got \"{raw}\"",
                    range.start(),
                    range.end()
                ),
            }),
        }
    }

    pub fn boolean(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self
            .optional(name)
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(ConfigError::Invalid {
                name,
                problem: format!("must be true or false, got \"{other}\""),
            }),
        }
    }

    /// A secret from `NAME`, or from the Secrets Manager id in `NAME_SECRET_ID`.
    pub async fn secret(&self, name: &'static str) -> Result<Option<Secret>, ConfigError> {
        if let Some(value) = self.optional(name) {
            return Ok(Some(Secret(value)));
        }
        let Some(secret_id) = self.optional(&format!("{name}_SECRET_ID")) else {
            return Ok(None);
        };
        self.fetch_secret(name, &secret_id).await.map(Some)
    }

    pub async fn required_secret(&self, name: &'static str) -> Result<Secret, ConfigError> {
        self.secret(name)
            .await?
            .ok_or(ConfigError::MissingSecret(name))
    }

    /// Through the AWS Parameters and Secrets Lambda Extension on localhost: no AWS SDK in
    /// the binary, and the extension caches the value across instances' starts.
    async fn fetch_secret(
        &self,
        name: &'static str,
        secret_id: &str,
    ) -> Result<Secret, ConfigError> {
        let fail = |problem: String| ConfigError::SecretFetch { name, problem };
        let port = self
            .optional("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")
            .unwrap_or_else(|| "2773".into());
        let client = self.http.get().map_err(|e| fail(e.to_string()))?;
        let mut request = client
            .get(crate::http_client::with_query(
                &format!("http://localhost:{port}/secretsmanager/get"),
                &[("secretId", secret_id)],
            ))
            .timeout(Duration::from_secs(3));
        if let Some(token) = self.optional("AWS_SESSION_TOKEN") {
            request = request.header("X-Aws-Parameters-Secrets-Token", token);
        }
        let response = request.send().await.map_err(|e| {
            fail(format!(
                "the extension did not answer ({e}); is its layer attached?"
            ))
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!(
                "the extension answered HTTP {}; check the id and the function's IAM permission",
                status.as_u16()
            )));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| fail(format!("the answer was cut short: {e}")))?;
        let body: Value =
            serde_json::from_slice(&bytes).map_err(|e| fail(format!("unexpected answer: {e}")))?;
        let Some(text) = body.get("SecretString").and_then(Value::as_str) else {
            return Err(fail("the secret has no SecretString".into()));
        };
        // A JSON secret may hold several values; take the one named like the variable.
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
            return match map.get(name).and_then(Value::as_str) {
                Some(value) => Ok(Secret(value.to_owned())),
                None => Err(fail(format!(
                    "the secret is a JSON object without a \"{name}\" key"
                ))),
            };
        }
        Ok(Secret(text.trim().to_owned()))
    }

    /// `TWILIO_AUTH_TOKEN`, `TWILIO_WEBHOOK_BASE_URL`, `PROXY_SHARED_SECRET`, `ALLOW_UNAUTHENTICATED`.
    pub async fn authenticator(&self) -> Result<Authenticator, ConfigError> {
        let public_base_url = match self.optional("TWILIO_WEBHOOK_BASE_URL") {
            Some(_) => Some(self.url("TWILIO_WEBHOOK_BASE_URL", "")?),
            None => None,
        };
        let auth = Authenticator {
            twilio_auth_token: self.secret("TWILIO_AUTH_TOKEN").await?,
            public_base_url,
            shared_secret: self.secret("PROXY_SHARED_SECRET").await?,
            allow_unauthenticated: self.boolean("ALLOW_UNAUTHENTICATED")?,
        };
        if !auth.has_any_method() {
            if auth.allow_unauthenticated {
                tracing::warn!(
                    "ALLOW_UNAUTHENTICATED is set and no authentication is configured: any HTTP caller is accepted (local use only)"
                );
            } else {
                tracing::warn!(
                    "neither TWILIO_AUTH_TOKEN nor PROXY_SHARED_SECRET is set: every HTTP request will be refused with 401 (direct invokes still work)"
                );
            }
        }
        Ok(auth)
    }

    /// `ROUTING_RULES` (inline JSON) or `ROUTING_RULES_FILE`, else the recipe's rules.
    pub fn rules(&self) -> Result<RuleSet, ConfigError> {
        let (source_name, json) = match (
            self.optional("ROUTING_RULES"),
            self.optional("ROUTING_RULES_FILE"),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "ROUTING_RULES_FILE",
                    problem: "set either ROUTING_RULES or ROUTING_RULES_FILE, not both".into(),
                });
            }
            (Some(inline), None) => ("ROUTING_RULES".to_owned(), inline),
            (None, Some(path)) => {
                let json = std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
                    name: "ROUTING_RULES_FILE",
                    problem: format!("cannot read {path}: {e}"),
                })?;
                (format!("ROUTING_RULES_FILE {path}"), json)
            }
            (None, None) => ("the default rules".to_owned(), DEFAULT_RULES.to_owned()),
        };
        RuleSet::compile(&json).map_err(|error| ConfigError::Rules { source_name, error })
    }
}

/// Where the Profile API is and how to call it.
#[derive(Debug, Clone)]
pub struct ProfileApiConfig {
    pub base_url: String,
    pub space_id: String,
    pub token: Secret,
    pub phone_identifier: String,
    pub request_timeout: Duration,
    /// How long looked-up traits are reused by a warm instance; zero turns the cache off.
    pub cache_ttl: Duration,
}

impl ProfileApiConfig {
    pub async fn read(reader: &Reader<'_>) -> Result<Self, ConfigError> {
        let space_id = reader.required("SEGMENT_SPACE_ID")?;
        if space_id.contains(['/', '?', '#', ' ']) {
            return Err(ConfigError::Invalid {
                name: "SEGMENT_SPACE_ID",
                problem: "must be a space id such as spa_xxx".into(),
            });
        }
        let phone_identifier = reader
            .optional("SEGMENT_PHONE_IDENTIFIER")
            .unwrap_or_else(|| "phone".into());
        if phone_identifier.contains(':') || phone_identifier.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                name: "SEGMENT_PHONE_IDENTIFIER",
                problem: "must be an identifier type name such as phone".into(),
            });
        }
        Ok(Self {
            base_url: reader.url("SEGMENT_PROFILE_API_URL", "https://profiles.segment.com")?,
            space_id,
            token: reader.required_secret("SEGMENT_PROFILE_API_TOKEN").await?,
            phone_identifier,
            request_timeout: reader.millis("PROFILE_TIMEOUT_MS", 1500, 50..=9000)?,
            cache_ttl: Duration::from_secs(reader.number(
                "PROFILE_CACHE_TTL_SECS",
                30,
                0..=3600,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn reader_over(vars: &[(&str, &str)]) -> (HashMap<String, String>, HttpClient) {
        (
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            HttpClient::new(Duration::from_secs(1)),
        )
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn profile_api_config_has_defaults_and_requires_space_and_token() {
        let (vars, http) = reader_over(&[
            ("SEGMENT_SPACE_ID", "spa_1"),
            ("SEGMENT_PROFILE_API_TOKEN", "tok"),
        ]);
        let env = |name: &str| vars.get(name).cloned();
        let config = run(ProfileApiConfig::read(&Reader::new(&env, &http))).unwrap();
        assert_eq!(config.base_url, "https://profiles.segment.com");
        assert_eq!(config.phone_identifier, "phone");
        assert_eq!(config.request_timeout, Duration::from_millis(1500));
        assert_eq!(config.cache_ttl, Duration::from_secs(30));
        assert_eq!(format!("{:?}", config.token), "Secret(***)");

        let (vars, http) = reader_over(&[("SEGMENT_PROFILE_API_TOKEN", "tok")]);
        let env = |name: &str| vars.get(name).cloned();
        let error = run(ProfileApiConfig::read(&Reader::new(&env, &http))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "SEGMENT_SPACE_ID is not set (it is required)"
        );

        let (vars, http) = reader_over(&[("SEGMENT_SPACE_ID", "spa_1")]);
        let env = |name: &str| vars.get(name).cloned();
        let error = run(ProfileApiConfig::read(&Reader::new(&env, &http))).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("SEGMENT_PROFILE_API_TOKEN is not set"),
            "{error}"
        );
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let (vars, http) = reader_over(&[
            ("PROFILE_TIMEOUT_MS", "fast"),
            ("SEGMENT_PROFILE_API_URL", "profiles.segment.com"),
            ("ALLOW_UNAUTHENTICATED", "sure"),
        ]);
        let env = |name: &str| vars.get(name).cloned();
        let reader = Reader::new(&env, &http);
        assert_eq!(
            reader
                .millis("PROFILE_TIMEOUT_MS", 1500, 50..=9000)
                .unwrap_err()
                .to_string(),
            "PROFILE_TIMEOUT_MS is invalid: must be a whole number from 50 to 9000, got \"fast\""
        );
        assert_eq!(
            reader
                .url("SEGMENT_PROFILE_API_URL", "https://x")
                .unwrap_err()
                .to_string(),
            "SEGMENT_PROFILE_API_URL is invalid: must be an http:// or https:// URL"
        );
        assert!(
            reader
                .boolean("ALLOW_UNAUTHENTICATED")
                .unwrap_err()
                .to_string()
                .contains("must be true or false")
        );
    }

    #[test]
    fn rules_come_from_inline_json_a_file_or_the_default() {
        let (vars, http) = reader_over(&[]);
        let env = |name: &str| vars.get(name).cloned();
        let default = Reader::new(&env, &http).rules().unwrap();
        assert_eq!(
            default.rule_names().collect::<Vec<_>>(),
            ["read-docs-recently"]
        );

        let (vars, http) = reader_over(&[(
            "ROUTING_RULES",
            r#"{"rules": [{"name": "bad", "when": "traits.x >", "transition": "a"}], "default": "b", "on_error": "a"}"#,
        )]);
        let env = |name: &str| vars.get(name).cloned();
        let error = Reader::new(&env, &http).rules().err().unwrap().to_string();
        assert!(
            error.starts_with(
                "routing rules (ROUTING_RULES): rule \"bad\": condition does not parse"
            ),
            "{error}"
        );

        let (vars, http) = reader_over(&[("ROUTING_RULES_FILE", "/nonexistent/rules.json")]);
        let env = |name: &str| vars.get(name).cloned();
        let error = Reader::new(&env, &http).rules().err().unwrap().to_string();
        assert!(
            error.contains("cannot read /nonexistent/rules.json"),
            "{error}"
        );
    }
}
