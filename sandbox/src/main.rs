//! The local stack: the functions as Function URLs on 127.0.0.1:9000 and a Segment-compatible
//! server on 127.0.0.1:9010, wired together, with demo customers and ready-to-paste curl
//! commands. Nothing leaves the machine.

mod lambda_urls;
mod segment_server;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use studio_router::operations::{profile_lookup, route_decision};

use crate::lambda_urls::Functions;

const USAGE: &str =
    "usage: sandbox [--functions-port N] [--segment-port N] [--token TOKEN] [--space-id ID]";

/// Variables a user may set to try their own configuration against the sandbox.
const PASSED_THROUGH: [&str; 6] = [
    "ROUTING_RULES",
    "ROUTING_RULES_FILE",
    "DECISION_DEADLINE_MS",
    "PROFILE_TIMEOUT_MS",
    "PROFILE_CACHE_TTL_SECS",
    "SEGMENT_PHONE_IDENTIFIER",
];

struct Options {
    functions_port: u16,
    segment_port: u16,
    token: String,
    space_id: String,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        functions_port: 9000,
        segment_port: 9010,
        token: "sandbox-profile-token".into(),
        space_id: "spa_sandbox".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--functions-port" => {
                options.functions_port = value()?
                    .parse()
                    .map_err(|_| format!("--functions-port: not a port\n{USAGE}"))?
            }
            "--segment-port" => {
                options.segment_port = value()?
                    .parse()
                    .map_err(|_| format!("--segment-port: not a port\n{USAGE}"))?
            }
            "--token" => options.token = value()?,
            "--space-id" => options.space_id = value()?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
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
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sandbox: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    studio_router::telemetry::init();
    let segment_addr = SocketAddr::from(([127, 0, 0, 1], options.segment_port));
    let functions_addr = SocketAddr::from(([127, 0, 0, 1], options.functions_port));

    let mut env: HashMap<&str, String> = HashMap::from([
        ("SEGMENT_SPACE_ID", options.space_id.clone()),
        ("SEGMENT_PROFILE_API_TOKEN", options.token.clone()),
        ("SEGMENT_PROFILE_API_URL", format!("http://{segment_addr}")),
        // Only because every listener here is on loopback.
        ("ALLOW_UNAUTHENTICATED", "true".into()),
        // Off, so traits changed by new events show in the very next decision.
        ("PROFILE_CACHE_TTL_SECS", "0".into()),
    ]);
    for name in PASSED_THROUGH {
        if let Ok(value) = std::env::var(name) {
            env.insert(name, value);
        }
    }
    let lookup_env = |name: &str| env.get(name).cloned();

    let mut functions = Functions::default();
    functions.add(
        "route-decision",
        route_decision::load(&lookup_env)
            .await
            .map_err(|e| e.to_string())?,
    );
    functions.add(
        "profile-lookup",
        profile_lookup::load(&lookup_env)
            .await
            .map_err(|e| e.to_string())?,
    );

    let segment = segment_server::router(&options.token, &options.space_id);
    let segment_listener = tokio::net::TcpListener::bind(segment_addr)
        .await
        .map_err(|e| format!("cannot listen on {segment_addr}: {e}"))?;
    let functions_listener = tokio::net::TcpListener::bind(functions_addr)
        .await
        .map_err(|e| format!("cannot listen on {functions_addr}: {e}"))?;

    print_welcome(&functions_addr, &segment_addr, &options);

    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let segment_stopped = {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.changed().await;
        }
    };
    let functions_stopped = {
        let mut stopped = stopped;
        async move {
            let _ = stopped.changed().await;
        }
    };
    let servers = async {
        tokio::try_join!(
            axum::serve(segment_listener, segment).with_graceful_shutdown(segment_stopped),
            axum::serve(functions_listener, functions.router())
                .with_graceful_shutdown(functions_stopped),
        )
    };
    tokio::pin!(servers);
    tokio::select! {
        result = &mut servers => result.map(|_| ()).map_err(|e| e.to_string()),
        () = shutdown => {
            let _ = stop.send(true);
            servers.await.map(|_| ()).map_err(|e| e.to_string())?;
            eprintln!("sandbox stopped");
            Ok(())
        }
    }
}

fn print_welcome(functions: &SocketAddr, segment: &SocketAddr, options: &Options) {
    let url = |name: &str| format!("http://{functions}/lambda-url/{name}/");
    eprintln!(
        r#"
studio-router sandbox is running (Ctrl-C stops it)

  Function URLs     {decision}
                    {lookup}
  Segment server    http://{segment}  (Profile API token "{token}", space id "{space}")

Try a routing decision for each demo customer:

  # reads the docs -> agent
  curl -s -X POST {decision} --data-urlencode 'From=whatsapp:+15555550100'
  # new here -> bot
  curl -s -X POST {decision} --data-urlencode 'From=+15555550101'
  # never seen -> bot (profile_found: false)
  curl -s -X POST {decision} --data-urlencode 'From=+15555550199'

Look a customer up, as a Studio widget would:

  curl -s -X POST {lookup} --data-urlencode 'From=+15555550102'
  curl -s -u {token}: http://{segment}/v1/spaces/{space}/collections/users/profiles/phone:%2B15555550103/traits
"#,
        decision = url("route-decision"),
        lookup = url("profile-lookup"),
        segment = segment,
        token = options.token,
        space = options.space_id,
    );
}
