//! Why a rule did or did not decide: for a caller who asks, never in the logs at info level.
//! A trace names traits and the types of values, never the values: they are the customer's.

use cel::{ExecutionError as E, Value as Cel};
use serde::Serialize;

use cel::common::ast::IdedExpr;

use super::references::TraitWalk;

/// How one rule fared for one customer's facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTrace {
    pub rule: String,
    pub outcome: TraceOutcome,
    /// What was missing or of the wrong type (a trait's name, the types involved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceOutcome {
    /// Its condition held: it decided.
    Matched,
    /// Its condition was false.
    False,
    /// Its condition read a trait (or a key of one) the profile does not have: false.
    MissingTrait,
    /// Its condition looked up a key computed from a value (`{'gold': true}[traits.tier]`)
    /// that the map does not hold: false. The key is the customer's data and is not named.
    MissingKey,
    /// Its condition compared or combined values of types that do not go together (a trait
    /// sent as the string `"2000"` compared with a number): false.
    WrongType,
    /// Its condition gave something other than true or false: false.
    NotABoolean,
    /// Its condition failed otherwise (a division by zero, an overflow): false.
    Failed,
    /// An earlier rule decided.
    NotReached,
    /// The profile could not be read: `on_error` decided without the rules.
    NotEvaluated,
}

impl RuleTrace {
    /// How `condition` of `rule` fared. A missing key is named only when the condition
    /// itself writes it (`traits.tier`): a key computed from a trait's value
    /// (`{'gold': true}[traits.tier]`) is the customer's data, and stays unsaid.
    pub(super) fn of(rule: &str, condition: &IdedExpr, result: &Result<Cel, E>) -> Self {
        let (outcome, detail) = match result {
            Ok(Cel::Bool(true)) => (TraceOutcome::Matched, None),
            Ok(Cel::Bool(false)) => (TraceOutcome::False, None),
            Ok(other) => (
                TraceOutcome::NotABoolean,
                Some(format!("the condition gave {}", a(other.type_of()))),
            ),
            Err(E::NoSuchKey(key)) if written_by(condition, &key.to_string()) => (
                TraceOutcome::MissingTrait,
                Some(format!("no \"{key}\" on the profile")),
            ),
            Err(E::NoSuchKey(_)) => (
                TraceOutcome::MissingKey,
                Some(
                    "a key computed from the profile's values is not in the map it indexes".into(),
                ),
            ),
            Err(E::ValuesNotComparable(left, right)) => (
                TraceOutcome::WrongType,
                Some(format!(
                    "{} cannot be compared with {}",
                    a(left.type_of()),
                    a(right.type_of())
                )),
            ),
            Err(E::UnsupportedBinaryOperator(operator, left, right)) => (
                TraceOutcome::WrongType,
                Some(format!(
                    "'{operator}' does not apply to {} and {}",
                    a(left.type_of()),
                    a(right.type_of())
                )),
            ),
            Err(E::NoSuchOverload(overload)) => (
                TraceOutcome::WrongType,
                Some(format!(
                    // CEL names its operators `_>=_`; the rule wrote `>=`.
                    "'{}' does not apply to ({})",
                    overload.function().trim_matches('_'),
                    overload.argument_types().join(", ")
                )),
            ),
            Err(E::UnexpectedType { got, want }) => (
                TraceOutcome::WrongType,
                Some(format!("got {} where {} was expected", a(got), a(want))),
            ),
            Err(error) => (TraceOutcome::Failed, Some(error_kind(error).to_owned())),
        };
        Self {
            rule: rule.to_owned(),
            outcome,
            detail,
        }
    }

    pub(super) fn not_reached(rule: &str) -> Self {
        Self::bare(rule, TraceOutcome::NotReached)
    }

    pub(super) fn not_evaluated(rule: &str) -> Self {
        Self::bare(rule, TraceOutcome::NotEvaluated)
    }

    fn bare(rule: &str, outcome: TraceOutcome) -> Self {
        Self {
            rule: rule.to_owned(),
            outcome,
            detail: None,
        }
    }
}

/// Whether `condition`'s own text writes `key` (as a member name or a string).
fn written_by(condition: &IdedExpr, key: &str) -> bool {
    let mut walk = TraitWalk::default();
    walk.visit(condition);
    walk.written.contains(key)
}

/// `an int`, `a string`.
fn a(type_name: impl std::fmt::Display) -> String {
    let name = type_name.to_string();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// What kind of error an evaluation hit. Only the kind is ever logged: cel's messages quote
/// the values involved, and those are the customer's traits.
pub(super) fn error_kind(error: &cel::ExecutionError) -> &'static str {
    use cel::ExecutionError as E;
    match error {
        E::NoSuchKey(_) => "no such key",
        E::NoSuchOverload(_) => "no operator or function for these types",
        E::UnexpectedType { .. } => "unexpected type",
        E::ValuesNotComparable(..) => "values not comparable",
        E::UnsupportedBinaryOperator(..) => "operator not supported for these types",
        E::UnsupportedIndex(..) | E::IndexOutOfBounds(_) => "bad index",
        E::UnsupportedKeyType(_) => "bad map key",
        E::DivisionByZero(_) | E::RemainderByZero(_) => "division by zero",
        E::Overflow(..) => "overflow",
        E::FunctionError { .. } => "function failed",
        E::InvalidArgumentCount { .. } | E::MissingArgumentOrTarget => "wrong arguments",
        E::UndeclaredReference(_) => "undeclared reference",
        _ => "evaluation error",
    }
}
