//! trait-sync's work: the traits an Engage delivery carries, written under every identifier
//! it names (newer values only: [`StoredTraits::apply`]'s rule), within the time Segment
//! waits for a Lambda destination (5 s, then it retries: Segment's "Destination retries").
//!
//! A computed trait's identify names the profile by `userId` and often nothing else ("Using
//! Engage data"), while a call is looked up by phone. So a delivery without the phone asks
//! the Profile API for the profile's external ids (paced and counted against the space's
//! limit like every other request) and writes under the phone and email found there too:
//! one read at decision time, and the ids come from Segment's own profile of that user,
//! never from what the delivery claims.
//!
//! [`StoredTraits::apply`]: crate::domain::trait_store::StoredTraits::apply

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::domain::arrival::Arrival;
use crate::domain::identity::{Customer, Identifier};
use crate::domain::ports::{ProfileError, Profiles, StoreError, TraitStore};
use crate::domain::trait_store::TraitUpdate;

/// The most keys one delivery writes, its own and those the profile adds.
const MAX_KEYS: usize = 16;

pub struct TraitSync<S, P> {
    pub store: S,
    /// Where a delivery without a phone finds the profile's; `None`: its own ids only.
    pub profiles: Option<P>,
    /// The identifier type of phone numbers (`SEGMENT_PHONE_IDENTIFIER`).
    pub phone_identifier: String,
    /// The budget for one delivery's writes (`SYNC_DEADLINE_MS`, under Segment's 5 s).
    pub deadline: Duration,
}

/// What a delivery changed: the keys it named, and the trait values written across them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    pub keys: usize,
    pub written: usize,
}

/// Why a delivery is not (wholly) written; Segment sends it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the profile's phone could not be looked up: {0}")]
    Profile(#[from] ProfileError),
}

impl<S: TraitStore, P: Profiles> TraitSync<S, P> {
    /// Writes `update` under each of its identifiers, then under the phone and email the
    /// profile holds when the delivery named no phone. The first failure (a throttled or
    /// failed write, a lookup that failed, the deadline) fails the delivery, so Segment sends
    /// it again and the keys already written take the repeat as nothing new.
    pub async fn sync(&self, update: &TraitUpdate, arrival: &Arrival) -> Result<Synced, SyncError> {
        let deadline = arrival.deadline(self.deadline);
        let mut written = self
            .write_under(&update.identifiers, update, deadline)
            .await?;
        let mut keys = update.identifiers.len();
        let more = self.profile_identifiers(update, deadline).await?;
        if !more.is_empty() {
            written += self.write_under(&more, update, deadline).await?;
            keys += more.len();
        }
        let masked: Vec<String> = update
            .identifiers
            .iter()
            .chain(&more)
            .map(Identifier::masked)
            .collect();
        tracing::info!(
            keys = %masked.join(","),
            traits = update.traits.len(),
            written,
            latency_us = arrival.at.elapsed().as_micros() as u64,
            "traits synced"
        );
        Ok(Synced { keys, written })
    }

    async fn write_under(
        &self,
        identifiers: &[Identifier],
        update: &TraitUpdate,
        deadline: Instant,
    ) -> Result<usize, StoreError> {
        let mut written = 0;
        for identifier in identifiers {
            let write = self
                .store
                .write(identifier, &update.traits, update.at, deadline);
            let names = tokio::time::timeout_at(deadline.into(), write)
                .await
                .unwrap_or(Err(StoreError::Timeout(self.deadline.as_millis() as u64)));
            match names {
                Ok(names) => written += names.len(),
                // A poison delivery: repeating it for hours cannot change that.
                Err(error @ StoreError::TooLarge) => {
                    tracing::error!(key = %identifier.masked(), %error, "traits not written and never can be; the delivery is acknowledged");
                }
                Err(error) => {
                    tracing::error!(key = %identifier.masked(), %error, "traits not written; Segment retries the delivery");
                    return Err(error);
                }
            }
        }
        Ok(written)
    }

    /// The phone and email Segment's profile holds and the delivery did not name; none when
    /// it named a phone, there is no Profile API, or Segment does not know the profile.
    async fn profile_identifiers(
        &self,
        update: &TraitUpdate,
        deadline: Instant,
    ) -> Result<Vec<Identifier>, ProfileError> {
        let has_phone = update
            .identifiers
            .iter()
            .any(|id| id.kind() == self.phone_identifier);
        let (Some(profiles), Some(first), false) =
            (&self.profiles, update.identifiers.first(), has_phone)
        else {
            return Ok(Vec::new());
        };
        let looked_up =
            tokio::time::timeout_at(deadline.into(), profiles.external_ids(first, deadline))
                .await
                .unwrap_or(Err(ProfileError::Timeout(self.deadline.as_millis() as u64)));
        let ids = match looked_up {
            Ok(ids) => ids.unwrap_or_default(),
            Err(error) => {
                tracing::error!(customer = %first.masked(), %error, "the profile's phone not looked up; Segment retries the delivery");
                return Err(error);
            }
        };
        let room = MAX_KEYS.saturating_sub(update.identifiers.len());
        Ok(ids
            .iter()
            .filter_map(|id| self.wanted(id))
            .filter(|id| !update.identifiers.contains(id))
            .fold(Vec::new(), |mut found, id| {
                if !found.contains(&id) && found.len() < room {
                    found.push(id);
                }
                found
            }))
    }

    /// An external id a decision can look up by: a phone or an email.
    fn wanted(&self, id: &Value) -> Option<Identifier> {
        let kind = id.get("type")?.as_str()?;
        let value = id.get("id")?.as_str()?;
        if kind != self.phone_identifier && kind != "email" {
            return None;
        }
        match Identifier::of_kind(kind, value, &self.phone_identifier, "external_id") {
            Ok(Customer::Identified(identifier)) => Some(identifier),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::{Map, Value, json};

    use super::*;
    use crate::adapters::memory::{MemoryProfiles, MemoryTraitStore};
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

    fn sync_with(
        store: MemoryTraitStore,
        deadline: Duration,
    ) -> TraitSync<MemoryTraitStore, MemoryProfiles> {
        TraitSync {
            store,
            profiles: None,
            phone_identifier: "phone".into(),
            deadline,
        }
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
            Err(SyncError::Store(StoreError::Throttled))
        );
        let hanging = sync_with(MemoryTraitStore::hanging(), Duration::from_millis(50));
        assert_eq!(
            hanging.sync(&delivery, &arrived()).await,
            Err(SyncError::Store(StoreError::Timeout(50)))
        );
    }

    fn by_user_id(traits: Value) -> TraitUpdate {
        let Ok(Customer::Identified(user)) =
            Identifier::from_fields(json!({"user_id": "u-7"}).as_object().unwrap(), "phone")
        else {
            panic!("a user id");
        };
        TraitUpdate {
            identifiers: vec![user],
            traits: traits.as_object().cloned().unwrap_or_default(),
            at: Timestamp::parse_rfc3339("2026-12-01T10:00:00Z").unwrap(),
        }
    }

    #[tokio::test]
    async fn a_delivery_without_a_phone_is_written_under_the_profiles_phone_and_email_too() {
        let profiles = MemoryProfiles::new().with_external_ids(
            "user_id:u-7",
            json!([
                {"type": "user_id", "id": "u-7"},
                {"type": "phone", "id": "+1 555 555 0107"},
                {"type": "email", "id": "Ann@Example.com"},
                {"type": "anonymous_id", "id": "anon-1"}
            ]),
        );
        let sync = TraitSync {
            profiles: Some(profiles),
            ..sync_with(MemoryTraitStore::new(), Duration::from_secs(4))
        };
        let synced = sync
            .sync(&by_user_id(json!({"vip": true})), &arrived())
            .await
            .unwrap();
        assert_eq!(
            synced,
            Synced {
                keys: 3,
                written: 3
            }
        );
        for key in ["user_id:u-7", "phone:+15555550107", "email:ann@example.com"] {
            assert_eq!(sync.store.item(key).expect(key).traits["vip"], json!(true));
        }
        assert!(sync.store.item("anonymous_id:anon-1").is_none());
    }

    #[tokio::test]
    async fn a_failed_phone_lookup_fails_the_delivery_after_writing_its_own_keys() {
        let sync = TraitSync {
            profiles: Some(MemoryProfiles::failing(ProfileError::RateLimited {
                retry_after: None,
            })),
            ..sync_with(MemoryTraitStore::new(), Duration::from_secs(4))
        };
        let failed = sync
            .sync(&by_user_id(json!({"vip": true})), &arrived())
            .await;
        assert!(matches!(failed, Err(SyncError::Profile(_))), "{failed:?}");
        assert!(sync.store.item("user_id:u-7").is_some());
    }
}
