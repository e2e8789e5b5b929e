//! The rule set decisions read, replaceable while they run: a new set takes effect at the
//! next decision, and a decision already under way finishes on the set it started with.
//! Only a set that compiled can be put in, so a bad edit never replaces a good set. The
//! shadow set (a candidate judged beside the live one) is held the same way, and may be absent.

use std::sync::{Arc, PoisonError, RwLock};

use super::RuleSet;

pub struct RulesInUse {
    current: RwLock<Arc<RuleSet>>,
}

impl RulesInUse {
    pub fn new(rules: RuleSet) -> Self {
        Self {
            current: RwLock::new(Arc::new(rules)),
        }
    }

    /// The set in use now. Cheap (one reference count); hold it for one decision.
    pub fn current(&self) -> Arc<RuleSet> {
        // Replacing is one pointer write, so a poisoned lock still holds a whole set.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// From the next decision on, `rules`.
    pub fn replace(&self, rules: RuleSet) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rules);
    }
}

/// The shadow set in use, when there is one.
#[derive(Default)]
pub struct ShadowInUse {
    current: RwLock<Option<Arc<RuleSet>>>,
}

impl ShadowInUse {
    pub fn new(rules: Option<RuleSet>) -> Self {
        Self {
            current: RwLock::new(rules.map(Arc::new)),
        }
    }

    /// The shadow set now, if any; hold it for one decision.
    pub fn current(&self) -> Option<Arc<RuleSet>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// From the next decision on, `rules` is the shadow.
    pub fn replace(&self, rules: RuleSet) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(rules));
    }
}

impl From<RuleSet> for RulesInUse {
    fn from(rules: RuleSet) -> Self {
        Self::new(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(default: &str) -> RuleSet {
        RuleSet::compile(&format!(
            r#"{{"rules": [], "default": "{default}", "on_error": "agent"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_replacement_shows_in_the_next_read_and_not_in_one_held() {
        let live = RulesInUse::new(rules("bot"));
        let held = live.current();
        live.replace(rules("agent"));
        let facts = crate::domain::rules::Facts {
            traits: &serde_json::Map::new(),
            channel: None,
        };
        assert_eq!(held.evaluate(&facts).transition, "bot");
        assert_eq!(live.current().evaluate(&facts).transition, "agent");
    }
}
