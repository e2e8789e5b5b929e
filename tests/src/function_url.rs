//! A Function URL in front of a function binary: real HTTP on 127.0.0.1, turned into the
//! payload 2.0 event Lambda would deliver (the sandbox's own translation), answered through
//! a [`RuntimeApi`] by the real binary. For clients that must speak HTTP themselves: a
//! challenge-first Basic client, Twilio's own request validator as the signer.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::any;

use crate::{RuntimeApi, serve};

pub struct FunctionUrl {
    pub addr: SocketAddr,
}

impl FunctionUrl {
    pub async fn start(runtime: Arc<RuntimeApi>) -> Self {
        let router = Router::new()
            .route("/", any(invoke))
            .route("/{*rest}", any(invoke))
            .with_state(runtime);
        Self {
            addr: serve(router).await,
        }
    }

    /// `http://127.0.0.1:<port>`, what `TWILIO_WEBHOOK_BASE_URL` must say for signatures.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn invoke(
    State(runtime): State<Arc<RuntimeApi>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let event = sandbox::lambda_urls::payload_v2(
        &method,
        uri.path(),
        uri.query().unwrap_or_default(),
        &headers,
        &body,
    );
    sandbox::lambda_urls::to_http(runtime.invoke(event).await.payload)
}
