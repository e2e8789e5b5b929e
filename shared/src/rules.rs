//! The operator's routing rules: CEL conditions over a customer's traits, compiled once at
//! start, evaluated in order; the first that holds names the transition.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::objects::Key;
use cel::{Context, Env, Value as Cel};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// The recipe's rules ("Docs Last 2 Days" > 0 goes to a person), used when none are configured.
pub const DEFAULT_RULES: &str = r#"{
  "rules": [{"name": "read-docs-recently", "when": "traits.docs_last_2_days > 0", "transition": "agent"}],
  "default": "bot",
  "on_error": "agent"
}"#;

/// The variables a rule may read. Anything else is a typo we can catch at start.
const VARIABLES: [&str; 2] = ["traits", "channel"];

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("routing rules are not valid JSON of the expected shape: {0}")]
    Shape(#[from] serde_json::Error),
    #[error("rule \"{rule}\": {what} does not parse: {message}")]
    Parse {
        rule: String,
        what: String,
        message: String,
    },
    #[error(
        "rule \"{rule}\": {what} reads \"{variable}\", but rules can only read traits and channel"
    )]
    UnknownVariable {
        rule: String,
        what: String,
        variable: String,
    },
    #[error("rule \"{rule}\": {problem}")]
    Invalid { rule: String, problem: String },
    #[error("two rules are named \"{0}\"; names must be unique so decisions can be traced")]
    DuplicateName(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: Vec<RuleSpec>,
    default: OutcomeSpec,
    on_error: OutcomeSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    when: String,
    transition: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// `"bot"` or `{"transition": "bot", "attributes": {...}}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OutcomeSpec {
    Transition(String),
    #[serde(rename_all = "snake_case")]
    Full {
        transition: String,
        #[serde(default)]
        attributes: BTreeMap<String, String>,
    },
}

struct Outcome {
    transition: String,
    attributes: Vec<(String, IdedExpr)>,
}

struct Rule {
    name: String,
    condition: IdedExpr,
    outcome: Outcome,
}

/// A compiled rule set. Cheap to share; evaluation never fails.
pub struct RuleSet {
    rules: Vec<Rule>,
    default: Outcome,
    on_error: Outcome,
    env: Arc<Env>,
    /// The traits the rules read, or `None` when a rule reads `traits` as a whole.
    referenced: Option<BTreeSet<String>>,
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
    /// Compiles a rules document; the error names the rule and what is wrong with it.
    pub fn compile(json: &str) -> Result<Self, RulesError> {
        let file: RulesFile = serde_json::from_str(json)?;
        let mut seen = BTreeSet::new();
        let mut referenced = Some(BTreeSet::new());
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
            let condition =
                compile_expression(&spec.name, "condition", &spec.when, &mut referenced)?;
            let outcome = compile_outcome(
                &spec.name,
                spec.transition,
                spec.attributes,
                &mut referenced,
            )?;
            rules.push(Rule {
                name: spec.name,
                condition,
                outcome,
            });
        }
        let default = compile_outcome_spec("default", file.default, &mut referenced)?;
        let on_error = compile_outcome_spec("on_error", file.on_error, &mut referenced)?;
        Ok(Self {
            rules,
            default,
            on_error,
            env: Arc::new(Env::stdlib()),
            referenced,
        })
    }

    /// The trait keys to request from Segment (`include=`), or `None` for all of them.
    pub fn referenced_traits(&self) -> Option<&BTreeSet<String>> {
        self.referenced.as_ref()
    }

    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|rule| rule.name.as_str())
    }

    /// The first rule whose condition holds, else `default`. A condition that cannot be
    /// evaluated (a trait the profile lacks, a type mismatch) is false: a customer without
    /// the trait simply does not match that rule.
    pub fn evaluate(&self, facts: &Facts<'_>) -> Verdict {
        let mut context = Context::with_env(self.env.clone());
        context.add_variable_from_value("traits", object_to_cel(facts.traits));
        context.add_variable_from_value(
            "channel",
            facts
                .channel
                .map_or(Cel::Null, |c| Cel::String(Arc::new(c.to_owned()))),
        );
        for rule in &self.rules {
            match Cel::resolve(&rule.condition, &context) {
                Ok(Cel::Bool(true)) => return rule.outcome.verdict(&rule.name, &context),
                Ok(Cel::Bool(false)) => {}
                Ok(other) => tracing::warn!(
                    rule = %rule.name,
                    result_type = %other.type_of(),
                    "rule condition did not evaluate to a boolean; treated as false"
                ),
                Err(cel::ExecutionError::NoSuchKey(_)) => {}
                Err(error) => {
                    tracing::debug!(rule = %rule.name, error = error_kind(&error), "rule condition treated as false")
                }
            }
        }
        self.default.verdict("default", &context)
    }

    /// The verdict when the profile could not be read in time; attributes see no traits.
    pub fn on_error(&self, channel: Option<&str>) -> Verdict {
        let mut context = Context::with_env(self.env.clone());
        context.add_variable_from_value("traits", Cel::Map(HashMap::<Key, Cel>::new().into()));
        context.add_variable_from_value(
            "channel",
            channel.map_or(Cel::Null, |c| Cel::String(Arc::new(c.to_owned()))),
        );
        self.on_error.verdict("on_error", &context)
    }
}

impl Outcome {
    fn verdict(&self, rule: &str, context: &Context<'_, '_>) -> Verdict {
        let mut attributes = Map::new();
        for (name, expression) in &self.attributes {
            // An attribute whose expression cannot be evaluated (say, a trait the profile
            // lacks) is left out rather than sent to Flex as null.
            match Cel::resolve(expression, context) {
                Ok(Cel::Null) => {}
                Ok(value) => {
                    attributes.insert(name.clone(), cel_to_json(&value));
                }
                Err(error) => {
                    tracing::debug!(rule, attribute = %name, error = error_kind(&error), "attribute left out")
                }
            }
        }
        Verdict {
            transition: self.transition.clone(),
            rule: rule.to_owned(),
            attributes,
        }
    }
}

/// What kind of error an evaluation hit. Only the kind is ever logged: cel's messages quote
/// the values involved, and those are the customer's traits.
fn error_kind(error: &cel::ExecutionError) -> &'static str {
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

fn compile_outcome_spec(
    name: &str,
    spec: OutcomeSpec,
    referenced: &mut Option<BTreeSet<String>>,
) -> Result<Outcome, RulesError> {
    match spec {
        OutcomeSpec::Transition(transition) => {
            compile_outcome(name, transition, BTreeMap::new(), referenced)
        }
        OutcomeSpec::Full {
            transition,
            attributes,
        } => compile_outcome(name, transition, attributes, referenced),
    }
}

fn compile_outcome(
    rule: &str,
    transition: String,
    attributes: BTreeMap<String, String>,
    referenced: &mut Option<BTreeSet<String>>,
) -> Result<Outcome, RulesError> {
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
                compile_expression(rule, &format!("attribute \"{name}\""), &source, referenced)?;
            Ok((name, expression))
        })
        .collect::<Result<_, RulesError>>()?;
    Ok(Outcome {
        transition,
        attributes,
    })
}

/// Parses one CEL expression with cel's Pratt parser rather than `Program::compile`'s ANTLR
/// parser. Both read the same grammar and expand the same standard macros into the same tree
/// (a few unusual texts only one of them reads are listed in that test), but ANTLR's first
/// parse in a process fills its prediction caches: about 0.7 ms of a cold start against
/// 0.03 ms here. The Pratt parser is `#[doc(hidden)]` in cel 0.15, so the version is pinned
/// exactly and `shared/tests/cel_parsers.rs` checks it against ANTLR.
pub fn parse(source: &str) -> Result<IdedExpr, cel::ParseErrors> {
    cel::parser::PrattParser::new().parse(source)
}

fn compile_expression(
    rule: &str,
    what: &str,
    source: &str,
    referenced: &mut Option<BTreeSet<String>>,
) -> Result<IdedExpr, RulesError> {
    let expression = parse(source).map_err(|errors| RulesError::Parse {
        rule: rule.into(),
        what: what.into(),
        message: errors.to_string().trim().to_owned(),
    })?;
    let mut walk = TraitWalk {
        scopes: Vec::new(),
        found: BTreeSet::new(),
        whole: false,
        unknown: None,
    };
    walk.visit(&expression);
    if let Some(variable) = walk.unknown {
        return Err(RulesError::UnknownVariable {
            rule: rule.into(),
            what: what.into(),
            variable,
        });
    }
    if walk.whole {
        *referenced = None;
    } else if let Some(set) = referenced {
        set.extend(walk.found);
    }
    Ok(expression)
}

/// Finds the trait keys an expression reads: `traits.key`, `has(traits.key)`,
/// `traits["key"]`. Any other use of `traits` (iterating it, a computed key) needs them all.
struct TraitWalk {
    /// Names bound by comprehensions (`traits.exists(k, ...)` binds `k`).
    scopes: Vec<String>,
    found: BTreeSet<String>,
    whole: bool,
    unknown: Option<String>,
}

impl TraitWalk {
    fn visit(&mut self, node: &IdedExpr) {
        match &node.expr {
            Expr::Select(select) => {
                if is_ident(&select.operand, "traits") {
                    self.found.insert(select.field.clone());
                } else {
                    self.visit(&select.operand);
                }
            }
            Expr::Call(call)
                if call.func_name == "_[_]"
                    && call.args.len() == 2
                    && is_ident(&call.args[0], "traits") =>
            {
                match &call.args[1].expr {
                    Expr::Literal(LiteralValue::String(key)) => {
                        self.found.insert(key.to_string());
                    }
                    _ => {
                        self.whole = true;
                        self.visit(&call.args[1]);
                    }
                }
            }
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.visit(target);
                }
                call.args.iter().for_each(|arg| self.visit(arg));
            }
            Expr::Ident(name) => {
                if name == "traits" {
                    self.whole = true;
                } else if !VARIABLES.contains(&name.as_str())
                    && !name.starts_with('@')
                    && !self.scopes.iter().any(|bound| bound == name)
                    && self.unknown.is_none()
                {
                    self.unknown = Some(name.clone());
                }
            }
            Expr::Comprehension(comprehension) => {
                self.visit(&comprehension.iter_range);
                self.visit(&comprehension.accu_init);
                let bound = [
                    Some(&comprehension.iter_var),
                    comprehension.iter_var2.as_ref(),
                    Some(&comprehension.accu_var),
                ];
                let depth = self.scopes.len();
                self.scopes.extend(bound.into_iter().flatten().cloned());
                self.visit(&comprehension.loop_cond);
                self.visit(&comprehension.loop_step);
                self.visit(&comprehension.result);
                self.scopes.truncate(depth);
            }
            Expr::List(list) => list.elements.iter().for_each(|element| self.visit(element)),
            Expr::Map(map) => map
                .entries
                .iter()
                .for_each(|entry| self.visit_entry(&entry.expr)),
            Expr::Struct(structure) => structure
                .entries
                .iter()
                .for_each(|entry| self.visit_entry(&entry.expr)),
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn visit_entry(&mut self, entry: &EntryExpr) {
        match entry {
            EntryExpr::StructField(field) => self.visit(&field.value),
            EntryExpr::MapEntry(map_entry) => {
                self.visit(&map_entry.key);
                self.visit(&map_entry.value);
            }
        }
    }
}

fn is_ident(node: &IdedExpr, name: &str) -> bool {
    matches!(&node.expr, Expr::Ident(ident) if ident == name)
}

/// JSON numbers become CEL ints when they are whole and fit, else doubles, so that
/// `traits.docs_last_2_days > 0` compares as users expect whatever Segment sent.
fn json_to_cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cel::Int(i),
            None => n
                .as_u64()
                .map_or_else(|| Cel::Float(n.as_f64().unwrap_or(f64::NAN)), Cel::UInt),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Value::Object(map) => object_to_cel(map),
    }
}

fn object_to_cel(map: &Map<String, Value>) -> Cel {
    let converted: HashMap<Key, Cel> = map
        .iter()
        .map(|(key, value)| (Key::String(Arc::new(key.clone())), json_to_cel(value)))
        .collect();
    Cel::Map(converted.into())
}

fn cel_to_json(value: &Cel) -> Value {
    match value {
        Cel::Null => Value::Null,
        Cel::Bool(b) => Value::Bool(*b),
        Cel::Int(i) => Value::from(*i),
        Cel::UInt(u) => Value::from(*u),
        Cel::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Cel::String(s) => Value::String(s.to_string()),
        Cel::List(items) => Value::Array(items.iter().map(cel_to_json).collect()),
        Cel::Map(map) => Value::Object(
            map.map
                .iter()
                .map(|(key, value)| {
                    let key = match key {
                        Key::String(s) => s.to_string(),
                        Key::Int(i) => i.to_string(),
                        Key::Uint(u) => u.to_string(),
                        Key::Bool(b) => b.to_string(),
                    };
                    (key, cel_to_json(value))
                })
                .collect(),
        ),
        other => Value::String(format!("{other:?}")),
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
