//! The local extensions misbehaving under load, with the real binaries: a Parameters and
//! Secrets extension that stops answering while an environment serves eight invocations at
//! once (Lambda Managed Instances), and extensions whose answer never ends. Every stand-in
//! answers only during INVOKE, as the real extensions do.

use std::time::{Duration, Instant};

use e2e::{
    Env, ExtensionStart, Framing, Function, OversizedExtension, Reply, RuntimeApi, SECRETS,
    SESSION_TOKEN, SecretsExtension, StandIn, TWILIO_TOKEN, function_with_secrets,
    signed_form_post, taskrouter_callback,
};
use serde_json::{Value, json};
use studio_router::edge::invocation::status_and_body;

/// Invocations at once, as `AWS_LAMBDA_MAX_CONCURRENCY` allows.
const AT_ONCE: usize = 8;
/// A secret is held this long before it is refreshed.
const TTL: Duration = Duration::from_secs(1);
/// What the oversized stand-ins send, as in the report: 96 MB.
const HUGE: usize = 96 * 1024 * 1024;
/// A function that refuses an answer early never holds much of it.
const PEAK_MB: u64 = 40;

fn decision(i: usize) -> Value {
    signed_form_post(TWILIO_TOKEN, &[("From", &format!("+1555555{i:04}"))])
}

/// Queues every event at once; the answers (status, body) and how long the last took.
async fn all_at_once(runtime: &RuntimeApi, events: Vec<Value>) -> (Vec<(u64, Value)>, Duration) {
    let started = Instant::now();
    let waiting: Vec<_> = events.into_iter().map(|e| runtime.queue(e)).collect();
    let mut answers = Vec::new();
    for answer in waiting {
        answers.push(status_and_body(&answer.answer().await));
    }
    (answers, started.elapsed())
}

/// Held, then past its TTL: the extension's first answer held, the next requests hang.
async fn stale_secrets(env: Env, name: &str) -> (RuntimeApi, SecretsExtension, Function) {
    let env = env.with(&[
        ("SECRETS_TTL_SECS", "1"),
        ("AWS_LAMBDA_MAX_CONCURRENCY", "8"),
    ]);
    let (runtime, extension, function) =
        function_with_secrets(name, ExtensionStart::HangsAfterFirst, &SECRETS, env).await;
    let warm = runtime.invoke(json!({"warmup": true})).await;
    assert_eq!(warm.payload, json!({"warm": true}));
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    (runtime, extension, function)
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_secrets_and_a_hanging_extension_hold_no_decision_up() {
    // GIVEN route-decision holding its Auth Token and Profile API token past their TTL,
    // and an extension that now hangs
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 2}))).await;
    let env = Env::studio_with_secret_ids(&segment.url()).set("DECISION_DEADLINE_MS", "3000");
    let (runtime, extension, _function) = stale_secrets(env, "route-decision").await;
    let fetched = extension.received().len();
    assert_eq!(fetched, 2, "the warm-up fetched both secrets");
    // WHEN eight signed decisions arrive at once
    let (answers, took) = all_at_once(&runtime, (0..AT_ONCE).map(decision).collect()).await;
    // THEN every one is decided with the held values, well within the 3 s deadline (one
    // after another behind the hanging refresh, they took 2, 4, ... 16 s)
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(
            (&body["rule"], &body["fallback"]),
            (&json!("read-docs-recently"), &json!(false)),
            "{body}"
        );
    }
    assert!(
        took < Duration::from_millis(1500),
        "the last answer came after {took:?}"
    );
    // AND each secret was refreshed once at most, in the background
    let refreshes = extension.received().len() - fetched;
    assert!(refreshes <= 2, "{refreshes} refreshes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_write_key_and_a_hanging_extension_hold_no_delivery_up() {
    let segment = StandIn::always(Reply::json(200, json!({"success": true}))).await;
    let env = Env::wrap_up(&segment.url())
        .unset("SEGMENT_WRITE_KEY")
        .set("SEGMENT_WRITE_KEY_SECRET_ID", "studio-router/write-key");
    let (runtime, extension, _function) = stale_secrets(env, "wrap-up-ingest").await;
    assert_eq!(extension.received().len(), 1);
    let callbacks = (0..AT_ONCE)
        .map(|_| taskrouter_callback("voice-inbound-reservation-wrapup"))
        .collect();
    let (answers, took) = all_at_once(&runtime, callbacks).await;
    for (status, body) in &answers {
        assert_eq!(*status, 204, "{body}");
    }
    assert!(
        took < Duration::from_millis(1500),
        "the last answer came after {took:?}"
    );
    assert!(
        extension.received().len() <= 2,
        "{:?}",
        extension.received().len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_value_held_callers_share_one_fetch_and_none_waits_past_its_deadline() {
    // GIVEN route-decision with its Auth Token in Secrets Manager, an 800 ms decision
    // deadline, and an extension that never answers
    let segment = StandIn::always(Reply::traits(json!({"docs_last_2_days": 2}))).await;
    let env = Env::studio(&segment.url())
        .unset("TWILIO_AUTH_TOKEN")
        .set("TWILIO_AUTH_TOKEN_SECRET_ID", "studio-router/auth-token")
        .with(&[
            ("DECISION_DEADLINE_MS", "800"),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "8"),
        ]);
    let (runtime, extension, function) =
        function_with_secrets("route-decision", ExtensionStart::Hangs, &SECRETS, env).await;
    // WHEN eight signed decisions arrive at once
    let (answers, took) = all_at_once(&runtime, (0..AT_ONCE).map(decision).collect()).await;
    // THEN each gives up at its own deadline (503, Studio's failed branch), not one after
    // another behind the fetch, and they shared one fetch
    for (status, body) in &answers {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["error"]["code"], "secrets_unavailable", "{body}");
    }
    assert!(
        took < Duration::from_millis(1500),
        "the last answer came after {took:?}"
    );
    assert_eq!(extension.received().len(), 1);
    // AND once that fetch has failed, the next callers get its failure at once instead of
    // each asking again
    function.log_line("the secret could not be read").await;
    let (answers, _) = all_at_once(&runtime, (0..AT_ONCE).map(decision).collect()).await;
    assert!(answers.iter().all(|(status, _)| *status == 503));
    assert!(
        extension.received().len() <= 2,
        "{}",
        extension.received().len()
    );
    assert_eq!(segment.count(), 0);
}

/// The first log line whose message is `message`, waiting up to 10 s for it.
async fn logged(function: &Function, message: &str) -> Value {
    for _ in 0..200 {
        if let Some(line) = function.log_lines(message).pop() {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {message:?} line; logs: {:#?}", function.logs());
}

/// route-decision reading what `extra` names from an extension whose answer never ends.
async fn against_oversized(
    framing: Framing,
    extra: impl Fn(&OversizedExtension, Env) -> Env,
) -> (RuntimeApi, OversizedExtension, Function) {
    let runtime = RuntimeApi::start().await;
    let extension = OversizedExtension::start(framing, HUGE, runtime.invoking()).await;
    let env = Env::studio("http://127.0.0.1:9").set("AWS_SESSION_TOKEN", SESSION_TOKEN);
    let env = extra(&extension, env);
    let function = Function::start("route-decision", &runtime, env.vars()).await;
    (runtime, extension, function)
}

/// The function read at most a little past `limit` of the answer and its peak stayed low.
fn assert_refused_early(function: &Function, extension: &OversizedExtension, what: &str) {
    let peak_mb = function.peak_rss_kb() / 1024;
    let written_mb = extension.written() / (1024 * 1024);
    println!("{what}: peak {peak_mb} MB; the extension wrote {written_mb} MB");
    assert!(peak_mb < PEAK_MB, "{what}: peak RSS {peak_mb} MB");
    assert_eq!(extension.requests(), 1, "{what}");
    // The rest stayed in the sockets' buffers, or was never sent.
    assert!(written_mb < 32, "{what}: {written_mb} MB written");
}

const FRAMINGS: [Framing; 2] = [Framing::Chunked, Framing::CloseDelimited];

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_that_never_ends_is_refused_at_the_limit_whatever_its_framing() {
    for framing in FRAMINGS {
        let (runtime, extension, function) = against_oversized(framing, |extension, env| {
            env.unset("TWILIO_AUTH_TOKEN")
                .set("TWILIO_AUTH_TOKEN_SECRET_ID", "studio-router/auth-token")
                .set("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", extension.port())
        })
        .await;
        let answer = runtime.invoke(decision(0)).await;
        assert_eq!(answer.status(), 503, "{framing:?}: {:?}", answer.payload);
        let line = logged(&function, "the secret could not be read").await;
        assert_refused_early(&function, &extension, &format!("secret, {framing:?}"));
        assert!(
            line["error"]
                .as_str()
                .is_some_and(|e| e.contains("1048576 bytes")),
            "{framing:?}: {line}"
        );
    }
}

/// Rules read through an extension whose answer never ends: refused at `limit`, while the
/// function's own rules go on deciding.
async fn rules_that_never_end(
    what: &str,
    limit: &str,
    source: impl Fn(&OversizedExtension, Env) -> Env,
) {
    for framing in FRAMINGS {
        let (runtime, extension, function) = against_oversized(framing, &source).await;
        let inline = signed_form_post(TWILIO_TOKEN, &[("From", "+15555550100"), ("traits", "{}")]);
        let answer = runtime.invoke(inline).await;
        let body = answer.body();
        assert_eq!(body["transition"], "bot", "{what}, {framing:?}: {body}");
        let line = logged(
            &function,
            "routing rules could not be read; the rules in use stay",
        )
        .await;
        assert_refused_early(&function, &extension, &format!("{what}, {framing:?}"));
        assert!(
            line["problem"].as_str().is_some_and(|p| p.contains(limit)),
            "{framing:?}: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parameter_that_never_ends_is_refused_at_the_limit_whatever_its_framing() {
    rules_that_never_end("parameter", "1048576 bytes", |extension, env| {
        env.set("ROUTING_RULES_PARAMETER", "/studio-router/routing-rules")
            .set("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", extension.port())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_appconfig_configuration_that_never_ends_is_refused_at_the_limit_whatever_its_framing() {
    rules_that_never_end("AppConfig", "262144 bytes", |extension, env| {
        env.set(
            "ROUTING_RULES_APPCONFIG",
            "studio-router/prod/routing-rules",
        )
        .set("AWS_APPCONFIG_EXTENSION_HTTP_PORT", extension.port())
    })
    .await;
}
