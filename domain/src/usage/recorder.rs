//! The usage recorder: counts verifications per key, minute and outcome in memory (16 sharded
//! maps, so concurrent requests rarely share a lock), and writes them every flush interval in one
//! transaction with each key's last use and quota use; compaction of the rollups runs under the
//! same lock, so a flush and a compaction never interleave in one process. What a flush writes
//! about keys besides the counts comes from whoever holds per-key state (the verifier), through
//! [`KeyState`]. On a failed write every count is put back for the next flush.
//!
//! **Each key-minute written once under load (issue 14).** A periodic flush ([`Recorder::tick`])
//! with few key-minutes (at most [`DIRECT_ROWS`]) adds them to `usage_buckets` at once, so a chart
//! shows them within a flush. With more, this flush's counts go into one `usage_journal` row per
//! minute (a compact blob) instead of one upsert per key-minute, and are also kept in memory,
//! summed per key-minute. When a minute closes, the next flushes write its sums to the buckets
//! ([`CLOSE_BATCH`] rows per flush at most, so a minute of every key is spread over a few
//! flushes) and, in the same transaction, delete this instance's journal rows of the minute,
//! journalling again what is left for the next flush. Each key-minute is thus upserted once,
//! whatever the request rate. `last_used_at` moves at most once a minute per key, and
//! [`LAST_USED_BATCH`] rows per flush at most; with more than `direct_rows` keys waiting (heavy
//! load), a key whose `last_used_at` this process wrote less than [`LAST_USED_STEP`] ago waits
//! (so 100,000 keys in constant use cost ~830 row updates per flush, not 25,000: each update
//! dirties a page of `api_keys`, the largest cost of a flush on SQLite). A full flush (shutdown,
//! or a reader that must see everything) writes every key's newest minute.
//!
//! A crash loses only what was counted since the last flush (the journal rows stay); rows older
//! than [`ORPHAN_AGE`] are folded by [`Recorder::fold_orphans`] (any instance's minute job), which
//! deletes them as it adds what they hold. The close checks that it deleted exactly the rows this
//! instance wrote; if another instance folded some (this one was stalled for minutes), it rolls
//! back and reads what is left from the database instead of memory. Whoever deletes a journal
//! row adds its counts, and only they: every count reaches the buckets exactly once, whichever
//! instance closes or folds it.
use std::{
    collections::{BTreeMap, HashMap},
    hash::BuildHasher,
    sync::{Arc, Mutex},
    time::Instant,
};

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Statement,
    sea_query::{Expr, OnConflict},
};

use super::{Compacted, MinuteCount, Retention, Usage};
use crate::{
    Database, DomainError,
    entities::{api_key, key_quota},
    verification::outcome::Code,
};

const SHARDS: usize = 16;
/// Counts per (key, minute, outcome). Hashed with foldhash (seeded per process), cheaper than
/// the standard SipHash (1.4% of the server's CPU under verify load); the keys are key ids this
/// process loaded, not anything a client chooses.
type Counts = HashMap<(Arc<str>, i64, Code), u64, foldhash::fast::RandomState>;
/// Key id -> minute, hashed like [`Counts`].
type Minutes = HashMap<Arc<str>, i64, foldhash::fast::RandomState>;
/// One count: (key id, minute, outcome) and how many.
type Counted = ((Arc<str>, i64, Code), u64);
/// Journal rows to write, per minute.
type Rows = BTreeMap<i64, Vec<Counted>>;
/// An encoded journal row: minute, blob, verifications in it.
type Blob = (i64, Vec<u8>, u64);

/// Key-minutes of open minutes a periodic flush adds to the buckets directly; with more, they go
/// to the journal and each minute is written once, when it closes.
pub const DIRECT_ROWS: usize = 2_000;
/// A minute closes this many seconds after its end (a request counted at its last instant is in
/// memory by then).
const CLOSE_SLACK: i64 = 2;
/// Journal rows older than this (seconds) belong to an instance that stopped without closing
/// them (a live one closes its rows about a minute after writing them).
pub const ORPHAN_AGE: i64 = 120;
/// Rows of closed minutes a periodic flush adds to the buckets at most (or a quarter of those
/// waiting, if more): the rest is journalled again for the next flushes, so no flush writes a
/// whole minute of every key at once.
pub const CLOSE_BATCH: usize = 25_000;
/// `last_used_at` rows a periodic flush updates at most; the rest wait for the next.
pub const LAST_USED_BATCH: usize = 25_000;
/// Under heavy load, how old (seconds) a key's `last_used_at` written by this process must be
/// before a periodic flush moves it again.
pub const LAST_USED_STEP: i64 = 600;
/// How long (seconds) a key's last written minute of use is remembered; a key used again after
/// that has its row written again (the write never moves it backwards). At least
/// [`LAST_USED_STEP`]: a key forgotten is one written long enough ago.
const LAST_USED_MEMORY: i64 = LAST_USED_STEP;
/// Format of a journal row's blob: this byte, then postcard's encoding of a [`JournalRow`].
const JOURNAL_FORMAT: u8 = 2;
/// The first format (still read): postcard's encoding of (key id, minute, code, count) tuples.
const JOURNAL_FORMAT_1: u8 = 1;

/// A journal row's entries (format 2), about half the bytes of format 1: the minute once (a
/// row holds one minute), each outcome code once, key ids as 15 bytes.
#[derive(serde::Serialize, serde::Deserialize)]
struct JournalRow<'a> {
    minute: i64,
    #[serde(borrow)]
    codes: Vec<&'a str>,
    /// (key, index into `codes`, count).
    #[serde(borrow)]
    entries: Vec<(JournalKey<'a>, u8, u64)>,
}

/// A key id in the journal: packed ([`crate::id::pack`]), or as text if it is not a standard
/// key id.
#[derive(serde::Serialize, serde::Deserialize)]
enum JournalKey<'a> {
    Packed([u8; 15]),
    Text(&'a str),
}

/// A key's quota use to persist: (key id, period start in Unix seconds, units used).
pub type QuotaUse = (String, i64, u64);

/// Per-key state a flush persists beside the counts.
pub trait KeyState: Send + Sync {
    /// Quota use changed since the last flush, marked clean.
    fn take_dirty_quotas(&self) -> Vec<QuotaUse>;
    /// After a failed write: mark these keys' quota use dirty again.
    fn restore_dirty_quotas(&self, key_ids: &[String]);
}

/// What one flush did: the flush profile in the log (debug) and in benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Verifications counted since the last flush.
    pub verifications: u64,
    /// Rows added to the buckets (key-minutes counted directly or read from closed journal
    /// rows).
    pub bucket_rows: usize,
    /// Journal rows written (0 or 1) and closed, and the bytes of the one written.
    pub journal_written: usize,
    pub journal_closed: usize,
    pub journal_bytes: usize,
    /// `last_used_at` rows updated, quota rows upserted.
    pub last_used_rows: usize,
    pub quota_rows: usize,
    /// What the recorder held in memory when the flush began: key-minutes of its journal rows,
    /// last uses waiting to be written, and last uses remembered as written.
    pub held_counts: usize,
    pub held_last_used: usize,
    pub held_written: usize,
    /// Microseconds per phase: taking the counts from memory, closing journal rows (delete and
    /// decode), adding to the buckets, writing the journal row, last use and quotas, commit.
    pub take_us: u64,
    pub close_us: u64,
    pub buckets_us: u64,
    pub journal_us: u64,
    pub keys_us: u64,
    pub commit_us: u64,
}

/// Shared by the verifier (counting) and the background job (flushing, compacting); cheap to
/// clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    direct_rows: usize,
    close_batch: usize,
    shards: Vec<Mutex<Counts>>,
    /// Emptied maps of the last flush, swapped in by the next.
    spare: Mutex<Vec<Counts>>,
    hasher: foldhash::fast::RandomState,
    /// This process in the journal (random per start).
    instance: String,
    /// Serialises flushes (the periodic one and the one at shutdown) and compaction; holds what
    /// this instance has in the journal.
    flushing: Arc<tokio::sync::Mutex<Journal>>,
    /// The thread that does a flush's CPU work (`None` if it could not be started: then the
    /// flush does it itself).
    worker: Option<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

/// Starts the thread that merges, plans and encodes flushes, at a lower priority than the
/// threads serving requests (nice 10): under load a flush's CPU work waits for requests instead
/// of delaying them. It ends when the recorder is dropped.
fn start_worker() -> Option<std::sync::mpsc::Sender<Job>> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let started = std::thread::Builder::new()
        .name("keyport-usage".into())
        .spawn(move || {
            lower_priority();
            for job in rx {
                // A panic fails that flush (its caller sees the worker's answer missing) and
                // leaves the thread for the next.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        });
    match started {
        Ok(_) => Some(tx),
        Err(error) => {
            tracing::warn!(%error, "cannot start the usage worker thread; flushing on the runtime");
            None
        }
    }
}

/// Nice 10 for the calling thread (Linux keeps one nice value per thread).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_priority() {
    // SAFETY: setpriority(2) takes three integers and touches no memory of ours; `who` 0 is the
    // calling thread. Raising one's own nice value needs no privilege; a failure only leaves
    // the priority as it was.
    let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    if done != 0 {
        tracing::debug!("cannot lower the usage worker thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// What this instance has written to the journal and not yet to the buckets. Only changed
/// after a flush's transaction committed.
#[derive(Default)]
struct Journal {
    /// The counts in this instance's journal rows.
    open: Counts,
    /// This instance's journal rows per minute (each row holds one minute).
    rows: BTreeMap<i64, usize>,
    /// Keys' newest minute of use not yet in `last_used_at`.
    last_used: Minutes,
    /// The minute this process last wrote to each key's `last_used_at` (recently used keys
    /// only: pruned of entries over [`LAST_USED_MEMORY`] old).
    last_used_written: Minutes,
    /// When `last_used_written` was last pruned (a minute start).
    pruned_at: i64,
}

impl Inner {
    /// Everything counted since the last call. Each shard is swapped for an empty map: one a
    /// past flush used (cleared, its memory kept, so counting does not fault fresh pages in after
    /// every flush) or one sized like the last (allocated outside the shard's lock). Counting
    /// waits for a swap at most.
    fn take(&self) -> Taken {
        let mut spare = std::mem::take(&mut *self.spare.lock().unwrap_or_else(|e| e.into_inner()));
        let mut taken = Vec::with_capacity(SHARDS);
        for shard in &self.shards {
            let mut map = spare.pop().unwrap_or_else(|| {
                let len = shard.lock().unwrap_or_else(|e| e.into_inner()).len();
                Counts::with_capacity_and_hasher(len, Default::default())
            });
            std::mem::swap(
                &mut map,
                &mut *shard.lock().unwrap_or_else(|e| e.into_inner()),
            );
            taken.push(map);
        }
        Taken(taken)
    }

    /// Keeps the maps of a flush that is done for the next [`Inner::take`].
    fn recycle(&self, taken: Taken) {
        let mut maps = taken.0;
        for map in &mut maps {
            map.clear();
        }
        *self.spare.lock().unwrap_or_else(|e| e.into_inner()) = maps;
    }
}

/// What [`Inner::take`] took: the shards' maps, not merged. A key always counts in the same
/// shard, so no (key, minute, outcome) is in two of them.
struct Taken(Vec<Counts>);

impl Taken {
    fn iter(&self) -> impl Iterator<Item = (&(Arc<str>, i64, Code), &u64)> {
        self.0.iter().flatten()
    }

    fn keys(&self) -> impl Iterator<Item = &(Arc<str>, i64, Code)> {
        self.iter().map(|(k, _)| k)
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(HashMap::is_empty)
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

fn micros(d: std::time::Duration) -> u64 {
    d.as_micros() as u64
}

/// What one flush's transaction writes, decided before it starts.
struct Plan {
    /// Closed minutes: journal rows of this instance before it are deleted.
    open_from: i64,
    /// How many rows that delete must find (fewer: another instance folded some).
    expected: usize,
    /// Added to the buckets.
    buckets: Vec<Counted>,
    /// New journal rows, one per minute, and their encoding (minute, blob, verifications).
    rows: Rows,
    blobs: Result<Vec<Blob>, String>,
    /// `last_used_at` to write: (key, minute).
    last_used: Vec<(Arc<str>, i64)>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.expected == 0
            && self.buckets.is_empty()
            && self.rows.is_empty()
            && self.last_used.is_empty()
    }
}

/// Encodes journal rows: (minute, blob, verifications in it).
fn encode(rows: &Rows) -> Result<Vec<Blob>, String> {
    let mut blobs = Vec::with_capacity(rows.len());
    for (minute, entries) in rows {
        let mut codes: Vec<Code> = Vec::new();
        let mut list = Vec::with_capacity(entries.len());
        for ((key, _, code), n) in entries {
            let index = match codes.iter().position(|c| c == code) {
                Some(i) => i,
                None => {
                    codes.push(*code);
                    codes.len() - 1
                }
            };
            let key = match crate::id::pack(key, crate::id::KEY) {
                Some(packed) => JournalKey::Packed(packed),
                None => JournalKey::Text(key),
            };
            list.push((key, index as u8, *n));
        }
        let row = JournalRow {
            minute: *minute,
            codes: codes.iter().map(|c| c.as_str()).collect(),
            entries: list,
        };
        let mut blob = vec![JOURNAL_FORMAT];
        blob.extend(postcard::to_allocvec(&row).map_err(|e| e.to_string())?);
        blobs.push((*minute, blob, entries.iter().map(|(_, n)| n).sum()));
    }
    Ok(blobs)
}

/// The journal rows of this instance were not all where it left them: another instance folded
/// some, so what they held cannot be taken from memory.
#[derive(Debug)]
struct Folded;

impl Recorder {
    pub fn new(db: Database) -> Recorder {
        Recorder::with_limits(db, DIRECT_ROWS, CLOSE_BATCH)
    }

    /// A recorder that journals open minutes above `direct_rows` key-minutes per flush (0:
    /// always) and closes at most `close_batch` rows per flush (or a quarter of those waiting),
    /// instead of [`DIRECT_ROWS`] and [`CLOSE_BATCH`].
    pub fn with_limits(db: Database, direct_rows: usize, close_batch: usize) -> Recorder {
        Recorder {
            inner: Arc::new(Inner {
                direct_rows,
                close_batch: Ord::max(close_batch, 1),
                db,
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                spare: Mutex::default(),
                hasher: Default::default(),
                instance: format!("{:016x}", rand::random::<u64>()),
                flushing: Arc::new(tokio::sync::Mutex::new(Journal::default())),
                worker: start_worker(),
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

    /// Runs `f` on the worker thread (or here, without one).
    async fn offload<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let Some(worker) = &self.inner.worker else {
            return Ok(f());
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let stopped = || DomainError::Internal("the usage worker thread failed".into());
        worker
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    /// Writes everything counted (every minute, open or not, and this instance's journal rows)
    /// and the quota use in one transaction, and moves `last_used_at`: at shutdown, and wherever
    /// the caller must read back what was counted. Returns how many verifications were written.
    /// On failure the counts (and dirty quotas) stay in memory for the next attempt.
    pub async fn flush(&self, keys: &dyn KeyState) -> Result<u64, DomainError> {
        Ok(self.flush_at(keys, Utc::now(), true).await?.verifications)
    }

    /// The periodic flush (see the module's documentation).
    pub async fn tick(&self, keys: &dyn KeyState) -> Result<Flushed, DomainError> {
        self.flush_at(keys, Utc::now(), false).await
    }

    /// [`Recorder::flush`] (`close_all`) or [`Recorder::tick`] as of `now`.
    pub async fn flush_at(
        &self,
        keys: &dyn KeyState,
        now: DateTime<Utc>,
        close_all: bool,
    ) -> Result<Flushed, DomainError> {
        let state = self.inner.flushing.clone().lock_owned().await;
        let batch = if close_all {
            usize::MAX
        } else {
            self.inner.close_batch
        };
        let inner = self.inner.clone();
        let (state, taken, mut plan, mut done) = self
            .offload(move || {
                let mut state = state;
                let started = Instant::now();
                let taken = inner.take();
                let (plan, done) =
                    prepare(&mut state, &taken, now, close_all, inner.direct_rows, batch);
                let mut done = done;
                done.take_us = micros(started.elapsed());
                (state, taken, plan, done)
            })
            .await?;
        let quotas = keys.take_dirty_quotas();
        if taken.is_empty() && quotas.is_empty() && plan.is_empty() {
            self.inner.recycle(taken);
            return Ok(Flushed::default());
        }
        let open_from = plan.open_from;
        let mut written = self.write(&mut plan, &quotas, now, &mut done).await;
        if let Err(Err(Folded)) = written {
            tracing::warn!(
                "usage journal rows of this instance were folded by another (it was taken for \
                 stopped); closing its minutes from what the journal still holds"
            );
            plan = plan_direct(&state, &taken, open_from, self.inner.direct_rows);
            written = self
                .close_from_journal(&mut plan, &quotas, now, &mut done)
                .await
                .map_err(Ok);
        }
        match written {
            Ok(()) => {
                // Merging what was journalled into memory is the worker's too.
                let inner = self.inner.clone();
                self.offload(move || {
                    let mut state = state;
                    apply(&mut state, plan);
                    inner.recycle(taken);
                })
                .await?;
                tracing::debug!(?done, "usage flushed");
                Ok(done)
            }
            Err(e) => {
                // Put everything back: nothing is lost because a write failed (the journal
                // rows it would have closed are still there).
                for ((key, minute, code), n) in taken.0.into_iter().flatten() {
                    self.add(key, minute, code, n);
                }
                let ids: Vec<String> = quotas.into_iter().map(|(id, _, _)| id).collect();
                keys.restore_dirty_quotas(&ids);
                Err(match e {
                    Ok(e) => e,
                    Err(Folded) => DomainError::Internal("usage journal rows folded twice".into()),
                })
            }
        }
    }

    /// Folds journal rows older than [`ORPHAN_AGE`] at `now` (left by an instance that died)
    /// into the buckets, deleting them in the same transaction. Returns the verifications
    /// folded.
    pub async fn fold_orphans(&self, now: DateTime<Utc>) -> Result<u64, DomainError> {
        let _guard = self.inner.flushing.lock().await;
        let txn = self.inner.db.begin_write().await?;
        let rows = delete_journal(
            &txn,
            "DELETE FROM usage_journal WHERE created_at < ? RETURNING entries",
            vec![(now.timestamp() - ORPHAN_AGE).into()],
        )
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let counts = decode_all(&rows)?;
        let total = counts.values().sum();
        let list: Vec<MinuteCount<'_>> = counts
            .iter()
            .map(|((key, minute, code), n)| (key.as_str(), *minute, *code, *n))
            .collect();
        super::add_minutes(&txn, &list).await?;
        txn.commit().await?;
        tracing::info!(
            rows = rows.len(),
            verifications = total,
            "usage journal rows of a stopped instance folded into the buckets"
        );
        Ok(total)
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

    /// The flush's transaction. `Err(Err(Folded))` when this instance's journal rows of closed
    /// minutes were not all there (rolled back).
    async fn write(
        &self,
        plan: &mut Plan,
        quotas: &[QuotaUse],
        now: DateTime<Utc>,
        done: &mut Flushed,
    ) -> Result<(), Result<DomainError, Folded>> {
        let txn = self
            .inner
            .db
            .begin_write()
            .await
            .map_err(|e| Ok(e.into()))?;
        let t0 = Instant::now();
        if plan.expected > 0 {
            let backend = txn.get_database_backend();
            let deleted = txn
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    super::store::sql(
                        backend,
                        "DELETE FROM usage_journal WHERE instance = ? AND minute < ?",
                    ),
                    [self.inner.instance.clone().into(), plan.open_from.into()],
                ))
                .await
                .map_err(|e| Ok(e.into()))?
                .rows_affected();
            if deleted != plan.expected as u64 {
                txn.rollback().await.map_err(|e| Ok(e.into()))?;
                return Err(Err(Folded));
            }
            done.journal_closed = plan.expected;
        }
        let t1 = Instant::now();
        self.write_rest(&txn, plan, quotas, now, done, t0, t1)
            .await
            .map_err(Ok)?;
        commit(txn, done).await.map_err(|e| Ok(e.into()))
    }

    /// After [`Folded`]: deletes this instance's journal rows of closed minutes and adds what
    /// they held (whatever another instance did not fold), with the counts of this flush.
    async fn close_from_journal(
        &self,
        plan: &mut Plan,
        quotas: &[QuotaUse],
        now: DateTime<Utc>,
        done: &mut Flushed,
    ) -> Result<(), DomainError> {
        let txn = self.inner.db.begin_write().await?;
        let t0 = Instant::now();
        let closed = delete_journal(
            &txn,
            "DELETE FROM usage_journal WHERE instance = ? AND minute < ? RETURNING entries",
            vec![self.inner.instance.clone().into(), plan.open_from.into()],
        )
        .await?;
        done.journal_closed = closed.len();
        let from_journal = decode_all(&closed)?;
        let list: Vec<MinuteCount<'_>> = from_journal
            .iter()
            .map(|((key, minute, code), n)| (key.as_str(), *minute, *code, *n))
            .collect();
        super::add_minutes(&txn, &list).await?;
        let t1 = Instant::now();
        self.write_rest(&txn, plan, quotas, now, done, t0, t1)
            .await?;
        Ok(commit(txn, done).await?)
    }

    /// The rest of a flush's transaction (the caller commits): buckets, new journal rows, last
    /// use, quotas.
    #[allow(clippy::too_many_arguments)]
    async fn write_rest(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        plan: &mut Plan,
        quotas: &[QuotaUse],
        now: DateTime<Utc>,
        done: &mut Flushed,
        t0: Instant,
        t1: Instant,
    ) -> Result<(), DomainError> {
        let counts: Vec<MinuteCount<'_>> = plan
            .buckets
            .iter()
            .map(|((key, minute, code), n)| (&**key, *minute, *code, *n))
            .collect();
        done.bucket_rows = counts.len();
        super::add_minutes(txn, &counts).await?;
        let t2 = Instant::now();
        let backend = txn.get_database_backend();
        // Taken out of the plan, not copied (megabytes under load).
        let blobs = plan
            .blobs
            .as_mut()
            .map_err(|e| DomainError::Internal(format!("usage journal: {e}")))?;
        for (minute, blob, verifications) in blobs.iter_mut() {
            done.journal_written += 1;
            done.journal_bytes += blob.len();
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                super::store::sql(
                    backend,
                    "INSERT INTO usage_journal (instance, minute, created_at, verifications, entries) \
                     VALUES (?, ?, ?, ?, ?)",
                ),
                [
                    self.inner.instance.clone().into(),
                    (*minute).into(),
                    now.timestamp().into(),
                    (*verifications as i64).into(),
                    std::mem::take(blob).into(),
                ],
            ))
            .await?;
        }
        let t3 = Instant::now();
        // One UPDATE per minute value and 500 keys, not one per key.
        let mut by_minute: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (key, minute) in &plan.last_used {
            by_minute.entry(*minute).or_default().push(key.to_string());
        }
        done.last_used_rows = plan.last_used.len();
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
                    .exec(txn)
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
            .exec_without_returning(txn)
            .await?;
        }
        done.quota_rows = quotas.len();
        let t4 = Instant::now();
        done.close_us = micros(t1 - t0);
        done.buckets_us = micros(t2 - t1);
        done.journal_us = micros(t3 - t2);
        done.keys_us = micros(t4 - t3);
        Ok(())
    }
}

/// Commits a flush's transaction, timing it.
async fn commit(txn: sea_orm::DatabaseTransaction, done: &mut Flushed) -> Result<(), DbErr> {
    let t = Instant::now();
    txn.commit().await?;
    done.commit_us = micros(t.elapsed());
    Ok(())
}

/// What a flush will write (on the worker thread): this flush's last uses are noted, the
/// plan is made and its journal rows encoded.
fn prepare(
    state: &mut Journal,
    taken: &Taken,
    now: DateTime<Utc>,
    close_all: bool,
    direct_rows: usize,
    batch: usize,
) -> (Plan, Flushed) {
    // Minutes before `open_from` are closed.
    let open_from = if close_all {
        i64::MAX
    } else {
        let t = now.timestamp() - CLOSE_SLACK;
        t - t.rem_euclid(60)
    };
    let Journal {
        last_used,
        last_used_written,
        ..
    } = state;
    for (key, minute, _) in taken.keys() {
        if last_used_written.get(key).is_some_and(|w| w >= minute) {
            continue;
        }
        let e = last_used.entry(key.clone()).or_insert(*minute);
        *e = Ord::max(*e, *minute);
    }
    let open_rows = taken.keys().filter(|(_, m, _)| *m >= open_from).count();
    let journal = !close_all && open_rows > direct_rows;
    let done = Flushed {
        verifications: taken.iter().map(|(_, n)| n).sum(),
        held_counts: state.open.len(),
        held_last_used: state.last_used.len(),
        held_written: state.last_used_written.len(),
        ..Flushed::default()
    };
    let last_used = last_used_plan(state, close_all, direct_rows);
    (
        plan(state, taken, open_from, journal, batch, last_used),
        done,
    )
}

/// The plan of a flush: closed minutes reach the buckets (`batch` rows of them, or a quarter if
/// more; the rest is journalled again), this flush's counts go to the buckets or (when
/// `journal`) to new journal rows, and a bounded batch of last uses is written.
fn plan(
    state: &Journal,
    taken: &Taken,
    open_from: i64,
    journal: bool,
    batch: usize,
    last_used: Vec<(Arc<str>, i64)>,
) -> Plan {
    let expected = state.rows.range(..open_from).map(|(_, n)| n).sum();
    // Counts of closed minutes: this instance's journal (as held in memory) and this flush's.
    let mut closed = Counts::default();
    if expected > 0 {
        for (k, n) in state.open.iter().filter(|((_, m, _), _)| *m < open_from) {
            *closed.entry(k.clone()).or_default() += n;
        }
    }
    let mut buckets = Vec::new();
    let mut rows: Rows = BTreeMap::new();
    for (k, n) in taken.iter() {
        if k.1 < open_from {
            *closed.entry(k.clone()).or_default() += n;
        } else if journal {
            rows.entry(k.1).or_default().push((k.clone(), *n));
        } else {
            buckets.push((k.clone(), *n));
        }
    }
    let batch = Ord::max(batch, closed.len() / 4);
    // In key order, so a batch is a run of neighbouring keys: its rows land in neighbouring
    // pages of the buckets' index on key_id instead of all over it.
    let mut closed: Vec<_> = closed.into_iter().collect();
    closed.sort_unstable_by(|a, b| by_key(&a.0, &b.0));
    for (i, (k, n)) in closed.into_iter().enumerate() {
        if i < batch {
            buckets.push((k, n));
        } else {
            rows.entry(k.1).or_default().push((k, n));
        }
    }
    buckets.sort_unstable_by(|a, b| by_key(&a.0, &b.0));
    Plan {
        open_from,
        expected,
        buckets,
        blobs: encode(&rows),
        rows,
        last_used,
    }
}

/// The plan after [`Folded`]: this flush's counts go to the buckets (the closed journal rows are
/// read back from the database), nothing to the journal.
fn plan_direct(state: &Journal, taken: &Taken, open_from: i64, direct_rows: usize) -> Plan {
    Plan {
        open_from,
        // Not checked (the rows are read back), but what memory held of them is dropped.
        expected: state.rows.range(..open_from).map(|(_, n)| n).sum(),
        buckets: {
            let mut buckets: Vec<_> = taken.iter().map(|(k, n)| (k.clone(), *n)).collect();
            buckets.sort_unstable_by(|a, b| by_key(&a.0, &b.0));
            buckets
        },
        rows: BTreeMap::new(),
        blobs: Ok(Vec::new()),
        last_used: last_used_plan(state, false, direct_rows),
    }
}

/// The order rows are written in: by minute, then key (the buckets' primary key and its index
/// on key_id both see neighbouring rows one after another).
fn by_key(a: &(Arc<str>, i64, Code), b: &(Arc<str>, i64, Code)) -> std::cmp::Ordering {
    (a.1, &a.0, a.2).cmp(&(b.1, &b.0, b.2))
}

/// Which keys' `last_used_at` a flush writes: at most [`LAST_USED_BATCH`], the first in key
/// order (neighbouring rows of `api_keys`); with more than `direct_rows` keys waiting, only
/// those this process has not written for [`LAST_USED_STEP`]. All of them when `close_all`.
fn last_used_plan(state: &Journal, close_all: bool, direct_rows: usize) -> Vec<(Arc<str>, i64)> {
    let limit = if close_all {
        usize::MAX
    } else {
        LAST_USED_BATCH
    };
    let busy = !close_all && state.last_used.len() > direct_rows;
    let mut all: Vec<(Arc<str>, i64)> = state
        .last_used
        .iter()
        .filter(|(k, m)| {
            !busy
                || state
                    .last_used_written
                    .get(*k)
                    .is_none_or(|w| **m - w >= LAST_USED_STEP)
        })
        .map(|(k, m)| (k.clone(), *m))
        .collect();
    if all.len() > limit {
        all.select_nth_unstable_by(limit, |a, b| a.0.cmp(&b.0));
        all.truncate(limit);
    }
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    all
}

/// After a flush committed: what this instance holds in the journal and which last uses are
/// written.
fn apply(state: &mut Journal, plan: Plan) {
    if plan.expected > 0 || plan.open_from == i64::MAX {
        state.open.retain(|(_, m, _), _| *m >= plan.open_from);
    }
    state.rows = state.rows.split_off(&plan.open_from);
    for (minute, entries) in plan.rows {
        *state.rows.entry(minute).or_default() += 1;
        for (k, n) in entries {
            *state.open.entry(k).or_default() += n;
        }
    }
    for (key, minute) in plan.last_used {
        state.last_used.remove(&key);
        state.last_used_written.insert(key, minute);
    }
    // Once a minute, forget keys not used for a while: bounded by the keys in use, not by all
    // keys ever used.
    if plan.open_from != i64::MAX && plan.open_from > state.pruned_at {
        state.pruned_at = plan.open_from;
        let cutoff = plan.open_from - LAST_USED_MEMORY;
        state.last_used_written.retain(|_, m| *m >= cutoff);
    }
}
/// Runs a `DELETE ... RETURNING entries` on the journal: the blobs of the rows deleted.
async fn delete_journal<C: ConnectionTrait>(
    txn: &C,
    q: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<Vec<u8>>, DomainError> {
    let backend = txn.get_database_backend();
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            super::store::sql(backend, q),
            values,
        ))
        .await?;
    let mut blobs = Vec::with_capacity(rows.len());
    for row in rows {
        blobs.push(row.try_get::<Vec<u8>>("", "entries")?);
    }
    Ok(blobs)
}

/// Adds up the entries of journal rows. A row this version cannot read is an error (the
/// transaction rolls back and the row stays for a version that can).
fn decode_all(blobs: &[Vec<u8>]) -> Result<HashMap<(String, i64, Code), u64>, DomainError> {
    let bad = |e: &dyn std::fmt::Display| DomainError::Internal(format!("usage journal row: {e}"));
    let code_of =
        |code: &str| Code::parse(code).ok_or_else(|| bad(&format!("unknown code {code}")));
    let mut counts = HashMap::new();
    for blob in blobs {
        match blob.split_first() {
            Some((&JOURNAL_FORMAT, rest)) => {
                let row: JournalRow<'_> = postcard::from_bytes(rest).map_err(|e| bad(&e))?;
                let codes = row
                    .codes
                    .iter()
                    .map(|c| code_of(c))
                    .collect::<Result<Vec<Code>, _>>()?;
                for (key, index, n) in row.entries {
                    let code = *codes
                        .get(usize::from(index))
                        .ok_or_else(|| bad(&"a code out of range"))?;
                    let key = match key {
                        JournalKey::Packed(packed) => crate::id::unpack(&packed, crate::id::KEY)
                            .ok_or_else(|| bad(&"a key id out of range"))?,
                        JournalKey::Text(text) => text.to_owned(),
                    };
                    *counts.entry((key, row.minute, code)).or_default() += n;
                }
            }
            Some((&JOURNAL_FORMAT_1, rest)) => {
                let entries: Vec<(String, i64, String, u64)> =
                    postcard::from_bytes(rest).map_err(|e| bad(&e))?;
                for (key, minute, code, n) in entries {
                    *counts.entry((key, minute, code_of(&code)?)).or_default() += n;
                }
            }
            _ => {
                return Err(DomainError::Internal(
                    "usage journal row of an unknown format".into(),
                ));
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Journal rows come back as they were written, in this format and the first one; a row
    /// this version cannot read is an error, not a guess.
    #[test]
    fn journal_rows_decode_to_what_was_encoded() {
        let minute = 1_796_666_400;
        let packed: Arc<str> = crate::id::new_id(crate::id::KEY).into();
        let text: Arc<str> = "key_made_in_a_test".into();
        let mut rows = Rows::new();
        rows.insert(
            minute,
            vec![
                ((packed.clone(), minute, Code::Valid), 7),
                ((text.clone(), minute, Code::RateLimited), 3),
                ((packed.clone(), minute, Code::RateLimited), 1_000_000),
            ],
        );
        rows.insert(
            minute + 60,
            vec![((text.clone(), minute + 60, Code::Valid), 1)],
        );
        let blobs = encode(&rows).unwrap();
        assert_eq!(
            blobs.iter().map(|b| b.2).collect::<Vec<_>>(),
            [1_000_010, 1]
        );
        let decoded = decode_all(&blobs.iter().map(|b| b.1.clone()).collect::<Vec<_>>()).unwrap();
        let mut want = HashMap::new();
        want.insert((packed.to_string(), minute, Code::Valid), 7);
        want.insert((text.to_string(), minute, Code::RateLimited), 3);
        want.insert((packed.to_string(), minute, Code::RateLimited), 1_000_000);
        want.insert((text.to_string(), minute + 60, Code::Valid), 1);
        assert_eq!(decoded, want);
        // A packed id takes 15 bytes, not 25.
        let one = |key: &Arc<str>| {
            let mut rows = Rows::new();
            rows.insert(minute, vec![((key.clone(), minute, Code::Valid), 1)]);
            encode(&rows).unwrap()[0].1.len()
        };
        let long_text: Arc<str> = format!("{packed}x").into();
        assert!(one(&packed) + 10 <= one(&long_text));

        // A row of the first format, as an older version wrote it.
        let mut old = vec![JOURNAL_FORMAT_1];
        old.extend(postcard::to_allocvec(&vec![(&*packed, minute, "VALID", 5u64)]).unwrap());
        let decoded = decode_all(&[old, blobs[0].1.clone()]).unwrap();
        assert_eq!(decoded[&(packed.to_string(), minute, Code::Valid)], 12);

        for unreadable in [vec![9, 1, 2], vec![JOURNAL_FORMAT, 0xff], vec![]] {
            assert!(decode_all(&[unreadable]).is_err());
        }
    }
}
