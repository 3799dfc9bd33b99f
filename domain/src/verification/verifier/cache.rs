//! The verifier's memory of keys: a bounded cache of the keys in use (quick_cache: CLOCK-Pro
//! eviction, close to S3-FIFO; a hit takes a shard's read lock and sets a bit, with no read log
//! to replay, which made moka 5% of the server's CPU under verify load), an index from key id to
//! hash for the keys it holds, and a Bloom filter of every key hash in the database, so a hash
//! that is surely no key costs no query while a real key that fell out of the cache is fetched
//! again at once.
//!
//! A key evicted with quota use not yet written keeps that use here until the next flush (and a
//! key loaded again before then starts from it), so eviction never hands quota back.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
};

use quick_cache::{Lifecycle, UnitWeighter, sync::Cache};

use super::{CachedKey, Hash32};

/// The false-positive rate of the filter of known hashes: one made-up hash in a thousand costs a
/// query (the others are refused from memory).
const FALSE_POSITIVES: f64 = 0.001;

pub(super) struct KeyCache {
    /// Hashed with foldhash (seeded per process): the keys are SHA-256 digests, and only keys
    /// of the database are inserted, so nobody can choose them to collide.
    keys: Cache<Hash32, Arc<CachedKey>, UnitWeighter, foldhash::fast::RandomState, Evictions>,
    /// Key id -> hash, for the keys in `keys` (kept in step by `insert`, which handles evictions).
    ids: Mutex<HashMap<Arc<str>, Hash32>>,
    /// Quota use of evicted keys not yet written: key id -> (period start, use).
    evicted_quotas: Mutex<HashMap<String, (i64, u64)>>,
    known: RwLock<Known>,
    capacity: u64,
}

/// Every key hash this process knows to exist.
pub(super) struct Known {
    filter: fastbloom::BloomFilter,
    items: usize,
    expected: usize,
}

impl Known {
    /// An empty filter for about `items` hashes (room for twice as many).
    pub(super) fn sized_for(items: usize) -> Known {
        let expected = Ord::max(items.saturating_mul(2), 100_000);
        Known {
            filter: fastbloom::BloomFilter::with_false_pos(FALSE_POSITIVES)
                .expected_items(expected),
            items: 0,
            expected,
        }
    }

    pub(super) fn add(&mut self, hash: &Hash32) {
        if !self.filter.insert(hash) {
            self.items += 1;
        }
    }
}

/// Collects the keys an insert evicts (and the value it replaces); [`KeyCache::insert`] handles
/// them once the cache's shard lock is released.
#[derive(Clone, Default)]
struct Evictions;

impl Lifecycle<Hash32, Arc<CachedKey>> for Evictions {
    type RequestState = Vec<(Hash32, Arc<CachedKey>)>;

    fn on_evict(&self, evicted: &mut Self::RequestState, hash: Hash32, key: Arc<CachedKey>) {
        evicted.push((hash, key));
    }
}

impl KeyCache {
    pub(super) fn new(capacity: u64) -> KeyCache {
        let capacity = Ord::max(capacity, 1);
        // quick_cache gives each shard its share of the capacity rounded up; a number of shards
        // that divides the capacity (a power of two, each shard at least 32 keys, as it would
        // choose) keeps the whole at most `capacity`.
        let parallelism = std::thread::available_parallelism().map_or(4, |n| n.get());
        let mut shards = (parallelism * 4).next_power_of_two() as u64;
        while shards > 1 && capacity / shards < 32 {
            shards /= 2;
        }
        let options = quick_cache::OptionsBuilder::new()
            .shards(shards as usize)
            // Room is allocated as keys arrive, not for the whole capacity at once.
            .estimated_items_capacity(usize::try_from(capacity).unwrap_or(usize::MAX))
            .weight_capacity(capacity - capacity % shards)
            .build()
            .expect("valid key cache options");
        KeyCache {
            keys: Cache::with_options(
                options,
                UnitWeighter,
                foldhash::fast::RandomState::default(),
                Evictions,
            ),
            ids: Mutex::default(),
            evicted_quotas: Mutex::default(),
            known: RwLock::new(Known::sized_for(0)),
            capacity,
        }
    }

    pub(super) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(super) fn get(&self, hash: &Hash32) -> Option<Arc<CachedKey>> {
        self.keys.get(hash)
    }

    pub(super) fn get_by_id(&self, id: &str) -> Option<Arc<CachedKey>> {
        let hash = *self.ids.lock().unwrap_or_else(|e| e.into_inner()).get(id)?;
        self.keys.get(&hash)
    }

    pub(super) fn contains(&self, hash: &Hash32) -> bool {
        self.keys.contains_key(hash)
    }

    pub(super) fn insert(&self, hash: Hash32, key: Arc<CachedKey>) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.id.clone(), hash);
        let mut evicted = Vec::new();
        self.keys.insert_with_lifecycle(hash, key, &mut evicted);
        // A replaced value is reported as evicted too: the key is still cached (the new value
        // carries its quota counter on).
        for (hash, key) in evicted.into_iter().filter(|(h, _)| *h != hash) {
            let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
            if ids.get(&key.id) == Some(&hash) {
                ids.remove(&key.id);
            }
            drop(ids);
            if let Some(dirty) = key.quota_counter.as_ref().and_then(|c| c.take_dirty()) {
                self.evicted_quotas
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key.id.to_string(), dirty);
            }
        }
    }

    /// How many keys are cached.
    pub(super) fn len(&self) -> u64 {
        self.keys.len() as u64
    }

    pub(super) fn keys(&self) -> Vec<Arc<CachedKey>> {
        self.keys.iter().map(|(_, key)| key).collect()
    }

    pub(super) fn ids(&self) -> Vec<String> {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .map(|id| id.to_string())
            .collect()
    }

    /// The quota use of evicted keys not yet written (taken: the caller writes it).
    pub(super) fn take_evicted_quotas(&self) -> Vec<(String, i64, u64)> {
        std::mem::take(
            &mut *self
                .evicted_quotas
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
        .into_iter()
        .map(|(id, (period, used))| (id, period, used))
        .collect()
    }

    /// The unwritten quota use of an evicted key loaded again.
    pub(super) fn evicted_quota(&self, id: &str) -> Option<(i64, u64)> {
        self.evicted_quotas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
    }

    /// False when `hash` is surely not a key this process has heard of.
    pub(super) fn may_exist(&self, hash: &Hash32) -> bool {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .filter
            .contains(hash)
    }

    /// Remembers that a key has `hash`. True when the filter is now fuller than it was sized for
    /// (time to rebuild it).
    pub(super) fn learn(&self, hash: &Hash32) -> bool {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        known.add(hash);
        known.items > known.expected
    }

    /// Replaces the filter (with one built from the database).
    pub(super) fn install(&self, known: Known) {
        *self.known.write().unwrap_or_else(|e| e.into_inner()) = known;
    }
}
