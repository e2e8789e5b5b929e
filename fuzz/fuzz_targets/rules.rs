//! Any rules document compiles or fails with a message; a rule set that compiles evaluates
//! any traits without a panic and always names a transition; and no expression, however
//! deep or long, overflows a tokio worker's 2 MiB stack while it is compiled or evaluated.
//!
//! Input: a condition, a newline, the traits as JSON. A condition that starts with byte 1 is
//! built instead: `\x01 <n> <prefix> \x01 <core> \x01 <suffix>` becomes the prefix `8 * n`
//! times, the core, then the suffix as often: the deep and long shapes a mutator rarely
//! reaches by itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use studio_router::domain::rules::{Facts, RuleSet};

/// A tokio worker's stack.
const WORKER_STACK: usize = 2 * 1024 * 1024;

fn condition_of(line: &str) -> String {
    let Some(built) = line.strip_prefix('\u{1}') else {
        return line.to_owned();
    };
    let mut parts = built.splitn(3, '\u{1}');
    let (head, core, suffix) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut chars = head.chars();
    let n = chars.next().map_or(0, |c| (c as usize % 256) * 8);
    let prefix: String = chars.collect();
    format!("{}{core}{}", prefix.repeat(n), suffix.repeat(n))
}

fn check(text: String) {
    // First line: a condition; the rest: the traits, as JSON.
    let (line, traits) = text.split_once('\n').unwrap_or((&text, "{}"));
    let condition = condition_of(line);
    let document = serde_json::json!({
        "rules": [{"name": "fuzzed", "when": condition, "transition": "agent", "attributes": {"a": condition}}],
        "default": "bot", "on_error": "agent"
    })
    .to_string();
    let _ = RuleSet::compile(&text);
    let Ok(rules) = RuleSet::compile(&document) else {
        return;
    };
    let traits = studio_router::support::json_text::from_str::<serde_json::Map<String, serde_json::Value>>(traits)
        .unwrap_or_default();
    for channel in [None, Some("sms")] {
        let verdict = rules.evaluate(&Facts { traits: &traits, channel });
        assert!(verdict.transition == "agent" || verdict.transition == "bot");
        let (explained, _) = rules.explain(&Facts { traits: &traits, channel });
        assert_eq!(explained.transition, verdict.transition);
    }
    let _ = rules.on_error(Some("voice"));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text = text.to_owned();
    // An overflow here aborts the process: libFuzzer reports it as a crash.
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(move || check(text))
        .expect("thread")
        .join()
        .expect("no panic");
});
