//! A Function URL request as the payload 2.0 event Lambda delivers for it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::QUERY_MAP;

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
