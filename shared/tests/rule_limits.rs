//! Rules at and past the limits, compiled and evaluated on a 2 MiB thread stack (a tokio
//! worker's): whatever the text, a refusal or a verdict, never a stack overflow (which aborts
//! the whole process, every invocation in flight with it).

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use studio_router::domain::rules::{Facts, MAX_OPERATORS, RuleSet, RulesError};

/// A tokio worker's stack.
const WORKER_STACK: usize = 2 * 1024 * 1024;

/// Runs `f` on a thread with a tokio worker's stack; an overflow aborts the test binary.
fn on_a_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(f)
        .expect("thread")
        .join()
        .expect("no panic")
}

fn document(condition: &str) -> String {
    json!({"rules": [{"name": "r", "when": condition, "transition": "agent",
                      "attributes": {"echo": condition}}],
           "default": "bot", "on_error": "agent"})
    .to_string()
}

fn traits() -> Map<String, Value> {
    let nested = (0..40).fold(json!(1), |inner, _| json!({"b": inner}));
    json!({"x": 1, "a": nested, "list": [1, 2, 3], "s": "text"})
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// Compiles `condition` and, when it compiles, evaluates and explains it; on a worker stack.
fn compile_and_run(condition: String) -> Result<String, String> {
    on_a_worker_stack(move || match RuleSet::compile(&document(&condition)) {
        Ok(rules) => {
            let traits = traits();
            let facts = Facts {
                traits: &traits,
                channel: Some("sms"),
            };
            let (verdict, _) = rules.explain(&facts);
            assert_eq!(rules.evaluate(&facts).transition, verdict.transition);
            Ok(verdict.transition)
        }
        Err(error) => Err(error.to_string()),
    })
}

/// Expressions of `n` steps of each shape that deepens the tree fastest.
fn shapes(n: usize) -> Vec<String> {
    vec![
        format!("traits.x{} > 0", " + 1".repeat(n)),
        format!("traits.x{} > 0", " * 2 - 1".repeat(n)),
        format!("has(traits.a{})", ".b".repeat(n)),
        format!("{}true", "!".repeat(n)),
        format!("{}1 > 0", "-".repeat(n)),
        format!("traits.x == 1{}", " && true".repeat(n)),
        format!("{}true{}", "(".repeat(n), ")".repeat(n)),
        format!("{}true{}", "[1].exists(v, ".repeat(n), ")".repeat(n)),
        format!("{}true{}", "(true ? ".repeat(n), " : false)".repeat(n)),
        format!(
            "{}traits.x{}",
            "traits.list.exists(v, v == ".repeat(n),
            ")".repeat(n)
        ),
        format!("{}traits.x{}", "size([".repeat(n), "]) ".repeat(n)),
        format!("{}1{}", "{'k': ".repeat(n), "}".repeat(n)),
        format!("traits.x // the customer's tier\n{} > 0", " + 1".repeat(n)),
    ]
}

#[test]
fn the_deepest_texts_within_the_limits_compile_and_evaluate_on_a_worker_stack() {
    for shape in 0..shapes(1).len() {
        // The most steps of this shape the limits let through.
        let deepest = (1..=MAX_OPERATORS)
            .rev()
            .map(|n| shapes(n).swap_remove(shape))
            .find(|text| RuleSet::compile(&document(text)).is_ok());
        let Some(condition) = deepest else {
            panic!("shape {shape} never compiles")
        };
        let outcome = compile_and_run(condition.clone());
        assert!(outcome.is_ok(), "{condition}: {outcome:?}");
    }
}

#[test]
fn texts_past_the_limits_are_refused_with_the_limit_named() {
    for (condition, named) in [
        (
            format!("traits.x{} > 0", " + 1".repeat(1_200)),
            "500 operators",
        ),
        (format!("traits.a{}", ".b".repeat(20_000)), "at most 8192"),
        (format!("traits.x{} > 0", " + 1".repeat(40)), "at most 32"),
        (
            format!("{}true{}", "[1].exists(v, ".repeat(20), ")".repeat(20)),
            "at most 32",
        ),
    ] {
        let error = RuleSet::compile(&document(&condition)).err();
        assert!(
            matches!(error, Some(RulesError::TooComplex { .. })),
            "{error:?}"
        );
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains(named), "{message}");
    }
}

/// Expressions built from random steps, often far deeper than any limit.
fn expression() -> impl Strategy<Value = String> {
    let step = prop_oneof![
        Just(("", " + 1")),
        Just(("", ".b")),
        Just(("!", "")),
        Just(("-", "")),
        Just(("(", ")")),
        Just(("[", "]")),
        Just(("[1].exists(v, ", ")")),
        // One item: nested loops over longer lists are a matter of time, not of the stack.
        Just(("[0].all(w, ", ")")),
        Just(("(true ? ", " : false)")),
        Just(("", " && true")),
        Just(("", " in [1, 2]")),
        Just(("{'k': ", "}")),
        Just(("size(", ")")),
        Just(("", " // it's a comment\n + 1")),
    ];
    (
        prop::collection::vec(step, 0..400),
        prop::sample::select(vec![
            "traits.x",
            "traits.a",
            "true",
            "1",
            "'s'",
            "traits.list",
        ]),
    )
        .prop_map(|(steps, core)| {
            let mut text = core.to_owned();
            for (before, after) in steps {
                text = format!("{before}{text}{after}");
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, .. ProptestConfig::default() })]

    #[test]
    fn no_expression_overflows_a_worker_stack(condition in expression()) {
        // Either outcome is fine; returning at all is the property.
        let _ = compile_and_run(condition);
    }
}

#[test]
fn traits_as_deep_as_a_lookup_may_answer_are_evaluated_on_a_worker_stack() {
    // The Profile API's answer is read up to 128 levels: a rule over such a trait, on a 2 MiB
    // stack, explained too.
    let outcome = on_a_worker_stack(|| {
        let deep = (0..127).fold(json!(1), |inner, _| json!({"b": inner}));
        let traits = json!({"a": deep}).as_object().cloned().unwrap_or_default();
        let rules = RuleSet::compile(&document("has(traits.a.b.b) && traits.a != traits.x"))
            .map_err(|e| e.to_string())?;
        let facts = Facts {
            traits: &traits,
            channel: None,
        };
        let (verdict, _) = rules.explain(&facts);
        Ok::<String, String>(verdict.transition)
    });
    assert!(outcome.is_ok(), "{outcome:?}");
}
