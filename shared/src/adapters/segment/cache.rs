//! A per-instance cache of looked-up traits. A warm Lambda instance often serves the same
//! customer twice within seconds (a Studio flow calling route-decision, then profile-lookup),
//! and Segment allows only 100 Profile API requests a second per space.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A profile Segment did not know may be created any moment (a first page view, a first
/// wrap-up): remember its absence only briefly.
const NOT_FOUND_TTL: Duration = Duration::from_secs(5);

struct Entry<V> {
    value: Option<V>,
    expires: Instant,
}

/// Entries expire after their TTL and are never served past it. When full, expired entries
/// go first, then the one closest to expiry.
pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, Entry<V>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    /// A zero `ttl` turns the cache off.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        // The table is sized once for the bound: growing it by doubling as customers arrive
        // would copy it and leave the old tables' memory behind in the allocator.
        let entries = if ttl.is_zero() {
            HashMap::new()
        } else {
            HashMap::with_capacity(capacity)
        };
        Self {
            ttl,
            capacity,
            entries: Mutex::new(entries),
        }
    }

    /// The table, even after a panic elsewhere poisoned the lock: every operation on it
    /// leaves it whole, so what it holds is still true.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// `Some(Some(v))` a cached value, `Some(None)` a cached "not found", `None` a miss.
    pub fn get(&self, key: &K) -> Option<Option<V>> {
        self.get_at(key, Instant::now())
    }

    /// Remembers a value, or `None` for "not found" (kept at most [`NOT_FOUND_TTL`]).
    pub fn put(&self, key: K, value: Option<V>) {
        self.put_at(key, value, Instant::now());
    }

    fn get_at(&self, key: &K, now: Instant) -> Option<Option<V>> {
        if !self.enabled() {
            return None;
        }
        let mut entries = self.lock();
        match entries.get(key) {
            Some(entry) if now < entry.expires => Some(entry.value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put_at(&self, key: K, value: Option<V>, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, entry| now < entry.expires);
            if entries.len() >= self.capacity
                && let Some(soonest) = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.expires)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&soonest);
            }
        }
        let ttl = if value.is_some() {
            self.ttl
        } else {
            self.ttl.min(NOT_FOUND_TTL)
        };
        entries.insert(
            key,
            Entry {
                value,
                expires: now + ttl,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_value_is_served_until_its_ttl_and_never_after() {
        // GIVEN a 30 s cache holding a value put at t0
        let cache = TtlCache::new(30 * SECOND, 10);
        let t0 = Instant::now();
        cache.put_at("k", Some(1), t0);
        // THEN it is served just before the TTL and not at it
        assert_eq!(cache.get_at(&"k", t0 + 29 * SECOND), Some(Some(1)));
        assert_eq!(cache.get_at(&"k", t0 + 30 * SECOND), None);
        // AND the expired entry is gone
        assert!(cache.is_empty());
    }

    #[test]
    fn not_found_is_remembered_only_briefly() {
        let cache = TtlCache::<&str, i32>::new(30 * SECOND, 10);
        let t0 = Instant::now();
        cache.put_at("unknown", None, t0);
        assert_eq!(cache.get_at(&"unknown", t0 + 4 * SECOND), Some(None));
        assert_eq!(cache.get_at(&"unknown", t0 + NOT_FOUND_TTL), None);
        // A TTL shorter than the not-found TTL still applies to not-found.
        let short = TtlCache::<&str, i32>::new(2 * SECOND, 10);
        short.put_at("unknown", None, t0);
        assert_eq!(short.get_at(&"unknown", t0 + 2 * SECOND), None);
    }

    #[test]
    fn a_zero_ttl_turns_the_cache_off() {
        let cache = TtlCache::new(Duration::ZERO, 10);
        cache.put("k", Some(1));
        assert_eq!(cache.get(&"k"), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_size_is_bounded_expired_entries_going_first() {
        let cache = TtlCache::new(10 * SECOND, 3);
        let t0 = Instant::now();
        cache.put_at(1, Some(1), t0);
        cache.put_at(2, Some(2), t0 + 2 * SECOND);
        cache.put_at(3, Some(3), t0 + 3 * SECOND);
        // Full, nothing expired: the entry closest to expiry (1) makes room.
        cache.put_at(4, Some(4), t0 + 4 * SECOND);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get_at(&1, t0 + 4 * SECOND), None);
        assert_eq!(cache.get_at(&2, t0 + 4 * SECOND), Some(Some(2)));
        // Later, 2 and 3 have expired: both go, 4 stays.
        cache.put_at(5, Some(5), t0 + 13 * SECOND + SECOND / 2);
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get_at(&4, t0 + 13 * SECOND + SECOND / 2),
            Some(Some(4))
        );
        // Replacing a key never evicts another.
        cache.put_at(5, Some(50), t0 + 14 * SECOND);
        assert_eq!(cache.len(), 2);
    }
}
