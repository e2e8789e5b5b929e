//! A [`RuleSet`] applied to a customer's facts.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::Key;
use cel::{Context, Value as Cel};
use serde_json::Map;

use super::compile::RuleOutcome;
use super::explain::{RuleTrace, error_kind};
use super::values::{cel_to_json, object_to_cel};
use super::{Facts, RuleSet, Verdict};

impl RuleSet {
    /// The first rule whose condition holds, else `default`. A condition that cannot be
    /// evaluated (a trait the profile lacks, a type mismatch) is false: a customer without
    /// the trait simply does not match that rule.
    pub fn evaluate(&self, facts: &Facts<'_>) -> Verdict {
        self.run(facts, None)
    }

    /// [`evaluate`](Self::evaluate), and how each rule fared, in order: for a caller who
    /// asked why (`explain=true`, `--check-rules` with a traits file).
    pub fn explain(&self, facts: &Facts<'_>) -> (Verdict, Vec<RuleTrace>) {
        let mut traces = Vec::with_capacity(self.rules.len());
        let verdict = self.run(facts, Some(&mut traces));
        (verdict, traces)
    }

    /// Every rule that was not evaluated, when the profile could not be read.
    pub fn not_evaluated(&self) -> Vec<RuleTrace> {
        self.rules
            .iter()
            .map(|rule| RuleTrace::not_evaluated(&rule.name))
            .collect()
    }

    fn run(&self, facts: &Facts<'_>, mut traces: Option<&mut Vec<RuleTrace>>) -> Verdict {
        let mut context = Context::with_env(self.env.clone());
        context.add_variable_from_value("traits", object_to_cel(facts.traits));
        context.add_variable_from_value(
            "channel",
            facts
                .channel
                .map_or(Cel::Null, |c| Cel::String(Arc::new(c.to_owned()))),
        );
        let mut decided = None;
        for rule in &self.rules {
            if decided.is_some() {
                // Only a caller who asked for the trace reads past the first match.
                match traces.as_deref_mut() {
                    Some(traces) => traces.push(RuleTrace::not_reached(&rule.name)),
                    None => break,
                }
                continue;
            }
            let result = Cel::resolve(&rule.condition, &context);
            match &result {
                Ok(Cel::Bool(true)) => decided = Some(rule),
                Ok(Cel::Bool(false)) | Err(cel::ExecutionError::NoSuchKey(_)) => {}
                Ok(other) => tracing::warn!(
                    rule = %rule.name,
                    result_type = %other.type_of(),
                    "rule condition did not evaluate to a boolean; treated as false"
                ),
                Err(error) => {
                    tracing::debug!(rule = %rule.name, error = error_kind(error), "rule condition treated as false")
                }
            }
            if let Some(traces) = traces.as_deref_mut() {
                traces.push(RuleTrace::of(&rule.name, &rule.condition, &result));
            }
        }
        match decided {
            Some(rule) => rule.outcome.verdict(&rule.name, &context),
            None => self.default.verdict("default", &context),
        }
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

impl RuleOutcome {
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
