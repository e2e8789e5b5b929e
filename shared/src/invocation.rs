//! The Lambda edge: what an invocation is (HTTP payload 2.0, a warm-up, or a direct invoke)
//! and how an answer goes back (a payload 2.0 response for HTTP, bare JSON otherwise).

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue, header::CONTENT_TYPE};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::fields::Fields;

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

/// An invocation's event as the Runtime API hands it over, read without
/// `queryStringParameters`. Function URLs and HTTP APIs send a query twice, as
/// `rawQueryString` and as that map; a 2 MB query of 200,000 short fields made the map alone
/// cost some 70 MB before any check could refuse it. The functions read only
/// `rawQueryString` (the text a signature covers, bounded before authentication), so the
/// map is skipped as it is read, never built.
#[derive(Debug)]
pub struct Event(pub Value);

impl<'de> serde::Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Skipping;
        impl<'de> serde::de::Visitor<'de> for Skipping {
            type Value = Value;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON event")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Value, A::Error> {
                let mut object = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == QUERY_MAP {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    } else {
                        object.insert(key, map.next_value()?);
                    }
                }
                Ok(Value::Object(object))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
                serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(Value::String(v.to_owned()))
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
        }
        deserializer.deserialize_any(Skipping).map(Self)
    }
}

/// The query as a map, in a payload 2.0 event: never read (see [`Event`]).
const QUERY_MAP: &str = "queryStringParameters";

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

/// A Kinesis event as an event source mapping delivers it, read only by a function that reads
/// a stream (the others answer that they do not, and never link the decoder).
#[derive(Debug)]
pub struct StreamBatch(Value);

/// One Kinesis record: its sequence number (how a partial batch response names it) and its
/// data, or `None` when the data is not base64 (a record that can never be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub sequence_number: String,
    pub data: Option<Vec<u8>>,
}

/// The parts of a Kinesis event the function reads. Each record's data is decoded on its
/// own, so that one record that is not base64 spoils only itself, not its batch.
#[derive(serde::Deserialize)]
struct KinesisEvent {
    #[serde(rename = "Records")]
    records: Vec<KinesisEnvelope>,
}

#[derive(serde::Deserialize)]
struct KinesisEnvelope {
    kinesis: KinesisRecord,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct KinesisRecord {
    sequence_number: String,
    data: String,
}

impl StreamBatch {
    /// The records, in the order the shard holds them. An event without a sequence number
    /// for every record cannot be answered record by record: it is an error.
    pub fn records(self) -> Result<Vec<StreamRecord>, InvocationError> {
        let event: KinesisEvent = serde_json::from_value(self.0)
            .map_err(|e| InvocationError::MalformedStream(e.to_string()))?;
        Ok(event
            .records
            .into_iter()
            .map(|KinesisEnvelope { kinesis }| StreamRecord {
                data: STANDARD.decode(kinesis.data.trim()).ok(),
                sequence_number: kinesis.sequence_number,
            })
            .collect())
    }
}

/// Whether an event is a stream's batch: `{"Records": [{"eventSource": "aws:kinesis", ...}]}`.
pub fn is_stream(event: &Value) -> bool {
    event.as_object().is_some_and(is_kinesis)
}

fn is_kinesis(object: &Map<String, Value>) -> bool {
    object
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first())
        .and_then(|record| record.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:kinesis")
}

/// A JSON list kept as its text and read one item at a time, each item borrowed from the text:
/// a large list never becomes a tree of JSON, nor a copy of its items.
#[derive(Debug)]
pub struct JsonList {
    text: String,
    len: usize,
}

impl JsonList {
    /// Checks that `text` is a JSON list, and counts its items. A list only Python or a
    /// browser would read (see [`crate::json_text`]) is kept as its repaired text.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        let mut len = 0;
        match each_item(&text, |_| len += 1) {
            Ok(()) => Ok(Self { text, len }),
            Err(error) => {
                let text = crate::json_text::repaired(&text).ok_or(error)?;
                len = 0;
                each_item(&text, |_| len += 1)?;
                Ok(Self { text, len })
            }
        }
    }

    /// How many items it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f` with each item's text, in order.
    pub fn for_each<'a>(&'a self, f: impl FnMut(&'a RawValue)) {
        // Checked by `parse`: reading it again cannot fail.
        let _ = each_item(&self.text, f);
    }
}

fn each_item<'a>(text: &'a str, f: impl FnMut(&'a RawValue)) -> Result<(), serde_json::Error> {
    use serde::Deserializer as _;

    struct Items<F>(F);
    impl<'de, F: FnMut(&'de RawValue)> serde::de::Visitor<'de> for Items<F> {
        type Value = ();
        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a JSON list")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            while let Some(item) = seq.next_element::<&'de RawValue>()? {
                (self.0)(item);
            }
            Ok(())
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    deserializer.deserialize_seq(Items(f))?;
    deserializer.end()
}

/// The parts of a payload 2.0 request the functions use.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub domain_name: String,
    pub raw_path: String,
    pub raw_query_string: String,
    pub headers: HeaderMap,
    /// The body as sent (base64 already decoded).
    pub body: Vec<u8>,
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

/// What the request body held, once parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("the JSON body does not parse: {0}")]
    Json(String),
    #[error("the JSON body must be an object or a list")]
    NotAnObjectOrList,
    #[error("the form body is not valid UTF-8")]
    NotUtf8,
    #[error(
        "the JSON object is {bytes} bytes; one request here is at most {limit} (send more as a list)"
    )]
    ObjectTooLarge { bytes: usize, limit: usize },
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

/// A direct invoke's JSON as an operation's input: an object is its fields, a list its
/// items (written back as text: a direct invoke is IAM's to authorise and Lambda's to size),
/// anything else an empty list.
impl From<Value> for Input {
    fn from(value: Value) -> Self {
        match value {
            Value::Object(fields) => Self::Fields(fields),
            list @ Value::Array(_) => {
                Self::List(JsonList::parse(list.to_string()).unwrap_or(JsonList {
                    text: "[]".into(),
                    len: 0,
                }))
            }
            _ => Self::List(JsonList {
                text: "[]".into(),
                len: 0,
            }),
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

impl HttpRequest {
    fn from_event(
        event: ApiGatewayV2httpRequest,
        max_body_bytes: usize,
    ) -> Result<Self, InvocationError> {
        let body = match event.body {
            None => Vec::new(),
            Some(text) if event.is_base64_encoded => {
                let text = text.trim();
                // What it decodes to, at most: 3 bytes for every 4 characters.
                let bytes = text.len() / 4 * 3;
                if bytes > max_body_bytes.saturating_add(3) {
                    return Err(InvocationError::BodyTooLarge {
                        bytes,
                        limit: max_body_bytes,
                    });
                }
                STANDARD
                    .decode(text.as_bytes())
                    .map_err(|_| InvocationError::BadBase64)?
            }
            Some(text) => text.into_bytes(),
        };
        if body.len() > max_body_bytes {
            return Err(InvocationError::BodyTooLarge {
                bytes: body.len(),
                limit: max_body_bytes,
            });
        }
        let context = event.request_context;
        Ok(Self {
            method: context.http.method.as_str().to_owned(),
            domain_name: context
                .domain_name
                .or_else(|| {
                    event
                        .headers
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_owned)
                })
                .unwrap_or_default(),
            raw_path: event.raw_path.unwrap_or_else(|| "/".to_owned()),
            raw_query_string: event.raw_query_string.unwrap_or_default(),
            headers: event.headers,
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
    }

    /// Whether the body holds anything but whitespace.
    pub fn has_body(&self) -> bool {
        !self.body.iter().all(u8::is_ascii_whitespace)
    }

    /// How many fields the query string names, counted without decoding anything.
    pub fn query_field_count(&self) -> usize {
        field_count(self.raw_query_string.as_bytes())
    }

    /// How many fields a form body names (zero for JSON), counted without decoding anything.
    pub fn form_field_count(&self) -> usize {
        if self.is_json() {
            0
        } else {
            field_count(&self.body)
        }
    }

    /// What the request carries: its fields (the query string's, then the body's on top,
    /// from a JSON object or a form), or the list a JSON array body holds. `bodySHA256`
    /// belongs to the signature, not to the request. A GET's body is never read: its
    /// signature covers only the URL.
    pub fn into_payload(self, max_object_bytes: usize) -> Result<Input, BodyError> {
        let mut fields = form_fields(self.raw_query_string.as_bytes());
        fields.remove("bodySHA256");
        if self.method == "GET" || !self.has_body() {
            return Ok(Input::Fields(fields));
        }
        if self.is_json() {
            let first = self.body.iter().find(|b| !b.is_ascii_whitespace());
            if first == Some(&b'[') {
                let text =
                    String::from_utf8(self.body).map_err(|e| BodyError::Json(e.to_string()))?;
                return JsonList::parse(text)
                    .map(Input::List)
                    .map_err(|e| BodyError::Json(e.to_string()));
            }
            // A JSON object becomes a tree of maps several times its size: only as large as
            // one of this function's requests can be.
            if self.body.len() > max_object_bytes {
                return Err(BodyError::ObjectTooLarge {
                    bytes: self.body.len(),
                    limit: max_object_bytes,
                });
            }
            match crate::json_text::from_slice::<Value>(&self.body) {
                Ok(Value::Object(body)) => fields.extend(body),
                Ok(_) => return Err(BodyError::NotAnObjectOrList),
                Err(e) => return Err(BodyError::Json(e.to_string())),
            }
        } else {
            std::str::from_utf8(&self.body).map_err(|_| BodyError::NotUtf8)?;
            fields.extend(form_fields(&self.body));
        }
        Ok(Input::Fields(fields))
    }
}

/// `a=1&b=2&&c` names three fields: the non-empty segments between `&`s.
fn field_count(bytes: &[u8]) -> usize {
    bytes
        .split(|b| *b == b'&')
        .filter(|s| !s.is_empty())
        .count()
}

fn form_fields(bytes: &[u8]) -> Fields {
    let mut fields = Map::new();
    for (name, value) in form_urlencoded::parse(bytes) {
        fields
            .entry(name.into_owned())
            .or_insert_with(|| Value::String(value.into_owned()));
    }
    fields
}

/// A Function URL request, as the payload 2.0 event Lambda delivers for it: how the sandbox
/// turns HTTP into an event, and how tests build one.
#[derive(Debug, Clone, Default)]
pub struct FunctionUrlRequest<'a> {
    pub method: &'a str,
    /// The host the caller called (`<id>.lambda-url.<region>.on.aws`).
    pub domain: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Lowercase names; a name sent twice joined with commas, as Lambda does.
    pub headers: Vec<(String, String)>,
    pub body: Option<&'a [u8]>,
    /// Deliver the body base64-encoded, as Lambda does for a binary body (and often a form).
    pub base64: bool,
}

impl FunctionUrlRequest<'_> {
    pub fn event(&self) -> Value {
        let mut headers = Map::new();
        headers.insert("host".into(), Value::String(self.domain.to_owned()));
        for (name, value) in &self.headers {
            headers.insert(name.to_ascii_lowercase(), Value::String(value.clone()));
        }
        let prefix = self.domain.split('.').next().unwrap_or_default();
        let mut event = serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": headers,
            "requestContext": {
                "accountId": "anonymous",
                "apiId": prefix,
                "domainName": self.domain,
                "domainPrefix": prefix,
                "http": {"method": self.method, "path": self.path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": ""},
                "requestId": "local",
                "routeKey": "$default",
                "stage": "$default",
                "timeEpoch": 0
            },
            "isBase64Encoded": false
        });
        // Lambda sends the query a second time as a map, a repeated name's values joined
        // with commas ("Invoking Lambda function URLs", request payload format).
        if !self.query.is_empty() {
            let mut parameters = Map::new();
            for (name, value) in form_urlencoded::parse(self.query.as_bytes()) {
                match parameters.entry(name.into_owned()) {
                    serde_json::map::Entry::Occupied(mut seen) => {
                        if let Value::String(values) = seen.get_mut() {
                            values.push(',');
                            values.push_str(&value);
                        }
                    }
                    serde_json::map::Entry::Vacant(new) => {
                        new.insert(Value::String(value.into_owned()));
                    }
                }
            }
            event[QUERY_MAP] = Value::Object(parameters);
        }
        if let Some(body) = self.body {
            match std::str::from_utf8(body) {
                Ok(text) if !self.base64 => event["body"] = Value::String(text.to_owned()),
                _ => {
                    event["body"] = Value::String(STANDARD.encode(body));
                    event["isBase64Encoded"] = Value::Bool(true);
                }
            }
        }
        event
    }
}

/// The status and JSON body of a payload 2.0 response (`Null` when it has none): how tests
/// and tools read what [`http_response`] wrote.
pub fn status_and_body(response: &Value) -> (u64, Value) {
    let status = response["statusCode"].as_u64().unwrap_or(0);
    let body = response["body"]
        .as_str()
        .and_then(|body| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

/// A payload 2.0 response with a JSON body (or none, for 204) and any extra headers.
pub fn http_response(status: u16, body: Option<&Value>, headers: &[(HeaderName, &str)]) -> Value {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    if let Some(body) = body {
        response
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response.body = Some(Body::Text(body.to_string()));
    }
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers.insert(name.clone(), value);
        }
    }
    serde_json::to_value(response).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
