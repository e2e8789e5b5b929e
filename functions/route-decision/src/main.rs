//! route-decision: tells a Studio flow whether this customer goes to a bot or an agent.
//!
//! `route-decision --check-rules FILE` validates a rules file offline and exits.

use std::process::ExitCode;

use studio_router::operations::route_decision;
use studio_router::rules::RuleSet;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path] = args.as_slice()
        && flag == "--check-rules"
    {
        return check_rules(path);
    }
    if !args.is_empty() {
        eprintln!("usage: route-decision [--check-rules FILE]");
        return ExitCode::from(2);
    }
    studio_router::edge::main("route-decision", route_decision::load)
}

/// Compiles the rules as the function would at start, and says what it found.
fn check_rules(path: &str) -> ExitCode {
    let json = match std::fs::read_to_string(path) {
        Ok(json) => json,
        Err(error) => {
            eprintln!("{path}: cannot read: {error}");
            return ExitCode::FAILURE;
        }
    };
    match RuleSet::compile(&json) {
        Ok(rules) => {
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
            println!("{path}: ok, {} rule(s): {}", names.len(), names.join(", "));
            println!("traits requested from Segment: {traits}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{path}: {error}");
            ExitCode::FAILURE
        }
    }
}
