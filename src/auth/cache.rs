//! Derived signing keys, kept so a request costs one HMAC of the string to sign instead of
//! the four-HMAC derivation from the secret.
//!
//! A key is good for one client, one UTC day and one region (the service is always
//! `dynamodb`). Only a key whose signature verified is kept, so an access key id alone,
//! which is no secret, cannot fill the cache with made-up regions. Keys of days more than
//! one away from the newest are dropped as it arrives (requests are at most minutes old,
//! and around midnight both days are in use), and the whole cache is emptied past
//! [`MAX_ENTRIES`], so it stays bounded whatever the clients do.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// Far more than clients × regions × two days in any deployment.
const MAX_ENTRIES: usize = 4096;

/// Region → signing key, for one client and one day.
type ByRegion = HashMap<Box<str>, Arc<[u8]>>;

#[derive(Debug, Default)]
pub(super) struct KeyCache {
    /// Keyed by client index and UTC day number.
    keys: RwLock<HashMap<(usize, i64), ByRegion>>,
}

impl KeyCache {
    pub(super) fn get(&self, client: usize, day: i64, region: &str) -> Option<Arc<[u8]>> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.get(&(client, day))?.get(region).cloned()
    }

    pub(super) fn insert(&self, client: usize, day: i64, region: &str, key: Arc<[u8]>) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        keys.retain(|&(_, kept), _| kept.abs_diff(day) <= 1);
        if keys.values().map(HashMap::len).sum::<usize>() >= MAX_ENTRIES {
            keys.clear();
        }
        keys.entry((client, day))
            .or_default()
            .insert(region.into(), key);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.values().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Arc<[u8]> {
        Arc::from([byte; 32].as_slice())
    }

    #[test]
    fn keys_are_per_client_day_and_region() {
        let cache = KeyCache::default();
        cache.insert(0, 100, "us-east-1", key(1));
        assert_eq!(cache.get(0, 100, "us-east-1"), Some(key(1)));
        assert_eq!(cache.get(1, 100, "us-east-1"), None);
        assert_eq!(cache.get(0, 101, "us-east-1"), None);
        assert_eq!(cache.get(0, 100, "eu-west-1"), None);
    }

    #[test]
    fn days_long_gone_are_dropped() {
        let cache = KeyCache::default();
        cache.insert(0, 100, "us-east-1", key(1));
        cache.insert(0, 101, "us-east-1", key(2));
        assert_eq!(cache.len(), 2);
        cache.insert(0, 102, "us-east-1", key(3));
        assert_eq!(cache.get(0, 100, "us-east-1"), None);
        assert_eq!(cache.get(0, 101, "us-east-1"), Some(key(2)));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = KeyCache::default();
        for region in 0..MAX_ENTRIES * 2 {
            cache.insert(0, 100, &region.to_string(), key(0));
            assert!(cache.len() <= MAX_ENTRIES);
        }
    }
}
