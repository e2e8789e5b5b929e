//! The Lambda edge: what an invocation is (HTTP payload 2.0, a warm-up, a stream's batch,
//! or a direct invoke) and how an answer goes back (a payload 2.0 response for HTTP, bare
//! JSON otherwise). `event` reads the Runtime API's answer, `http` a payload 2.0 request and
//! its response, `json_list` a JSON list one item at a time, `stream` a Kinesis batch, and
//! `function_url` builds the event a Function URL request becomes.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::{Map, Value};

use crate::edge::fields::{self, FieldError, Fields};

mod event;
mod function_url;
mod http;
mod json_list;
mod stream;

pub use event::Event;
use event::QUERY_MAP;
pub use function_url::FunctionUrlRequest;
pub use http::{BodyError, HttpRequest, http_response, status_and_body};
pub use json_list::JsonList;
use stream::is_kinesis;
pub use stream::{StreamBatch, StreamRecord, is_stream};

/// One Lambda invocation, classified.
#[derive(Debug)]
pub enum Invocation {
    /// A Function URL or HTTP API request (payload format 2.0).
    Http(HttpRequest),
    /// An EventBridge schedule or `{"warmup": true}`: keep the instance warm, touch no data.
    WarmUp,
    /// A direct `Invoke` with what an HTTP body would hold (authorised by IAM): an object of
    /// fields, or a list of events for wrap-up-ingest.
    Direct(Input),
}

/// AWS AppConfig asking its Lambda validator whether a configuration version is good: the
/// content, base64 as AppConfig sends it, and the version. Recognised only by the edge's
/// `invoke`, ahead of [`Invocation::decode`]: answering it means failing the invocation.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigurationValidation {
    pub content: String,
    pub version: Option<String>,
}

/// What a request carries, once read: the fields of a form, query string or JSON object, or
/// a JSON list (an Event Streams batch).
#[derive(Debug)]
pub enum Input {
    Fields(Fields),
    List(JsonList),
    /// Records of a Kinesis stream, from a Lambda event source mapping.
    Stream(StreamBatch),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvocationError {
    #[error("the event is not an HTTP request, a warm-up or a JSON object of fields")]
    Unrecognised,
    #[error("the HTTP event is malformed: {0}")]
    MalformedHttp(String),
    #[error("the body is marked base64 but does not decode")]
    BadBase64,
    #[error("the body is {bytes} bytes; this function accepts at most {limit}")]
    BodyTooLarge { bytes: usize, limit: usize },
    #[error("the Kinesis event is malformed: {0}")]
    MalformedStream(String),
}

impl Invocation {
    /// Classifies an event. An HTTP body over `max_body_bytes` is refused before it is
    /// decoded from base64: a request too large to accept costs no copy of itself.
    pub fn decode(event: Value, max_body_bytes: usize) -> Result<Self, InvocationError> {
        let mut object = match event {
            Value::Object(object) => object,
            list @ Value::Array(_) => return Ok(Self::Direct(Input::from(list))),
            _ => return Err(InvocationError::Unrecognised),
        };
        if is_warm_up(&object) {
            return Ok(Self::WarmUp);
        }
        if is_kinesis(&object) {
            return Ok(Self::Direct(Input::Stream(StreamBatch(Value::Object(
                object,
            )))));
        }
        if object.contains_key("requestContext") {
            object.remove(QUERY_MAP);
            let request: ApiGatewayV2httpRequest = serde_json::from_value(Value::Object(object))
                .map_err(|e| InvocationError::MalformedHttp(e.to_string()))?;
            return HttpRequest::from_event(request, max_body_bytes).map(Self::Http);
        }
        Ok(Self::Direct(Input::Fields(object)))
    }
}

impl Input {
    /// The input as an object of fields; a list is not one.
    pub fn into_fields(self) -> Result<Fields, FieldError> {
        match self {
            Input::Fields(fields) => Ok(fields),
            Input::List(_) => Err(fields::problem(
                "body",
                "must be an object of fields, not a list",
            )),
            Input::Stream(_) => Err(fields::problem(
                "body",
                "must be an object of fields; this function reads no stream",
            )),
        }
    }
}

/// A direct invoke's JSON as an operation's input: an object is its fields, a list its
/// items (written back as text: a direct invoke is IAM's to authorise and Lambda's to size),
/// anything else an empty list.
impl From<Value> for Input {
    fn from(value: Value) -> Self {
        match value {
            Value::Object(fields) => Self::Fields(fields),
            list @ Value::Array(_) => {
                Self::List(JsonList::parse(list.to_string()).unwrap_or_else(|_| JsonList::empty()))
            }
            _ => Self::List(JsonList::empty()),
        }
    }
}

/// AppConfig's Lambda validator event: `applicationId`, `configurationProfileId`,
/// `configurationVersion`, `content` (base64) and `uri` (AppConfig's "configuration
/// validators" page).
pub fn configuration_validation(object: &Map<String, Value>) -> Option<ConfigurationValidation> {
    if !(object.contains_key("configurationProfileId") && object.contains_key("applicationId")) {
        return None;
    }
    let Some(Value::String(content)) = object.get("content") else {
        return None;
    };
    Some(ConfigurationValidation {
        content: content.clone(),
        version: object
            .get("configurationVersion")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
    })
}

fn is_warm_up(object: &Map<String, Value>) -> bool {
    object.get("warmup") == Some(&Value::Bool(true))
        || (object.get("source").and_then(Value::as_str) == Some("aws.events")
            && object.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::http::field_count;
    use super::*;

    const LIMIT: usize = 64 * 1024;

    /// The fields an input holds, as JSON (a list is shown as its items).
    fn shown(input: Input) -> Value {
        match input {
            Input::Fields(fields) => Value::Object(fields),
            Input::List(list) => {
                let mut items = Vec::new();
                list.for_each(|item| items.push(serde_json::from_str(item.get()).unwrap()));
                Value::Array(items)
            }
            Input::Stream(batch) => batch.0,
        }
    }

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/aws/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn http(invocation: Invocation) -> HttpRequest {
        match invocation {
            Invocation::Http(request) => request,
            other => panic!("expected HTTP, got {other:?}"),
        }
    }

    fn post(content_type: &str, body: &str, base64: bool) -> Value {
        let mut event = fixture("example-apigw-v2-request-no-authorizer.json");
        event["requestContext"]["http"]["method"] = json!("POST");
        event["headers"]["content-type"] = json!(content_type);
        event["body"] = json!(if base64 {
            STANDARD.encode(body)
        } else {
            body.to_owned()
        });
        event["isBase64Encoded"] = json!(base64);
        event
    }

    #[test]
    fn the_http_api_fixture_is_an_http_request() {
        // GIVEN the payload 2.0 example aws_lambda_events ships
        let request = http(
            Invocation::decode(
                fixture("example-apigw-v2-request-no-authorizer.json"),
                LIMIT,
            )
            .unwrap(),
        );
        // THEN the parts used for signatures and routing are there
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.domain_name,
            "aaaaaaaaaa.execute-api.us-west-2.amazonaws.com"
        );
        assert_eq!(request.raw_path, "/");
        assert!(request.body.is_empty());
        assert_eq!(shown(request.into_payload(LIMIT).unwrap()), json!({}));
    }

    #[test]
    fn the_iam_and_multi_value_fixtures_decode() {
        let iam =
            http(Invocation::decode(fixture("example-apigw-v2-request-iam.json"), LIMIT).unwrap());
        assert_eq!(iam.raw_path, "/my/path");
        let multi = http(
            Invocation::decode(
                fixture("example-apigw-v2-request-multi-value-parameters.json"),
                LIMIT,
            )
            .unwrap(),
        );
        assert!(multi.query_field_count() > 0);
    }

    #[test]
    fn scheduled_events_and_warmup_json_are_warm_ups() {
        assert!(matches!(
            Invocation::decode(fixture("example-eventbridge-schedule.json"), LIMIT),
            Ok(Invocation::WarmUp)
        ));
        assert!(matches!(
            Invocation::decode(json!({"warmup": true}), LIMIT),
            Ok(Invocation::WarmUp)
        ));
        // Another EventBridge event is not a warm-up; it is handled as fields (and will be refused).
        assert!(matches!(
            Invocation::decode(
                json!({"source": "aws.events", "detail-type": "EC2 State Change"}),
                LIMIT
            ),
            Ok(Invocation::Direct(Input::Fields(_)))
        ));
    }

    #[test]
    fn direct_invokes_are_their_fields() {
        let Ok(Invocation::Direct(Input::Fields(fields))) =
            Invocation::decode(json!({"From": "+15555550100"}), LIMIT)
        else {
            panic!("expected a direct invoke");
        };
        assert_eq!(fields["From"], "+15555550100");
        // A list is a direct invoke too: an Event Streams batch sent straight to wrap-up-ingest.
        assert!(matches!(
            Invocation::decode(json!([{"a": 1}]), LIMIT),
            Ok(Invocation::Direct(Input::List(_)))
        ));
        assert_eq!(
            Invocation::decode(json!("x"), LIMIT).err(),
            Some(InvocationError::Unrecognised)
        );
    }

    #[test]
    fn a_base64_form_body_is_decoded() {
        let body = "From=whatsapp%3A%2B15555550100&Body=Hi+there&channel=whatsapp";
        let request = http(
            Invocation::decode(post("application/x-www-form-urlencoded", body, true), LIMIT)
                .unwrap(),
        );
        let fields = shown(request.into_payload(LIMIT).unwrap());
        assert_eq!(fields["From"], "whatsapp:+15555550100");
        assert_eq!(fields["Body"], "Hi there");
    }

    #[test]
    fn a_plain_json_body_is_decoded_and_query_fields_merge_under_it() {
        let mut event = post(
            "application/json; charset=utf-8",
            r#"{"From": "+15555550100", "traits": {"vip": true}}"#,
            false,
        );
        event["rawQueryString"] = json!("channel=sms&From=ignored&bodySHA256=abc");
        let fields = shown(
            http(Invocation::decode(event, LIMIT).unwrap())
                .into_payload(LIMIT)
                .unwrap(),
        );
        assert_eq!(fields["From"], "+15555550100");
        assert_eq!(fields["channel"], "sms");
        assert_eq!(fields["traits"], json!({"vip": true}));
        assert!(fields.get("bodySHA256").is_none());
    }

    #[test]
    fn a_get_query_string_is_decoded() {
        let mut event = fixture("example-apigw-v2-request-no-authorizer.json");
        event["rawQueryString"] = json!("phone=%2B15555550100&include=a%2Cb");
        let fields = shown(
            http(Invocation::decode(event, LIMIT).unwrap())
                .into_payload(LIMIT)
                .unwrap(),
        );
        assert_eq!(fields["phone"], "+15555550100");
        assert_eq!(fields["include"], "a,b");
    }

    #[test]
    fn bad_bodies_are_reported() {
        let bad_json =
            http(Invocation::decode(post("application/json", "{nope", false), LIMIT).unwrap());
        assert!(matches!(
            bad_json.into_payload(LIMIT),
            Err(BodyError::Json(_))
        ));
        let bad_list =
            http(Invocation::decode(post("application/json", "[1,", false), LIMIT).unwrap());
        assert!(matches!(
            bad_list.into_payload(LIMIT),
            Err(BodyError::Json(_))
        ));
        let scalar =
            http(Invocation::decode(post("application/json", "42", false), LIMIT).unwrap());
        assert_eq!(
            scalar.into_payload(LIMIT).err(),
            Some(BodyError::NotAnObjectOrList)
        );
        let list = http(
            Invocation::decode(post("application/json", "[{\"a\": 1}]", false), LIMIT).unwrap(),
        );
        assert_eq!(shown(list.into_payload(LIMIT).unwrap()), json!([{"a": 1}]));
        let mut bad_base64 = post("application/json", "{}", false);
        bad_base64["body"] = json!("***");
        bad_base64["isBase64Encoded"] = json!(true);
        assert_eq!(
            Invocation::decode(bad_base64, LIMIT).err(),
            Some(InvocationError::BadBase64)
        );
        let mut no_context_http = post("application/json", "{}", false);
        no_context_http["requestContext"] = json!({"http": {}});
        assert!(matches!(
            Invocation::decode(no_context_http, LIMIT),
            Err(InvocationError::MalformedHttp(_))
        ));
    }

    #[test]
    fn responses_are_payload_2_0_json() {
        let response = http_response(
            400,
            Some(&json!({"error": {"code": "x", "message": "y"}})),
            &[],
        );
        assert_eq!(response["statusCode"], 400);
        assert_eq!(response["headers"]["content-type"], "application/json");
        assert_eq!(
            serde_json::from_str::<Value>(response["body"].as_str().unwrap()).unwrap()["error"]["code"],
            "x"
        );
        assert_eq!(response["isBase64Encoded"], false);
        let empty = http_response(204, None, &[]);
        assert_eq!(empty["statusCode"], 204);
        assert!(empty.get("body").is_none());
    }

    #[test]
    fn a_gets_body_is_never_read() {
        // GIVEN a GET whose URL names one customer and whose body names another
        let mut event = fixture("example-apigw-v2-request-no-authorizer.json");
        event["rawQueryString"] = json!("From=%2B15555550100");
        event["headers"]["content-type"] = json!("application/json");
        event["body"] = json!(r#"{"identifier": "email:victim@example.com"}"#);
        let request = http(Invocation::decode(event, LIMIT).unwrap());
        // THEN only the query string is read
        assert!(request.has_body());
        assert_eq!(
            shown(request.into_payload(LIMIT).unwrap()),
            json!({"From": "+15555550100"})
        );
    }

    #[test]
    fn a_body_over_the_limit_is_refused_before_it_is_decoded() {
        let body = "a".repeat(LIMIT + 10);
        for base64 in [true, false] {
            let error = Invocation::decode(
                post("application/x-www-form-urlencoded", &body, base64),
                LIMIT,
            )
            .unwrap_err();
            assert!(
                matches!(error, InvocationError::BodyTooLarge { limit: LIMIT, .. }),
                "{error:?}"
            );
        }
        assert!(
            Invocation::decode(
                post(
                    "application/x-www-form-urlencoded",
                    &"a".repeat(LIMIT),
                    true
                ),
                LIMIT
            )
            .is_ok()
        );
    }

    #[test]
    fn fields_are_counted_without_decoding() {
        assert_eq!(field_count(b""), 0);
        assert_eq!(field_count(b"a=1&b=2&&c"), 3);
        assert_eq!(field_count(b"&&&"), 0);
        let mut event = post("application/x-www-form-urlencoded", "a=1&b=2", false);
        event["rawQueryString"] = json!("x=1&y&z=");
        let request = http(Invocation::decode(event, LIMIT).unwrap());
        assert_eq!(
            (request.query_field_count(), request.form_field_count()),
            (3, 2)
        );
        let json =
            http(Invocation::decode(post("application/json", "{\"a\":1}", false), LIMIT).unwrap());
        assert_eq!(json.form_field_count(), 0);
    }

    #[test]
    fn a_kinesis_event_is_a_stream_of_records() {
        // GIVEN the Kinesis event aws_lambda_events ships as an example
        let Ok(Invocation::Direct(Input::Stream(batch))) =
            Invocation::decode(fixture("example-kinesis-event.json"), LIMIT)
        else {
            panic!("a stream");
        };
        // THEN its records come out in order, data decoded
        let records = batch.records().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0].sequence_number,
            "49568167373333333333333333333333333333333333333333333333"
        );
        assert_eq!(records[0].data.as_deref(), Some(&b"Hello World"[..]));
        // AND an event that only looks like one is not
        assert!(matches!(
            Invocation::decode(json!({"Records": [{"eventSource": "aws:sqs"}]}), LIMIT),
            Ok(Invocation::Direct(Input::Fields(_)))
        ));
        let broken =
            json!({"Records": [{"eventSource": "aws:kinesis", "kinesis": {"data": "***"}}]});
        let Ok(Invocation::Direct(Input::Stream(batch))) = Invocation::decode(broken, LIMIT) else {
            panic!("a stream");
        };
        assert!(matches!(
            batch.records(),
            Err(InvocationError::MalformedStream(_))
        ));
    }
}
