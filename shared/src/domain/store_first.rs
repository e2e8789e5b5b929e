//! Profiles read from the trait store first (issue 30): the traits a decision needs that the
//! store holds, and is trusted for, come from it in one read; the rest, a miss, or a store
//! that is slow or failing go to the Profile API as before, within the same deadline. A
//! store read never costs more than its own budget.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::domain::identity::Identifier;
use crate::domain::ports::{
    FoundTraits, ProfileError, Profiles, TraitStore, TraitsFrom, TraitsQuery,
};
use crate::domain::trait_store::StoredTraits;

pub struct StoreFirst<P, S> {
    pub profiles: P,
    /// `None` when no table is configured: every lookup goes to the Profile API.
    pub store: Option<S>,
    /// `TRAIT_STORE_TRAITS`: the traits the store is trusted for; `None`, every trait an item
    /// holds. A counter whose window matters (`docs_last_2_days`) is better left to Segment.
    pub trusted: Option<BTreeSet<String>>,
    /// The longest a store read may take before the Profile API is asked instead.
    pub store_budget: Duration,
}

impl<P: Profiles, S: TraitStore> StoreFirst<P, S> {
    /// The store's item, or `None` for a miss, a failure or a read past its budget (each
    /// logged without a value).
    async fn read_store(&self, identifier: &Identifier, deadline: Instant) -> Option<StoredTraits> {
        let store = self.store.as_ref()?;
        let by = deadline.min(Instant::now() + self.store_budget);
        let read = tokio::time::timeout_at(by.into(), store.read(identifier, by)).await;
        let problem = match read {
            Ok(Ok(item)) => return item,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {} ms", self.store_budget.as_millis()),
        };
        tracing::warn!(customer = %identifier.masked(), %problem, "trait store not read; asking the Profile API");
        None
    }
}

impl<P: Profiles, S: TraitStore> Profiles for StoreFirst<P, S> {
    async fn traits(
        &self,
        identifier: &Identifier,
        query: &TraitsQuery,
        deadline: Instant,
    ) -> Result<Option<Map<String, Value>>, ProfileError> {
        let found = self.traits_found(identifier, query, deadline).await?;
        Ok(found.map(|(traits, _)| traits))
    }

    async fn traits_found(
        &self,
        identifier: &Identifier,
        query: &TraitsQuery,
        deadline: Instant,
    ) -> Result<Option<FoundTraits>, ProfileError> {
        // Rules that may read any trait need the whole profile: only Segment has it. With no
        // table, Segment is all there is.
        let (Some(wanted), Some(_)) = (query.included(), &self.store) else {
            return self
                .profiles
                .traits_found(identifier, query, deadline)
                .await;
        };
        let wanted: BTreeSet<String> = wanted.split(',').map(str::to_owned).collect();
        let from_store: Map<String, Value> = match self.read_store(identifier, deadline).await {
            Some(item) => item
                .trusted(self.trusted.as_ref())
                .into_iter()
                .filter(|(name, _)| wanted.contains(name))
                .collect(),
            None => Map::new(),
        };
        if from_store.is_empty() {
            return self
                .profiles
                .traits_found(identifier, query, deadline)
                .await;
        }
        let missing: BTreeSet<String> = wanted
            .into_iter()
            .filter(|name| !from_store.contains_key(name))
            .collect();
        if missing.is_empty() {
            return Ok(Some((from_store, TraitsFrom::Store)));
        }
        let rest = TraitsQuery::new(
            Some(&missing),
            query.class().map(str::to_owned),
            query.limit(),
        );
        match self.profiles.traits(identifier, &rest, deadline).await? {
            Some(mut traits) => {
                traits.extend(from_store);
                Ok(Some((traits, TraitsFrom::StoreAndProfileApi)))
            }
            // Segment does not know the profile (yet); the store does.
            None => Ok(Some((from_store, TraitsFrom::Store))),
        }
    }

    async fn external_ids(
        &self,
        identifier: &Identifier,
        deadline: Instant,
    ) -> Result<Option<Vec<Value>>, ProfileError> {
        self.profiles.external_ids(identifier, deadline).await
    }

    async fn warm_up(&self) {
        self.profiles.warm_up().await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::adapters::memory::{MemoryProfiles, MemoryTraitStore};
    use crate::domain::identity::Customer;
    use crate::domain::ports::StoreError;
    use crate::domain::timestamps::Timestamp;

    const PHONE: &str = "phone:+15555550100";

    fn customer() -> Identifier {
        let fields = json!({"phone": "+15555550100"});
        match Identifier::from_fields(fields.as_object().unwrap(), "phone") {
            Ok(Customer::Identified(identifier)) => identifier,
            other => panic!("{other:?}"),
        }
    }

    async fn stored(traits: Value) -> MemoryTraitStore {
        let store = MemoryTraitStore::new();
        let at = Timestamp::parse_rfc3339("2026-12-01T10:00:00Z").unwrap();
        let traits = traits.as_object().cloned().unwrap_or_default();
        store
            .write(&customer(), &traits, at, Instant::now())
            .await
            .unwrap();
        store
    }

    fn reader<S: TraitStore>(store: S, trusted: Option<&[&str]>) -> StoreFirst<MemoryProfiles, S> {
        StoreFirst {
            profiles: MemoryProfiles::new().with(
                PHONE,
                json!({"vip": false, "docs_last_2_days": 2, "plan": "basic"}),
            ),
            store: Some(store),
            trusted: trusted.map(|names| names.iter().map(|n| (*n).to_owned()).collect()),
            store_budget: Duration::from_millis(50),
        }
    }

    fn asking(names: &[&str]) -> TraitsQuery {
        let names: BTreeSet<String> = names.iter().map(|n| (*n).to_owned()).collect();
        TraitsQuery::include(Some(&names))
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(2)
    }

    #[tokio::test]
    async fn traits_the_store_holds_make_no_profile_api_request() {
        let reader = reader(stored(json!({"vip": true, "plan": "gold"})).await, None);
        let (traits, from) = reader
            .traits_found(&customer(), &asking(&["vip"]), soon())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (traits, from),
            (
                json!({"vip": true}).as_object().cloned().unwrap(),
                TraitsFrom::Store
            )
        );
        assert!(reader.profiles.asked().is_empty());
    }

    #[tokio::test]
    async fn what_the_store_lacks_or_is_not_trusted_for_comes_from_the_profile_api() {
        let store = stored(json!({"vip": true, "docs_last_2_days": 9})).await;
        let reader = reader(store, Some(&["vip"]));
        let (traits, from) = reader
            .traits_found(
                &customer(),
                &asking(&["vip", "docs_last_2_days", "plan"]),
                soon(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, TraitsFrom::StoreAndProfileApi);
        // vip from the store; the untrusted counter and the missing plan from Segment.
        assert_eq!(traits["vip"], true);
        assert_eq!(traits["docs_last_2_days"], 2);
        assert_eq!(traits["plan"], "basic");
        let asked = reader.profiles.asked();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].1.included(), Some("docs_last_2_days,plan"));
    }

    #[tokio::test]
    async fn a_miss_a_failing_or_a_hanging_store_goes_to_the_profile_api_in_time() {
        let miss = reader(MemoryTraitStore::new(), None);
        let failing = reader(MemoryTraitStore::failing(StoreError::Throttled), None);
        let hanging = reader(MemoryTraitStore::hanging(), None);
        for profiles in [&miss.profiles, &failing.profiles, &hanging.profiles] {
            assert!(profiles.asked().is_empty());
        }
        let query = asking(&["vip"]);
        let started = Instant::now();
        for found in [
            miss.traits_found(&customer(), &query, soon()).await,
            failing.traits_found(&customer(), &query, soon()).await,
            hanging.traits_found(&customer(), &query, soon()).await,
        ] {
            let (traits, from) = found.unwrap().unwrap();
            assert_eq!(
                (traits["vip"].clone(), from),
                (json!(false), TraitsFrom::ProfileApi)
            );
        }
        // The hanging store cost its budget, not the decision's deadline.
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn rules_that_may_read_any_trait_go_to_the_profile_api() {
        let reader = reader(stored(json!({"vip": true})).await, None);
        let (_, from) = reader
            .traits_found(&customer(), &TraitsQuery::include(None), soon())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, TraitsFrom::ProfileApi);
    }
}
