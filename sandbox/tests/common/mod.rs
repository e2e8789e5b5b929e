//! Shared by the sandbox's tests: start the real servers on free loopback ports, talk HTTP.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sandbox::{Options, Running};
use serde_json::Value;
use studio_router::adapters::http_client::HttpClient;

pub const TOKEN: &str = "test-profile-token";
pub const SPACE: &str = "spa_test";

pub fn options() -> Options {
    Options {
        functions_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        segment_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        data: None,
        token: TOKEN.into(),
        space_id: SPACE.into(),
        seed_demo: false,
        ..Options::default()
    }
}

pub async fn start(options: Options) -> Running {
    sandbox::start(options).await.expect("sandbox starts")
}

/// A database file of this test's own, removed when dropped.
pub struct TempDb(pub PathBuf);

impl TempDb {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sandbox-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir.join("segment.sqlite"))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub struct Http {
    client: HttpClient,
}

pub struct Response {
    pub status: u16,
    pub body: Value,
}

impl Http {
    pub fn new() -> Self {
        Self {
            client: HttpClient::new(Duration::from_secs(2)),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Response {
        let response = request
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        Response {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// A Tracking API call with the write key as Basic auth.
    pub async fn track(&self, running: &Running, path: &str, body: &Value) -> Response {
        let client = self.client.client().expect("client");
        self.send(
            client
                .post(format!("{}{path}", running.segment_url()))
                .header(
                    "authorization",
                    format!("Basic {}", STANDARD.encode("any-write-key:")),
                )
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn post_raw(&self, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
        let client = self.client.client().expect("client");
        let mut request = client.post(url).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// A Profile API GET of `profiles/{identifier}/{rest}` with the token.
    pub async fn profile(&self, running: &Running, identifier: &str, rest: &str) -> Response {
        self.profile_as(running, TOKEN, identifier, rest).await
    }

    pub async fn profile_as(
        &self,
        running: &Running,
        token: &str,
        identifier: &str,
        rest: &str,
    ) -> Response {
        self.profile_in(running, SPACE, token, identifier, rest)
            .await
    }

    /// The same in any space.
    pub async fn profile_in(
        &self,
        running: &Running,
        space: &str,
        token: &str,
        identifier: &str,
        rest: &str,
    ) -> Response {
        let client = self.client.client().expect("client");
        let url = format!(
            "{}/v1/spaces/{space}/collections/users/profiles/{identifier}/{rest}",
            running.segment_url()
        );
        self.send(client.get(url).header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{token}:"))),
        ))
        .await
    }

    /// Traits of a profile (limit 200), as a map.
    pub async fn traits(&self, running: &Running, identifier: &str) -> Value {
        let reply = self.profile(running, identifier, "traits?limit=200").await;
        assert_eq!(reply.status, 200, "{identifier}: {}", reply.body);
        reply.body["traits"].clone()
    }

    /// A form POST to one of the functions' URLs.
    pub async fn function(&self, running: &Running, name: &str, form: &[(&str, &str)]) -> Response {
        self.post_form(&running.function_url(name), form).await
    }

    /// A form POST, as Studio sends it.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Response {
        let client = self.client.client().expect("client");
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(
            client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }
}

impl Http {
    /// A GET of the console's API (`path` from `/api/`), as its page makes it.
    pub async fn console(&self, running: &Running, path: &str) -> Response {
        let client = self.client.client().expect("client");
        self.send(client.get(format!("{}api/{path}", running.console_url())))
            .await
    }

    /// A GET with these headers.
    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Response {
        let client = self.client.client().expect("client");
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// A GET's status, headers and text.
    pub async fn get_text(&self, url: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let client = self.client.client().expect("client");
        let response = client.get(url).send().await.expect("request sent");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.expect("text"))
    }

    /// A POST of JSON to the console's API, as its page makes it.
    pub async fn console_post(&self, running: &Running, path: &str, body: &Value) -> Response {
        self.post_raw(
            &format!("{}api/{path}", running.console_url()),
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
    }
}

/// An RFC 3339 time `hours` ago.
pub fn hours_ago(hours: f64) -> String {
    let at = std::time::SystemTime::now() - Duration::from_secs_f64(hours * 3600.0);
    humantime::format_rfc3339_millis(at).to_string()
}
