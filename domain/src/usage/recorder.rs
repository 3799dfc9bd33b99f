//! The usage recorder: counts verifications per key, minute and outcome in memory (16 sharded
//! maps, so concurrent requests rarely share a lock), and writes them every flush interval in one
//! transaction with each key's last use and quota use; compaction of the rollups runs under the
//! same lock, so a flush and a compaction never interleave in one process. What a flush writes
//! about keys besides the counts comes from whoever holds per-key state (the verifier), through
//! [`KeyState`]. On a failed write every count is put back for the next flush.
use std::{
    collections::HashMap,
    hash::BuildHasher,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Instant,
};

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict},
};

use super::{Compacted, MinuteCount, Retention, Usage};
use crate::{
    Database, DomainError,
    entities::{api_key, key_quota},
    verification::outcome::Code,
};

const SHARDS: usize = 16;
type Counts = HashMap<(Arc<str>, i64, Code), u64>;

/// A key's quota use to persist: (key id, period start in Unix seconds, units used).
pub type QuotaUse = (String, i64, u64);

/// Per-key state a flush persists beside the counts.
pub trait KeyState: Send + Sync {
    /// Quota use changed since the last flush, marked clean.
    fn take_dirty_quotas(&self) -> Vec<QuotaUse>;
    /// After a failed write: mark these keys' quota use dirty again.
    fn restore_dirty_quotas(&self, key_ids: &[String]);
    /// The newest minute already in the key's `last_used_at` (shared with the key's cached
    /// state), so a flush writes a key's row at most once a minute; `None` for a key not held.
    fn last_used_minute(&self, key_id: &str) -> Option<Arc<AtomicI64>>;
}

/// Shared by the verifier (counting) and the background job (flushing, compacting); cheap to
/// clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    shards: Vec<Mutex<Counts>>,
    hasher: std::collections::hash_map::RandomState,
    /// Serialises flushes (the periodic one and the one at shutdown) and compaction.
    flushing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    pub fn new(db: Database) -> Recorder {
        Recorder {
            inner: Arc::new(Inner {
                db,
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                hasher: Default::default(),
                flushing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Counts one verification of `key_id` with outcome `code` at `now`.
    pub fn count(&self, key_id: &Arc<str>, now: DateTime<Utc>, code: Code) {
        let minute = now.timestamp() - now.timestamp().rem_euclid(60);
        self.add(key_id.clone(), minute, code, 1);
    }

    fn add(&self, key_id: Arc<str>, minute: i64, code: Code, n: u64) {
        let shard = (self.inner.hasher.hash_one(&key_id) as usize) % SHARDS;
        *self.inner.shards[shard]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((key_id, minute, code))
            .or_default() += n;
    }

    /// Writes the usage counted since the last flush and the quota use, in one transaction, and
    /// moves `last_used_at`. Returns how many verifications were written. On failure the counts
    /// (and dirty quotas) stay in memory for the next attempt.
    pub async fn flush(&self, keys: &dyn KeyState) -> Result<u64, DomainError> {
        let _guard = self.inner.flushing.lock().await;
        let started = Instant::now();
        let mut taken: Counts = HashMap::new();
        for shard in &self.inner.shards {
            let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (k, v) in map.drain() {
                *taken.entry(k).or_default() += v;
            }
        }
        let quotas = keys.take_dirty_quotas();
        if taken.is_empty() && quotas.is_empty() {
            return Ok(0);
        }
        let total: u64 = taken.values().sum();
        match self.write(&taken, &quotas, keys).await {
            Ok(()) => {
                tracing::debug!(
                    verifications = total,
                    rows = taken.len(),
                    quotas = quotas.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "usage flushed"
                );
                Ok(total)
            }
            Err(e) => {
                // Put everything back: nothing is lost because a write failed.
                for ((key, minute, code), n) in taken {
                    self.add(key, minute, code, n);
                }
                let ids: Vec<String> = quotas.into_iter().map(|(id, _, _)| id).collect();
                keys.restore_dirty_quotas(&ids);
                Err(e)
            }
        }
    }

    /// Compacts the usage rollups (see [`crate::usage`]), never while this process is flushing.
    pub async fn compact(
        &self,
        usage: &Usage,
        now: DateTime<Utc>,
        retention: &Retention,
    ) -> Result<Compacted, DomainError> {
        let _guard = self.inner.flushing.lock().await;
        usage.compact(now, retention).await
    }

    async fn write(
        &self,
        usage: &Counts,
        quotas: &[QuotaUse],
        keys: &dyn KeyState,
    ) -> Result<(), DomainError> {
        let txn = self.inner.db.begin_write().await?;
        let counts: Vec<MinuteCount<'_>> = usage
            .iter()
            .map(|((key, minute, code), n)| (&**key, *minute, *code, *n))
            .collect();
        let t0 = Instant::now();
        super::add_minutes(&txn, &counts).await?;
        let t1 = Instant::now();
        // One UPDATE per minute value and 500 keys, not one per key.
        let mut last_used: HashMap<&str, i64> = HashMap::new();
        for (key, minute, _) in usage.keys() {
            let e = last_used.entry(key).or_insert(*minute);
            *e = Ord::max(*e, *minute);
        }
        // Keys whose row already says this minute (or later) need no update.
        let mut by_minute: HashMap<i64, Vec<String>> = HashMap::new();
        let mut written = Vec::new();
        for (key, minute) in last_used {
            if let Some(at) = keys.last_used_minute(key) {
                if at.load(Ordering::Relaxed) >= minute {
                    continue;
                }
                written.push((at, minute));
            }
            by_minute.entry(minute).or_default().push(key.to_owned());
        }
        for (minute, ids) in by_minute {
            let at = Utc.timestamp_opt(minute, 0).single().unwrap_or_default();
            for chunk in ids.chunks(500) {
                api_key::Entity::update_many()
                    .col_expr(api_key::Column::LastUsedAt, Expr::value(at))
                    .filter(api_key::Column::Id.is_in(chunk.to_vec()))
                    .filter(
                        sea_orm::Condition::any()
                            .add(api_key::Column::LastUsedAt.is_null())
                            .add(api_key::Column::LastUsedAt.lt(at)),
                    )
                    .exec(&txn)
                    .await?;
            }
        }
        for (key, period_start, used) in quotas {
            key_quota::Entity::insert(key_quota::ActiveModel {
                key_id: Set(key.clone()),
                period_start: Set(Utc
                    .timestamp_opt(*period_start, 0)
                    .single()
                    .unwrap_or_default()),
                used: Set(*used as i64),
            })
            // Never backwards: several instances write the use they last saw (in strict mode,
            // Redis' count as of their last request), so the highest of the newest period wins.
            .on_conflict(
                OnConflict::column(key_quota::Column::KeyId)
                    .value(
                        key_quota::Column::Used,
                        Expr::cust(
                            "CASE WHEN excluded.period_start > key_quotas.period_start \
                             THEN excluded.used \
                             WHEN excluded.period_start < key_quotas.period_start \
                             THEN key_quotas.used \
                             WHEN excluded.used > key_quotas.used THEN excluded.used \
                             ELSE key_quotas.used END",
                        ),
                    )
                    .value(
                        key_quota::Column::PeriodStart,
                        Expr::cust(
                            "CASE WHEN excluded.period_start > key_quotas.period_start \
                             THEN excluded.period_start ELSE key_quotas.period_start END",
                        ),
                    )
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        }
        let t2 = Instant::now();
        txn.commit().await?;
        for (at, minute) in written {
            at.fetch_max(minute, Ordering::Relaxed);
        }
        tracing::debug!(
            buckets_ms = (t1 - t0).as_millis() as u64,
            last_used_ms = (t2 - t1).as_millis() as u64,
            commit_ms = t2.elapsed().as_millis() as u64,
            "usage write"
        );
        Ok(())
    }
}
