//! Each function's operation: request fields in, domain call through adapters, answer out.
//! The Lambda binaries and the local sandbox run these same operations.

pub mod profile_lookup;
pub mod route_decision;
pub mod wrap_up_ingest;

use std::time::Duration;

use crate::auth::Authenticator;
use crate::config::{ConfigError, Environment, ProfileApiConfig, Reader};
use crate::http_client::HttpClient;
use crate::segment::ProfileApi;

/// Studio waits 10 s at most; the default leaves room for a proxy's retry and a Flex enqueue.
const DEFAULT_DEADLINE_MS: u64 = 2500;

/// What both Studio-facing functions (route-decision, profile-lookup) are built from.
pub struct StudioFacing {
    pub profiles: ProfileApi,
    /// The whole answer's budget (`DECISION_DEADLINE_MS`).
    pub deadline: Duration,
    pub phone_identifier: String,
    pub auth: Authenticator,
}

impl StudioFacing {
    pub async fn load(env: &dyn Environment) -> Result<Self, ConfigError> {
        let http = HttpClient::new(Duration::from_secs(1));
        let reader = Reader::new(env, &http);
        let deadline = reader.millis("DECISION_DEADLINE_MS", DEFAULT_DEADLINE_MS, 100..=9000)?;
        let config = ProfileApiConfig::read(&reader).await?;
        if config.request_timeout > deadline {
            tracing::warn!(
                "PROFILE_TIMEOUT_MS exceeds DECISION_DEADLINE_MS; lookups will be cut at the deadline"
            );
        }
        let auth = reader.authenticator().await?;
        Ok(Self {
            profiles: ProfileApi::new(&config, http),
            deadline,
            phone_identifier: config.phone_identifier,
            auth,
        })
    }
}
