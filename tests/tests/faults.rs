//! The fault matrix, end to end: each Segment fault against each function, with stand-ins on
//! 127.0.0.1. route-decision always answers within its deadline (on_error, fallback: true,
//! where Segment failed); profile-lookup answers 502/504 within its deadline; wrap-up-ingest
//! never acknowledges what Segment did not accept.

use std::time::Duration;

use e2e::{
    Function, Misbehaviour, PROFILE_TOKEN, RawStandIn, Reply, RuntimeApi, StandIn, TWILIO_TOKEN,
    refused_port, signed_form_post, studio_function, taskrouter_callback,
};
use serde_json::{Value, json};

const DEADLINE_MS: u64 = 800;
const PROFILE_TIMEOUT_MS: u64 = 400;
/// Room for process scheduling on a busy 2-core machine; far below any stand-in's delay.
const SLACK_MS: u64 = 500;

/// A Segment that answers (or fails to) in one particular way.
enum Segment {
    Http(StandIn),
    Raw(RawStandIn),
    Refused(String),
}

impl Segment {
    async fn start(fault: &Fault) -> Self {
        match fault {
            Fault::Reply(reply) => Segment::Http(StandIn::always(reply.clone()).await),
            Fault::Raw(misbehaviour) => Segment::Raw(RawStandIn::start(*misbehaviour).await),
            Fault::Refused => {
                Segment::Refused(format!("http://127.0.0.1:{}", refused_port().await))
            }
        }
    }

    fn url(&self) -> String {
        match self {
            Segment::Http(stand_in) => stand_in.url(),
            Segment::Raw(raw) => raw.url(),
            Segment::Refused(url) => url.clone(),
        }
    }
}

enum Fault {
    Reply(Reply),
    Raw(Misbehaviour),
    Refused,
}

fn studio_request() -> Value {
    signed_form_post(TWILIO_TOKEN, &[("From", "+15555550100")])
}

fn profile_faults() -> Vec<(&'static str, Fault, Expected)> {
    let traits = || Reply::traits(json!({"docs_last_2_days": 3}));
    vec![
        (
            "slow, just under the request timeout",
            Fault::Reply(traits().after(Duration::from_millis(PROFILE_TIMEOUT_MS - 150))),
            Expected::Answered,
        ),
        (
            "slow, just over the request timeout",
            Fault::Reply(traits().after(Duration::from_millis(PROFILE_TIMEOUT_MS + 150))),
            Expected::Failed(504, "upstream_timeout"),
        ),
        (
            "hangs past the deadline",
            Fault::Reply(traits().after(Duration::from_secs(10))),
            Expected::Failed(504, "upstream_timeout"),
        ),
        (
            "500",
            Fault::Reply(Reply::json(500, json!({"error": {"code": "internal"}}))),
            Expected::Failed(502, "upstream_error"),
        ),
        (
            "503",
            Fault::Reply(Reply::raw(503, "Service Unavailable")),
            Expected::Failed(502, "upstream_error"),
        ),
        (
            "429 with a Retry-After past the deadline",
            Fault::Reply(
                Reply::json(429, json!({"error": {"code": "rate_limit_error"}}))
                    .header("retry-after", "5"),
            ),
            Expected::Failed(502, "rate_limited"),
        ),
        (
            "malformed JSON",
            Fault::Reply(Reply::raw(200, "{\"traits\": nope")),
            Expected::Failed(502, "upstream_error"),
        ),
        (
            "traits not an object",
            Fault::Reply(Reply::json(200, json!({"traits": [1, 2]}))),
            Expected::Failed(502, "upstream_error"),
        ),
        (
            "a truncated body",
            Fault::Raw(Misbehaviour::TruncatedBody),
            Expected::Failed(502, "upstream_error"),
        ),
        (
            "a truncated status line",
            Fault::Raw(Misbehaviour::TruncatedHead),
            Expected::Failed(502, "upstream_error"),
        ),
        (
            "a connection reset",
            Fault::Raw(Misbehaviour::Reset),
            Expected::Failed(502, "upstream_error"),
        ),
        (
            "a refused connection",
            Fault::Refused,
            Expected::Failed(502, "upstream_error"),
        ),
        (
            "401, a wrong token",
            Fault::Reply(Reply::json(
                401,
                json!({"error": {"code": "authentication_error", "message": "Unauthorized"}}),
            )),
            Expected::Failed(502, "upstream_auth"),
        ),
    ]
}

/// Nothing secret or personal in any log line: the Profile API token, the customer's number.
fn assert_clean_logs(name: &str, function: &Function) {
    for line in function.logs() {
        assert!(
            !line.contains(PROFILE_TOKEN) && !line.contains("5555550100"),
            "{name}: {line}"
        );
    }
}

#[derive(Clone, Copy)]
enum Expected {
    Answered,
    Failed(u64, &'static str),
}

fn limits() -> [(&'static str, &'static str); 2] {
    [
        ("DECISION_DEADLINE_MS", "800"),
        ("PROFILE_TIMEOUT_MS", "400"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn route_decision_always_answers_within_its_deadline() {
    for (name, fault, expected) in profile_faults() {
        let segment = Segment::start(&fault).await;
        let (runtime, function) =
            studio_function("route-decision", &segment.url(), &limits()).await;
        let answer = runtime.invoke(studio_request()).await;
        assert_eq!(answer.status(), 200, "{name}: {:#?}", answer.payload);
        let line = function.log_line("decision").await;
        let body = answer.body();
        match expected {
            Expected::Answered => assert_eq!(
                (body["transition"].clone(), body["fallback"].clone()),
                (json!("agent"), json!(false)),
                "{name}: {body}"
            ),
            Expected::Failed(..) => {
                assert_eq!(
                    (
                        body["transition"].clone(),
                        body["rule"].clone(),
                        body["fallback"].clone()
                    ),
                    (json!("agent"), json!("on_error"), json!(true)),
                    "{name}: {body}"
                );
                // The log line says it fell back, and why.
                assert_eq!(line["fallback"], true, "{name}: {line}");
                assert!(
                    ["failed", "deadline_exceeded"]
                        .contains(&line["lookup"].as_str().unwrap_or_default()),
                    "{name}: {line}"
                );
            }
        }
        assert!(
            answer.elapsed < Duration::from_millis(DEADLINE_MS + SLACK_MS),
            "{name}: answered after {:?}",
            answer.elapsed
        );
        assert_clean_logs(name, &function);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_lookup_answers_502_or_504_within_its_deadline() {
    for (name, fault, expected) in profile_faults() {
        let segment = Segment::start(&fault).await;
        let (runtime, function) =
            studio_function("profile-lookup", &segment.url(), &limits()).await;
        let answer = runtime.invoke(studio_request()).await;
        match expected {
            Expected::Answered => assert_eq!(
                (answer.status(), answer.body()["found"].clone()),
                (200, json!(true)),
                "{name}"
            ),
            Expected::Failed(status, code) => {
                assert_eq!(
                    (answer.status(), answer.body()["error"]["code"].clone()),
                    (status, json!(code)),
                    "{name}: {}",
                    answer.body()
                );
                let raw = answer.payload.to_string();
                assert!(
                    !raw.contains(PROFILE_TOKEN),
                    "{name}: the token leaked: {raw}"
                );
                function.log_line("lookup failed").await;
            }
        }
        assert_clean_logs(name, &function);
        assert!(
            answer.elapsed < Duration::from_millis(DEADLINE_MS + SLACK_MS),
            "{name}: answered after {:?}",
            answer.elapsed
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_pooled_connection_is_retried_once_not_failed() {
    // A reset on every connection: the one retry happens, then the fallback.
    let raw = RawStandIn::start(Misbehaviour::Reset).await;
    let (runtime, _function) = studio_function("route-decision", &raw.url(), &limits()).await;
    let answer = runtime.invoke(studio_request()).await;
    assert_eq!(answer.body()["fallback"], true);
    assert_eq!(raw.connections(), 2, "one attempt and one retry");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrap_up_ingest_acknowledges_only_what_segment_accepted() {
    let accepted = || Reply::json(200, json!({"success": true}));
    // (name, fault, acknowledged): a 5xx or a failure before an answer is retried until the
    // deadline, a 4xx is not (repeating it cannot help).
    let faults: Vec<(&str, Fault, bool)> = vec![
        ("accepted", Fault::Reply(accepted()), true),
        (
            "accepted after a delay",
            Fault::Reply(accepted().after(Duration::from_millis(250))),
            true,
        ),
        // A 200 is Segment's acceptance, whatever its body says.
        (
            "accepted with an odd body",
            Fault::Reply(Reply::raw(200, "not json")),
            true,
        ),
        (
            "slower than the deadline",
            Fault::Reply(accepted().after(Duration::from_secs(5))),
            false,
        ),
        ("500", Fault::Reply(Reply::json(500, json!({}))), false),
        (
            "429 with a Retry-After past the deadline",
            Fault::Reply(Reply::json(429, json!({})).header("retry-after", "5")),
            false,
        ),
        (
            "400 (refused)",
            Fault::Reply(Reply::json(400, json!({"error": "bad"}))),
            false,
        ),
        (
            "a truncated status line",
            Fault::Raw(Misbehaviour::TruncatedHead),
            false,
        ),
        ("a connection reset", Fault::Raw(Misbehaviour::Reset), false),
        ("a refused connection", Fault::Refused, false),
    ];
    for (name, fault, acknowledged) in faults {
        let segment = Segment::start(&fault).await;
        let runtime = RuntimeApi::start().await;
        let env = [
            ("SEGMENT_WRITE_KEY", "key".to_owned()),
            ("SEGMENT_TRACKING_API_URL", segment.url()),
            ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN.to_owned()),
            ("DELIVERY_DEADLINE_MS", DEADLINE_MS.to_string()),
        ];
        let function = Function::start("wrap-up-ingest", &runtime, &env).await;
        let answer = runtime
            .invoke(taskrouter_callback("voice-inbound-reservation-wrapup"))
            .await;
        if acknowledged {
            assert_eq!(answer.status(), 204, "{name}: {:#?}", answer.payload);
        } else {
            assert_eq!(answer.status(), 502, "{name}: {:#?}", answer.payload);
            assert_eq!(answer.body()["error"]["code"], "delivery_failed", "{name}");
            function.log_line("wrap-up delivery not accepted").await;
        }
        if let Segment::Http(stand_in) = &segment {
            let attempts = stand_in.count();
            match name {
                "500" => assert!(attempts >= 2, "{name}: retried, {attempts} attempt(s)"),
                "400 (refused)" => assert_eq!(attempts, 1, "{name}: not retried"),
                _ => {}
            }
        }
        // Each attempt is capped at 3 s; with the deadline that bounds the answer.
        assert!(
            answer.elapsed < Duration::from_millis(DEADLINE_MS + 3000 + SLACK_MS),
            "{name}: answered after {:?}",
            answer.elapsed
        );
    }
}
