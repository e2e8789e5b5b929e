//! A model of a contact center's peak: the release binaries under local Lambda Runtime APIs
//! that serve concurrent `/invocation/next` long-polls, against a Profile API stand-in that
//! behaves as Segment documents it: about 150 ms a lookup (Segment's p95 for `/traits` is
//! under 200 ms) and 100 requests a second per space, answered 429 (without `Retry-After`,
//! as the Profile API documents it) beyond that.
//!
//! 1. Capacity of one route-decision environment at each concurrency: distinct customers,
//!    queued all at once; decisions a second, the function's own decision latency, Profile
//!    API requests, 429s, fallbacks and peak RSS; first without Segment's limit (what the
//!    environment can do), then with it (what Segment lets it do).
//! 2. The peak: 500 conversations arriving over 10 s, 75 customers writing three times a
//!    few seconds apart, each conversation a route-decision then a profile-lookup for the same
//!    customer; on classic Lambda (an environment per concurrent invocation, started on
//!    demand, each with its own cache) against Managed Instances (one environment per
//!    function at concurrency 32).
//!
//!   cargo bench -p perf --bench peak
//!
//! PARTS (default `1,2`) picks the parts; STUDIO_ROUTER_BINARIES runs another build's binaries
//! (a before-and-after). CONCURRENCIES (default `1,8,32,64`) and DECISIONS (default 500; at most 100 at
//! concurrency 1, which takes 150 ms a decision) shape part 1.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::Answered;
use serde_json::Value;

mod common;
use common::{
    Environment, Limit, SEGMENT_LIMIT_PER_SECOND, SegmentLike, function_env, p50_p99, phone,
    studio_request,
};
const CONVERSATIONS: usize = 500;
const ARRIVALS_OVER: Duration = Duration::from_secs(10);
/// The first this many conversations are each a new customer; the rest come from the first
/// [`REPEATERS`] of them again, who thus write three times within the 10 s.
const DISTINCT_CUSTOMERS: usize = 350;
const REPEATERS: usize = 75;

/// Conversation `k`'s customer.
fn customer_of(k: usize) -> usize {
    if k < DISTINCT_CUSTOMERS {
        k
    } else {
        (k - DISTINCT_CUSTOMERS) % REPEATERS
    }
}

/// Part 1: one environment, `decisions` distinct customers queued at once.
async fn capacity(concurrency: u32, decisions: usize, limited: bool) {
    let limit = if limited {
        Limit::PerSecond { retry_after: None }
    } else {
        Limit::None
    };
    let segment = SegmentLike::start(limit).await;
    let environment = Environment::start(
        "route-decision",
        &function_env(&segment, Some(concurrency).filter(|c| *c > 1), &[]),
    )
    .await;
    let started = Instant::now();
    let waiting: Vec<_> = (0..decisions)
        .map(|i| environment.runtime.queue(studio_request(&phone(i))))
        .collect();
    let mut fallbacks = 0;
    for answer in waiting {
        let payload = answer.answer().await;
        let body = studio_router::edge::invocation::status_and_body(&payload).1;
        assert!(body["transition"].is_string(), "{body}");
        fallbacks += usize::from(body["fallback"] == true);
    }
    let elapsed = started.elapsed();
    let (p50, p99) = p50_p99(environment.logged_latencies());
    println!(
        "| {concurrency:>2} | {} | {decisions} | {:>6.1} | {p50:>5.0} | {p99:>5.0} | {:.2} | {} | {fallbacks} | {:.1} |",
        if limited { "100/s" } else { "none " },
        decisions as f64 / elapsed.as_secs_f64(),
        segment.requests() as f64 / decisions as f64,
        segment.refused(),
        environment.function.peak_rss_kb() as f64 / 1024.0,
    );
}

/// How invocations of one function reach environments.
enum Deployment {
    /// Lambda Managed Instances: one environment serves them all, many at once.
    Managed(Environment),
    /// Classic Lambda: an idle environment if there is one, else a new one (a cold start).
    Classic {
        name: &'static str,
        env: Vec<(&'static str, String)>,
        idle: Mutex<Vec<Arc<Environment>>>,
        all: Mutex<Vec<Arc<Environment>>>,
    },
}

impl Deployment {
    async fn invoke(&self, event: Value) -> Answered {
        match self {
            Self::Managed(environment) => environment.runtime.invoke(event).await,
            Self::Classic {
                name,
                env,
                idle,
                all,
            } => {
                let warm = idle.lock().expect("idle").pop();
                let environment = match warm {
                    Some(environment) => environment,
                    None => {
                        let environment = Arc::new(Environment::start(name, env).await);
                        all.lock().expect("all").push(environment.clone());
                        environment
                    }
                };
                let answer = environment.runtime.invoke(event).await;
                idle.lock().expect("idle").push(environment);
                answer
            }
        }
    }

    fn environments(&self) -> Vec<Arc<Environment>> {
        match self {
            Self::Managed(_) => Vec::new(),
            Self::Classic { all, .. } => all.lock().expect("all").clone(),
        }
    }

    fn cold_starts(&self) -> usize {
        match self {
            Self::Managed(_) => 1,
            Self::Classic { all, .. } => all.lock().expect("all").len(),
        }
    }

    fn rss_mb(&self) -> f64 {
        let kb: u64 = match self {
            Self::Managed(environment) => environment.function.peak_rss_kb(),
            Self::Classic { .. } => self
                .environments()
                .iter()
                .map(|e| e.function.peak_rss_kb())
                .sum(),
        };
        kb as f64 / 1024.0
    }
}

/// The template's defaults on Managed Instances: the space's 100 a second split 70 / 30
/// between route-decision and profile-lookup, over one environment each. Classic Lambda's
/// environments learn the rate from Segment's 429s.
fn managed_rate(name: &str) -> &'static str {
    if name == "route-decision" { "70" } else { "30" }
}

async fn deploy(
    name: &'static str,
    segment: &SegmentLike,
    managed: bool,
    extra: &[(&'static str, &str)],
) -> Deployment {
    if managed {
        let mut extra = extra.to_vec();
        extra.push(("PROFILE_API_RATE", managed_rate(name)));
        Deployment::Managed(
            Environment::start(name, &function_env(segment, Some(32), &extra)).await,
        )
    } else {
        Deployment::Classic {
            name,
            env: function_env(segment, None, extra),
            idle: Mutex::default(),
            all: Mutex::default(),
        }
    }
}

/// How a conversation reads the profile.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Conversation {
    /// route-decision, then profile-lookup for the traits the flow shows.
    TwoLookups,
    /// route-decision with `RESPONSE_TRAITS`: the traits come back with the decision.
    OneLookup,
}

/// Part 2: the peak, on one kind of deployment.
async fn peak(managed: bool, conversation: Conversation) {
    let segment = SegmentLike::start(Limit::PerSecond { retry_after: None }).await;
    let returning: &[(&'static str, &str)] = match conversation {
        Conversation::OneLookup => &[("RESPONSE_TRAITS", "first_name,vip")],
        Conversation::TwoLookups => &[],
    };
    let decisions = Arc::new(deploy("route-decision", &segment, managed, returning).await);
    let lookups = Arc::new(deploy("profile-lookup", &segment, managed, &[]).await);
    let gap = ARRIVALS_OVER / CONVERSATIONS as u32;
    let started = Instant::now();
    let mut conversations = Vec::new();
    for k in 0..CONVERSATIONS {
        tokio::time::sleep_until((started + gap * k as u32).into()).await;
        let (decisions, lookups) = (decisions.clone(), lookups.clone());
        conversations.push(tokio::spawn(async move {
            let customer = phone(customer_of(k));
            let decision = decisions.invoke(studio_request(&customer)).await;
            let lookup = match conversation {
                Conversation::TwoLookups => Some(lookups.invoke(studio_request(&customer)).await),
                Conversation::OneLookup => None,
            };
            (decision, lookup)
        }));
    }
    let (mut latencies, mut fallbacks, mut failed_lookups) = (Vec::new(), 0, 0);
    for conversation in conversations {
        let (decision, lookup) = conversation.await.expect("conversation");
        latencies.push(decision.elapsed);
        fallbacks += usize::from(decision.body()["fallback"] == true);
        failed_lookups += usize::from(lookup.is_some_and(|lookup| lookup.status() != 200));
    }
    let (p50, p99) = p50_p99(latencies);
    println!(
        "| {} | {} | {} + {} | {} | {:.2} | {} | {fallbacks} | {failed_lookups} | {p50:.0} / {p99:.0} | {:.1} |",
        if managed {
            "Managed Instances, 32 an environment"
        } else {
            "classic Lambda"
        },
        match conversation {
            Conversation::TwoLookups => "decision + lookup",
            Conversation::OneLookup => "decision with RESPONSE_TRAITS",
        },
        decisions.cold_starts(),
        lookups.cold_starts(),
        segment.requests(),
        segment.requests() as f64 / CONVERSATIONS as f64,
        segment.refused(),
        decisions.rss_mb() + lookups.rss_mb(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    e2e::build_release_binaries();
    let parts = std::env::var("PARTS").unwrap_or_else(|_| "1,2".into());
    let concurrencies: Vec<u32> = std::env::var("CONCURRENCIES")
        .unwrap_or_else(|_| "1,8,32,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let decisions: usize = std::env::var("DECISIONS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(500);

    if parts.contains('1') {
        println!("\n1. One route-decision environment, distinct customers queued at once");
        println!(
            "| concurrency | Segment limit | decisions | decisions/s | p50 ms | p99 ms | Profile API requests a decision | 429s | fallbacks | peak RSS MB |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for &concurrency in &concurrencies {
            let decisions = if concurrency == 1 {
                decisions.min(100)
            } else {
                decisions
            };
            for limited in [false, true] {
                capacity(concurrency, decisions, limited).await;
            }
        }
    }

    if parts.contains('2') {
        println!(
            "\n2. The peak ({}): {CONVERSATIONS} conversations over {} s from {DISTINCT_CUSTOMERS} customers ({REPEATERS} of them three times); Segment limited to {SEGMENT_LIMIT_PER_SECOND}/s",
            common::binaries(),
            ARRIVALS_OVER.as_secs()
        );
        println!(
            "| deployment | a conversation | cold starts (decision + lookup) | Profile API requests | a conversation | 429s | fallbacks | lookups failed | decision p50 / p99 ms | RSS MB (all environments) |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for conversation in [Conversation::TwoLookups, Conversation::OneLookup] {
            for managed in [false, true] {
                peak(managed, conversation).await;
            }
        }
    }
}
