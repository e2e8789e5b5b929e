//! HTTP stand-ins for Segment's APIs and the secrets extension, on 127.0.0.1: each records
//! what it received and answers as told (or fails, hangs, refuses), behaving as the real
//! service is documented to where that matters.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::serve;

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
    /// When the request arrived.
    pub at: Instant,
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
    in_flight: Arc<InFlightCount>,
}

/// Requests being served now, and the most ever served at once.
#[derive(Default)]
struct InFlightCount {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl InFlightCount {
    fn enter(self: &Arc<Self>) -> Leaving {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        Leaving(self.clone())
    }
}

struct Leaving(Arc<InFlightCount>);

impl Drop for Leaving {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An HTTP server on 127.0.0.1 that records every request and answers as told.
pub struct StandIn {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    in_flight: Arc<InFlightCount>,
}

impl StandIn {
    pub async fn start(responder: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let in_flight: Arc<InFlightCount> = Arc::default();
        let state = StandInState {
            received: received.clone(),
            responder: Arc::new(responder),
            in_flight: in_flight.clone(),
        };
        let router = Router::new().fallback(stand_in).with_state(state);
        Self {
            addr: serve(router).await,
            received,
            in_flight,
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

    /// The most requests it was serving at one moment.
    pub fn most_in_flight(&self) -> usize {
        self.in_flight.most.load(Ordering::SeqCst)
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
    let _serving = state.in_flight.enter();
    let mut received = Received {
        at: started,
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
    connections: Arc<AtomicUsize>,
}

impl RawStandIn {
    pub async fn start(misbehaviour: Misbehaviour) -> Self {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    // Read the request head so the client has finished sending.
                    if read_head(&mut stream).await.is_none() {
                        return;
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

/// A request's head (request line and headers) read off a raw connection; `None` when the
/// client went away first.
pub(crate) async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    Some(head)
}

// ---------------------------------------------------------------------------------------
// The AWS Parameters and Secrets Lambda Extension

/// How a secrets-extension stand-in behaves before it answers with the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionStart {
    /// As on Lambda: not serving until the function's INIT phase is over, answering 400 "not
    /// ready to serve traffic" until then (AWS's Parameter Store guide: callable only during
    /// INVOKE; the user report in Kralizek/AWSSecretsManagerConfigurationExtensions issue 87).
    ReadyOnlyDuringInvoke,
    /// Ready during INVOKE, but its first answer is a 500 (a Secrets Manager hiccup).
    FailsOnce,
    /// Ready during INVOKE; answers once, then fails every time (an outage after start).
    FailsAfterFirst,
    /// Ready during INVOKE; answers each secret's first request, then accepts every request
    /// and never answers (a cache miss in an extension whose Secrets Manager calls hang).
    HangsAfterFirst,
    /// Accepts the request and never answers.
    Hangs,
    /// Ready during INVOKE, each answer 200 ms late (a cache miss in the extension: it calls
    /// Secrets Manager), so concurrent first invocations overlap their fetches.
    Slow,
}

/// The session token the extension stand-in requires in `X-Aws-Parameters-Secrets-Token`,
/// as the real one requires Lambda's `AWS_SESSION_TOKEN`.
pub const SESSION_TOKEN: &str = "session-token";

/// A Parameter Store parameter as the stand-in holds it, and what its cache last served.
#[derive(Default)]
struct Parameter {
    value: String,
    version: u64,
    /// When the extension last fetched it from Parameter Store, and what it got then.
    cached: Option<(Instant, String, u64)>,
}

/// The Parameters and Secrets extension, serving `GET /secretsmanager/get?secretId=...`
/// with `{"SecretString": ...}` and `GET /systemsmanager/parameters/get?name=...` with
/// GetParameter's `{"Parameter": {"Name", "Value", "Version", ...}}`. Like the real one it
/// caches a parameter for `SSM_PARAMETER_STORE_TTL` (AWS's Parameter Store guide: it "doesn't
/// detect changes ... before the TTL expires"), so a change shows only after that.
pub struct SecretsExtension {
    stand_in: StandIn,
    parameters: Arc<Mutex<HashMap<String, Parameter>>>,
}

impl SecretsExtension {
    /// Serves `secrets` (secret id -> `SecretString`) from the moment `invoking` turns true.
    pub async fn start(
        start: ExtensionStart,
        invoking: watch::Receiver<bool>,
        secrets: &[(&str, &str)],
    ) -> Self {
        Self::with_parameter_cache(start, invoking, secrets, Duration::ZERO).await
    }

    /// [`Self::start`], its parameters cached for `ttl` (the extension's default is 300 s).
    pub async fn with_parameter_cache(
        start: ExtensionStart,
        invoking: watch::Receiver<bool>,
        secrets: &[(&str, &str)],
        ttl: Duration,
    ) -> Self {
        let secrets: HashMap<String, String> = secrets
            .iter()
            .map(|(id, value)| ((*id).to_owned(), (*value).to_owned()))
            .collect();
        let parameters: Arc<Mutex<HashMap<String, Parameter>>> = Arc::default();
        let held = parameters.clone();
        let answered = Arc::new(AtomicUsize::new(0));
        let asked_before: Mutex<HashSet<String>> = Mutex::default();
        let stand_in = StandIn::start(move |request| {
            if !*invoking.borrow() {
                return Reply::json(
                    400,
                    json!({"message": "not ready to serve traffic, please wait"}),
                );
            }
            if request
                .headers
                .get("x-aws-parameters-secrets-token")
                .map(String::as_str)
                != Some(SESSION_TOKEN)
            {
                return Reply::json(401, json!({"message": "missing or wrong X-Aws-Parameters-Secrets-Token"}));
            }
            let again = !asked_before
                .lock()
                .expect("asked")
                .insert(request.query.clone());
            if start == ExtensionStart::Hangs || (start == ExtensionStart::HangsAfterFirst && again)
            {
                return Reply::json(200, json!({})).after(Duration::from_secs(600));
            }
            let nth = answered.fetch_add(1, Ordering::SeqCst);
            let fails = match start {
                ExtensionStart::ReadyOnlyDuringInvoke
                | ExtensionStart::Hangs
                | ExtensionStart::HangsAfterFirst
                | ExtensionStart::Slow => false,
                ExtensionStart::FailsOnce => nth == 0,
                ExtensionStart::FailsAfterFirst => nth > 0,
            };
            if fails {
                return Reply::json(500, json!({"message": "Secrets Manager could not be reached"}));
            }
            if request.path == "/systemsmanager/parameters/get" {
                let name = request.query_param("name").unwrap_or_default();
                let mut held = held.lock().expect("parameters");
                let Some(parameter) = held.get_mut(&name) else {
                    return Reply::json(
                        400,
                        json!({"__type": "ParameterNotFound", "message": format!("parameter {name} not found")}),
                    );
                };
                let fresh = |at: &Instant| at.elapsed() < ttl;
                let (value, version) = match &parameter.cached {
                    Some((at, value, version)) if fresh(at) => (value.clone(), *version),
                    _ => {
                        parameter.cached =
                            Some((Instant::now(), parameter.value.clone(), parameter.version));
                        (parameter.value.clone(), parameter.version)
                    }
                };
                return Reply::json(
                    200,
                    json!({"Parameter": {"Name": name, "Type": "String", "Value": value, "Version": version,
                           "ARN": format!("arn:aws:ssm:us-east-1:123456789012:parameter{name}"), "DataType": "text"},
                           "ResultMetadata": {}}),
                );
            }
            let id = request.query_param("secretId").unwrap_or_default();
            let late = if start == ExtensionStart::Slow {
                Duration::from_millis(200)
            } else {
                Duration::ZERO
            };
            match secrets.get(&id) {
                Some(value) => {
                    Reply::json(200, json!({"Name": id, "SecretString": value})).after(late)
                }
                None => Reply::json(
                    400,
                    json!({"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."}),
                ),
            }
        })
        .await;
        Self {
            stand_in,
            parameters,
        }
    }

    /// Puts a new version of parameter `name` (`aws ssm put-parameter --overwrite`).
    pub fn put_parameter(&self, name: &str, value: &str) {
        let mut held = self.parameters.lock().expect("parameters");
        let parameter = held.entry(name.to_owned()).or_default();
        parameter.value = value.to_owned();
        parameter.version += 1;
    }

    /// The port, for `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`.
    pub fn port(&self) -> String {
        self.stand_in.addr.port().to_string()
    }

    pub fn received(&self) -> Vec<Received> {
        self.stand_in.received()
    }
}
