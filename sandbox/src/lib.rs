//! The local stack: a Segment-compatible server and the three functions as Function URLs,
//! on loopback, wired together. The binary runs it; tests start it in-process on free ports
//! and drive it over HTTP.

pub mod computed;
pub mod console;
pub mod decisions;
pub mod demo;
pub mod editable_rules;
pub mod engage;
pub mod guard;
pub mod identities;
pub mod lambda_urls;
pub mod rules_file_watch;
pub mod segment;
pub mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use serde_json::Value;
use studio_router::adapters::config::{self, Variables};
use studio_router::domain::rules::RuleSet;
use studio_router::edge::Edge;
use studio_router::edge::functions::{profile_lookup, route_decision, trait_sync, wrap_up_ingest};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::computed::{DEFAULT_DEFINITIONS, Definitions};
use crate::console::Console;
use crate::decisions::DecisionLog;
use crate::editable_rules::EditableRules;
use crate::engage::{LocalTable, TraitStoreOption};
use crate::lambda_urls::Functions;
use crate::segment::Segment;
use crate::store::Store;

/// The routing rules the sandbox uses unless told otherwise: the book's fuller example (docs/src/rules.md), so
/// every demo customer shows a different branch.
pub const SANDBOX_RULES: &str = include_str!("../rules.json");

/// Variables a user may set to try their own configuration against the sandbox.
pub const PASSED_THROUGH: [&str; 8] = [
    "ROUTING_RULES",
    "ROUTING_RULES_FILE",
    "SHADOW_ROUTING_RULES",
    "SHADOW_ROUTING_RULES_FILE",
    "DECISION_DEADLINE_MS",
    "PROFILE_TIMEOUT_MS",
    "PROFILE_CACHE_TTL_SECS",
    "SEGMENT_PHONE_IDENTIFIER",
];

pub struct Options {
    pub functions_addr: SocketAddr,
    pub segment_addr: SocketAddr,
    /// The database file; `None` keeps everything in memory.
    pub data: Option<PathBuf>,
    pub reset: bool,
    /// A computed-trait definitions file instead of the defaults.
    pub definitions: Option<PathBuf>,
    pub token: String,
    pub space_id: String,
    pub write_key: String,
    /// When not empty, the Tracking API keeps only messages sent with one of these keys and
    /// drops the others with a 200, as Segment does with a wrong key.
    pub accepted_write_keys: Vec<String>,
    pub seed_demo: bool,
    /// Extra function configuration (on top of the sandbox's own wiring).
    pub function_env: Vec<(String, String)>,
    /// The trait store: route-decision reads it first, trait-sync keeps it current.
    pub trait_store: Option<TraitStoreOption>,
    /// `ESCALATION_WINDOW_SECS`: the console's Outcomes count an engagement with an agent
    /// this soon after a bot answer as an escalation.
    pub escalation_window_secs: i64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            functions_addr: SocketAddr::from(([127, 0, 0, 1], 9000)),
            segment_addr: SocketAddr::from(([127, 0, 0, 1], 9010)),
            data: Some(PathBuf::from(".sandbox/segment.sqlite")),
            reset: false,
            definitions: None,
            token: "sandbox-profile-token".into(),
            space_id: "spa_sandbox".into(),
            write_key: "sandbox-write-key".into(),
            accepted_write_keys: Vec::new(),
            seed_demo: true,
            function_env: Vec::new(),
            trait_store: None,
            escalation_window_secs: console::outcomes::DEFAULT_ESCALATION_WINDOW_SECS,
        }
    }
}

/// The routing rules route-decision loaded, for the welcome text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartingRules {
    /// Where they came from: `sandbox/rules.json`, a `ROUTING_RULES_FILE` path, or
    /// `ROUTING_RULES`.
    pub source: String,
    pub names: Vec<String>,
    /// The demo's own rules (the demo customers' outcomes are what the welcome text shows).
    pub demo: bool,
}

/// A running sandbox.
pub struct Running {
    pub functions_addr: SocketAddr,
    pub segment_addr: SocketAddr,
    pub segment: Arc<Segment>,
    pub seeded_now: bool,
    pub rules: StartingRules,
    /// The rules route-decision uses now, with their text.
    pub editable_rules: Arc<EditableRules>,
    /// Every decision route-decision made since the start.
    pub decisions: Arc<DecisionLog>,
    functions: Functions,
    /// The trait store's table, and the dynalite it started (stopped with the sandbox).
    pub trait_store: Option<LocalTable>,
    stop: watch::Sender<bool>,
    servers: JoinHandle<()>,
}

impl Running {
    pub fn function_url(&self, name: &str) -> String {
        format!("http://{}/lambda-url/{name}/", self.functions_addr)
    }

    /// The console's page.
    pub fn console_url(&self) -> String {
        format!("http://{}/", self.functions_addr)
    }

    pub fn segment_url(&self) -> String {
        format!("http://{}", self.segment_addr)
    }

    /// route-decision's answer for a customer writing from `from`, as its Function URL gives
    /// it (a form post).
    pub async fn decide(&self, from: &str) -> Value {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("From", from)
            .finish();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let event = lambda_urls::payload_v2(
            &axum::http::Method::POST,
            "/",
            "",
            &headers,
            body.as_bytes(),
        );
        let answer = self
            .functions
            .invoke("route-decision", event)
            .await
            .unwrap_or_default();
        answer
            .get("body")
            .and_then(Value::as_str)
            .and_then(|body| serde_json::from_str(body).ok())
            .unwrap_or(answer)
    }

    /// Stops both servers, letting requests in flight finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.servers.await;
    }
}

pub async fn start(options: Options) -> Result<Running, String> {
    let segment = Arc::new(segment_server(&options)?);
    let seeded_now = if options.seed_demo {
        demo::seed(&segment)?
    } else {
        false
    };
    let (segment_listener, functions_listener) = listen(&options).await?;
    let segment_addr = segment_listener.local_addr().map_err(|e| e.to_string())?;
    let functions_addr = functions_listener.local_addr().map_err(|e| e.to_string())?;

    let trait_store = match &options.trait_store {
        Some(option) => Some(LocalTable::open(option).await?),
        None => None,
    };
    let (mut functions, rules, editable_rules, phone_kind, shadow) =
        functions(&options, segment_addr, trait_store.as_ref())?;
    let decisions = Arc::new(DecisionLog::default());
    let shadow_judged = shadow.is_some();
    let (log, store) = (decisions.clone(), segment.clone());
    functions.observe(
        "route-decision",
        Arc::new(move |event, answer, took| {
            let resolve = |identifier: &studio_router::domain::identity::Identifier| {
                store
                    .store
                    .resolve(identifier.kind(), identifier.value())
                    .ok()
                    .flatten()
            };
            let judge = |recorded: &decisions::Recorded| {
                console::outcomes::shadow_of(&store, shadow.as_deref()?, recorded)
            };
            log.record(event, answer, took, &phone_kind, resolve, judge);
        }),
    );
    let (stop, stopped) = watch::channel(false);
    if trait_store.is_some() {
        engage::follow(segment.clone(), functions.clone(), stopped.clone());
    }
    if let Some(path) = editable_rules.file().map(std::path::Path::to_path_buf) {
        rules_file_watch::follow(path, editable_rules.clone(), stopped.clone());
    }
    let console = Console {
        segment: segment.clone(),
        rules: editable_rules.clone(),
        decisions: decisions.clone(),
        functions: functions.clone(),
        escalation_window_secs: options.escalation_window_secs,
        shadowing: shadow_judged,
    };
    // Both ports behind the same guard: loopback Host names and loopback pages only.
    let routers = (
        guard::guarded(segment::router(segment.clone())),
        guard::guarded(functions.clone().router().merge(console::router(console))),
    );
    let servers = serve((segment_listener, functions_listener), routers, stopped);
    Ok(Running {
        functions_addr,
        segment_addr,
        segment,
        seeded_now,
        rules,
        editable_rules,
        decisions,
        functions,
        trait_store,
        stop,
        servers,
    })
}

/// The Segment-compatible server's state: its computed-trait definitions and its store.
fn segment_server(options: &Options) -> Result<Segment, String> {
    let definitions = match &options.definitions {
        Some(path) => {
            let json = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Definitions::parse(&json).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Definitions::parse(DEFAULT_DEFINITIONS)?,
    };
    let store = match &options.data {
        Some(path) => Store::open(path, options.reset),
        None => Store::in_memory(),
    }
    .map_err(|e| e.to_string())?;
    Ok(Segment {
        store,
        definitions,
        token: options.token.clone(),
        space_id: options.space_id.clone(),
        write_keys: options.accepted_write_keys.clone(),
    })
}

/// Both ports, each refused with the option that picks another.
async fn listen(options: &Options) -> Result<(TcpListener, TcpListener), String> {
    let segment = TcpListener::bind(options.segment_addr).await.map_err(|e| {
        format!(
            "cannot listen on {} for the Segment server: {e} (--segment-port N picks another port)",
            options.segment_addr
        )
    })?;
    let functions = TcpListener::bind(options.functions_addr)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {} for the Function URLs: {e} (--functions-port N picks another port)",
                options.functions_addr
            )
        })?;
    Ok((segment, functions))
}

/// Serves the Segment server's and the functions' routers until `stopped` says so.
fn serve(
    (segment_listener, functions_listener): (TcpListener, TcpListener),
    (segment_router, functions_router): (axum::Router, axum::Router),
    stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let newline = || axum::middleware::map_response(end_with_newline);
    let segment_server = axum::serve(segment_listener, segment_router.layer(newline()))
        .with_graceful_shutdown(until_stopped(stopped.clone()));
    let functions_server = axum::serve(functions_listener, functions_router.layer(newline()))
        .with_graceful_shutdown(until_stopped(stopped));
    tokio::spawn(async move {
        if let Err(error) = tokio::try_join!(segment_server, functions_server) {
            tracing::error!(%error, "sandbox server stopped");
        }
    })
}

/// Every answer ends with a newline, so that after `curl` a terminal's prompt starts on a line
/// of its own. (The functions' own answers on Lambda are left as they are.)
async fn end_with_newline(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(_) => return Response::from_parts(parts, Body::empty()),
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let mut text = bytes.to_vec();
    text.push(b'\n');
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}

/// The functions, the rules route-decision loaded (and follows while it runs), and
/// the identifier type of phone numbers.
type Loaded = (
    Functions,
    StartingRules,
    Arc<EditableRules>,
    String,
    Option<Arc<RuleSet>>,
);

/// The three functions, configured as a deployment would be, but against this server.
fn functions(
    options: &Options,
    segment_addr: SocketAddr,
    trait_store: Option<&LocalTable>,
) -> Result<Loaded, String> {
    let mut env: HashMap<String, String> = HashMap::from([
        ("SEGMENT_SPACE_ID".into(), options.space_id.clone()),
        ("SEGMENT_PROFILE_API_TOKEN".into(), options.token.clone()),
        (
            "SEGMENT_PROFILE_API_URL".into(),
            format!("http://{segment_addr}"),
        ),
        ("SEGMENT_WRITE_KEY".into(), options.write_key.clone()),
        (
            "SEGMENT_TRACKING_API_URL".into(),
            format!("http://{segment_addr}"),
        ),
        // Only because every listener here is on loopback.
        ("ALLOW_UNAUTHENTICATED".into(), "true".into()),
        // Off, so traits changed by new events show in the very next decision.
        ("PROFILE_CACHE_TTL_SECS".into(), "0".into()),
        // One process serves every request at once, as one execution environment does on
        // Lambda Managed Instances: configured as such (the cache is sized for it and the
        // start says so; single flight and the back-off hold whatever the value).
        ("AWS_LAMBDA_MAX_CONCURRENCY".into(), "64".into()),
    ]);
    env.extend(trait_store.iter().flat_map(|table| table.env()));
    env.extend(options.function_env.iter().cloned());
    // With no rules of the user's, the sandbox's own (the demo customers' outcomes).
    let demo = !env.contains_key("ROUTING_RULES_FILE") && !env.contains_key("ROUTING_RULES");
    if demo {
        env.insert("ROUTING_RULES".into(), SANDBOX_RULES.into());
    }
    let lookup = |name: &str| env.get(name).cloned();
    let mut functions = Functions::default();
    // The timeouts template.yaml gives each function.
    let decision =
        Edge::load(&lookup, route_decision::load).map_err(|e| format!("route-decision: {e}"))?;
    // The rules' text as the function's configuration read it (it compiled, so it is there).
    let text = config::rules_text(&Variables::new(&lookup)).map_err(|e| e.to_string())?;
    let (source, file) = match (demo, text.file) {
        (true, _) => {
            let file = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/rules.json"));
            (
                "sandbox/rules.json".to_owned(),
                file.exists().then_some(file),
            )
        }
        (false, Some(path)) => (path.display().to_string(), Some(path)),
        (false, None) => ("ROUTING_RULES".to_owned(), None),
    };
    let phone_kind = decision.operation.phone_identifier.clone();
    let live = decision.operation.rules.clone();
    let shadow = decision.operation.shadow.current();
    let rules = StartingRules {
        source: source.clone(),
        names: live.current().rule_names().map(str::to_owned).collect(),
        demo,
    };
    let active = Arc::new(EditableRules::new(live, text.json, source, file));
    functions.add("route-decision", decision, Duration::from_secs(10));
    functions.add(
        "profile-lookup",
        Edge::load(&lookup, profile_lookup::load).map_err(|e| format!("profile-lookup: {e}"))?,
        Duration::from_secs(10),
    );
    functions.add(
        "wrap-up-ingest",
        Edge::load(&lookup, wrap_up_ingest::load).map_err(|e| format!("wrap-up-ingest: {e}"))?,
        Duration::from_secs(15),
    );
    if trait_store.is_some() {
        let sync = Edge::load(&lookup, trait_sync::load).map_err(|e| format!("trait-sync: {e}"))?;
        functions.add("trait-sync", sync, Duration::from_secs(6));
    }
    Ok((functions, rules, active, phone_kind, shadow))
}
