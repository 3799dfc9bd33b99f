//! Anomaly alerts, computed from the rollups by a background job, per key, over the last hour:
//!
//! - `spike`: at least [`SPIKE_MIN`] verifications in the last hour and at least
//!   [`SPIKE_FACTOR`] times the key's trailing median (the 24 hours before it, quiet hours
//!   included, at least 1). Only for keys at least a day old, so a new key's first traffic is
//!   not a spike.
//! - `denials`: at least [`DENIALS_MIN`] `IP_NOT_ALLOWED`, `INSUFFICIENT_SCOPE` or
//!   `RATE_LIMITED` answers in the last hour, and at least [`DENIALS_SHARE`] of its traffic:
//!   someone is probing with the key, or a client is misconfigured.
//! - `dormant_traffic`: traffic in the last hour on a key that had none in the 30 days before
//!   (and is older than that): a forgotten key in use again, possibly leaked.
//!
//! Each rule fires at most once per key in [`QUIET_HOURS`] hours. Owners see alerts on their own
//! keys, admins all; either can acknowledge them.
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::store::{self, Subject};
use super::{DAY, Granularity, HOUR, MINUTE};
use crate::{
    Database, DomainError,
    entities::{api_key, usage_alert, user},
    service::{Actor, ServiceError},
    verification::outcome::Code,
};

pub const SPIKE_MIN: u64 = 100;
pub const SPIKE_FACTOR: u64 = 5;
pub const DENIALS_MIN: u64 = 50;
pub const DENIALS_SHARE: f64 = 0.2;
pub const DORMANT_DAYS: i64 = 30;
pub const QUIET_HOURS: i64 = 6;
/// Keys looked at together: what one pass holds in memory, however many keys were used.
const PAGE: u64 = 1_000;
/// Keys one run looks at, at most: a run goes on from where the last stopped, so with more keys
/// than this a sweep over all of them takes several runs (100,000 keys: 10 runs, 10 minutes
/// with the minute job), and a run's work is bounded however many keys there are.
pub const KEYS_PER_RUN: u64 = 10_000;

/// An anomaly rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    Spike,
    Denials,
    DormantTraffic,
    /// Reported leaked (a leak report, not a usage rule).
    Leaked,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Spike => "spike",
            Rule::Denials => "denials",
            Rule::DormantTraffic => "dormant_traffic",
            Rule::Leaked => "leaked",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Rule::Spike => "Traffic spike",
            Rule::Denials => "Burst of denials",
            Rule::DormantTraffic => "Dormant key used again",
            Rule::Leaked => "Key reported leaked",
        }
    }
    pub fn parse(s: &str) -> Option<Rule> {
        [
            Rule::Spike,
            Rule::Denials,
            Rule::DormantTraffic,
            Rule::Leaked,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// What the rules look at for one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The last hour, by outcome.
    pub last_hour: BTreeMap<Code, u64>,
    /// Totals of the 24 hours before it, oldest first (missing hours count as 0).
    pub previous_hours: Vec<u64>,
    /// Verifications in the 30 days before the last hour.
    pub previous_30_days: u64,
    /// How old the key was at the start of the last hour.
    pub age: Duration,
}

/// A rule that fired, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub observed: u64,
    pub baseline: u64,
    pub detail: String,
}

fn median(v: &[u64]) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let m = s.len() / 2;
    if s.len().is_multiple_of(2) {
        (s[m - 1] + s[m]) / 2
    } else {
        s[m]
    }
}

/// The rules, applied to one key's history.
pub fn evaluate(h: &History) -> Vec<Finding> {
    let mut out = Vec::new();
    let total: u64 = h.last_hour.values().sum();
    if total == 0 {
        return out;
    }
    let baseline = median(&h.previous_hours);
    if h.age >= Duration::days(1)
        && total >= SPIKE_MIN
        && total >= SPIKE_FACTOR * Ord::max(baseline, 1)
    {
        out.push(Finding {
            rule: Rule::Spike,
            observed: total,
            baseline,
            detail: format!(
                "{total} verifications in the last hour, {:.0}x its usual {baseline} an hour (median of the 24 hours before).",
                total as f64 / Ord::max(baseline, 1) as f64
            ),
        });
    }
    let denials: u64 = [
        Code::IpNotAllowed,
        Code::InsufficientScope,
        Code::RateLimited,
    ]
    .iter()
    .map(|c| h.last_hour.get(c).copied().unwrap_or(0))
    .sum();
    if denials >= DENIALS_MIN && denials as f64 >= DENIALS_SHARE * total as f64 {
        let parts: Vec<String> = [
            Code::IpNotAllowed,
            Code::InsufficientScope,
            Code::RateLimited,
        ]
        .iter()
        .filter_map(|c| {
            h.last_hour
                .get(c)
                .filter(|n| **n > 0)
                .map(|n| format!("{n} {}", c.as_str()))
        })
        .collect();
        out.push(Finding {
            rule: Rule::Denials,
            observed: denials,
            baseline: total,
            detail: format!(
                "{denials} of {total} verifications in the last hour were denied ({}).",
                parts.join(", ")
            ),
        });
    }
    if h.age >= Duration::days(DORMANT_DAYS) && h.previous_30_days == 0 {
        out.push(Finding {
            rule: Rule::DormantTraffic,
            observed: total,
            baseline: 0,
            detail: format!(
                "{total} verifications in the last hour on a key unused for {DORMANT_DAYS} days or more."
            ),
        });
    }
    out
}

/// An alert as the portal lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub id: String,
    pub rule: Rule,
    pub key_id: String,
    pub key_name: String,
    pub key_revoked: bool,
    pub key_enabled: bool,
    pub owner_email: String,
    pub detail: String,
    pub window_start: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// The alerts service.
#[derive(Clone, Debug)]
pub struct Alerts {
    db: Database,
    /// Keys looked at together (see [`PAGE`]).
    page: u64,
    /// Pages one run looks at (see [`KEYS_PER_RUN`]).
    pages_per_run: u64,
    /// The last key the previous run looked at (`None`: the next starts from the first key).
    cursor: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap_or_default()
}

impl Alerts {
    pub fn new(db: Database) -> Alerts {
        Alerts::with_limits(db, PAGE, KEYS_PER_RUN)
    }

    /// [`Alerts::new`] looking at `page` keys at a time (at least one).
    pub fn with_page(db: Database, page: u64) -> Alerts {
        Alerts::with_limits(db, page, KEYS_PER_RUN)
    }

    /// [`Alerts::new`] looking at `page` keys at a time and at most `keys_per_run` keys (a
    /// whole number of pages, at least one) in one run.
    pub fn with_limits(db: Database, page: u64, keys_per_run: u64) -> Alerts {
        let page = Ord::max(page, 1);
        Alerts {
            db,
            page,
            pages_per_run: Ord::max(keys_per_run.div_ceil(page), 1),
            cursor: Default::default(),
        }
    }

    /// Applies the rules to the keys used in the hour before `now`, going on through the keys
    /// from where the last run stopped, [`KEYS_PER_RUN`] keys at most; records what fired.
    /// Returns the new alerts.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<usize, DomainError> {
        let end = now.timestamp() - now.timestamp().rem_euclid(MINUTE);
        let start = end - HOUR;
        let hour_start = start - start.rem_euclid(HOUR);
        let day_start = start - start.rem_euclid(DAY);
        // A page of keys at a time: the keys used in the last hour may be millions, and their
        // history and rows are held only for the page being looked at. Each query reads the
        // page's keys' rows only (see `store::grouped`).
        let mut fired = 0;
        let mut after = self
            .cursor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for _ in 0..self.pages_per_run {
            let page = store::key_ids_after(&self.db, after.as_deref(), self.page).await?;
            let (Some(first), Some(last)) = (page.first(), page.last()) else {
                after = None;
                break;
            };
            let these = Subject {
                key_range: Some((first.clone(), last.clone())),
                ..Subject::default()
            };
            let last_hour =
                store::per_key(&self.db, &these, Granularity::Minute, start, end).await?;
            if !last_hour.is_empty() {
                fired += self
                    .look_at(&these, last_hour, (start, end), hour_start, day_start, now)
                    .await?;
            }
            after = ((page.len() as u64) == self.page).then(|| last.clone());
            if after.is_none() {
                break;
            }
        }
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = after;
        Ok(fired)
    }

    /// The rules applied to one page of keys, given their last hour.
    async fn look_at(
        &self,
        these: &Subject,
        last_hour: HashMap<String, BTreeMap<Code, u64>>,
        (start, end): (i64, i64),
        hour_start: i64,
        day_start: i64,
        now: DateTime<Utc>,
    ) -> Result<usize, DomainError> {
        let previous = store::per_key_buckets(
            &self.db,
            these,
            Granularity::Hour,
            hour_start - 24 * HOUR,
            hour_start,
        )
        .await?;
        let month = store::per_key(
            &self.db,
            these,
            Granularity::Day,
            day_start - DORMANT_DAYS * DAY,
            day_start,
        )
        .await?;
        let ids: Vec<String> = last_hour.keys().cloned().collect();
        let mut keys: HashMap<String, api_key::Model> = HashMap::new();
        store::key_rows(&self.db, &ids, &mut keys).await?;
        let mut fired = 0;
        for (id, counts) in last_hour {
            let Some(key) = keys.get(&id) else { continue };
            let hours = previous.get(&id);
            let history = History {
                last_hour: counts,
                previous_hours: (0..24)
                    .map(|i| {
                        hours
                            .and_then(|h| h.get(&(hour_start - (24 - i) * HOUR)))
                            .copied()
                            .unwrap_or(0)
                    })
                    .collect(),
                previous_30_days: month.get(&id).map(|c| c.values().sum()).unwrap_or(0),
                age: at(start) - key.created_at,
            };
            for f in evaluate(&history) {
                if self.record(key, &f, start, end, now).await? {
                    fired += 1;
                }
            }
        }
        Ok(fired)
    }

    async fn record(
        &self,
        key: &api_key::Model,
        f: &Finding,
        start: i64,
        end: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let recent = usage_alert::Entity::find()
            .filter(usage_alert::Column::KeyId.eq(key.id.as_str()))
            .filter(usage_alert::Column::Rule.eq(f.rule.as_str()))
            .filter(usage_alert::Column::CreatedAt.gt(now - Duration::hours(QUIET_HOURS)))
            .count(self.db.conn())
            .await?;
        if recent > 0 {
            return Ok(false);
        }
        usage_alert::ActiveModel {
            id: Set(crate::id::new_id(crate::id::ALERT)),
            key_id: Set(key.id.clone()),
            owner_id: Set(key.owner_id.clone()),
            rule: Set(f.rule.as_str().to_owned()),
            window_start: Set(start),
            window_end: Set(end),
            observed: Set(f.observed as i64),
            baseline: Set(f.baseline as i64),
            detail: Set(f.detail.clone()),
            created_at: Set(now),
            acknowledged_at: Set(None),
            acknowledged_by: Set(None),
        }
        .insert(self.db.conn())
        .await?;
        Ok(true)
    }

    /// The actor's alerts (admins: everyone's), newest first; open ones only unless `all`.
    pub async fn list(
        &self,
        actor: &Actor,
        all: bool,
        limit: u64,
    ) -> Result<Vec<Alert>, ServiceError> {
        let mut q = usage_alert::Entity::find();
        if !actor.is_admin {
            q = q.filter(usage_alert::Column::OwnerId.eq(actor.user_id.as_str()));
        }
        if !all {
            q = q.filter(usage_alert::Column::AcknowledgedAt.is_null());
        }
        let rows = q
            .order_by_desc(usage_alert::Column::CreatedAt)
            .limit(limit)
            .all(self.db.conn())
            .await?;
        let key_ids: Vec<String> = rows.iter().map(|r| r.key_id.clone()).collect();
        let keys: HashMap<String, api_key::Model> = api_key::Entity::find()
            .filter(api_key::Column::Id.is_in(key_ids))
            .all(self.db.conn())
            .await?
            .into_iter()
            .map(|k| (k.id.clone(), k))
            .collect();
        let owner_ids: Vec<String> = rows.iter().map(|r| r.owner_id.clone()).collect();
        let emails: HashMap<String, String> = user::Entity::find()
            .filter(user::Column::Id.is_in(owner_ids))
            .all(self.db.conn())
            .await?
            .into_iter()
            .map(|u| (u.id, u.email))
            .collect();
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let key = keys.get(&r.key_id);
                Some(Alert {
                    rule: Rule::parse(&r.rule)?,
                    key_name: key.map(|k| k.name.clone()).unwrap_or_default(),
                    key_revoked: key.is_none_or(|k| k.revoked_at.is_some()),
                    key_enabled: key.is_some_and(|k| k.enabled),
                    owner_email: emails.get(&r.owner_id).cloned().unwrap_or_default(),
                    id: r.id,
                    key_id: r.key_id,
                    detail: r.detail,
                    window_start: at(r.window_start),
                    created_at: r.created_at,
                    acknowledged_at: r.acknowledged_at,
                })
            })
            .collect())
    }

    /// Marks an alert as seen. Another user's alert is "not found".
    pub async fn acknowledge(&self, actor: &Actor, id: &str) -> Result<(), ServiceError> {
        let row = usage_alert::Entity::find_by_id(id.to_owned())
            .one(self.db.conn())
            .await?
            .ok_or(ServiceError::NotFound)?;
        if row.owner_id != actor.user_id && !actor.is_admin {
            let refused = ServiceError::NotFound;
            return Err(crate::service::deny(
                &self.db,
                actor,
                "alert.acknowledge",
                Some(id),
                refused,
            )
            .await);
        }
        if row.acknowledged_at.is_some() {
            return Ok(());
        }
        let mut a: usage_alert::ActiveModel = row.into();
        a.acknowledged_at = Set(Some(Utc::now()));
        a.acknowledged_by = Set(Some(actor.user_id.clone()));
        a.update(self.db.conn()).await?;
        crate::audit::record(
            self.db.conn(),
            &actor.ctx,
            Some(&actor.user_id),
            "alert.acknowledge",
            Some(id),
            serde_json::json!({}),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(per_hour: u64) -> History {
        History {
            last_hour: BTreeMap::from([(Code::Valid, per_hour)]),
            previous_hours: vec![per_hour; 24],
            previous_30_days: per_hour * 24 * 30,
            age: Duration::days(90),
        }
    }

    fn rules(h: &History) -> Vec<Rule> {
        evaluate(h).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn steady_traffic_raises_nothing() {
        for n in [0, 1, 50, 1_000, 100_000] {
            assert!(rules(&steady(n)).is_empty(), "{n} an hour");
        }
        // Some denials among much traffic are normal.
        let mut h = steady(10_000);
        h.last_hour.insert(Code::RateLimited, 300);
        assert!(rules(&h).is_empty());
    }

    #[test]
    fn a_spike_well_above_the_trailing_median_fires() {
        let mut h = steady(40);
        h.last_hour.insert(Code::Valid, 400);
        let f = evaluate(&h);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, Rule::Spike);
        assert_eq!((f[0].observed, f[0].baseline), (400, 40));
        assert!(f[0].detail.contains("10x"), "{}", f[0].detail);
        // Four times the usual is not a spike; nor is a small absolute volume.
        h.last_hour.insert(Code::Valid, 160);
        assert!(rules(&h).is_empty());
        let mut small = steady(2);
        small.last_hour.insert(Code::Valid, 60);
        assert!(rules(&small).is_empty());
        // One busy hour in the trailing day does not hide the next spike (median, not mean).
        let mut h = steady(40);
        h.previous_hours[20] = 5_000;
        h.last_hour.insert(Code::Valid, 500);
        assert_eq!(rules(&h), [Rule::Spike]);
        // A new key's first traffic is not a spike.
        let mut new = steady(0);
        new.age = Duration::hours(3);
        new.previous_30_days = 0;
        new.last_hour.insert(Code::Valid, 5_000);
        assert!(rules(&new).is_empty());
    }

    #[test]
    fn a_burst_of_denials_fires() {
        let mut h = steady(100);
        h.last_hour.insert(Code::IpNotAllowed, 60);
        h.last_hour.insert(Code::InsufficientScope, 10);
        let f = evaluate(&h);
        assert_eq!(
            f.iter().map(|f| f.rule).collect::<Vec<_>>(),
            [Rule::Denials]
        );
        assert_eq!(f[0].observed, 70);
        assert!(f[0].detail.contains("60 IP_NOT_ALLOWED"), "{}", f[0].detail);
        // Expired or revoked answers are not this rule's business.
        let mut h = steady(10);
        h.last_hour.insert(Code::Revoked, 500);
        assert!(!rules(&h).contains(&Rule::Denials));
    }

    #[test]
    fn traffic_on_a_long_unused_key_fires() {
        let mut h = steady(0);
        h.previous_30_days = 0;
        h.last_hour.insert(Code::Valid, 3);
        assert_eq!(rules(&h), [Rule::DormantTraffic]);
        // Not for a key younger than the dormancy period.
        h.age = Duration::days(10);
        assert!(rules(&h).is_empty());
    }
}
