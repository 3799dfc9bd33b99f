//! The verifier: the in-memory state behind verification. An index of every key by SHA-256
//! (loaded at start, updated through [`KeyChanges`] by every change made with
//! [`crate::keys::Keys`]), GCRA rate limiters (governor),
//! quota counters; usage is counted by a [`Recorder`] it is given.
//! The database stays the source of truth; a key unknown to this process is looked up once, and
//! an unknown hash is remembered for a minute (bounded) so a flood of made-up keys cannot
//! become a flood of queries.
use std::{
    collections::{HashMap, HashSet},
    num::NonZeroU32,
    sync::{Arc, Mutex, RwLock},
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

use super::{
    outcome::{Code, Deprecation, QuotaInfo, RateInfo, Request},
    policy::{self, KeyFacts},
};
use crate::{
    Database, DomainError,
    catalog::{Quota, QuotaPeriod, RateLimit, VersionStatus},
    changes::{Applied, Change, KeyChanges},
    entities::{api_key, api_version, key_quota},
    keys::{parse_allowlist_entry, status::Lifecycle},
    usage::recorder::{KeyState, QuotaUse, Recorder},
};

/// The answer, with everything a caller may want to pass on to its client.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub code: Code,
    /// Absent when the key is unknown (or malformed).
    pub key: Option<Arc<CachedKey>>,
    pub ratelimit: Option<RateInfo>,
    pub quota: Option<QuotaInfo>,
    pub deprecation: Option<Deprecation>,
    /// For RATE_LIMITED and QUOTA_EXCEEDED: when trying again can succeed.
    pub retry_after: Option<StdDuration>,
}

impl Outcome {
    fn bare(code: Code, key: Option<Arc<CachedKey>>) -> Outcome {
        Outcome {
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
    fn mark_dirty(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).dirty = true;
    }
}

/// A key as the verifier holds it: what it grants and its effective limits (its own, else its
/// owner's plan).
pub struct CachedKey {
    pub id: String,
    /// The id again, shared by the usage counters without allocating per request.
    id_shared: Arc<str>,
    pub owner_id: String,
    pub api_id: String,
    pub api: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    ip_allowlist: Vec<IpNet>,
    lifecycle: Lifecycle,
    /// The owner is an admin (for the management API: an admin's key with the `admin` scope
    /// acts on everything).
    pub owner_is_admin: bool,
    rate: Option<(RateLimit, u32)>,
    limiter: Option<Arc<Limiter>>,
    quota: Option<Quota>,
    quota_counter: Arc<QuotaCounter>,
    /// The owner's plan limits when the plan shares them among all the owner's keys: checked
    /// after the key's own (if any), one limiter and one quota counter per owner.
    pool: Option<Arc<Pool>>,
    /// The newest minute written to `last_used_at`, so a flush updates a key's row at most once
    /// a minute rather than every flush.
    last_used_minute: Arc<std::sync::atomic::AtomicI64>,
    /// When the rate limiter's burst is full again (Unix milliseconds), as of the last request:
    /// the portal's "available now" without touching the limiter.
    rate_full_at: Arc<std::sync::atomic::AtomicI64>,
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

#[derive(Default)]
struct Index {
    by_hash: HashMap<Hash32, Arc<CachedKey>>,
    hash_of_id: HashMap<String, Hash32>,
    /// API id -> (version name -> status, sunset).
    versions: HashMap<String, VersionMap>,
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
    index: RwLock<Index>,
    negative: NegativeCache,
    /// Where each verification of a known key is counted.
    recorder: Recorder,
    /// Owner id -> the plan limits all their keys share (plans that apply per developer).
    pools: Mutex<HashMap<String, Arc<Pool>>>,
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
        Verifier {
            inner: Arc::new(Inner {
                lookups: RateLimiter::direct(
                    GovernorQuota::per_second(
                        NonZeroU32::new(LOOKUPS_PER_SECOND).expect("non-zero"),
                    )
                    .allow_burst(NonZeroU32::new(LOOKUPS_PER_SECOND).expect("non-zero")),
                ),
                db,
                index: RwLock::new(Index::default()),
                negative: NegativeCache {
                    entries: Mutex::new((HashSet::new(), Instant::now())),
                    capacity: 100_000,
                    ttl: StdDuration::from_secs(60),
                },
                recorder,
                pools: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The recorder this verifier counts usage with.
    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    /// Loads every key, the API versions and the persisted quota use.
    pub async fn load(&self) -> Result<usize, DomainError> {
        use sea_orm::{QueryOrder, QuerySelect};
        self.refresh_versions().await?;
        // In pages, so loading many keys never holds every row in memory at once.
        let mut n = 0;
        let mut after = 0i64;
        loop {
            let rows = api_key::Entity::find()
                .filter(api_key::Column::Seq.gt(after))
                .order_by_asc(api_key::Column::Seq)
                .limit(5_000)
                .all(self.inner.db.conn())
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            n += rows.len();
            self.upsert_rows(rows).await?;
        }
        Ok(n)
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
        self.inner
            .index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .versions = map;
        Ok(())
    }

    /// Re-reads one key (after a change to it).
    pub async fn refresh_key(&self, key_id: &str) -> Result<(), DomainError> {
        let rows = api_key::Entity::find()
            .filter(api_key::Column::Id.eq(key_id))
            .all(self.inner.db.conn())
            .await?;
        self.upsert_rows(rows).await
    }

    /// Re-reads every key of a user (after their status or plan changed).
    pub async fn refresh_owner(&self, user_id: &str) -> Result<(), DomainError> {
        let rows = api_key::Entity::find()
            .filter(api_key::Column::OwnerId.eq(user_id))
            .all(self.inner.db.conn())
            .await?;
        self.upsert_rows(rows).await
    }

    /// Re-reads keys changed since `since` (other instances' changes, on a shared database).
    pub async fn refresh_changed_since(&self, since: DateTime<Utc>) -> Result<usize, DomainError> {
        let rows = api_key::Entity::find()
            .filter(api_key::Column::UpdatedAt.gte(since))
            .all(self.inner.db.conn())
            .await?;
        let n = rows.len();
        self.upsert_rows(rows).await?;
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

    async fn upsert_rows(&self, rows: Vec<api_key::Model>) -> Result<(), DomainError> {
        if rows.is_empty() {
            return Ok(());
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
        let mut index = self.inner.index.write().unwrap_or_else(|e| e.into_inner());
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
            let previous = index.by_hash.get(&hash).cloned();
            let limiter = match &previous {
                Some(p) if p.rate == rate => p.limiter.clone(),
                _ => rate.and_then(|(r, b)| new_limiter(r, b)),
            };
            let quota_counter = match &previous {
                Some(p) => p.quota_counter.clone(),
                None => {
                    let counter = Arc::new(QuotaCounter::default());
                    if let Some(saved) = saved_quota.get(&r.row.id) {
                        let mut s = counter.state.lock().unwrap_or_else(|e| e.into_inner());
                        s.period_start = saved.period_start.timestamp();
                        s.used = Ord::max(saved.used, 0) as u64;
                    }
                    counter
                }
            };
            let last_used_minute = match &previous {
                Some(p) => p.last_used_minute.clone(),
                None => Arc::new(std::sync::atomic::AtomicI64::new(
                    r.row.last_used_at.map_or(i64::MIN, |t| t.timestamp()),
                )),
            };
            let rate_full_at = match &previous {
                Some(p) if p.rate == rate => p.rate_full_at.clone(),
                _ => Arc::new(std::sync::atomic::AtomicI64::new(0)),
            };
            let cached = CachedKey {
                rate_full_at,
                last_used_minute,
                lifecycle: r.lifecycle(),
                owner_is_admin: r.owner_is_admin(),
                scopes: r.scopes(),
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
                id_shared: Arc::from(r.row.id.as_str()),
                api: r.api,
                id: r.row.id.clone(),
                owner_id: r.row.owner_id,
                api_id: r.row.api_id,
            };
            self.inner.negative.remove(&hash);
            index.hash_of_id.insert(r.row.id, hash);
            index.by_hash.insert(hash, Arc::new(cached));
        }
        Ok(())
    }

    /// How many keys the index holds.
    pub fn len(&self) -> usize {
        self.inner
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_hash
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies a request; looks the key up in the database only when this process does not
    /// know its hash and has not recently learned that no key has it.
    pub async fn verify(&self, req: &Request<'_>, now: DateTime<Utc>) -> Outcome {
        match self.verify_cached(req, now) {
            Ok(outcome) => outcome,
            Err(hash) => {
                if self.inner.lookups.check().is_err() {
                    self.count(None, now, Code::NotFound);
                    return Outcome::bare(Code::NotFound, None);
                }
                let found = api_key::Entity::find()
                    .filter(api_key::Column::Hash.eq(hex(&hash)))
                    .all(self.inner.db.conn())
                    .await;
                match found {
                    Ok(rows) if !rows.is_empty() => {
                        if let Err(error) = self.upsert_rows(rows).await {
                            tracing::error!(%error, "cannot load a key for verification");
                        }
                    }
                    Ok(_) => self.inner.negative.insert(hash),
                    Err(error) => {
                        tracing::error!(%error, "cannot look up a key for verification");
                    }
                }
                self.verify_cached(req, now).unwrap_or_else(|hash| {
                    self.inner.negative.insert(hash);
                    self.count(None, now, Code::NotFound);
                    Outcome::bare(Code::NotFound, None)
                })
            }
        }
    }

    /// Verifies from memory alone. `Err(hash)`: this process does not know the key, and it is
    /// not in the negative cache either. The decision is [`policy::decide`]'s (its shape check, then
    /// [`policy::decide_well_formed`]), then
    /// [`policy::meter`]'s; this function only gathers the facts and keeps the counters.
    pub fn verify_cached(&self, req: &Request<'_>, now: DateTime<Utc>) -> Result<Outcome, Hash32> {
        if let Some(code) = policy::check_shape(req.key) {
            self.count(None, now, code);
            return Ok(Outcome::bare(code, None));
        }
        let hash = hash_of(req.key);
        let (key, version) = {
            let index = self.inner.index.read().unwrap_or_else(|e| e.into_inner());
            let Some(key) = index.by_hash.get(&hash).cloned() else {
                drop(index);
                if self.inner.negative.contains(&hash) {
                    self.count(None, now, Code::NotFound);
                    return Ok(Outcome::bare(Code::NotFound, None));
                }
                return Err(hash);
            };
            let version = req.version.and_then(|v| {
                index
                    .versions
                    .get(&key.api_id)
                    .and_then(|m| m.get(v))
                    .map(|(status, sunset)| (v, *status, *sunset))
            });
            (key, version)
        };
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
                return Ok(Outcome::bare(code, None));
            }
            self.count(Some(&key.id_shared), now, code);
            return Ok(Outcome::bare(code, Some(key)));
        }
        let mut outcome = Outcome::bare(Code::Valid, Some(key.clone()));
        outcome.deprecation = version.and_then(|(v, status, sunset_at)| {
            (status == VersionStatus::Deprecated).then(|| Deprecation {
                version: v.to_owned(),
                sunset_at,
            })
        });
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
                            full_at.store(
                                reset_at.timestamp_millis(),
                                std::sync::atomic::Ordering::Relaxed,
                            );
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
                                std::sync::atomic::Ordering::Relaxed,
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
                && !check_rate(limiter, rate, Some(&key.rate_full_at))
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
        let cost = Ord::max(req.cost, 1) as u64;
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
            if let Some(quota) = key.quota
                && !check_quota(quota, &key.quota_counter)
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
        self.count(Some(&key.id_shared), now, outcome.code);
        Ok(outcome)
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
    pub async fn flush(&self) -> Result<u64, DomainError> {
        self.inner.recorder.flush(self).await
    }

    /// A key's rate limit and what is available of its burst at `now` (`None` without a limit
    /// or when the key is not active). Read from the last request, so it costs the hot path
    /// one relaxed store.
    pub fn rate_use(&self, key_id: &str, now: DateTime<Utc>) -> Option<RateInfo> {
        let index = self.inner.index.read().unwrap_or_else(|e| e.into_inner());
        let key = index.by_hash.get(index.hash_of_id.get(key_id)?)?;
        let (rate, burst) = key.rate?;
        let per_cell_ms = Ord::max(
            rate.period_s as i64 * 1000 / Ord::max(rate.limit, 1) as i64,
            1,
        );
        let full_at = key.rate_full_at.load(std::sync::atomic::Ordering::Relaxed);
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
        let index = self.inner.index.read().unwrap_or_else(|e| e.into_inner());
        let key = index.by_hash.get(index.hash_of_id.get(key_id)?)?;
        // Its own quota, else the quota its owner's keys share.
        let (quota, counter) = match (key.quota, key.pool.as_deref()) {
            (Some(quota), _) => (quota, &key.quota_counter),
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
        let mut dirty: Vec<QuotaUse> = {
            let index = self.inner.index.read().unwrap_or_else(|e| e.into_inner());
            index
                .by_hash
                .values()
                .filter_map(|k| {
                    k.quota_counter
                        .take_dirty()
                        .map(|(p, u)| (k.id.clone(), p, u))
                })
                .collect()
        };
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
        let index = self.inner.index.read().unwrap_or_else(|e| e.into_inner());
        for id in key_ids {
            if let Some(h) = index.hash_of_id.get(id)
                && let Some(k) = index.by_hash.get(h)
            {
                k.quota_counter.mark_dirty();
            }
        }
    }

    fn last_used_minute(&self, key_id: &str) -> Option<Arc<std::sync::atomic::AtomicI64>> {
        let index = self.inner.index.read().unwrap_or_else(|e| e.into_inner());
        let hash = index.hash_of_id.get(key_id)?;
        index.by_hash.get(hash).map(|k| k.last_used_minute.clone())
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
                Change::All => self.load().await.map(|_| ()),
            };
            if let Err(error) = result {
                // The periodic refresh picks the change up a few seconds later.
                tracing::error!(%error, ?change, "cannot apply a key change to the verifier");
            }
        })
    }
}
