//! The rules document's schema, as operators write it (see the README's "Routing rules").

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesFile {
    pub(super) rules: Vec<RuleSpec>,
    pub(super) default: OutcomeSpec,
    pub(super) on_error: OutcomeSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleSpec {
    pub(super) name: String,
    pub(super) when: String,
    pub(super) transition: String,
    #[serde(default)]
    pub(super) attributes: BTreeMap<String, String>,
}

/// `"bot"` or `{"transition": "bot", "attributes": {...}}`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OutcomeSpec {
    Transition(String),
    #[serde(rename_all = "snake_case")]
    Full {
        transition: String,
        #[serde(default)]
        attributes: BTreeMap<String, String>,
    },
}
