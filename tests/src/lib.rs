//! End-to-end test helpers, shared by every test file: a Lambda Runtime API served on
//! 127.0.0.1, the real function binaries run against it, HTTP stand-ins for Segment (that
//! can answer, fail, hang or refuse), and payload 2.0 event builders with real Twilio
//! signatures.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// How long any single invocation may take before the test gives up on the binary.
const INVOKE_LIMIT: Duration = Duration::from_secs(20);

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// A port on 127.0.0.1 that nothing listens on: connections to it are refused.
pub async fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

// ---------------------------------------------------------------------------------------
// Lambda Runtime API

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

#[derive(Clone)]
struct RuntimeState {
    events: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>>,
    pending: Pending,
}

/// The Lambda Runtime API, as the Lambda service serves it to a function's bootstrap.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    events: mpsc::UnboundedSender<(String, Value)>,
    pending: Pending,
    next_id: AtomicU64,
}

/// One invocation's answer, and how long the function took from when the event was queued.
#[derive(Debug)]
pub struct Answer {
    pub payload: Value,
    pub elapsed: Duration,
}

impl Answer {
    /// For HTTP invocations: the payload 2.0 status code.
    pub fn status(&self) -> u64 {
        self.payload["statusCode"].as_u64().unwrap_or(0)
    }

    /// For HTTP invocations: the JSON body.
    pub fn body(&self) -> Value {
        self.payload["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null)
    }
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (events, receiver) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let state = RuntimeState {
            events: Arc::new(tokio::sync::Mutex::new(receiver)),
            pending: pending.clone(),
        };
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(respond))
            .route(
                "/2018-06-01/runtime/init/error",
                post(|| async { StatusCode::ACCEPTED }),
            )
            .with_state(state);
        Self {
            addr: serve(router).await,
            events,
            pending,
            next_id: AtomicU64::new(1),
        }
    }

    /// Queues an event and waits for the function's answer.
    pub async fn invoke(&self, event: Value) -> Answer {
        let started = Instant::now();
        let payload = self.queue(event).answer().await;
        Answer {
            payload,
            elapsed: started.elapsed(),
        }
    }

    /// Queues an event without waiting: a function started afterwards finds it waiting, as
    /// on a cold start.
    pub fn queue(&self, event: Value) -> Queued {
        let id = format!("req-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (sender, receiver) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending")
            .insert(id.clone(), sender);
        self.events.send((id, event)).expect("runtime API running");
        Queued { receiver }
    }
}

/// An invocation queued on the Runtime API.
pub struct Queued {
    receiver: oneshot::Receiver<Value>,
}

impl Queued {
    /// The function's answer.
    pub async fn answer(self) -> Value {
        tokio::time::timeout(INVOKE_LIMIT, self.receiver)
            .await
            .expect("the function answered within the test's limit")
            .expect("answer delivered")
    }
}

async fn next_event(State(state): State<RuntimeState>) -> Response {
    let Some((id, event)) = state.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 60_000)
        .unwrap_or_default();
    Response::builder()
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", id)
        .header("lambda-runtime-deadline-ms", deadline.to_string())
        .header(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:test",
        )
        .header(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000",
        )
        .body(Body::from(event.to_string()))
        .unwrap_or_default()
}

async fn respond(
    State(state): State<RuntimeState>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let payload = serde_json::from_slice(&body)
        .unwrap_or_else(|_| json!({"unparseable": String::from_utf8_lossy(&body)}));
    if let Some(sender) = state.pending.lock().expect("pending").remove(&id) {
        let _ = sender.send(payload);
    }
    StatusCode::ACCEPTED
}

// ---------------------------------------------------------------------------------------
// The function binaries

/// A function binary from this workspace's target directory, running under a [`RuntimeApi`].
pub struct Function {
    _child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

/// Where cargo put the workspace's binaries: next to this test's own executable's folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// Builds the workspace's binaries with the release profile, so a benchmark never measures
/// a stale bootstrap left by an earlier build. A no-op when nothing changed.
pub fn build_release_binaries() {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--bins", "--quiet"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --release --bins failed");
}

impl Function {
    /// Starts `name` with exactly `env` (plus the Runtime API's own variables).
    pub async fn start(name: &str, runtime: &RuntimeApi, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(binary(name));
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("function binary starts");
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        if let Some(stdout) = child.stdout.take() {
            let sink = logs.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    sink.lock().expect("logs").push(line);
                }
            });
        }
        Self {
            _child: child,
            logs,
        }
    }

    /// The process id, for reading its memory use.
    pub fn pid(&self) -> Option<u32> {
        self._child.id()
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("logs").clone()
    }

    /// The first JSON log line whose message is `message`, waiting briefly for it to arrive.
    pub async fn log_line(&self, message: &str) -> Value {
        for _ in 0..100 {
            let found = self
                .logs()
                .iter()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|line| line["message"] == message);
            if let Some(line) = found {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "no log line with message {message:?}; logs: {:#?}",
            self.logs()
        );
    }
}

// ---------------------------------------------------------------------------------------
// HTTP stand-ins (Segment's APIs, the secrets extension)

/// One request a stand-in received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The path exactly as sent, percent-encoding kept.
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// How long the stand-in itself took to answer (its handler, any delay included).
    pub served_in: Duration,
}

impl Received {
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What a stand-in answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn raw(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Segment's Profile API answer for a profile with these traits.
    pub fn traits(traits: Value) -> Self {
        Self::json(
            200,
            json!({"traits": traits, "cursor": {"url": "", "has_more": false, "next": ""}}),
        )
    }

    /// Segment's Profile API answer for an unknown profile.
    pub fn profile_not_found() -> Self {
        Self::json(
            404,
            json!({"error": {"code": "not_found", "message": "Profile was not found."}}),
        )
    }
}

type Responder = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

#[derive(Clone)]
struct StandInState {
    received: Arc<Mutex<Vec<Received>>>,
    responder: Responder,
}

/// An HTTP server on 127.0.0.1 that records every request and answers as told.
pub struct StandIn {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl StandIn {
    pub async fn start(responder: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let state = StandInState {
            received: received.clone(),
            responder: Arc::new(responder),
        };
        let router = Router::new().fallback(stand_in).with_state(state);
        Self {
            addr: serve(router).await,
            received,
        }
    }

    /// A stand-in that answers every request the same way.
    pub async fn always(reply: Reply) -> Self {
        Self::start(move |_| reply.clone()).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }

    /// How many requests so far, without copying them.
    pub fn count(&self) -> usize {
        self.received.lock().expect("received").len()
    }

    /// The stand-in's own service time for the requests after the first `from`.
    pub fn served_since(&self, from: usize) -> Duration {
        self.received
            .lock()
            .expect("received")
            .iter()
            .skip(from)
            .map(|r| r.served_in)
            .sum()
    }
}

async fn stand_in(
    State(state): State<StandInState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let mut received = Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        served_in: Duration::ZERO,
    };
    let reply = (state.responder)(&received);
    if !reply.delay.is_zero() {
        // Recorded before the delay, so a test sees the request while the reply is pending.
        state
            .received
            .lock()
            .expect("received")
            .push(received.clone());
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    let response = response.body(Body::from(reply.body)).unwrap_or_default();
    if reply.delay.is_zero() {
        received.served_in = started.elapsed();
        state.received.lock().expect("received").push(received);
    }
    response
}

// ---------------------------------------------------------------------------------------
// Events

/// The public host of the Function URL the events pretend to come through.
pub const FUNCTION_URL_HOST: &str = "abcdefghij.lambda-url.us-east-1.on.aws";

/// A Function URL (payload 2.0) event.
pub fn http_event(
    method: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    base64: bool,
) -> Value {
    let mut header_map = serde_json::Map::new();
    header_map.insert("host".into(), json!(FUNCTION_URL_HOST));
    for (name, value) in headers {
        header_map.insert(name.to_ascii_lowercase(), json!(value));
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij",
            "domainName": FUNCTION_URL_HOST,
            "domainPrefix": "abcdefghij",
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "54.1.2.3", "userAgent": "TwilioProxy/1.1"},
            "requestId": "r-1", "routeKey": "$default", "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000", "timeEpoch": 1795000000000_u64
        },
        "isBase64Encoded": base64,
    });
    if let Some(body) = body {
        event["body"] = json!(if base64 {
            STANDARD.encode(body)
        } else {
            body.to_owned()
        });
    }
    event
}

/// Twilio's X-Twilio-Signature for a URL and form parameters (written here independently of
/// the library, so the tests check it against Twilio's algorithm, not against itself).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("hmac key");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A form POST signed as Twilio signs it (Studio's default "Form URL Encoded" request).
pub fn signed_form_post(auth_token: &str, params: &[(&str, &str)]) -> Value {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let signature = twilio_signature(auth_token, &format!("https://{FUNCTION_URL_HOST}/"), params);
    http_event(
        "POST",
        "",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-twilio-signature", &signature),
        ],
        Some(&body),
        true,
    )
}

/// `Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// A fixture file under `tests/fixtures/`.
pub fn fixture(path: &str) -> Value {
    let full = format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

// ---------------------------------------------------------------------------------------
// Starting the Studio-facing functions

/// The Twilio Auth Token the Studio-facing functions are configured with in tests.
pub const TWILIO_TOKEN: &str = "twilio-auth-token-for-tests";
/// The Profile API token they are configured with; it must never appear in an answer or a log.
pub const PROFILE_TOKEN: &str = "profile-token-secret";

/// Starts a Studio-facing function (route-decision, profile-lookup) wired to the Profile
/// API at `profile_api`, with Twilio signatures on; `extra` adds or overrides variables.
pub async fn studio_function(
    name: &str,
    profile_api: &str,
    extra: &[(&str, &str)],
) -> (RuntimeApi, Function) {
    let runtime = RuntimeApi::start().await;
    let mut env: Vec<(&str, String)> = vec![
        ("SEGMENT_SPACE_ID", "spa_test".to_owned()),
        ("SEGMENT_PROFILE_API_TOKEN", PROFILE_TOKEN.to_owned()),
        ("SEGMENT_PROFILE_API_URL", profile_api.to_owned()),
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN.to_owned()),
        ("PROFILE_TIMEOUT_MS", "5000".to_owned()),
    ];
    for (name, value) in extra {
        env.retain(|(existing, _)| existing != name);
        env.push((name, (*value).to_owned()));
    }
    let function = Function::start(name, &runtime, &env).await;
    (runtime, function)
}

// ---------------------------------------------------------------------------------------
// A raw TCP stand-in, for faults an HTTP server will not produce on purpose

/// What the raw stand-in does with each connection, after reading the request's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Full headers promising a longer body than is sent, then the connection closes.
    TruncatedBody,
    /// Part of the status line, then the connection closes.
    TruncatedHead,
    /// The connection is reset (RST) without an answer.
    Reset,
}

/// A TCP server on 127.0.0.1 that misbehaves on every connection; counts connections.
pub struct RawStandIn {
    pub addr: SocketAddr,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl RawStandIn {
    pub async fn start(misbehaviour: Misbehaviour) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    // Read the request head so the client has finished sending.
                    let mut head = Vec::new();
                    let mut buffer = [0_u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    match misbehaviour {
                        Misbehaviour::TruncatedBody => {
                            let partial = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{\"traits\": {\"docs_last_2_days\": 3, \"vi";
                            let _ = stream.write_all(partial).await;
                            let _ = stream.shutdown().await;
                        }
                        Misbehaviour::TruncatedHead => {
                            let _ = stream.write_all(b"HTTP/1.1 200 O").await;
                            let _ = stream.shutdown().await;
                        }
                        Misbehaviour::Reset => {
                            // Linger 0: closing sends RST instead of FIN.
                            let socket = socket2::SockRef::from(&stream);
                            let _ = socket.set_linger(Some(Duration::ZERO));
                            drop(stream);
                        }
                    }
                });
            }
        });
        Self { addr, connections }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A TaskRouter event callback as TaskRouter posts it: the fields of
/// `fixtures/taskrouter/<name>.json`, form-encoded and signed with [`TWILIO_TOKEN`].
pub fn taskrouter_callback(name: &str) -> Value {
    let fields = fixture(&format!("taskrouter/{name}.json"));
    let pairs: Vec<(String, String)> = fields
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    signed_form_post(TWILIO_TOKEN, &borrowed)
}
