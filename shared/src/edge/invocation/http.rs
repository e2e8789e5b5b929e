//! A payload 2.0 request (Function URL or HTTP API), read as far as the checks allow, and the
//! payload 2.0 response that answers it.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue, header::CONTENT_TYPE};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::{Input, InvocationError, JsonList};
use crate::edge::fields::Fields;

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

impl HttpRequest {
    pub(super) fn from_event(
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
            match crate::support::json_text::from_slice::<Value>(&self.body) {
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
pub(super) fn field_count(bytes: &[u8]) -> usize {
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
