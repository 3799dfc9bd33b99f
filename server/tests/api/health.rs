//! `/healthz` and `/readyz`.
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn healthz_answers_ok_as_json() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn readyz_is_ready_when_the_sqlite_database_answers() {
    let app = TestApp::spawn().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn readyz_is_unavailable_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.state.db.conn().close_by_ref().await.unwrap();
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"], "error");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn readyz_is_ready_on_postgres() {
    let app = TestApp::spawn_postgres().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    app.cleanup().await;
}

/// On a shutdown signal, `/readyz` answers 503 at once (the load balancer takes the instance out
/// of its pool) while requests are still served for the grace period; then the listener closes
/// and the usage counted meanwhile is flushed, with no flush interval having passed.
#[tokio::test]
async fn shutdown_leaves_the_pool_first_then_flushes_usage() {
    use crate::verify_support::{key, orders_key, verify, world};
    use domain::entities::usage_bucket;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use std::time::{Duration, Instant};

    let data_dir = tempfile::tempdir().unwrap();
    let config = server::Config {
        shutdown_grace_seconds: 3,
        usage_flush_seconds: 300,
        ..server::Config::for_data_dir(data_dir.path())
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = TestApp::spawn_until(config, data_dir, None, async {
        stopped.await.ok();
    })
    .await;
    let w = world(&app).await;
    let (key, id) = key(&app, &w.dev, orders_key()).await;
    for _ in 0..3 {
        assert_eq!(
            verify(&app, serde_json::json!({ "key": key })).await["code"],
            "VALID"
        );
    }
    assert_eq!(app.get("/readyz").await.status(), 200);

    stop.send(()).unwrap();
    let signalled = Instant::now();
    let mut readyz = app.get("/readyz").await;
    while readyz.status() == 200 && signalled.elapsed() < Duration::from_millis(500) {
        readyz = app.get("/readyz").await;
    }
    assert_eq!(readyz.status(), 503);
    assert_eq!(readyz.json::<Value>().await.unwrap()["status"], "draining");
    // Still serving during the grace period: a request on a new connection is answered.
    let fresh = TestApp::client_for(&app);
    let answer: Value = fresh
        .post(app.url("/v1/keys/verify"))
        .json(&serde_json::json!({ "key": key }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["code"], "VALID");
    assert!(signalled.elapsed() < Duration::from_secs(3));

    // Then the listener closes.
    let closed = loop {
        if TestApp::client_for(&app)
            .get(app.url("/healthz"))
            .send()
            .await
            .is_err()
        {
            break signalled.elapsed();
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "still listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(closed >= Duration::from_secs(3), "closed after {closed:?}");
    // And the four verifications are written by the flush at shutdown.
    let counted = || async {
        usage_bucket::Entity::find()
            .filter(usage_bucket::Column::KeyId.eq(id.as_str()))
            .all(app.state.db.conn())
            .await
            .unwrap()
            .iter()
            .filter(|b| b.code == "VALID" && b.width == 60)
            .map(|b| b.count)
            .sum::<i64>()
    };
    let mut n = counted().await;
    while n < 4 && signalled.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        n = counted().await;
    }
    assert_eq!(n, 4);
}

/// With `--metrics-addr`, Prometheus text on its own listener counts verifications by code,
/// requests by route and status, and the keys cached; the public listener has no `/metrics`.
#[tokio::test]
async fn metrics_count_verifications_and_requests_on_their_own_listener() {
    use crate::verify_support::{forward, key, orders_key, verify, world};

    let data_dir = tempfile::tempdir().unwrap();
    let config = server::Config {
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..server::Config::for_data_dir(data_dir.path())
    };
    let app = TestApp::spawn_with(config, data_dir, None).await;
    let w = world(&app).await;
    let (key, _) = key(&app, &w.dev, orders_key()).await;
    for _ in 0..3 {
        verify(&app, serde_json::json!({ "key": key })).await;
    }
    verify(&app, serde_json::json!({ "key": "kp_nothing" })).await;
    // A well-formed key that does not exist: looked up once, then answered from memory.
    let made_up = domain::keys::PlainKey::generate();
    for _ in 0..2 {
        verify(&app, serde_json::json!({ "key": made_up.expose() })).await;
    }
    assert_eq!(forward(&app, &key, &[]).await.status(), 200);
    app.get("/no/such/page/4711").await;

    assert_eq!(app.get("/metrics").await.status(), 404);
    let scrape = app
        .client
        .get(format!("{}/metrics", app.metrics_address.as_ref().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    assert!(
        scrape.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = scrape.text().await.unwrap();
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(r#"keyport_verifications_total{endpoint="verify",code="VALID"}"#),
        3.0
    );
    assert_eq!(
        value(r#"keyport_verifications_total{endpoint="verify",code="MALFORMED"}"#),
        1.0
    );
    assert_eq!(
        value(r#"keyport_verifications_total{endpoint="auth",code="VALID"}"#),
        1.0
    );
    assert_eq!(
        value(r#"keyport_verifications_total{endpoint="verify",code="NOT_FOUND"}"#),
        2.0
    );
    assert_eq!(value("keyport_negative_cache_hits_total "), 1.0);
    assert_eq!(value("keyport_change_feed_applied_total "), 0.0);
    assert_eq!(
        value(r#"keyport_verify_duration_seconds_count{endpoint="verify"}"#),
        6.0
    );
    assert_eq!(
        value(r#"keyport_http_requests_total{route="/v1/keys/verify",status="200"}"#),
        6.0
    );
    // A made-up path is one series, not one per path.
    assert!(!text.contains("/no/such/page"), "{text}");
    assert!(text.contains(r#"route="other",status="404""#), "{text}");
    assert_eq!(value("keyport_keys_cached "), 1.0);
}
