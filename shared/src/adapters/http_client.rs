//! The one HTTPS client a function instance uses, built on first need.
//!
//! Building it costs milliseconds (TLS configuration), so paths that never call out (warm-up,
//! inline traits, refusals) never pay for it, and a cold start does not wait for it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Connections idle longer than this are not reused: after a Lambda freeze the peer may have
/// closed them, and a request on a dead connection costs a round trip to find out.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, thiserror::Error)]
#[error("the HTTPS client could not be built: {0}")]
pub struct ClientError(String);

#[derive(Clone)]
pub struct HttpClient {
    client: Arc<OnceLock<reqwest::Client>>,
    connect_timeout: Duration,
}

impl HttpClient {
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            client: Arc::new(OnceLock::new()),
            connect_timeout,
        }
    }

    pub fn client(&self) -> Result<&reqwest::Client, ClientError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let built = build(self.connect_timeout)?;
        Ok(self.client.get_or_init(|| built))
    }
}

/// rustls with the `ring` provider and Mozilla's roots compiled in: no jitter-entropy seeding
/// (AWS-LC's can add tens of milliseconds to a cold start) and no certificate files to read.
fn build(connect_timeout: Duration) -> Result<reqwest::Client, ClientError> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(4)
        // Segment's APIs do not redirect. Following one would turn a POST of events into a GET
        // of some other page, whose 200 would then count as accepted: a 3xx is a failure.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("studio-router/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientError(e.to_string()))
}

/// `Authorization: Basic base64(user:)`, marked sensitive: how both of Segment's APIs take
/// their key (the Profile API token, the write key) with an empty password. `None` for a
/// key no header can carry.
pub fn basic_authorization(user: &str) -> Option<reqwest::header::HeaderValue> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:"));
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `url?name=value&...`, form-encoded.
pub fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return url.to_owned();
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{url}?{query}")
}

/// `Retry-After` in seconds (what Segment sends with a 429), if present and numeric.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        // Capped at a day, so adding it to a time can never overflow (any value is the
        // server's to send); every caller waits only within its own deadline anyway.
        .map(|seconds| Duration::from_secs(seconds.min(86_400)))
}

/// The innermost cause: reqwest's own message rarely says what actually went wrong.
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
