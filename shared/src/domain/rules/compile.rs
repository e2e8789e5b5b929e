//! A rules document into a [`RuleSet`]: every condition and attribute parsed once, names
//! checked, and the traits the rules read collected for `include=`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cel::Env;
use cel::common::ast::IdedExpr;

use super::file::{OutcomeSpec, RulesFile};
use super::references::TraitWalk;
use super::{RuleSet, RulesError};

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
        let mut seen = BTreeSet::new();
        let mut reads = Reads {
            referenced: Some(BTreeSet::new()),
            loops: false,
        };
        let mut rules = Vec::with_capacity(file.rules.len());
        for spec in file.rules {
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
            let outcome =
                compile_outcome(&spec.name, spec.transition, spec.attributes, &mut reads)?;
            rules.push(Rule {
                name: spec.name,
                condition,
                outcome,
            });
        }
        let default = compile_outcome_spec("default", file.default, &mut reads)?;
        let on_error = compile_outcome_spec("on_error", file.on_error, &mut reads)?;
        Ok(Self {
            rules,
            default,
            on_error,
            env: Arc::new(Env::stdlib()),
            referenced: reads.referenced,
            loops: reads.loops,
        })
    }
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
