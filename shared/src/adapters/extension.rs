//! The extensions a function reads on localhost during INVOKE: the AWS Parameters and Secrets
//! Lambda Extension (secrets, Parameter Store parameters) and the AppConfig Agent (the rules).
//! One client serves them all: a GET, with the extension's token header where it wants one,
//! within [`FETCH_TIMEOUT`], its body read by [`read_bounded`].
//!
//! The body is read a chunk at a time and refused as soon as it passes the extension's limit,
//! whatever its framing (`Content-Length`, chunked, or ended by closing the connection): an
//! answer that never ends costs the limit in memory, never the whole answer. A broken or
//! hostile extension once took a function past 200 MB with a 96 MB answer.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::adapters::http_client::{HttpClient, root_cause, with_query};

#[cfg(test)]
pub(crate) mod stand_in;

/// One request to an extension. On a cache miss the extension itself calls AWS, which it
/// usually does in tens of milliseconds.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// The most a Parameters and Secrets extension answer may hold. Secrets Manager keeps at
/// most 65,536 bytes a secret and Parameter Store 8 KB an advanced parameter (4 KB a
/// standard one); the answer is that value as a JSON string, escaped (a quote or backslash
/// takes two bytes, a control character six: 384 KiB for the largest secret at worst),
/// beside its ARN, name, version and dates. 1 MiB holds any real answer with room to spare.
pub const MAX_SECRETS_ANSWER_BYTES: usize = 1024 * 1024;

/// The header the Parameters and Secrets extension requires, holding `AWS_SESSION_TOKEN`.
const SESSION_TOKEN_HEADER: &str = "X-Aws-Parameters-Secrets-Token";

/// Why an extension's answer cannot be had. Each says which extension, and what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error("{0}")]
    Client(String),
    #[error("{extension} did not answer ({cause}); is its layer attached?")]
    NoAnswer {
        extension: &'static str,
        cause: String,
    },
    #[error(
        "{extension} answered HTTP {status} for {asked}; check the name and the function's permission to read it"
    )]
    Refused {
        extension: &'static str,
        status: u16,
        asked: String,
    },
    #[error("the answer of {extension} was cut short: {cause}")]
    CutShort {
        extension: &'static str,
        cause: String,
    },
    #[error(
        "the answer of {extension} is over its limit of {limit} bytes; it was not read further"
    )]
    TooLarge {
        extension: &'static str,
        limit: usize,
    },
    #[error("unexpected answer from {extension}: {problem}")]
    Unexpected {
        extension: &'static str,
        problem: String,
    },
}

/// An extension's successful answer.
#[derive(Debug)]
pub struct Answer {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// One extension on localhost.
pub struct LocalExtension {
    /// What messages call it: "the Parameters and Secrets extension".
    name: &'static str,
    base_url: String,
    session_token: Option<String>,
    http: HttpClient,
    timeout: Duration,
    limit: usize,
}

impl LocalExtension {
    /// The Parameters and Secrets extension on `port`, given Lambda's `AWS_SESSION_TOKEN`.
    pub fn parameters_and_secrets(
        port: u64,
        session_token: Option<String>,
        http: HttpClient,
    ) -> Self {
        Self {
            name: "the Parameters and Secrets extension",
            base_url: format!("http://localhost:{port}"),
            session_token,
            http,
            timeout: FETCH_TIMEOUT,
            limit: MAX_SECRETS_ANSWER_BYTES,
        }
    }

    /// The AppConfig Agent on `port`, whose answers may hold at most `limit` bytes.
    pub fn appconfig(port: u64, http: HttpClient, limit: usize) -> Self {
        Self {
            name: "the AppConfig extension",
            base_url: format!("http://localhost:{port}"),
            session_token: None,
            http,
            timeout: FETCH_TIMEOUT,
            limit,
        }
    }

    /// The same extension, each request cut at `timeout` (tests).
    #[cfg(test)]
    pub(crate) fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `GET path?query`: the answer of a 2xx, read whole but never past the limit.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Answer, ExtensionError> {
        let extension = self.name;
        let client = self
            .http
            .client()
            .map_err(|e| ExtensionError::Client(e.to_string()))?;
        let mut request = client
            .get(with_query(&self.url(path), query))
            .timeout(self.timeout);
        if let Some(token) = &self.session_token {
            request = request.header(SESSION_TOKEN_HEADER, token);
        }
        let response = request.send().await.map_err(|e| ExtensionError::NoAnswer {
            extension,
            cause: root_cause(&e),
        })?;
        let status = response.status();
        if !status.is_success() {
            // What was asked for: the secret id or parameter name, else the path.
            let asked = query.last().map_or(path, |(_, value)| value).to_owned();
            return Err(ExtensionError::Refused {
                extension,
                status: status.as_u16(),
                asked,
            });
        }
        let headers = response.headers().clone();
        let body = read_bounded(response, self.limit)
            .await
            .map_err(|problem| match problem {
                Unread::TooLarge => ExtensionError::TooLarge {
                    extension,
                    limit: self.limit,
                },
                Unread::Cut(cause) => ExtensionError::CutShort { extension, cause },
            })?;
        Ok(Answer { headers, body })
    }

    /// [`Self::get`], the answer parsed as JSON.
    pub async fn get_json(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, ExtensionError> {
        let answer = self.get(path, query).await?;
        serde_json::from_slice(&answer.body).map_err(|e| self.unexpected(e.to_string()))
    }

    /// An answer this extension should not have given.
    pub fn unexpected(&self, problem: String) -> ExtensionError {
        ExtensionError::Unexpected {
            extension: self.name,
            problem,
        }
    }
}

/// Why a body was not read whole.
#[derive(Debug)]
enum Unread {
    TooLarge,
    Cut(String),
}

/// The body, a chunk at a time, refused as soon as it would pass `limit`: the chunks are as
/// large as the connection's read buffer, so at most the limit and one buffer are ever held.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, Unread> {
    // A declared length is believed only to refuse early, never to reserve memory.
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(Unread::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Unread::Cut(root_cause(&e)))?
    {
        if chunk.len() > limit - body.len() {
            return Err(Unread::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::stand_in::{Behaviour, Framing, LocalStandIn};
    use super::*;

    fn appconfig(stand_in: &LocalStandIn, limit: usize) -> LocalExtension {
        let http = HttpClient::new(Duration::from_secs(1));
        LocalExtension::appconfig(stand_in.port(), http, limit)
    }

    #[tokio::test]
    async fn an_answer_that_never_ends_is_read_up_to_the_limit_whatever_its_framing() {
        for framing in [Framing::Chunked, Framing::CloseDelimited, Framing::Length] {
            let stand_in = LocalStandIn::start(move |_| Behaviour::Endless(framing, 64 << 20));
            let error = appconfig(&stand_in, 256 * 1024)
                .get("/applications/a/environments/b/configurations/c", &[])
                .await
                .unwrap_err();
            assert_eq!(
                error,
                ExtensionError::TooLarge {
                    extension: "the AppConfig extension",
                    limit: 256 * 1024
                },
                "{framing:?}"
            );
            assert!(error.to_string().contains("262144 bytes"), "{error}");
            // What the stand-in got out before the client stopped reading: the limit, the
            // sockets' buffers, and nothing like the 64 MiB it had to send.
            assert!(
                stand_in.written() < 16 << 20,
                "{framing:?}: {}",
                stand_in.written()
            );
        }
    }

    #[tokio::test]
    async fn an_answer_at_the_limit_is_read_whole() {
        let body = format!("{{\"a\": \"{}\"}}", "x".repeat(1000));
        let answer = body.clone();
        let stand_in = LocalStandIn::start(move |_| Behaviour::Json(200, answer.clone()));
        let read = appconfig(&stand_in, body.len())
            .get("/x", &[])
            .await
            .unwrap();
        assert_eq!(read.body, body.as_bytes());
        let over = appconfig(&stand_in, body.len() - 1).get("/x", &[]).await;
        assert!(
            matches!(over, Err(ExtensionError::TooLarge { .. })),
            "{over:?}"
        );
    }

    #[tokio::test]
    async fn a_refusal_names_what_was_asked_and_the_token_goes_with_every_request() {
        let stand_in = LocalStandIn::start(|_| Behaviour::Json(400, "{}".into()));
        let http = HttpClient::new(Duration::from_secs(1));
        let extension =
            LocalExtension::parameters_and_secrets(stand_in.port(), Some("token".into()), http);
        let error = extension
            .get_json("/secretsmanager/get", &[("secretId", "studio-router/auth")])
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the Parameters and Secrets extension answered HTTP 400 for studio-router/auth; check the name and the function's permission to read it"
        );
        let heads = stand_in.heads();
        assert!(heads[0].starts_with("GET /secretsmanager/get?secretId=studio-router%2Fauth "));
        assert!(
            heads[0]
                .to_ascii_lowercase()
                .contains("x-aws-parameters-secrets-token: token")
        );
    }

    #[tokio::test]
    async fn an_extension_that_is_not_there_is_named_and_its_layer_suspected() {
        let stand_in = LocalStandIn::start(|_| Behaviour::Hang);
        let extension = appconfig(&stand_in, 1024).with_timeout(Duration::from_millis(100));
        let hung = extension.get("/x", &[]).await.unwrap_err();
        assert!(hung.to_string().contains("is its layer attached"), "{hung}");
    }
}
