//! Routing rules from AWS AppConfig (a freeform JSON configuration profile), read through the
//! AppConfig Agent Lambda extension on localhost, so an operator changes them without a
//! deployment of the function.
//!
//! Read during INVOKE only, like the secrets: the first decision of an environment waits
//! (at most [`FIRST_FETCH`]) for them; later ones never wait: when the rules are older than
//! `RULES_MAX_AGE_SECS` a refresh runs in the background and the next decisions use what it
//! brought. A version that does not compile never replaces the rules in use: it is logged
//! once and the last good set stays. Until a first version arrives the function's own rules
//! (`ROUTING_RULES`, `ROUTING_RULES_FILE` or the recipe's) decide.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::environment::{VariableError, Variables};
use crate::http_client::{HttpClient, root_cause};
use crate::metrics::{self, Counter};
use crate::rules::{LiveRules, RuleSet};

/// The extension's own default poll interval is 45 s; reading it more often gains nothing.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(45);
/// How long the first decision of an environment waits for the rules.
pub const FIRST_FETCH: Duration = Duration::from_millis(1000);
/// One request to the extension.
const FETCH_TIMEOUT: Duration = Duration::from_millis(2000);
/// What a name must have encoded in a path segment: all but RFC 3986's unreserved characters
/// (AWS's agent page: names that contain "/" must be URL-encoded).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// A rules document larger than this is not a rules document.
const MAX_RULES_BYTES: usize = 256 * 1024;

#[derive(Default)]
struct State {
    /// When the extension was last asked (answered or not).
    asked_at: Option<Instant>,
    /// The version in use, and the last one refused (each is logged once).
    in_use: Option<String>,
    refused: Option<String>,
    /// Rule sets applied and refused since the last decision reported them in its metrics
    /// (refreshes run in the background, outside any invocation).
    updated: u64,
    rejected: u64,
}

/// Where the rules come from in AppConfig, and what was last read.
pub struct AppConfigRules {
    http: HttpClient,
    url: String,
    /// `application/environment/profile`, for log lines.
    name: String,
    max_age: Duration,
    live: Arc<LiveRules>,
    state: Mutex<State>,
    /// One fetch at a time: concurrent first decisions wait for the same one, and a
    /// background refresh holds it for as long as it runs.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl AppConfigRules {
    /// `ROUTING_RULES_APPCONFIG` (`application/environment/profile`), `RULES_MAX_AGE_SECS`
    /// (default 45) and `AWS_APPCONFIG_EXTENSION_HTTP_PORT` (default 2772); `None` when the
    /// rules do not come from AppConfig.
    pub fn from_variables(
        vars: &Variables<'_>,
        http: HttpClient,
        live: Arc<LiveRules>,
    ) -> Result<Option<Arc<Self>>, VariableError> {
        let Some(name) = vars.optional("ROUTING_RULES_APPCONFIG") else {
            return Ok(None);
        };
        let parts: Vec<&str> = name.split('/').collect();
        let [application, environment, profile] = parts[..] else {
            return Err(VariableError::Invalid {
                name: "ROUTING_RULES_APPCONFIG",
                problem: "must be application/environment/configuration-profile".into(),
            });
        };
        if [application, environment, profile]
            .iter()
            .any(|part| part.trim().is_empty())
        {
            return Err(VariableError::Invalid {
                name: "ROUTING_RULES_APPCONFIG",
                problem: "application, environment and configuration profile must all be named"
                    .into(),
            });
        }
        let port = vars.number("AWS_APPCONFIG_EXTENSION_HTTP_PORT", 2772, 1..=65_535)?;
        let max_age = vars.number("RULES_MAX_AGE_SECS", DEFAULT_MAX_AGE.as_secs(), 1..=3600)?;
        let segment = |part: &str| utf8_percent_encode(part, SEGMENT).to_string();
        Ok(Some(Arc::new(Self {
            http,
            url: format!(
                "http://localhost:{port}/applications/{}/environments/{}/configurations/{}",
                segment(application),
                segment(environment),
                segment(profile)
            ),
            name,
            max_age: Duration::from_secs(max_age),
            live,
            state: Mutex::default(),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Before a decision: the first one waits for the rules, at most [`FIRST_FETCH`] and
    /// `within`; later ones start a background refresh when the rules are older than the max
    /// age, and never wait. The first fetch runs as a task of its own, so a decision that
    /// stops waiting does not cancel it: the next decisions get what it brings.
    pub async fn keep_fresh(self: &Arc<Self>, within: Duration) {
        let asked_at = self.state().asked_at;
        match asked_at {
            None => {
                let source = self.clone();
                let first = tokio::spawn(async move { source.refresh().await });
                let _ = tokio::time::timeout(FIRST_FETCH.min(within), first).await;
            }
            Some(at) if at.elapsed() >= self.max_age => {
                if let Ok(guard) = self.fetching.clone().try_lock_owned() {
                    let source = self.clone();
                    tokio::spawn(async move {
                        let _guard = guard;
                        source.fetch_and_apply().await;
                    });
                }
            }
            Some(_) => {}
        }
    }

    /// Counts the rule sets applied and refused since the last report in the current
    /// invocation's metrics.
    pub fn report(&self) {
        let (updated, rejected) = {
            let mut state = self.state();
            (
                std::mem::take(&mut state.updated),
                std::mem::take(&mut state.rejected),
            )
        };
        metrics::add(Counter::RulesUpdated, updated);
        metrics::add(Counter::RulesRejected, rejected);
    }

    /// One fetch, unless another has just been made.
    async fn refresh(&self) {
        let _one_at_a_time = self.fetching.lock().await;
        if self.state().asked_at.is_some() {
            return; // a concurrent first decision fetched while this one waited
        }
        self.fetch_and_apply().await;
    }

    async fn fetch_and_apply(&self) {
        self.state().asked_at = Some(Instant::now());
        let (version, json) = match self.fetch().await {
            Ok(fetched) => fetched,
            Err(problem) => {
                tracing::warn!(source = %self.name, %problem, "routing rules could not be read from AppConfig; the rules in use stay");
                return;
            }
        };
        // Without a version header, the content itself tells one version from the next.
        let seen = version.clone().unwrap_or_else(|| {
            let mut hash = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&json, &mut hash);
            format!("content {:016x}", std::hash::Hasher::finish(&hash))
        });
        {
            let state = self.state();
            if state.in_use.as_ref() == Some(&seen) || state.refused.as_ref() == Some(&seen) {
                return;
            }
        }
        match RuleSet::compile(&json) {
            Ok(rules) => {
                let names: Vec<&str> = rules.rule_names().collect();
                tracing::info!(source = %self.name, version = version.as_deref(), rules = %names.join(", "), "routing rules updated from AppConfig");
                self.live.replace(rules);
                let mut state = self.state();
                state.in_use = Some(seen);
                state.updated += 1;
            }
            Err(error) => {
                tracing::warn!(source = %self.name, version = version.as_deref(), %error, "routing rules from AppConfig cannot be used; the rules in use stay");
                let mut state = self.state();
                state.refused = Some(seen);
                state.rejected += 1;
            }
        }
    }

    /// The configuration's version (the agent's `Configuration-Version`) and content.
    async fn fetch(&self) -> Result<(Option<String>, String), String> {
        let client = self.http.client().map_err(|e| e.to_string())?;
        let response = client
            .get(&self.url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "the AppConfig extension did not answer ({}); is its layer attached?",
                    root_cause(&e)
                )
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "the AppConfig extension answered HTTP {}; check ROUTING_RULES_APPCONFIG and the function's permission to read it",
                status.as_u16()
            ));
        }
        let version = response
            .headers()
            .get("configuration-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if response
            .content_length()
            .is_some_and(|length| length > MAX_RULES_BYTES as u64)
        {
            return Err(format!("the configuration is over {MAX_RULES_BYTES} bytes"));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("the answer was cut short: {}", root_cause(&e)))?;
        if bytes.len() > MAX_RULES_BYTES {
            return Err(format!("the configuration is over {MAX_RULES_BYTES} bytes"));
        }
        let json = String::from_utf8(bytes.to_vec())
            .map_err(|_| "the configuration is not UTF-8 text".to_owned())?;
        Ok((version, json))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::rules::DEFAULT_RULES;

    fn source(vars: &[(&str, &str)]) -> Result<Option<Arc<AppConfigRules>>, VariableError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let env = |name: &str| map.get(name).cloned();
        let live = Arc::new(LiveRules::new(RuleSet::compile(DEFAULT_RULES).unwrap()));
        AppConfigRules::from_variables(
            &Variables::new(&env),
            HttpClient::new(Duration::from_secs(1)),
            live,
        )
    }

    #[test]
    fn unset_means_the_rules_do_not_come_from_appconfig() {
        assert!(source(&[]).unwrap().is_none());
    }

    #[test]
    fn the_path_names_application_environment_and_profile_encoded() {
        let source = source(&[
            (
                "ROUTING_RULES_APPCONFIG",
                "studio-router/prod eu/routing_rules.v1",
            ),
            ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", "2999"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            source.url,
            "http://localhost:2999/applications/studio-router/environments/prod%20eu/configurations/routing_rules.v1"
        );
        assert_eq!(source.max_age, DEFAULT_MAX_AGE);
    }

    #[test]
    fn anything_but_three_names_is_a_configuration_error() {
        for value in ["studio-router/prod", "a/b/c/d", "a//c", "a/ /c"] {
            let error = source(&[("ROUTING_RULES_APPCONFIG", value)])
                .err()
                .unwrap_or_else(|| panic!("{value} was accepted"));
            assert!(
                error.to_string().contains("ROUTING_RULES_APPCONFIG"),
                "{value}: {error}"
            );
        }
        assert!(
            source(&[
                ("ROUTING_RULES_APPCONFIG", "a/b/c"),
                ("RULES_MAX_AGE_SECS", "0")
            ])
            .is_err()
        );
    }
}
