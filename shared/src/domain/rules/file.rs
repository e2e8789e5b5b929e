//! The rules document's schema, as operators write it (see docs/src/rules.md).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesFile {
    pub(super) rules: Vec<RuleSpec>,
    pub(super) default: OutcomeSpec,
    pub(super) on_error: OutcomeSpec,
    #[serde(default)]
    pub(super) experiment: Option<ExperimentSpec>,
    /// The transitions the flow's Split has; when given, no rule may answer another.
    #[serde(default)]
    pub(super) transitions: Option<Vec<String>>,
}

/// A share of customers decided by other rules: `{"name", "share", "rules"}`, and its own
/// `default` and `on_error` when they differ from the document's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExperimentSpec {
    pub(super) name: String,
    pub(super) share: f64,
    pub(super) rules: Vec<RuleSpec>,
    #[serde(default)]
    pub(super) default: Option<OutcomeSpec>,
    #[serde(default)]
    pub(super) on_error: Option<OutcomeSpec>,
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
#[derive(Deserialize, Clone)]
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
