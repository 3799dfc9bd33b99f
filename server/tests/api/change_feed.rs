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
    two_instances_with(None, 3600).await
}

/// Two instances on one fresh database, following each other through `redis` (else NOTIFY), with
/// the periodic poll every `poll_seconds`.
async fn two_instances_with(redis: Option<String>, poll_seconds: u64) -> (TestApp, TestApp) {
    let pg = TestDb::postgres_empty()
        .await
        .expect("KEYPORT_TEST_POSTGRES_URL must be set for PostgreSQL tests");
    let url = pg.url.clone();
    let config = |dir: &std::path::Path| Config {
        database_url: Some(url.clone()),
        usage_flush_seconds: poll_seconds,
        redis_url: redis.clone(),
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
    crate::helpers::print_delays("revocation reached the other instance", delays);
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

/// Verifies `key` on `app` `n` times, each answered VALID.
async fn valid(app: &TestApp, key: &str, n: usize) {
    for i in 0..n {
        let answer = verify(app, json!({ "key": key })).await;
        assert_eq!(
            answer["code"], "VALID",
            "verification {i} on {}: {answer}",
            app.address
        );
    }
}

/// One key used on both instances at once, each flushing its counts to the shared database at
/// the same moment, three times (fewer than the Free plan's burst of 20 per instance): `/v1/keys/{id}/usage` shows every verification exactly once.
#[tokio::test]
async fn postgres_usage_counted_on_two_instances_merges_exactly() {
    let (a, b) = two_instances().await;
    let w = world(&a).await;
    let (key, id) = key(&a, &w.dev, orders_key()).await;
    let (token, _) = crate::verify_support::key(
        &a,
        &w.dev,
        domain::keys::NewKey {
            api: "keyport".into(),
            scopes: vec!["usage:read".into()],
            ..orders_key()
        },
    )
    .await;
    for _ in 0..3 {
        tokio::join!(valid(&a, &key, 4), valid(&b, &key, 3));
        let (flushed_a, flushed_b) =
            tokio::join!(a.state.verifier.flush(), b.state.verifier.flush());
        flushed_a.unwrap();
        flushed_b.unwrap();
    }
    for app in [&a, &b] {
        let usage: serde_json::Value = app
            .client
            .get(app.url(&format!("/v1/keys/{id}/usage")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let counted: u64 = usage["buckets"]
            .as_array()
            .unwrap_or_else(|| panic!("no buckets in {usage}"))
            .iter()
            .map(|bucket| bucket["counts"]["VALID"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(counted, 3 * (4 + 3), "{usage}");
    }
    b.cleanup().await;
    a.cleanup().await;
}

/// Creates a key on A and revokes it there; how long B took to refuse it once A's revocation
/// returned (`None` after `limit`).
async fn revocation_delay(
    a: &TestApp,
    b: &TestApp,
    w: &World,
    limit: Duration,
) -> Option<Duration> {
    let (key, id) = key(a, &w.dev, orders_key()).await;
    time_until(b, &key, "VALID", Duration::from_secs(5))
        .await
        .expect("B accepts the key made on A");
    let started = Instant::now();
    a.state.keys.revoke(&w.dev, &id, None).await.unwrap();
    let revoked_in = started.elapsed();
    assert!(
        revoked_in < Duration::from_secs(2),
        "revoking took {revoked_in:?}: a change must not hang on Redis"
    );
    time_until(b, &key, "REVOKED", limit).await
}

/// Whether, within 20 trials, five revocations in a row reach B in under 300 ms each. The poll
/// (every 3 s in these tests) lands that soon after a revocation one time in ten: five in a row
/// means the feed carried them.
async fn five_fast_in_a_row(a: &TestApp, b: &TestApp, w: &World) -> bool {
    let mut in_a_row = 0;
    for _ in 0..20 {
        match revocation_delay(a, b, w, Duration::from_millis(300)).await {
            Some(_) => in_a_row += 1,
            None => in_a_row = 0,
        }
        if in_a_row == 5 {
            return true;
        }
    }
    false
}

/// With Redis configured, changes travel through it (the shared Redis of the test machine).
#[tokio::test]
async fn postgres_redis_a_key_revoked_on_one_instance_is_refused_by_the_other_within_a_second() {
    let redis = std::env::var("KEYPORT_TEST_REDIS_URL")
        .expect("KEYPORT_TEST_REDIS_URL must be set for Redis tests");
    let (a, b) = two_instances_with(Some(redis), 3600).await;
    let w = world(&a).await;
    let mut delays = Vec::new();
    for trial in 0..20 {
        let delay = revocation_delay(&a, &b, &w, Duration::from_secs(1)).await;
        delays.push(
            delay.unwrap_or_else(|| panic!("trial {trial}: B still accepts the key after 1 s")),
        );
    }
    crate::helpers::print_delays(
        "through Redis, revocation reached the other instance",
        delays,
    );
    b.cleanup().await;
    a.cleanup().await;
}

/// Redis stopped mid-run: verification keeps answering at once and changes still arrive through
/// the poll; Redis started again: the instances follow each other through it again by themselves.
#[tokio::test]
async fn postgres_redis_the_feed_survives_redis_going_away_and_coming_back() {
    let mut redis = crate::helpers::OwnRedis::start().await;
    let (a, b) = two_instances_with(Some(redis.url()), 3).await;
    let w = world(&a).await;
    assert!(
        five_fast_in_a_row(&a, &b, &w).await,
        "with Redis up, revocations reach B at once"
    );

    redis.stop();
    let (key, _) = key(&a, &w.dev, orders_key()).await;
    assert!(
        time_until(&b, &key, "VALID", Duration::from_secs(5))
            .await
            .is_some()
    );
    let started = Instant::now();
    // Ten, within the Free plan's burst of 20 (the wait above used some).
    for _ in 0..10 {
        assert_eq!(verify(&b, json!({ "key": key })).await["code"], "VALID");
    }
    println!("10 verifications with Redis down: {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(2));
    let slow = revocation_delay(&a, &b, &w, Duration::from_secs(10)).await;
    println!("with Redis down, revocation reached B by the poll in {slow:?}");
    assert!(
        slow.is_some(),
        "the poll carries the change while Redis is down"
    );

    redis.restart().await;
    assert!(
        five_fast_in_a_row(&a, &b, &w).await,
        "after Redis returns, changes travel through it again"
    );
    b.cleanup().await;
    a.cleanup().await;
}
