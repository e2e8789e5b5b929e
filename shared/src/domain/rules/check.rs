//! `route-decision --check-rules`: a rules file checked as the function would at start, and,
//! given a customer's traits, the decision with how each rule fared.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::{Facts, RuleSet, RulesError, TraceOutcome};

/// A customer to try the rules on: their traits (a JSON object) and the channel, if any.
pub struct Trial<'a> {
    pub name: &'a str,
    pub traits: &'a Map<String, Value>,
    pub channel: Option<&'a str>,
}

/// What `--check-rules` prints for the rules in `json` (read from `path`), or the reason
/// they would fail at start.
pub fn report(path: &str, json: &str, trial: Option<&Trial<'_>>) -> Result<String, RulesError> {
    let rules = RuleSet::compile(json)?;
    let names: Vec<&str> = rules.rule_names().collect();
    let traits = match rules.referenced_traits() {
        Some(keys) if keys.is_empty() => "none (no lookup needed)".to_owned(),
        Some(keys) => keys
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        None => "all (a rule reads traits as a whole)".to_owned(),
    };
    let mut out = format!(
        "{path}: ok, {} rule(s): {}\n",
        names.len(),
        names.join(", ")
    );
    if let Some(experiment) = rules.experiment() {
        let theirs: Vec<&str> = experiment.rules.rule_names().collect();
        let _ = writeln!(
            out,
            "experiment {}: {}% of customers decided by {} rule(s): {} (the trial below uses the document's own)",
            experiment.name,
            experiment.share * 100.0,
            theirs.len(),
            theirs.join(", ")
        );
    }
    let _ = writeln!(out, "traits requested from Segment: {traits}");
    let _ = writeln!(out, "{}", transitions_line(&rules));
    if let Some(trial) = trial {
        let (verdict, traces) = rules.explain(&Facts {
            traits: trial.traits,
            channel: trial.channel,
        });
        let _ = write!(
            out,
            "{} (channel: {}): {} by rule {}",
            trial.name,
            trial.channel.unwrap_or("none"),
            verdict.transition,
            verdict.rule
        );
        if !verdict.attributes.is_empty() {
            let _ = write!(out, ", attributes {}", Value::Object(verdict.attributes));
        }
        out.push('\n');
        for trace in traces {
            let _ = write!(out, "  {}: {}", trace.rule, outcome_name(trace.outcome));
            if let Some(detail) = trace.detail {
                let _ = write!(out, " ({detail})");
            }
            out.push('\n');
        }
    }
    Ok(out)
}

fn outcome_name(outcome: TraceOutcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The transitions the flow's Split needs a branch for, and whether the document holds its
/// rules to them.
fn transitions_line(rules: &RuleSet) -> String {
    if rules.declared_transitions().is_some() {
        return format!("transitions (declared): {}", rules.declared_list());
    }
    let mut used: Vec<&str> = rules.transitions().collect();
    if let Some(experiment) = rules.experiment() {
        used.extend(experiment.rules.transitions());
    }
    used.sort_unstable();
    used.dedup();
    let list = used.join(", ");
    let quoted: Vec<String> = used.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        "transitions the flow's Split needs: {list} (declare \"transitions\": [{}] to refuse any other)",
        quoted.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_report_lists_the_rules_and_given_traits_says_how_each_fared() {
        let rules = r#"{"rules": [
            {"name": "vip", "when": "traits.lifetime_value >= 5000", "transition": "agent"},
            {"name": "docs", "when": "traits.docs_last_2_days > 0", "transition": "agent"}],
            "default": "bot", "on_error": "agent"}"#;
        assert_eq!(
            report("rules.json", rules, None).unwrap(),
            "rules.json: ok, 2 rule(s): vip, docs\ntraits requested from Segment: docs_last_2_days, lifetime_value\n\
             transitions the flow's Split needs: agent, bot (declare \"transitions\": [\"agent\", \"bot\"] to refuse any other)\n"
        );
        let traits = json!({"lifetime_value": "9000"});
        let trial = Trial {
            name: "kim.json",
            traits: traits.as_object().unwrap(),
            channel: Some("sms"),
        };
        let out = report("rules.json", rules, Some(&trial)).unwrap();
        assert_eq!(
            out.lines().skip(3).collect::<Vec<_>>(),
            [
                "kim.json (channel: sms): bot by rule default",
                "  vip: wrong_type ('>=' does not apply to (string, int))",
                "  docs: missing_trait (no \"docs_last_2_days\" on the profile)"
            ]
        );
        assert!(out.contains("  docs: missing_trait"), "{out}");
        assert!(!out.contains("9000"), "no trait value in the trace: {out}");
    }
}
