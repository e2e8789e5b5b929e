//! The trait store's rules: what an Engage delivery updates, and which value of a trait wins.
//! Engage sends only the traits that changed, out of order and more than once (it retries a
//! failed delivery for hours: Segment's "Destination retries"), so each trait keeps the event
//! time of its value and a delivery writes a trait only when it is newer than that; a repeat
//! changes nothing ("Engage FAQ": consumers must be idempotent).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::domain::identity::Identifier;
use crate::domain::timestamps::Timestamp;

/// What one Engage delivery says: whose profile (every identifier it names, each a key of
/// the store), which traits changed, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct TraitUpdate {
    pub identifiers: Vec<Identifier>,
    pub traits: Map<String, Value>,
    pub at: Timestamp,
}

/// One identifier's stored traits, and the event time (epoch ms) of each value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredTraits {
    pub traits: Map<String, Value>,
    pub written_at: BTreeMap<String, u64>,
}

impl StoredTraits {
    /// Writes each of `traits` whose value is newer than the stored one's (`at_ms` after its
    /// time; an equal time is a repeat); the names written.
    pub fn apply(&mut self, traits: &Map<String, Value>, at_ms: u64) -> Vec<String> {
        let mut written = Vec::new();
        for (name, value) in traits {
            if self.written_at.get(name).is_some_and(|last| *last >= at_ms) {
                continue;
            }
            self.traits.insert(name.clone(), value.clone());
            self.written_at.insert(name.clone(), at_ms);
            written.push(name.clone());
        }
        written
    }

    /// The traits a decision may take from the store: those named in `trusted`, or all of
    /// them when the operator named none.
    pub fn trusted(&self, trusted: Option<&BTreeSet<String>>) -> Map<String, Value> {
        match trusted {
            None => self.traits.clone(),
            Some(names) => self
                .traits
                .iter()
                .filter(|(name, _)| names.contains(*name))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn traits(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_newer_delivery_wins_whatever_order_they_arrive_in() {
        let older = traits(json!({"vip": false}));
        let newer = traits(json!({"vip": true}));
        for order in [
            [(&older, 1_000), (&newer, 2_000)],
            [(&newer, 2_000), (&older, 1_000)],
        ] {
            let mut stored = StoredTraits::default();
            for (delivery, at) in order {
                stored.apply(delivery, at);
            }
            assert_eq!(stored.traits, newer);
            assert_eq!(stored.written_at["vip"], 2_000);
        }
    }

    #[test]
    fn a_repeat_changes_nothing_and_other_traits_are_left_alone() {
        let mut stored = StoredTraits::default();
        stored.apply(&traits(json!({"vip": true, "plan": "gold"})), 1_000);
        let before = stored.clone();
        assert!(
            stored
                .apply(&traits(json!({"vip": true})), 1_000)
                .is_empty()
        );
        assert_eq!(stored, before);
        // Only what changed is sent: `plan` stays.
        assert_eq!(stored.apply(&traits(json!({"vip": false})), 2_000), ["vip"]);
        assert_eq!(stored.traits, traits(json!({"vip": false, "plan": "gold"})));
    }

    #[test]
    fn only_the_trusted_traits_leave_the_store() {
        let mut stored = StoredTraits::default();
        stored.apply(&traits(json!({"vip": true, "docs_last_2_days": 4})), 1_000);
        let trusted: BTreeSet<String> = ["vip".to_owned()].into();
        assert_eq!(stored.trusted(Some(&trusted)), traits(json!({"vip": true})));
        assert_eq!(stored.trusted(None), stored.traits);
    }
}
