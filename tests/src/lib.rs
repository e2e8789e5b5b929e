//! End-to-end test helpers, shared by every test file: a Lambda Runtime API served on
//! 127.0.0.1, the real function binaries run against it, HTTP stand-ins for Segment and the
//! secrets extension (that can answer, fail, hang or refuse), a Function URL for HTTP
//! clients, and payload 2.0 event builders with real Twilio signatures.

pub mod dynalite;
pub mod emf;
mod events;
mod function_url;
mod functions;
mod oversized;
mod runtime_api;
mod stand_ins;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

pub use events::{
    FUNCTION_URL_HOST, basic_auth, body_sha256, event_streams_delivery, fixture, http_event,
    kinesis_event, sequence_number, signed_fields, signed_form_post, signed_json_post,
    taskrouter_callback, twilio_signature,
};
pub use function_url::FunctionUrl;
pub use functions::{Function, binary, build_release_binaries};
pub use oversized::{Framing, OversizedExtension};
pub use runtime_api::{Answered, RuntimeApi, Waiting};
pub use stand_ins::{
    ExtensionStart, Misbehaviour, RawStandIn, Received, Reply, SESSION_TOKEN, SecretsExtension,
    StandIn,
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

/// The Twilio Auth Token the functions are configured with in tests.
pub const TWILIO_TOKEN: &str = "twilio-auth-token-for-tests";
/// The Profile API token they are configured with; it must never appear in an answer or a log.
pub const PROFILE_TOKEN: &str = "profile-token-secret";
/// wrap-up-ingest's write key in tests.
pub const WRITE_KEY: &str = "segment-write-key-for-tests";

/// The secrets a [`SecretsExtension`] holds in tests (secret id, value).
pub const SECRETS: [(&str, &str); 4] = [
    ("studio-router/profile-token", PROFILE_TOKEN),
    ("studio-router/auth-token", TWILIO_TOKEN),
    ("studio-router/proxy-secret", "proxy-secret"),
    ("studio-router/write-key", WRITE_KEY),
];

/// A function's environment: a base set, with variables set or removed on top.
#[derive(Debug, Clone, Default)]
pub struct Env(Vec<(&'static str, String)>);

impl Env {
    /// A Studio-facing function (route-decision, profile-lookup) wired to the Profile API at
    /// `profile_api`, with Twilio signatures on.
    pub fn studio(profile_api: &str) -> Self {
        Self::default()
            .set("SEGMENT_SPACE_ID", "spa_test")
            .set("SEGMENT_PROFILE_API_TOKEN", PROFILE_TOKEN)
            .set("SEGMENT_PROFILE_API_URL", profile_api)
            .set("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
            .set("PROFILE_TIMEOUT_MS", "5000")
    }

    /// [`Self::studio`] with its Profile API token and Auth Token as Secrets Manager ids (in
    /// [`SECRETS`]).
    pub fn studio_with_secret_ids(profile_api: &str) -> Self {
        Self::studio(profile_api)
            .unset("SEGMENT_PROFILE_API_TOKEN")
            .unset("TWILIO_AUTH_TOKEN")
            .set(
                "SEGMENT_PROFILE_API_TOKEN_SECRET_ID",
                "studio-router/profile-token",
            )
            .set("TWILIO_AUTH_TOKEN_SECRET_ID", "studio-router/auth-token")
    }

    /// wrap-up-ingest wired to the Tracking API at `tracking_api`, with Twilio signatures on.
    pub fn wrap_up(tracking_api: &str) -> Self {
        Self::default()
            .set("SEGMENT_WRITE_KEY", WRITE_KEY)
            .set("SEGMENT_TRACKING_API_URL", tracking_api)
            .set("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    }

    /// `name` set to `value`, replacing any earlier value.
    pub fn set(self, name: &'static str, value: impl Into<String>) -> Self {
        let mut vars = self.unset(name).0;
        vars.push((name, value.into()));
        Self(vars)
    }

    pub fn unset(mut self, name: &str) -> Self {
        self.0.retain(|(existing, _)| *existing != name);
        self
    }

    /// Each of `extra` set on top.
    pub fn with(self, extra: &[(&'static str, &str)]) -> Self {
        extra
            .iter()
            .fold(self, |env, (name, value)| env.set(name, *value))
    }

    pub fn vars(&self) -> &[(&'static str, String)] {
        &self.0
    }
}

/// Starts a Studio-facing function (route-decision, profile-lookup) wired to the Profile
/// API at `profile_api`, with Twilio signatures on; `extra` adds or overrides variables.
pub async fn studio_function(
    name: &str,
    profile_api: &str,
    extra: &[(&'static str, &str)],
) -> (RuntimeApi, Function) {
    let runtime = RuntimeApi::start().await;
    let env = Env::studio(profile_api).with(extra);
    let function = Function::start(name, &runtime, env.vars()).await;
    (runtime, function)
}

/// Starts wrap-up-ingest wired to the Tracking API at `tracking_api`, with Twilio
/// signatures on; `extra` adds or overrides variables.
pub async fn wrap_up_function(
    tracking_api: &str,
    extra: &[(&'static str, &str)],
) -> (RuntimeApi, Function) {
    let runtime = RuntimeApi::start().await;
    let env = Env::wrap_up(tracking_api).with(extra);
    let function = Function::start("wrap-up-ingest", &runtime, env.vars()).await;
    (runtime, function)
}

/// A Runtime API and a secrets-extension stand-in that starts as `start` and holds `secrets`
/// (secret id, value), ready for a function started with [`start_with_secrets`]. Events
/// queued on the Runtime API before then find the function cold.
pub async fn secrets_extension(
    start: ExtensionStart,
    secrets: &[(&str, &str)],
) -> (RuntimeApi, SecretsExtension) {
    let runtime = RuntimeApi::start().await;
    let extension = SecretsExtension::start(start, runtime.invoking(), secrets).await;
    (runtime, extension)
}

/// Starts `name` with `env` plus what reaching `extension` takes: its port and the session
/// token it requires.
pub async fn start_with_secrets(
    name: &str,
    runtime: &RuntimeApi,
    extension: &SecretsExtension,
    env: Env,
) -> Function {
    let env = env
        .set("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", extension.port())
        .set("AWS_SESSION_TOKEN", SESSION_TOKEN);
    Function::start(name, runtime, env.vars()).await
}

/// Both at once, for a function that is started before any event is queued.
pub async fn function_with_secrets(
    name: &str,
    start: ExtensionStart,
    secrets: &[(&str, &str)],
    env: Env,
) -> (RuntimeApi, SecretsExtension, Function) {
    let (runtime, extension) = secrets_extension(start, secrets).await;
    let function = start_with_secrets(name, &runtime, &extension, env).await;
    (runtime, extension, function)
}
