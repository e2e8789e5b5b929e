//! In-process cost of a decision: on inline traits (no lookup), the whole edge (decoding,
//! authentication, rules, encoding, the JSON log line) as the Lambda handler runs it; and
//! with a Profile API lookup to a loopback stand-in (the client, its pacing, the answer).
//!
//!   cargo bench -p perf --bench decision

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use e2e::{Reply, StandIn, TWILIO_TOKEN, signed_form_post};
use serde_json::json;
use studio_router::domain::rules::{Facts, RuleSet};
use studio_router::edge::Edge;
use studio_router::edge::functions::route_decision;

const RULES: &str = r#"{"rules": [
  {"name": "vip", "when": "traits.vip == true || traits.lifetime_value >= 5000", "transition": "agent", "attributes": {"priority": "100"}},
  {"name": "churn-risk", "when": "traits.predicted_churn > 0.8", "transition": "agent", "attributes": {"priority": "50"}},
  {"name": "known-agent", "when": "has(traits.last_known_service_agent) && traits.total_inbounds >= 2", "transition": "agent",
   "attributes": {"known_worker_sid": "traits.last_known_service_agent", "priority": "10"}},
  {"name": "read-docs-recently", "when": "traits.docs_last_2_days > 0", "transition": "agent"}
], "default": "bot", "on_error": "agent"}"#;

/// A candidate set judged beside `RULES` (shadow rules): the same traits, other thresholds.
const SHADOW: &str = r#"{"rules": [
  {"name": "vip", "when": "traits.vip == true || traits.lifetime_value >= 2000", "transition": "agent"},
  {"name": "churn-risk", "when": "traits.predicted_churn > 0.6", "transition": "agent"},
  {"name": "read-docs-recently", "when": "traits.docs_last_2_days > 1", "transition": "agent"}
], "default": "bot", "on_error": "bot"}"#;

/// `RULES` with an experiment deciding half of the customers by other rules.
const EXPERIMENT: &str = r#"{"rules": [
  {"name": "vip", "when": "traits.vip == true || traits.lifetime_value >= 5000", "transition": "agent", "attributes": {"priority": "100"}},
  {"name": "churn-risk", "when": "traits.predicted_churn > 0.8", "transition": "agent", "attributes": {"priority": "50"}},
  {"name": "known-agent", "when": "has(traits.last_known_service_agent) && traits.total_inbounds >= 2", "transition": "agent",
   "attributes": {"known_worker_sid": "traits.last_known_service_agent", "priority": "10"}},
  {"name": "read-docs-recently", "when": "traits.docs_last_2_days > 0", "transition": "agent"}
], "default": "bot", "on_error": "agent",
 "experiment": {"name": "docs-first", "share": 0.5, "rules": [
  {"name": "read-docs", "when": "traits.docs_last_2_days > 1", "transition": "agent"}]}}"#;

/// A rule that loops (a comprehension): evaluated off the async worker, within the deadline.
const LOOPING: &str = r#"{"rules": [
  {"name": "bought-what-they-viewed", "when": "traits.viewed.exists(x, traits.purchased.exists(y, x == y))", "transition": "agent"}
], "default": "bot", "on_error": "agent"}"#;

fn bench(c: &mut Criterion) {
    // Log lines are formatted as in production, then discarded.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(std::io::sink)
        .try_init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let env_with = |rules: &'static str| {
        move |name: &str| -> Option<String> {
            match name {
                "SEGMENT_SPACE_ID" => Some("spa_bench".into()),
                "SEGMENT_PROFILE_API_TOKEN" => Some("token".into()),
                "SEGMENT_PROFILE_API_URL" => Some("http://127.0.0.1:9".into()),
                "TWILIO_AUTH_TOKEN" => Some(TWILIO_TOKEN.into()),
                "ROUTING_RULES" => Some(rules.into()),
                _ => None,
            }
        }
    };
    let edge = Edge::load(&env_with(RULES), route_decision::load).expect("configuration");
    let traits = json!({"docs_last_2_days": 2, "total_inbounds": 1, "lifetime_value": 120.5, "predicted_churn": 0.2});

    let direct = json!({"traits": traits, "channel": "sms"});
    c.bench_function("route-decision: inline traits, direct invoke", |b| {
        b.iter_batched(
            || direct.clone(),
            |event| runtime.block_on(edge.handle(black_box(event), None)),
            BatchSize::SmallInput,
        )
    });

    let shadowed = Edge::load(
        &|name: &str| match name {
            "SHADOW_ROUTING_RULES" => Some(SHADOW.into()),
            other => env_with(RULES)(other),
        },
        route_decision::load,
    )
    .expect("configuration");
    c.bench_function(
        "route-decision: inline traits, direct invoke, with a shadow set",
        |b| {
            b.iter_batched(
                || direct.clone(),
                |event| runtime.block_on(shadowed.handle(black_box(event), None)),
                BatchSize::SmallInput,
            )
        },
    );

    let studio = signed_form_post(
        TWILIO_TOKEN,
        &[("traits", &traits.to_string()), ("channel", "sms")],
    );
    c.bench_function(
        "route-decision: inline traits, signed Studio form (payload 2.0)",
        |b| {
            b.iter_batched(
                || studio.clone(),
                |event| runtime.block_on(edge.handle(black_box(event), None)),
                BatchSize::SmallInput,
            )
        },
    );

    let looping = Edge::load(&env_with(LOOPING), route_decision::load).expect("configuration");
    let lists = json!({"traits": {"viewed": ["a", "b", "c"], "purchased": ["d", "e", "c"]}, "channel": "sms"});
    c.bench_function(
        "route-decision: a looping rule over short lists, direct invoke",
        |b| {
            b.iter_batched(
                || lists.clone(),
                |event| runtime.block_on(looping.handle(black_box(event), None)),
                BatchSize::SmallInput,
            )
        },
    );

    // An experiment on inline traits (the control: no identifier to hash), and the arm's hash
    // on its own, which an identified customer's decision adds to that.
    let inline_with_experiment =
        Edge::load(&env_with(EXPERIMENT), route_decision::load).expect("configuration");
    c.bench_function(
        "route-decision: inline traits, direct invoke, with an experiment",
        |b| {
            b.iter_batched(
                || direct.clone(),
                |event| runtime.block_on(inline_with_experiment.handle(black_box(event), None)),
                BatchSize::SmallInput,
            )
        },
    );
    let rules = RuleSet::compile(EXPERIMENT).expect("rules");
    let experiment = rules.experiment().expect("an experiment");
    c.bench_function("rules: an experiment's arm for one identifier", |b| {
        b.iter(|| experiment.arm(black_box("phone:+15555550100")))
    });

    // A lookup on every decision (the cache off), to a Profile API stand-in on loopback served
    // by its own thread: what the path to Segment adds, the pacer included once it exists.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let stand_in = server.block_on(StandIn::always(Reply::traits(traits.clone())));
    let segment_url = stand_in.url();
    let looking_up = Edge::load(
        &|name: &str| match name {
            "SEGMENT_PROFILE_API_URL" => Some(segment_url.clone()),
            "PROFILE_CACHE_TTL_SECS" => Some("0".into()),
            other => env_with(RULES)(other),
        },
        route_decision::load,
    )
    .expect("configuration");
    let customer = json!({"From": "+15555550100", "channel": "sms"});
    c.bench_function(
        "route-decision: a Profile API lookup on loopback, direct invoke",
        |b| {
            b.iter_batched(
                || customer.clone(),
                |event| runtime.block_on(looking_up.handle(black_box(event), None)),
                BatchSize::SmallInput,
            )
        },
    );

    let rules = RuleSet::compile(RULES).expect("rules");
    let map = traits.as_object().cloned().unwrap_or_default();
    c.bench_function("rules: evaluate 4 rules", |b| {
        b.iter(|| {
            rules.evaluate(black_box(&Facts {
                traits: &map,
                channel: Some("sms"),
            }))
        })
    });
    c.bench_function("rules: compile 4 rules", |b| {
        b.iter(|| RuleSet::compile(black_box(RULES)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
