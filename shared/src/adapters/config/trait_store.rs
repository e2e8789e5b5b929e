//! The trait store's configuration (issue 30): where the table is, how route-decision trusts
//! it, and trait-sync's own settings. Unset `TRAIT_STORE_TABLE` leaves the store off.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{ConfigError, ProfileApiConfig, Startup, VariableError, Variables};
use crate::adapters::dynamodb::{AwsCredentials, DynamoConfig, DynamoTraitStore, Signer};
use crate::adapters::http_client::HttpClient;

/// Segment waits 5 s for a Lambda destination, then counts the delivery failed and retries it
/// ("Amazon Lambda" destination: "Operation timedout"); finish before that.
const SEGMENT_LAMBDA_LIMIT_MS: u64 = 4_500;
/// An item expires this many days after its last write unless configured otherwise.
const DEFAULT_TTL_DAYS: u64 = 30;
/// A store read's default budget: a warm read is single-digit milliseconds, a cold one pays
/// a TLS handshake; past this the Profile API is asked instead.
const DEFAULT_STORE_BUDGET_MS: u64 = 200;

/// How route-decision reads the store.
pub struct StoreReading {
    pub store: Option<DynamoTraitStore>,
    /// `TRAIT_STORE_TRAITS`: the traits the store is trusted for; unset, every trait it holds.
    pub trusted: Option<BTreeSet<String>>,
    /// `TRAIT_STORE_BUDGET_MS`: the longest a read may take before the Profile API is asked.
    pub budget: Duration,
}

impl StoreReading {
    pub fn read(
        vars: &Variables<'_>,
        http: &HttpClient,
        deadline: Duration,
    ) -> Result<Self, VariableError> {
        let store = table(vars, http)?;
        let trusted = vars.optional("TRAIT_STORE_TRAITS").map(|names| {
            names
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect()
        });
        let budget = vars.millis("TRAIT_STORE_BUDGET_MS", DEFAULT_STORE_BUDGET_MS, 10..=5000)?;
        if store.is_some() && budget >= deadline {
            return Err(VariableError::Invalid {
                name: "TRAIT_STORE_BUDGET_MS",
                problem: "must be shorter than DECISION_DEADLINE_MS, to leave the Profile API time when the table is slow".into(),
            });
        }
        Ok(Self {
            store,
            trusted,
            budget,
        })
    }
}

/// trait-sync's configuration.
pub struct TraitSyncConfig {
    pub store: DynamoTraitStore,
    /// `SYNC_DEADLINE_MS`: one delivery's budget, under Segment's 5 s.
    pub deadline: Duration,
    /// The identifier type of phone numbers (`SEGMENT_PHONE_IDENTIFIER`).
    pub phone_identifier: String,
    /// Set with `SEGMENT_SPACE_ID`: where a delivery without a phone finds the profile's.
    pub profile_api: Option<ProfileApiConfig>,
}

impl TraitSyncConfig {
    pub fn read(startup: &Startup<'_>) -> Result<Self, ConfigError> {
        let vars = &startup.vars;
        let store =
            table(vars, &startup.http)?.ok_or(VariableError::Missing("TRAIT_STORE_TABLE"))?;
        let deadline = vars.millis(
            "SYNC_DEADLINE_MS",
            SEGMENT_LAMBDA_LIMIT_MS,
            500..=SEGMENT_LAMBDA_LIMIT_MS,
        )?;
        let profile_api = match vars.optional("SEGMENT_SPACE_ID") {
            None => None,
            Some(_) => Some(ProfileApiConfig::read(
                vars,
                &startup.extension,
                startup.concurrency,
            )?),
        };
        Ok(Self {
            store,
            deadline,
            phone_identifier: super::phone_identifier(vars)?,
            profile_api,
        })
    }
}

/// The table named by `TRAIT_STORE_TABLE`, reached the way AWS's SDKs reach it: the region
/// from `AWS_REGION`, the endpoint from `AWS_ENDPOINT_URL_DYNAMODB` then `AWS_ENDPOINT_URL`
/// (the SDKs' "service-specific endpoints"), the execution role's credentials from the
/// variables Lambda sets.
fn table(
    vars: &Variables<'_>,
    http: &HttpClient,
) -> Result<Option<DynamoTraitStore>, VariableError> {
    let Some(table) = vars.optional("TRAIT_STORE_TABLE") else {
        return Ok(None);
    };
    let region = vars.required("AWS_REGION")?;
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let default = format!("https://dynamodb.{region}.{suffix}");
    let endpoint = match vars.optional("AWS_ENDPOINT_URL_DYNAMODB") {
        Some(_) => vars.url("AWS_ENDPOINT_URL_DYNAMODB", &default)?,
        None => vars.url("AWS_ENDPOINT_URL", &default)?,
    };
    let credentials = AwsCredentials {
        access_key_id: vars.required("AWS_ACCESS_KEY_ID")?,
        secret_access_key: vars.required("AWS_SECRET_ACCESS_KEY")?,
        session_token: vars.optional("AWS_SESSION_TOKEN"),
    };
    let days = vars.number("TRAIT_STORE_TTL_DAYS", DEFAULT_TTL_DAYS, 1..=3650)?;
    let config = DynamoConfig {
        table,
        endpoint,
        signer: Signer::new(credentials, region),
        ttl: Duration::from_secs(days * 86_400),
    };
    DynamoTraitStore::new(config, http.clone())
        .map(Some)
        .map_err(|problem| VariableError::Invalid {
            name: "AWS_ENDPOINT_URL_DYNAMODB",
            problem: problem.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const TABLE: [(&str, &str); 4] = [
        ("TRAIT_STORE_TABLE", "traits"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ];

    fn reading(
        env: &dyn crate::support::environment::Environment,
    ) -> Result<StoreReading, VariableError> {
        StoreReading::read(
            &Variables::new(env),
            &HttpClient::new(Duration::from_secs(1)),
            Duration::from_millis(2500),
        )
    }

    #[test]
    fn the_store_is_off_unless_a_table_is_named() {
        let off = reading(&vars(&[])).unwrap();
        assert!(off.store.is_none());
        let on = reading(&vars(&TABLE)).unwrap();
        assert!(on.store.is_some());
        assert_eq!(on.trusted, None);
    }

    #[test]
    fn a_table_needs_the_region_and_credentials_lambda_sets() {
        let error = reading(&vars(&[("TRAIT_STORE_TABLE", "traits")])).err();
        assert_eq!(error, Some(VariableError::Missing("AWS_REGION")));
        let error = reading(&vars(&[
            ("TRAIT_STORE_TABLE", "traits"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", " "),
        ]))
        .err();
        assert_eq!(error, Some(VariableError::Missing("AWS_SECRET_ACCESS_KEY")));
    }

    #[test]
    fn a_budget_that_leaves_the_profile_api_no_time_is_refused() {
        static SLOW: [(&str, &str); 5] = [
            ("TRAIT_STORE_TABLE", "traits"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("TRAIT_STORE_BUDGET_MS", "2500"),
        ];
        assert!(matches!(
            reading(&vars(&SLOW)).err(),
            Some(VariableError::Invalid {
                name: "TRAIT_STORE_BUDGET_MS",
                ..
            })
        ));
    }
}
