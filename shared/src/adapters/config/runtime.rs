//! The variables every function reads besides its own: logging, metrics, concurrency, the
//! Parameters and Secrets extension and the secrets it serves, who may call over HTTP, and
//! what may change the routing while a function runs (the rules feed, the emergency
//! override). Read here and nowhere else; the types they configure take typed values.

use std::sync::Arc;
use std::time::Duration;

use super::{Environment, VariableError, Variables};
use crate::adapters::emergency::EmergencyOverride;
use crate::adapters::http_client::HttpClient;
use crate::adapters::rules_feed::{Destination, RulesFeed};
use crate::adapters::secrets::{self, Requirement, Secret, SecretCell, SecretsExtension};
use crate::domain::rules::RulesInUse;
use crate::support::concurrency::{self, Concurrency};
use crate::support::metrics::MetricsWriter;
use crate::support::telemetry;

/// The AppConfig extension's own default poll interval is 45 s; reading it more often gains
/// nothing.
pub const RULES_MAX_AGE: Duration = Duration::from_secs(45);
/// How often the emergency override's parameter is read again, by default.
pub const OVERRIDE_MAX_AGE: Duration = Duration::from_secs(15);

/// `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's logging controls) or `LOG_LEVEL`.
pub fn log_level(vars: &Variables<'_>) -> Option<String> {
    ["AWS_LAMBDA_LOG_LEVEL", "LOG_LEVEL"]
        .iter()
        .find_map(|name| vars.optional(name))
}

/// Starts the JSON log lines at the level the environment asks for.
pub fn start_logging(env: &dyn Environment) {
    telemetry::init(log_level(&Variables::new(env)).as_deref());
}

/// The `function` dimension: `AWS_LAMBDA_FUNCTION_NAME`, or `binary` outside Lambda.
pub fn function_name(vars: &Variables<'_>, binary: &str) -> String {
    vars.optional("AWS_LAMBDA_FUNCTION_NAME")
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| binary.to_owned())
}

/// A metrics writer as `METRICS` says: `emf` (the default) or `off`.
pub fn metrics_writer(vars: &Variables<'_>, binary: &str) -> Result<MetricsWriter, VariableError> {
    let enabled = vars.choice("METRICS", &["emf", "off"], "emf")? == "emf";
    Ok(MetricsWriter::new(&function_name(vars, binary)).enabled(enabled))
}

/// What a function whose configuration is invalid still writes: its metrics (as `METRICS`
/// says, on when it cannot be read), so the failures it answers are counted.
pub fn metrics_writer_despite_errors(env: &dyn Environment, binary: &str) -> MetricsWriter {
    let vars = Variables::new(env);
    metrics_writer(&vars, binary)
        .unwrap_or_else(|_| MetricsWriter::new(&function_name(&vars, binary)))
}

/// The concurrency the process's environment asks for, quietly: this is read before logging
/// starts, and [`super::Startup::new`] warns about a bad value once it has.
pub fn process_concurrency() -> Concurrency {
    concurrency(&Variables::new(&super::ProcessEnv), false)
}

/// The invocations an environment serves at once (`AWS_LAMBDA_MAX_CONCURRENCY`); a value
/// that is not a whole number counts as 1, with a warning when `warn` (the runtime then polls
/// one invocation at a time, so this is what actually happens).
pub fn concurrency(vars: &Variables<'_>, warn: bool) -> Concurrency {
    let variable = concurrency::VARIABLE;
    Concurrency::parse(vars.raw(variable).as_deref()).unwrap_or_else(|raw| {
        if warn {
            tracing::warn!(
                variable,
                value = %raw,
                "{variable} is not a whole number; serving one invocation at a time"
            );
        }
        Concurrency::ONE
    })
}

/// `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` (default 2773), `AWS_SESSION_TOKEN` (Lambda
/// sets it; the extension requires it back), `SECRETS_TTL_SECS` (default 300).
pub fn secrets_extension(
    vars: &Variables<'_>,
    http: HttpClient,
) -> Result<SecretsExtension, VariableError> {
    let port = vars.number("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", 2773, 1..=65_535)?;
    let ttl = vars.number("SECRETS_TTL_SECS", secrets::DEFAULT_TTL.as_secs(), 0..=3600)?;
    let session_token = vars.optional("AWS_SESSION_TOKEN");
    Ok(SecretsExtension::new(
        port,
        session_token,
        Duration::from_secs(ttl),
        http,
    ))
}

/// `NAME` from the environment, else `NAME_SECRET_ID`, else `None` (not configured). A
/// value given directly is checked now; a fetched one when it arrives. An empty value is a
/// configuration error, never a key.
pub fn secret(
    vars: &Variables<'_>,
    name: &'static str,
    requirement: Requirement,
    extension: &Arc<SecretsExtension>,
) -> Result<Option<SecretCell>, VariableError> {
    if let Some(value) = vars.optional(name) {
        let secret = Secret::new(&value).ok_or(VariableError::Missing(name))?;
        requirement
            .check(&secret)
            .map_err(|problem| VariableError::Invalid { name, problem })?;
        return Ok(Some(SecretCell::given(name, secret)));
    }
    Ok(vars
        .optional(&format!("{name}_SECRET_ID"))
        .map(|secret_id| SecretCell::fetched(name, secret_id, requirement, extension)))
}

/// Like [`secret`], for a secret the function cannot do without.
pub fn required_secret(
    vars: &Variables<'_>,
    name: &'static str,
    requirement: Requirement,
    extension: &Arc<SecretsExtension>,
) -> Result<SecretCell, VariableError> {
    secret(vars, name, requirement, extension)?.ok_or(VariableError::MissingSecret(name))
}

/// Who may call a function over HTTP.
pub struct Authentication {
    /// `TWILIO_AUTH_TOKEN`: Twilio's request signatures.
    pub twilio_auth_token: Option<SecretCell>,
    /// `TWILIO_WEBHOOK_BASE_URL`: the public URL Twilio signed, behind a proxy.
    pub public_base_url: Option<String>,
    /// `PROXY_SHARED_SECRET`: a proxy's Basic credentials or header.
    pub shared_secret: Option<SecretCell>,
    /// `ALLOW_UNAUTHENTICATED`: local use only.
    pub allow_unauthenticated: bool,
}

/// `TWILIO_AUTH_TOKEN`, `TWILIO_WEBHOOK_BASE_URL`, `PROXY_SHARED_SECRET` (each secret also as
/// `<NAME>_SECRET_ID`), `ALLOW_UNAUTHENTICATED`.
pub fn authentication(
    vars: &Variables<'_>,
    extension: &Arc<SecretsExtension>,
) -> Result<Authentication, VariableError> {
    let public_base_url = match vars.optional("TWILIO_WEBHOOK_BASE_URL") {
        Some(_) => Some(vars.url("TWILIO_WEBHOOK_BASE_URL", "")?),
        None => None,
    };
    Ok(Authentication {
        twilio_auth_token: secret(vars, "TWILIO_AUTH_TOKEN", Requirement::Any, extension)?,
        public_base_url,
        shared_secret: secret(
            vars,
            "PROXY_SHARED_SECRET",
            Requirement::HeaderSafe,
            extension,
        )?,
        allow_unauthenticated: vars.boolean("ALLOW_UNAUTHENTICATED")?,
    })
}

/// `ROUTING_RULES_APPCONFIG` (`application/environment/profile`, with
/// `AWS_APPCONFIG_EXTENSION_HTTP_PORT`, default 2772) or `ROUTING_RULES_PARAMETER` (a
/// Parameter Store name), not both, and `RULES_MAX_AGE_SECS` (default 45); `None` when the
/// rules come from neither.
pub fn rules_feed(
    vars: &Variables<'_>,
    http: HttpClient,
    extension: &Arc<SecretsExtension>,
    live: Arc<RulesInUse>,
) -> Result<Option<Arc<RulesFeed>>, VariableError> {
    let names = ["ROUTING_RULES_APPCONFIG", "ROUTING_RULES_PARAMETER"];
    feed(vars, http, extension, names, Destination::Live(live))
}

/// `SHADOW_ROUTING_RULES_APPCONFIG` or `SHADOW_ROUTING_RULES_PARAMETER`, read like the live
/// rules' feed. One named wrongly is logged and left out: a shadow never stops a decision.
pub fn shadow_feed(
    vars: &Variables<'_>,
    http: HttpClient,
    extension: &Arc<SecretsExtension>,
    into: Destination,
) -> Option<Arc<RulesFeed>> {
    let names = [
        "SHADOW_ROUTING_RULES_APPCONFIG",
        "SHADOW_ROUTING_RULES_PARAMETER",
    ];
    feed(vars, http, extension, names, into).unwrap_or_else(|error| {
        tracing::warn!(%error, "shadow rules feed not configured; no shadow rules from it");
        None
    })
}

/// A feed from AppConfig (`names[0]`) or Parameter Store (`names[1]`), not both.
fn feed(
    vars: &Variables<'_>,
    http: HttpClient,
    extension: &Arc<SecretsExtension>,
    [appconfig_name, parameter_name]: [&'static str; 2],
    into: Destination,
) -> Result<Option<Arc<RulesFeed>>, VariableError> {
    let appconfig = vars.optional(appconfig_name);
    let parameter = vars.optional(parameter_name);
    let max_age = || -> Result<Duration, VariableError> {
        let secs = vars.number("RULES_MAX_AGE_SECS", RULES_MAX_AGE.as_secs(), 1..=3600)?;
        Ok(Duration::from_secs(secs))
    };
    let feed = match (appconfig, parameter) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(VariableError::Invalid {
                name: parameter_name,
                problem: format!(
                    "set it or {appconfig_name}, not both: the rules come from one place"
                ),
            });
        }
        (Some(name), None) => {
            let names = appconfig_names(appconfig_name, &name)?;
            let port = vars.number("AWS_APPCONFIG_EXTENSION_HTTP_PORT", 2772, 1..=65_535)?;
            RulesFeed::appconfig(names, port, http, max_age()?, into)
        }
        (None, Some(name)) => RulesFeed::parameter(name, extension, max_age()?, into),
    };
    Ok(Some(Arc::new(feed)))
}

/// `application/environment/profile`, each named.
fn appconfig_names<'a>(
    variable: &'static str,
    name: &'a str,
) -> Result<[&'a str; 3], VariableError> {
    let parts: Vec<&str> = name.split('/').collect();
    let [application, environment, profile] = parts[..] else {
        return Err(VariableError::Invalid {
            name: variable,
            problem: "must be application/environment/configuration-profile".into(),
        });
    };
    if [application, environment, profile]
        .iter()
        .any(|part| part.trim().is_empty())
    {
        return Err(VariableError::Invalid {
            name: variable,
            problem: "application, environment and configuration profile must all be named".into(),
        });
    }
    Ok([application, environment, profile])
}

/// `ROUTING_OVERRIDE_PARAMETER` (a Parameter Store name) and `OVERRIDE_MAX_AGE_SECS`
/// (default 15); `None` when no parameter is named.
pub fn emergency_override(
    vars: &Variables<'_>,
    extension: &Arc<SecretsExtension>,
) -> Result<Option<Arc<EmergencyOverride>>, VariableError> {
    let Some(parameter) = vars.optional("ROUTING_OVERRIDE_PARAMETER") else {
        return Ok(None);
    };
    let max_age = vars.number(
        "OVERRIDE_MAX_AGE_SECS",
        OVERRIDE_MAX_AGE.as_secs(),
        1..=3600,
    )?;
    Ok(Some(Arc::new(EmergencyOverride::new(
        parameter,
        extension,
        Duration::from_secs(max_age),
    ))))
}
