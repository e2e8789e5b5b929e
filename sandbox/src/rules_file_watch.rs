//! The local stack's rules follow their file: save `sandbox/rules.json` (or the
//! `ROUTING_RULES_FILE`) and the next decision uses it. An edit that does not compile is
//! reported and changes nothing; the rules in use stay until the file compiles again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::editable_rules::EditableRules;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the file is looked at: quicker than anyone switches to a terminal and sends a
/// request, and a stat a tick costs nothing.
const EVERY: Duration = Duration::from_millis(250);

/// What tells one version of the file from the next.
fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// Reloads the active rules from `path` whenever the file changes, until `stopped` turns
/// true.
pub fn follow(
    path: PathBuf,
    active: Arc<EditableRules>,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = stamp(&path);
        loop {
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep(EVERY) => {}
            }
            let now = stamp(&path);
            if now == seen {
                continue;
            }
            seen = now;
            reload(&path, &active);
        }
    })
}

fn reload(path: &PathBuf, active: &EditableRules) {
    let source = path.display().to_string();
    let compiled = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read it: {e}"))
        .and_then(|json| active.apply(&json).map_err(|e| e.to_string()));
    match compiled {
        Ok(rules) => {
            let names: Vec<&str> = rules.rule_names().collect();
            tracing::info!(source = %source, rules = %names.join(", "), "rules reloaded; the next decision uses them");
        }
        // For the person at the terminal, as a start-up error reads (a JSON line would escape
        // the caret that points at the mistake).
        Err(error) => {
            eprintln!("\n{source} changed but cannot be used; the rules in use stay:\n{error}\n");
        }
    }
}
