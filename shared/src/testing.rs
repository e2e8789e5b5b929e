//! What the library's own tests share: events as a Function URL delivers them, signed as
//! Twilio signs them, and edges built over the in-memory adapters.

use serde_json::Value;

use crate::adapters::secrets::{Secret, SecretCell};
use crate::edge::auth::{Authenticator, sign};
use crate::edge::invocation::FunctionUrlRequest;
pub use crate::edge::invocation::status_and_body;

pub const TOKEN: &str = "twilio-auth-token";
pub const SHARED_SECRET: &str = "proxy-secret";
pub const HOST: &str = "abc.lambda-url.us-east-1.on.aws";

/// Twilio signatures on with [`TOKEN`]; the shared secret too when `shared` is set.
pub fn authenticator(shared: bool) -> Authenticator {
    let given = |name, value| Secret::new(value).map(|secret| SecretCell::given(name, secret));
    Authenticator::new(
        given("TWILIO_AUTH_TOKEN", TOKEN),
        None,
        shared
            .then(|| given("PROXY_SHARED_SECRET", SHARED_SECRET))
            .flatten(),
        false,
    )
}

/// A request to the function's URL.
pub fn event(method: &str, query: &str, headers: &[(&str, &str)], body: Option<&str>) -> Value {
    FunctionUrlRequest {
        method,
        domain: HOST,
        path: "/",
        query,
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        body: body.map(str::as_bytes),
        base64: true,
    }
    .event()
}

/// A form POST signed with [`TOKEN`], as Studio and TaskRouter send one.
pub fn signed_form(params: &[(&str, &str)]) -> Value {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let signature = sign(TOKEN, &format!("https://{HOST}/"), params);
    event(
        "POST",
        "",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-twilio-signature", &signature),
        ],
        Some(&body),
    )
}

/// A GET signed with [`TOKEN`] (over its URL alone).
pub fn signed_get(query: &str, body: Option<&str>) -> Value {
    let signature = sign::<&str, &str>(TOKEN, &format!("https://{HOST}/?{query}"), &[]);
    event("GET", query, &[("x-twilio-signature", &signature)], body)
}

/// The error code of a payload 2.0 response.
pub fn code(response: &Value) -> (u64, String) {
    let (status, body) = status_and_body(response);
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}
