//! The emergency override: one Parameter Store parameter that, while it names a transition,
//! sends every customer there ("the bot is down: everyone to agents"), whatever the rules say
//! and without asking Segment. `off` (or nothing) lifts it. Set with one `aws ssm
//! put-parameter` (docs/src/operating.md); read through the Parameters and Secrets extension
//! during INVOKE, kept fresh like the rules ([`crate::adapters::refresh`]), max age
//! `OVERRIDE_MAX_AGE_SECS` (default 15 s).
//!
//! It is apart from the rules on purpose: a rules deployment can be rolled back by the
//! fallback alarm, and the override must work exactly when that alarm is going off.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::adapters::refresh::{Freshness, Refresh};
use crate::adapters::secrets::SecretsExtension;
use crate::domain::rules::RuleSet;

/// The parameter's values that mean "no override".
const LIFTED: [&str; 3] = ["", "off", "none"];

#[derive(Default)]
struct State {
    /// The transition everyone goes to, while the override is on.
    transition: Option<String>,
    /// The last override refused because the rules do not name its transition (logged once).
    refused: Option<String>,
}

pub struct EmergencyOverride {
    extension: Arc<SecretsExtension>,
    parameter: String,
    freshness: Freshness,
    state: Mutex<State>,
}

impl EmergencyOverride {
    /// The override read from the Parameter Store parameter `parameter`, read again after
    /// `max_age`.
    pub fn new(parameter: String, extension: &Arc<SecretsExtension>, max_age: Duration) -> Self {
        Self {
            extension: extension.clone(),
            parameter,
            freshness: Freshness::new(max_age),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The transition every decision takes now, if the override is on and `rules` name it
    /// (a transition Studio's Split has no branch for would strand the customer; a typo is
    /// logged once and ignored).
    pub fn transition(&self, rules: &RuleSet) -> Option<String> {
        let mut state = self.state();
        let transition = state.transition.clone()?;
        let known = rules.split_transitions();
        if known.contains(&transition.as_str()) {
            return Some(transition);
        }
        if state.refused.as_ref() != Some(&transition) {
            tracing::error!(parameter = %self.parameter, %transition, known = %known.join(", "), "emergency override ignored: the rules name no such transition");
            state.refused = Some(transition);
        }
        None
    }
}

impl Refresh for EmergencyOverride {
    fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    async fn read(&self) {
        let value = match self.extension.parameter(&self.parameter).await {
            Ok((_, value)) => value.trim().to_owned(),
            Err(problem) => {
                // Keeping the last value: an override stays on through an extension hiccup.
                tracing::warn!(parameter = %self.parameter, %problem, "emergency override could not be read; it stays as it was");
                return;
            }
        };
        let transition = (!LIFTED.contains(&value.to_ascii_lowercase().as_str())).then_some(value);
        let mut state = self.state();
        if state.transition != transition {
            match &transition {
                Some(to) => {
                    tracing::warn!(parameter = %self.parameter, transition = %to, "emergency override on: every decision goes to this transition until it is lifted")
                }
                None => {
                    tracing::warn!(parameter = %self.parameter, "emergency override lifted: the rules decide again")
                }
            }
            state.transition = transition;
            state.refused = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::config::runtime;
    use crate::adapters::http_client::HttpClient;
    use crate::support::environment::Variables;

    fn overriding(transition: &str) -> EmergencyOverride {
        let env = |_: &str| None;
        let vars = Variables::new(&env);
        let http = HttpClient::new(Duration::from_secs(1));
        let extension = Arc::new(runtime::secrets_extension(&vars, http).unwrap());
        let emergency = EmergencyOverride::new("/p".into(), &extension, Duration::from_secs(15));
        emergency.state().transition = Some(transition.to_owned());
        emergency
    }

    #[test]
    fn the_override_takes_any_declared_transition_and_only_those() {
        let declared = RuleSet::compile(
            r#"{"transitions": ["agent", "bot", "voicemail"], "rules": [], "default": "bot", "on_error": "agent"}"#,
        )
        .unwrap();
        // No rule answers `voicemail`, but the Split has the branch: the override may use it.
        assert_eq!(
            overriding("voicemail").transition(&declared).as_deref(),
            Some("voicemail")
        );
        assert_eq!(overriding("agnet").transition(&declared), None);
        let undeclared =
            RuleSet::compile(r#"{"rules": [], "default": "bot", "on_error": "agent"}"#).unwrap();
        assert_eq!(overriding("voicemail").transition(&undeclared), None);
        assert_eq!(
            overriding("agent").transition(&undeclared).as_deref(),
            Some("agent")
        );
    }
}
