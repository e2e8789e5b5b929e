//! The rule set the sandbox's route-decision uses, with the text it was compiled from: the
//! console shows and edits the text, the file reload and the console's apply switch the
//! set, and only a text that compiles is ever put in.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use studio_router::domain::rules::{RuleSet, RulesError, RulesInUse};

pub struct EditableRules {
    live: Arc<RulesInUse>,
    text: RwLock<String>,
    /// Where the first text came from: `sandbox/rules.json`, a path, or `ROUTING_RULES`.
    source: String,
    /// The file edits are saved to when asked (none for inline `ROUTING_RULES`).
    file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("the rules came from ROUTING_RULES, not a file, so there is no file to save to")]
    NoFile,
    #[error("cannot write {path}: {problem}")]
    Write { path: String, problem: String },
}

impl EditableRules {
    pub fn new(live: Arc<RulesInUse>, text: String, source: String, file: Option<PathBuf>) -> Self {
        Self {
            live,
            text: RwLock::new(text),
            source,
            file,
        }
    }

    /// The set decisions read (shared with route-decision).
    pub fn live(&self) -> &Arc<RulesInUse> {
        &self.live
    }

    /// The text of the set in use.
    pub fn text(&self) -> String {
        self.text
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Compiles `text` and, when it compiles, makes it the set the next decision uses.
    pub fn apply(&self, text: &str) -> Result<Arc<RuleSet>, RulesError> {
        let rules = RuleSet::compile(text)?;
        let mut held = self.text.write().unwrap_or_else(PoisonError::into_inner);
        self.live.replace(rules);
        *held = text.to_owned();
        Ok(self.live.current())
    }

    /// Writes `text` (already applied) to the rules file.
    pub fn save(&self, text: &str) -> Result<&Path, SaveError> {
        let path = self.file.as_deref().ok_or(SaveError::NoFile)?;
        let mut text = text.to_owned();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        std::fs::write(path, text).map_err(|e| SaveError::Write {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?;
        Ok(path)
    }
}
