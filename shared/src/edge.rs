//! The one edge every function shares: decode the invocation, authenticate HTTP callers,
//! call the function's operation, and encode the answer (payload 2.0 for HTTP, bare JSON for
//! a direct invoke). Errors become `{"error": {"code", "message"}}` with their status here
//! and nowhere else.

use std::future::Future;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

use crate::auth::Authenticator;
use crate::config::ConfigError;
use crate::invocation::{HttpRequest, Invocation, InvocationError, http_response};

/// What an operation answers on success.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// 200 with this JSON body.
    Json(Value),
    /// 204: accepted, nothing to say (what TaskRouter expects from its callback).
    Accepted,
}

/// A failure a caller sees: its status, a stable snake_case code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Failure {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl ToString) -> Self {
        Self::new(400, code, message.to_string())
    }

    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

/// A function's own work, behind the shared edge.
pub trait Operation: Sync {
    /// The largest body accepted over HTTP; larger ones get 413.
    const MAX_BODY_BYTES: usize;

    /// Handles one request: the fields of an HTTP body or query string (an object), or a
    /// JSON list body, or a direct invoke's JSON.
    fn call(&self, input: Value) -> impl Future<Output = Result<Answer, Failure>> + Send;

    /// Prepares for the next real call without touching customer data.
    fn warm_up(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A configured function: its operation and who may call it over HTTP.
pub struct Edge<O> {
    pub operation: O,
    pub auth: Authenticator,
}

impl<O: Operation> Edge<O> {
    pub fn new(operation: O, auth: Authenticator) -> Self {
        Self { operation, auth }
    }

    /// Handles one Lambda invocation; never fails, every problem is an answer.
    pub async fn handle(&self, event: Value) -> Value {
        match Invocation::decode(event) {
            Ok(Invocation::WarmUp) => {
                self.operation.warm_up().await;
                json!({"warm": true})
            }
            Ok(Invocation::Direct(fields)) => match self.operation.call(fields).await {
                Ok(Answer::Json(body)) => body,
                Ok(Answer::Accepted) => json!({"accepted": true}),
                Err(failure) => failure.body(),
            },
            Ok(Invocation::Http(request)) => match self.http(&request).await {
                Ok(Answer::Json(body)) => http_response(200, Some(&body)),
                Ok(Answer::Accepted) => http_response(204, None),
                Err(failure) => {
                    if failure.status >= 500 {
                        tracing::error!(status = failure.status, code = failure.code, message = %failure.message, "request failed");
                    } else {
                        tracing::warn!(status = failure.status, code = failure.code, message = %failure.message, "request refused");
                    }
                    http_response(failure.status, Some(&failure.body()))
                }
            },
            // A broken payload 2.0 event still came over HTTP: answer it as HTTP.
            Err(error @ (InvocationError::MalformedHttp(_) | InvocationError::BadBase64)) => {
                tracing::warn!(%error, "undecodable HTTP event");
                http_response(
                    400,
                    Some(&Failure::bad_request("invalid_request", &error).body()),
                )
            }
            Err(error) => Failure::bad_request("invalid_request", error).body(),
        }
    }

    async fn http(&self, request: &HttpRequest) -> Result<Answer, Failure> {
        if request.method != "GET" && request.method != "POST" {
            return Err(Failure::new(
                405,
                "method_not_allowed",
                format!("{} is not supported; use GET or POST", request.method),
            ));
        }
        if request.body.len() > O::MAX_BODY_BYTES {
            return Err(Failure::new(
                413,
                "body_too_large",
                format!(
                    "the body is {} bytes; this function accepts at most {}",
                    request.body.len(),
                    O::MAX_BODY_BYTES
                ),
            ));
        }
        // Authenticate before parsing: an unauthenticated caller learns nothing about our input rules.
        self.auth
            .check(request)
            .map_err(|refusal| Failure::new(401, "unauthorized", refusal.to_string()))?;
        let input = request
            .payload()
            .map_err(|e| Failure::bad_request("invalid_body", e))?;
        self.operation.call(input).await
    }
}

/// A function binary's whole `main`: a one-thread runtime, then [`run`]. One thread because
/// a Lambda instance handles one event at a time and a 128 MB function has a fraction of a
/// vCPU: a multi-threaded runtime would only cost start-up time.
pub fn main<O, L>(name: &'static str, load: impl FnOnce() -> L) -> std::process::ExitCode
where
    O: Operation,
    L: Future<Output = Result<Edge<O>, ConfigError>>,
{
    let result = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(name, load())),
        Err(error) => Err(error.into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs a function under the Lambda Runtime API: telemetry, then `load` (configuration and
/// clients, once), then the event loop. A configuration error is logged once with its
/// reason and every invocation answers 500 `configuration_error`, instead of a crash loop
/// that Studio would only see as timeouts.
pub async fn run<O, L>(name: &'static str, load: L) -> Result<(), lambda_runtime::Error>
where
    O: Operation,
    L: Future<Output = Result<Edge<O>, ConfigError>>,
{
    crate::telemetry::init();
    match load.await {
        Ok(edge) => {
            let edge = &edge;
            lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                Ok::<Value, lambda_runtime::Error>(edge.handle(event.payload).await)
            }))
            .await
        }
        Err(error) => {
            tracing::error!(function = name, %error, "configuration is invalid; every request will answer 500 until it is fixed");
            let failure = Failure::new(
                500,
                "configuration_error",
                format!("{name} is not configured correctly; its logs say why"),
            );
            let failure = &failure;
            lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                let is_http = event.payload.get("requestContext").is_some();
                let body = failure.body();
                Ok::<Value, lambda_runtime::Error>(if is_http {
                    http_response(500, Some(&body))
                } else {
                    body
                })
            }))
            .await
        }
    }
}
