//! End-to-end test helpers, shared by every test file: a Lambda Runtime API served on
//! 127.0.0.1, the real function binaries run against it, HTTP stand-ins for Segment and the
//! secrets extension (that can answer, fail, hang or refuse), a Function URL for HTTP
//! clients, and payload 2.0 event builders with real Twilio signatures.

mod events;
mod function_url;
mod functions;
mod runtime_api;
mod stand_ins;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

pub use events::{
    FUNCTION_URL_HOST, basic_auth, body_sha256, event_streams_delivery, fixture, http_event,
    signed_form_post, signed_json_post, taskrouter_callback, twilio_signature,
};
pub use function_url::FunctionUrl;
pub use functions::{Function, binary, build_release_binaries};
pub use runtime_api::{Answer, RuntimeApi, Waiting};
pub use stand_ins::{
    ExtensionStart, Misbehaviour, RawStandIn, Received, Reply, SecretsExtension, StandIn,
};

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// A port on 127.0.0.1 that nothing listens on: connections to it are refused.
pub async fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The Twilio Auth Token the Studio-facing functions are configured with in tests.
pub const TWILIO_TOKEN: &str = "twilio-auth-token-for-tests";
/// The Profile API token they are configured with; it must never appear in an answer or a log.
pub const PROFILE_TOKEN: &str = "profile-token-secret";

/// Starts a Studio-facing function (route-decision, profile-lookup) wired to the Profile
/// API at `profile_api`, with Twilio signatures on; `extra` adds or overrides variables.
pub async fn studio_function(
    name: &str,
    profile_api: &str,
    extra: &[(&str, &str)],
) -> (RuntimeApi, Function) {
    let runtime = RuntimeApi::start().await;
    let mut env: Vec<(&str, String)> = vec![
        ("SEGMENT_SPACE_ID", "spa_test".to_owned()),
        ("SEGMENT_PROFILE_API_TOKEN", PROFILE_TOKEN.to_owned()),
        ("SEGMENT_PROFILE_API_URL", profile_api.to_owned()),
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN.to_owned()),
        ("PROFILE_TIMEOUT_MS", "5000".to_owned()),
    ];
    for (name, value) in extra {
        env.retain(|(existing, _)| existing != name);
        env.push((name, (*value).to_owned()));
    }
    let function = Function::start(name, &runtime, &env).await;
    (runtime, function)
}
