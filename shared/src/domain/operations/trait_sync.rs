//! trait-sync's work: the traits an Engage delivery carries, written under every identifier
//! it names (newer values only: [`StoredTraits::apply`]'s rule), within the time Segment
//! waits for a Lambda destination (5 s, then it retries: Segment's "Destination retries").
//!
//! [`StoredTraits::apply`]: crate::domain::trait_store::StoredTraits::apply

use std::time::Duration;

use crate::domain::arrival::Arrival;
use crate::domain::ports::{StoreError, TraitStore};
use crate::domain::trait_store::TraitUpdate;

pub struct TraitSync<S> {
    pub store: S,
    /// The budget for one delivery's writes (`SYNC_DEADLINE_MS`, under Segment's 5 s).
    pub deadline: Duration,
}

/// What a delivery changed: the keys it named, and the trait values written across them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    pub keys: usize,
    pub written: usize,
}

impl<S: TraitStore> TraitSync<S> {
    /// Writes `update` under each of its identifiers; the first failure (a throttled or
    /// failed write, or the deadline) fails the delivery, so Segment sends it again and the
    /// keys already written take the repeat as nothing new.
    pub async fn sync(
        &self,
        update: &TraitUpdate,
        arrival: &Arrival,
    ) -> Result<Synced, StoreError> {
        let deadline = arrival.deadline(self.deadline);
        let mut written = 0;
        for identifier in &update.identifiers {
            let write = self
                .store
                .write(identifier, &update.traits, update.at, deadline);
            let names = tokio::time::timeout_at(deadline.into(), write)
                .await
                .unwrap_or(Err(StoreError::Timeout(self.deadline.as_millis() as u64)));
            match names {
                Ok(names) => written += names.len(),
                Err(error) => {
                    tracing::error!(key = %identifier.masked(), %error, "traits not written; Segment retries the delivery");
                    return Err(error);
                }
            }
        }
        let keys: Vec<String> = update.identifiers.iter().map(|id| id.masked()).collect();
        tracing::info!(
            keys = %keys.join(","),
            traits = update.traits.len(),
            written,
            latency_us = arrival.at.elapsed().as_micros() as u64,
            "traits synced"
        );
        Ok(Synced {
            keys: update.identifiers.len(),
            written,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::{Map, Value, json};

    use super::*;
    use crate::adapters::memory::MemoryTraitStore;
    use crate::domain::identity::{Customer, Identifier};
    use crate::domain::timestamps::Timestamp;

    fn update(traits: Value, at: &str) -> TraitUpdate {
        let fields = json!({"phone": "+15555550100"});
        let Ok(Customer::Identified(phone)) =
            Identifier::from_fields(fields.as_object().unwrap(), "phone")
        else {
            panic!("a phone");
        };
        let Ok(Customer::Identified(user)) =
            Identifier::from_fields(json!({"user_id": "u-42"}).as_object().unwrap(), "phone")
        else {
            panic!("a user id");
        };
        TraitUpdate {
            identifiers: vec![phone, user],
            traits: traits.as_object().cloned().unwrap_or_default(),
            at: Timestamp::parse_rfc3339(at).unwrap(),
        }
    }

    fn sync_with(store: MemoryTraitStore, deadline: Duration) -> TraitSync<MemoryTraitStore> {
        TraitSync { store, deadline }
    }

    fn arrived() -> Arrival {
        Arrival {
            at: Instant::now(),
            answer_by: Instant::now() + Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn every_key_gets_the_newer_values_and_a_repeat_writes_nothing() {
        let sync = sync_with(MemoryTraitStore::new(), Duration::from_secs(4));
        let newer = update(json!({"vip": true}), "2026-12-01T10:00:01Z");
        let older = update(
            json!({"vip": false, "plan": "gold"}),
            "2026-12-01T10:00:00Z",
        );
        let first = sync.sync(&newer, &arrived()).await.unwrap();
        assert_eq!(
            first,
            Synced {
                keys: 2,
                written: 2
            }
        );
        // The older delivery, arriving late, leaves vip and adds plan.
        assert_eq!(sync.sync(&older, &arrived()).await.unwrap().written, 2);
        for key in ["phone:+15555550100", "user_id:u-42"] {
            let item = sync.store.item(key).expect("an item");
            let expected: Map<String, Value> = json!({"vip": true, "plan": "gold"})
                .as_object()
                .cloned()
                .unwrap();
            assert_eq!(item.traits, expected, "{key}");
        }
        assert_eq!(sync.sync(&newer, &arrived()).await.unwrap().written, 0);
    }

    #[tokio::test]
    async fn a_failing_or_hanging_store_fails_the_delivery_by_its_deadline() {
        let failing = sync_with(
            MemoryTraitStore::failing(StoreError::Throttled),
            Duration::from_secs(4),
        );
        let delivery = update(json!({"vip": true}), "2026-12-01T10:00:00Z");
        assert_eq!(
            failing.sync(&delivery, &arrived()).await,
            Err(StoreError::Throttled)
        );
        let hanging = sync_with(MemoryTraitStore::hanging(), Duration::from_millis(50));
        assert_eq!(
            hanging.sync(&delivery, &arrived()).await,
            Err(StoreError::Timeout(50))
        );
    }
}
