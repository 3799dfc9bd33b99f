//! The limits a key shows are the limits it gets: `Key::effective` (what the portal and the REST
//! API show) against what the verifier enforces, for a key with its own rate limit and for one
//! that falls back to its owner's plan.
use std::sync::Arc;

use chrono::{Duration, Utc};
use domain::{
    accounts::Accounts,
    catalog::{PlanInput, Quota, QuotaPeriod, RateLimit},
    keys::{Keys, NewKey},
    secret_key::SecretKey,
    service::Actor,
    testing::TestDb,
    usage::recorder::Recorder,
    verification::{Code, Request, Verifier},
};

const PASSWORD: &str = "glacier lantern pepper";

/// Verifies `key` `n` times at once; how many were VALID.
async fn burst(verifier: &Verifier, key: &str, n: u32) -> u32 {
    let mut valid = 0;
    for _ in 0..n {
        let outcome = verifier
            .verify(
                &Request {
                    key,
                    cost: 1,
                    ..Default::default()
                },
                Utc::now(),
            )
            .await;
        match outcome.code {
            Code::Valid => valid += 1,
            Code::RateLimited => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    valid
}

#[tokio::test]
async fn the_limits_a_key_shows_are_the_limits_it_gets() {
    let t = TestDb::sqlite_memory().await;
    let db = t.db.clone();
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
    let verifier = Verifier::new(db.clone(), Recorder::new(db.clone()));
    let keys = Keys::new(db.clone()).with_changes(Arc::new(verifier.clone()));
    // A plan whose rate refills slowly (1 a minute) with a burst of 3, so a burst test is exact.
    let plan = keys
        .catalog()
        .create_plan(
            &admin,
            PlanInput {
                name: "Trickle".into(),
                rate_limit: Some(RateLimit {
                    limit: 1,
                    period_s: 60,
                }),
                burst: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    keys.catalog()
        .assign_plan(&admin, &dev.id, Some(&plan.id))
        .await
        .unwrap();
    let dev = Actor::new(dev.id, false, Default::default());
    let new_key = |name: &str, rate_limit| NewKey {
        name: name.into(),
        api: "keyport".into(),
        scopes: vec!["keys:read".into()],
        rate_limit,
        expires_at: Some(Utc::now() + Duration::days(30)),
        ..Default::default()
    };

    // No limit of its own: the plan's rate and burst, shown as the plan's.
    let inherits = keys.create(&dev, new_key("inherits", None)).await.unwrap();
    let shown = inherits.key.effective.rate.expect("a rate limit");
    assert_eq!((shown.limit.limit, shown.limit.period_s), (1, 60));
    assert_eq!(shown.burst, 3);
    assert!(shown.from_plan);
    assert_eq!(inherits.key.plan.as_deref(), Some("Trickle"));
    assert_eq!(
        burst(&verifier, inherits.plaintext.expose(), 6).await,
        shown.burst
    );

    // Its own, slower rate: its own limit, with the plan's burst as the most it may take at once.
    let own = keys
        .create(
            &dev,
            new_key(
                "own",
                Some(RateLimit {
                    limit: 2,
                    period_s: 3600,
                }),
            ),
        )
        .await
        .unwrap();
    let shown = own.key.effective.rate.expect("a rate limit");
    assert_eq!(
        (shown.limit.limit, shown.burst, shown.from_plan),
        (2, 2, false)
    );
    assert_eq!(
        burst(&verifier, own.plaintext.expose(), 6).await,
        shown.burst
    );
    t.cleanup().await;
}

/// The plan is a ceiling at verification time: when an admin lowers a developer's plan, an
/// existing key whose own limits were within the old plan is held to the new one at once.
#[tokio::test]
async fn lowering_a_plan_lowers_existing_keys_at_once() {
    let t = TestDb::sqlite_memory().await;
    let db = t.db.clone();
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
    let verifier = Verifier::new(db.clone(), Recorder::new(db.clone()));
    let keys = Keys::new(db.clone()).with_changes(Arc::new(verifier.clone()));
    let roomy = PlanInput {
        name: "Roomy".into(),
        rate_limit: Some(RateLimit {
            limit: 100,
            period_s: 1,
        }),
        burst: Some(2),
        quota: Some(Quota {
            limit: 10_000,
            period: QuotaPeriod::Month,
        }),
        ..Default::default()
    };
    let plan = keys
        .catalog()
        .create_plan(&admin, roomy.clone())
        .await
        .unwrap();
    keys.catalog()
        .assign_plan(&admin, &dev.id, Some(&plan.id))
        .await
        .unwrap();
    let dev = Actor::new(dev.id, false, Default::default());
    // Its own limits, within the plan: 50 a second and 100 a day (3,100 a month at most).
    let key = keys
        .create(
            &dev,
            NewKey {
                name: "own limits".into(),
                api: "keyport".into(),
                scopes: vec!["keys:read".into()],
                rate_limit: Some(RateLimit {
                    limit: 50,
                    period_s: 1,
                }),
                quota: Some(Quota {
                    limit: 100,
                    period: QuotaPeriod::Day,
                }),
                expires_at: Some(Utc::now() + Duration::days(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!key.key.effective.rate.unwrap().from_plan);
    assert!(!key.key.effective.quota.unwrap().from_plan);

    // The admin lowers the plan: 1 a minute (burst 3), 10 a day.
    keys.catalog()
        .update_plan(
            &admin,
            &plan.id,
            PlanInput {
                rate_limit: Some(RateLimit {
                    limit: 1,
                    period_s: 60,
                }),
                burst: Some(3),
                quota: Some(Quota {
                    limit: 10,
                    period: QuotaPeriod::Day,
                }),
                ..roomy
            },
        )
        .await
        .unwrap();
    let shown = keys.get(&dev, &key.key.id).await.unwrap();
    let rate = shown.effective.rate.unwrap();
    assert_eq!(
        (
            rate.limit.limit,
            rate.limit.period_s,
            rate.burst,
            rate.from_plan
        ),
        (1, 60, 3, true)
    );
    let quota = shown.effective.quota.unwrap();
    assert_eq!((quota.quota.limit, quota.from_plan), (10, true));
    // The verifier holds the key to it: a burst of 3, then refused (its own 50/s would have
    // refilled within a second).
    let plaintext = key.plaintext.expose();
    assert_eq!(burst(&verifier, plaintext, 5).await, 3);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(burst(&verifier, plaintext, 1).await, 0);
    t.cleanup().await;
}

/// A plan whose limits apply per developer: all of a developer's keys share one rate limit and
/// one quota, so more keys do not mean more traffic; a key's own limits do not escape it.
#[tokio::test]
async fn a_per_developer_plan_is_shared_by_all_of_a_developers_keys() {
    let t = TestDb::sqlite_memory().await;
    let db = t.db.clone();
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
    let verifier = Verifier::new(db.clone(), Recorder::new(db.clone()));
    let keys = Keys::new(db.clone()).with_changes(Arc::new(verifier.clone()));
    // A burst of 4 that refills once a minute, and 6 requests a day, for the developer.
    let plan = keys
        .catalog()
        .create_plan(
            &admin,
            PlanInput {
                name: "Team".into(),
                rate_limit: Some(RateLimit {
                    limit: 1,
                    period_s: 60,
                }),
                burst: Some(4),
                quota: Some(Quota {
                    limit: 6,
                    period: QuotaPeriod::Day,
                }),
                per_developer: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(plan.per_developer);
    keys.catalog()
        .assign_plan(&admin, &dev.id, Some(&plan.id))
        .await
        .unwrap();
    let dev = Actor::new(dev.id, false, Default::default());
    let key = |name: &str, rate_limit| NewKey {
        name: name.into(),
        api: "keyport".into(),
        scopes: vec!["keys:read".into()],
        rate_limit,
        expires_at: Some(Utc::now() + Duration::days(30)),
        ..Default::default()
    };
    let first = keys.create(&dev, key("first", None)).await.unwrap();
    let second = keys.create(&dev, key("second", None)).await.unwrap();
    // Its own, slower limit: the pool applies on top of it.
    let own = keys
        .create(
            &dev,
            key(
                "own",
                Some(RateLimit {
                    limit: 1,
                    period_s: 120,
                }),
            ),
        )
        .await
        .unwrap();
    let shown = first.key.effective.rate.unwrap();
    assert!(shown.from_plan && shown.shared);

    // The burst of 4 is the developer's, not each key's: 3 + 1, then nothing for anyone.
    assert_eq!(burst(&verifier, first.plaintext.expose(), 3).await, 3);
    assert_eq!(burst(&verifier, second.plaintext.expose(), 3).await, 1);
    assert_eq!(burst(&verifier, own.plaintext.expose(), 1).await, 0);
    assert_eq!(burst(&verifier, first.plaintext.expose(), 1).await, 0);
    // The day's quota is shared too (4 used): read the same from every key.
    let first_quota = verifier.quota_use(&first.key.id, Utc::now()).unwrap();
    let second_quota = verifier.quota_use(&second.key.id, Utc::now()).unwrap();
    assert_eq!((first_quota.limit, first_quota.remaining), (6, 2));
    assert_eq!(second_quota.remaining, 2);
    // The shared use is stored and survives a restart.
    verifier.flush().await.unwrap();
    let restarted = Verifier::new(db.clone(), Recorder::new(db.clone()));
    restarted.load().await.unwrap();
    let after = restarted.quota_use(&own.key.id, Utc::now()).unwrap();
    assert_eq!(after.remaining, 2);
    t.cleanup().await;
}

/// Instances write the quota use they last saw; the database keeps the highest of the newest
/// period, so a late write of a smaller count (another instance's, or one that saw Redis'
/// count earlier) never hands quota back.
async fn saved_quota_use_never_goes_backwards(t: TestDb) {
    let db = t.db.clone();
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    let dev = accounts
        .sign_up("dev@example.com", PASSWORD, &Default::default())
        .await
        .unwrap();
    let dev = Actor::new(dev.id, false, Default::default());
    let first = Verifier::new(db.clone(), Recorder::new(db.clone()));
    let second = Verifier::new(db.clone(), Recorder::new(db.clone()));
    let keys = Keys::new(db.clone())
        .with_changes(Arc::new(first.clone()))
        .with_changes(Arc::new(second.clone()));
    let created = keys
        .create(
            &dev,
            NewKey {
                name: "metered".into(),
                api: "keyport".into(),
                scopes: vec!["keys:read".into()],
                quota: Some(Quota {
                    limit: 10,
                    period: QuotaPeriod::Day,
                }),
                expires_at: Some(Utc::now() + Duration::days(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let key = created.plaintext.expose();
    assert_eq!(burst(&first, key, 5).await, 5);
    assert_eq!(burst(&second, key, 2).await, 2);
    first.flush().await.unwrap();
    second.flush().await.unwrap();
    let restarted = Verifier::new(db.clone(), Recorder::new(db.clone()));
    restarted.load().await.unwrap();
    let shown = restarted.quota_use(&created.key.id, Utc::now()).unwrap();
    assert_eq!(shown.remaining, 5, "the larger count (5) was kept");
    t.cleanup().await;
}

#[tokio::test]
async fn saved_quota_use_never_goes_backwards_on_sqlite() {
    saved_quota_use_never_goes_backwards(TestDb::sqlite_memory().await).await;
}

#[tokio::test]
async fn postgres_saved_quota_use_never_goes_backwards() {
    let t = TestDb::postgres()
        .await
        .expect("KEYPORT_TEST_POSTGRES_URL must be set for PostgreSQL tests");
    saved_quota_use_never_goes_backwards(t).await;
}
