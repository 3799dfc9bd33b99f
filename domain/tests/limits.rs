//! The limits a key shows are the limits it gets: `Key::effective` (what the portal and the REST
//! API show) against what the verifier enforces, for a key with its own rate limit and for one
//! that falls back to its owner's plan.
use std::sync::Arc;

use chrono::{Duration, Utc};
use domain::{
    accounts::Accounts,
    catalog::{PlanInput, RateLimit},
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
