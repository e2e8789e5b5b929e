//! Routing rules that change while the function runs, so an operator changes them without a
//! deployment: from AWS AppConfig (a freeform JSON configuration profile, through the AppConfig
//! Agent Lambda extension on localhost), or from a Parameter Store parameter (through the
//! Parameters and Secrets extension the secrets already use).
//!
//! Read during INVOKE only and kept fresh as [`crate::adapters::refresh`] describes (max age
//! `RULES_MAX_AGE_SECS`, default 45 s). A version that does not compile never replaces the
//! rules in use: it is logged once, counted, and the last good set stays. Until a first
//! version arrives the function's own rules (`ROUTING_RULES`, `ROUTING_RULES_FILE` or the
//! recipe's) decide.
//!
//! A second feed may serve the shadow set (`SHADOW_ROUTING_RULES_APPCONFIG` /
//! `_PARAMETER`) the same way, except that no decision waits for it and its versions are
//! logged, not counted: the shadow is the operator's experiment, not the routing.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::adapters::extension::{ExtensionError, LocalExtension};
use crate::adapters::http_client::HttpClient;
use crate::adapters::refresh::{Freshness, Refresh};
use crate::adapters::secrets::SecretsExtension;
use crate::domain::routing::shadow_admitted;
use crate::domain::rules::{RuleSet, RulesInUse, ShadowInUse};
use crate::support::metrics::{self, Counter};

/// What a name must have encoded in a path segment: all but RFC 3986's unreserved characters
/// (AWS's agent page: names that contain "/" must be URL-encoded).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// A rules document larger than this is not a rules document: the AppConfig extension's
/// answer is refused past it, however it is framed.
const MAX_RULES_BYTES: usize = 256 * 1024;

#[derive(Default)]
struct State {
    /// The version in use, and the last one refused (each is logged once).
    in_use: Option<String>,
    refused: Option<String>,
    /// Rule sets applied and refused since the last decision reported them in its metrics
    /// (reads run in the background, outside any invocation).
    updated: u64,
    rejected: u64,
}

/// Which extension serves the rules.
enum Origin {
    AppConfig {
        extension: LocalExtension,
        /// `/applications/{app}/environments/{env}/configurations/{profile}`, encoded.
        path: String,
    },
    Parameter {
        extension: Arc<SecretsExtension>,
        name: String,
    },
}

/// Which rules a feed replaces.
pub enum Destination {
    /// The rules that decide.
    Live(Arc<RulesInUse>),
    /// The shadow set, which must still fit the one lookup beside the live rules and the
    /// traits every answer returns.
    Shadow {
        shadow: Arc<ShadowInUse>,
        live: Arc<RulesInUse>,
        returned: Arc<BTreeSet<String>>,
    },
}

impl Destination {
    /// `rules`, put in use; `Err` says why not.
    fn replace(&self, rules: RuleSet) -> Result<(), String> {
        match self {
            Self::Live(live) => live.replace(rules),
            Self::Shadow {
                shadow,
                live,
                returned,
            } => {
                shadow_admitted(&live.current(), &rules, returned)?;
                shadow.replace(rules);
            }
        }
        Ok(())
    }

    /// Which rules, in log lines.
    fn kind(&self) -> &'static str {
        match self {
            Self::Live(_) => "routing rules",
            Self::Shadow { .. } => "shadow routing rules",
        }
    }
}

/// Where newer rules come from, and what was last read.
pub struct RulesFeed {
    origin: Origin,
    /// `application/environment/profile` or the parameter's name, for log lines.
    name: String,
    into: Destination,
    freshness: Freshness,
    state: Mutex<State>,
}

impl RulesFeed {
    /// Rules from AppConfig's `application/environment/profile`, through the AppConfig agent
    /// listening on `port`, read again after `max_age`.
    pub fn appconfig(
        [application, environment, profile]: [&str; 3],
        port: u64,
        http: HttpClient,
        max_age: Duration,
        into: Destination,
    ) -> Self {
        let segment = |part: &str| utf8_percent_encode(part, SEGMENT).to_string();
        let origin = Origin::AppConfig {
            extension: LocalExtension::appconfig(port, http, MAX_RULES_BYTES),
            path: format!(
                "/applications/{}/environments/{}/configurations/{}",
                segment(application),
                segment(environment),
                segment(profile)
            ),
        };
        Self::new(
            origin,
            [application, environment, profile].join("/"),
            max_age,
            into,
        )
    }

    /// Rules from the Parameter Store parameter `name`, read again after `max_age`.
    pub fn parameter(
        name: String,
        extension: &Arc<SecretsExtension>,
        max_age: Duration,
        into: Destination,
    ) -> Self {
        let origin = Origin::Parameter {
            extension: extension.clone(),
            name: name.clone(),
        };
        Self::new(origin, name, max_age, into)
    }

    fn new(origin: Origin, name: String, max_age: Duration, into: Destination) -> Self {
        Self {
            origin,
            name,
            into,
            freshness: Freshness::new(max_age),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// The rules' version and content, from wherever they come.
    async fn fetch(&self) -> Result<(Option<String>, String), ExtensionError> {
        match &self.origin {
            Origin::AppConfig { extension, path } => fetch_appconfig(extension, path).await,
            Origin::Parameter { extension, name } => extension.parameter(name).await,
        }
    }
}

impl Refresh for RulesFeed {
    fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    async fn read(&self) {
        let kind = self.into.kind();
        let (version, json) = match self.fetch().await {
            Ok(fetched) => fetched,
            Err(problem) => {
                tracing::warn!(source = %self.name, %problem, "{kind} could not be read; the rules in use stay");
                return;
            }
        };
        // Without a version, the content itself tells one version from the next.
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
        let compiled = RuleSet::compile(&json).map_err(|error| error.to_string());
        let names = compiled
            .as_ref()
            .ok()
            .map(|rules| rules.rule_names().collect::<Vec<_>>().join(", "));
        match compiled.and_then(|rules| self.into.replace(rules)) {
            Ok(()) => {
                let rules = names.unwrap_or_default();
                tracing::info!(source = %self.name, version = version.as_deref(), %rules, "{kind} updated");
                let mut state = self.state();
                state.in_use = Some(seen);
                state.updated += 1;
            }
            Err(error) => {
                tracing::warn!(source = %self.name, version = version.as_deref(), %error, "{kind} cannot be used; the rules in use stay");
                let mut state = self.state();
                state.refused = Some(seen);
                state.rejected += 1;
            }
        }
    }
}

/// The configuration's version (the agent's `Configuration-Version`) and content.
async fn fetch_appconfig(
    extension: &LocalExtension,
    path: &str,
) -> Result<(Option<String>, String), ExtensionError> {
    let answer = extension.get(path, &[]).await?;
    let version = answer
        .headers
        .get("configuration-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let json = String::from_utf8(answer.body)
        .map_err(|_| extension.unexpected("the configuration is not UTF-8 text".into()))?;
    Ok((version, json))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::adapters::config::runtime;
    use crate::domain::rules::DEFAULT_RULES;
    use crate::support::environment::{VariableError, Variables};

    /// `read` over the variables `vars`, with the HTTP client and the extension they configure.
    fn with_vars<T>(
        vars: &[(&str, &str)],
        read: impl FnOnce(&Variables<'_>, HttpClient, &Arc<SecretsExtension>) -> T,
    ) -> T {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let env = |name: &str| map.get(name).cloned();
        let vars = Variables::new(&env);
        let http = HttpClient::new(Duration::from_secs(1));
        let extension = Arc::new(runtime::secrets_extension(&vars, http.clone()).unwrap());
        read(&vars, http, &extension)
    }

    fn source(vars: &[(&str, &str)]) -> Result<Option<Arc<RulesFeed>>, VariableError> {
        let live = Arc::new(RulesInUse::new(RuleSet::compile(DEFAULT_RULES).unwrap()));
        with_vars(vars, |vars, http, extension| {
            runtime::rules_feed(vars, http, extension, live)
        })
    }

    /// The shadow's feed over `vars`, and the shadow it fills.
    fn shadow_source(vars: &[(&str, &str)]) -> (Option<Arc<RulesFeed>>, Arc<ShadowInUse>) {
        let shadow = Arc::new(ShadowInUse::default());
        let into = Destination::Shadow {
            shadow: shadow.clone(),
            live: Arc::new(RulesInUse::new(RuleSet::compile(DEFAULT_RULES).unwrap())),
            returned: Arc::default(),
        };
        let feed = with_vars(vars, |vars, http, extension| {
            runtime::shadow_feed(vars, http, extension, into)
        });
        (feed, shadow)
    }

    #[test]
    fn a_shadow_feed_named_wrongly_is_left_out_not_a_start_failure() {
        assert!(
            shadow_source(&[("SHADOW_ROUTING_RULES_APPCONFIG", "a/b")])
                .0
                .is_none()
        );
        let both = [
            ("SHADOW_ROUTING_RULES_APPCONFIG", "a/b/c"),
            ("SHADOW_ROUTING_RULES_PARAMETER", "/p"),
        ];
        assert!(shadow_source(&both).0.is_none());
        let (feed, _) = shadow_source(&[("SHADOW_ROUTING_RULES_PARAMETER", "/shadow")]);
        assert!(feed.is_some_and(|feed| feed.name == "/shadow"));
    }

    #[test]
    fn a_shadow_whose_traits_do_not_fit_one_lookup_beside_the_live_ones_is_refused() {
        let (_, shadow) = shadow_source(&[]);
        let into = Destination::Shadow {
            shadow: shadow.clone(),
            live: Arc::new(RulesInUse::new(RuleSet::compile(DEFAULT_RULES).unwrap())),
            returned: Arc::new((0..199).map(|n| format!("returned_{n}")).collect()),
        };
        let wide = r#"{"rules": [{"name": "w", "when": "traits.a > 0 && traits.b > 0", "transition": "agent"}], "default": "bot", "on_error": "bot"}"#;
        let refused = into.replace(RuleSet::compile(wide).unwrap());
        assert!(refused.is_err_and(|why| why.contains("at most 200")));
        assert!(shadow.current().is_none());
        let narrow = r#"{"rules": [], "default": "bot", "on_error": "bot"}"#;
        assert!(into.replace(RuleSet::compile(narrow).unwrap()).is_ok());
        assert!(shadow.current().is_some());
    }

    #[test]
    fn a_shadow_answering_a_transition_the_live_rules_do_not_declare_is_refused() {
        let shadow = Arc::new(ShadowInUse::default());
        let declared = r#"{"transitions": ["agent", "bot"], "rules": [], "default": "bot", "on_error": "agent"}"#;
        let into = Destination::Shadow {
            shadow: shadow.clone(),
            live: Arc::new(RulesInUse::new(RuleSet::compile(declared).unwrap())),
            returned: Arc::default(),
        };
        let mistyped = r#"{"rules": [{"name": "x", "when": "true", "transition": "agnet"}], "default": "bot", "on_error": "agent"}"#;
        let refused = into.replace(RuleSet::compile(mistyped).unwrap());
        assert!(refused.is_err_and(|why| why.contains(
            "\"agnet\", which is not one of the live rules' declared transitions (agent, bot)"
        )),);
        assert!(shadow.current().is_none());
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
        let Origin::AppConfig { extension, path } = &source.origin else {
            panic!("not AppConfig");
        };
        assert_eq!(
            extension.url(path),
            "http://localhost:2999/applications/studio-router/environments/prod%20eu/configurations/routing_rules.v1"
        );
        assert_eq!(source.freshness.max_age(), runtime::RULES_MAX_AGE);
    }

    #[test]
    fn a_parameter_or_appconfig_but_not_both() {
        let source = source(&[("ROUTING_RULES_PARAMETER", "/studio-router/rules")])
            .unwrap()
            .unwrap();
        assert!(
            matches!(&source.origin, Origin::Parameter { name, .. } if name == "/studio-router/rules")
        );
        let both = source_of_both();
        assert!(both.is_err_and(|e| e.to_string().contains("not both")));
    }

    fn source_of_both() -> Result<Option<Arc<RulesFeed>>, VariableError> {
        source(&[
            ("ROUTING_RULES_PARAMETER", "/studio-router/rules"),
            ("ROUTING_RULES_APPCONFIG", "a/b/c"),
        ])
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
