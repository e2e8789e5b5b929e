//! Cold start: each bootstrap from exec to its first answer on a local Lambda Runtime API,
//! the first event already waiting, side by side with a bare `lambda_runtime` echo built with
//! the same profile. Cases are interleaved round by round so machine noise hits all alike.
//!
//!   cargo bench -p perf --bench cold_start
//!
//! RUNS (default 40) sets the rounds. Besides wall time, each case shows the function
//! process's own CPU time and page faults up to its first answer (from /proc), which move
//! far less with machine noise and say where a difference comes from.

use std::time::{Duration, Instant};

use e2e::{
    Function, PROFILE_TOKEN, Reply, RuntimeApi, StandIn, TWILIO_TOKEN, signed_form_post,
    taskrouter_callback,
};
use perf::percentile;
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    binary: &'static str,
    env: Vec<(&'static str, String)>,
    event: Value,
    /// Checks the answer, so a fast failure is never reported as a fast start.
    expect: fn(&Value) -> bool,
}

fn http_status(answer: &Value) -> u64 {
    answer["statusCode"].as_u64().unwrap_or(0)
}

/// A Studio answer whose decision came from the recipe's rule (the profile was read).
fn decided_by_the_recipe(answer: &Value) -> bool {
    http_status(answer) == 200
        && answer["body"]
            .as_str()
            .is_some_and(|b| b.contains("read-docs-recently"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A process's CPU time so far (exec included) and its minor page faults, from /proc.
fn cpu_and_faults(pid: Option<u32>) -> Option<(Duration, u64)> {
    let pid = pid?;
    let schedstat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let cpu_ns: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; minflt is the 10th field overall.
    let minflt: u64 = stat
        .rsplit(')')
        .next()?
        .split_whitespace()
        .nth(7)?
        .parse()
        .ok()?;
    Some((Duration::from_nanos(cpu_ns), minflt))
}

/// dynalite holding the decision's customer, and `studio_env` pointed at it: a decision with
/// the store on reads one item and asks the Profile API nothing.
async fn with_the_store(
    studio_env: &[(&'static str, String)],
) -> (e2e::dynalite::Dynalite, Vec<(&'static str, String)>) {
    let dynalite = e2e::dynalite::Dynalite::start()
        .await
        .expect("dynalite: cd tests/dynalite && npm ci");
    dynalite
        .put(json!({"id": {"S": "phone:+15555550100"},
            "traits": {"M": {"docs_last_2_days": {"N": "3"}}}}))
        .await;
    let env = studio_env.iter().cloned().chain(dynalite.env()).collect();
    (dynalite, env)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    e2e::build_release_binaries();
    let rounds: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(40);
    let profiles = StandIn::always(Reply::traits(json!({"docs_last_2_days": 3}))).await;
    let tracking = StandIn::always(Reply::json(200, json!({"success": true}))).await;
    let studio_env = vec![
        ("SEGMENT_SPACE_ID", "spa_bench".to_owned()),
        ("SEGMENT_PROFILE_API_TOKEN", PROFILE_TOKEN.to_owned()),
        ("SEGMENT_PROFILE_API_URL", profiles.url()),
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN.to_owned()),
    ];
    let decision = signed_form_post(
        TWILIO_TOKEN,
        &[("From", "whatsapp:+15555550100"), ("Body", "hi")],
    );
    let (_dynalite, store_env) = with_the_store(&studio_env).await;
    let cases = [
        Case {
            name: "echo (baseline)",
            binary: "echo",
            env: vec![],
            event: json!({"hello": "world"}),
            expect: |a| a["hello"] == "world",
        },
        Case {
            name: "route-decision, warm-up event",
            binary: "route-decision",
            env: studio_env.clone(),
            event: json!({"warmup": true}),
            expect: |a| a["warm"] == true,
        },
        Case {
            name: "route-decision, inline traits",
            binary: "route-decision",
            env: studio_env.clone(),
            event: json!({"traits": {"docs_last_2_days": 2}}),
            expect: |a| a["transition"] == "agent",
        },
        Case {
            name: "route-decision, Studio request + lookup",
            binary: "route-decision",
            env: studio_env.clone(),
            event: decision.clone(),
            expect: decided_by_the_recipe,
        },
        Case {
            name: "route-decision, Studio request, store hit",
            binary: "route-decision",
            env: store_env,
            event: decision.clone(),
            expect: decided_by_the_recipe,
        },
        Case {
            name: "profile-lookup, Studio request + lookup",
            binary: "profile-lookup",
            env: studio_env.clone(),
            event: decision,
            expect: |a| http_status(a) == 200,
        },
        Case {
            name: "wrap-up-ingest, TaskRouter callback",
            binary: "wrap-up-ingest",
            env: vec![
                ("SEGMENT_WRITE_KEY", "bench-write-key".to_owned()),
                ("SEGMENT_TRACKING_API_URL", tracking.url()),
                ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN.to_owned()),
            ],
            event: taskrouter_callback("voice-inbound-reservation-wrapup"),
            expect: |a| http_status(a) == 204,
        },
    ];

    let served = || -> Vec<Duration> {
        profiles
            .received()
            .iter()
            .chain(tracking.received().iter())
            .map(|r| r.served_in)
            .collect()
    };
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); cases.len()];
    let mut own: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); cases.len()];
    let mut usage: Vec<Vec<(Duration, u64)>> = vec![Vec::with_capacity(rounds); cases.len()];
    for _ in 0..rounds {
        for (((case, times), own_times), usage) in cases
            .iter()
            .zip(samples.iter_mut())
            .zip(own.iter_mut())
            .zip(usage.iter_mut())
        {
            let runtime = RuntimeApi::start().await;
            let before = served().len();
            let queued = runtime.queue(case.event.clone());
            let started = Instant::now();
            let function = Function::start(case.binary, &runtime, &case.env).await;
            let answer = queued.answer().await;
            let elapsed = started.elapsed();
            usage.extend(cpu_and_faults(function.pid()));
            assert!(
                (case.expect)(&answer),
                "{}: unexpected answer {answer}",
                case.name
            );
            times.push(elapsed);
            // The Segment stand-in's own service time is not the function's.
            let stand_in: Duration = served()[before..].iter().sum();
            own_times.push(elapsed.saturating_sub(stand_in));
            drop(function);
        }
    }

    let baseline = {
        let mut sorted = samples[0].clone();
        sorted.sort();
        percentile(&sorted, 0.5)
    };
    println!(
        "cold start, exec -> first answer, event already waiting ({rounds} rounds, interleaved)"
    );
    println!(
        "{:<42} {:>9} {:>9} {:>9} {:>8} {:>17} {:>9} {:>7}",
        "case", "median", "p90", "min", "vs echo", "minus stand-in", "cpu", "faults"
    );
    for (((case, times), own_times), usage) in cases
        .iter()
        .zip(samples.iter_mut())
        .zip(own.iter_mut())
        .zip(usage.iter_mut())
    {
        times.sort();
        own_times.sort();
        let median = percentile(times, 0.5);
        let own_median = percentile(own_times, 0.5);
        // /proc may be unreadable (another OS, a sandbox): then the columns say "-".
        let (cpu, faults) = if usage.is_empty() {
            ("-".to_owned(), "-".to_owned())
        } else {
            let mut cpu: Vec<Duration> = usage.iter().map(|u| u.0).collect();
            let mut faults: Vec<u64> = usage.iter().map(|u| u.1).collect();
            cpu.sort();
            faults.sort();
            (
                format!("{:.2}ms", ms(percentile(&cpu, 0.5))),
                percentile(&faults, 0.5).to_string(),
            )
        };
        println!(
            "{:<42} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}x {:>7.2}ms {:>6.2}x {:>9} {:>7}",
            case.name,
            ms(median),
            ms(percentile(times, 0.9)),
            ms(times[0]),
            median.as_secs_f64() / baseline.as_secs_f64(),
            ms(own_median),
            own_median.as_secs_f64() / baseline.as_secs_f64(),
            cpu,
            faults
        );
    }
}
