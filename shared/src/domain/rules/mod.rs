//! The operator's routing rules: CEL conditions over a customer's traits, compiled once at
//! start, evaluated in order; the first that holds names the transition.
//!
//! `file` is the rules document's schema, `compile` turns it into a [`RuleSet`] (with
//! `references`, which finds the traits the rules read), `evaluate` applies it to a
//! customer's facts, `values` converts between JSON and CEL values.

pub mod check;
mod compile;
mod evaluate;
mod explain;
mod file;
mod in_use;
mod limits;
mod references;
mod values;
mod within;

use std::collections::BTreeSet;
use std::sync::Arc;

use cel::Env;
use serde_json::{Map, Value};

pub use compile::parse;
use compile::{Rule, RuleOutcome};
pub use explain::{RuleTrace, TraceOutcome};
pub use in_use::{RulesInUse, ShadowInUse};
pub use limits::{LimitError, MAX_DEPTH, MAX_EXPRESSION_BYTES, MAX_OPERATORS};
pub use within::{Judged, MAX_ABANDONED, NotEvaluated};

/// The recipe's rules ("Docs Last 2 Days" > 0 goes to a person), used when none are configured.
pub const DEFAULT_RULES: &str = r#"{
  "rules": [{"name": "read-docs-recently", "when": "traits.docs_last_2_days > 0", "transition": "agent"}],
  "default": "bot",
  "on_error": "agent"
}"#;

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("routing rules are not valid JSON of the expected shape: {0}")]
    Shape(#[from] serde_json::Error),
    #[error("rule \"{rule}\": {what} does not parse: {message}")]
    Parse {
        rule: String,
        what: String,
        message: String,
        /// Where in the expression (1-based line and column), when the parser said. `u32`s
        /// keep the error small: it travels inside every configuration error.
        at: Option<(u32, u32)>,
    },
    #[error(
        "rule \"{rule}\": {what} reads \"{variable}\", but rules can only read traits and channel"
    )]
    UnknownVariable {
        rule: String,
        what: String,
        variable: String,
        /// Where the variable first appears in the expression (line and column from 1).
        at: Option<(u32, u32)>,
    },
    #[error("rule \"{rule}\": {what} {problem}")]
    TooComplex {
        rule: String,
        what: String,
        problem: LimitError,
    },
    #[error("rule \"{rule}\": {problem}")]
    Invalid { rule: String, problem: String },
    #[error("two rules are named \"{0}\"; names must be unique so decisions can be traced")]
    DuplicateName(String),
}

/// Where a rules document went wrong, for an editor to point at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorPlace {
    /// The rule (or `default`, `on_error`) the error is in; `None` for the document's shape.
    pub rule: Option<String>,
    /// What in the rule: `condition`, `attribute "priority"`.
    pub what: Option<String>,
    /// 1-based: in the document for a shape error, in the expression for a parse error.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl RulesError {
    /// The rule and position the error names.
    pub fn place(&self) -> ErrorPlace {
        let (rule, what, at) = match self {
            Self::Shape(error) => {
                let at = (error.line(), error.column());
                return ErrorPlace {
                    rule: None,
                    what: None,
                    line: Some(at.0),
                    column: Some(at.1),
                };
            }
            Self::Parse { rule, what, at, .. } => (Some(rule), Some(what.clone()), *at),
            Self::UnknownVariable { rule, what, at, .. } => (Some(rule), Some(what.clone()), *at),
            Self::TooComplex { rule, what, .. } => (Some(rule), Some(what.clone()), None),
            Self::Invalid { rule, .. } | Self::DuplicateName(rule) => (Some(rule), None, None),
        };
        ErrorPlace {
            rule: rule.cloned(),
            what,
            line: at.map(|(line, _)| line as usize),
            column: at.map(|(_, column)| column as usize),
        }
    }
}

/// A compiled rule set. Cheap to share; evaluation never fails.
pub struct RuleSet {
    rules: Vec<Rule>,
    default: RuleOutcome,
    on_error: RuleOutcome,
    env: Arc<Env>,
    /// The traits the rules read, or `None` when a rule reads `traits` as a whole.
    referenced: Option<BTreeSet<String>>,
    /// Whether a rule can cost more than its size (evaluated off the async workers).
    loops: bool,
    /// A share of customers decided by other rules.
    experiment: Option<Experiment>,
    /// The document's `transitions`, when it declares them.
    declared: Option<BTreeSet<String>>,
}

/// `experiment` in a rules document: `share` of customers, chosen by a stable hash of the
/// experiment's name and their identifier, are decided by `rules` (the treatment); the rest
/// by the document's own (the control).
pub struct Experiment {
    pub name: String,
    pub share: f64,
    pub rules: Arc<RuleSet>,
}

/// Which rules decided a customer in an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    Control,
    Treatment,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Treatment => "treatment",
        }
    }
}

impl Experiment {
    /// The arm of the customer whose identifier is `key` (`type:value`, normalised): the
    /// first 8 bytes of SHA-256(name, key) as a fraction of 2^64, below `share` for the
    /// treatment. The same on every call, in every process, on every machine.
    pub fn arm(&self, key: &str) -> Arm {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(self.name.as_bytes())
            .chain_update([0u8])
            .chain_update(key.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let fraction = u64::from_be_bytes(first) as f64 / 18_446_744_073_709_551_616.0;
        if fraction < self.share {
            Arm::Treatment
        } else {
            Arm::Control
        }
    }
}

/// What the rules decided, before the routing layer adds how the profile was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub transition: String,
    /// The winning rule's name, `default` or `on_error`.
    pub rule: String,
    pub attributes: Map<String, Value>,
}

/// The inputs a rule can read.
pub struct Facts<'a> {
    pub traits: &'a Map<String, Value>,
    pub channel: Option<&'a str>,
}

impl RuleSet {
    /// The trait keys to request from Segment (`include=`), or `None` for all of them.
    pub fn referenced_traits(&self) -> Option<&BTreeSet<String>> {
        self.referenced.as_ref()
    }

    /// The document's experiment, if it has one.
    pub fn experiment(&self) -> Option<&Experiment> {
        self.experiment.as_ref()
    }

    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|rule| rule.name.as_str())
    }

    /// The transitions the document declares (`transitions`), if it does.
    pub fn declared_transitions(&self) -> Option<&BTreeSet<String>> {
        self.declared.as_ref()
    }

    /// `other`'s rules (named) whose transition this document does not declare; none when it
    /// declares none. A shadow set is held to the live document's declaration.
    pub fn undeclared_in<'a>(
        &'a self,
        other: &'a RuleSet,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let named = other
            .rules
            .iter()
            .map(|rule| (rule.name.as_str(), &rule.outcome))
            .chain([("default", &other.default), ("on_error", &other.on_error)]);
        named
            .map(|(name, outcome)| (name, outcome.transition.as_str()))
            .filter(move |(_, transition)| {
                self.declared
                    .as_ref()
                    .is_some_and(|declared| !declared.contains(*transition))
            })
    }

    /// The declared transitions, comma-separated, for messages.
    pub fn declared_list(&self) -> String {
        self.declared
            .iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The branches the flow's Split has: the declared transitions, or without a declaration
    /// every one the rules can answer (the override may send customers down any of them).
    pub fn split_transitions(&self) -> Vec<&str> {
        match &self.declared {
            Some(declared) => declared.iter().map(String::as_str).collect(),
            None => self.transitions().collect(),
        }
    }

    /// Every transition the rules can answer (the Split's branches), each once.
    pub fn transitions(&self) -> impl Iterator<Item = &str> {
        let mut seen = BTreeSet::new();
        self.rules
            .iter()
            .map(|rule| &rule.outcome)
            .chain([&self.default, &self.on_error])
            .map(|outcome| outcome.transition.as_str())
            .filter(move |transition| seen.insert(*transition))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn traits(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn decide(rules: &RuleSet, value: Value) -> Verdict {
        rules.evaluate(&Facts {
            traits: &traits(value),
            channel: None,
        })
    }

    const ROUTING: &str = r#"{
      "rules": [
        {"name": "vip", "when": "traits.vip == true || traits.lifetime_value >= 5000.0", "transition": "agent",
         "attributes": {"priority": "100", "queue": "'vip'"}},
        {"name": "churn-risk", "when": "traits.predicted_churn > 0.8", "transition": "agent",
         "attributes": {"priority": "50"}},
        {"name": "known-agent", "when": "has(traits.last_known_service_agent) && traits.total_inbounds >= 2",
         "transition": "agent", "attributes": {"known_worker_sid": "traits.last_known_service_agent", "priority": "10"}},
        {"name": "spanish", "when": "traits.language.startsWith('es')", "transition": "bot-es"},
        {"name": "read-docs-recently", "when": "traits.docs_last_2_days > 0", "transition": "agent"},
        {"name": "whatsapp-bot", "when": "channel == 'whatsapp'", "transition": "bot"}
      ],
      "default": {"transition": "bot", "attributes": {"priority": "1"}},
      "on_error": "agent"
    }"#;

    #[test]
    fn a_key_computed_from_a_value_is_never_named() {
        // GIVEN a condition that indexes a map by a trait's value
        let rules = RuleSet::compile(
            r#"{"rules": [{"name": "tier", "when": "{'gold': true}[traits.tier]", "transition": "agent"},
                          {"name": "city", "when": "traits.address.city == 'Lyon'", "transition": "agent"}],
                "default": "bot", "on_error": "agent"}"#,
        )
        .unwrap();
        let (_, traces) = rules.explain(&Facts {
            traits: &traits(json!({"tier": "secret-value-42", "address": {"zip": "69001"}})),
            channel: None,
        });
        // THEN the trace says what kind of failure, never the value
        let shown = serde_json::to_string(&traces).unwrap();
        assert!(!shown.contains("secret-value-42"), "{shown}");
        assert_eq!(traces[0].outcome, TraceOutcome::MissingKey);
        // AND a key the rule itself writes is still named
        assert_eq!(traces[1].outcome, TraceOutcome::MissingTrait);
        assert_eq!(
            traces[1].detail.as_deref(),
            Some("no \"city\" on the profile")
        );
    }

    #[test]
    fn an_explanation_says_how_each_rule_fared_without_the_values() {
        let rules = RuleSet::compile(ROUTING).unwrap();
        // GIVEN a lifetime value sent as a string, no churn score, a known agent
        let (verdict, traces) = rules.explain(&Facts {
            traits: &traits(json!({"vip": false, "lifetime_value": "7000",
                "last_known_service_agent": "WK1", "total_inbounds": 3})),
            channel: None,
        });
        // THEN the decision is the one evaluate gives, and the trace says why
        assert_eq!(
            verdict,
            decide(
                &rules,
                json!({"vip": false, "lifetime_value": "7000",
                "last_known_service_agent": "WK1", "total_inbounds": 3})
            )
        );
        let outcomes: Vec<(&str, TraceOutcome)> = traces
            .iter()
            .map(|t| (t.rule.as_str(), t.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("vip", TraceOutcome::WrongType),
                ("churn-risk", TraceOutcome::MissingTrait),
                ("known-agent", TraceOutcome::Matched),
                ("spanish", TraceOutcome::NotReached),
                ("read-docs-recently", TraceOutcome::NotReached),
                ("whatsapp-bot", TraceOutcome::NotReached),
            ]
        );
        let wrong = traces[0].detail.as_deref().unwrap_or_default();
        assert!(wrong.contains("string"), "{wrong}");
        assert!(!wrong.contains("7000"), "never the value: {wrong}");
        assert_eq!(
            traces[1].detail.as_deref(),
            Some("no \"predicted_churn\" on the profile")
        );
        // A false condition and no match at all: every rule is accounted for, then default.
        let (verdict, traces) = rules.explain(&Facts {
            traits: &traits(
                json!({"vip": false, "lifetime_value": 10.0, "predicted_churn": 0.1,
                "total_inbounds": 0, "language": "en", "docs_last_2_days": 0}),
            ),
            channel: Some("sms"),
        });
        assert_eq!(verdict.rule, "default");
        assert!(
            traces.iter().all(|t| t.outcome == TraceOutcome::False),
            "{traces:?}"
        );
        assert_eq!(traces.len(), 6);
    }

    #[test]
    fn the_default_rules_are_the_recipe() {
        // GIVEN the rules used when none are configured
        let rules = RuleSet::compile(DEFAULT_RULES).unwrap();
        // THEN only the recipe's trait is requested from Segment
        assert_eq!(
            rules
                .referenced_traits()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            ["docs_last_2_days"]
        );
        // AND a docs reader goes to an agent, anyone else to the bot
        assert_eq!(
            decide(&rules, json!({"docs_last_2_days": 3})).transition,
            "agent"
        );
        assert_eq!(
            decide(&rules, json!({"docs_last_2_days": 0})).transition,
            "bot"
        );
        assert_eq!(decide(&rules, json!({})).transition, "bot");
        assert_eq!(rules.on_error(None).transition, "agent");
    }

    #[test]
    fn a_table_of_profiles_routes_as_the_rules_say() {
        let rules = RuleSet::compile(ROUTING).unwrap();
        let cases = [
            // (traits, expected transition, expected rule)
            (json!({"vip": true}), "agent", "vip"),
            (
                json!({"vip": false, "lifetime_value": 7200}),
                "agent",
                "vip",
            ), // int vs double
            (json!({"lifetime_value": 4999.99}), "bot", "default"),
            (json!({"predicted_churn": 0.93}), "agent", "churn-risk"),
            (json!({"predicted_churn": 0.5}), "bot", "default"),
            (
                json!({"last_known_service_agent": "WK123", "total_inbounds": 3}),
                "agent",
                "known-agent",
            ),
            (
                json!({"last_known_service_agent": "WK123", "total_inbounds": 1}),
                "bot",
                "default",
            ),
            (json!({"language": "es-MX"}), "bot-es", "spanish"),
            (
                json!({"docs_last_2_days": 2}),
                "agent",
                "read-docs-recently",
            ),
            (
                json!({"docs_last_2_days": 2.5}),
                "agent",
                "read-docs-recently",
            ), // double vs int
            (
                json!({"docs_last_2_days": 18446744073709551615_u64}),
                "agent",
                "read-docs-recently",
            ), // uint
            // type mismatches are false, not errors: the next rules still run
            (
                json!({"vip": "yes", "docs_last_2_days": 1}),
                "agent",
                "read-docs-recently",
            ),
            (json!({"docs_last_2_days": "3"}), "bot", "default"),
            (json!({"language": 7}), "bot", "default"),
            (json!({"docs_last_2_days": null}), "bot", "default"),
            // missing traits are false
            (json!({}), "bot", "default"),
        ];
        for (input, transition, rule) in cases {
            let verdict = decide(&rules, input.clone());
            assert_eq!(
                (verdict.transition.as_str(), verdict.rule.as_str()),
                (transition, rule),
                "{input}"
            );
        }
    }

    #[test]
    fn attributes_are_expressions_evaluated_on_the_profile() {
        let rules = RuleSet::compile(ROUTING).unwrap();
        let known = decide(
            &rules,
            json!({"last_known_service_agent": "WK0123", "total_inbounds": 2}),
        );
        assert_eq!(
            known.attributes,
            traits(json!({"known_worker_sid": "WK0123", "priority": 10}))
        );
        let vip = decide(&rules, json!({"vip": true}));
        assert_eq!(
            vip.attributes,
            traits(json!({"priority": 100, "queue": "vip"}))
        );
        assert_eq!(
            decide(&rules, json!({})).attributes,
            traits(json!({"priority": 1}))
        );
        assert!(rules.on_error(None).attributes.is_empty());
    }

    #[test]
    fn an_attribute_that_cannot_be_evaluated_is_left_out() {
        let rules = RuleSet::compile(
            r#"{"rules": [], "default": {"transition": "agent",
                "attributes": {"known_worker_sid": "traits.last_agent", "priority": "5"}}, "on_error": "agent"}"#,
        )
        .unwrap();
        assert_eq!(
            decide(&rules, json!({})).attributes,
            traits(json!({"priority": 5}))
        );
    }

    #[test]
    fn channel_is_readable_and_optional() {
        let rules = RuleSet::compile(ROUTING).unwrap();
        let whatsapp = rules.evaluate(&Facts {
            traits: &Map::new(),
            channel: Some("whatsapp"),
        });
        assert_eq!(whatsapp.rule, "whatsapp-bot");
        let none = rules.evaluate(&Facts {
            traits: &Map::new(),
            channel: None,
        });
        assert_eq!(none.rule, "default");
    }

    #[test]
    fn only_referenced_traits_are_requested() {
        let rules = RuleSet::compile(ROUTING).unwrap();
        let keys: Vec<_> = rules.referenced_traits().unwrap().iter().cloned().collect();
        assert_eq!(
            keys,
            [
                "docs_last_2_days",
                "language",
                "last_known_service_agent",
                "lifetime_value",
                "predicted_churn",
                "total_inbounds",
                "vip"
            ]
        );
        let indexed = RuleSet::compile(
            r#"{"rules": [{"name": "a", "when": "traits['Docs Viewed'] > 1", "transition": "agent"}],
                "default": "bot", "on_error": "agent"}"#,
        )
        .unwrap();
        assert_eq!(
            indexed
                .referenced_traits()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            ["Docs Viewed"]
        );
        assert_eq!(
            decide(&indexed, json!({"Docs Viewed": 2})).transition,
            "agent"
        );
    }

    #[test]
    fn reading_traits_as_a_whole_requests_them_all() {
        let rules = RuleSet::compile(
            r#"{"rules": [{"name": "any-audience", "when": "traits.exists(k, k.startsWith('aud_') && traits[k] == true)",
                "transition": "agent"}], "default": "bot", "on_error": "agent"}"#,
        )
        .unwrap();
        assert_eq!(rules.referenced_traits(), None);
        assert_eq!(decide(&rules, json!({"aud_vip": true})).transition, "agent");
        assert_eq!(decide(&rules, json!({"aud_vip": false})).transition, "bot");
    }

    #[test]
    fn invalid_rule_sets_fail_naming_the_rule() {
        let cases = [
            (
                r#"{"rules": [{"name": "broken", "when": "traits.x >", "transition": "agent"}], "default": "bot", "on_error": "agent"}"#,
                "rule \"broken\": condition does not parse",
            ),
            (
                r#"{"rules": [{"name": "typo", "when": "trait.x > 1", "transition": "agent"}], "default": "bot", "on_error": "agent"}"#,
                "rule \"typo\": condition reads \"trait\"",
            ),
            (
                r#"{"rules": [{"name": "attr", "when": "true", "transition": "agent", "attributes": {"p": "1 +"}}], "default": "bot", "on_error": "agent"}"#,
                "rule \"attr\": attribute \"p\" does not parse",
            ),
            (
                r#"{"rules": [{"name": "a", "when": "true", "transition": ""}], "default": "bot", "on_error": "agent"}"#,
                "rule \"a\": transition must not be empty",
            ),
            (
                r#"{"rules": [{"name": "a", "when": "true", "transition": "x"}, {"name": "a", "when": "true", "transition": "y"}], "default": "bot", "on_error": "agent"}"#,
                "two rules are named \"a\"",
            ),
            (
                r#"{"rules": [], "default": "bot"}"#,
                "missing field `on_error`",
            ),
            (
                r#"{"rules": [{"name": "a", "if": "true", "transition": "x"}], "default": "bot", "on_error": "agent"}"#,
                "unknown field `if`",
            ),
            ("not json", "not valid JSON"),
        ];
        for (json, expected) in cases {
            let error = RuleSet::compile(json)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(expected), "{json}\n  gave: {error}");
        }
    }
}

#[cfg(test)]
mod place_tests {
    use super::*;

    fn place(json: &str) -> ErrorPlace {
        match RuleSet::compile(json) {
            Ok(_) => panic!("compiled: {json}"),
            Err(error) => error.place(),
        }
    }

    #[test]
    fn an_error_names_the_rule_and_where_in_it() {
        // The second `>` of the condition, counted from 1 as an editor counts.
        let parse = place(
            r#"{"rules": [{"name": "vip", "when": "traits.x > > 1", "transition": "agent"}],
                "default": "bot", "on_error": "agent"}"#,
        );
        assert_eq!(
            (parse.rule.as_deref(), parse.what.as_deref()),
            (Some("vip"), Some("condition"))
        );
        assert_eq!((parse.line, parse.column), (Some(1), Some(12)));
        // A shape error is placed in the document.
        let shape = place("{\"rules\": [],\n \"default\": \"bot\",\n \"on_eror\": \"agent\"}");
        assert_eq!(
            (shape.rule, shape.line, shape.column),
            (None, Some(3), Some(10))
        );
        let attribute = place(
            r#"{"rules": [{"name": "x", "when": "true", "transition": "agent",
                "attributes": {"queue": "'vip"}}], "default": "bot", "on_error": "agent"}"#,
        );
        assert_eq!(attribute.what.as_deref(), Some("attribute \"queue\""));
        assert!(attribute.column.is_some(), "{attribute:?}");
        let unknown = place(
            r#"{"rules": [{"name": "x", "when": "customer.vip", "transition": "agent"}],
                "default": "bot", "on_error": "agent"}"#,
        );
        assert_eq!(
            (unknown.rule.as_deref(), unknown.line, unknown.column),
            (Some("x"), Some(1), Some(1))
        );
        let later = place(
            r#"{"rules": [{"name": "x", "when": "traits.vip &&\n  customer.vip", "transition": "agent"}],
                "default": "bot", "on_error": "agent"}"#,
        );
        assert_eq!((later.line, later.column), (Some(2), Some(3)));
    }
}
