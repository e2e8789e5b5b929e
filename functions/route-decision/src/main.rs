//! route-decision: tells a Studio flow whether this customer goes to a bot or an agent.
//!
//! `route-decision --check-rules FILE [--traits FILE] [--channel NAME]` validates a rules
//! file offline (and, given a customer's traits, explains the decision) and exits.

use std::process::ExitCode;

use serde_json::{Map, Value};
use studio_router::domain::rules::check::{Trial, report};
use studio_router::edge::functions::route_decision;

const USAGE: &str = "usage: route-decision [--check-rules FILE [--traits FILE] [--channel NAME]]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => studio_router::edge::main(route_decision::load),
        Some("--check-rules") => match CheckArgs::parse(&args[1..]) {
            Some(check) => check.run(),
            None => usage(),
        },
        Some("--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(_) => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

struct CheckArgs<'a> {
    rules: &'a str,
    traits: Option<&'a str>,
    channel: Option<&'a str>,
}

impl<'a> CheckArgs<'a> {
    fn parse(args: &'a [String]) -> Option<Self> {
        let (rules, mut rest) = args.split_first()?;
        let mut check = Self {
            rules,
            traits: None,
            channel: None,
        };
        while let [flag, value, tail @ ..] = rest {
            match flag.as_str() {
                "--traits" => check.traits = Some(value),
                "--channel" => check.channel = Some(value),
                _ => return None,
            }
            rest = tail;
        }
        rest.is_empty().then_some(check)
    }

    /// Compiles the rules as the function would at start, and says what it found.
    fn run(&self) -> ExitCode {
        let Some(json) = read(self.rules) else {
            return ExitCode::FAILURE;
        };
        let traits = match self.traits.map(|path| (path, read(path))) {
            None => None,
            Some((_, None)) => return ExitCode::FAILURE,
            Some((path, Some(text))) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(traits)) => Some((path, traits)),
                _ => {
                    eprintln!("{path}: not a JSON object of traits");
                    return ExitCode::FAILURE;
                }
            },
        };
        let trial = traits
            .as_ref()
            .map(|(name, traits): &(&str, Map<String, Value>)| Trial {
                name,
                traits,
                channel: self.channel,
            });
        match report(self.rules, &json, trial.as_ref()) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{}: {error}", self.rules);
                ExitCode::FAILURE
            }
        }
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .map_err(|error| eprintln!("{path}: cannot read: {error}"))
        .ok()
}
