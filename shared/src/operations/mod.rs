//! Each function's operation: request fields in, domain call through adapters, answer out.
//! The Lambda binaries and the local sandbox run these same operations.

pub mod profile_lookup;
pub mod route_decision;
pub mod wrap_up_ingest;

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::config::{ConfigError, Environment, ProfileApiConfig, Variables};
use crate::http_client::HttpClient;
use crate::secrets::SecretsExtension;
use crate::segment::ProfileApi;

/// Studio waits 10 s at most; the default leaves room for a proxy's retry and a Flex enqueue.
const DEFAULT_DEADLINE_MS: u64 = 2500;

/// What every function is built from: its variables, the one HTTPS client, the secrets
/// extension (called only once invocations run) and who may call it.
pub struct Setup<'a> {
    pub vars: Variables<'a>,
    pub http: HttpClient,
    pub extension: Arc<SecretsExtension>,
}

impl<'a> Setup<'a> {
    pub fn new(env: &'a dyn Environment, connect_timeout: Duration) -> Result<Self, ConfigError> {
        let vars = Variables::new(env);
        let http = HttpClient::new(connect_timeout);
        let extension = Arc::new(SecretsExtension::from_variables(&vars, http.clone())?);
        Ok(Self {
            vars,
            http,
            extension,
        })
    }

    pub fn authenticator(&self) -> Result<Authenticator, ConfigError> {
        Ok(Authenticator::from_variables(&self.vars, &self.extension)?)
    }
}

/// What both Studio-facing functions (route-decision, profile-lookup) read profiles with.
pub struct ProfileReading {
    pub profiles: ProfileApi,
    /// The whole answer's budget (`DECISION_DEADLINE_MS`).
    pub deadline: Duration,
    pub phone_identifier: String,
}

impl ProfileReading {
    pub fn load(setup: &Setup<'_>) -> Result<Self, ConfigError> {
        let deadline =
            setup
                .vars
                .millis("DECISION_DEADLINE_MS", DEFAULT_DEADLINE_MS, 100..=9000)?;
        let config = ProfileApiConfig::read(&setup.vars, &setup.extension)?;
        if config.request_timeout > deadline {
            tracing::warn!(
                "PROFILE_TIMEOUT_MS exceeds DECISION_DEADLINE_MS; lookups will be cut at the deadline"
            );
        }
        let phone_identifier = config.phone_identifier.clone();
        Ok(Self {
            profiles: ProfileApi::new(config, setup.http.clone()),
            deadline,
            phone_identifier,
        })
    }
}
