//! Any rules document compiles or fails with a message; a rule set that compiles evaluates
//! any traits without a panic and always names a transition.
#![no_main]

use libfuzzer_sys::fuzz_target;
use studio_router::rules::{Facts, RuleSet};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // First line: a condition; the rest: the traits, as JSON.
    let (condition, traits) = text.split_once('\n').unwrap_or((text, "{}"));
    let document = serde_json::json!({
        "rules": [{"name": "fuzzed", "when": condition, "transition": "agent", "attributes": {"a": condition}}],
        "default": "bot", "on_error": "agent"
    })
    .to_string();
    let _ = RuleSet::compile(text);
    let Ok(rules) = RuleSet::compile(&document) else {
        return;
    };
    let traits = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(traits).unwrap_or_default();
    for channel in [None, Some("sms")] {
        let verdict = rules.evaluate(&Facts { traits: &traits, channel });
        assert!(verdict.transition == "agent" || verdict.transition == "bot");
    }
    let _ = rules.on_error(Some("voice"));
});
