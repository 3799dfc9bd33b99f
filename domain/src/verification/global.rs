//! Rate limits and quotas shared by every instance, in Redis: one Lua script per decision (one
//! round trip), so a key limited to 20 requests gets 20 whichever instances its requests reach.
//!
//! The script checks, in order, the key's own rate limit and its owner's pool (GCRA: one
//! "theoretical arrival time" per limiter, in Redis' own clock so instances' clocks do not
//! matter), then the key's quota and the pool's (a counter per period, `INCRBY`, expiring a day
//! after its period). It stops at the first refusal, exactly as the local limiters do: a
//! rate-limited request spends no quota. A quota counter that Redis lost (restart, eviction) is
//! re-created from the use this instance knows (loaded from the database, kept up to date by
//! every answer), so a lost Redis never hands out a fresh quota.
//!
//! Decisions are queued to one task that sends all those waiting (up to 256) to the script in one
//! `EVALSHA`, so under load many decisions share a write, a read, a wake-up and one run of the
//! script instead of each paying its own; a lone decision goes out at once. Every decision is
//! still one round trip, and each is exact: the batch runs atomically, in arrival order.
//!
//! A circuit breaker keeps Redis off the hot path when it fails: any error, or no answer within
//! [`TIMEOUT`], opens it; while open the verifier uses its local limiters (or, with
//! `--redis-failure closed`, refuses limited keys), and a probe every [`PROBE_EVERY`] closes it
//! again once Redis answers. A warning is logged once per change of state.
//!
//! Written here rather than taken from a crate: the GCRA crates for Redis cover one limiter per
//! call, not a key and its owner's pool with quotas in one atomic step.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// How long a decision may wait for Redis before the breaker opens.
pub const TIMEOUT: Duration = Duration::from_millis(50);
/// How often an open breaker checks whether Redis answers again.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Where limits are kept when several instances share a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitMode {
    /// In Redis: limits hold exactly across all instances.
    Strict,
    /// In each instance's memory: a limit of N allows N per instance.
    Local,
}

impl RateLimitMode {
    pub fn parse(s: &str) -> Option<RateLimitMode> {
        match s {
            "strict" => Some(RateLimitMode::Strict),
            "local" => Some(RateLimitMode::Local),
            _ => None,
        }
    }
}

/// What the verifier does with a limited key while Redis is unavailable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisFailure {
    /// Fail open: answer from the local limiters (a limit of N allows N per instance meanwhile).
    Open,
    /// Fail closed: refuse keys that have a rate limit or quota (HTTP 503) until Redis is back.
    Closed,
}

impl RedisFailure {
    pub fn parse(s: &str) -> Option<RedisFailure> {
        match s {
            "open" => Some(RedisFailure::Open),
            "closed" => Some(RedisFailure::Closed),
            _ => None,
        }
    }
}

/// One GCRA limiter to check: its Redis key, the time per request and the burst.
#[derive(Clone, Debug)]
pub struct RateCheck {
    pub key: String,
    pub interval_us: u64,
    pub burst: u32,
}

/// One quota counter to charge: its Redis key (which names the period), the limit, this
/// request's cost, the use known without Redis (to re-create a lost counter) and how long the
/// counter lives.
#[derive(Clone, Debug)]
pub struct QuotaCheck {
    pub key: String,
    pub limit: u64,
    pub cost: u64,
    pub known_use: u64,
    pub ttl_s: u64,
}

/// A limiter's state after the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateReply {
    pub allowed: bool,
    /// Requests left in the burst.
    pub remaining: u32,
    /// When refused: how long until one request is allowed.
    pub wait: Duration,
    /// How long until the burst is full again.
    pub full_in: Duration,
}

/// The decision: one entry per check made, in order (checks after a refusal are not made).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub rates: Vec<RateReply>,
    /// Per quota checked: whether it fitted, and the use after this request (or the use that
    /// left no room).
    pub quotas: Vec<(bool, u64)>,
}

/// Redis was not asked or did not answer in time; the caller decides locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable;

/// The decision script, run once per batch of decisions (atomically, in Redis' clock). KEYS:
/// every decision's rate keys, then its quota keys, decision after decision. ARGV: the number of
/// decisions, then per decision the number of rate checks and of quota checks, per rate check
/// (µs per request, burst), per quota check (limit, cost, known use, TTL in seconds). Returns a
/// flat list: per decision, how many values follow, then per rate check made (allowed 0/1,
/// remaining, wait µs, full in µs) and per quota check made (fitted 0/1, use); a decision stops
/// at its first refusal.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
local n = 0
local a = 2
local k = 1
for d = 1, tonumber(ARGV[1]) do
  local nr = tonumber(ARGV[a])
  local nq = tonumber(ARGV[a + 1])
  a = a + 2
  n = n + 1
  local head = n
  local refused = false
  for i = 1, nr do
    local interval = tonumber(ARGV[a])
    local burst = tonumber(ARGV[a + 1])
    a = a + 2
    if not refused then
      local tat = math.max(tonumber(redis.call('GET', KEYS[k]) or 0), now)
      local new_tat = tat + interval
      if new_tat - now > burst * interval then
        out[n + 1] = 0; out[n + 2] = 0; out[n + 3] = new_tat - burst * interval - now; out[n + 4] = tat - now
        refused = true
      else
        redis.call('SET', KEYS[k], string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
        out[n + 1] = 1; out[n + 2] = math.floor((burst * interval - (new_tat - now)) / interval)
        out[n + 3] = 0; out[n + 4] = new_tat - now
      end
      n = n + 4
    end
    k = k + 1
  end
  for i = 1, nq do
    local limit = tonumber(ARGV[a])
    local cost = tonumber(ARGV[a + 1])
    local known = tonumber(ARGV[a + 2])
    local ttl = tonumber(ARGV[a + 3])
    a = a + 4
    if not refused then
      local used = tonumber(redis.call('GET', KEYS[k]) or -1)
      if used < 0 then
        used = known
        redis.call('SET', KEYS[k], known, 'EX', ttl)
      end
      if used + cost > limit then
        out[n + 1] = 0; out[n + 2] = used
        refused = true
      else
        out[n + 1] = 1; out[n + 2] = redis.call('INCRBY', KEYS[k], cost)
      end
      n = n + 2
    end
    k = k + 1
  end
  out[head] = n - head
end
return out
"#;

/// Global limits in Redis, behind a circuit breaker. Cheap to clone.
#[derive(Clone)]
pub struct GlobalLimits {
    inner: Arc<Inner>,
}

struct Inner {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
    failure: RedisFailure,
    prefix: String,
    breaker: Breaker,
    /// Decisions waiting for Redis, sent by one task in batches (started on first use).
    queue: std::sync::OnceLock<tokio::sync::mpsc::Sender<Job>>,
}

/// One decision for the batching task: the script's keys and arguments, and where to answer.
struct Job {
    keys: Vec<String>,
    args: Vec<u64>,
    answer: tokio::sync::oneshot::Sender<Result<Vec<i64>, String>>,
}

/// How many decisions one batch carries at most.
const BATCH: usize = 256;

impl std::fmt::Debug for GlobalLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalLimits")
            .field("failure", &self.inner.failure)
            .field("open", &self.breaker_open())
            .finish_non_exhaustive()
    }
}

/// Open while Redis fails; closed again by a probe.
struct Breaker {
    open: AtomicBool,
    probing: AtomicBool,
    /// Milliseconds since `epoch` of the last probe.
    last_probe_ms: AtomicU64,
    epoch: Instant,
    /// Times it opened (for metrics).
    trips: AtomicU64,
}

impl GlobalLimits {
    /// Global limits on the Redis at `url` (a clear error, without its password, when the URL
    /// is not usable).
    pub fn open(url: &str, failure: RedisFailure) -> Result<Self, crate::DomainError> {
        redis::Client::open(url)
            .and_then(|client| GlobalLimits::new(client, failure))
            .map_err(|e| {
                crate::DomainError::Config(format!(
                    "the Redis URL {} is not usable: {e}",
                    crate::db::redact_url(url)
                ))
            })
    }

    /// Global limits on `client`'s Redis. Connects lazily: an unreachable Redis at start only
    /// opens the breaker at the first decision.
    pub fn new(client: redis::Client, failure: RedisFailure) -> Result<Self, redis::RedisError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(0);
        Ok(GlobalLimits {
            inner: Arc::new(Inner {
                conn: redis::aio::ConnectionManager::new_lazy_with_config(client, config)?,
                script: redis::Script::new(SCRIPT),
                failure,
                prefix: "keyport:".to_owned(),
                breaker: Breaker {
                    open: AtomicBool::new(false),
                    probing: AtomicBool::new(false),
                    last_probe_ms: AtomicU64::new(0),
                    epoch: Instant::now(),
                    trips: AtomicU64::new(0),
                },
                queue: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn failure(&self) -> RedisFailure {
        self.inner.failure
    }

    /// True while Redis is considered unavailable.
    pub fn breaker_open(&self) -> bool {
        self.inner.breaker.open.load(Ordering::Relaxed)
    }

    /// How many times the breaker opened since start.
    pub fn breaker_trips(&self) -> u64 {
        self.inner.breaker.trips.load(Ordering::Relaxed)
    }

    /// The Redis key of a limiter or counter named `name` (a key id, or `pool:<owner>`).
    pub fn rate_key(&self, name: &str) -> String {
        format!("{}rl:{name}", self.inner.prefix)
    }
    pub fn quota_key(&self, name: &str, period_start: i64) -> String {
        format!("{}q:{name}:{period_start}", self.inner.prefix)
    }

    /// Decides in Redis, or `Err(Unavailable)` at once while the breaker is open, or after at
    /// most [`TIMEOUT`] when Redis fails (which opens it).
    pub async fn decide(
        &self,
        rates: Vec<RateCheck>,
        quotas: Vec<QuotaCheck>,
    ) -> Result<Reply, Unavailable> {
        if self.breaker_open() {
            self.probe_soon();
            return Err(Unavailable);
        }
        let rate_checks = rates.len();
        let mut keys = Vec::with_capacity(rates.len() + quotas.len());
        let mut args = Vec::with_capacity(1 + 2 * rates.len() + 4 * quotas.len());
        args.push(rates.len() as u64);
        for r in rates {
            keys.push(r.key);
            args.extend([Ord::max(r.interval_us, 1), u64::from(r.burst)]);
        }
        for q in quotas {
            keys.push(q.key);
            args.extend([q.limit, q.cost, q.known_use, q.ttl_s]);
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        if self.queue().try_send(Job { keys, args, answer }).is_err() {
            self.trip("too many decisions waiting for Redis");
            return Err(Unavailable);
        }
        let values = match tokio::time::timeout(TIMEOUT, answered).await {
            Ok(Ok(Ok(values))) => values,
            Ok(Ok(Err(error))) => {
                self.trip(&error);
                return Err(Unavailable);
            }
            Ok(Err(_)) => {
                self.trip("the Redis task stopped");
                return Err(Unavailable);
            }
            Err(_) => {
                self.trip(&format!("no answer within {} ms", TIMEOUT.as_millis()));
                return Err(Unavailable);
            }
        };
        parse_reply(&values, rate_checks).ok_or_else(|| {
            self.trip(&format!("an unexpected answer {values:?}"));
            Unavailable
        })
    }

    /// The queue of the task that sends decisions to Redis, started on first use: it takes
    /// every decision waiting (up to [`BATCH`]) and sends them to one run of the script, so
    /// under load many decisions share one write, one read and one wake-up.
    fn queue(&self) -> &tokio::sync::mpsc::Sender<Job> {
        self.inner.queue.get_or_init(|| {
            let (queue, jobs) = tokio::sync::mpsc::channel(16 * BATCH);
            tokio::spawn(send_batches(self.inner.clone(), jobs));
            queue
        })
    }

    fn trip(&self, why: &str) {
        let breaker = &self.inner.breaker;
        breaker.last_probe_ms.store(
            breaker.epoch.elapsed().as_millis() as u64,
            Ordering::Relaxed,
        );
        if !breaker.open.swap(true, Ordering::AcqRel) {
            breaker.trips.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                error = why,
                "Redis failed: rate limits and quotas are per instance until it answers again"
            );
        }
    }

    /// Starts one probe when the last is older than [`PROBE_EVERY`]: a PING answered in time
    /// closes the breaker.
    fn probe_soon(&self) {
        let breaker = &self.inner.breaker;
        let now_ms = breaker.epoch.elapsed().as_millis() as u64;
        if now_ms.saturating_sub(breaker.last_probe_ms.load(Ordering::Relaxed))
            < PROBE_EVERY.as_millis() as u64
            || breaker.probing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        breaker.last_probe_ms.store(now_ms, Ordering::Relaxed);
        let this = self.clone();
        tokio::spawn(async move {
            let mut conn = this.inner.conn.clone();
            let cmd = redis::cmd("PING");
            let ping = cmd.query_async::<String>(&mut conn);
            let ok = matches!(tokio::time::timeout(TIMEOUT, ping).await, Ok(Ok(_)));
            let breaker = &this.inner.breaker;
            if ok && breaker.open.swap(false, Ordering::AcqRel) {
                tracing::info!("Redis answers again: rate limits and quotas are global again");
            }
            breaker.probing.store(false, Ordering::Release);
        });
    }
}

async fn send_batches(inner: Arc<Inner>, mut jobs: tokio::sync::mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH);
    while jobs.recv_many(&mut batch, BATCH).await > 0 {
        // Decisions whose caller gave up (timed out) are not sent.
        batch.retain(|job| !job.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        // One run of the script for the whole batch: the keys one after another, and per
        // decision its counts of checks, then its arguments.
        let mut call = redis::cmd("EVALSHA");
        call.arg(inner.script.get_hash())
            .arg(batch.iter().map(|job| job.keys.len()).sum::<usize>());
        for job in &batch {
            call.arg(&job.keys);
        }
        call.arg(batch.len());
        for job in &batch {
            let rate_checks = job.args[0] as usize;
            call.arg(rate_checks)
                .arg(job.keys.len().saturating_sub(rate_checks))
                .arg(&job.args[1..]);
        }
        let mut conn = inner.conn.clone();
        let mut result = call.query_async::<Vec<i64>>(&mut conn).await;
        if let Err(error) = &result
            && error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
        {
            // First use on this Redis (or after its restart): load the script, send again.
            result = match inner.script.load_async(&mut conn).await {
                Ok(_) => call.query_async::<Vec<i64>>(&mut conn).await,
                Err(error) => Err(error),
            };
        }
        let result = result.map(|flat| split_replies(&flat, batch.len()));
        match result {
            Ok(Some(replies)) => {
                for (job, reply) in batch.drain(..).zip(replies) {
                    let _ = job.answer.send(Ok(reply));
                }
            }
            Ok(None) => {
                let why = format!("an answer of the wrong shape to {} decisions", batch.len());
                for job in batch.drain(..) {
                    let _ = job.answer.send(Err(why.clone()));
                }
            }
            Err(error) => {
                let why = error.to_string();
                for job in batch.drain(..) {
                    let _ = job.answer.send(Err(why.clone()));
                }
            }
        }
    }
}

/// The script's flat answer cut into one answer per decision (each led by its length), or `None`
/// when it does not have that shape.
fn split_replies(flat: &[i64], decisions: usize) -> Option<Vec<Vec<i64>>> {
    let mut replies = Vec::with_capacity(decisions);
    let mut rest = flat;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::try_from(len).ok().filter(|&l| l <= tail.len())?;
        let (reply, tail) = tail.split_at(len);
        replies.push(reply.to_vec());
        rest = tail;
    }
    (replies.len() == decisions).then_some(replies)
}

fn parse_reply(values: &[i64], rate_checks: usize) -> Option<Reply> {
    let mut reply = Reply::default();
    let mut rest = values;
    while reply.rates.len() < rate_checks && rest.len() >= 4 {
        let (r, tail) = rest.split_at(4);
        let us = |v: i64| Duration::from_micros(Ord::max(v, 0) as u64);
        reply.rates.push(RateReply {
            allowed: r[0] == 1,
            remaining: u32::try_from(Ord::max(r[1], 0)).ok()?,
            wait: us(r[2]),
            full_in: us(r[3]),
        });
        rest = tail;
        if r[0] != 1 {
            return rest.is_empty().then_some(reply);
        }
    }
    if reply.rates.len() < rate_checks {
        return None;
    }
    for q in rest.chunks(2) {
        let [fitted, used] = q else { return None };
        reply.quotas.push((*fitted == 1, Ord::max(*used, 0) as u64));
    }
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_check_by_check() {
        let ok = parse_reply(&[1, 19, 0, 3_000_000, 1, 0, 0, 5_000, 1, 7], 2).unwrap();
        assert_eq!(ok.rates.len(), 2);
        assert_eq!(ok.rates[0].remaining, 19);
        assert_eq!(ok.rates[0].full_in, Duration::from_secs(3));
        assert_eq!(ok.quotas, vec![(true, 7)]);
        // A refusal ends the reply.
        let limited = parse_reply(&[0, 0, 250_000, 9_000_000], 2).unwrap();
        assert!(!limited.rates[0].allowed);
        assert_eq!(limited.rates[0].wait, Duration::from_millis(250));
        assert!(limited.quotas.is_empty());
        assert_eq!(parse_reply(&[1, 0], 0).unwrap().quotas, vec![(true, 0)]);
        // Answers of the wrong shape are errors, not guesses.
        assert!(parse_reply(&[1, 19, 0], 1).is_none());
        assert!(parse_reply(&[1, 5], 1).is_none());
        assert!(parse_reply(&[1, 2, 3], 0).is_none());
    }

    #[test]
    fn a_batch_answer_is_cut_per_decision() {
        assert_eq!(
            split_replies(&[2, 1, 7, 0, 4, 0, 0, 5, 9], 3),
            Some(vec![vec![1, 7], vec![], vec![0, 0, 5, 9]])
        );
        assert_eq!(split_replies(&[], 0), Some(vec![]));
        // Too short, too many, or a length that runs past the end: not guessed at.
        assert_eq!(split_replies(&[2, 1], 1), None);
        assert_eq!(split_replies(&[0, 0], 1), None);
        assert_eq!(split_replies(&[-1], 1), None);
    }

    #[test]
    fn modes_parse_from_their_names() {
        assert_eq!(RateLimitMode::parse("strict"), Some(RateLimitMode::Strict));
        assert_eq!(RateLimitMode::parse("local"), Some(RateLimitMode::Local));
        assert_eq!(RateLimitMode::parse("exact"), None);
        assert_eq!(RedisFailure::parse("closed"), Some(RedisFailure::Closed));
        assert_eq!(RedisFailure::parse("open"), Some(RedisFailure::Open));
        assert_eq!(RedisFailure::parse(""), None);
    }
}
