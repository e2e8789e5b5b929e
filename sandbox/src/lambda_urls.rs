//! Function URLs on loopback: each HTTP request becomes the payload 2.0 event Lambda would
//! deliver, goes through the same edge the function binaries run, and the payload 2.0
//! response goes back as HTTP. Paths match `cargo lambda watch`: `/lambda-url/<function>/`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use studio_router::edge::invocation::FunctionUrlRequest;
use studio_router::edge::{Edge, Operation};

type Invoke = Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Value> + Send>> + Send + Sync>;

/// Told of every invocation of one function: its event, its answer, and how long it took.
pub type Observer = Arc<dyn Fn(&Value, &Value, Duration) + Send + Sync>;

/// The functions served, by name.
#[derive(Clone, Default)]
pub struct Functions {
    by_name: BTreeMap<&'static str, Invoke>,
    observers: BTreeMap<&'static str, Observer>,
}

impl Functions {
    /// Serves `edge` as `name`; each invocation must answer within `timeout`, the function's
    /// timeout in template.yaml, as on Lambda.
    pub fn add<O: Operation + Send + 'static>(
        &mut self,
        name: &'static str,
        edge: Edge<O>,
        timeout: Duration,
    ) {
        let edge = Arc::new(edge);
        self.by_name.insert(
            name,
            Arc::new(move |event| {
                let edge = edge.clone();
                let deadline = SystemTime::now() + timeout;
                Box::pin(async move { edge.handle(event, Some(deadline)).await })
            }),
        );
    }

    /// Tells `observer` of every invocation of `name` from now on.
    pub fn observe(&mut self, name: &'static str, observer: Observer) {
        self.observers.insert(name, observer);
    }

    /// Invokes `name` with `event`, as its Function URL would; `None` for an unknown name.
    pub async fn invoke(&self, name: &str, event: Value) -> Option<Value> {
        let handler = self.by_name.get(name)?.clone();
        let Some(observer) = self.observers.get(name) else {
            return Some(handler(event).await);
        };
        let seen = event.clone();
        let started = Instant::now();
        let answer = handler(event).await;
        observer(&seen, &answer, started.elapsed());
        Some(answer)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_name.keys().copied()
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/lambda-url/{function}", any(invoke_root))
            .route("/lambda-url/{function}/", any(invoke_root))
            .route("/lambda-url/{function}/{*rest}", any(invoke_path))
            .with_state(self)
    }
}

async fn invoke_root(
    state: State<Functions>,
    Path(function): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    invoke(state, function, String::new(), method, uri, headers, body).await
}

async fn invoke_path(
    state: State<Functions>,
    Path((function, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    invoke(state, function, rest, method, uri, headers, body).await
}

async fn invoke(
    State(functions): State<Functions>,
    function: String,
    rest: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !functions.by_name.contains_key(function.as_str()) {
        let known: Vec<_> = functions.names().collect();
        let message = format!(
            "no function named {function}; this sandbox serves {}",
            known.join(", ")
        );
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": "not_found", "message": message}})),
        )
            .into_response();
    }
    let event = payload_v2(
        &method,
        &format!("/{rest}"),
        uri.query().unwrap_or_default(),
        &headers,
        &body,
    );
    to_http(functions.invoke(&function, event).await.unwrap_or_default())
}

/// The event a Function URL delivers for this request.
pub fn payload_v2(
    method: &Method,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Value {
    let joined = headers
        .keys()
        .map(|name| {
            let values: Vec<&str> = headers
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect();
            (name.as_str().to_owned(), values.join(","))
        })
        .collect();
    let domain = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    FunctionUrlRequest {
        method: method.as_str(),
        domain,
        path: raw_path,
        query: raw_query,
        headers: joined,
        body: (!body.is_empty()).then_some(body),
        base64: false,
    }
    .event()
}

/// A payload 2.0 response (or, as Function URLs allow, a bare JSON answer) as HTTP.
pub fn to_http(answer: Value) -> Response {
    let Some(status) = answer.get("statusCode").and_then(Value::as_u64) else {
        return axum::Json(answer).into_response();
    };
    let mut response = Response::builder().status(u16::try_from(status).unwrap_or(500));
    if let Some(Value::Object(headers)) = answer.get("headers") {
        for (name, value) in headers {
            if let Some(value) = value.as_str() {
                response = response.header(name, value);
            }
        }
    }
    let body = match answer.get("body").and_then(Value::as_str) {
        Some(text) if answer.get("isBase64Encoded") == Some(&Value::Bool(true)) => {
            STANDARD.decode(text).unwrap_or_default()
        }
        Some(text) => text.as_bytes().to_vec(),
        None => Vec::new(),
    };
    response
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
