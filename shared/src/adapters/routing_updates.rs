//! The routing updates a deployed route-decision reads through Lambda's local extensions: the
//! rules feed (AppConfig or Parameter Store) and the emergency override (Parameter Store),
//! each kept fresh as [`crate::adapters::refresh`] describes.

use std::sync::Arc;
use std::time::Instant;

use crate::adapters::emergency::EmergencyOverride;
use crate::adapters::refresh::{self, FIRST_FETCH};
use crate::adapters::rules_feed::RulesFeed;
use crate::domain::ports::RoutingUpdates;
use crate::domain::rules::RuleSet;

/// The rules feed and the emergency override, where configured.
pub struct ExtensionUpdates {
    pub rules_feed: Option<Arc<RulesFeed>>,
    pub emergency: Option<Arc<EmergencyOverride>>,
}

impl ExtensionUpdates {
    /// Each waits for what is left of the caller's time when its turn comes.
    async fn refresh_by(&self, by: Instant) {
        if let Some(feed) = &self.rules_feed {
            refresh::keep_fresh(feed, by.saturating_duration_since(Instant::now())).await;
            feed.report();
        }
        if let Some(emergency) = &self.emergency {
            refresh::keep_fresh(emergency, by.saturating_duration_since(Instant::now())).await;
        }
    }
}

impl RoutingUpdates for ExtensionUpdates {
    async fn refresh(&self, by: Instant) {
        self.refresh_by(by).await;
    }

    fn overriding(&self, rules: &RuleSet) -> Option<String> {
        self.emergency.as_ref()?.transition(rules)
    }

    /// Each gets its own first read's time: nobody is waiting on a warm-up.
    async fn warm_up(&self) {
        if let Some(feed) = &self.rules_feed {
            refresh::keep_fresh(feed, FIRST_FETCH).await;
            feed.report();
        }
        if let Some(emergency) = &self.emergency {
            refresh::keep_fresh(emergency, FIRST_FETCH).await;
        }
    }
}
