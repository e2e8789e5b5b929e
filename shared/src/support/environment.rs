//! Environment variables, read once at start: blank counts as unset, and every error names
//! the variable and what is wrong with it. Knows nothing of what the variables configure.

use std::ops::RangeInclusive;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    #[error("{0} is not set (it is required)")]
    Missing(&'static str),
    #[error(
        "{0} is not set (it is required; or set {0}_SECRET_ID to read it from Secrets Manager)"
    )]
    MissingSecret(&'static str),
    #[error("{name} is invalid: {problem}")]
    Invalid { name: &'static str, problem: String },
}

/// Where variables come from: the process environment, or a map in tests and the sandbox.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Environment for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Typed reads of an [`Environment`].
#[derive(Clone, Copy)]
pub struct Variables<'a> {
    env: &'a dyn Environment,
}

impl<'a> Variables<'a> {
    pub fn new(env: &'a dyn Environment) -> Self {
        Self { env }
    }

    /// The value exactly as set, for a variable another component reads too (Lambda's own).
    pub fn raw(&self, name: &str) -> Option<String> {
        self.env.var(name)
    }

    /// The trimmed value; blank counts as unset.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.env
            .var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, VariableError> {
        self.optional(name).ok_or(VariableError::Missing(name))
    }

    /// An `http://` or `https://` URL with a host, without a trailing slash.
    pub fn url(&self, name: &'static str, default: &str) -> Result<String, VariableError> {
        let value = self.optional(name).unwrap_or_else(|| default.to_owned());
        let lower = value.to_ascii_lowercase();
        let host = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        match host {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {
                Ok(value.trim_end_matches('/').to_owned())
            }
            _ => Err(VariableError::Invalid {
                name,
                problem: "must be an http:// or https:// URL".into(),
            }),
        }
    }

    pub fn millis(
        &self,
        name: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, VariableError> {
        self.number(name, default, range).map(Duration::from_millis)
    }

    pub fn number(
        &self,
        name: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, VariableError> {
        let Some(raw) = self.optional(name) else {
            return Ok(default);
        };
        match raw.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(VariableError::Invalid {
                name,
                problem: format!(
                    "must be a whole number from {} to {}, got \"{raw}\"",
                    range.start(),
                    range.end()
                ),
            }),
        }
    }

    pub fn boolean(&self, name: &'static str) -> Result<bool, VariableError> {
        match self
            .optional(name)
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(VariableError::Invalid {
                name,
                problem: format!("must be true or false, got \"{other}\""),
            }),
        }
    }

    /// One of `choices` (case-insensitive), or `default` when unset.
    pub fn choice(
        &self,
        name: &'static str,
        choices: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, VariableError> {
        let Some(raw) = self.optional(name) else {
            return Ok(default);
        };
        choices
            .iter()
            .find(|choice| choice.eq_ignore_ascii_case(&raw))
            .copied()
            .ok_or_else(|| VariableError::Invalid {
                name,
                problem: format!("must be one of {}, got \"{raw}\"", choices.join(", ")),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn with(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn blank_is_unset_and_values_are_trimmed() {
        let map = with(&[("A", "  "), ("B", " x ")]);
        let env = |name: &str| map.get(name).cloned();
        let vars = Variables::new(&env);
        assert_eq!(vars.optional("A"), None);
        assert_eq!(vars.optional("B").as_deref(), Some("x"));
        assert_eq!(
            vars.required("A").unwrap_err().to_string(),
            "A is not set (it is required)"
        );
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let map = with(&[
            ("PROFILE_TIMEOUT_MS", "fast"),
            ("SEGMENT_PROFILE_API_URL", "profiles.segment.com"),
            ("ALLOW_UNAUTHENTICATED", "sure"),
            ("EVENT_SCHEMA", "newest"),
        ]);
        let env = |name: &str| map.get(name).cloned();
        let vars = Variables::new(&env);
        assert_eq!(
            vars.millis("PROFILE_TIMEOUT_MS", 1500, 50..=9000)
                .unwrap_err()
                .to_string(),
            "PROFILE_TIMEOUT_MS is invalid: must be a whole number from 50 to 9000, got \"fast\""
        );
        assert_eq!(
            vars.url("SEGMENT_PROFILE_API_URL", "https://x")
                .unwrap_err()
                .to_string(),
            "SEGMENT_PROFILE_API_URL is invalid: must be an http:// or https:// URL"
        );
        assert!(
            vars.boolean("ALLOW_UNAUTHENTICATED")
                .unwrap_err()
                .to_string()
                .contains("must be true or false")
        );
        assert_eq!(
            vars.choice("EVENT_SCHEMA", &["seed", "current"], "seed")
                .unwrap_err()
                .to_string(),
            "EVENT_SCHEMA is invalid: must be one of seed, current, got \"newest\""
        );
        assert_eq!(
            vars.choice("UNSET", &["seed", "current"], "seed"),
            Ok("seed")
        );
    }
}
