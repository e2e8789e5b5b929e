//! The routing updates a deployed route-decision reads through Lambda's local extensions: the
//! rules feed (AppConfig or Parameter Store), the emergency override (Parameter Store) and the
//! shadow set's feed, each kept fresh as [`crate::adapters::refresh`] describes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::adapters::emergency::EmergencyOverride;
use crate::adapters::refresh::{self, FIRST_FETCH};
use crate::adapters::rules_feed::RulesFeed;
use crate::domain::ports::RoutingUpdates;
use crate::domain::rules::RuleSet;

/// The rules feed, the emergency override and the shadow's feed, where configured.
pub struct ExtensionUpdates {
    pub rules_feed: Option<Arc<RulesFeed>>,
    pub emergency: Option<Arc<EmergencyOverride>>,
    pub shadow_feed: Option<Arc<RulesFeed>>,
}

impl ExtensionUpdates {
    /// Keeps the feed, the override and the shadow's feed fresh, each waiting at most what
    /// `within` says when its turn comes; a decision never waits for the shadow (`deciding`).
    async fn refresh_each(&self, within: impl Fn() -> Duration, deciding: bool) {
        if let Some(feed) = &self.rules_feed {
            refresh::keep_fresh(feed, within()).await;
            feed.report();
        }
        if let Some(emergency) = &self.emergency {
            refresh::keep_fresh(emergency, within()).await;
        }
        if let Some(shadow) = &self.shadow_feed {
            let wait = if deciding { Duration::ZERO } else { within() };
            refresh::keep_fresh(shadow, wait).await;
        }
    }
}

impl RoutingUpdates for ExtensionUpdates {
    /// Each waits for what is left of the caller's time when its turn comes.
    async fn refresh(&self, by: Instant) {
        self.refresh_each(|| by.saturating_duration_since(Instant::now()), true)
            .await;
    }

    fn overriding(&self, rules: &RuleSet) -> Option<String> {
        self.emergency.as_ref()?.transition(rules)
    }

    /// Each gets its own first read's time: nobody is waiting on a warm-up.
    async fn warm_up(&self) {
        self.refresh_each(|| FIRST_FETCH, false).await;
    }
}
