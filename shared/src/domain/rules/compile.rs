//! A rules document into a [`RuleSet`]: every condition and attribute parsed once, names
//! checked, and the traits the rules read collected for `include=`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cel::Env;
use cel::common::ast::IdedExpr;

use super::file::{ExperimentSpec, OutcomeSpec, RuleSpec, RulesFile};
use super::references::TraitWalk;
use super::{Experiment, RuleSet, RulesError};

/// Where a rule (or `default`, `on_error`) sends a customer: its transition and attributes.
pub(super) struct RuleOutcome {
    pub(super) transition: String,
    pub(super) attributes: Vec<(String, IdedExpr)>,
}

pub(super) struct Rule {
    pub(super) name: String,
    pub(super) condition: IdedExpr,
    pub(super) outcome: RuleOutcome,
}

/// What the rules read, gathered as each expression is compiled.
struct Reads {
    /// The traits, or `None` once an expression reads `traits` as a whole.
    referenced: Option<BTreeSet<String>>,
    /// Whether any expression can loop (see `within`).
    loops: bool,
}

impl RuleSet {
    /// Compiles a rules document; the error names the rule and what is wrong with it.
    pub fn compile(json: &str) -> Result<Self, RulesError> {
        let file: RulesFile = serde_json::from_str(json)?;
        let experiment = match file.experiment {
            Some(spec) => Some(compile_experiment(spec, &file.default, &file.on_error)?),
            None => None,
        };
        let mut set = compile_set(file.rules, file.default, file.on_error)?;
        if let Some(experiment) = &experiment {
            // One lookup serves either arm: it asks for both sets' traits.
            set.referenced = match (set.referenced.take(), experiment.rules.referenced_traits()) {
                (Some(mut mine), Some(theirs)) => {
                    mine.extend(theirs.iter().cloned());
                    Some(mine)
                }
                _ => None,
            };
        }
        set.experiment = experiment;
        if let Some(declared) = file.transitions {
            set.declared = Some(declared_transitions(declared)?);
            set.check_declared()?;
        }
        Ok(set)
    }

    /// Every transition of the rules, `default`, `on_error` and the experiment's is one the
    /// document declares: a mistyped one (`agnet`) is refused here rather than sending those
    /// customers down the Split's "No Condition Matches".
    fn check_declared(&self) -> Result<(), RulesError> {
        let sets = std::iter::once(("", self)).chain(
            self.experiment
                .iter()
                .map(|e| ("experiment ", e.rules.as_ref())),
        );
        for (prefix, set) in sets {
            if let Some((rule, transition)) = self.undeclared_in(set).next() {
                return Err(RulesError::Invalid {
                    rule: format!("{prefix}{rule}"),
                    problem: format!(
                        "transition \"{transition}\" is not one of the declared transitions ({})",
                        self.declared_list()
                    ),
                });
            }
        }
        Ok(())
    }
}

/// `transitions`: a non-empty list of non-empty names.
fn declared_transitions(declared: Vec<String>) -> Result<BTreeSet<String>, RulesError> {
    let invalid = |problem: &str| RulesError::Invalid {
        rule: "transitions".into(),
        problem: problem.into(),
    };
    if declared.is_empty() {
        return Err(invalid(
            "lists the Split's transitions; an empty list would refuse every rule",
        ));
    }
    if declared.iter().any(|t| t.trim().is_empty()) {
        return Err(invalid("a transition needs a non-empty name"));
    }
    Ok(declared.into_iter().collect())
}

/// The experiment's rules, with the document's `default` and `on_error` where it names none.
fn compile_experiment(
    spec: ExperimentSpec,
    default: &OutcomeSpec,
    on_error: &OutcomeSpec,
) -> Result<Experiment, RulesError> {
    let name = spec.name.trim().to_owned();
    let invalid = |problem: &str| RulesError::Invalid {
        rule: format!("experiment {name}"),
        problem: problem.into(),
    };
    if name.is_empty() {
        return Err(invalid("an experiment needs a non-empty name"));
    }
    if !(0.0..=1.0).contains(&spec.share) {
        return Err(invalid(
            "share must be a number from 0 to 1 (0.1 is one customer in ten)",
        ));
    }
    let rules = compile_set(
        spec.rules,
        spec.default.unwrap_or_else(|| default.clone()),
        spec.on_error.unwrap_or_else(|| on_error.clone()),
    )?;
    Ok(Experiment {
        name,
        share: spec.share,
        rules: Arc::new(rules),
    })
}

/// One set of rules with its `default` and `on_error`.
fn compile_set(
    specs: Vec<RuleSpec>,
    default: OutcomeSpec,
    on_error: OutcomeSpec,
) -> Result<RuleSet, RulesError> {
    let mut seen = BTreeSet::new();
    let mut reads = Reads {
        referenced: Some(BTreeSet::new()),
        loops: false,
    };
    let mut rules = Vec::with_capacity(specs.len());
    for spec in specs {
        if spec.name.trim().is_empty() {
            return Err(RulesError::Invalid {
                rule: spec.name,
                problem: "a rule needs a non-empty name".into(),
            });
        }
        if !seen.insert(spec.name.clone()) {
            return Err(RulesError::DuplicateName(spec.name));
        }
        let condition = compile_expression(&spec.name, "condition", &spec.when, &mut reads)?;
        let outcome = compile_outcome(&spec.name, spec.transition, spec.attributes, &mut reads)?;
        rules.push(Rule {
            name: spec.name,
            condition,
            outcome,
        });
    }
    let default = compile_outcome_spec("default", default, &mut reads)?;
    let on_error = compile_outcome_spec("on_error", on_error, &mut reads)?;
    Ok(RuleSet {
        rules,
        default,
        on_error,
        env: Arc::new(Env::stdlib()),
        referenced: reads.referenced,
        loops: reads.loops,
        experiment: None,
        declared: None,
    })
}

fn compile_outcome_spec(
    name: &str,
    spec: OutcomeSpec,
    reads: &mut Reads,
) -> Result<RuleOutcome, RulesError> {
    match spec {
        OutcomeSpec::Transition(transition) => {
            compile_outcome(name, transition, BTreeMap::new(), reads)
        }
        OutcomeSpec::Full {
            transition,
            attributes,
        } => compile_outcome(name, transition, attributes, reads),
    }
}

fn compile_outcome(
    rule: &str,
    transition: String,
    attributes: BTreeMap<String, String>,
    reads: &mut Reads,
) -> Result<RuleOutcome, RulesError> {
    if transition.trim().is_empty() {
        return Err(RulesError::Invalid {
            rule: rule.into(),
            problem: "transition must not be empty".into(),
        });
    }
    let attributes = attributes
        .into_iter()
        .map(|(name, source)| {
            let expression =
                compile_expression(rule, &format!("attribute \"{name}\""), &source, reads)?;
            Ok((name, expression))
        })
        .collect::<Result<_, RulesError>>()?;
    Ok(RuleOutcome {
        transition,
        attributes,
    })
}

/// Parses one CEL expression with cel's Pratt parser rather than `Program::compile`'s ANTLR
/// parser. Both read the same grammar and expand the same standard macros into the same tree
/// (a few unusual texts only one of them reads are listed in that test), but ANTLR's first
/// parse in a process fills its prediction caches, which made it most of what compiling the
/// rules costs a cold start (`perf/examples/startup_costs.rs` times both). The Pratt parser
/// is `#[doc(hidden)]` in cel 0.15, so the version is pinned exactly and
/// `shared/tests/cel_parsers.rs` checks it against ANTLR.
pub fn parse(source: &str) -> Result<IdedExpr, cel::ParseErrors> {
    cel::parser::PrattParser::new().parse(source)
}

/// The line and column (from 1, in characters) where `name` first stands as a name of its
/// own in `source` (not inside a longer name or after a `.`).
fn first_use(source: &str, name: &str) -> Option<(u32, u32)> {
    let part_of_name = |c: char| c.is_alphanumeric() || c == '_';
    let at = source.match_indices(name).map(|(at, _)| at).find(|&at| {
        let before = source[..at].chars().next_back();
        let after = source[at + name.len()..].chars().next();
        !before.is_some_and(|c| part_of_name(c) || c == '.') && !after.is_some_and(part_of_name)
    })?;
    let head = &source[..at];
    let line = head.matches('\n').count() + 1;
    let column = head.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((u32::try_from(line).ok()?, u32::try_from(column).ok()?))
}

fn compile_expression(
    rule: &str,
    what: &str,
    source: &str,
    reads: &mut Reads,
) -> Result<IdedExpr, RulesError> {
    // Before parsing: the parser itself recurses once a level.
    let too_complex = |problem| RulesError::TooComplex {
        rule: rule.into(),
        what: what.into(),
        problem,
    };
    super::limits::check_text(source).map_err(too_complex)?;
    let expression = parse(source).map_err(|errors| RulesError::Parse {
        rule: rule.into(),
        what: what.into(),
        message: errors.to_string().trim().to_owned(),
        at: errors.errors.first().and_then(|error| {
            // Both from 1, as cel's own message draws its caret.
            let line = u32::try_from(error.pos.0).ok().filter(|l| *l > 0)?;
            let column = u32::try_from(error.pos.1).ok().filter(|c| *c > 0)?;
            Some((line, column))
        }),
    })?;
    let mut walk = TraitWalk::default();
    walk.visit(&expression);
    super::limits::check_depth(walk.deepest).map_err(too_complex)?;
    if let Some(variable) = walk.unknown {
        return Err(RulesError::UnknownVariable {
            rule: rule.into(),
            what: what.into(),
            at: first_use(source, &variable),
            variable,
        });
    }
    reads.loops |= walk.loops;
    if walk.whole {
        reads.referenced = None;
    } else if let Some(set) = &mut reads.referenced {
        set.extend(walk.found);
    }
    Ok(expression)
}

#[cfg(test)]
mod experiment_tests {
    use super::*;

    const DOCUMENT: &str = r#"{"rules": [{"name": "vip", "when": "traits.vip == true", "transition": "agent"}],
        "default": "bot", "on_error": "agent",
        "experiment": {"name": "docs-first", "share": 0.25,
            "rules": [{"name": "read-docs", "when": "traits.docs_last_2_days > 0", "transition": "agent"}]}}"#;

    #[test]
    fn an_experiment_compiles_with_the_documents_outcomes_and_both_sets_traits() {
        let rules = RuleSet::compile(DOCUMENT).unwrap();
        let experiment = rules.experiment().expect("an experiment");
        assert_eq!(
            (experiment.name.as_str(), experiment.share),
            ("docs-first", 0.25)
        );
        let names: Vec<&str> = experiment.rules.rule_names().collect();
        assert_eq!(names, ["read-docs"]);
        let asked: Vec<&String> = rules.referenced_traits().unwrap().iter().collect();
        assert_eq!(asked, ["docs_last_2_days", "vip"]);
        // Its own default and on_error are the document's where it names none.
        let transitions: Vec<&str> = experiment.rules.transitions().collect();
        assert_eq!(transitions, ["agent", "bot"]);
    }

    #[test]
    fn a_bad_experiment_fails_the_whole_document() {
        for (experiment, expected) in [
            (
                r#"{"name": "x", "share": 1.5, "rules": []}"#,
                "share must be",
            ),
            (
                r#"{"name": " ", "share": 0.1, "rules": []}"#,
                "non-empty name",
            ),
            (
                r#"{"name": "x", "share": 0.1, "rules": [{"name": "r", "when": "trait.vip", "transition": "agent"}]}"#,
                "\"r\"",
            ),
            (
                r#"{"name": "x", "share": 0.1, "rules": [], "extra": 1}"#,
                "unknown field",
            ),
        ] {
            let document = format!(
                r#"{{"rules": [], "default": "bot", "on_error": "agent", "experiment": {experiment}}}"#
            );
            let error = RuleSet::compile(&document).err().map(|e| e.to_string());
            assert!(
                error.as_deref().is_some_and(|e| e.contains(expected)),
                "{experiment}: {error:?}"
            );
        }
    }

    #[test]
    fn the_arm_is_a_stable_function_of_the_name_and_the_identifier() {
        let rules = RuleSet::compile(DOCUMENT).unwrap();
        let experiment = rules.experiment().unwrap();
        let treated = (0..10_000)
            .filter(|i| {
                experiment.arm(&format!("phone:+1555{i:07}")) == super::super::Arm::Treatment
            })
            .count();
        assert!((2_300..=2_700).contains(&treated), "{treated}");
        let key = "email:ann@example.com";
        assert_eq!(experiment.arm(key), experiment.arm(key));
        let none = Experiment {
            share: 0.0,
            ..RuleSet::compile(DOCUMENT).unwrap().experiment.unwrap()
        };
        assert_eq!(none.arm(key), super::super::Arm::Control);
    }
}

#[cfg(test)]
mod declared_tests {
    use super::*;

    #[test]
    fn a_transition_outside_the_declared_ones_is_refused_wherever_it_is() {
        let cases = [
            (
                r#"{"transitions": ["agent", "bot"], "rules": [{"name": "vip", "when": "true", "transition": "agnet"}], "default": "bot", "on_error": "agent"}"#,
                "vip",
                "agnet",
            ),
            (
                r#"{"transitions": ["agent", "bot"], "rules": [], "default": "bto", "on_error": "agent"}"#,
                "default",
                "bto",
            ),
            (
                r#"{"transitions": ["agent", "bot"], "rules": [], "default": "bot", "on_error": {"transition": "human"}}"#,
                "on_error",
                "human",
            ),
            (
                r#"{"transitions": ["agent", "bot"], "rules": [], "default": "bot", "on_error": "agent",
                    "experiment": {"name": "e", "share": 0.1, "rules": [{"name": "t", "when": "true", "transition": "voicebot"}]}}"#,
                "experiment t",
                "voicebot",
            ),
        ];
        for (json, rule, transition) in cases {
            let error = RuleSet::compile(json)
                .err()
                .unwrap_or_else(|| panic!("accepted: {json}"))
                .to_string();
            assert!(
                error.contains(&format!("rule \"{rule}\""))
                    && error.contains(&format!("\"{transition}\""))
                    && error.contains("(agent, bot)"),
                "{error}"
            );
        }
    }

    #[test]
    fn declared_transitions_admit_their_own_and_an_empty_list_is_refused() {
        let ok = RuleSet::compile(
            r#"{"transitions": ["agent", "bot", "voicemail"], "rules": [{"name": "vip", "when": "true", "transition": "agent"}], "default": "bot", "on_error": "agent"}"#,
        )
        .unwrap();
        assert_eq!(ok.declared_transitions().map(BTreeSet::len), Some(3));
        for empty in [r#"[]"#, r#"[""]"#] {
            let json = format!(
                r#"{{"transitions": {empty}, "rules": [], "default": "bot", "on_error": "agent"}}"#
            );
            assert!(RuleSet::compile(&json).is_err(), "{json}");
        }
    }

    #[test]
    fn a_shadow_is_held_to_the_live_documents_declaration() {
        let live = RuleSet::compile(
            r#"{"transitions": ["agent", "bot"], "rules": [], "default": "bot", "on_error": "agent"}"#,
        )
        .unwrap();
        let shadow = RuleSet::compile(
            r#"{"rules": [{"name": "x", "when": "true", "transition": "agnet"}], "default": "bot", "on_error": "agent"}"#,
        )
        .unwrap();
        assert_eq!(
            live.undeclared_in(&shadow).collect::<Vec<_>>(),
            [("x", "agnet")]
        );
        let undeclared =
            RuleSet::compile(r#"{"rules": [], "default": "bot", "on_error": "agent"}"#).unwrap();
        assert_eq!(undeclared.undeclared_in(&shadow).count(), 0);
    }
}
