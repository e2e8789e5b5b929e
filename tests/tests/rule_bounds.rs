//! What a rule set can cost, end to end with route-decision's binary: no rule set that
//! compiles can abort the process, and no rule, whatever the customer's data makes it cost,
//! holds a decision past its deadline or stalls the decisions beside it.

use std::time::Duration;

use e2e::{Reply, StandIn, TWILIO_TOKEN, signed_form_post, studio_function};
use serde_json::{Value, json};
use studio_router::domain::rules;

/// The rule the issue names: plausible, and quadratic in the customer's lists.
const BOUGHT_WHAT_THEY_VIEWED: &str = r#"{"rules": [{"name": "bought-what-they-viewed",
    "when": "traits.viewed.exists(x, traits.purchased.exists(y, x == y))", "transition": "agent"}],
    "default": "bot", "on_error": "agent"}"#;

/// Items in a slow customer's lists: about 2 s of evaluation in a debug build, four times
/// the deadline below (a release build is faster, and the tests run debug binaries).
const SLOW_LISTS: usize = 900;

fn studio_request(from: &str) -> Value {
    signed_form_post(TWILIO_TOKEN, &[("From", from), ("Body", "hello")])
}

/// A Profile API whose customer `+1555555090x` has lists of `SLOW_LISTS` items when x is
/// below 5, and of three items otherwise; nothing in common, so every pair is compared.
async fn profiles_with_lists() -> StandIn {
    StandIn::start(|request| {
        let slow = ["0", "1", "2", "3", "4"]
            .iter()
            .any(|x| request.path.contains(&format!("555555090{x}")));
        let n = if slow { SLOW_LISTS } else { 3 };
        let viewed: Vec<String> = (0..n).map(|i| format!("sku-{i}")).collect();
        let purchased: Vec<String> = (0..n).map(|i| format!("gift-{i}")).collect();
        Reply::traits(json!({"viewed": viewed, "purchased": purchased}))
    })
    .await
}

/// The function's `decision` log lines, once there are `n` (a line follows its answer).
async fn decision_lines(function: &e2e::Function, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let lines = function.log_lines("decision");
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    function.log_lines("decision")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_rule_falls_back_at_the_deadline_and_never_stalls_its_neighbours() {
    let profiles = profiles_with_lists().await;
    let (runtime, function) = studio_function(
        "route-decision",
        &profiles.url(),
        &[
            ("ROUTING_RULES", BOUGHT_WHAT_THEY_VIEWED),
            ("DECISION_DEADLINE_MS", "500"),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "4"),
        ],
    )
    .await;
    // GIVEN two customers whose lists take seconds to compare, one worker each, and a third
    // customer with short lists right behind them
    let slow: Vec<_> = ["+15555550900", "+15555550901"]
        .into_iter()
        .map(|from| tokio::spawn(runtime.queue(studio_request(from)).answer()))
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let quick = runtime.invoke(studio_request("+15555550909")).await;
    // THEN the third is decided by its rule before either of the other two is answered:
    // nothing waited for their evaluations
    assert!(slow.iter().all(|answer| !answer.is_finished()));
    assert_eq!(quick.body()["rule"], "default", "{}", quick.payload);
    assert_eq!(quick.body()["fallback"], false);
    let mut answered = Vec::new();
    for answer in slow {
        let payload = answer.await.expect("answered");
        answered.push(studio_router::edge::invocation::status_and_body(&payload).1);
    }
    // AND the two slow ones fall back, by their deadline, with a reason of their own
    for body in &answered {
        assert_eq!(
            (body["transition"].clone(), body["fallback"].clone()),
            (json!("agent"), json!(true)),
            "{body}"
        );
    }
    let lines = decision_lines(&function, 3).await;
    let reasons: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["fallback_reason"].as_str())
        .collect();
    assert_eq!(reasons, ["rules_timeout", "rules_timeout"], "{lines:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_bound_on_abandoned_evaluations_decisions_fall_back_at_once() {
    let profiles = profiles_with_lists().await;
    let (runtime, function) = studio_function(
        "route-decision",
        &profiles.url(),
        &[
            ("ROUTING_RULES", BOUGHT_WHAT_THEY_VIEWED),
            ("DECISION_DEADLINE_MS", "300"),
        ],
    )
    .await;
    // GIVEN two evaluations left running by decisions that fell back at their deadline
    for from in ["+15555550902", "+15555550903"] {
        let answer = runtime.invoke(studio_request(from)).await;
        assert_eq!(answer.body()["fallback"], true, "{}", answer.payload);
    }
    // WHEN another decision on the same rules comes while they still run
    let busy = runtime.invoke(studio_request("+15555550904")).await;
    // THEN it falls back at once instead of starting a third
    assert_eq!(busy.body()["fallback"], true, "{}", busy.payload);
    let lines = decision_lines(&function, 3).await;
    assert_eq!(lines[2]["fallback_reason"], "rules_busy", "{lines:?}");
    // (Its deadline is 300 ms: a decision that waited for an evaluation would log at least that.)
    assert!(
        lines[2]["latency_us"].as_u64() < Some(300_000),
        "{}",
        lines[2]
    );
}

/// What AppConfig sends its Lambda validator for `content`.
fn validation(content: &str) -> Value {
    let content = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, content);
    json!({"applicationId": "a", "configurationProfileId": "p", "configurationVersion": "7",
           "content": content})
}

/// 1,200 terms: the rule set that compiled, passed AppConfig's validator and aborted the
/// process at its first decision.
fn thousand_terms() -> String {
    json!({"rules": [{"name": "sum", "when": format!("traits.x{} > 0", " + 1".repeat(1_200)),
                      "transition": "agent"}], "default": "bot", "on_error": "agent"})
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_set_too_deep_to_evaluate_is_refused_at_start_and_by_the_validator() {
    let profiles = StandIn::always(Reply::traits(json!({"x": 1}))).await;
    let rules = thousand_terms();
    let (runtime, mut function) = studio_function(
        "route-decision",
        &profiles.url(),
        &[
            ("ROUTING_RULES", rules.as_str()),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "4"),
        ],
    )
    .await;
    // At start: a configuration error that names the limit, and the process keeps answering.
    for _ in 0..2 {
        let answer = runtime.invoke(studio_request("+15555550100")).await;
        assert_eq!(answer.status(), 500, "{}", answer.payload);
        assert_eq!(answer.body()["error"]["code"], "configuration_error");
    }
    assert!(function.is_running(), "the process is alive");
    let logged = function.logs().join("\n");
    assert!(logged.contains("at most 500"), "{logged}");
    assert_eq!(profiles.count(), 0);
    // Misconfigured, it validates nothing for AppConfig: even good rules are not passed.
    let unchecked = runtime.invoke(validation(rules::DEFAULT_RULES)).await;
    assert!(unchecked.failed, "{}", unchecked.payload);

    // AppConfig's validator (any function configured well enough) refuses it, naming why.
    let (validator, _function) = studio_function("route-decision", &profiles.url(), &[]).await;
    let refused = validator.invoke(validation(&rules)).await;
    assert!(refused.failed, "{}", refused.payload);
    let message = refused.payload["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("at most 500"), "{message}");
}
