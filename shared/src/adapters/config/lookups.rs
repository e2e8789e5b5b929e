//! The configuration of the two functions Studio waits for: route-decision (its rules, its
//! deadline, the Profile API, and what may change the routing while it runs: the rules feed
//! and the emergency override) and profile-lookup.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::{
    ConfigError, ProfileApiConfig, Startup, StoreReading, VariableError, Variables, runtime,
};
use crate::adapters::emergency::EmergencyOverride;
use crate::adapters::rules_feed::{Destination, RulesFeed};
use crate::domain::ports::TraitsQuery;
use crate::domain::routing::shadow_admitted;
use crate::domain::rules::{RuleSet, RulesInUse, ShadowInUse};

/// route-decision's configuration.
pub struct RouteDecisionConfig {
    /// The rules in use, shared with the feed that may replace them.
    pub rules: Arc<RulesInUse>,
    pub profile_api: ProfileApiConfig,
    /// `DECISION_DEADLINE_MS`.
    pub deadline: Duration,
    /// Where newer rules come from while the function runs (AppConfig, Parameter Store).
    pub rules_feed: Option<Arc<RulesFeed>>,
    /// The parameter that sends everyone to one transition while it is on.
    pub emergency: Option<Arc<EmergencyOverride>>,
    /// `RESPONSE_TRAITS`: the traits the answer carries back when the profile is read.
    pub response_traits: Arc<BTreeSet<String>>,
    /// The trait store, when `TRAIT_STORE_TABLE` names one.
    pub store: StoreReading,
    /// `SHADOW_ROUTING_RULES`: judged beside the live rules, never acted on.
    pub shadow: Arc<ShadowInUse>,
    /// Where newer shadow sets come from (`SHADOW_ROUTING_RULES_APPCONFIG` / `_PARAMETER`).
    pub shadow_feed: Option<Arc<RulesFeed>>,
}

impl RouteDecisionConfig {
    /// The rules first: they are the likeliest to be wrong.
    pub fn read(startup: &Startup<'_>) -> Result<Self, ConfigError> {
        let rules: RuleSet = super::rules(&startup.vars)?;
        let rules = Arc::new(RulesInUse::new(rules));
        let deadline = super::decision_deadline(&startup.vars)?;
        let profile_api =
            ProfileApiConfig::read(&startup.vars, &startup.extension, startup.concurrency)?;
        profile_api.warn_if_slower_than(deadline);
        let rules_feed = runtime::rules_feed(
            &startup.vars,
            startup.http.clone(),
            &startup.extension,
            rules.clone(),
        )?;
        let emergency = runtime::emergency_override(&startup.vars, &startup.extension)?;
        let response_traits = response_traits(&startup.vars)?;
        fits_one_lookup(&rules.current(), &response_traits)?;
        let store = StoreReading::read(&startup.vars, &startup.http, deadline)?;
        let shadow = super::shadow_rules(&startup.vars)
            .filter(|shadow| shadow_fits(&rules.current(), shadow, &response_traits));
        let shadow = Arc::new(ShadowInUse::new(shadow));
        let response_traits = Arc::new(response_traits);
        let shadow_feed = runtime::shadow_feed(
            &startup.vars,
            startup.http.clone(),
            &startup.extension,
            Destination::Shadow {
                shadow: shadow.clone(),
                live: rules.clone(),
                returned: response_traits.clone(),
            },
        );
        Ok(Self {
            rules,
            profile_api,
            deadline,
            rules_feed,
            emergency,
            response_traits,
            store,
            shadow,
            shadow_feed,
        })
    }
}

/// The most traits an answer carries back: what one Profile API request returns.
const MAX_RESPONSE_TRAITS: usize = TraitsQuery::MAX_LIMIT as usize;

/// `RESPONSE_TRAITS`: a comma list of trait names; unset, none.
fn response_traits(vars: &Variables<'_>) -> Result<BTreeSet<String>, VariableError> {
    let Some(list) = vars.optional("RESPONSE_TRAITS") else {
        return Ok(BTreeSet::new());
    };
    let names: BTreeSet<String> = list
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    if names.len() > MAX_RESPONSE_TRAITS {
        return Err(VariableError::Invalid {
            name: "RESPONSE_TRAITS",
            problem: format!(
                "names {} traits; an answer carries at most {MAX_RESPONSE_TRAITS} (what one Profile API request returns)",
                names.len()
            ),
        });
    }
    Ok(names)
}

/// The traits a decision asks for (the rules' and the returned ones) fit what one Profile API
/// request returns; past it Segment would leave some out.
fn fits_one_lookup(rules: &RuleSet, returned: &BTreeSet<String>) -> Result<(), VariableError> {
    let Some(referenced) = rules.referenced_traits() else {
        return Ok(());
    };
    let asked = referenced.union(returned).count();
    if asked > MAX_RESPONSE_TRAITS {
        return Err(VariableError::Invalid {
            name: "RESPONSE_TRAITS",
            problem: format!(
                "with the rules' own traits a decision would ask for {asked}; one Profile API request returns at most {MAX_RESPONSE_TRAITS}"
            ),
        });
    }
    Ok(())
}

/// Whether the shadow may be judged beside the live rules (their declared transitions, one
/// lookup for both); one that may not is logged and left out, never a start failure.
fn shadow_fits(rules: &RuleSet, shadow: &RuleSet, returned: &BTreeSet<String>) -> bool {
    match shadow_admitted(rules, shadow, returned) {
        Ok(()) => true,
        Err(why) => {
            tracing::warn!(%why, "shadow rules ignored");
            false
        }
    }
}

/// profile-lookup's configuration.
pub struct ProfileLookupConfig {
    pub profile_api: ProfileApiConfig,
    /// `DECISION_DEADLINE_MS`.
    pub deadline: Duration,
}

impl ProfileLookupConfig {
    pub fn read(startup: &Startup<'_>) -> Result<Self, ConfigError> {
        let deadline = super::decision_deadline(&startup.vars)?;
        let profile_api =
            ProfileApiConfig::read(&startup.vars, &startup.extension, startup.concurrency)?;
        profile_api.warn_if_slower_than(deadline);
        Ok(Self {
            profile_api,
            deadline,
        })
    }
}
