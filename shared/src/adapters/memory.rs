//! In-memory adapters of the [`ports`](crate::domain::ports): profiles kept in a map and a sink that
//! keeps what it was sent. They behave as the Segment adapters do where the operations can
//! tell (an unknown customer is `None`, `include=` and `limit` are applied), and can be told
//! to fail or hang. The operations' and the edge's own tests run through them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::domain::identity::Identifier;
use crate::domain::ports::{
    Delivered, EventSink, ProfileError, Profiles, StoreError, TrackingError, TraitStore,
    TraitsQuery, Undelivered,
};
use crate::domain::timestamps::Timestamp;
use crate::domain::track_message::EncodedMessage;
use crate::domain::trait_store::StoredTraits;

/// How an in-memory adapter answers.
#[derive(Debug, Clone, Default)]
enum Behaviour<E> {
    #[default]
    Answer,
    Fail(E),
    /// Never answers: the caller's deadline must end the wait.
    Hang,
}

impl<E: Clone> Behaviour<E> {
    /// Before an answer: nothing, the failure, or a wait that never ends.
    async fn meet(&self) -> Result<(), E> {
        match self {
            Self::Answer => Ok(()),
            Self::Fail(error) => Err(error.clone()),
            Self::Hang => std::future::pending().await,
        }
    }
}

/// Profiles by identifier (`phone:+15555550100`).
#[derive(Debug, Default)]
pub struct MemoryProfiles {
    profiles: HashMap<String, (Map<String, Value>, Vec<Value>)>,
    behaviour: Behaviour<ProfileError>,
    asked: Mutex<Vec<(String, TraitsQuery)>>,
}

impl MemoryProfiles {
    pub fn new() -> Self {
        Self::default()
    }

    /// With a profile of these traits (a JSON object) under `identifier`.
    pub fn with(mut self, identifier: &str, traits: Value) -> Self {
        let traits = match traits {
            Value::Object(traits) => traits,
            _ => Map::new(),
        };
        let external_ids = match identifier.split_once(':') {
            Some((kind, id)) => vec![serde_json::json!({"type": kind, "id": id})],
            None => Vec::new(),
        };
        self.profiles
            .insert(identifier.to_owned(), (traits, external_ids));
        self
    }

    /// With these external ids (`[{"type", "id"}]`) on the profile under `identifier`.
    pub fn with_external_ids(mut self, identifier: &str, ids: Value) -> Self {
        let ids = match ids {
            Value::Array(ids) => ids,
            _ => Vec::new(),
        };
        self.profiles.entry(identifier.to_owned()).or_default().1 = ids;
        self
    }

    /// Every read fails with `error`.
    pub fn failing(error: ProfileError) -> Self {
        Self {
            behaviour: Behaviour::Fail(error),
            ..Self::default()
        }
    }

    /// No read ever answers.
    pub fn hanging() -> Self {
        Self {
            behaviour: Behaviour::Hang,
            ..Self::default()
        }
    }

    /// Each traits read so far: the identifier and the query.
    pub fn asked(&self) -> Vec<(String, TraitsQuery)> {
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Profiles for MemoryProfiles {
    async fn traits(
        &self,
        identifier: &Identifier,
        query: &TraitsQuery,
        _deadline: Instant,
    ) -> Result<Option<Map<String, Value>>, ProfileError> {
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((identifier.to_string(), query.clone()));
        self.behaviour.meet().await?;
        let Some((traits, _)) = self.profiles.get(&identifier.to_string()) else {
            return Ok(None);
        };
        let wanted: Option<Vec<&str>> = query.included().map(|keys| keys.split(',').collect());
        Ok(Some(
            traits
                .iter()
                .filter(|(key, _)| {
                    wanted
                        .as_ref()
                        .is_none_or(|keys| keys.contains(&key.as_str()))
                })
                .take(usize::from(query.limit()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        ))
    }

    async fn external_ids(
        &self,
        identifier: &Identifier,
        _deadline: Instant,
    ) -> Result<Option<Vec<Value>>, ProfileError> {
        self.behaviour.meet().await?;
        Ok(self
            .profiles
            .get(&identifier.to_string())
            .map(|(_, ids)| ids.clone()))
    }
}

/// A sink that keeps every message it accepts.
#[derive(Debug, Default)]
pub struct MemorySink {
    behaviour: Behaviour<TrackingError>,
    /// With `Fail`: how many messages of a delivery are accepted before it fails.
    accepts: usize,
    sent: Mutex<Vec<EncodedMessage>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every delivery fails with `error`, accepting none of its messages.
    pub fn failing(error: TrackingError) -> Self {
        Self::failing_after(0, error)
    }

    /// A delivery's first `accepted` messages are accepted, then it fails with `error` (a
    /// delivery split in batches whose later one was refused).
    pub fn failing_after(accepted: usize, error: TrackingError) -> Self {
        Self {
            behaviour: Behaviour::Fail(error),
            accepts: accepted,
            ..Self::default()
        }
    }

    /// No delivery is ever answered: the caller's deadline must end the wait.
    pub fn hanging() -> Self {
        Self {
            behaviour: Behaviour::Hang,
            accepts: 0,
            sent: Mutex::default(),
        }
    }

    /// Every message accepted so far, as the JSON Segment would receive.
    pub fn sent(&self) -> Vec<Value> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|message| serde_json::from_slice(&message.json).ok())
            .collect()
    }
}

impl EventSink for MemorySink {
    async fn send(
        &self,
        messages: &[EncodedMessage],
        _deadline: Instant,
    ) -> Result<Delivered, Undelivered> {
        let mut sent = self
            .sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &self.behaviour {
            Behaviour::Answer => {}
            Behaviour::Fail(error) => {
                let accepted = self.accepts.min(messages.len());
                sent.extend_from_slice(&messages[..accepted]);
                return Err(Undelivered {
                    error: error.clone(),
                    accepted,
                });
            }
            Behaviour::Hang => {
                drop(sent);
                return std::future::pending().await;
            }
        }
        sent.extend_from_slice(messages);
        Ok(Delivered {
            messages: messages.len(),
            requests: 1,
            retries: 0,
        })
    }
}

/// A trait store in memory: items by identifier, written by the same newest-wins rule.
#[derive(Debug, Default)]
pub struct MemoryTraitStore {
    items: Mutex<HashMap<String, StoredTraits>>,
    behaviour: Behaviour<StoreError>,
}

impl MemoryTraitStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every read and write fails with `error`.
    pub fn failing(error: StoreError) -> Self {
        Self {
            behaviour: Behaviour::Fail(error),
            items: Mutex::default(),
        }
    }

    /// No read or write is ever answered: the caller's deadline must end the wait.
    pub fn hanging() -> Self {
        Self {
            behaviour: Behaviour::Hang,
            items: Mutex::default(),
        }
    }

    /// The item of `identifier` (`type:value`), as stored.
    pub fn item(&self, identifier: &str) -> Option<StoredTraits> {
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(identifier)
            .cloned()
    }
}

impl TraitStore for MemoryTraitStore {
    async fn read(
        &self,
        identifier: &Identifier,
        _deadline: Instant,
    ) -> Result<Option<StoredTraits>, StoreError> {
        self.behaviour.meet().await?;
        Ok(self.item(&identifier.to_string()))
    }

    async fn write(
        &self,
        identifier: &Identifier,
        traits: &Map<String, Value>,
        at: Timestamp,
        _deadline: Instant,
    ) -> Result<Vec<String>, StoreError> {
        self.behaviour.meet().await?;
        let mut items = self
            .items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let item = items.entry(identifier.to_string()).or_default();
        Ok(item.apply(traits, at.millis()))
    }
}
