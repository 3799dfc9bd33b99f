//! Verification that succeeds: the full answer, forward-auth headers, deprecated versions.
use serde_json::json;

use crate::{helpers::TestApp, verify_support::*};

async fn a_valid_key_answers_everything_a_gateway_needs(app: &TestApp) {
    let w = world(app).await;
    let (key, id) = key(app, &w.dev, limited(Some((5, 1)), Some(100))).await;
    let body = verify(app, json!({ "key": key, "api": "orders", "scopes": ["orders:read"], "ip": "203.0.113.7", "version": "v2" })).await;
    assert_eq!(body["valid"], true);
    assert_eq!(body["code"], "VALID");
    assert_eq!(body["key_id"], id);
    assert_eq!(body["owner_id"], w.dev.user_id);
    assert_eq!(body["api"], "orders");
    assert_eq!(body["scopes"], json!(["orders:read"]));
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["ratelimit"]["limit"], 5);
    assert_eq!(body["ratelimit"]["remaining"], 4);
    assert_eq!(body["quota"]["limit"], 100);
    assert_eq!(body["quota"]["remaining"], 99);
    assert_eq!(body["quota"]["period"], "day");
    assert!(body["deprecation"].is_null());

    let response = forward(
        app,
        &key,
        &[
            ("x-keyport-api", "orders"),
            ("x-keyport-scopes", "orders:read"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let h = response.headers();
    assert_eq!(h["x-keyport-key-id"], id.as_str());
    assert_eq!(h["x-keyport-owner-id"], w.dev.user_id.as_str());
    assert_eq!(h["ratelimit-limit"], "5");
    assert_eq!(h["ratelimit-remaining"], "3");
    assert!(h.contains_key("ratelimit-reset"));
    assert!(!h.contains_key("x-keyport-code"));
    // X-API-Key works too, with any method, under any path below /v1/auth (Envoy appends it).
    let response = app
        .client
        .post(app.url("/v1/auth/orders/42"))
        .header("x-api-key", &key)
        .header("x-keyport-api", "orders")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn a_deprecated_version_is_valid_with_a_warning(app: &TestApp) {
    let w = world(app).await;
    let (key, _) = key(app, &w.dev, orders_key()).await;
    let body = verify(app, json!({ "key": key, "version": "v1" })).await;
    assert_eq!(body["code"], "VALID");
    assert_eq!(body["deprecation"]["version"], "v1");
    assert!(body["deprecation"]["sunset_at"].is_string());
    let response = forward(app, &key, &[("x-keyport-version", "v1")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["deprecation"], "true");
    assert!(response.headers().contains_key("sunset"));
}

async fn bad_requests_get_clear_errors(app: &TestApp) {
    world(app).await;
    let post = |body: String, content_type: &'static str| {
        app.client
            .post(app.url("/v1/keys/verify"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let r = post("not json".into(), "application/json").await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    let r = post(r#"{"api":"orders"}"#.into(), "application/json")
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a missing key is a bad request");
    let r = post(
        format!(r#"{{"key":"{}"}}"#, "x".repeat(17 * 1024)),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    let r = post(
        r#"{"key":"kp_x","ip":"not an ip"}"#.into(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    // A cost outside 1..=1,000,000 (the documented range) is refused, not wrapped or clamped.
    for cost in ["0", "1000001", "2147483648", "-1"] {
        let r = post(
            format!(r#"{{"key":"kp_x","cost":{cost}}}"#),
            "application/json",
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 422, "cost {cost}");
    }
    // No key at the gateway: 401 with a code.
    let r = app.client.get(app.url("/v1/auth")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-keyport-code"], "MISSING_KEY");
    assert!(r.headers().contains_key("www-authenticate"));
}

on_both_databases!(
    a_valid_key_answers_everything_a_gateway_needs,
    a_deprecated_version_is_valid_with_a_warning,
    bad_requests_get_clear_errors,
);

/// Forward auth fails closed: a gateway route that forgot `X-Keyport-Api` gets 401
/// `MISSING_API` for a perfectly valid key (otherwise any API's keys would open it), unless the
/// operator names a default API with `--auth-default-api`, which then applies to such requests.
#[tokio::test]
async fn forward_auth_without_an_api_fails_closed() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let (orders, _) = key(&app, &w.dev, orders_key()).await;
    let bare = |app: &TestApp, key: &str| {
        app.client
            .get(app.url("/v1/auth"))
            .header("authorization", format!("Bearer {key}"))
            .send()
    };
    let r = bare(&app, &orders).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-keyport-code"], "MISSING_API");
    assert_eq!(forward(&app, &orders, &[]).await.status(), 200);
    app.cleanup().await;

    let data_dir = tempfile::tempdir().unwrap();
    let config = server::Config {
        auth_default_api: Some("orders".into()),
        ..server::Config::for_data_dir(data_dir.path())
    };
    let app = TestApp::spawn_with(config, data_dir, None).await;
    let w = world(&app).await;
    let (orders, _) = key(&app, &w.dev, orders_key()).await;
    assert_eq!(bare(&app, &orders).await.unwrap().status(), 200);
    // The default is one API, not "any API": another API's key is still refused.
    let (management, _) = key(
        &app,
        &w.dev,
        domain::keys::NewKey {
            name: "management".into(),
            api: "keyport".into(),
            scopes: vec!["keys:read".into()],
            expires_at: Some(chrono::Utc::now() + chrono::Duration::days(1)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        forward(&app, &management, &[("x-keyport-api", "keyport")])
            .await
            .status(),
        200
    );
    assert_eq!(bare(&app, &management).await.unwrap().status(), 401);
    app.cleanup().await;
}

/// With `--verify-requires-token`, only a caller holding a `keyport` key with the `verify`
/// scope may verify: anyone else holding a key cannot spend its limits through Keyport.
#[tokio::test]
async fn verification_can_require_a_callers_token() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = server::Config {
        verify_requires_token: true,
        ..server::Config::for_data_dir(data_dir.path())
    };
    let app = TestApp::spawn_with(config, data_dir, None).await;
    let w = world(&app).await;
    let (orders, _) = key(&app, &w.dev, orders_key()).await;
    let management = |scopes: &[&str]| domain::keys::NewKey {
        name: "gateway".into(),
        api: "keyport".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        expires_at: Some(chrono::Utc::now() + chrono::Duration::days(1)),
        ..Default::default()
    };
    let (gateway, _) = key(&app, &w.admin, management(&["verify"])).await;
    let (reader, _) = key(&app, &w.dev, management(&["keys:read"])).await;

    let verify_with = |token: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/v1/keys/verify"))
            .json(&json!({ "key": orders, "api": "orders" }));
        if let Some(token) = token {
            request = request.header("x-keyport-token", token);
        }
        request.send()
    };
    for token in [
        None,
        Some(orders.as_str()),
        Some(reader.as_str()),
        Some("kp_nope"),
    ] {
        let r = verify_with(token).await.unwrap();
        assert_eq!(r.status(), 401, "token {token:?}");
    }
    let r = verify_with(Some(&gateway)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "VALID"
    );
    let r = app
        .client
        .post(app.url("/v1/keys/verify"))
        .bearer_auth(&gateway)
        .json(&json!({ "key": orders }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the JSON endpoint takes the token as a bearer too"
    );

    // Forward auth: the client's own Authorization passes through; the gateway's token rides in
    // X-Keyport-Token.
    let r = forward(&app, &orders, &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-keyport-code"], "MISSING_TOKEN");
    let r = forward(&app, &orders, &[("x-keyport-token", reader.as_str())]).await;
    assert_eq!(r.headers()["x-keyport-code"], "INVALID_TOKEN");
    let r = forward(&app, &orders, &[("x-keyport-token", gateway.as_str())]).await;
    assert_eq!(r.status(), 200);
    app.cleanup().await;
}
