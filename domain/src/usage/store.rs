//! The rollup table `usage_buckets`: writing counted minutes, compacting minutes into hours and
//! hours into days, pruning, and reading a series back at any granularity.
//!
//! Two watermarks (settings `usage.rolled_up.hour` and `usage.rolled_up.day`, Unix seconds) say
//! how far compaction got: every minute bucket before the hour watermark is already counted in an
//! hour bucket, and every hour before the day watermark in a day bucket. A query at a granularity
//! reads each stretch of time from exactly one width (for hours: hour buckets before the hour
//! watermark, minute buckets after it), so no verification is counted twice or missed, whatever
//! compaction and pruning did. A minute counted late (after its hour was compacted) is also added
//! to its hour (and day) bucket, for the same reason.
use std::collections::{BTreeMap, HashMap};

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement, Value, sea_query::Values};

use crate::{Database, DomainError, verification::outcome::Code};

pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

const HOUR_MARK: &str = "usage.rolled_up.hour";
const DAY_MARK: &str = "usage.rolled_up.day";
/// Minutes are compacted this long after their hour ends, so counts still in memory (flushed
/// every few seconds) normally arrive first.
const GRACE: i64 = 2 * MINUTE;
/// Rows per INSERT statement (SQLite: bound values; PostgreSQL: one JSON parameter).
const CHUNK: usize = 400;
const PG_CHUNK: usize = 5_000;
/// A PostgreSQL advisory lock serialising writers of buckets and compaction across processes.
const PG_LOCK: i64 = 0x6b70_7573_6167;

/// The size of a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    Minute,
    Hour,
    Day,
}

impl Granularity {
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];
    /// Seconds.
    pub fn width(self) -> i64 {
        match self {
            Granularity::Minute => MINUTE,
            Granularity::Hour => HOUR,
            Granularity::Day => DAY,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }
    pub fn parse(s: &str) -> Option<Granularity> {
        Granularity::ALL.into_iter().find(|g| g.as_str() == s)
    }
    /// The coarsest granularity that still draws a useful chart of `seconds`: minutes up to
    /// 3 hours, hours up to 8 days, days beyond.
    pub fn for_range(seconds: i64) -> Granularity {
        if seconds <= 3 * HOUR {
            Granularity::Minute
        } else if seconds <= 8 * DAY {
            Granularity::Hour
        } else {
            Granularity::Day
        }
    }
}

/// How long each granularity is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub minutes: i64,
    pub hours: i64,
    pub days: i64,
}

impl Default for Retention {
    /// 48 hours of minutes, 90 days of hours, 2 years of days.
    fn default() -> Self {
        Retention {
            minutes: 48 * HOUR,
            hours: 90 * DAY,
            days: 730 * DAY,
        }
    }
}

/// What a compaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    pub hour_mark: i64,
    pub day_mark: i64,
    pub pruned: u64,
}

/// One counted minute: key id, minute start (Unix seconds), outcome, count.
pub type MinuteCount<'a> = (&'a str, i64, Code, u64);

fn floor(t: i64, width: i64) -> i64 {
    t - t.rem_euclid(width)
}

async fn lock<C: ConnectionTrait>(txn: &C) -> Result<(), DbErr> {
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({PG_LOCK})"))
            .await?;
    }
    Ok(())
}

async fn marks<C: ConnectionTrait>(txn: &C) -> Result<(i64, i64), DbErr> {
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            sql(
                txn.get_database_backend(),
                "SELECT \"key\" AS k, \"value\" AS v FROM settings WHERE \"key\" IN (?, ?)",
            ),
            [HOUR_MARK.into(), DAY_MARK.into()],
        ))
        .await?;
    let (mut hour, mut day) = (0, 0);
    for row in rows {
        let key: String = row.try_get("", "k")?;
        let value: String = row.try_get("", "v")?;
        let v = value.parse().unwrap_or(0);
        if key == HOUR_MARK {
            hour = v;
        } else {
            day = v;
        }
    }
    Ok((hour, day))
}

async fn set_mark<C: ConnectionTrait>(txn: &C, key: &str, value: i64) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    let now = chrono::Utc::now();
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql(
            backend,
            "INSERT INTO settings (\"key\", \"value\", updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (\"key\") DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        ),
        [key.into(), value.to_string().into(), now.into()],
    ))
    .await?;
    Ok(())
}

/// `?` placeholders as the backend wants them (`$1`, `$2`, ... on PostgreSQL).
pub(super) fn sql(backend: DatabaseBackend, q: &str) -> String {
    if backend != DatabaseBackend::Postgres {
        return q.to_owned();
    }
    let mut out = String::with_capacity(q.len() + 16);
    let mut n = 0;
    for c in q.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Adds counted minutes to the buckets, inside the caller's transaction.
pub(crate) async fn add_minutes<C: ConnectionTrait>(
    txn: &C,
    counts: &[MinuteCount<'_>],
) -> Result<(), DbErr> {
    if counts.is_empty() {
        return Ok(());
    }
    lock(txn).await?;
    let (hour_mark, day_mark) = marks(txn).await?;
    // Late minutes (their hour already compacted) also go to their hour, and their day.
    let mut late: HashMap<(&str, i32, i64, Code), u64> = HashMap::new();
    for &(key, minute, code, n) in counts {
        if minute < hour_mark {
            let hour = floor(minute, HOUR);
            *late.entry((key, HOUR as i32, hour, code)).or_default() += n;
            if hour < day_mark {
                *late
                    .entry((key, DAY as i32, floor(minute, DAY), code))
                    .or_default() += n;
            }
        }
    }
    let rows = counts
        .iter()
        .map(|&(key, minute, code, n)| (key, MINUTE as i32, minute, code, n))
        .chain(
            late.into_iter()
                .map(|((key, width, start, code), n)| (key, width, start, code, n)),
        );
    upsert(txn, rows).await
}

async fn upsert<'a, C: ConnectionTrait>(
    txn: &C,
    rows: impl Iterator<Item = (&'a str, i32, i64, Code, u64)>,
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    if backend == DatabaseBackend::Postgres {
        return upsert_postgres(txn, rows).await;
    }
    let mut batch: Vec<Value> = Vec::with_capacity(CHUNK * 5);
    let mut n = 0;
    let mut statements: HashMap<usize, String> = HashMap::new();
    let mut flush = async |batch: &mut Vec<Value>, n: usize| -> Result<(), DbErr> {
        let q = statements
            .entry(n)
            .or_insert_with(|| insert_sql(backend, n))
            .clone();
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            q,
            Values(std::mem::take(batch)),
        ))
        .await?;
        Ok(())
    };
    for (key, width, start, code, count) in rows {
        batch.extend([
            Value::from(key),
            Value::from(width),
            Value::from(start),
            Value::from(code.as_str()),
            Value::from(count as i64),
        ]);
        n += 1;
        if n == CHUNK {
            flush(&mut batch, n).await?;
            n = 0;
        }
    }
    if n > 0 {
        flush(&mut batch, n).await?;
    }
    Ok(())
}

/// [`upsert`] on PostgreSQL: the rows travel as one JSON parameter per [`PG_CHUNK`] rows,
/// expanded by `jsonb_to_recordset`. A statement of 400 rows of five bound values each costs
/// PostgreSQL ~115 us a row under load (25,000 rows of a minute's close took 2.9 s); the same
/// rows as JSON take a tenth of that, and the statement's text never changes.
async fn upsert_postgres<'a, C: ConnectionTrait>(
    txn: &C,
    rows: impl Iterator<Item = (&'a str, i32, i64, Code, u64)>,
) -> Result<(), DbErr> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        k: &'a str,
        w: i32,
        s: i64,
        c: &'static str,
        n: u64,
    }
    const Q: &str = "INSERT INTO usage_buckets (key_id, width, start, code, count) \
        SELECT k, w, s, c, n FROM jsonb_to_recordset($1::jsonb) \
        AS t(k varchar, w integer, s bigint, c varchar, n bigint) \
        ON CONFLICT (key_id, width, start, code) DO UPDATE SET count = usage_buckets.count + excluded.count";
    // Serialised before the first await: nothing borrowed from the caller's iterator is held
    // across one.
    let mut chunks = Vec::new();
    let mut batch: Vec<Row<'_>> = Vec::with_capacity(PG_CHUNK);
    for (k, w, s, c, n) in rows {
        batch.push(Row {
            k,
            w,
            s,
            c: c.as_str(),
            n,
        });
        if batch.len() == PG_CHUNK {
            chunks.push(serde_json::to_string(&batch).map_err(|e| DbErr::Custom(e.to_string()))?);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        chunks.push(serde_json::to_string(&batch).map_err(|e| DbErr::Custom(e.to_string()))?);
    }
    drop(batch);
    for json in chunks {
        txn.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            Q,
            [Value::from(json)],
        ))
        .await?;
    }
    Ok(())
}

fn insert_sql(backend: DatabaseBackend, rows: usize) -> String {
    let mut q =
        String::from("INSERT INTO usage_buckets (key_id, width, start, code, count) VALUES ");
    for i in 0..rows {
        if i > 0 {
            q.push(',');
        }
        q.push_str("(?,?,?,?,?)");
    }
    q.push_str(
        " ON CONFLICT (key_id, width, start, code) DO UPDATE SET count = usage_buckets.count + excluded.count",
    );
    sql(backend, &q)
}

/// Rolls closed hours of minutes into hour buckets and closed days of hours into day buckets,
/// then deletes what is past its retention (only what is already counted at a coarser width).
pub(crate) async fn compact(
    db: &Database,
    now: i64,
    retention: &Retention,
) -> Result<Compacted, DomainError> {
    let txn = db.begin_write().await?;
    lock(&txn).await?;
    let backend = txn.get_database_backend();
    let (mut hour_mark, mut day_mark) = marks(&txn).await?;
    let new_hour = floor(now - GRACE, HOUR);
    if new_hour > hour_mark {
        roll_up(&txn, MINUTE, HOUR, hour_mark, new_hour).await?;
        hour_mark = new_hour;
        set_mark(&txn, HOUR_MARK, hour_mark).await?;
    }
    let new_day = floor(hour_mark, DAY);
    if new_day > day_mark {
        roll_up(&txn, HOUR, DAY, day_mark, new_day).await?;
        day_mark = new_day;
        set_mark(&txn, DAY_MARK, day_mark).await?;
    }
    let mut pruned = 0;
    for (width, before) in [
        (MINUTE, Ord::min(hour_mark, now - retention.minutes)),
        (HOUR, Ord::min(day_mark, now - retention.hours)),
        (DAY, now - retention.days),
    ] {
        pruned += txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql(
                    backend,
                    "DELETE FROM usage_buckets WHERE width = ? AND start < ?",
                ),
                [(width as i32).into(), before.into()],
            ))
            .await?
            .rows_affected();
    }
    txn.commit().await?;
    Ok(Compacted {
        hour_mark,
        day_mark,
        pruned,
    })
}

async fn roll_up<C: ConnectionTrait>(
    txn: &C,
    from_width: i64,
    to_width: i64,
    from: i64,
    to: i64,
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql(
            backend,
            &format!(
                "INSERT INTO usage_buckets (key_id, width, start, code, count) \
                 SELECT key_id, {to_width}, (start / {to_width}) * {to_width}, code, SUM(count) \
                 FROM usage_buckets WHERE width = ? AND start >= ? AND start < ? \
                 GROUP BY key_id, (start / {to_width}) * {to_width}, code \
                 ON CONFLICT (key_id, width, start, code) DO UPDATE SET count = usage_buckets.count + excluded.count"
            ),
        ),
        [(from_width as i32).into(), from.into(), to.into()],
    ))
    .await?;
    Ok(())
}

/// Whose verifications a query counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    pub key_id: Option<String>,
    pub owner_id: Option<String>,
    pub api_id: Option<String>,
    /// Only the keys whose ids sort from the first to the last of these (both included).
    pub key_range: Option<(String, String)>,
}

/// The buckets of `[from, to)` at `granularity`, aligned to it; the SQL condition choosing,
/// for each stretch of time, the one width that counts it.
fn cover(granularity: Granularity, hour_mark: i64, day_mark: i64) -> String {
    match granularity {
        Granularity::Minute => format!("b.width = {MINUTE}"),
        Granularity::Hour => format!(
            "((b.width = {MINUTE} AND b.start >= {hour_mark}) OR (b.width = {HOUR} AND b.start < {hour_mark}))"
        ),
        Granularity::Day => format!(
            "((b.width = {MINUTE} AND b.start >= {hour_mark}) \
              OR (b.width = {HOUR} AND b.start >= {day_mark} AND b.start < {hour_mark}) \
              OR (b.width = {DAY} AND b.start < {day_mark}))"
        ),
    }
}

/// Bucket starts a listed cover names at most; a longer list (compaction far behind) falls back
/// to [`cover`] and a range.
const LISTED_STARTS: usize = 2_000;

/// [`cover`] for `[from, to)` naming every bucket start (`b.start IN (...)`), so a query on a
/// range of keys seeks each bucket's run of those keys in the primary key (width, start, key_id)
/// instead of reading every key's rows of the period: work in proportion to the keys asked
/// about, not to all keys used. `None` when the list would be longer than [`LISTED_STARTS`].
fn listed_cover(
    granularity: Granularity,
    hour_mark: i64,
    day_mark: i64,
    (from, to): (i64, i64),
) -> Option<String> {
    // (width, the stretch of [from, to) it counts), as in `cover`.
    let stretches: Vec<(i64, i64, i64)> = match granularity {
        Granularity::Minute => vec![(MINUTE, from, to)],
        Granularity::Hour => vec![(HOUR, from, hour_mark), (MINUTE, hour_mark, to)],
        Granularity::Day => vec![
            (DAY, from, day_mark),
            (HOUR, day_mark, hour_mark),
            (MINUTE, hour_mark, to),
        ],
    };
    let mut arms = Vec::new();
    let mut listed = 0;
    for (width, a, b) in stretches {
        let (a, b) = (Ord::max(a, from), Ord::min(b, to));
        let first = floor(a, width) + if a.rem_euclid(width) == 0 { 0 } else { width };
        let starts: Vec<String> = (0..)
            .map(|i| first + i * width)
            .take_while(|s| *s < b)
            .take(LISTED_STARTS + 1 - listed)
            .map(|s| s.to_string())
            .collect();
        listed += starts.len();
        if listed > LISTED_STARTS {
            return None;
        }
        if !starts.is_empty() {
            arms.push(format!(
                "(b.width = {width} AND b.start IN ({}))",
                starts.join(", ")
            ));
        }
    }
    Some(if arms.is_empty() {
        "1 = 0".to_owned()
    } else {
        format!("({})", arms.join(" OR "))
    })
}

fn subject_sql(subject: &Subject, values: &mut Vec<Value>) -> (String, String) {
    let mut join = String::new();
    let mut cond = String::new();
    if let Some(k) = &subject.key_id {
        cond.push_str(" AND b.key_id = ?");
        values.push(k.as_str().into());
    }
    if let Some((first, last)) = &subject.key_range {
        cond.push_str(" AND b.key_id >= ? AND b.key_id <= ?");
        values.push(first.as_str().into());
        values.push(last.as_str().into());
    }
    if subject.owner_id.is_some() || subject.api_id.is_some() {
        join.push_str(" JOIN api_keys k ON k.id = b.key_id");
    }
    if let Some(o) = &subject.owner_id {
        cond.push_str(" AND k.owner_id = ?");
        values.push(o.as_str().into());
    }
    if let Some(a) = &subject.api_id {
        cond.push_str(" AND k.api_id = ?");
        values.push(a.as_str().into());
    }
    (join, cond)
}

/// Sums counts over `[from, to)` read at `granularity`, grouped by `group` (SQL expressions,
/// each selected under the alias that follows it): the one query behind every chart and table.
async fn grouped(
    db: &Database,
    subject: &Subject,
    granularity: Granularity,
    (from, to): (i64, i64),
    group: &[(&str, &str)],
) -> Result<Vec<sea_orm::QueryResult>, DomainError> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let (hour_mark, day_mark) = marks(conn).await?;
    let mut values = Vec::new();
    let (join, cond) = subject_sql(subject, &mut values);
    // A range of keys (the alerts job, a page at a time): every bucket named, so the query
    // reads those keys' rows only. A range condition beside the list would have the planner
    // scan the whole period instead.
    let listed = subject
        .key_range
        .as_ref()
        .and_then(|_| listed_cover(granularity, hour_mark, day_mark, (from, to)));
    let (which, range) = match listed {
        Some(listed) => (listed, ""),
        None => (
            cover(granularity, hour_mark, day_mark),
            " AND b.start >= ? AND b.start < ?",
        ),
    };
    if !range.is_empty() {
        values.push(from.into());
        values.push(to.into());
    }
    let select: Vec<String> = group.iter().map(|(e, a)| format!("{e} AS {a}")).collect();
    let by: Vec<&str> = group.iter().map(|(e, _)| *e).collect();
    let q = format!(
        "SELECT {}, CAST(SUM(b.count) AS BIGINT) AS n \
         FROM usage_buckets b{join} WHERE {which}{cond}{range} \
         GROUP BY {}",
        select.join(", "),
        by.join(", ")
    );
    Ok(conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql(backend, &q),
            values,
        ))
        .await?)
}

fn count(row: &sea_orm::QueryResult) -> Result<u64, DomainError> {
    Ok(row.try_get::<i64>("", "n")?.max(0) as u64)
}

/// Counts per outcome in each bucket of `[from, to)` (bucket starts as Unix seconds). Only
/// buckets with verifications are present.
pub(crate) async fn series(
    db: &Database,
    subject: &Subject,
    granularity: Granularity,
    from: i64,
    to: i64,
) -> Result<BTreeMap<i64, BTreeMap<Code, u64>>, DomainError> {
    let w = granularity.width();
    let bucket = format!("(b.start / {w}) * {w}");
    let rows = grouped(
        db,
        subject,
        granularity,
        (from, to),
        &[(&bucket, "bucket"), ("b.code", "code")],
    )
    .await?;
    let mut out: BTreeMap<i64, BTreeMap<Code, u64>> = BTreeMap::new();
    for row in rows {
        let code: String = row.try_get("", "code")?;
        if let Some(code) = Code::parse(&code) {
            *out.entry(row.try_get("", "bucket")?)
                .or_default()
                .entry(code)
                .or_default() += count(&row)?;
        }
    }
    Ok(out)
}

/// Counts per key and outcome over `[from, to)`, read at `granularity` (`from`/`to` aligned to it).
pub(crate) async fn per_key(
    db: &Database,
    subject: &Subject,
    granularity: Granularity,
    from: i64,
    to: i64,
) -> Result<HashMap<String, BTreeMap<Code, u64>>, DomainError> {
    let rows = grouped(
        db,
        subject,
        granularity,
        (from, to),
        &[("b.key_id", "key_id"), ("b.code", "code")],
    )
    .await?;
    let mut out: HashMap<String, BTreeMap<Code, u64>> = HashMap::new();
    for row in rows {
        let code: String = row.try_get("", "code")?;
        if let Some(code) = Code::parse(&code) {
            *out.entry(row.try_get("", "key_id")?)
                .or_default()
                .entry(code)
                .or_default() += count(&row)?;
        }
    }
    Ok(out)
}

/// Adds to `into` the rows of the keys with these ids (500 to a query).
pub(crate) async fn key_rows(
    db: &Database,
    ids: &[String],
    into: &mut HashMap<String, crate::entities::api_key::Model>,
) -> Result<(), DomainError> {
    use crate::entities::api_key;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    for chunk in ids.chunks(500) {
        for k in api_key::Entity::find()
            .filter(api_key::Column::Id.is_in(chunk.to_vec()))
            .all(db.conn())
            .await?
        {
            into.insert(k.id.clone(), k);
        }
    }
    Ok(())
}

/// The ids of up to `limit` keys after `after`, in id order: one page of all keys (used or not),
/// read from the primary key of `api_keys`, for work that goes through the keys a page at a
/// time. (Asking the buckets for the keys used in a period would read every row of the period
/// for each page.)
pub(crate) async fn key_ids_after(
    db: &Database,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<String>, DomainError> {
    use crate::entities::api_key;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut q = api_key::Entity::find()
        .select_only()
        .column(api_key::Column::Id)
        .order_by_asc(api_key::Column::Id)
        .limit(limit);
    if let Some(after) = after {
        q = q.filter(api_key::Column::Id.gt(after));
    }
    Ok(q.into_tuple::<String>().all(db.conn()).await?)
}

/// Totals per key and bucket over `[from, to)` at `granularity`.
pub(crate) async fn per_key_buckets(
    db: &Database,
    subject: &Subject,
    granularity: Granularity,
    from: i64,
    to: i64,
) -> Result<HashMap<String, BTreeMap<i64, u64>>, DomainError> {
    let w = granularity.width();
    let bucket = format!("(b.start / {w}) * {w}");
    let rows = grouped(
        db,
        subject,
        granularity,
        (from, to),
        &[("b.key_id", "key_id"), (&bucket, "bucket")],
    )
    .await?;
    let mut out: HashMap<String, BTreeMap<i64, u64>> = HashMap::new();
    for row in rows {
        *out.entry(row.try_get("", "key_id")?)
            .or_default()
            .entry(row.try_get("", "bucket")?)
            .or_default() += count(&row)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        assert_eq!(
            sql(DatabaseBackend::Sqlite, "a = ? AND b = ?"),
            "a = ? AND b = ?"
        );
        assert_eq!(
            sql(DatabaseBackend::Postgres, "a = ? AND b = ?"),
            "a = $1 AND b = $2"
        );
    }

    #[test]
    fn the_chart_granularity_fits_the_range() {
        assert_eq!(Granularity::for_range(HOUR), Granularity::Minute);
        assert_eq!(Granularity::for_range(DAY), Granularity::Hour);
        assert_eq!(Granularity::for_range(7 * DAY), Granularity::Hour);
        assert_eq!(Granularity::for_range(30 * DAY), Granularity::Day);
        assert_eq!(floor(-1, 60), -60);
        assert_eq!(floor(3_661, HOUR), 3_600);
    }

    /// A range of keys is read with every bucket named (the alerts job): it must count exactly
    /// what the range condition counts, at every granularity, across the compaction marks.
    #[tokio::test]
    async fn listed_buckets_count_what_the_range_counts() {
        let db = Database::connect_and_migrate("sqlite::memory:")
            .await
            .unwrap();
        let now = 40 * DAY + 7 * HOUR + 23 * MINUTE;
        let keys = ["key_a", "key_b", "key_c", "key_d"];
        // Every 7 minutes over the last 33 days, a count on one key, then compacted so the
        // period holds day, hour and minute rows.
        let mut counts = Vec::new();
        let mut t = now - 33 * DAY;
        let mut i = 0;
        while t < now {
            let minute = floor(t, MINUTE);
            counts.push((keys[i % 4], minute, Code::Valid, 1 + (i % 5) as u64));
            if i % 3 == 0 {
                counts.push((keys[(i + 1) % 4], minute, Code::RateLimited, 2));
            }
            t += 7 * MINUTE;
            i += 1;
        }
        let txn = db.begin_write().await.unwrap();
        add_minutes(&txn, &counts).await.unwrap();
        txn.commit().await.unwrap();
        let retention = Retention::default();
        let marks = compact(&db, now, &retention).await.unwrap();
        assert!(marks.hour_mark > now - 2 * HOUR && marks.day_mark > now - 2 * DAY);
        let range = Subject {
            key_range: Some(("key_b".into(), "key_c".into())),
            ..Subject::default()
        };
        for (granularity, from, to) in [
            (
                Granularity::Minute,
                floor(now, MINUTE) - HOUR,
                floor(now, MINUTE),
            ),
            (
                Granularity::Hour,
                floor(now, HOUR) - 30 * HOUR,
                floor(now, HOUR),
            ),
            (
                Granularity::Hour,
                floor(now, HOUR) - 2 * HOUR,
                floor(now, HOUR) + HOUR,
            ),
            (
                Granularity::Day,
                floor(now, DAY) - 31 * DAY,
                floor(now, DAY),
            ),
            (
                Granularity::Day,
                floor(now, DAY) - 3 * DAY,
                floor(now, DAY) + DAY,
            ),
        ] {
            let listed = per_key(&db, &range, granularity, from, to).await.unwrap();
            // The same period read with the range condition, each key on its own.
            for key in ["key_a", "key_b", "key_c", "key_d"] {
                let one = Subject {
                    key_id: Some(key.into()),
                    ..Subject::default()
                };
                let ranged = per_key(&db, &one, granularity, from, to).await.unwrap();
                let want = if key == "key_b" || key == "key_c" {
                    ranged.get(key).cloned()
                } else {
                    None
                };
                assert_eq!(
                    listed.get(key).cloned(),
                    want,
                    "{key}, {granularity:?} from {from} to {to}"
                );
            }
            assert!(!listed.is_empty(), "{granularity:?} from {from} to {to}");
        }
        // Far more buckets than are listed: the range condition, same answer.
        let (from, to) = (floor(now, MINUTE) - 3 * DAY, floor(now, MINUTE));
        assert!(
            listed_cover(
                Granularity::Minute,
                marks.hour_mark,
                marks.day_mark,
                (from, to)
            )
            .is_none()
        );
        let listed = per_key(&db, &range, Granularity::Minute, from, to)
            .await
            .unwrap();
        assert!(listed.contains_key("key_b") && !listed.contains_key("key_a"));
    }
}
