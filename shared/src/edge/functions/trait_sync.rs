//! trait-sync's entry point: an Engage delivery (Segment's message, or an EventBridge event
//! carrying it) read into a trait update and written to the trait store. What is not an
//! Engage update is acknowledged without a write; a write that failed fails the invocation,
//! which is how a Lambda destination tells Segment to send it again.

use serde_json::json;

use crate::adapters::config::{ConfigError, Startup, TraitSyncConfig};
use crate::adapters::dynamodb::DynamoTraitStore;
use crate::adapters::segment::ProfileApi;
use crate::domain::arrival::Arrival;
use crate::domain::operations::trait_sync::TraitSync;
use crate::domain::ports::{Profiles, TraitStore};
use crate::edge::engage;
use crate::edge::invocation::Input;
use crate::edge::{Answer, Failure, Operation};
use crate::support::metrics::{self, Counter};

/// Reads trait-sync's configuration and builds its clients; nothing is fetched yet.
pub fn load(startup: &Startup<'_>) -> Result<TraitSync<DynamoTraitStore, ProfileApi>, ConfigError> {
    let config = TraitSyncConfig::read(startup)?;
    Ok(TraitSync {
        store: config.store,
        profiles: config
            .profile_api
            .map(|api| ProfileApi::new(api, startup.http.clone())),
        phone_identifier: config.phone_identifier,
        deadline: config.deadline,
    })
}

impl<S: TraitStore, P: Profiles> Operation for TraitSync<S, P> {
    const NAME: &'static str = "trait-sync";
    /// An EventBridge event is at most 256 KB; a Segment message at most 32 KB.
    const MAX_BODY_BYTES: usize = 256 * 1024;
    const FAILS_UNWRITTEN: bool = true;

    async fn call(&self, input: Input, arrival: Arrival) -> Result<Answer, Failure> {
        let Input::Fields(delivery) = input else {
            return Ok(skipped(&engage::EngageError::NotEngage(
                "not a JSON object",
            )));
        };
        let update =
            match engage::decode(&serde_json::Value::Object(delivery), &self.phone_identifier) {
                Ok(update) => update,
                Err(reason) => return Ok(skipped(&reason)),
            };
        match self.sync(&update, &arrival).await {
            Ok(synced) => {
                metrics::add(Counter::TraitsWritten, synced.written as u64);
                Ok(Answer::Json(
                    json!({"keys": synced.keys, "written": synced.written}),
                ))
            }
            Err(error) => Err(Failure::new(503, "traits_not_written", error.to_string())),
        }
    }

    async fn warm_up(&self) {
        if let Some(profiles) = &self.profiles {
            profiles.warm_up().await;
        }
    }
}

/// A delivery that can never be written: acknowledged, so Segment does not send it for
/// hours, and logged with its reason and no value.
fn skipped(reason: &engage::EngageError) -> Answer {
    metrics::add(Counter::TraitDeliveriesSkipped, 1);
    tracing::warn!(function = "trait-sync", %reason, "delivery acknowledged without a write");
    Answer::Json(json!({"written": 0, "skipped": reason.to_string()}))
}
