//! The Lambda Runtime API, as the Lambda service serves it to a function's bootstrap.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use studio_router::edge::invocation::status_and_body;

use crate::serve;

/// How long any single invocation may take before the test gives up on the binary.
const INVOKE_LIMIT: Duration = Duration::from_secs(20);
/// The deadline an invocation gets unless a test says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Each waiting invocation's channel: the payload the function posted, and whether it posted
/// it as the invocation's error (`/error`) rather than its response.
type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<(Value, bool)>>>>;

/// An event waiting for the function, with the time it must be answered by.
struct Queued {
    id: String,
    event: Value,
    timeout: Duration,
}

#[derive(Clone)]
struct RuntimeState {
    events: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>>,
    pending: Pending,
    /// Set when the function first asks for an event: its INIT phase is over.
    invoking: Arc<watch::Sender<bool>>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    events: mpsc::UnboundedSender<Queued>,
    pending: Pending,
    next_id: AtomicU64,
    invoking: Arc<watch::Sender<bool>>,
}

/// One invocation's answer, and how long the function took from when the event was queued.
#[derive(Debug)]
pub struct Answered {
    pub payload: Value,
    pub elapsed: Duration,
    /// The function reported the invocation failed (`/error`): Lambda retries a stream's
    /// batch, and an asynchronous event, after that.
    pub failed: bool,
}

impl Answered {
    /// For HTTP invocations: the payload 2.0 status code.
    pub fn status(&self) -> u64 {
        status_and_body(&self.payload).0
    }

    /// For HTTP invocations: the JSON body.
    pub fn body(&self) -> Value {
        status_and_body(&self.payload).1
    }

    /// For HTTP invocations: a response header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.payload["headers"][name].as_str()
    }
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (events, receiver) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let invoking = Arc::new(watch::channel(false).0);
        let state = RuntimeState {
            events: Arc::new(tokio::sync::Mutex::new(receiver)),
            pending: pending.clone(),
            invoking: invoking.clone(),
        };
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(respond_error),
            )
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
            invoking,
        }
    }

    /// Queues an event and waits for the function's answer.
    pub async fn invoke(&self, event: Value) -> Answered {
        self.invoke_within(event, DEFAULT_TIMEOUT).await
    }

    /// Like [`Self::invoke`], with the invocation's deadline `timeout` after it is handed out
    /// (what the function's configured timeout gives on Lambda).
    pub async fn invoke_within(&self, event: Value, timeout: Duration) -> Answered {
        let started = Instant::now();
        let (payload, failed) = self.queue_within(event, timeout).outcome().await;
        Answered {
            payload,
            elapsed: started.elapsed(),
            failed,
        }
    }

    /// Queues an event without waiting: a function started afterwards finds it waiting, as
    /// on a cold start.
    pub fn queue(&self, event: Value) -> Waiting {
        self.queue_within(event, DEFAULT_TIMEOUT)
    }

    fn queue_within(&self, event: Value, timeout: Duration) -> Waiting {
        let id = format!("req-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (sender, receiver) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending")
            .insert(id.clone(), sender);
        self.events
            .send(Queued { id, event, timeout })
            .expect("runtime API running");
        Waiting { receiver }
    }

    /// Becomes true when the function first asks for an event (its INIT phase is over).
    pub fn invoking(&self) -> watch::Receiver<bool> {
        self.invoking.subscribe()
    }
}

/// An invocation queued on the Runtime API.
pub struct Waiting {
    receiver: oneshot::Receiver<(Value, bool)>,
}

impl Waiting {
    /// The function's answer (its response, or the error it reported).
    pub async fn answer(self) -> Value {
        self.outcome().await.0
    }

    /// The function's answer, and whether it reported the invocation failed.
    pub async fn outcome(self) -> (Value, bool) {
        tokio::time::timeout(INVOKE_LIMIT, self.receiver)
            .await
            .expect("the function answered within the test's limit")
            .expect("answer delivered")
    }
}

async fn next_event(State(state): State<RuntimeState>) -> Response {
    state.invoking.send_replace(true);
    let Some(queued) = state.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = (SystemTime::now() + queued.timeout)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    Response::builder()
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", queued.id)
        .header("lambda-runtime-deadline-ms", deadline.to_string())
        .header(
            "lambda-runtime-arrival-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:test",
        )
        .header(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000",
        )
        .body(Body::from(queued.event.to_string()))
        .unwrap_or_default()
}

async fn respond(state: State<RuntimeState>, id: Path<String>, body: Bytes) -> StatusCode {
    deliver(state, id, body, false)
}

async fn respond_error(state: State<RuntimeState>, id: Path<String>, body: Bytes) -> StatusCode {
    deliver(state, id, body, true)
}

fn deliver(
    State(state): State<RuntimeState>,
    Path(id): Path<String>,
    body: Bytes,
    failed: bool,
) -> StatusCode {
    let payload = serde_json::from_slice(&body)
        .unwrap_or_else(|_| json!({"unparseable": String::from_utf8_lossy(&body)}));
    if let Some(sender) = state.pending.lock().expect("pending").remove(&id) {
        let _ = sender.send((payload, failed));
    }
    StatusCode::ACCEPTED
}
