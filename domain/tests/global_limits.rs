//! Limits shared by several instances through Redis (`--ratelimit-mode strict`), against a real
//! Redis (`KEYPORT_TEST_REDIS_URL`; `./dev.sh test` skips tests named `redis` without it). Three
//! verifiers on one database stand for three instances: each decides in Redis, so a limit of 20
//! is 20 in all, whichever instance a request reaches and however many arrive at once.
use std::{sync::Arc, time::Instant};

use chrono::{Duration, Utc};
use domain::{
    Database,
    accounts::Accounts,
    catalog::{PlanInput, Quota, QuotaPeriod, RateLimit},
    keys::{Keys, NewKey},
    secret_key::SecretKey,
    service::Actor,
    testing::TestDb,
    usage::recorder::Recorder,
    verification::{
        Code, Request, Verifier,
        global::{GlobalLimits, RedisFailure},
        quota_period,
    },
};

const PASSWORD: &str = "glacier lantern pepper";

fn redis_url() -> String {
    std::env::var("KEYPORT_TEST_REDIS_URL")
        .expect("KEYPORT_TEST_REDIS_URL must be set for Redis tests")
}

fn instance(db: &Database, url: &str, failure: RedisFailure) -> Verifier {
    Verifier::with_global_limits(
        db.clone(),
        Recorder::new(db.clone()),
        Some(GlobalLimits::open(url, failure).unwrap()),
    )
}

/// A developer on `plan`, and a keys service that tells `verifiers` of every change.
async fn developer(db: &Database, verifiers: &[&Verifier], plan: PlanInput) -> (Keys, Actor) {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    let admin = accounts
        .create_admin("root@example.com", PASSWORD)
        .await
        .unwrap();
    let admin = Actor::new(admin.id, true, Default::default());
    let dev = accounts
        .sign_up("dev@example.com", PASSWORD, &Default::default())
        .await
        .unwrap();
    let mut keys = Keys::new(db.clone());
    for v in verifiers {
        keys = keys.with_changes(Arc::new((*v).clone()));
    }
    let plan = keys.catalog().create_plan(&admin, plan).await.unwrap();
    keys.catalog()
        .assign_plan(&admin, &dev.id, Some(&plan.id))
        .await
        .unwrap();
    (keys, Actor::new(dev.id, false, Default::default()))
}

/// A plan without a rate limit, with `quota`.
fn metered(quota: Option<Quota>) -> PlanInput {
    PlanInput {
        name: "Metered".into(),
        quota,
        ..Default::default()
    }
}

fn new_key(name: &str, rate_limit: Option<RateLimit>) -> NewKey {
    NewKey {
        name: name.into(),
        api: "keyport".into(),
        scopes: vec!["keys:read".into()],
        rate_limit,
        expires_at: Some(Utc::now() + Duration::days(30)),
        ..Default::default()
    }
}

/// `n` verifications of `key` sent at once, spread over `verifiers` in turn; the codes, in the
/// order of the verifiers they went to.
async fn spread(verifiers: &[&Verifier], key: &str, n: usize) -> Vec<(usize, Code)> {
    let calls = (0..n).map(|i| {
        let v = verifiers[i % verifiers.len()];
        async move {
            let req = Request {
                key,
                cost: 1,
                ..Default::default()
            };
            (i % verifiers.len(), v.verify(&req, Utc::now()).await.code)
        }
    });
    futures_util::future::join_all(calls).await
}

fn count(codes: &[(usize, Code)], code: Code) -> usize {
    codes.iter().filter(|(_, c)| *c == code).count()
}

#[tokio::test]
async fn redis_rate_limits_and_quotas_hold_exactly_across_three_instances() {
    let t = TestDb::sqlite_memory().await;
    let db = t.db.clone();
    let url = redis_url();
    let [a, b, c] = [(); 3].map(|_| instance(&db, &url, RedisFailure::Open));
    let all = [&a, &b, &c];
    let quota = Quota {
        limit: 30,
        period: QuotaPeriod::Day,
    };
    let (keys, dev) = developer(&db, &all, metered(Some(quota))).await;

    // 20 an hour with a burst of 20: 60 requests at once over three instances, 20 VALID.
    let hourly = RateLimit {
        limit: 20,
        period_s: 3600,
    };
    let limited = keys
        .create(&dev, new_key("limited", Some(hourly)))
        .await
        .unwrap();
    let codes = spread(&all, limited.plaintext.expose(), 60).await;
    assert_eq!(count(&codes, Code::Valid), 20, "{codes:?}");
    assert_eq!(count(&codes, Code::RateLimited), 40, "{codes:?}");
    // A rate-limited request spends no quota: 20 of the 30 were used.
    let mut redis = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let (start, _) = quota_period(QuotaPeriod::Day, Utc::now());
    let global = a.global_limits().unwrap();
    let used: i64 = redis::cmd("GET")
        .arg(global.quota_key(&limited.key.id, start.timestamp()))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(used, 20);

    // A quota of 30 a day and no rate limit: exactly 30 of 60.
    let metered = keys.create(&dev, new_key("metered", None)).await.unwrap();
    let codes = spread(&all, metered.plaintext.expose(), 60).await;
    assert_eq!(count(&codes, Code::Valid), 30, "{codes:?}");
    assert_eq!(count(&codes, Code::QuotaExceeded), 30, "{codes:?}");
    // Each instance shows the use as of the last request it metered: never more than the
    // limit, and the instances that saw a refusal show all of it.
    let shown: Vec<u64> = all
        .iter()
        .map(|v| v.quota_use(&metered.key.id, Utc::now()).unwrap().remaining)
        .collect();
    assert!(shown.iter().all(|r| *r <= 30), "{shown:?}");
    assert!(shown.contains(&0), "{shown:?}");

    // The use is persisted; if Redis loses its counter, the next decision starts from the
    // database's use, not from a fresh quota.
    for v in all {
        v.flush().await.unwrap();
    }
    let counter = global.quota_key(&metered.key.id, start.timestamp());
    let removed: i64 = redis::cmd("DEL")
        .arg(&counter)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(removed, 1, "the quota counter lives at {counter}");
    let restarted = instance(&db, &url, RedisFailure::Open);
    restarted.load().await.unwrap();
    let codes = spread(&[&restarted], metered.plaintext.expose(), 3).await;
    assert_eq!(count(&codes, Code::QuotaExceeded), 3, "{codes:?}");
    let reseeded: i64 = redis::cmd("GET")
        .arg(&counter)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(
        reseeded, 30,
        "Redis' counter is re-created from the database"
    );
    t.cleanup().await;
}

/// A developer whose plan's limits are shared by all their keys: the pool is global too.
#[tokio::test]
async fn redis_a_developers_pool_is_shared_by_their_keys_on_every_instance() {
    let t = TestDb::sqlite_memory().await;
    let db = t.db.clone();
    let url = redis_url();
    let [a, b] = [(); 2].map(|_| instance(&db, &url, RedisFailure::Open));
    let team = PlanInput {
        name: "Team".into(),
        rate_limit: Some(RateLimit {
            limit: 1,
            period_s: 60,
        }),
        burst: Some(9),
        per_developer: true,
        ..Default::default()
    };
    let (keys, dev) = developer(&db, &[&a, &b], team).await;
    let first = keys.create(&dev, new_key("first", None)).await.unwrap();
    let second = keys.create(&dev, new_key("second", None)).await.unwrap();
    let (ab, ba) = ([&a, &b], [&b, &a]);
    let (one, two) = tokio::join!(
        spread(&ab, first.plaintext.expose(), 10),
        spread(&ba, second.plaintext.expose(), 10)
    );
    assert_eq!(
        count(&one, Code::Valid) + count(&two, Code::Valid),
        9,
        "the burst of 9 is the developer's, across both keys and both instances: {one:?} {two:?}"
    );
    t.cleanup().await;
}

/// Redis unreachable: the breaker opens at the first decision, no verification waits longer
/// than its timeout, and the local limiters decide (fail open) or limited keys are refused
/// (fail closed).
#[tokio::test]
async fn redis_unreachable_falls_back_to_local_limits_or_refuses_when_closed() {
    let t = TestDb::sqlite_memory().await;
    let db = t.db.clone();
    // A port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let nowhere = format!("redis://127.0.0.1:{port}");
    let open = instance(&db, &nowhere, RedisFailure::Open);
    let closed = instance(&db, &nowhere, RedisFailure::Closed);
    let (keys, dev) = developer(&db, &[&open, &closed], metered(None)).await;
    let five = RateLimit {
        limit: 5,
        period_s: 3600,
    };
    let key = keys
        .create(&dev, new_key("five", Some(five)))
        .await
        .unwrap();
    let started = Instant::now();
    let mut slowest = std::time::Duration::ZERO;
    let mut valid = 0;
    for _ in 0..8 {
        let at = Instant::now();
        let outcome = open
            .verify(
                &Request {
                    key: key.plaintext.expose(),
                    cost: 1,
                    ..Default::default()
                },
                Utc::now(),
            )
            .await;
        slowest = slowest.max(at.elapsed());
        assert!(!outcome.limits_unavailable);
        valid += usize::from(outcome.valid());
    }
    println!(
        "Redis unreachable: 8 verifications in {:?}, the slowest {slowest:?}",
        started.elapsed()
    );
    assert_eq!(valid, 5, "the local limiter's burst of 5 decides");
    let global = open.global_limits().unwrap();
    assert!(global.breaker_open());
    assert_eq!(global.breaker_trips(), 1, "one trip, however many requests");
    assert!(
        slowest < std::time::Duration::from_millis(500),
        "a verification waited {slowest:?} for Redis"
    );

    // Fail closed: the limited key is refused as unavailable, uncounted.
    let outcome = closed
        .verify(
            &Request {
                key: key.plaintext.expose(),
                cost: 1,
                ..Default::default()
            },
            Utc::now(),
        )
        .await;
    assert!(outcome.limits_unavailable);
    assert!(!outcome.valid());
    t.cleanup().await;
}
