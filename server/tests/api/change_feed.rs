//! Several instances on one PostgreSQL database (issue 13): a key change made on one reaches the
//! others through LISTEN/NOTIFY at once, long before their periodic poll.
use std::time::{Duration, Instant};

use domain::testing::TestDb;
use serde_json::json;
use server::Config;

use crate::{helpers::TestApp, verify_support::*};

/// Two instances on one fresh database whose periodic poll runs once an hour, so only the change
/// feed can carry a change from one to the other within the test.
async fn two_instances() -> (TestApp, TestApp) {
    let pg = TestDb::postgres_empty()
        .await
        .expect("KEYPORT_TEST_POSTGRES_URL must be set for PostgreSQL tests");
    let url = pg.url.clone();
    let config = |dir: &std::path::Path| Config {
        database_url: Some(url.clone()),
        usage_flush_seconds: 3600,
        ..Config::for_data_dir(dir)
    };
    let dir_a = tempfile::tempdir().unwrap();
    let a = TestApp::spawn_with(config(dir_a.path()), dir_a, Some(pg)).await;
    let dir_b = tempfile::tempdir().unwrap();
    let b = TestApp::spawn_with(config(dir_b.path()), dir_b, None).await;
    (a, b)
}

/// Asks `app` to verify `key` every 10 ms until it answers `code`; how long that took, or
/// `None` after `limit`.
async fn time_until(app: &TestApp, key: &str, code: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if verify(app, json!({ "key": key })).await["code"] == code {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test]
async fn postgres_a_key_revoked_on_one_instance_is_refused_by_the_other_within_a_second() {
    let (a, b) = two_instances().await;
    let w = world(&a).await;
    let mut delays = Vec::new();
    for trial in 0..20 {
        let (key, id) = key(&a, &w.dev, orders_key()).await;
        let created = time_until(&b, &key, "VALID", Duration::from_secs(1)).await;
        assert!(
            created.is_some(),
            "trial {trial}: B never accepted the key made on A"
        );
        a.state.keys.revoke(&w.dev, &id, None).await.unwrap();
        let revoked = time_until(&b, &key, "REVOKED", Duration::from_secs(1)).await;
        delays.push(revoked.unwrap_or_else(|| {
            panic!("trial {trial}: B still accepts a key revoked on A after 1 s")
        }));
    }
    delays.sort();
    println!(
        "revocation reached the other instance in p50 {:?}, worst {:?} (20 trials)",
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    // A's own answer changed at once, without the feed.
    let (key, id) = key(&a, &w.dev, orders_key()).await;
    a.state.keys.revoke(&w.dev, &id, None).await.unwrap();
    assert_eq!(verify(&a, json!({ "key": key })).await["code"], "REVOKED");
    b.cleanup().await;
    a.cleanup().await;
}

/// A user disabled on one instance: their keys stop on the other at once too.
#[tokio::test]
async fn postgres_a_user_disabled_on_one_instance_is_refused_by_the_other() {
    let (a, b) = two_instances().await;
    let w = world(&a).await;
    let (key, _) = key(&a, &w.dev, orders_key()).await;
    assert!(
        time_until(&b, &key, "VALID", Duration::from_secs(1))
            .await
            .is_some()
    );
    a.state
        .accounts
        .set_status(
            &w.admin.user_id,
            &w.dev.user_id,
            domain::accounts::Status::Disabled,
            &Default::default(),
        )
        .await
        .unwrap();
    let refused = time_until(&b, &key, "DISABLED", Duration::from_secs(1)).await;
    assert!(refused.is_some(), "B still accepts a disabled user's key");
    b.cleanup().await;
    a.cleanup().await;
}
