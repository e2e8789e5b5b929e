//! Events as Lambda delivers them: payload 2.0 requests (Function URL), signed as Twilio
//! signs them, and the fixtures TaskRouter and Event Streams payloads are built from.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;
use sha2::Digest as _;

use studio_router::edge::invocation::FunctionUrlRequest;

use crate::TWILIO_TOKEN;

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
    FunctionUrlRequest {
        method,
        domain: FUNCTION_URL_HOST,
        path: "/",
        query,
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        body: body.map(str::as_bytes),
        base64,
    }
    .event()
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

/// A TaskRouter event callback as TaskRouter posts it: the fields of
/// `fixtures/taskrouter/<name>.json`, form-encoded and signed with [`TWILIO_TOKEN`].
pub fn taskrouter_callback(name: &str) -> Value {
    signed_fields(&fixture(&format!("taskrouter/{name}.json")))
}

/// A JSON object of text fields as a signed form post (TaskRouter's callbacks are forms).
pub fn signed_fields(fields: &Value) -> Value {
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

/// The lowercase hex SHA-256 of a body, as `bodySHA256` carries it.
pub fn body_sha256(body: &str) -> String {
    sha2::Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A JSON POST signed as Twilio signs one (Studio's "Application/JSON" request, an Event
/// Streams webhook delivery): `bodySHA256` in the URL, the signature over the URL alone.
pub fn signed_json_post(auth_token: &str, query: &str, body: &str) -> Value {
    let hash = format!("bodySHA256={}", body_sha256(body));
    let query = if query.is_empty() {
        hash
    } else {
        format!("{query}&{hash}")
    };
    let signature = twilio_signature(
        auth_token,
        &format!("https://{FUNCTION_URL_HOST}/?{query}"),
        &[],
    );
    http_event(
        "POST",
        &query,
        &[
            ("content-type", "application/json"),
            ("x-twilio-signature", &signature),
        ],
        Some(body),
        false,
    )
}

/// An Event Streams webhook delivery of `body` (a CloudEvent or a list of them), signed
/// with [`TWILIO_TOKEN`].
pub fn event_streams_delivery(body: &Value) -> Value {
    signed_json_post(TWILIO_TOKEN, "", &body.to_string())
}

/// A Kinesis event as a Lambda event source mapping delivers it (the shape of
/// `aws_lambda_events`' own `example-kinesis-event.json`): one record per `data`, its
/// sequence number [`sequence_number`]`(i)`.
pub fn kinesis_event(data: &[String]) -> Value {
    let template = crate::fixture("aws/example-kinesis-event.json");
    let record = template["Records"][0].clone();
    let records: Vec<Value> = data
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let mut record = record.clone();
            record["kinesis"]["data"] = Value::String(STANDARD.encode(data));
            record["kinesis"]["sequenceNumber"] = Value::String(sequence_number(i));
            record["kinesis"]["partitionKey"] = Value::String(format!("WT{i:032}"));
            record["eventID"] =
                Value::String(format!("shardId-000000000000:{}", sequence_number(i)));
            record
        })
        .collect();
    serde_json::json!({"Records": records})
}

/// The sequence number of the `i`th record of a [`kinesis_event`].
pub fn sequence_number(i: usize) -> String {
    format!("4956816737333333333333333333333333333333333333{i:010}")
}
