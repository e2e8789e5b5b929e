//! `cargo run -p sandbox`: the local stack, with demo customers and curl commands to try.

use std::path::PathBuf;
use std::process::ExitCode;

use sandbox::engage::TraitStoreOption;
use sandbox::{Options, PASSED_THROUGH, Running, demo};

const USAGE: &str =
    "usage: sandbox [--rules FILE] [--functions-port N] [--segment-port N] [--data FILE | --in-memory]
               [--reset] [--traits FILE] [--token TOKEN] [--space-id ID] [--write-keys K1,K2]
               [--no-demo] [--trait-store | --trait-store-endpoint URL]

  --rules FILE         route-decision's routing rules, reloaded when the file changes (the same
                       as ROUTING_RULES_FILE; default: sandbox/rules.json)
  --functions-port N   Function URLs on 127.0.0.1:N (default 9000)
  --segment-port N     Segment-compatible server on 127.0.0.1:N (default 9010)
  --data FILE          database file (default .sandbox/segment.sqlite); kept across restarts
  --in-memory          keep nothing on disk
  --reset              start with an empty database
  --traits FILE        computed-trait definitions (default: sandbox/computed-traits.json)
  --token TOKEN        Profile API token (default sandbox-profile-token)
  --space-id ID        space id (default spa_sandbox)
  --write-keys K1,K2   keep only messages sent with these write keys; others get 200 and are
                       dropped, as Segment does with a wrong key (default: any key is kept)
  --no-demo            do not seed the demo customers
  --trait-store        start dynalite (tests/dynalite) as the trait store: route-decision reads it
                       first, and the sandbox feeds trait-sync its computed traits as Engage would
  --trait-store-endpoint URL  the same with a DynamoDB-compatible endpoint you run";

/// The options, or `None` when the user asked for help.
fn options() -> Result<Option<Options>, String> {
    let mut options = Options::default();
    let mut rules_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let port = |raw: String| {
            raw.parse::<u16>()
                .map_err(|_| format!("{raw} is not a port\n{USAGE}"))
        };
        match flag.as_str() {
            "--functions-port" => options.functions_addr.set_port(port(value()?)?),
            "--segment-port" => options.segment_addr.set_port(port(value()?)?),
            "--rules" => rules_file = Some(value()?),
            "--data" => options.data = Some(PathBuf::from(value()?)),
            "--in-memory" => options.data = None,
            "--reset" => options.reset = true,
            "--traits" => options.definitions = Some(PathBuf::from(value()?)),
            "--token" => options.token = value()?,
            "--space-id" => options.space_id = value()?,
            "--write-keys" => {
                options.accepted_write_keys = value()?
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "--no-demo" => options.seed_demo = false,
            "--trait-store" => options.trait_store = Some(TraitStoreOption::Start),
            "--trait-store-endpoint" => {
                options.trait_store = Some(TraitStoreOption::Endpoint(value()?))
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    for name in PASSED_THROUGH {
        if let Ok(value) = std::env::var(name) {
            options.function_env.push((name.into(), value));
        }
    }
    // The option wins over the environment's rules, whichever way they are given there.
    if let Some(file) = rules_file {
        options
            .function_env
            .retain(|(name, _)| name != "ROUTING_RULES" && name != "ROUTING_RULES_FILE");
        options
            .function_env
            .push(("ROUTING_RULES_FILE".into(), file));
    }
    if let Ok(raw) = std::env::var("ESCALATION_WINDOW_SECS") {
        options.escalation_window_secs = raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|secs| (1..=30 * 86_400).contains(secs))
            .ok_or_else(|| {
                format!(
                    "ESCALATION_WINDOW_SECS must be whole seconds from 1 to 2592000, got {raw:?}"
                )
            })?;
    }
    Ok(Some(options))
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sandbox: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        studio_router::adapters::config::runtime::start_logging(
            &studio_router::adapters::config::ProcessEnv,
        );
        let data = options.data.clone();
        let seed_demo = options.seed_demo;
        let running = match sandbox::start(options).await {
            Ok(running) => running,
            Err(message) => {
                eprintln!("sandbox: {message}");
                return ExitCode::FAILURE;
            }
        };
        let outcomes = demo_outcomes(&running, seed_demo).await;
        welcome(&running, data.as_deref(), &outcomes);
        let _ = tokio::signal::ctrl_c().await;
        running.stop().await;
        eprintln!("sandbox stopped");
        ExitCode::SUCCESS
    })
}

/// What route-decision answers each demo customer now (after a restart they may have
/// changed), with the demo's rules; none with other rules or without the demo customers.
async fn demo_outcomes(running: &Running, seeded: bool) -> Vec<(&'static str, String)> {
    if !seeded || !running.rules.demo {
        return Vec::new();
    }
    let mut outcomes = Vec::new();
    for (from, address) in [
        (demo::DOCS_READER, "whatsapp:"),
        (demo::NEWCOMER, ""),
        (demo::VIP, ""),
        (demo::RETURNING, ""),
    ] {
        let answer = running.decide(&format!("{address}{from}")).await;
        let mut outcome = format!(
            "-> {} ({})",
            answer["transition"].as_str().unwrap_or("?"),
            answer["rule"].as_str().unwrap_or("?")
        );
        if let Some(attributes) = answer["attributes"].as_object().filter(|a| !a.is_empty()) {
            outcome.push_str(&format!(
                ", {}",
                serde_json::Value::Object(attributes.clone())
            ));
        }
        outcomes.push((from, outcome));
    }
    outcomes
}

fn welcome(running: &Running, data: Option<&std::path::Path>, outcomes: &[(&str, String)]) {
    print_addresses(running, data);
    if let Some(table) = &running.trait_store {
        eprintln!(
            "Trait store: table {} at {}.\nComputed traits go to trait-sync every second, as Engage would send them; route-decision\nreads them there first (the console's 'Traits from' column, the answers' traits_from).\n",
            sandbox::engage::TABLE,
            table.endpoint
        );
    }
    let console = running.console_url();
    let decision = running.function_url("route-decision");
    if outcomes.is_empty() {
        eprintln!(
            "A routing decision:\n\n  curl -s {decision} --data-urlencode 'From=+15555550100'\n"
        );
        eprintln!("Or open {console} in a browser: every profile, decision and rule, live.\n");
        return;
    }
    eprintln!("Routing decisions, one per demo customer, as they stand now:\n");
    for (from, outcome) in outcomes {
        let from = if *from == demo::DOCS_READER {
            format!("whatsapp:{from}")
        } else {
            (*from).to_owned()
        };
        eprintln!("  curl -s {decision} --data-urlencode 'From={from}'   # {outcome}");
    }
    print_walkthrough(running);
}

/// The addresses the welcome text names.
struct Addresses {
    console: String,
    decision: String,
    lookup: String,
    ingest: String,
    segment: String,
}

impl Addresses {
    fn of(running: &Running) -> Self {
        Self {
            console: running.console_url(),
            decision: running.function_url("route-decision"),
            lookup: running.function_url("profile-lookup"),
            ingest: running.function_url("wrap-up-ingest"),
            segment: running.segment_url(),
        }
    }
}

/// Where everything is: the console, each function, the Segment server, the data and rules.
fn print_addresses(running: &Running, data: Option<&std::path::Path>) {
    let Addresses {
        console,
        decision,
        lookup,
        ingest,
        segment,
    } = Addresses::of(running);
    let (token, space) = (&running.segment.token, &running.segment.space_id);
    let storage = data.map_or("in memory (nothing kept)".to_owned(), |p| {
        format!(
            "{} ({})",
            p.display(),
            if running.seeded_now {
                "new, demo customers seeded"
            } else {
                "kept from last time"
            }
        )
    });
    let rules = format!(
        "{}: {}",
        running.rules.source,
        running.rules.names.join(", ")
    );
    let keys = if running.segment.write_keys.is_empty() {
        "any write key".to_owned()
    } else {
        format!("write keys {}", running.segment.write_keys.join(", "))
    };
    eprintln!(
        r#"
studio-router sandbox is running. Ctrl-C stops it.

  console           {console}   customers, timelines, live decisions, rules workbench, try it
  route-decision    {decision}
  profile-lookup    {lookup}
  wrap-up-ingest    {ingest}
  Segment server    {segment}   Profile API token "{token}", space "{space}", {keys}
  data              {storage}
  rules             {rules}
"#
    );
}

/// The curl commands that walk a newcomer from bot to agent.
fn print_walkthrough(running: &Running) {
    let at = Addresses::of(running);
    eprintln!(
        r#"
A customer's traits, as a Studio widget would read them:

  curl -s {lookup} --data-urlencode 'From={ret}'
  curl -s -u {token}: '{segment}/v1/spaces/{space}/collections/users/profiles/phone:%2B{ret_digits}/traits?limit=200'

Watch the newcomer's traits change: a Flex wrap-up (as TaskRouter posts it), then docs page views:

  curl -s -o /dev/null -w 'wrap-up-ingest answered %{{http_code}} (204: accepted, nothing to return)\n' {ingest} -d EventType=reservation.wrapup -d TaskSid=WTsandbox00000000000000000000001 \
    -d WorkerSid=WK0000000000000000000000000000beef -d TaskAge=300 -d TaskChannelUniqueName=voice \
    --data-urlencode 'TaskAttributes={{"from":"{new}","direction":"inbound"}}'
  curl -s {lookup} --data-urlencode 'From={new}'
  curl -s -u anykey: {segment}/v1/page -H 'content-type: application/json' \
    -d '{{"anonymousId":"web-1","properties":{{"path":"/docs/flex"}},"context":{{"traits":{{"phone":"{new}"}}}}}}'
  curl -s {decision} --data-urlencode 'From={new}'             # now -> agent (read-docs-recently)

Or open {console} in a browser to see all of this: the customers and their traits, each
timeline, every decision as it happens, a rules workbench with a dry run, and buttons that
send a message, a page view or a wrap-up.
"#,
        console = at.console,
        decision = at.decision,
        lookup = at.lookup,
        ingest = at.ingest,
        segment = at.segment,
        token = running.segment.token,
        space = running.segment.space_id,
        new = demo::NEWCOMER,
        ret = demo::RETURNING,
        ret_digits = demo::RETURNING.trim_start_matches('+'),
    );
}
