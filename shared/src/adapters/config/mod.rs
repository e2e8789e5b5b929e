//! What the functions share in configuration: what it is read with ([`Startup`]), the error
//! every loader returns, the routing rules' source, the decision deadline, the Profile API's
//! settings and the phone identifier type. Read once at start; secrets are only located
//! here, fetched later (see [`crate::adapters::secrets`]). Each function's own configuration
//! is typed in a submodule: [`lookups`] (route-decision, profile-lookup) and
//! [`wrap_up_ingest`].

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::http_client::HttpClient;
pub use crate::adapters::secrets::Secret;
use crate::adapters::secrets::{Requirement, SecretCell, SecretsExtension};
use crate::domain::rules::{DEFAULT_RULES, RuleSet, RulesError};
use crate::support::concurrency::Concurrency;
pub use crate::support::environment::{Environment, ProcessEnv, VariableError, Variables};

mod lookups;
pub mod runtime;
mod trait_store;
mod wrap_up_ingest;
pub use lookups::{ProfileLookupConfig, RouteDecisionConfig};
pub use runtime::Authentication;
pub use trait_store::{StoreReading, TraitSyncConfig};
pub use wrap_up_ingest::WrapUpIngestConfig;

/// Studio waits 10 s at most; the default leaves room for a proxy's retry and a Flex enqueue.
const DEFAULT_DECISION_DEADLINE_MS: u64 = 2500;

/// What a function is built from at startup: its variables, the one HTTPS client
/// (built on first need) and the secrets extension (called only once invocations run).
pub struct Startup<'a> {
    pub vars: Variables<'a>,
    /// How many invocations this environment serves at once.
    pub concurrency: Concurrency,
    pub http: HttpClient,
    pub extension: Arc<SecretsExtension>,
}

impl<'a> Startup<'a> {
    pub fn new(env: &'a dyn Environment, connect_timeout: Duration) -> Result<Self, ConfigError> {
        let vars = Variables::new(env);
        let concurrency = runtime::concurrency(&vars, true);
        if concurrency.is_concurrent() {
            tracing::info!(
                concurrency = concurrency.get(),
                "serving up to {} invocations at once ({})",
                concurrency.get(),
                crate::support::concurrency::VARIABLE
            );
        }
        let http = HttpClient::new(connect_timeout);
        let extension = Arc::new(runtime::secrets_extension(&vars, http.clone())?);
        Ok(Self {
            vars,
            concurrency,
            http,
            extension,
        })
    }
}

/// `DECISION_DEADLINE_MS`: the whole answer's budget of route-decision and profile-lookup.
pub fn decision_deadline(vars: &Variables<'_>) -> Result<Duration, VariableError> {
    vars.millis(
        "DECISION_DEADLINE_MS",
        DEFAULT_DECISION_DEADLINE_MS,
        100..=9000,
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Variable(#[from] VariableError),
    #[error("routing rules ({source_name}): {error}")]
    Rules {
        source_name: String,
        error: RulesError,
    },
}

/// The routing rules' text, and where it came from.
pub struct RulesText {
    /// How the configuration names it: `ROUTING_RULES`, `ROUTING_RULES_FILE <path>`, or the
    /// default rules.
    pub source_name: String,
    /// The file it was read from, for `ROUTING_RULES_FILE`.
    pub file: Option<std::path::PathBuf>,
    pub json: String,
}

/// `ROUTING_RULES` (inline JSON) or `ROUTING_RULES_FILE`, not both, else the recipe's rules.
pub fn rules_text(vars: &Variables<'_>) -> Result<RulesText, VariableError> {
    match (
        vars.optional("ROUTING_RULES"),
        vars.optional("ROUTING_RULES_FILE"),
    ) {
        (Some(_), Some(_)) => Err(VariableError::Invalid {
            name: "ROUTING_RULES_FILE",
            problem: "set either ROUTING_RULES or ROUTING_RULES_FILE, not both".into(),
        }),
        (Some(json), None) => Ok(RulesText {
            source_name: "ROUTING_RULES".to_owned(),
            file: None,
            json,
        }),
        (None, Some(path)) => {
            let json = std::fs::read_to_string(&path).map_err(|e| VariableError::Invalid {
                name: "ROUTING_RULES_FILE",
                problem: format!("cannot read {path}: {e}"),
            })?;
            Ok(RulesText {
                source_name: format!("ROUTING_RULES_FILE {path}"),
                file: Some(path.into()),
                json,
            })
        }
        (None, None) => Ok(RulesText {
            source_name: "the default rules".to_owned(),
            file: None,
            json: DEFAULT_RULES.to_owned(),
        }),
    }
}

/// The routing rules [`rules_text`] names, compiled.
pub fn rules(vars: &Variables<'_>) -> Result<RuleSet, ConfigError> {
    let RulesText {
        source_name, json, ..
    } = rules_text(vars)?;
    RuleSet::compile(&json).map_err(|error| ConfigError::Rules { source_name, error })
}

/// `SHADOW_ROUTING_RULES` (inline) or `SHADOW_ROUTING_RULES_FILE`: a candidate rule set judged
/// beside the live one. One that cannot be read or does not compile is logged once, here, and
/// ignored: a shadow never stops a decision.
pub fn shadow_rules(vars: &Variables<'_>) -> Option<RuleSet> {
    let (source, json) = match (
        vars.optional("SHADOW_ROUTING_RULES"),
        vars.optional("SHADOW_ROUTING_RULES_FILE"),
    ) {
        (None, None) => return None,
        (Some(_), Some(_)) => {
            tracing::warn!(
                "set either SHADOW_ROUTING_RULES or SHADOW_ROUTING_RULES_FILE, not both; no shadow rules"
            );
            return None;
        }
        (Some(json), None) => ("SHADOW_ROUTING_RULES".to_owned(), json),
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(json) => (format!("SHADOW_ROUTING_RULES_FILE {path}"), json),
            Err(error) => {
                tracing::warn!(%path, %error, "shadow rules cannot be read; no shadow rules");
                return None;
            }
        },
    };
    match RuleSet::compile(&json) {
        Ok(rules) => {
            let names: Vec<&str> = rules.rule_names().collect();
            tracing::info!(source = %source, rules = %names.join(","), "shadow rules judged beside the live ones, never acted on");
            Some(rules)
        }
        Err(error) => {
            tracing::warn!(source = %source, %error, "shadow rules do not compile; ignored");
            None
        }
    }
}

/// `SEGMENT_PHONE_IDENTIFIER`: the identifier type that holds phone numbers (`phone`).
pub fn phone_identifier(vars: &Variables<'_>) -> Result<String, VariableError> {
    let kind = vars
        .optional("SEGMENT_PHONE_IDENTIFIER")
        .unwrap_or_else(|| "phone".into());
    if kind.contains(':') || kind.contains(char::is_whitespace) {
        return Err(VariableError::Invalid {
            name: "SEGMENT_PHONE_IDENTIFIER",
            problem: "must be an identifier type name such as phone".into(),
        });
    }
    Ok(kind)
}

/// Where the Profile API is and how to call it.
pub struct ProfileApiConfig {
    pub base_url: String,
    pub space_id: String,
    pub token: SecretCell,
    pub phone_identifier: String,
    pub request_timeout: Duration,
    /// How long looked-up traits are reused by a warm instance; zero turns the cache off.
    pub cache_ttl: Duration,
    /// `PROFILE_CACHE_CAPACITY`: the most entries; by default 256 for each invocation the
    /// environment serves at once, at most [`MAX_CACHE_CAPACITY`].
    pub cache_capacity: usize,
    /// `PROFILE_API_RATE`: the requests a second this environment may send; unset, learned
    /// from Segment's 429s.
    pub rate: Rate,
}

/// A cache this size holds about 20 MB of traits of 1 KB each.
pub const MAX_CACHE_CAPACITY: u64 = 16_384;

/// The trait cache's entries for each invocation an environment serves at once. Bounds
/// memory whatever the traffic: an instance serving one request at a time, at ten decisions a
/// second, sees about 300 customers in a 30 s TTL, so 256 entries keep most repeats while the
/// cache stays under a few hundred KB (RSS stays flat; see the warm benchmark).
pub const CACHE_ENTRIES_PER_INVOCATION: u64 = 256;

impl ProfileApiConfig {
    /// Lookups are cut at the answer's deadline anyway; a longer request timeout is a mistake
    /// worth a line at start.
    pub fn warn_if_slower_than(&self, deadline: Duration) {
        if self.request_timeout > deadline {
            tracing::warn!(
                "PROFILE_TIMEOUT_MS exceeds DECISION_DEADLINE_MS; lookups will be cut at the deadline"
            );
        }
    }

    pub fn read(
        vars: &Variables<'_>,
        extension: &Arc<SecretsExtension>,
        concurrency: Concurrency,
    ) -> Result<Self, VariableError> {
        let space_id = vars.required("SEGMENT_SPACE_ID")?;
        if space_id.contains(['/', '?', '#', ' ']) {
            return Err(VariableError::Invalid {
                name: "SEGMENT_SPACE_ID",
                problem: "must be a space id such as spa_xxx".into(),
            });
        }
        Ok(Self {
            base_url: vars.url("SEGMENT_PROFILE_API_URL", "https://profiles.segment.com")?,
            space_id,
            token: runtime::required_secret(
                vars,
                "SEGMENT_PROFILE_API_TOKEN",
                Requirement::Any,
                extension,
            )?,
            phone_identifier: phone_identifier(vars)?,
            request_timeout: vars.millis("PROFILE_TIMEOUT_MS", 1500, 50..=9000)?,
            cache_ttl: Duration::from_secs(vars.number("PROFILE_CACHE_TTL_SECS", 30, 0..=3600)?),
            cache_capacity: cache_capacity(vars, concurrency)?,
            rate: profile_api_rate(vars)?,
        })
    }
}

/// Where the rate comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// `PROFILE_API_RATE`: requests a second, fixed.
    Fixed(f64),
    /// Learned from Segment's 429s.
    Adaptive,
}

/// `PROFILE_API_RATE`: requests a second, a decimal from 0.5 to 10,000 (a share of a space's
/// 100 split over many environments may be below one), or `TOTAL/ENVIRONMENTS`, that share
/// of a total (what the template writes: CloudFormation cannot divide; a share below 0.5 runs
/// at 0.5); unset, adaptive.
fn profile_api_rate(vars: &Variables<'_>) -> Result<Rate, VariableError> {
    let Some(raw) = vars.optional("PROFILE_API_RATE") else {
        return Ok(Rate::Adaptive);
    };
    let number = |text: &str| text.trim().parse::<f64>().ok().filter(|n| n.is_finite());
    let rate = match raw.split_once('/') {
        None => number(&raw),
        // A share spread over many environments may fall below the least rate: it runs at it.
        Some((total, environments)) => number(total)
            .filter(|total| *total >= 0.5)
            .zip(number(environments).filter(|n| *n >= 1.0))
            .map(|(total, environments)| (total / environments).max(0.5)),
    };
    match rate {
        Some(rate) if (0.5..=10_000.0).contains(&rate) => Ok(Rate::Fixed(rate)),
        _ => Err(VariableError::Invalid {
            name: "PROFILE_API_RATE",
            problem: format!(
                "{raw:?} is not a rate from 0.5 to 10000 requests a second, nor TOTAL/ENVIRONMENTS giving one (unset: learned from Segment's 429s)"
            ),
        }),
    }
}

/// What one environment's concurrent conversations need: each one's repeats, as a classic
/// instance serving one at a time keeps them in [`CACHE_ENTRIES_PER_INVOCATION`].
fn cache_capacity(vars: &Variables<'_>, concurrency: Concurrency) -> Result<usize, VariableError> {
    let default =
        (CACHE_ENTRIES_PER_INVOCATION * u64::from(concurrency.get())).min(MAX_CACHE_CAPACITY);
    let capacity = vars.number("PROFILE_CACHE_CAPACITY", default, 1..=MAX_CACHE_CAPACITY)?;
    Ok(capacity as usize)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::adapters::http_client::HttpClient;

    fn env_of(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn extension(vars: &Variables<'_>) -> Arc<SecretsExtension> {
        Arc::new(runtime::secrets_extension(vars, HttpClient::new(Duration::from_secs(1))).unwrap())
    }

    fn read(vars: &[(&str, &str)]) -> Result<ProfileApiConfig, VariableError> {
        let map = env_of(vars);
        let env = |name: &str| map.get(name).cloned();
        let vars = Variables::new(&env);
        ProfileApiConfig::read(&vars, &extension(&vars), runtime::concurrency(&vars, false))
    }

    #[test]
    fn profile_api_config_has_defaults_and_requires_space_and_token() {
        let config = read(&[
            ("SEGMENT_SPACE_ID", "spa_1"),
            ("SEGMENT_PROFILE_API_TOKEN", "tok"),
        ])
        .unwrap();
        assert_eq!(config.base_url, "https://profiles.segment.com");
        assert_eq!(config.phone_identifier, "phone");
        assert_eq!(config.request_timeout, Duration::from_millis(1500));
        assert_eq!(config.cache_ttl, Duration::from_secs(30));

        let error = read(&[("SEGMENT_PROFILE_API_TOKEN", "tok")]).err().unwrap();
        assert_eq!(
            error.to_string(),
            "SEGMENT_SPACE_ID is not set (it is required)"
        );

        let error = read(&[("SEGMENT_SPACE_ID", "spa_1")]).err().unwrap();
        assert!(
            error
                .to_string()
                .starts_with("SEGMENT_PROFILE_API_TOKEN is not set"),
            "{error}"
        );
        // A secret id is enough at start: the value is fetched during the first invocation.
        assert!(
            read(&[
                ("SEGMENT_SPACE_ID", "spa_1"),
                ("SEGMENT_PROFILE_API_TOKEN_SECRET_ID", "studio-router/token"),
            ])
            .is_ok()
        );
    }

    #[test]
    fn the_cache_grows_with_the_concurrency_and_stays_configurable() {
        let base = [
            ("SEGMENT_SPACE_ID", "spa_1"),
            ("SEGMENT_PROFILE_API_TOKEN", "tok"),
        ];
        let capacity = |extra: &[(&'static str, &'static str)]| {
            let vars: Vec<_> = base.iter().chain(extra).copied().collect();
            read(&vars).map(|config| config.cache_capacity)
        };
        assert_eq!(capacity(&[]).unwrap(), 256);
        assert_eq!(
            capacity(&[("AWS_LAMBDA_MAX_CONCURRENCY", "32")]).unwrap(),
            8192
        );
        assert_eq!(
            capacity(&[("AWS_LAMBDA_MAX_CONCURRENCY", "1000")]).unwrap(),
            16_384
        );
        assert_eq!(
            capacity(&[("AWS_LAMBDA_MAX_CONCURRENCY", "many")]).unwrap(),
            256
        );
        let set = [
            ("AWS_LAMBDA_MAX_CONCURRENCY", "32"),
            ("PROFILE_CACHE_CAPACITY", "50"),
        ];
        assert_eq!(capacity(&set).unwrap(), 50);
        assert!(capacity(&[("PROFILE_CACHE_CAPACITY", "0")]).is_err());
    }

    #[test]
    fn the_phone_identifier_is_a_type_name() {
        let error = read(&[
            ("SEGMENT_SPACE_ID", "spa_1"),
            ("SEGMENT_PROFILE_API_TOKEN", "tok"),
            ("SEGMENT_PHONE_IDENTIFIER", "phone:x"),
        ])
        .err()
        .unwrap();
        assert_eq!(
            error.to_string(),
            "SEGMENT_PHONE_IDENTIFIER is invalid: must be an identifier type name such as phone"
        );
    }

    #[test]
    fn rules_come_from_inline_json_a_file_or_the_default() {
        let none = env_of(&[]);
        let env = |name: &str| none.get(name).cloned();
        let default = rules(&Variables::new(&env)).unwrap();
        assert_eq!(
            default.rule_names().collect::<Vec<_>>(),
            ["read-docs-recently"]
        );

        let inline = env_of(&[(
            "ROUTING_RULES",
            r#"{"rules": [{"name": "bad", "when": "traits.x >", "transition": "a"}], "default": "b", "on_error": "a"}"#,
        )]);
        let env = |name: &str| inline.get(name).cloned();
        let error = rules(&Variables::new(&env)).err().unwrap().to_string();
        assert!(
            error.starts_with(
                "routing rules (ROUTING_RULES): rule \"bad\": condition does not parse"
            ),
            "{error}"
        );

        let file = env_of(&[("ROUTING_RULES_FILE", "/nonexistent/rules.json")]);
        let env = |name: &str| file.get(name).cloned();
        let error = rules(&Variables::new(&env)).err().unwrap().to_string();
        assert!(
            error.contains("cannot read /nonexistent/rules.json"),
            "{error}"
        );
    }

    #[test]
    fn the_profile_api_rate_is_a_number_a_share_or_learned() {
        let rate = |value: &str| {
            profile_api_rate(&Variables::new(&|name: &str| {
                (name == "PROFILE_API_RATE").then(|| value.to_owned())
            }))
        };
        assert_eq!(rate(""), Ok(Rate::Adaptive));
        assert_eq!(rate("100"), Ok(Rate::Fixed(100.0)));
        assert_eq!(rate("0.5"), Ok(Rate::Fixed(0.5)));
        assert_eq!(rate("70/4"), Ok(Rate::Fixed(17.5)));
        assert_eq!(
            rate("30/61"),
            Ok(Rate::Fixed(0.5)),
            "a small share runs at the least rate"
        );
        for wrong in [
            "fast", "0", "0.1", "70/0", "70/", "/4", "NaN", "inf", "100000",
        ] {
            let error = rate(wrong).expect_err(wrong);
            assert!(error.to_string().contains("PROFILE_API_RATE"), "{error}");
        }
    }
}
