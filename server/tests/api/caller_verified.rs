//! Management API callers go through the verifier: a `keyport` key's IP allowlist, rate limit
//! and quota hold on `/v1` as they do on `/v1/auth`, its calls count as its usage, and a revoked
//! or unknown key is refused from memory.
use chrono::{Duration, Utc};
use domain::{
    accounts::User,
    audit::RequestContext,
    catalog::{Quota, QuotaPeriod, RateLimit},
    keys::{NewKey, PlainKey},
    service::Actor,
    usage::Range,
    verification::Code,
};
use reqwest::Response;

use crate::helpers::TestApp;

const PASSWORD: &str = "glacier lantern pepper";

async fn developer(app: &TestApp) -> (User, Actor) {
    let user = app
        .state
        .accounts
        .sign_up("dev@example.com", PASSWORD, &Default::default())
        .await
        .unwrap();
    let actor = Actor::new(user.id.clone(), false, RequestContext::default());
    (user, actor)
}

/// A `keyport` key with `keys:read`; returns (plaintext, id).
async fn management_key(app: &TestApp, actor: &Actor, new: NewKey) -> (String, String) {
    let created = app
        .state
        .keys
        .create(
            actor,
            NewKey {
                name: "ci".into(),
                api: "keyport".into(),
                scopes: vec!["keys:read".into()],
                expires_at: Some(Utc::now() + Duration::days(30)),
                ..new
            },
        )
        .await
        .unwrap();
    (created.plaintext.expose().to_owned(), created.key.id)
}

async fn call(app: &TestApp, bearer: &str, forwarded_for: Option<&str>) -> Response {
    let mut request = app.client.get(app.url("/v1/keys")).bearer_auth(bearer);
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

async fn error_code(response: Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn the_ip_allowlist_holds_on_the_management_api(app: &TestApp) {
    let (_, dev) = developer(app).await;
    let (bearer, _) = management_key(
        app,
        &dev,
        NewKey {
            ip_allowlist: vec!["10.0.0.0/8".into()],
            ..Default::default()
        },
    )
    .await;
    let outside = call(app, &bearer, None).await;
    assert_eq!(outside.status(), 403, "called from 127.0.0.1, outside 10/8");
    assert_eq!(error_code(outside).await, "forbidden");
    let spoofed = call(app, &bearer, Some("192.0.2.1")).await;
    assert_eq!(spoofed.status(), 403);
    // The test client is a trusted proxy (loopback): the forwarded client is inside the list.
    assert_eq!(call(app, &bearer, Some("10.1.2.3")).await.status(), 200);
}

async fn the_rate_limit_holds_with_retry_after(app: &TestApp) {
    let (_, dev) = developer(app).await;
    let (bearer, _) = management_key(
        app,
        &dev,
        NewKey {
            rate_limit: Some(RateLimit {
                limit: 2,
                period_s: 60,
            }),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(call(app, &bearer, None).await.status(), 200);
    assert_eq!(call(app, &bearer, None).await.status(), 200);
    let limited = call(app, &bearer, None).await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    assert_eq!(error_code(limited).await, "rate_limited");
    // Another key of the same developer has its own limit.
    let (other, _) = management_key(app, &dev, NewKey::default()).await;
    assert_eq!(call(app, &other, None).await.status(), 200);
}

async fn the_quota_holds_and_calls_count_as_usage(app: &TestApp) {
    let (_, dev) = developer(app).await;
    let (bearer, id) = management_key(
        app,
        &dev,
        NewKey {
            quota: Some(Quota {
                limit: 3,
                period: QuotaPeriod::Day,
            }),
            ..Default::default()
        },
    )
    .await;
    for _ in 0..3 {
        assert_eq!(call(app, &bearer, None).await.status(), 200);
    }
    let over = call(app, &bearer, None).await;
    assert_eq!(over.status(), 429);
    assert!(over.headers().contains_key("retry-after"));
    let quota = app.state.verifier.quota_use(&id, Utc::now()).unwrap();
    assert_eq!((quota.limit, quota.remaining), (3, 0));
    // Every call is in the key's usage: three VALID, one QUOTA_EXCEEDED.
    app.state.verifier.flush().await.unwrap();
    let series = app
        .state
        .usage
        .key_series(&dev, &id, Range::last(3600, Utc::now()))
        .await
        .unwrap();
    let totals = series.totals();
    assert_eq!(totals.get(&Code::Valid), Some(&3));
    assert_eq!(totals.get(&Code::QuotaExceeded), Some(&1));
}

async fn revoked_unknown_and_foreign_keys_are_refused(app: &TestApp) {
    let (_, dev) = developer(app).await;
    let (bearer, id) = management_key(app, &dev, NewKey::default()).await;
    assert_eq!(call(app, &bearer, None).await.status(), 200);
    app.state
        .keys
        .revoke(&dev, &id, Some("test"))
        .await
        .unwrap();
    let revoked = call(app, &bearer, None).await;
    assert_eq!(revoked.status(), 401);
    assert!(revoked.headers().contains_key("www-authenticate"));
    // Well formed, right checksum, no such key.
    let unknown = PlainKey::generate();
    for _ in 0..3 {
        assert_eq!(call(app, unknown.expose(), None).await.status(), 401);
    }
    // A key of another API is no management key.
    let admin = app
        .state
        .accounts
        .create_admin("root@example.com", PASSWORD)
        .await
        .unwrap();
    let admin = Actor::new(admin.id, true, RequestContext::default());
    let other_api = app
        .state
        .keys
        .catalog()
        .create_api(
            &admin,
            domain::catalog::NewApi {
                slug: "orders".into(),
                name: "Orders".into(),
                scopes: vec![domain::catalog::Scope {
                    name: "orders:read".into(),
                    description: String::new(),
                }],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let foreign = app
        .state
        .keys
        .create(
            &dev,
            NewKey {
                name: "orders".into(),
                api: other_api.slug,
                scopes: vec!["orders:read".into()],
                expires_at: Some(Utc::now() + Duration::days(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        call(app, foreign.plaintext.expose(), None).await.status(),
        401
    );
}

on_both_databases!(
    the_ip_allowlist_holds_on_the_management_api,
    the_rate_limit_holds_with_retry_after,
    the_quota_holds_and_calls_count_as_usage,
    revoked_unknown_and_foreign_keys_are_refused,
);
