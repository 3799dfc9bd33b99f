//! Usage analytics: verification counts per key and outcome over time, read from the rollups
//! (minute, hour and day buckets, see [`store`]), for charts, tables, the admin dashboard and
//! the anomaly alerts. Authorization follows the keys service: a developer reads their own keys'
//! usage, an admin everyone's; another user's key is "not found".
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::{
    Database,
    entities::{api, api_key, user},
    keys::Keys,
    service::{Actor, ServiceError},
    verification::outcome::Code,
};

pub mod alerts;
pub mod hygiene;
pub mod recorder;
mod store;

pub use store::MinuteCount;
pub(crate) use store::add_minutes;
pub use store::{Compacted, DAY, Granularity, HOUR, MINUTE, Retention, Subject};

/// Adds counted minutes (key id, minute start in Unix seconds, outcome, count) in one
/// transaction, as the verifier's flush does: for importing usage and for benchmarks.
pub async fn add_minute_counts(
    db: &Database,
    counts: &[MinuteCount<'_>],
) -> Result<(), crate::DomainError> {
    let txn = db.begin_write().await?;
    add_minutes(&txn, counts).await?;
    txn.commit().await?;
    Ok(())
}

/// At most this many buckets in one answer.
pub const MAX_BUCKETS: i64 = 1_500;
/// The longest range a query may ask for.
pub const MAX_RANGE: i64 = 800 * DAY;

/// A time range, aligned to its granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: Granularity,
}

/// The ranges the portal offers.
pub const PRESETS: [(&str, &str, i64); 5] = [
    ("1h", "1 hour", HOUR),
    ("24h", "24 hours", DAY),
    ("7d", "7 days", 7 * DAY),
    ("30d", "30 days", 30 * DAY),
    ("90d", "90 days", 90 * DAY),
];

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).single().unwrap_or_default()
}

impl Range {
    /// From the query parameters of the usage API: `to` defaults to now, `from` to 24 hours
    /// before `to`, the granularity to the coarsest that fits the range.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        granularity: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Range, ServiceError> {
        let mut errors = crate::service::FieldErrors::default();
        let mut time = |field: &str, raw: Option<&str>| -> Option<DateTime<Utc>> {
            let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
            match DateTime::parse_from_rfc3339(raw) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    errors.add(field, "use an RFC 3339 time such as 2026-11-28T09:00:00Z");
                    None
                }
            }
        };
        let to_t = time("to", to).unwrap_or(now);
        let from_t = time("from", from).unwrap_or(to_t - Duration::days(1));
        let g = match granularity.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(g) => match Granularity::parse(g) {
                Some(g) => Some(g),
                None => {
                    errors.add("granularity", "use minute, hour or day");
                    None
                }
            },
        };
        errors.into_result()?;
        Range::new(from_t, to_t, g)
    }

    /// The last `seconds` before `now`, at the coarsest granularity that fits.
    pub fn last(seconds: i64, now: DateTime<Utc>) -> Range {
        let g = Granularity::for_range(seconds);
        let to = now.timestamp();
        let w = g.width();
        // Whole buckets, ending with the current one.
        let end = to - to.rem_euclid(w) + w;
        let n = Ord::max(seconds / w, 1);
        Range {
            from: at(end - n * w),
            to: at(end),
            granularity: g,
        }
    }

    pub fn new(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Option<Granularity>,
    ) -> Result<Range, ServiceError> {
        // `to` is exclusive and may fall inside a second (now, say 12:00:00.4): that second's
        // bucket holds data already, so the end rounds up, never down to 12:00:00.
        let t = to.timestamp() + i64::from(to.timestamp_subsec_nanos() > 0);
        let (f, t) = (from.timestamp(), t);
        if f >= t {
            return Err(ServiceError::invalid("from", "must be before `to`"));
        }
        if t - f > MAX_RANGE {
            return Err(ServiceError::invalid(
                "from",
                "the range is at most 800 days (usage is kept for 2 years)",
            ));
        }
        let g = granularity.unwrap_or_else(|| Granularity::for_range(t - f));
        let w = g.width();
        let f = f - f.rem_euclid(w);
        let t = if t.rem_euclid(w) == 0 {
            t
        } else {
            t - t.rem_euclid(w) + w
        };
        if (t - f) / w > MAX_BUCKETS {
            return Err(ServiceError::invalid(
                "granularity",
                format!(
                    "that is {} buckets; at most {MAX_BUCKETS}: choose a coarser granularity or a shorter range",
                    (t - f) / w
                ),
            ));
        }
        Ok(Range {
            from: at(f),
            to: at(t),
            granularity: g,
        })
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        ((self.to.timestamp() - self.from.timestamp()) / self.granularity.width()) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The verifications in one bucket, by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub counts: BTreeMap<Code, u64>,
}

impl Bucket {
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// A chart's data: every bucket of the range, empty ones included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    pub range: Range,
    pub buckets: Vec<Bucket>,
}

impl Series {
    fn dense(range: Range, sparse: BTreeMap<i64, BTreeMap<Code, u64>>) -> Series {
        let w = range.granularity.width();
        let f = range.from.timestamp();
        let buckets = (0..range.len() as i64)
            .map(|i| {
                let start = f + i * w;
                Bucket {
                    start: at(start),
                    counts: sparse.get(&start).cloned().unwrap_or_default(),
                }
            })
            .collect();
        Series { range, buckets }
    }

    /// Verifications in the whole range, by outcome.
    pub fn totals(&self) -> BTreeMap<Code, u64> {
        let mut out = BTreeMap::new();
        for b in &self.buckets {
            for (c, n) in &b.counts {
                *out.entry(*c).or_default() += n;
            }
        }
        out
    }

    pub fn total(&self) -> u64 {
        self.buckets.iter().map(Bucket::total).sum()
    }

    /// The outcomes that occur, in check order (VALID last).
    pub fn codes(&self) -> Vec<Code> {
        self.totals().into_keys().collect()
    }

    /// `start,<code>...,total` with one line per bucket (UTC, RFC 3339).
    pub fn to_csv(&self) -> String {
        let codes = Code::ALL;
        let mut out = String::from("start");
        for c in codes {
            out.push(',');
            out.push_str(c.as_str());
        }
        out.push_str(",total\n");
        for b in &self.buckets {
            out.push_str(&b.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            for c in codes {
                out.push(',');
                out.push_str(&b.counts.get(&c).copied().unwrap_or(0).to_string());
            }
            out.push(',');
            out.push_str(&b.total().to_string());
            out.push('\n');
        }
        out
    }
}

/// Whose usage a platform-level query reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub owner_id: Option<String>,
    /// An API slug.
    pub api: Option<String>,
}

/// One key's usage in a range, for tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUsage {
    pub key_id: String,
    pub name: String,
    pub start: String,
    pub owner_id: String,
    pub owner_email: String,
    pub api: String,
    pub total: u64,
    pub denied: u64,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// A developer or an API in a ranking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ranked {
    pub id: String,
    pub label: String,
    pub total: u64,
    pub denied: u64,
}

/// The admin dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overview {
    pub series: Series,
    pub active_keys: u64,
    pub active_developers: u64,
    pub new_signups: u64,
    pub top_keys: Vec<KeyUsage>,
    pub top_developers: Vec<Ranked>,
    pub apis: Vec<Ranked>,
}

fn denied(counts: &BTreeMap<Code, u64>) -> u64 {
    counts
        .iter()
        .filter(|(c, _)| **c != Code::Valid)
        .map(|(_, n)| n)
        .sum()
}

/// The usage analytics service.
#[derive(Clone, Debug)]
pub struct Usage {
    db: Database,
    keys: Keys,
}

impl Usage {
    pub fn new(db: Database, keys: Keys) -> Usage {
        Usage { db, keys }
    }

    /// Rolls minutes into hours and hours into days, and prunes what is past `retention`.
    /// Run by a background job; safe to run from several processes.
    pub async fn compact(
        &self,
        now: DateTime<Utc>,
        retention: &Retention,
    ) -> Result<Compacted, crate::DomainError> {
        store::compact(&self.db, now.timestamp(), retention).await
    }

    /// One key's verifications over time (the actor's own key; any for admins).
    pub async fn key_series(
        &self,
        actor: &Actor,
        key_id: &str,
        range: Range,
    ) -> Result<Series, ServiceError> {
        self.keys.get(actor, key_id).await?;
        self.read(
            &Subject {
                key_id: Some(key_id.to_owned()),
                ..Default::default()
            },
            range,
        )
        .await
    }

    async fn read(&self, subject: &Subject, range: Range) -> Result<Series, ServiceError> {
        let sparse = store::series(
            &self.db,
            subject,
            range.granularity,
            range.from.timestamp(),
            range.to.timestamp(),
        )
        .await?;
        Ok(Series::dense(range, sparse))
    }

    async fn per_key(
        &self,
        subject: &Subject,
        range: Range,
    ) -> Result<HashMap<String, BTreeMap<Code, u64>>, ServiceError> {
        Ok(store::per_key(
            &self.db,
            subject,
            range.granularity,
            range.from.timestamp(),
            range.to.timestamp(),
        )
        .await?)
    }

    async fn subject(&self, actor: &Actor, filter: &Filter) -> Result<Subject, ServiceError> {
        let owner_id = match &filter.owner_id {
            Some(o) if !actor.is_admin && *o != actor.user_id => {
                let refused =
                    ServiceError::Forbidden("only admins can read another user's usage".into());
                return Err(
                    crate::service::deny(&self.db, actor, "usage.read", Some(o), refused).await,
                );
            }
            Some(o) => Some(o.clone()),
            None if actor.is_admin => None,
            None => Some(actor.user_id.clone()),
        };
        let api_id = match &filter.api {
            None => None,
            Some(slug) => Some(
                self.keys
                    .catalog()
                    .api_by_slug(slug)
                    .await?
                    .ok_or_else(|| ServiceError::invalid("api", "no API has this slug"))?
                    .id,
            ),
        };
        Ok(Subject {
            key_id: None,
            owner_id,
            api_id,
            key_range: None,
        })
    }

    /// Verifications of every key the actor may read (admins: the whole platform), narrowed by
    /// `filter`.
    pub async fn series(
        &self,
        actor: &Actor,
        filter: &Filter,
        range: Range,
    ) -> Result<Series, ServiceError> {
        let subject = self.subject(actor, filter).await?;
        self.read(&subject, range).await
    }

    async fn describe(
        &self,
        counts: HashMap<String, BTreeMap<Code, u64>>,
        extra_keys: Vec<api_key::Model>,
    ) -> Result<Vec<KeyUsage>, ServiceError> {
        let mut rows: HashMap<String, api_key::Model> =
            extra_keys.into_iter().map(|k| (k.id.clone(), k)).collect();
        let missing: Vec<String> = counts
            .keys()
            .filter(|k| !rows.contains_key(*k))
            .cloned()
            .collect();
        store::key_rows(&self.db, &missing, &mut rows).await?;
        let owners: HashSet<String> = rows.values().map(|k| k.owner_id.clone()).collect();
        let mut emails: HashMap<String, String> = HashMap::new();
        for chunk in owners.into_iter().collect::<Vec<_>>().chunks(500) {
            for u in user::Entity::find()
                .filter(user::Column::Id.is_in(chunk.to_vec()))
                .all(self.db.conn())
                .await?
            {
                emails.insert(u.id, u.email);
            }
        }
        let slugs: HashMap<String, String> = api::Entity::find()
            .all(self.db.conn())
            .await?
            .into_iter()
            .map(|a| (a.id, a.slug))
            .collect();
        let mut out: Vec<KeyUsage> = rows
            .into_values()
            .map(|k| {
                let c = counts.get(&k.id);
                KeyUsage {
                    total: c.map(|c| c.values().sum()).unwrap_or(0),
                    denied: c.map(denied).unwrap_or(0),
                    owner_email: emails.get(&k.owner_id).cloned().unwrap_or_default(),
                    api: slugs.get(&k.api_id).cloned().unwrap_or_default(),
                    key_id: k.id,
                    name: k.name,
                    start: k.start,
                    owner_id: k.owner_id,
                    last_used_at: k.last_used_at,
                    revoked: k.revoked_at.is_some(),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| b.last_used_at.cmp(&a.last_used_at))
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(out)
    }

    /// Each of the actor's keys (unrevoked, or used in the range) with its use in the range,
    /// busiest first.
    pub async fn own_keys(
        &self,
        actor: &Actor,
        range: Range,
    ) -> Result<Vec<KeyUsage>, ServiceError> {
        let subject = Subject {
            owner_id: Some(actor.user_id.clone()),
            ..Default::default()
        };
        let counts = self.per_key(&subject, range).await?;
        let live = api_key::Entity::find()
            .filter(api_key::Column::OwnerId.eq(actor.user_id.as_str()))
            .filter(api_key::Column::RevokedAt.is_null())
            .all(self.db.conn())
            .await?;
        self.describe(counts, live).await
    }

    /// The platform dashboard (admins only).
    pub async fn overview(&self, actor: &Actor, range: Range) -> Result<Overview, ServiceError> {
        if !actor.is_admin {
            let refused = ServiceError::Forbidden("the platform dashboard is for admins".into());
            return Err(
                crate::service::deny(&self.db, actor, "usage.overview", None, refused).await,
            );
        }
        let subject = Subject::default();
        let series = self.read(&subject, range).await?;
        let counts = self.per_key(&subject, range).await?;
        let keys = self.describe(counts, Vec::new()).await?;
        let mut developers: HashMap<String, Ranked> = HashMap::new();
        let mut apis: HashMap<String, Ranked> = HashMap::new();
        for k in &keys {
            let d = developers
                .entry(k.owner_id.clone())
                .or_insert_with(|| Ranked {
                    id: k.owner_id.clone(),
                    label: k.owner_email.clone(),
                    total: 0,
                    denied: 0,
                });
            d.total += k.total;
            d.denied += k.denied;
            let a = apis.entry(k.api.clone()).or_insert_with(|| Ranked {
                id: k.api.clone(),
                label: k.api.clone(),
                total: 0,
                denied: 0,
            });
            a.total += k.total;
            a.denied += k.denied;
        }
        let rank = |m: HashMap<String, Ranked>| {
            let mut v: Vec<Ranked> = m.into_values().collect();
            v.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.label.cmp(&b.label)));
            v
        };
        let active_developers = developers.len() as u64;
        let new_signups = user::Entity::find()
            .filter(user::Column::CreatedAt.gte(range.from))
            .filter(user::Column::CreatedAt.lt(range.to))
            .count(self.db.conn())
            .await?;
        Ok(Overview {
            series,
            active_keys: keys.len() as u64,
            active_developers,
            new_signups,
            top_keys: keys.into_iter().take(10).collect(),
            top_developers: rank(developers).into_iter().take(10).collect(),
            apis: rank(apis),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_ending_just_after_a_minute_starts_includes_that_minute() {
        let from = Utc.with_ymd_and_hms(2026, 12, 7, 11, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap()
            + chrono::Duration::milliseconds(400);
        let r = Range::new(from, to, Some(Granularity::Minute)).unwrap();
        assert_eq!(r.to, Utc.with_ymd_and_hms(2026, 12, 7, 12, 1, 0).unwrap());
        // Exactly on the minute, the minute that starts there is not in the range.
        let r = Range::new(
            from,
            to - chrono::Duration::milliseconds(400),
            Some(Granularity::Minute),
        )
        .unwrap();
        assert_eq!(r.to, Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap());
    }

    #[test]
    fn ranges_align_to_their_granularity_and_refuse_nonsense() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let r = Range::parse(
            Some("2026-11-01T10:17:00Z"),
            Some("2026-11-01T12:01:00Z"),
            None,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(r.granularity, Granularity::Minute);
        assert_eq!(r.from, t("2026-11-01T10:17:00Z"));
        assert_eq!(r.len(), 104);
        let r = Range::parse(
            Some("2026-11-01T10:17:00Z"),
            Some("2026-11-02T12:01:00Z"),
            Some("hour"),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(r.from, t("2026-11-01T10:00:00Z"));
        assert_eq!(r.to, t("2026-11-02T13:00:00Z"));
        assert!(Range::parse(Some("yesterday"), None, None, Utc::now()).is_err());
        assert!(
            Range::parse(
                Some("2026-11-02T00:00:00Z"),
                Some("2026-11-01T00:00:00Z"),
                None,
                Utc::now()
            )
            .is_err()
        );
        assert!(
            Range::parse(
                Some("2026-01-01T00:00:00Z"),
                Some("2026-11-01T00:00:00Z"),
                Some("minute"),
                Utc::now()
            )
            .is_err()
        );
        assert!(Range::parse(None, None, Some("week"), Utc::now()).is_err());
        let now = t("2026-11-28T09:17:30Z");
        let r = Range::last(DAY, now);
        assert_eq!(r.granularity, Granularity::Hour);
        assert_eq!(r.to, t("2026-11-28T10:00:00Z"));
        assert_eq!(r.len(), 24);
    }
}
