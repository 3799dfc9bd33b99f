//! Rate limits and quotas (429 at the gateway), and the usage counters behind the charts.
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::{helpers::TestApp, verify_support::*};

async fn rate_limited_keys_get_429_with_retry_after(app: &TestApp) {
    let w = world(app).await;
    // 2 requests a minute (burst 2).
    let (k, id) = key(app, &w.dev, limited(Some((2, 60)), None)).await;
    let now = chrono::Utc::now;
    // Before any request the whole burst is available, as the key's page says.
    assert_eq!(
        app.state.verifier.rate_use(&id, now()).unwrap().remaining,
        2
    );
    assert_eq!(
        verify(app, json!({ "key": k })).await["ratelimit"]["remaining"],
        1
    );
    assert_eq!(
        app.state.verifier.rate_use(&id, now()).unwrap().remaining,
        1
    );
    // One cell refills every 30 s.
    assert_eq!(
        app.state
            .verifier
            .rate_use(&id, now() + chrono::Duration::seconds(31))
            .unwrap()
            .remaining,
        2
    );
    assert_eq!(
        verify(app, json!({ "key": k })).await["ratelimit"]["remaining"],
        0
    );
    let body = verify(app, json!({ "key": k })).await;
    assert_eq!(body["code"], "RATE_LIMITED");
    assert_eq!(body["valid"], false);
    let r = forward(app, &k, &[]).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-keyport-code"], "RATE_LIMITED");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    let used_up = app.state.verifier.rate_use(&id, now()).unwrap();
    assert_eq!((used_up.remaining, used_up.limit), (0, 2));
    // The plan's daily quota counted the two valid requests only.
    let quota = app.state.verifier.quota_use(&id, now()).unwrap();
    assert_eq!((quota.remaining, quota.limit), (9_998, 10_000));
}

async fn failed_checks_use_no_rate_limit_or_quota(app: &TestApp) {
    let w = world(app).await;
    let (k, _) = key(app, &w.dev, limited(Some((2, 60)), Some(2))).await;
    for _ in 0..5 {
        let body = verify(app, json!({ "key": k, "scopes": ["orders:write"] })).await;
        assert_eq!(body["code"], "INSUFFICIENT_SCOPE");
    }
    assert_eq!(verify(app, json!({ "key": k })).await["code"], "VALID");
    assert_eq!(verify(app, json!({ "key": k })).await["code"], "VALID");
}

async fn quotas_count_cost_and_refuse_beyond_the_limit(app: &TestApp) {
    let w = world(app).await;
    let (k, _) = key(app, &w.dev, limited(None, Some(5))).await;
    let body = verify(app, json!({ "key": k, "cost": 3 })).await;
    assert_eq!(body["quota"]["remaining"], 2);
    let body = verify(app, json!({ "key": k, "cost": 3 })).await;
    assert_eq!(body["code"], "QUOTA_EXCEEDED", "3 more would exceed 5");
    assert_eq!(body["quota"]["remaining"], 2);
    assert_eq!(
        verify(app, json!({ "key": k, "cost": 2 })).await["code"],
        "VALID"
    );
    let r = forward(app, &k, &[]).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-keyport-code"], "QUOTA_EXCEEDED");
    assert!(r.headers().contains_key("retry-after"));
}

async fn usage_counts_are_flushed_exactly(app: &TestApp) {
    let w = world(app).await;
    // The plan's 10 requests a second with a burst of 20: the 15 valid ones below all pass.
    let (k, id) = key(app, &w.dev, orders_key()).await;
    app.state.verifier.flush().await.unwrap();
    for _ in 0..12 {
        verify(app, json!({ "key": k })).await;
    }
    for _ in 0..7 {
        verify(app, json!({ "key": k, "scopes": ["orders:write"] })).await;
    }
    for _ in 0..3 {
        forward(app, &k, &[]).await;
    }
    let flushed = app.state.verifier.flush().await.unwrap();
    assert_eq!(flushed, 22);
    let rows = app
        .state
        .db
        .conn()
        .query_all_raw(Statement::from_string(
            app.state.db.conn().get_database_backend(),
            format!("SELECT code, CAST(SUM(count) AS BIGINT) AS n FROM usage_buckets WHERE key_id = '{id}' AND width = 60 GROUP BY code ORDER BY code"),
        ))
        .await
        .unwrap();
    let counts: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (r.try_get("", "code").unwrap(), r.try_get("", "n").unwrap()))
        .collect();
    assert_eq!(
        counts,
        [
            ("INSUFFICIENT_SCOPE".to_owned(), 7),
            ("VALID".to_owned(), 15)
        ]
    );
    // A second flush adds nothing; last_used_at moved.
    assert_eq!(app.state.verifier.flush().await.unwrap(), 0);
    let key = app.state.keys.get(&w.dev, &id).await.unwrap();
    assert!(key.last_used_at.is_some());
}

on_both_databases!(
    rate_limited_keys_get_429_with_retry_after,
    failed_checks_use_no_rate_limit_or_quota,
    quotas_count_cost_and_refuse_beyond_the_limit,
    usage_counts_are_flushed_exactly,
);

/// Quota use survives a restart (up to the last flush).
#[tokio::test]
async fn a_restart_keeps_quota_use() {
    let data_dir = tempfile::tempdir().unwrap();
    let path = data_dir.path().to_owned();
    let app = TestApp::spawn_with(server::Config::for_data_dir(&path), data_dir, None).await;
    let w = world(&app).await;
    let (k, _) = key(&app, &w.dev, limited(None, Some(3))).await;
    verify(&app, json!({ "key": k })).await;
    verify(&app, json!({ "key": k })).await;
    app.state.verifier.flush().await.unwrap();

    // A second process on the same database starts from the stored use.
    let again = TestApp::spawn_with(
        server::Config::for_data_dir(&path),
        tempfile::tempdir().unwrap(),
        None,
    )
    .await;
    let body = verify(&again, json!({ "key": k })).await;
    assert_eq!(body["code"], "VALID");
    assert_eq!(body["quota"]["remaining"], 0);
    assert_eq!(
        verify(&again, json!({ "key": k })).await["code"],
        "QUOTA_EXCEEDED"
    );
}

/// With `--redis-failure closed`, a key with limits is refused with 503 (and Retry-After) while
/// Redis cannot be asked, on the JSON endpoint and in forward auth alike; nothing is counted as
/// the key's use.
#[tokio::test]
async fn failing_closed_answers_503_while_limits_cannot_be_checked() {
    let nowhere = crate::helpers::free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let config = server::Config {
        redis_url: Some(format!("redis://127.0.0.1:{nowhere}")),
        redis_failure: "closed".into(),
        ..server::Config::for_data_dir(dir.path())
    };
    let app = TestApp::spawn_with(config, dir, None).await;
    let w = world(&app).await;
    let (k, id) = key(&app, &w.dev, limited(Some((100, 60)), None)).await;
    let response = app
        .client
        .post(app.url("/v1/keys/verify"))
        .json(&json!({ "key": k }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "limits_unavailable", "{body}");
    let response = app
        .client
        .get(app.url("/v1/auth"))
        .bearer_auth(&k)
        .header("x-keyport-api", "orders")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-keyport-code"], "LIMITS_UNAVAILABLE");
    app.state.verifier.flush().await.unwrap();
    let counted = {
        use domain::entities::usage_bucket;
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        usage_bucket::Entity::find()
            .filter(usage_bucket::Column::KeyId.eq(id))
            .count(app.state.db.conn())
            .await
            .unwrap()
    };
    assert_eq!(
        counted, 0,
        "a refusal for want of Redis is not the key's use"
    );
    app.cleanup().await;
}
