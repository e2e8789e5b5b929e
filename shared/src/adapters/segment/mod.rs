//! Segment adapters: the Profile API (reading traits) and the Tracking API (sending events),
//! implementing the [`ports`](crate::domain::ports).

pub mod cache;
pub mod pacer;
pub mod profiles;
pub mod tracking;

use std::time::Instant;

use serde_json::{Map, Value};

pub use crate::domain::ports::{ProfileError, TraitsQuery};
pub use profiles::ProfileApi;
pub use tracking::TrackingApi;

use crate::domain::identity::Identifier;
use crate::domain::ports::{Delivered, EventSink, Profiles, Undelivered};
use crate::domain::track_message::EncodedMessage;

impl Profiles for ProfileApi {
    async fn traits(
        &self,
        identifier: &Identifier,
        query: &TraitsQuery,
        deadline: Instant,
    ) -> Result<Option<Map<String, Value>>, ProfileError> {
        self.fetch_traits(identifier, query, deadline).await
    }

    async fn external_ids(
        &self,
        identifier: &Identifier,
        deadline: Instant,
    ) -> Result<Option<Vec<Value>>, ProfileError> {
        self.fetch_external_ids(identifier, deadline).await
    }

    async fn warm_up(&self) {
        ProfileApi::warm_up(self).await;
    }
}

impl EventSink for TrackingApi {
    async fn send(
        &self,
        messages: &[EncodedMessage],
        deadline: Instant,
    ) -> Result<Delivered, Undelivered> {
        TrackingApi::send(self, messages, deadline).await
    }

    async fn warm_up(&self) {
        TrackingApi::warm_up(self).await;
    }
}
