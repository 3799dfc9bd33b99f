//! The verifier: the in-memory state behind verification. A bounded cache of the keys in use,
//! by SHA-256 ([`cache`]: the most recently used are loaded at start, the others fetched by
//! hash on first use, one query per hash however many requests ask at once), kept current
//! through [`KeyChanges`] by every change made with [`crate::keys::Keys`]; GCRA rate limiters
//! (governor) and quota counters, or [`GlobalLimits`] in Redis; usage is counted by a
//! [`Recorder`] it is given. The database stays the source of truth. A hash that a filter of
//! every known key hash says is surely no key costs a query only within a small budget, and an
//! unknown hash is remembered for a minute (bounded), so a flood of made-up keys cannot become a
//! flood of queries.
use std::{
    collections::{HashMap, HashSet},
    num::NonZeroU32,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration as StdDuration, Instant},
};

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use governor::{
    Quota as GovernorQuota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::{InMemoryState, NotKeyed},
};
use ipnet::IpNet;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

mod cache;

use cache::{KeyCache, Known};

use super::{
    global::{GlobalLimits, QuotaCheck, RateCheck, RedisFailure, Unavailable},
    outcome::{Code, Deprecation, QuotaInfo, RateInfo, Request},
    policy::{self, KeyFacts},
};
use crate::{
    Database, DomainError,
    catalog::{Quota, QuotaPeriod, RateLimit, VersionStatus},
    changes::{Applied, Change, KeyChanges},
    entities::{api_key, api_version, key_quota},
    keys::{parse_allowlist_entry, status::Lifecycle},
    usage::recorder::{Flushed, KeyState, QuotaUse, Recorder},
};

/// The answer, with everything a caller may want to pass on to its client.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// With `--redis-failure closed`: Redis is unavailable and the key has limits, so it is
    /// refused (`code` is `RATE_LIMITED`, uncounted); callers answer 503.
    pub limits_unavailable: bool,
    pub code: Code,
    /// Absent when the key is unknown (or malformed).
    pub key: Option<Arc<CachedKey>>,
    pub ratelimit: Option<RateInfo>,
    pub quota: Option<QuotaInfo>,
    pub deprecation: Option<Deprecation>,
    /// For RATE_LIMITED and QUOTA_EXCEEDED: when trying again can succeed.
    pub retry_after: Option<StdDuration>,
}

/// What [`Verifier::check`] leaves: a final answer, or a key to meter.
enum Checked {
    Done(Outcome),
    Meter(Outcome, Arc<CachedKey>),
}

impl Outcome {
    fn bare(code: Code, key: Option<Arc<CachedKey>>) -> Outcome {
        Outcome {
            limits_unavailable: false,
            code,
            key,
            ratelimit: None,
            quota: None,
            deprecation: None,
            retry_after: None,
        }
    }
    pub fn valid(&self) -> bool {
        self.code == Code::Valid
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// A key's quota use in its current period. A mutex per key: uncontended in practice, and
/// makes "never more than the limit" obvious.
#[derive(Debug, Default)]
pub struct QuotaCounter {
    state: Mutex<QuotaState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct QuotaState {
    period_start: i64,
    used: u64,
    dirty: bool,
}

impl QuotaCounter {
    /// Adds `cost` if it fits under `limit`; returns the use after this request, or `Err(used)`.
    pub fn consume(&self, period_start: i64, cost: u64, limit: u64) -> Result<u64, u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.period_start != period_start {
            s.period_start = period_start;
            s.used = 0;
        }
        if s.used + cost > limit {
            return Err(s.used);
        }
        s.used += cost;
        s.dirty = true;
        Ok(s.used)
    }
    /// The use counted in the period starting at `period_start` (0 once a new period began).
    pub fn used(&self, period_start: i64) -> u64 {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.period_start == period_start {
            s.used
        } else {
            0
        }
    }
    fn take_dirty(&self) -> Option<(i64, u64)> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.dirty {
            s.dirty = false;
            Some((s.period_start, s.used))
        } else {
            None
        }
    }
    /// Takes the use counted elsewhere (Redis, shared by every instance) as this counter's.
    fn observe(&self, period_start: i64, used: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.period_start != period_start || s.used != used {
            s.period_start = period_start;
            s.used = used;
            s.dirty = true;
        }
    }
    fn mark_dirty(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).dirty = true;
    }
}

/// A key as the verifier holds it: what it grants and its effective limits (its own, else its
/// owner's plan).
///
/// Kept small, since a verifier may hold a million of them: the id is shared with the usage
/// counters and the id index, the owner, API and scope list with every other key that has the
/// same ([`Shared`]), and the limiter state exists only for keys with limits.
pub struct CachedKey {
    pub id: Arc<str>,
    pub owner_id: Arc<str>,
    pub api_id: Arc<str>,
    pub api: Arc<str>,
    pub scopes: Arc<[String]>,
    pub expires_at: Option<DateTime<Utc>>,
    ip_allowlist: Vec<IpNet>,
    lifecycle: Lifecycle,
    /// The owner is an admin (for the management API: an admin's key with the `admin` scope
    /// acts on everything).
    pub owner_is_admin: bool,
    rate: Option<(RateLimit, u32)>,
    limiter: Option<Arc<Limiter>>,
    quota: Option<Quota>,
    /// The quota use counted here: present once the key has had a quota.
    quota_counter: Option<Arc<QuotaCounter>>,
    /// The owner's plan limits when the plan shares them among all the owner's keys: checked
    /// after the key's own (if any), one limiter and one quota counter per owner.
    pool: Option<Arc<Pool>>,
    /// When the rate limiter's burst is full again (Unix milliseconds), as of the last request:
    /// the portal's "available now" without touching the limiter. Present with a rate limit.
    rate_full_at: Option<Arc<std::sync::atomic::AtomicI64>>,
}

impl CachedKey {
    /// True when verifying this key is metered: its own limits or its owner's pool.
    fn has_limits(&self) -> bool {
        self.rate.is_some() || self.quota.is_some() || self.pool.is_some()
    }
}

impl std::fmt::Debug for CachedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedKey")
            .field("id", &self.id)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// A developer's plan limits shared by all their keys (a plan whose limits apply per developer).
pub struct Pool {
    rate: Option<(RateLimit, u32)>,
    limiter: Option<Arc<Limiter>>,
    quota: Option<Quota>,
    quota_counter: Arc<QuotaCounter>,
}

/// Values that many cached keys have in common (owner and API ids, API names, scope lists),
/// each stored once: a cached key holds pointers to them. A value no cached key uses any more
/// is dropped when the set has doubled since it was last pruned.
#[derive(Default)]
struct Shared {
    strs: Mutex<Interned<str>>,
    scopes: Mutex<Interned<[String]>>,
}

struct Interned<T: ?Sized> {
    set: HashSet<Arc<T>>,
    prune_at: usize,
}

impl<T: ?Sized> Default for Interned<T> {
    fn default() -> Self {
        Interned {
            set: HashSet::new(),
            prune_at: 1024,
        }
    }
}

impl<T: ?Sized + std::hash::Hash + Eq> Interned<T> {
    fn get(&mut self, value: &T, make: impl FnOnce() -> Arc<T>) -> Arc<T> {
        if let Some(found) = self.set.get(value) {
            return found.clone();
        }
        if self.set.len() >= self.prune_at {
            self.set.retain(|v| Arc::strong_count(v) > 1);
            self.prune_at = Ord::max(self.set.len() * 2, 1024);
        }
        let made = make();
        self.set.insert(made.clone());
        made
    }
}

impl Shared {
    fn str(&self, s: &str) -> Arc<str> {
        self.strs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(s, || Arc::from(s))
    }
    fn scopes(&self, scopes: Vec<String>) -> Arc<[String]> {
        self.scopes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&scopes, || Arc::from(scopes.clone()))
    }
}

/// Where a pool's quota use is stored among the keys' (`key_quotas.key_id`).
fn pool_quota_id(owner_id: &str) -> String {
    format!("pool:{owner_id}")
}

fn new_limiter(rate: RateLimit, burst: u32) -> Option<Arc<Limiter>> {
    let period = StdDuration::from_secs(rate.period_s as u64) / Ord::max(rate.limit, 1);
    let quota =
        GovernorQuota::with_period(period)?.allow_burst(NonZeroU32::new(Ord::max(burst, 1))?);
    Some(Arc::new(
        RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>(),
    ))
}

/// The start of the quota period holding `now`, and the start of the next.
pub fn quota_period(period: QuotaPeriod, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = Utc
        .with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .single()
        .unwrap_or(now);
    match period {
        QuotaPeriod::Day => (day, day + Duration::days(1)),
        QuotaPeriod::Month => {
            let start = Utc
                .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
                .single()
                .unwrap_or(now);
            let (y, m) = if now.month() == 12 {
                (now.year() + 1, 1)
            } else {
                (now.year(), now.month() + 1)
            };
            let next = Utc
                .with_ymd_and_hms(y, m, 1, 0, 0, 0)
                .single()
                .unwrap_or(now);
            (start, next)
        }
    }
}

type Hash32 = [u8; 32];
/// Version name -> (status, sunset).
type VersionMap = HashMap<String, (VersionStatus, Option<DateTime<Utc>>)>;

fn hash_of(key: &str) -> Hash32 {
    Sha256::digest(key.as_bytes()).into()
}

fn hex_to_hash(hex: &str) -> Option<Hash32> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A bounded memory of hashes that are not keys, each for a limited time.
struct NegativeCache {
    entries: Mutex<(HashSet<Hash32>, Instant)>,
    capacity: usize,
    ttl: StdDuration,
}

impl NegativeCache {
    fn contains(&self, h: &Hash32) -> bool {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.1.elapsed() > self.ttl {
            e.0.clear();
            e.1 = Instant::now();
        }
        e.0.contains(h)
    }
    fn insert(&self, h: Hash32) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.0.len() >= self.capacity {
            // Forget everything rather than grow: the worst case is one lookup per hash again.
            e.0.clear();
            e.1 = Instant::now();
        }
        e.0.insert(h);
    }
    fn remove(&self, h: &Hash32) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .remove(h);
    }
}

/// How many keys a verifier keeps in memory unless told otherwise (`--key-cache-capacity`).
pub const DEFAULT_KEY_CACHE_CAPACITY: u64 = 1_000_000;

/// How a verifier is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Limits shared by every instance, in Redis (strict mode).
    pub global: Option<GlobalLimits>,
    /// The most keys kept in memory; the others are fetched by hash when used.
    pub key_cache_capacity: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            global: None,
            key_cache_capacity: DEFAULT_KEY_CACHE_CAPACITY,
        }
    }
}

/// One fetch of a key by hash, shared by the requests that asked for it meanwhile.
type Loading = tokio::sync::OnceCell<Option<Arc<CachedKey>>>;

/// Which keys a re-read updates: all the rows read, or only those already cached (a change to
/// a key not in memory needs nothing: it is read fresh when used).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    All,
    Cached,
}

/// Budget of database lookups for unknown hashes (keys created by another instance or the CLI
/// since the last refresh). The periodic refresh finds those keys anyway within seconds.
const LOOKUPS_PER_SECOND: u32 = 50;

/// The verifier: shared by every request, cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// Database lookups of hashes this process does not know, at most this many a second
    /// whatever the variety of made-up keys; beyond it they are answered NOT_FOUND from memory.
    lookups: RateLimiter<NotKeyed, InMemoryState, DefaultClock>,
    /// The keys in use (bounded), and which hashes exist at all.
    keys: KeyCache,
    /// API id -> (version name -> status, sunset).
    versions: RwLock<HashMap<String, VersionMap>>,
    /// Keys being fetched by hash, so concurrent misses for one hash make one query.
    loading: Mutex<HashMap<Hash32, Arc<Loading>>>,
    /// Set when the filter of known hashes is fuller than it was sized for.
    relearn: std::sync::atomic::AtomicBool,
    negative: NegativeCache,
    /// Where each verification of a known key is counted.
    recorder: Recorder,
    /// Values cached keys have in common, stored once.
    shared: Shared,
    /// Owner id -> the plan limits all their keys share (plans that apply per developer).
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    /// Limits shared by every instance (Redis, `--ratelimit-mode strict`).
    global: Option<GlobalLimits>,
    /// Unknown hashes answered from the negative cache (for metrics).
    negative_hits: AtomicU64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// An empty verifier that counts usage with `recorder`; call [`Verifier::load`] to fill it
    /// from the database.
    pub fn new(db: Database, recorder: Recorder) -> Verifier {
        Verifier::with_options(db, recorder, Options::default())
    }

    /// [`Verifier::new`], metering keys with limits in Redis when `global` is given.
    pub fn with_global_limits(
        db: Database,
        recorder: Recorder,
        global: Option<GlobalLimits>,
    ) -> Verifier {
        Verifier::with_options(
            db,
            recorder,
            Options {
                global,
                ..Options::default()
            },
        )
    }

    pub fn with_options(db: Database, recorder: Recorder, options: Options) -> Verifier {
        let global = options.global;
        Verifier {
            inner: Arc::new(Inner {
                lookups: RateLimiter::direct(
                    GovernorQuota::per_second(
                        NonZeroU32::new(LOOKUPS_PER_SECOND).expect("non-zero"),
                    )
                    .allow_burst(NonZeroU32::new(LOOKUPS_PER_SECOND).expect("non-zero")),
                ),
                db,
                keys: KeyCache::new(Ord::max(options.key_cache_capacity, 1)),
                versions: RwLock::default(),
                loading: Mutex::default(),
                relearn: Default::default(),
                negative: NegativeCache {
                    entries: Mutex::new((HashSet::new(), Instant::now())),
                    capacity: 100_000,
                    ttl: StdDuration::from_secs(60),
                },
                recorder,
                shared: Shared::default(),
                pools: Mutex::new(HashMap::new()),
                global,
                negative_hits: AtomicU64::new(0),
            }),
        }
    }

    /// The global limits, when this verifier meters in Redis.
    pub fn global_limits(&self) -> Option<&GlobalLimits> {
        self.inner.global.as_ref()
    }

    /// How many unknown hashes were answered from the negative cache since start.
    pub fn negative_cache_hits(&self) -> u64 {
        self.inner.negative_hits.load(Ordering::Relaxed)
    }

    /// The recorder this verifier counts usage with.
    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    /// Loads the API versions, the hash of every key (into the filter of known hashes), and
    /// the keys themselves with their persisted quota use: all of them when they fit the cache,
    /// else the most recently used. Returns how many keys were loaded.
    pub async fn load(&self) -> Result<usize, DomainError> {
        use sea_orm::{Order, QueryOrder, QuerySelect, sea_query::Expr};
        self.refresh_versions().await?;
        let total = self.relearn_hashes().await?;
        let conn = self.inner.db.conn();
        let mut n = 0;
        if total as u64 <= self.inner.keys.capacity() {
            // In pages, so loading many keys never holds every row in memory at once.
            let mut after = 0i64;
            loop {
                let rows = api_key::Entity::find()
                    .filter(api_key::Column::Seq.gt(after))
                    .order_by_asc(api_key::Column::Seq)
                    .limit(1_000)
                    .all(conn)
                    .await?;
                let Some(last) = rows.last() else { break };
                after = last.seq;
                n += self.upsert_rows(rows, Keep::All).await?.len();
            }
        } else {
            let recent: Vec<i64> = api_key::Entity::find()
                .select_only()
                .column(api_key::Column::Seq)
                .order_by(
                    Expr::cust("COALESCE(last_used_at, created_at)"),
                    Order::Desc,
                )
                .limit(self.inner.keys.capacity())
                .into_tuple()
                .all(conn)
                .await?;
            for chunk in recent.chunks(1_000) {
                let rows = api_key::Entity::find()
                    .filter(api_key::Column::Seq.is_in(chunk.to_vec()))
                    .all(conn)
                    .await?;
                n += self.upsert_rows(rows, Keep::All).await?.len();
            }
        }
        Ok(n)
    }

    /// Rebuilds the filter of known hashes from every key in the database; returns how many
    /// keys there are.
    async fn relearn_hashes(&self) -> Result<usize, DomainError> {
        use sea_orm::{PaginatorTrait, QueryOrder, QuerySelect};
        let conn = self.inner.db.conn();
        let total = api_key::Entity::find().count(conn).await? as usize;
        let mut known = Known::sized_for(total);
        let mut after = 0i64;
        loop {
            let page: Vec<(i64, String)> = api_key::Entity::find()
                .select_only()
                .column(api_key::Column::Seq)
                .column(api_key::Column::Hash)
                .filter(api_key::Column::Seq.gt(after))
                .order_by_asc(api_key::Column::Seq)
                .limit(50_000)
                .into_tuple()
                .all(conn)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            for (_, hex) in &page {
                if let Some(hash) = hex_to_hash(hex) {
                    known.add(&hash);
                }
            }
        }
        self.inner.keys.install(known);
        self.inner
            .relearn
            .store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(total)
    }

    /// Re-reads every cached key (after a change to limits that many keys share).
    pub async fn refresh_cached(&self) -> Result<(), DomainError> {
        for chunk in self.inner.keys.ids().chunks(500) {
            let rows = api_key::Entity::find()
                .filter(api_key::Column::Id.is_in(chunk.to_vec()))
                .all(self.inner.db.conn())
                .await?;
            self.upsert_rows(rows, Keep::Cached).await?;
        }
        Ok(())
    }

    /// Re-reads the versions of every API (after a catalog change).
    pub async fn refresh_versions(&self) -> Result<(), DomainError> {
        let versions = api_version::Entity::find()
            .all(self.inner.db.conn())
            .await?;
        let mut map: HashMap<String, VersionMap> = HashMap::new();
        for v in versions {
            map.entry(v.api_id).or_default().insert(
                v.name,
                (
                    VersionStatus::parse(&v.status).unwrap_or(VersionStatus::Active),
                    v.sunset_at,
                ),
            );
        }
        *self
            .inner
            .versions
            .write()
            .unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }

    /// Re-reads one key (after a change to it) and caches it.
    pub async fn refresh_key(&self, key_id: &str) -> Result<(), DomainError> {
        let rows = api_key::Entity::find()
            .filter(api_key::Column::Id.eq(key_id))
            .all(self.inner.db.conn())
            .await?;
        // Cached even when it was not: a key just created or changed is likely used soon.
        self.upsert_rows(rows, Keep::All).await.map(|_| ())
    }

    /// Re-reads every key of a user (after their status or plan changed).
    pub async fn refresh_owner(&self, user_id: &str) -> Result<(), DomainError> {
        let rows = api_key::Entity::find()
            .filter(api_key::Column::OwnerId.eq(user_id))
            .all(self.inner.db.conn())
            .await?;
        self.upsert_rows(rows, Keep::Cached).await.map(|_| ())
    }

    /// Re-reads keys changed since `since` (other instances' changes, on a shared database).
    pub async fn refresh_changed_since(&self, since: DateTime<Utc>) -> Result<usize, DomainError> {
        let rows = api_key::Entity::find()
            .filter(api_key::Column::UpdatedAt.gte(since))
            .all(self.inner.db.conn())
            .await?;
        let n = rows.len();
        self.upsert_rows(rows, Keep::Cached).await?;
        if self
            .inner
            .relearn
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.relearn_hashes().await?;
        }
        Ok(n)
    }

    /// The pool of `owner_id` with these limits: the existing one when its limits are the
    /// same, else a new one that keeps the quota use counted so far (or the saved use).
    fn pool(
        &self,
        owner_id: &str,
        rate: Option<(RateLimit, u32)>,
        quota: Option<Quota>,
        saved_quota: &HashMap<String, key_quota::Model>,
    ) -> Arc<Pool> {
        let mut pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = pools.get(owner_id)
            && existing.rate == rate
            && existing.quota == quota
        {
            return existing.clone();
        }
        let previous = pools.get(owner_id).cloned();
        let quota_counter = match &previous {
            Some(p) => p.quota_counter.clone(),
            None => {
                let counter = Arc::new(QuotaCounter::default());
                if let Some(saved) = saved_quota.get(&pool_quota_id(owner_id)) {
                    let mut s = counter.state.lock().unwrap_or_else(|e| e.into_inner());
                    s.period_start = saved.period_start.timestamp();
                    s.used = Ord::max(saved.used, 0) as u64;
                }
                counter
            }
        };
        let limiter = match &previous {
            Some(p) if p.rate == rate => p.limiter.clone(),
            _ => rate.and_then(|(r, b)| new_limiter(r, b)),
        };
        let pool = Arc::new(Pool {
            rate,
            limiter,
            quota,
            quota_counter,
        });
        pools.insert(owner_id.to_owned(), pool.clone());
        pool
    }

    /// Builds the verifier's view of these rows (all, or only those already cached) and caches
    /// it; every row's hash becomes known. Returns the keys built.
    async fn upsert_rows(
        &self,
        rows: Vec<api_key::Model>,
        keep: Keep,
    ) -> Result<Vec<Arc<CachedKey>>, DomainError> {
        let mut rows = rows;
        for row in &rows {
            if let Some(hash) = hex_to_hash(&row.hash)
                && self.inner.keys.learn(&hash)
            {
                self.inner
                    .relearn
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if keep == Keep::Cached {
            rows.retain(|r| hex_to_hash(&r.hash).is_some_and(|h| self.inner.keys.contains(&h)));
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.inner.db.conn();
        let mut ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let owners: HashSet<String> = rows.iter().map(|r| pool_quota_id(&r.owner_id)).collect();
        ids.extend(owners);
        let records = crate::keys::record::load(conn, rows).await?;
        let mut saved_quota: HashMap<String, key_quota::Model> = HashMap::new();
        for chunk in ids.chunks(500) {
            for q in key_quota::Entity::find()
                .filter(key_quota::Column::KeyId.is_in(chunk.to_vec()))
                .all(conn)
                .await?
            {
                saved_quota.insert(q.key_id.clone(), q);
            }
        }
        let mut built = Vec::with_capacity(records.len());
        for r in records {
            let Some(hash) = hex_to_hash(&r.row.hash) else {
                continue;
            };
            let effective = r.effective();
            // A limit shared by the owner's keys lives in the owner's pool, not in the key.
            let rate = effective
                .rate
                .filter(|e| !e.shared)
                .map(|e| (e.limit, e.burst));
            let quota = effective.quota.filter(|e| !e.shared).map(|e| e.quota);
            let pool = effective.pool.map(|p| {
                let rate = p
                    .rate_limit
                    .map(|r| (r, Ord::max(p.burst.unwrap_or(r.limit), 1)));
                self.pool(&r.row.owner_id, rate, p.quota, &saved_quota)
            });
            let previous = self.inner.keys.get(&hash);
            let limiter = match &previous {
                Some(p) if p.rate == rate => p.limiter.clone(),
                _ => rate.and_then(|(r, b)| new_limiter(r, b)),
            };
            let quota_counter = match previous.as_ref().and_then(|p| p.quota_counter.clone()) {
                Some(counter) => Some(counter),
                None if quota.is_none() => None,
                None => {
                    let counter = Arc::new(QuotaCounter::default());
                    // The use of a key evicted before its use was written, else the saved use.
                    let known = self.inner.keys.evicted_quota(&r.row.id).or_else(|| {
                        saved_quota
                            .get(&r.row.id)
                            .map(|q| (q.period_start.timestamp(), Ord::max(q.used, 0) as u64))
                    });
                    if let Some((period_start, used)) = known {
                        let mut s = counter.state.lock().unwrap_or_else(|e| e.into_inner());
                        s.period_start = period_start;
                        s.used = used;
                    }
                    Some(counter)
                }
            };
            let rate_full_at = match &previous {
                Some(p) if p.rate == rate => p.rate_full_at.clone(),
                _ => rate.map(|_| Arc::new(std::sync::atomic::AtomicI64::new(0))),
            };
            let shared = &self.inner.shared;
            let cached = CachedKey {
                rate_full_at,
                lifecycle: r.lifecycle(),
                owner_is_admin: r.owner_is_admin(),
                scopes: shared.scopes(r.scopes()),
                ip_allowlist: r
                    .ip_allowlist()
                    .iter()
                    .filter_map(|e| parse_allowlist_entry(e))
                    .collect(),
                expires_at: r.row.expires_at,
                rate,
                limiter,
                quota,
                quota_counter,
                pool,
                api: shared.str(&r.api),
                id: Arc::from(r.row.id.as_str()),
                owner_id: shared.str(&r.row.owner_id),
                api_id: shared.str(&r.row.api_id),
            };
            self.inner.negative.remove(&hash);
            let cached = Arc::new(cached);
            self.inner.keys.insert(hash, cached.clone());
            built.push(cached);
        }
        Ok(built)
    }

    /// How many keys are in memory.
    pub fn len(&self) -> usize {
        self.inner.keys.len() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies a request; looks the key up in the database only when this process does not
    /// know its hash and has not recently learned that no key has it. With global limits
    /// (Redis), a key with a rate limit or quota is metered there, in one round trip.
    pub async fn verify(&self, req: &Request<'_>, now: DateTime<Utc>) -> Outcome {
        let checked = match self.check(req, now) {
            Ok(checked) => checked,
            Err(hash) => {
                // A hash surely unknown (not even created on another instance since this one
                // last heard) costs a query only within the lookup budget; a known key that is
                // not in memory is fetched at once.
                if !self.inner.keys.may_exist(&hash) && self.inner.lookups.check().is_err() {
                    self.count(None, now, Code::NotFound);
                    return Outcome::bare(Code::NotFound, None);
                }
                match self.load_by_hash(hash).await {
                    Ok(Some(key)) => self.decide(key, req, now),
                    Ok(None) => {
                        self.inner.negative.insert(hash);
                        self.count(None, now, Code::NotFound);
                        return Outcome::bare(Code::NotFound, None);
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot look up a key for verification");
                        self.count(None, now, Code::NotFound);
                        return Outcome::bare(Code::NotFound, None);
                    }
                }
            }
        };
        let (mut outcome, key) = match checked {
            Checked::Done(outcome) => return outcome,
            Checked::Meter(outcome, key) => (outcome, key),
        };
        if let Some(global) = &self.inner.global
            && key.has_limits()
        {
            // On `Err` nothing in `outcome` was changed yet.
            match self
                .meter_global(global, &mut outcome, &key, req.cost, now)
                .await
            {
                Ok(()) => {
                    self.count(Some(&key.id), now, outcome.code);
                    return outcome;
                }
                Err(Unavailable) if global.failure() == RedisFailure::Closed => {
                    // Not anyone's usage: the request was not metered.
                    outcome.code = Code::RateLimited;
                    outcome.limits_unavailable = true;
                    outcome.retry_after = Some(StdDuration::from_secs(1));
                    return outcome;
                }
                // Fail open: the local limiters decide until Redis answers again.
                Err(Unavailable) => {}
            }
        }
        self.meter_local(outcome, &key, req.cost, now)
    }

    /// The key with `hash`, fetched from the database (and cached); concurrent calls for one
    /// hash share one query.
    async fn load_by_hash(&self, hash: Hash32) -> Result<Option<Arc<CachedKey>>, DomainError> {
        let cell = self
            .inner
            .loading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(hash)
            .or_default()
            .clone();
        let loaded = cell
            .get_or_try_init(|| async {
                let rows = api_key::Entity::find()
                    .filter(api_key::Column::Hash.eq(hex(&hash)))
                    .all(self.inner.db.conn())
                    .await?;
                Ok::<_, DomainError>(self.upsert_rows(rows, Keep::All).await?.into_iter().next())
            })
            .await
            .cloned();
        let mut loading = self.inner.loading.lock().unwrap_or_else(|e| e.into_inner());
        if loading.get(&hash).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            loading.remove(&hash);
        }
        loaded
    }

    /// Verifies from memory alone (local limiters, whatever the mode). `Err(hash)`: this
    /// process does not know the key, and it is not in the negative cache either.
    pub fn verify_cached(&self, req: &Request<'_>, now: DateTime<Utc>) -> Result<Outcome, Hash32> {
        Ok(match self.check(req, now)? {
            Checked::Done(outcome) => outcome,
            Checked::Meter(outcome, key) => self.meter_local(outcome, &key, req.cost, now),
        })
    }

    /// Everything but the limits, from memory. The decision is [`policy::decide`]'s (its shape
    /// check, then [`policy::decide_well_formed`]); this function only gathers the facts and
    /// counts the refusals. A key that passes is left to metering.
    fn check(&self, req: &Request<'_>, now: DateTime<Utc>) -> Result<Checked, Hash32> {
        if let Some(code) = policy::check_shape(req.key) {
            self.count(None, now, code);
            return Ok(Checked::Done(Outcome::bare(code, None)));
        }
        let hash = hash_of(req.key);
        let Some(key) = self.inner.keys.get(&hash) else {
            if self.inner.negative.contains(&hash) {
                self.inner.negative_hits.fetch_add(1, Ordering::Relaxed);
                self.count(None, now, Code::NotFound);
                return Ok(Checked::Done(Outcome::bare(Code::NotFound, None)));
            }
            return Err(hash);
        };
        Ok(self.decide(key, req, now))
    }

    /// [`Verifier::check`] for a key in hand: the policy's decision, or the key to meter.
    fn decide(&self, key: Arc<CachedKey>, req: &Request<'_>, now: DateTime<Utc>) -> Checked {
        let version = req.version.and_then(|v| {
            self.inner
                .versions
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&*key.api_id)
                .and_then(|m| m.get(v))
                .map(|(status, sunset)| (v, *status, *sunset))
        });
        let facts = KeyFacts {
            api: &key.api,
            lifecycle: key.lifecycle,
            ip_allowlist: &key.ip_allowlist,
            scopes: &key.scopes,
        };
        if let Some(code) = policy::decide_well_formed(Some(&facts), req, version.map(|v| v.1), now)
        {
            if code == Code::NotFound {
                // A key of another API is, for this API, no key at all: nobody's usage.
                self.count(None, now, code);
                return Checked::Done(Outcome::bare(code, None));
            }
            self.count(Some(&key.id), now, code);
            return Checked::Done(Outcome::bare(code, Some(key)));
        }
        let mut outcome = Outcome::bare(Code::Valid, Some(key.clone()));
        outcome.deprecation = version.and_then(|(v, status, sunset_at)| {
            (status == VersionStatus::Deprecated).then(|| Deprecation {
                version: v.to_owned(),
                sunset_at,
            })
        });
        Checked::Meter(outcome, key)
    }

    /// Meters a key that passed every other check with this process' own limiters and quota
    /// counters ([`policy::meter`]: the rate limit first, then the quota), and counts the use.
    fn meter_local(
        &self,
        mut outcome: Outcome,
        key: &Arc<CachedKey>,
        cost: u32,
        now: DateTime<Utc>,
    ) -> Outcome {
        let (mut ratelimit, mut quota_info, mut rate_wait, mut quota_wait) =
            (None, None, None, None);
        // One rate check: the key's own limiter, or its owner's pool (`full_at` is the key's
        // "burst full again" time for the portal; pools keep none).
        let mut check_rate =
            |limiter: &Limiter,
             (rate, burst): (RateLimit, u32),
             full_at: Option<&std::sync::atomic::AtomicI64>| {
                let clock = limiter.clock();
                let per_cell =
                    StdDuration::from_secs(rate.period_s as u64) / Ord::max(rate.limit, 1);
                match limiter.check() {
                    Ok(snapshot) => {
                        let remaining = snapshot.remaining_burst_capacity();
                        let refill = per_cell * (burst.saturating_sub(remaining));
                        let reset_at = now + Duration::from_std(refill).unwrap_or_default();
                        if let Some(full_at) = full_at {
                            full_at.store(reset_at.timestamp_millis(), Ordering::Relaxed);
                        }
                        ratelimit = Some(RateInfo {
                            limit: burst,
                            remaining,
                            reset_at,
                        });
                        true
                    }
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(clock.now());
                        let full = wait + per_cell * burst.saturating_sub(1);
                        if let Some(full_at) = full_at {
                            full_at.store(
                                (now + Duration::from_std(full).unwrap_or_default())
                                    .timestamp_millis(),
                                Ordering::Relaxed,
                            );
                        }
                        rate_wait = Some(wait);
                        ratelimit = Some(RateInfo {
                            limit: burst,
                            remaining: 0,
                            reset_at: now + Duration::from_std(wait).unwrap_or_default(),
                        });
                        false
                    }
                }
            };
        let take_rate = || {
            if let (Some(limiter), Some(rate)) = (&key.limiter, key.rate)
                && !check_rate(limiter, rate, key.rate_full_at.as_deref())
            {
                return false;
            }
            match key.pool.as_deref() {
                Some(Pool {
                    limiter: Some(limiter),
                    rate: Some(rate),
                    ..
                }) => check_rate(limiter, *rate, None),
                _ => true,
            }
        };
        let cost = Ord::max(cost, 1) as u64;
        let mut check_quota = |quota: Quota, counter: &QuotaCounter| {
            let (start, next) = quota_period(quota.period, now);
            let (fits, used) = match counter.consume(start.timestamp(), cost, quota.limit) {
                Ok(used) => (true, used),
                Err(used) => {
                    quota_wait = Some((next - now).to_std().unwrap_or_default());
                    (false, used)
                }
            };
            quota_info = Some(QuotaInfo {
                limit: quota.limit,
                remaining: quota.limit.saturating_sub(used),
                period: quota.period,
                reset_at: next,
            });
            fits
        };
        let take_quota = || {
            if let (Some(quota), Some(counter)) = (key.quota, &key.quota_counter)
                && !check_quota(quota, counter)
            {
                return false;
            }
            match key.pool.as_deref() {
                Some(Pool {
                    quota: Some(quota),
                    quota_counter,
                    ..
                }) => check_quota(*quota, quota_counter),
                _ => true,
            }
        };
        outcome.code = policy::meter(take_rate, take_quota);
        outcome.ratelimit = ratelimit;
        outcome.quota = quota_info;
        outcome.retry_after = match outcome.code {
            Code::RateLimited => rate_wait,
            Code::QuotaExceeded => quota_wait,
            _ => None,
        };
        self.count(Some(&key.id), now, outcome.code);
        outcome
    }

    /// Meters a key in Redis: the same checks in the same order as [`Verifier::meter_local`],
    /// shared by every instance. The quota counters here follow Redis' use (for the portal and
    /// the database, and to re-create a counter Redis lost).
    async fn meter_global(
        &self,
        global: &GlobalLimits,
        outcome: &mut Outcome,
        key: &CachedKey,
        cost: u32,
        now: DateTime<Utc>,
    ) -> Result<(), Unavailable> {
        let cost = Ord::max(cost, 1) as u64;
        let pool = key.pool.as_deref();
        let pool_name = || pool_quota_id(&key.owner_id);
        let rate_check = |name: &str, (rate, burst): (RateLimit, u32)| RateCheck {
            key: global.rate_key(name),
            interval_us: rate.period_s as u64 * 1_000_000 / Ord::max(rate.limit, 1) as u64,
            burst,
        };
        // The checks go to Redis (moved, not copied); what reading the answer needs stays here.
        let (mut rate_checks, mut bursts) = (Vec::with_capacity(2), Vec::with_capacity(2));
        if let Some(rate) = key.rate {
            rate_checks.push(rate_check(&key.id, rate));
            bursts.push(rate.1);
        }
        if let Some(rate) = pool.and_then(|p| p.rate) {
            rate_checks.push(rate_check(&pool_name(), rate));
            bursts.push(rate.1);
        }
        let (mut quota_checks, mut quotas) = (Vec::with_capacity(2), Vec::with_capacity(2));
        let mut quota_check = |name: &str, quota: Quota, counter: &Arc<QuotaCounter>| {
            let (start, next) = quota_period(quota.period, now);
            quota_checks.push(QuotaCheck {
                key: global.quota_key(name, start.timestamp()),
                limit: quota.limit,
                cost,
                known_use: counter.used(start.timestamp()),
                ttl_s: Ord::max((next - now).num_seconds(), 0) as u64 + 86_400,
            });
            quotas.push((quota, counter.clone(), start.timestamp(), next));
        };
        if let (Some(quota), Some(counter)) = (key.quota, &key.quota_counter) {
            quota_check(&key.id, quota, counter);
        }
        if let Some(p) = pool
            && let Some(quota) = p.quota
        {
            quota_check(&pool_name(), quota, &p.quota_counter);
        }
        let reply = global.decide(rate_checks, quota_checks).await?;
        let at = |d: StdDuration| now + Duration::from_std(d).unwrap_or_default();
        for (i, (r, burst)) in reply.rates.iter().zip(&bursts).enumerate() {
            if i == 0
                && key.rate.is_some()
                && let Some(full_at) = &key.rate_full_at
            {
                full_at.store(at(r.full_in).timestamp_millis(), Ordering::Relaxed);
            }
            outcome.ratelimit = Some(RateInfo {
                limit: *burst,
                remaining: r.remaining,
                reset_at: if r.allowed { at(r.full_in) } else { at(r.wait) },
            });
            if !r.allowed {
                outcome.code = Code::RateLimited;
                outcome.retry_after = Some(r.wait);
                return Ok(());
            }
        }
        for ((fitted, used), (quota, counter, start, next)) in reply.quotas.iter().zip(&quotas) {
            counter.observe(*start, *used);
            outcome.quota = Some(QuotaInfo {
                limit: quota.limit,
                remaining: quota.limit.saturating_sub(*used),
                period: quota.period,
                reset_at: *next,
            });
            if !fitted {
                outcome.code = Code::QuotaExceeded;
                outcome.retry_after = Some((*next - now).to_std().unwrap_or_default());
                return Ok(());
            }
        }
        Ok(())
    }

    fn count(&self, key_id: Option<&Arc<str>>, now: DateTime<Utc>, code: Code) {
        // Verifications of unknown keys are not anyone's usage; they are only logged in
        // aggregate by the caller's metrics.
        if let Some(key_id) = key_id {
            self.inner.recorder.count(key_id, now, code);
        }
    }

    /// Writes the usage counted so far, with each key's last use and quota use (see
    /// [`Recorder::flush`]).
    ///
    /// Runs as a task of its own, as [`Verifier::tick`] does: a caller that stops waiting (the
    /// background job, aborted at shutdown) never cancels a flush halfway, which would lose the
    /// counts it had taken; the next flush waits for it.
    pub async fn flush(&self) -> Result<u64, DomainError> {
        let this = self.clone();
        tokio::spawn(async move { this.inner.recorder.flush(&this).await })
            .await
            .map_err(|e| DomainError::Internal(format!("usage flush: {e}")))?
    }

    /// The periodic flush (see [`Recorder::tick`]): under load, minutes still open go to the
    /// usage journal and each reaches the buckets once, when it closes.
    pub async fn tick(&self) -> Result<Flushed, DomainError> {
        let this = self.clone();
        tokio::spawn(async move { this.inner.recorder.tick(&this).await })
            .await
            .map_err(|e| DomainError::Internal(format!("usage flush: {e}")))?
    }

    /// A key's rate limit and what is available of its burst at `now` (`None` without a limit
    /// or when the key is not active). Read from the last request, so it costs the hot path
    /// one relaxed store.
    pub fn rate_use(&self, key_id: &str, now: DateTime<Utc>) -> Option<RateInfo> {
        let key = self.inner.keys.get_by_id(key_id)?;
        let (rate, burst) = key.rate?;
        let per_cell_ms = Ord::max(
            rate.period_s as i64 * 1000 / Ord::max(rate.limit, 1) as i64,
            1,
        );
        let full_at = key.rate_full_at.as_ref()?.load(Ordering::Relaxed);
        let missing = Ord::max(full_at - now.timestamp_millis(), 0);
        let used = Ord::min((missing + per_cell_ms - 1) / per_cell_ms, burst as i64) as u32;
        Some(RateInfo {
            limit: burst,
            remaining: burst - used,
            reset_at: Utc
                .timestamp_millis_opt(Ord::max(full_at, now.timestamp_millis()))
                .single()
                .unwrap_or(now),
        })
    }

    /// A key's quota and its use in the current period, as verification counts it: its own,
    /// else the one its owner's keys share (`None` when there is none or the key is not active).
    pub fn quota_use(&self, key_id: &str, now: DateTime<Utc>) -> Option<QuotaInfo> {
        let key = self.inner.keys.get_by_id(key_id)?;
        // Its own quota, else the quota its owner's keys share.
        let (quota, counter) = match (key.quota, key.pool.as_deref()) {
            (Some(quota), _) => (quota, key.quota_counter.as_ref()?),
            (None, Some(pool)) => (pool.quota?, &pool.quota_counter),
            (None, None) => return None,
        };
        let (start, next) = quota_period(quota.period, now);
        let used = counter.used(start.timestamp());
        Some(QuotaInfo {
            limit: quota.limit,
            remaining: quota.limit.saturating_sub(used),
            period: quota.period,
            reset_at: next,
        })
    }
}

impl KeyState for Verifier {
    fn take_dirty_quotas(&self) -> Vec<QuotaUse> {
        let mut dirty: Vec<QuotaUse> = self
            .inner
            .keys
            .keys()
            .iter()
            .filter_map(|k| {
                k.quota_counter
                    .as_ref()?
                    .take_dirty()
                    .map(|(p, u)| (k.id.to_string(), p, u))
            })
            .collect();
        // Keys evicted since the last flush with use not yet written.
        dirty.extend(self.inner.keys.take_evicted_quotas());
        // The pools' use is stored beside the keys', under `pool:<owner>`.
        let pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        dirty.extend(pools.iter().filter_map(|(owner, pool)| {
            pool.quota_counter
                .take_dirty()
                .map(|(p, u)| (pool_quota_id(owner), p, u))
        }));
        dirty
    }

    fn restore_dirty_quotas(&self, key_ids: &[String]) {
        {
            let pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
            for owner in key_ids.iter().filter_map(|id| id.strip_prefix("pool:")) {
                if let Some(pool) = pools.get(owner) {
                    pool.quota_counter.mark_dirty();
                }
            }
        }
        for id in key_ids {
            if let Some(counter) = self
                .inner
                .keys
                .get_by_id(id)
                .and_then(|k| k.quota_counter.clone())
            {
                counter.mark_dirty();
            }
        }
    }
}

fn hex(h: &Hash32) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(64);
    for b in h {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl KeyChanges for Verifier {
    fn apply(&self, change: Change) -> Applied<'_> {
        Box::pin(async move {
            let result = match &change {
                Change::Key(id) => self.refresh_key(id).await,
                Change::Owner(id) => self.refresh_owner(id).await,
                Change::Versions => self.refresh_versions().await,
                Change::All => self.refresh_cached().await,
            };
            if let Err(error) = result {
                // The periodic refresh picks the change up a few seconds later.
                tracing::error!(%error, ?change, "cannot apply a key change to the verifier");
            }
        })
    }
}
