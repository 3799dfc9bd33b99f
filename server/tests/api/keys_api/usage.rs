//! The usage API over real HTTP (`GET /v1/keys/{id}/usage`, `GET /v1/usage`): counts after real
//! verifications, and the keys API's authorization rules (another user's key is 404; only admins
//! read other users' usage). A child of `keys_api`, whose world and helpers it shares.
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use super::*;

/// Verifies `key` through the real endpoint: `valid` good requests and `denied` asking for a
/// scope the key lacks. Then flushes the counters, as the background job does.
async fn traffic(app: &TestApp, key: &str, valid: usize, denied: usize) {
    for i in 0..valid + denied {
        let scopes = if i < valid {
            json!(["orders:read"])
        } else {
            json!(["orders:write"])
        };
        let r = app
            .client
            .post(app.url("/v1/keys/verify"))
            .json(&json!({ "key": key, "scopes": scopes }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    app.state.verifier.flush().await.unwrap();
}

fn total(series: &Value, code: &str) -> u64 {
    series["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets in {series}"))
        .iter()
        .map(|b| b["counts"][code].as_u64().unwrap_or(0))
        .sum()
}

fn q(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn key_usage_counts_verifications_by_outcome(app: &TestApp) {
    let w = world(app).await;
    let key = create_orders_key(app, &w.ada.token.bearer, "shop").await;
    let kid = id(&key);
    traffic(app, key["key"].as_str().unwrap(), 5, 2).await;

    // Default: the last 24 hours, by hour.
    let day = success(
        get_as(app, &w.ada.token.bearer, &format!("/v1/keys/{kid}/usage")).await,
        200,
    )
    .await;
    assert_eq!(day["granularity"], "hour");
    // Whole hours: 25 of them, unless now is exactly on the hour.
    let hours = day["buckets"].as_array().unwrap().len();
    assert!((24..=25).contains(&hours), "{day}");
    assert_eq!(total(&day, "VALID"), 5);
    assert_eq!(total(&day, "INSUFFICIENT_SCOPE"), 2);
    // Codes that did not occur are left out.
    assert!(
        day["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["counts"].get("RATE_LIMITED").is_none())
    );

    // The last hour by minute: the same counts in one minute bucket (or two, across a minute).
    let from = q(Utc::now() - Duration::hours(1));
    let hour = success(
        get_as(
            app,
            &w.ada.token.bearer,
            &format!("/v1/keys/{kid}/usage?from={from}&granularity=minute"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(hour["granularity"], "minute");
    assert!(hour["buckets"].as_array().unwrap().len() >= 60);
    assert_eq!(
        total(&hour, "VALID") + total(&hour, "INSUFFICIENT_SCOPE"),
        7,
        "from {from}: {hour} / day {day}"
    );

    // A range before the key existed is all zeros.
    let past = success(
        get_as(
            app,
            &w.ada.token.bearer,
            &format!(
                "/v1/keys/{kid}/usage?from={}&to={}",
                q(Utc::now() - Duration::days(30)),
                q(Utc::now() - Duration::days(20))
            ),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(past["granularity"], "day");
    assert_eq!(total(&past, "VALID"), 0);

    // All of Ada's keys; the admin reads hers by owner or by API. Management keys are verified
    // like any key, so their own calls count too: up to the flush in `traffic`, the admin
    // registered the API (one call) and Ada created her key (one call).
    let mine = success(get_as(app, &w.ada.token.bearer, "/v1/usage").await, 200).await;
    assert_eq!(total(&mine, "VALID"), 5 + 1);
    let admin_all = success(get_as(app, &w.admin.token.bearer, "/v1/usage").await, 200).await;
    assert_eq!(total(&admin_all, "VALID"), 5 + 2);
    let by_owner = success(
        get_as(
            app,
            &w.admin.token.bearer,
            &format!("/v1/usage?owner_id={}", w.ada.id),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(total(&by_owner, "INSUFFICIENT_SCOPE"), 2);
    let by_api = success(
        get_as(app, &w.admin.token.bearer, "/v1/usage?api=orders").await,
        200,
    )
    .await;
    assert_eq!(total(&by_api, "VALID"), 5);
    let other_api = success(
        get_as(app, &w.admin.token.bearer, "/v1/usage?api=keyport").await,
        200,
    )
    .await;
    assert_eq!(total(&other_api, "VALID"), 2, "the two management calls");
    let admin_key = success(
        get_as(app, &w.admin.token.bearer, &format!("/v1/keys/{kid}/usage")).await,
        200,
    )
    .await;
    assert_eq!(total(&admin_key, "VALID"), 5);
}

async fn usage_follows_the_keys_authorization_rules(app: &TestApp) {
    let w = world(app).await;
    let key = create_orders_key(app, &w.ada.token.bearer, "shop").await;
    let kid = id(&key);
    traffic(app, key["key"].as_str().unwrap(), 3, 0).await;

    // Bob cannot tell Ada's key from a key that does not exist.
    not_found(get_as(app, &w.bob.token.bearer, &format!("/v1/keys/{kid}/usage")).await).await;
    not_found(
        get_as(
            app,
            &w.bob.token.bearer,
            &format!("/v1/keys/{UNKNOWN_KEY}/usage"),
        )
        .await,
    )
    .await;
    // His own usage is his alone; other users' only for admins.
    let bobs = success(get_as(app, &w.bob.token.bearer, "/v1/usage").await, 200).await;
    assert_eq!(total(&bobs, "VALID"), 0);
    forbidden(
        get_as(
            app,
            &w.bob.token.bearer,
            &format!("/v1/usage?owner_id={}", w.ada.id),
        )
        .await,
    )
    .await;
    // A management key without `usage:read` cannot read usage.
    let narrow = keyport_key(app, &w.ada.actor, "narrow", &["keys:read"]).await;
    forbidden(get_as(app, &narrow.bearer, &format!("/v1/keys/{kid}/usage")).await).await;
    forbidden(get_as(app, &narrow.bearer, "/v1/usage").await).await;
    unauthorized(app.client.get(app.url("/v1/usage")).send().await.unwrap()).await;
}

async fn bad_usage_parameters_name_the_field(app: &TestApp) {
    let w = world(app).await;
    let key = create_orders_key(app, &w.ada.token.bearer, "shop").await;
    let kid = id(&key);
    let t = &w.ada.token.bearer;
    invalid(
        get_as(app, t, &format!("/v1/keys/{kid}/usage?granularity=week")).await,
        "granularity",
    )
    .await;
    invalid(
        get_as(app, t, &format!("/v1/keys/{kid}/usage?from=yesterday")).await,
        "from",
    )
    .await;
    invalid(
        get_as(
            app,
            t,
            "/v1/usage?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z",
        )
        .await,
        "from",
    )
    .await;
    // A year by minute is far too many buckets.
    invalid(
        get_as(
            app,
            t,
            "/v1/usage?from=2025-11-01T00:00:00Z&to=2026-11-01T00:00:00Z&granularity=minute",
        )
        .await,
        "granularity",
    )
    .await;
    invalid(
        get_as(app, &w.admin.token.bearer, "/v1/usage?api=nope").await,
        "api",
    )
    .await;
}

on_both_databases!(
    key_usage_counts_verifications_by_outcome,
    usage_follows_the_keys_authorization_rules,
    bad_usage_parameters_name_the_field,
);
