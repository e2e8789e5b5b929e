//! Segment adapters: the Profile API (reading traits) and the Tracking API (sending events).

pub mod cache;
pub mod message;
pub mod profiles;
pub mod tracking;

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::{Map, Value};

pub use profiles::{ProfileApi, ProfileError, TraitsQuery};

use crate::identity::Identifier;
use crate::routing::ProfileSource;

impl ProfileSource for ProfileApi {
    type Error = ProfileError;

    async fn traits(
        &self,
        identifier: &Identifier,
        include: Option<&BTreeSet<String>>,
        deadline: Instant,
    ) -> Result<Option<Map<String, Value>>, ProfileError> {
        self.fetch_traits(identifier, &TraitsQuery::include(include), deadline)
            .await
    }

    async fn warm_up(&self) {
        ProfileApi::warm_up(self).await;
    }
}
