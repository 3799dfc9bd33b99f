//! Usage rollups against a real database: the counts at every granularity equal the
//! verifications that produced them, across flushes, compactions (minute -> hour -> day), late
//! minutes, pruning and callers in any time zone (buckets are UTC; display is local).
use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use domain::{
    Database,
    accounts::Accounts,
    audit::RequestContext,
    catalog::PlanInput,
    keys::{Keys, NewKey},
    secret_key::SecretKey,
    service::Actor,
    testing::TestDb,
    usage::{DAY, Filter, Granularity, HOUR, MINUTE, Range, Retention, Usage},
    verification::{Code, Request, Verifier},
};
use proptest::prelude::*;

struct World {
    verifier: Verifier,
    usage: Usage,
    admin: Actor,
    /// (id, plaintext)
    keys: Vec<(String, String)>,
}

async fn world(db: &Database, n: usize) -> World {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    let admin = accounts
        .create_admin("root@example.com", "glacier lantern pepper")
        .await
        .unwrap();
    let admin = Actor::new(admin.id, true, RequestContext::default());
    let verifier = Verifier::new(
        db.clone(),
        domain::usage::recorder::Recorder::new(db.clone()),
    );
    let keys = Keys::new(db.clone()).with_changes(std::sync::Arc::new(verifier.clone()));
    // No rate limit or quota: every verification below counts as asked.
    let plan = keys
        .catalog()
        .create_plan(
            &admin,
            PlanInput {
                name: "Unlimited".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    keys.catalog()
        .set_default_plan(&admin, &plan.id)
        .await
        .unwrap();
    let mut made = Vec::new();
    for i in 0..n {
        let c = keys
            .create(
                &admin,
                NewKey {
                    name: format!("key {i}"),
                    api: "keyport".into(),
                    scopes: vec!["keys:read".into()],
                    ip_allowlist: vec!["203.0.113.0/24".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        made.push((c.key.id.clone(), c.plaintext.expose().to_owned()));
    }
    verifier.load().await.unwrap();
    World {
        usage: Usage::new(db.clone(), keys),
        verifier,
        admin,
        keys: made,
    }
}

/// One verification of key `key` at `at` with the outcome `code`.
async fn verify(w: &World, key: usize, code: Code, at: DateTime<Utc>) {
    verify_with(&w.verifier, &w.keys, key, code, at).await
}

async fn verify_with(
    verifier: &Verifier,
    keys: &[(String, String)],
    key: usize,
    code: Code,
    at: DateTime<Utc>,
) {
    let write = ["keys:write".to_owned()];
    let ip = "203.0.113.9".parse().unwrap();
    let outside = "198.51.100.1".parse().unwrap();
    let req = Request {
        key: &keys[key].1,
        scopes: if code == Code::InsufficientScope {
            &write
        } else {
            &[]
        },
        ip: Some(if code == Code::IpNotAllowed {
            outside
        } else {
            ip
        }),
        cost: 1,
        ..Default::default()
    };
    let got = verifier.verify(&req, at).await;
    assert_eq!(got.code, code);
}

const CODES: [Code; 3] = [Code::Valid, Code::InsufficientScope, Code::IpNotAllowed];

#[derive(Clone, Debug)]
enum Step {
    /// Verify key `key` with outcome `code` at `minutes` after the start.
    Verify {
        minutes: i64,
        key: usize,
        code: usize,
    },
    Flush,
    /// Compact as if the clock read `minutes` after the start.
    Compact {
        minutes: i64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0i64..5 * 24 * 60, 0usize..2, 0usize..3).prop_map(|(minutes, key, code)| Step::Verify { minutes, key, code }),
        1 => Just(Step::Flush),
        2 => (0i64..5 * 24 * 60).prop_map(|minutes| Step::Compact { minutes }),
    ]
}

/// Runs the steps, then checks every granularity against the verifications made, asking for
/// ranges written in the reader's time zone (`zone_minutes` east of UTC).
async fn check(db: &Database, steps: Vec<Step>, zone_minutes: i32) {
    let zone = FixedOffset::east_opt(zone_minutes * 60).unwrap();
    let w = world(db, 2).await;
    // Two hours before a month's end, so days and a month boundary are crossed.
    let start = Utc.with_ymd_and_hms(2026, 3, 30, 22, 0, 0).unwrap();
    let end = start + Duration::days(5);
    let retention = Retention {
        minutes: 12 * HOUR,
        hours: 2 * DAY,
        days: 365 * DAY,
    };
    let mut made: Vec<(usize, DateTime<Utc>, Code)> = Vec::new();
    let mut clock = start;
    for s in steps {
        match s {
            Step::Verify { minutes, key, code } => {
                let at = start + Duration::minutes(minutes) + Duration::seconds(17);
                verify(&w, key, CODES[code], at).await;
                made.push((key, at, CODES[code]));
            }
            Step::Flush => {
                w.verifier.flush().await.unwrap();
            }
            Step::Compact { minutes } => {
                clock = Ord::max(clock, start + Duration::minutes(minutes));
                w.verifier
                    .recorder()
                    .compact(&w.usage, clock, &retention)
                    .await
                    .unwrap();
            }
        }
    }
    w.verifier.flush().await.unwrap();
    w.verifier
        .recorder()
        .compact(&w.usage, end, &retention)
        .await
        .unwrap();

    for g in Granularity::ALL {
        // What is still kept at this granularity.
        let kept_from = match g {
            Granularity::Minute => end.timestamp() - retention.minutes,
            Granularity::Hour => end.timestamp() - retention.hours,
            Granularity::Day => start.timestamp() - DAY,
        };
        let width = g.width();
        let from = kept_from - kept_from.rem_euclid(width) + width;
        let from = Utc.timestamp_opt(from, 0).unwrap().with_timezone(&zone);
        let to = (end + Duration::seconds(width)).with_timezone(&zone);
        let range = Range::parse(
            Some(&from.to_rfc3339()),
            Some(&to.to_rfc3339()),
            Some(g.as_str()),
            end,
        )
        .unwrap();
        for (k, (id, _)) in w.keys.iter().enumerate() {
            let mut want: BTreeMap<i64, BTreeMap<Code, u64>> = BTreeMap::new();
            for (key, at, code) in &made {
                let t = at.timestamp();
                if *key == k && t >= range.from.timestamp() && t < range.to.timestamp() {
                    *want
                        .entry(t - t.rem_euclid(width))
                        .or_default()
                        .entry(*code)
                        .or_default() += 1;
                }
            }
            let series = w.usage.key_series(&w.admin, id, range).await.unwrap();
            let got: BTreeMap<i64, BTreeMap<Code, u64>> = series
                .buckets
                .iter()
                .filter(|b| b.total() > 0)
                .map(|b| (b.start.timestamp(), b.counts.clone()))
                .collect();
            assert_eq!(got, want, "key {k} at {g:?} granularity");
            // Buckets start on UTC boundaries of their width.
            assert!(
                series
                    .buckets
                    .iter()
                    .all(|b| b.start.timestamp() % width == 0)
            );
        }
        // All keys together (the admin's platform view) add up the same way.
        let all = w
            .usage
            .series(&w.admin, &Filter::default(), range)
            .await
            .unwrap();
        let expected = made
            .iter()
            .filter(|(_, at, _)| {
                at.timestamp() >= range.from.timestamp() && at.timestamp() < range.to.timestamp()
            })
            .count() as u64;
        assert_eq!(all.total(), expected, "platform total at {g:?}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn rollups_count_every_verification_once_at_every_granularity(steps in prop::collection::vec(step(), 1..120), zone_minutes in -720i32..840) {
        runtime().block_on(async {
            let t = TestDb::sqlite_memory().await;
            check(&t.db, steps, zone_minutes).await;
        });
    }
}

/// A fixed scenario touching every boundary, on both databases.
fn scenario() -> Vec<Step> {
    let mut steps = Vec::new();
    for day in 0..5i64 {
        for hour in [0i64, 1, 2, 13, 23] {
            let m = day * 24 * 60 + hour * 60;
            for (i, minute) in [0i64, 7, 59].into_iter().enumerate() {
                steps.push(Step::Verify {
                    minutes: m + minute,
                    key: (i + day as usize) % 2,
                    code: (hour as usize + i) % 3,
                });
            }
            if hour == 13 {
                steps.push(Step::Flush);
                steps.push(Step::Compact { minutes: m + 30 });
                // Late: counted for an hour already compacted.
                steps.push(Step::Verify {
                    minutes: m - 120,
                    key: 0,
                    code: 0,
                });
            }
        }
        steps.push(Step::Flush);
    }
    steps
}

#[tokio::test]
async fn rollups_add_up_on_sqlite() {
    let t = TestDb::sqlite_memory().await;
    check(&t.db, scenario(), 330).await;
}

#[tokio::test]
async fn rollups_add_up_on_postgres() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    check(&t.db, scenario(), -480).await;
    t.cleanup().await;
}

#[tokio::test]
async fn compaction_moves_minutes_to_hours_and_days_and_prunes_them() {
    let t = TestDb::sqlite_memory().await;
    let w = world(&t.db, 1).await;
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    for m in 0..180 {
        verify(&w, 0, Code::Valid, start + Duration::minutes(m)).await;
    }
    w.verifier.flush().await.unwrap();
    let count = |width: i64| {
        let db = t.db.clone();
        async move {
            use sea_orm::{ConnectionTrait, Statement};
            let row = db
                .conn()
                .query_one_raw(Statement::from_string(
                    db.conn().get_database_backend(),
                    format!("SELECT COUNT(*) AS n FROM usage_buckets WHERE width = {width}"),
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "n").unwrap()
        }
    };
    assert_eq!(count(MINUTE).await, 180);
    let later = start + Duration::days(3);
    let done = w
        .verifier
        .recorder()
        .compact(&w.usage, later, &Retention::default())
        .await
        .unwrap();
    assert_eq!(done.hour_mark, (later - Duration::hours(1)).timestamp());
    assert_eq!(
        done.day_mark,
        Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 0)
            .unwrap()
            .timestamp()
    );
    // Minutes older than 48 hours are gone; 3 hour buckets and 1 day bucket hold them.
    assert_eq!(count(MINUTE).await, 0);
    assert_eq!(count(HOUR).await, 3);
    assert_eq!(count(DAY).await, 1);
    assert_eq!(done.pruned, 180);
    let day = Range::new(start, start + Duration::days(1), Some(Granularity::Day)).unwrap();
    let s = w
        .usage
        .key_series(&w.admin, &w.keys[0].0, day)
        .await
        .unwrap();
    assert_eq!(s.total(), 180);
    let hours = Range::new(start, start + Duration::hours(4), Some(Granularity::Hour)).unwrap();
    let s = w
        .usage
        .key_series(&w.admin, &w.keys[0].0, hours)
        .await
        .unwrap();
    assert_eq!(
        s.buckets.iter().map(|b| b.total()).collect::<Vec<_>>(),
        [60, 60, 60, 0]
    );
    assert!(s.to_csv().starts_with("start,MALFORMED,"));
    assert!(
        s.to_csv()
            .contains("\n2026-11-01T01:00:00Z,0,0,0,0,0,0,0,0,0,0,60,60\n")
    );
}

/// A run of the alerts job looks at a bounded number of keys and the next goes on from there:
/// with more keys than one run takes, every key is still looked at within a sweep, and no run
/// looks at more than its share.
#[tokio::test]
async fn alerts_sweep_every_key_a_bounded_share_per_run() {
    use domain::{
        entities::api_key,
        usage::{add_minute_counts, alerts::Alerts},
    };
    use sea_orm::{EntityTrait, PaginatorTrait};

    let t = TestDb::sqlite_memory().await;
    let w = world(&t.db, 5).await;
    let all = api_key::Entity::find().count(t.db.conn()).await.unwrap() as usize;
    assert!(all >= 5);
    let now = Utc::now();
    let minute = now.timestamp() - now.timestamp().rem_euclid(60) - 10 * 60;
    // Every key: a burst of denials (one alert each).
    let counts: Vec<_> = w
        .keys
        .iter()
        .map(|(id, _)| (id.as_str(), minute, Code::IpNotAllowed, 60))
        .collect();
    add_minute_counts(&t.db, &counts).await.unwrap();
    // Two keys per run, one per page.
    let alerts = Alerts::with_limits(t.db.clone(), 1, 2);
    let mut per_run = Vec::new();
    for _ in 0..all.div_ceil(2) {
        per_run.push(alerts.run(now).await.unwrap());
    }
    assert!(per_run.iter().all(|n| *n <= 2), "{per_run:?}");
    assert_eq!(per_run.iter().sum::<usize>(), 5, "{per_run:?}");
    // The sweep starts over: each rule fired once per key, nothing again.
    for _ in 0..all {
        assert_eq!(alerts.run(now).await.unwrap(), 0);
    }
    t.cleanup().await;
}

#[tokio::test]
async fn alerts_fire_once_for_their_owner_and_can_be_acknowledged() {
    use domain::{
        entities::api_key,
        service::ServiceError,
        usage::{add_minute_counts, alerts::Alerts},
    };
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

    let t = TestDb::sqlite_memory().await;
    let w = world(&t.db, 2).await;
    // One key at a time, as with millions of keys: each key is still looked at.
    let alerts = Alerts::with_page(t.db.clone(), 1);
    let now = Utc::now();
    let minute = now.timestamp() - now.timestamp().rem_euclid(60) - 10 * 60;
    // Nothing used: nothing to say.
    assert_eq!(alerts.run(now).await.unwrap(), 0);

    // Key 0: a burst of denials. Key 1: steady, but made 40 days ago and silent since.
    let (k0, k1) = (w.keys[0].0.as_str(), w.keys[1].0.as_str());
    add_minute_counts(
        &t.db,
        &[
            (k0, minute, Code::IpNotAllowed, 60),
            (k0, minute, Code::Valid, 40),
            (k1, minute, Code::Valid, 3),
        ],
    )
    .await
    .unwrap();
    api_key::Entity::update_many()
        .col_expr(
            api_key::Column::CreatedAt,
            Expr::value(now - Duration::days(40)),
        )
        .filter(api_key::Column::Id.eq(k1))
        .exec(t.db.conn())
        .await
        .unwrap();
    assert_eq!(alerts.run(now).await.unwrap(), 2);
    // Each rule fires once per key, not every minute the job runs.
    assert_eq!(alerts.run(now + Duration::minutes(1)).await.unwrap(), 0);

    let open = alerts.list(&w.admin, false, 50).await.unwrap();
    let mut fired: Vec<(&str, &str)> = open
        .iter()
        .map(|a| (a.key_id.as_str(), a.rule.as_str()))
        .collect();
    fired.sort();
    let mut want = vec![(k0, "denials"), (k1, "dormant_traffic")];
    want.sort();
    assert_eq!(fired, want);
    let denials = open.iter().find(|a| a.key_id == k0).unwrap();
    assert!(denials.detail.contains("60 of 100"), "{}", denials.detail);
    assert!(
        denials.detail.contains("60 IP_NOT_ALLOWED"),
        "{}",
        denials.detail
    );

    // Another user neither sees nor acknowledges them.
    let accounts = Accounts::new(t.db.clone(), SecretKey::generate());
    let dev = accounts
        .sign_up(
            "dev@example.com",
            "glacier lantern pepper",
            &Default::default(),
        )
        .await
        .unwrap();
    let dev = Actor::new(dev.id, false, RequestContext::default());
    assert!(alerts.list(&dev, true, 50).await.unwrap().is_empty());
    assert!(matches!(
        alerts.acknowledge(&dev, &denials.id).await,
        Err(ServiceError::NotFound)
    ));
    alerts.acknowledge(&w.admin, &denials.id).await.unwrap();
    let open = alerts.list(&w.admin, false, 50).await.unwrap();
    assert_eq!(open.len(), 1);
    let all = alerts.list(&w.admin, true, 50).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .any(|a| a.id == denials.id && a.acknowledged_at.is_some())
    );
}

// ---- The usage journal (issue 14): each key-minute written once, nothing lost or counted twice.

async fn scalar(db: &Database, q: &str) -> i64 {
    db.scalar(q).await.unwrap()
}

/// What the buckets hold for a key's minute (every outcome).
async fn in_buckets(db: &Database, key_id: &str, minute: DateTime<Utc>) -> i64 {
    scalar(
        db,
        &format!(
            "SELECT CAST(SUM(count) AS BIGINT) FROM usage_buckets WHERE key_id = '{key_id}' \
             AND width = 60 AND start = {}",
            minute.timestamp()
        ),
    )
    .await
}

async fn journal_rows(db: &Database) -> i64 {
    scalar(db, "SELECT COUNT(*) FROM usage_journal").await
}

/// An instance whose every flush journals the open minutes (as under heavy load).
fn journalling(db: &Database) -> Verifier {
    Verifier::new(
        db.clone(),
        domain::usage::recorder::Recorder::with_limits(db.clone(), 0, 25_000),
    )
}

async fn journal_counts_each_minute_once(db: &Database) {
    let w = world(db, 2).await;
    let a = journalling(db);
    a.load().await.unwrap();
    let b = journalling(db);
    b.load().await.unwrap();
    let (k0, k1) = (w.keys[0].0.clone(), w.keys[1].0.clone());
    let ten = Utc.with_ymd_and_hms(2026, 3, 30, 10, 0, 0).unwrap();
    let at = |s: i64| ten + Duration::seconds(s);
    let verify_on = async |v: &Verifier, key: usize, n: usize, t: DateTime<Utc>| {
        for _ in 0..n {
            verify_with(v, &w.keys, key, Code::Valid, t).await;
        }
    };
    let tick =
        async |v: &Verifier, t: DateTime<Utc>| v.recorder().flush_at(v, t, false).await.unwrap();

    // Minute 10:00, counted on two instances, flushed twice each: only journal rows.
    verify_on(&a, 0, 3, at(10)).await;
    verify_on(&b, 0, 2, at(12)).await;
    verify_on(&a, 1, 2, at(20)).await;
    let done = tick(&a, at(30)).await;
    assert_eq!((done.journal_written, done.bucket_rows), (1, 0), "{done:?}");
    assert_eq!(done.verifications, 5);
    assert!(done.journal_bytes > 0);
    tick(&b, at(31)).await;
    verify_on(&a, 0, 1, at(40)).await;
    tick(&a, at(50)).await;
    assert_eq!(journal_rows(db).await, 3);
    assert_eq!(
        in_buckets(db, &k0, ten).await,
        0,
        "an open minute stays in the journal"
    );

    // 10:01:01 is within the closing slack: 10:00 is still open.
    verify_on(&a, 0, 1, at(61)).await;
    let done = tick(&a, at(61)).await;
    assert_eq!(done.journal_closed, 0, "{done:?}");
    // 10:01:10: A closes its two rows of 10:00 (one write per key-minute), and journals 10:01.
    let done = tick(&a, at(70)).await;
    assert_eq!(done.journal_closed, 2, "{done:?}");
    assert_eq!(done.bucket_rows, 2, "{done:?}");
    assert_eq!(in_buckets(db, &k0, ten).await, 4, "A's part of 10:00");
    assert_eq!(in_buckets(db, &k1, ten).await, 2);
    // B closes its own, adding to the same buckets.
    tick(&b, at(75)).await;
    assert_eq!(
        in_buckets(db, &k0, ten).await,
        6,
        "both instances' counts, once each"
    );
    assert_eq!(journal_rows(db).await, 1, "A's row of 10:01");

    // A dies with its row of 10:01 unclosed (and one count never flushed: the loss window).
    verify_on(&a, 1, 1, at(80)).await;
    // Not yet old enough to be an orphan: B leaves it.
    assert_eq!(b.recorder().fold_orphans(at(61 + 119)).await.unwrap(), 0);
    assert_eq!(journal_rows(db).await, 1);
    // Two minutes on, B folds it.
    assert_eq!(b.recorder().fold_orphans(at(61 + 121)).await.unwrap(), 1);
    assert_eq!(journal_rows(db).await, 0);
    assert_eq!(in_buckets(db, &k0, ten + Duration::minutes(1)).await, 1);
    // Were A alive after all, closing the row B folded adds nothing twice.
    let done = tick(&a, at(200)).await;
    assert_eq!(done.journal_closed, 0, "{done:?}");
    assert_eq!(in_buckets(db, &k0, ten + Duration::minutes(1)).await, 1);
    // Its unflushed count (10:01:20) went to the buckets directly, as a closed minute.
    assert_eq!(in_buckets(db, &k1, ten + Duration::minutes(1)).await, 1);

    // A full flush (shutdown, or a reader that must see everything) closes the open minute.
    verify_on(&b, 1, 5, at(300)).await;
    assert_eq!(tick(&b, at(301)).await.journal_written, 1);
    b.recorder().flush_at(&b, at(302), true).await.unwrap();
    assert_eq!(journal_rows(db).await, 0);
    assert_eq!(in_buckets(db, &k1, ten + Duration::minutes(5)).await, 5);

    // Closed concurrently on two instances, every row is added once.
    let eleven = ten + Duration::hours(1);
    for i in 0..10 {
        verify_on(&a, 0, 1, eleven + Duration::seconds(i)).await;
        verify_on(&b, 0, 2, eleven + Duration::seconds(i)).await;
        tick(&a, eleven + Duration::seconds(i)).await;
        tick(&b, eleven + Duration::seconds(i)).await;
    }
    assert_eq!(journal_rows(db).await, 20);
    let close = eleven + Duration::seconds(65);
    let (x, y) = tokio::join!(tick(&a, close), tick(&b, close));
    assert_eq!(x.journal_closed + y.journal_closed, 20);
    assert_eq!(in_buckets(db, &k0, eleven).await, 30);
    assert_eq!(journal_rows(db).await, 0);
    // And a fold racing a close: the row is added by exactly one of them.
    verify_on(&a, 1, 7, eleven + Duration::seconds(70)).await;
    tick(&a, eleven + Duration::seconds(70)).await;
    let later = eleven + Duration::seconds(70 + 300);
    let (folded, closed) = tokio::join!(b.recorder().fold_orphans(later), tick(&a, later));
    assert_eq!(folded.unwrap() + closed.journal_closed as u64 * 7, 7);
    assert_eq!(in_buckets(db, &k1, eleven + Duration::minutes(1)).await, 7);

    // A minute closed over several flushes (one row per flush here): what is not written yet
    // is journalled again, so a crash between two of them loses nothing and doubles nothing.
    let c = Verifier::new(
        db.clone(),
        domain::usage::recorder::Recorder::with_limits(db.clone(), 0, 1),
    );
    c.load().await.unwrap();
    let noon = ten + Duration::hours(2);
    verify_on(&c, 0, 2, noon).await;
    verify_on(&c, 1, 3, noon).await;
    tick(&c, noon + Duration::seconds(5)).await;
    let done = tick(&c, noon + Duration::seconds(65)).await;
    assert_eq!(
        (done.journal_closed, done.bucket_rows, done.journal_written),
        (1, 1, 1),
        "{done:?}"
    );
    let first = in_buckets(db, &k0, noon).await + in_buckets(db, &k1, noon).await;
    assert!(
        first == 2 || first == 3,
        "one of the two key-minutes: {first}"
    );
    // C dies here; its remaining row is folded once it is old enough.
    let folded = b
        .recorder()
        .fold_orphans(noon + Duration::seconds(65 + 121))
        .await
        .unwrap();
    assert_eq!(folded, 5 - first as u64);
    assert_eq!(in_buckets(db, &k0, noon).await, 2);
    assert_eq!(in_buckets(db, &k1, noon).await, 3);
    assert_eq!(journal_rows(db).await, 0);
}

#[tokio::test]
async fn journal_counts_each_minute_once_on_sqlite() {
    let t = TestDb::sqlite_memory().await;
    journal_counts_each_minute_once(&t.db).await;
}

#[tokio::test]
async fn journal_counts_each_minute_once_on_postgres() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    journal_counts_each_minute_once(&t.db).await;
    t.cleanup().await;
}

/// A key's `last_used_at` as stored (Unix seconds; 0 when never used).
async fn last_used(db: &Database, key_id: &str) -> i64 {
    use domain::entities::api_key;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    api_key::Entity::find()
        .filter(api_key::Column::Id.eq(key_id))
        .one(db.conn())
        .await
        .unwrap()
        .unwrap()
        .last_used_at
        .map_or(0, |t| t.timestamp())
}

/// `last_used_at`: to the minute at light load; under heavy load (more keys waiting than
/// `direct_rows`) a key written less than ten minutes ago waits, so a flush's row updates do not
/// grow with the keys in use; a full flush writes every key's newest minute.
async fn last_used_moves_in_steps_under_load(db: &Database) {
    use domain::usage::recorder::{LAST_USED_STEP, Recorder};
    let w = world(db, 3).await;
    let ids: Vec<String> = w.keys.iter().map(|(id, _)| id.clone()).collect();
    // Light load: two keys waiting at most.
    let light = Verifier::new(db.clone(), Recorder::with_limits(db.clone(), 2, 25_000));
    light.load().await.unwrap();
    let ten = Utc.with_ymd_and_hms(2026, 3, 30, 10, 0, 0).unwrap();
    let minute = |m: i64| ten + Duration::minutes(m);
    let tick = async |v: &Verifier, t: DateTime<Utc>| {
        v.recorder()
            .flush_at(v, t + Duration::seconds(30), false)
            .await
            .unwrap()
    };
    for m in 0..3 {
        verify_with(&light, &w.keys, 0, Code::Valid, minute(m)).await;
        verify_with(&light, &w.keys, 1, Code::Valid, minute(m)).await;
        let done = tick(&light, minute(m)).await;
        assert_eq!(done.last_used_rows, 2, "minute {m}: {done:?}");
        assert_eq!(last_used(db, &ids[0]).await, minute(m).timestamp());
        assert_eq!(last_used(db, &ids[1]).await, minute(m).timestamp());
    }

    // Heavy load: three keys waiting, more than two. Key 2, never written, is written at once;
    // keys 0 and 1 (written at 10:02 by the other process, unknown to this one) too.
    let heavy = Verifier::new(db.clone(), Recorder::with_limits(db.clone(), 2, 25_000));
    heavy.load().await.unwrap();
    let use_all = async |m: i64| {
        for key in 0..3 {
            verify_with(&heavy, &w.keys, key, Code::Valid, minute(m)).await;
        }
    };
    use_all(3).await;
    assert_eq!(tick(&heavy, minute(3)).await.last_used_rows, 3);
    // For the next ten minutes nothing moves...
    let step = LAST_USED_STEP / 60;
    for m in 4..3 + step {
        use_all(m).await;
        let done = tick(&heavy, minute(m)).await;
        assert_eq!(done.last_used_rows, 0, "minute {m}: {done:?}");
        for id in &ids {
            assert_eq!(last_used(db, id).await, minute(3).timestamp());
        }
    }
    // ...then every key moves once, to its newest minute.
    use_all(3 + step).await;
    assert_eq!(tick(&heavy, minute(3 + step)).await.last_used_rows, 3);
    for id in &ids {
        assert_eq!(last_used(db, id).await, minute(3 + step).timestamp());
    }
    // A full flush writes every key's newest minute, however recently written.
    use_all(4 + step).await;
    let done = heavy
        .recorder()
        .flush_at(&heavy, minute(4 + step) + Duration::seconds(30), true)
        .await
        .unwrap();
    assert_eq!(done.last_used_rows, 3, "{done:?}");
    for id in &ids {
        assert_eq!(last_used(db, id).await, minute(4 + step).timestamp());
    }
}

#[tokio::test]
async fn last_used_moves_in_steps_under_load_on_sqlite() {
    let t = TestDb::sqlite_memory().await;
    last_used_moves_in_steps_under_load(&t.db).await;
}

#[tokio::test]
async fn last_used_moves_in_steps_under_load_on_postgres() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    last_used_moves_in_steps_under_load(&t.db).await;
    t.cleanup().await;
}

/// A flush of more key-minutes than one statement carries (5,000 on PostgreSQL, 400 on SQLite)
/// adds every one of them, once.
async fn a_large_flush_adds_every_row_once(db: &Database) {
    let verifier = Verifier::new(
        db.clone(),
        domain::usage::recorder::Recorder::new(db.clone()),
    );
    let at = Utc.with_ymd_and_hms(2026, 12, 7, 9, 30, 0).unwrap();
    let keys: Vec<std::sync::Arc<str>> = (0..12_345)
        .map(|i| format!("kp_test_{i:05}").into())
        .collect();
    for (i, key) in keys.iter().enumerate() {
        verifier.recorder().count(key, at, Code::Valid);
        verifier.recorder().count(key, at, Code::Valid);
        if i % 3 == 0 {
            verifier.recorder().count(key, at, Code::RateLimited);
        }
    }
    assert_eq!(verifier.flush().await.unwrap(), 2 * 12_345 + 4_115);
    assert_eq!(
        scalar(db, "SELECT COUNT(*) FROM usage_buckets WHERE width = 60").await,
        12_345 + 4_115
    );
    assert_eq!(
        scalar(
            db,
            "SELECT CAST(SUM(count) AS BIGINT) FROM usage_buckets WHERE code = 'VALID'"
        )
        .await,
        2 * 12_345
    );
    assert_eq!(in_buckets(db, "kp_test_12344", at).await, 2);
    assert_eq!(in_buckets(db, "kp_test_12342", at).await, 3);
    // Counted again and flushed again: added to the same rows.
    verifier.recorder().count(&keys[7], at, Code::Valid);
    verifier.flush().await.unwrap();
    assert_eq!(in_buckets(db, "kp_test_00007", at).await, 3);
}

#[tokio::test]
async fn a_large_flush_adds_every_row_once_on_sqlite() {
    let t = TestDb::sqlite_memory().await;
    a_large_flush_adds_every_row_once(&t.db).await;
}

#[tokio::test]
async fn a_large_flush_adds_every_row_once_on_postgres() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    a_large_flush_adds_every_row_once(&t.db).await;
    t.cleanup().await;
}
