//! The one edge every function shares: decode the invocation, bound and authenticate HTTP
//! callers, call the function's operation, and encode the answer (payload 2.0 for HTTP, bare
//! JSON for a direct invoke). Failures become `{"error": {"code", "message"}}` with their
//! status here (through [`crate::edge::failure`]) and nowhere else.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::http::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};

use crate::adapters::config::{ConfigError, Environment, Startup, runtime};
use crate::domain::arrival::Arrival;
use crate::edge::auth::Authenticator;
pub use crate::edge::failure::Failure;
use crate::edge::invocation::{
    ConfigurationValidation, HttpRequest, Input, Invocation, InvocationError,
    configuration_validation, http_response,
};
use crate::support::metrics::{self, Counter, MetricsWriter};

pub mod auth;
pub mod engage;
pub mod failure;
pub mod fields;
pub mod functions;
pub mod invocation;
mod run;
pub mod taskrouter;

pub use run::{main, run};

/// The longest query string accepted. Studio's requests carry a few fields; even an
/// `include=` list of profile-lookup's 200 traits fits.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// The most fields a query string (or a form body) may name. A TaskRouter callback has about
/// forty, a Studio request a handful. Counted before authentication, without decoding.
pub const MAX_FIELDS: usize = 256;
/// Time kept back from the invocation's own deadline to send the answer.
const ANSWER_MARGIN: Duration = Duration::from_millis(100);
/// The realm a 401 names when the shared secret is configured.
const CHALLENGE: &str = "Basic realm=\"studio-router\"";

/// What an operation answers on success.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// 200 with this JSON body.
    Json(Value),
    /// 204: accepted, nothing to say (what TaskRouter expects from its callback).
    Accepted,
}

/// A function's own work, behind the shared edge. One value serves every invocation of the
/// environment, several at once on Lambda Managed Instances.
pub trait Operation: Send + Sync + 'static {
    /// The function's name, as deployed and as its log lines say.
    const NAME: &'static str;
    /// The largest body accepted over HTTP; larger ones get 413.
    const MAX_BODY_BYTES: usize;
    /// The largest JSON object body (a JSON list may take the whole `MAX_BODY_BYTES`).
    const MAX_OBJECT_BYTES: usize = Self::MAX_BODY_BYTES;
    /// How long the HTTPS client waits for a connection.
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    /// A direct invoke that could not do its work (a 5xx failure, or a configuration error)
    /// fails the invocation instead of answering it: the caller retries only then (Segment's
    /// Lambda destination counts a function error as a failed delivery, an answer as done).
    const FAILS_UNWRITTEN: bool = false;

    /// Handles one request: the fields of an HTTP body or query string, a JSON list body, or
    /// a direct invoke's JSON. Its budgets count from `arrival.at` (the caller's clock started
    /// then, authentication included), and it must answer by `arrival.answer_by`.
    fn call(
        &self,
        input: Input,
        arrival: Arrival,
    ) -> impl Future<Output = Result<Answer, Failure>> + Send;

    /// By when a request must be authenticated: a secret not yet held is waited for until
    /// then, no longer. The operation's own budget, where it has one, counts authentication.
    fn authenticate_by(&self, arrival: &Arrival) -> Instant {
        arrival.answer_by
    }

    /// Prepares for the next real call (clients, secrets) without touching customer data.
    fn warm_up(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// AppConfig's validator: `Ok` with a summary when `content` is a configuration this
    /// function can use, `Err` with the reason otherwise (AppConfig then refuses to deploy it).
    fn validate_configuration(&self, _content: &[u8]) -> Result<String, String> {
        Err(format!(
            "{} does not validate configurations; point the AppConfig validator at route-decision",
            Self::NAME
        ))
    }
}

/// An invocation the function fails instead of answering: Lambda then reports it as an
/// error (`X-Amz-Function-Error`) to whoever arrival it.
#[derive(Debug, thiserror::Error)]
pub enum InvocationFailed {
    /// A configuration AppConfig must not deploy: failing is how a Lambda validator says no.
    #[error("{0}")]
    ConfigurationRefused(String),
    /// A stream's batch without a partial batch response. Lambda reads any answer that lacks
    /// `batchItemFailures` as "every record delivered" and checkpoints the batch; only a
    /// failed invocation makes it retry ("Implementing partial batch responses", Lambda
    /// developer guide).
    #[error("the batch was not delivered ({0}); Lambda retries it")]
    BatchNotDelivered(Failure),
    /// A delivery not written, for a caller that retries failed invocations only.
    #[error("the delivery was not written ({0}); the sender retries it")]
    NotWritten(Failure),
}

impl InvocationFailed {
    /// The error as Lambda's own error document shapes it, for callers that show it.
    pub fn body(&self) -> Value {
        let kind = match self {
            Self::ConfigurationRefused(_) => "ConfigurationRefused",
            Self::BatchNotDelivered(_) => "BatchNotDelivered",
            Self::NotWritten(_) => "NotWritten",
        };
        json!({"errorType": kind, "errorMessage": self.to_string()})
    }
}

/// A configured function: its operation, who may call it over HTTP, and its metrics.
pub struct Edge<O> {
    pub operation: O,
    pub auth: Authenticator,
    pub metrics: Arc<MetricsWriter>,
}

impl<O: Operation> Edge<O> {
    /// A function whose metrics go by its binary's name ([`Self::load`] uses the deployed one).
    pub fn new(operation: O, auth: Authenticator) -> Self {
        Self {
            operation,
            auth,
            metrics: Arc::new(MetricsWriter::new(O::NAME)),
        }
    }

    /// A function as configured by `env`: its operation, read by `load`, and who may call it.
    /// Nothing here needs the network: INIT may not have it (secrets wait for an invocation).
    pub fn load(
        env: &dyn Environment,
        load: impl FnOnce(&Startup<'_>) -> Result<O, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let startup = Startup::new(env, O::CONNECT_TIMEOUT)?;
        let operation = load(&startup)?;
        let auth =
            Authenticator::configured(runtime::authentication(&startup.vars, &startup.extension)?);
        auth.warn_if_unprotected(O::NAME);
        let metrics = runtime::metrics_writer(&startup.vars, O::NAME)?;
        Ok(Self {
            operation,
            auth,
            metrics: Arc::new(metrics),
        })
    }

    /// Handles one Lambda invocation: [`Self::handle`], except that an AppConfig validation
    /// of a configuration that cannot be used fails the invocation, as AppConfig expects;
    /// then writes the invocation's metrics document.
    pub async fn invoke(
        &self,
        event: Value,
        deadline: Option<SystemTime>,
    ) -> Result<Value, InvocationFailed> {
        self.metrics.measure(self.answer(event, deadline)).await
    }

    /// Handles one invocation for a caller that shows what it gets (the sandbox, tests): an
    /// invocation that fails answers Lambda's error document.
    pub async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Value {
        self.answer(event, deadline)
            .await
            .unwrap_or_else(|failed| failed.body())
    }

    async fn answer(
        &self,
        event: Value,
        deadline: Option<SystemTime>,
    ) -> Result<Value, InvocationFailed> {
        if let Some(ConfigurationValidation { content, version }) =
            event.as_object().and_then(configuration_validation)
        {
            let decoded =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, content.trim())
                    .map_err(|_| "the content is not base64".to_owned());
            let version = version.as_deref();
            return match decoded.and_then(|bytes| self.operation.validate_configuration(&bytes)) {
                Ok(summary) => {
                    tracing::info!(function = O::NAME, version, %summary, "configuration validated for AppConfig");
                    Ok(json!({"valid": true, "summary": summary}))
                }
                Err(reason) => {
                    tracing::warn!(function = O::NAME, version, %reason, "configuration refused for AppConfig");
                    Err(InvocationFailed::ConfigurationRefused(reason))
                }
            };
        }
        let arrival = Arrival {
            at: Instant::now(),
            answer_by: answer_by(deadline),
        };
        match Invocation::decode(event, O::MAX_BODY_BYTES) {
            Ok(Invocation::Direct(input @ Input::Stream(_))) => {
                let failure = match self.operation.call(input, arrival).await {
                    Ok(Answer::Json(body)) if body.get("batchItemFailures").is_some() => {
                        return Ok(body);
                    }
                    Ok(_) => Failure::new(
                        500,
                        "not_a_stream_function",
                        format!("{} does not read streams", O::NAME),
                    ),
                    Err(failure) => failure,
                };
                metrics::add(Counter::ServerErrors, 1);
                tracing::error!(function = O::NAME, code = failure.code, detail = %failure.message, "stream batch not delivered; the invocation fails so Lambda retries it");
                Err(InvocationFailed::BatchNotDelivered(failure))
            }
            Ok(Invocation::Direct(input)) if O::FAILS_UNWRITTEN => {
                match self.operation.call(input, arrival).await {
                    Ok(Answer::Json(body)) => Ok(body),
                    Ok(Answer::Accepted) => Ok(json!({"accepted": true})),
                    Err(failure) if failure.status >= 500 => {
                        metrics::add(Counter::ServerErrors, 1);
                        Err(InvocationFailed::NotWritten(failure))
                    }
                    Err(failure) => Ok(failure.body()),
                }
            }
            decoded => Ok(self.answer_decoded(decoded, arrival).await),
        }
    }

    /// Answers an invocation that is not a stream's batch; every problem is an answer.
    async fn answer_decoded(
        &self,
        decoded: Result<Invocation, InvocationError>,
        arrival: Arrival,
    ) -> Value {
        match decoded {
            Ok(Invocation::WarmUp) => {
                self.auth.warm_up().await;
                self.operation.warm_up().await;
                json!({"warm": true})
            }
            Ok(Invocation::Direct(input)) => match self.operation.call(input, arrival).await {
                Ok(Answer::Json(body)) => body,
                Ok(Answer::Accepted) => json!({"accepted": true}),
                Err(failure) => {
                    if failure.status >= 500 {
                        metrics::add(Counter::ServerErrors, 1);
                    }
                    failure.body()
                }
            },
            Ok(Invocation::Http(request)) => {
                let outcome = self.http(request, arrival).await;
                self.respond(outcome)
            }
            // A broken or oversized payload 2.0 event still came over HTTP: answer it as HTTP.
            Err(
                error @ (InvocationError::MalformedHttp(_)
                | InvocationError::BadBase64
                | InvocationError::BodyTooLarge { .. }),
            ) => self.respond(Err(error.into())),
            Err(error) => Failure::from(error).body(),
        }
    }

    fn respond(&self, outcome: Result<Answer, Failure>) -> Value {
        match outcome {
            Ok(Answer::Json(body)) => http_response(200, Some(&body), &[]),
            Ok(Answer::Accepted) => http_response(204, None, &[]),
            Err(failure) => {
                // Named: in the local stack, three functions share one log.
                if failure.status >= 500 {
                    metrics::add(Counter::ServerErrors, 1);
                    tracing::error!(function = O::NAME, status = failure.status, code = failure.code, detail = %failure.message, "request failed");
                } else {
                    tracing::warn!(function = O::NAME, status = failure.status, code = failure.code, detail = %failure.message, "request refused");
                }
                let challenge: &[_] = if failure.status == 401 && self.auth.challenges() {
                    &[(WWW_AUTHENTICATE, CHALLENGE)]
                } else {
                    &[]
                };
                http_response(failure.status, Some(&failure.body()), challenge)
            }
        }
    }

    async fn http(&self, request: HttpRequest, arrival: Arrival) -> Result<Answer, Failure> {
        if request.method != "GET" && request.method != "POST" {
            return Err(Failure::new(
                405,
                "method_not_allowed",
                format!("{} is not supported; use GET or POST", request.method),
            ));
        }
        // Bounded before anyone is authenticated: what a stranger can make us do is counted
        // in bytes and fields, not in the pairs a signature check would otherwise sort.
        if request.raw_query_string.len() > MAX_QUERY_BYTES
            || request.query_field_count() > MAX_FIELDS
        {
            return Err(Failure::new(
                414,
                "query_too_long",
                format!(
                    "the query string may hold at most {MAX_FIELDS} fields in {MAX_QUERY_BYTES} bytes"
                ),
            ));
        }
        let fields = request.form_field_count();
        if fields > MAX_FIELDS {
            return Err(Failure::new(
                413,
                "too_many_fields",
                format!("the form has {fields} fields; this function accepts at most {MAX_FIELDS}"),
            ));
        }
        // Authenticate before parsing: an unauthenticated caller learns nothing about our input rules.
        self.auth
            .check(&request, self.operation.authenticate_by(&arrival))
            .await?;
        if request.method == "GET" && request.has_body() {
            return Err(Failure::bad_request(
                "body_not_allowed",
                "a GET request's body is not covered by its signature and is never read; send the fields in the query string, or POST them",
            ));
        }
        let input = request.into_payload(O::MAX_OBJECT_BYTES)?;
        self.operation.call(input, arrival).await
    }
}

/// The latest moment to have the answer ready: the invocation's deadline less a margin to
/// send it, or an hour from now when the caller set none (the sandbox, tests).
///
/// Lambda's deadline is a time (epoch milliseconds). One more than a day in the past is not
/// one: cargo-lambda's emulator sends the timeout itself (`600000`) in that header, and
/// taking it for a time would end every invocation as it starts.
fn answer_by(deadline: Option<SystemTime>) -> Instant {
    let now = Instant::now();
    let wall = SystemTime::now();
    let remaining = match deadline {
        Some(deadline) if deadline + Duration::from_secs(86_400) > wall => deadline
            .duration_since(wall)
            .unwrap_or_default()
            .saturating_sub(ANSWER_MARGIN),
        _ => Duration::from_secs(3600),
    };
    now + remaining
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::adapters::memory::MemoryProfiles;
    use crate::domain::operations::route_decision::RouteDecision;
    use crate::domain::ports::NoUpdates;
    use crate::domain::rules::{DEFAULT_RULES, RuleSet};
    use crate::testing::{
        HOST, SHARED_SECRET, authenticator, code, event, signed_form, signed_get, status_and_body,
    };

    const PHONE: &str = "phone:+15555550100";

    fn edge(shared_secret: bool) -> Edge<RouteDecision<MemoryProfiles>> {
        Edge::new(
            RouteDecision {
                profiles: MemoryProfiles::new().with(PHONE, json!({"docs_last_2_days": 2})),
                rules: std::sync::Arc::new(RuleSet::compile(DEFAULT_RULES).unwrap().into()),
                updates: NoUpdates,
                deadline: Duration::from_millis(500),
                phone_identifier: "phone".into(),
                response_traits: std::sync::Arc::default(),
                shadow: Default::default(),
            },
            authenticator(shared_secret),
        )
    }

    async fn handle(edge: &Edge<RouteDecision<MemoryProfiles>>, event: Value) -> Value {
        edge.handle(event, None).await
    }

    #[test]
    fn the_answer_is_due_before_the_invocations_deadline() {
        let now = Instant::now();
        let due = answer_by(Some(SystemTime::now() + Duration::from_secs(10)));
        assert!(due > now + Duration::from_millis(9_800) && due < now + Duration::from_secs(10));
        // Already past: due now.
        let late = answer_by(Some(SystemTime::now() - Duration::from_secs(5)));
        assert!(late < Instant::now() + Duration::from_millis(50));
        // None, or a duration sent where a time belongs: an hour.
        for deadline in [
            None,
            std::time::UNIX_EPOCH.checked_add(Duration::from_millis(600_000)),
        ] {
            assert!(
                answer_by(deadline) > now + Duration::from_secs(3_500),
                "{deadline:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_signed_request_gets_the_operations_answer_as_payload_2_0() {
        let response = handle(&edge(false), signed_form(&[("From", "+15555550100")])).await;
        let (status, body) = status_and_body(&response);
        assert_eq!(status, 200);
        assert_eq!(response["headers"]["content-type"], "application/json");
        assert_eq!(
            (&body["transition"], &body["rule"]),
            (&json!("agent"), &json!("read-docs-recently"))
        );
    }

    #[tokio::test]
    async fn every_refusal_has_its_status_and_code() {
        let edge = edge(false);
        let cases: Vec<(&str, Value, (u64, &str))> = vec![
            (
                "PUT",
                event("PUT", "", &[], None),
                (405, "method_not_allowed"),
            ),
            (
                "a body over the limit",
                event("POST", "", &[], Some(&"x".repeat(64 * 1024 + 1))),
                (413, "body_too_large"),
            ),
            (
                "a query over 16 KiB",
                event(
                    "GET",
                    &format!("From={}", "1".repeat(MAX_QUERY_BYTES)),
                    &[],
                    None,
                ),
                (414, "query_too_long"),
            ),
            (
                "a query of 257 fields",
                event("GET", &"a=1&".repeat(MAX_FIELDS + 1), &[], None),
                (414, "query_too_long"),
            ),
            (
                "a form of 257 fields",
                event(
                    "POST",
                    "",
                    &[("content-type", "application/x-www-form-urlencoded")],
                    Some(&"a=1&".repeat(MAX_FIELDS + 1)),
                ),
                (413, "too_many_fields"),
            ),
            (
                "no credentials",
                event("GET", "From=%2B15555550100", &[], None),
                (401, "unauthorized"),
            ),
            (
                "a signed GET with a body",
                signed_get(
                    "From=%2B15555550100",
                    Some("{\"identifier\": \"email:victim@example.com\"}"),
                ),
                (400, "body_not_allowed"),
            ),
            (
                "an HTTP event without its http context",
                json!({"requestContext": {"domainName": HOST}, "rawPath": "/"}),
                (400, "invalid_request"),
            ),
        ];
        for (name, event, expected) in cases {
            let response = handle(&edge, event).await;
            let (status, code) = code(&response);
            assert_eq!((status, code.as_str()), expected, "{name}: {response}");
        }
        assert!(
            edge.operation.profiles.asked().is_empty(),
            "nothing was looked up"
        );
    }

    #[tokio::test]
    async fn a_401_challenges_for_basic_only_when_the_shared_secret_is_configured() {
        let unsigned = || event("GET", "From=%2B15555550100", &[], None);
        let challenged = handle(&edge(true), unsigned()).await;
        assert_eq!(challenged["statusCode"], 401);
        assert_eq!(
            challenged["headers"]["www-authenticate"],
            "Basic realm=\"studio-router\""
        );
        let plain = handle(&edge(false), unsigned()).await;
        assert_eq!(plain["statusCode"], 401);
        assert!(plain["headers"].get("www-authenticate").is_none());
        // The same body either way: it says nothing about which check failed.
        assert_eq!(status_and_body(&challenged).1, status_and_body(&plain).1);
        // And the credentials the challenge asks for are accepted.
        let basic = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("studio:{SHARED_SECRET}")
            )
        );
        let answer = handle(
            &edge(true),
            event(
                "GET",
                "From=%2B15555550100",
                &[("authorization", &basic)],
                None,
            ),
        )
        .await;
        assert_eq!(answer["statusCode"], 200);
    }

    #[tokio::test]
    async fn a_warm_up_answers_warm_and_reads_no_profile() {
        let edge = edge(true);
        for warm_up in [
            json!({"warmup": true}),
            json!({"source": "aws.events", "detail-type": "Scheduled Event"}),
        ] {
            assert_eq!(handle(&edge, warm_up).await, json!({"warm": true}));
        }
        assert!(edge.operation.profiles.asked().is_empty());
    }

    #[tokio::test]
    async fn a_direct_invoke_gets_bare_json_and_errors_without_a_status() {
        let edge = edge(false);
        let decision = handle(&edge, json!({"From": "+15555550100"})).await;
        assert_eq!(decision["transition"], "agent");
        assert!(decision.get("statusCode").is_none());
        let error = handle(&edge, json!({"From": "client:alice"})).await;
        assert_eq!(error["error"]["code"], "invalid_identifier");
        let list = handle(&edge, json!([{"From": "+15555550100"}])).await;
        assert_eq!(list["error"]["code"], "invalid_body");
        assert_eq!(
            handle(&edge, json!("text")).await["error"]["code"],
            "invalid_request"
        );
    }
}
