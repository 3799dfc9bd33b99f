//! Shared set-up for the verification tests: an `orders` API with versions, a developer, keys
//! created through the real service, and one call that asks both endpoints.
use chrono::{Duration, Utc};
use domain::{
    catalog::{NewApi, Quota, QuotaPeriod, RateLimit, Scope, Version, VersionStatus},
    keys::NewKey,
    service::Actor,
};
use serde_json::{Value, json};

use crate::helpers::TestApp;

pub struct World {
    pub admin: Actor,
    pub dev: Actor,
}

pub async fn world(app: &TestApp) -> World {
    let admin = app
        .state
        .accounts
        .create_admin("root@example.com", "glacier lantern pepper")
        .await
        .unwrap();
    let dev = app
        .state
        .accounts
        .sign_up(
            "dev@example.com",
            "glacier lantern pepper",
            &Default::default(),
        )
        .await
        .unwrap();
    let admin = Actor::new(admin.id, true, Default::default());
    app.state
        .keys
        .catalog()
        .create_api(
            &admin,
            NewApi {
                slug: "orders".into(),
                name: "Orders".into(),
                description: String::new(),
                scopes: vec![
                    Scope {
                        name: "orders:read".into(),
                        description: String::new(),
                    },
                    Scope {
                        name: "orders:write".into(),
                        description: String::new(),
                    },
                ],
                versions: vec![
                    Version {
                        name: "v2".into(),
                        status: VersionStatus::Active,
                        sunset_at: None,
                    },
                    Version {
                        name: "v1".into(),
                        status: VersionStatus::Deprecated,
                        sunset_at: Some(Utc::now() + Duration::days(90)),
                    },
                    Version {
                        name: "v0".into(),
                        status: VersionStatus::Retired,
                        sunset_at: None,
                    },
                ],
            },
        )
        .await
        .unwrap();
    World {
        admin,
        dev: Actor::new(dev.id, false, Default::default()),
    }
}

pub fn orders_key() -> NewKey {
    NewKey {
        name: "test".into(),
        api: "orders".into(),
        scopes: vec!["orders:read".into()],
        expires_at: Some(Utc::now() + Duration::days(30)),
        ..Default::default()
    }
}

pub fn limited(rate: Option<(u32, u32)>, quota: Option<u64>) -> NewKey {
    NewKey {
        rate_limit: rate.map(|(limit, period_s)| RateLimit { limit, period_s }),
        quota: quota.map(|limit| Quota {
            limit,
            period: QuotaPeriod::Day,
        }),
        ..orders_key()
    }
}

/// Creates a key for `actor`; returns (plaintext, key id).
pub async fn key(app: &TestApp, actor: &Actor, new: NewKey) -> (String, String) {
    let created = app.state.keys.create(actor, new).await.unwrap();
    (created.plaintext.expose().to_owned(), created.key.id)
}

pub async fn verify(app: &TestApp, body: Value) -> Value {
    let response = app
        .client
        .post(app.url("/v1/keys/verify"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "verify answers 200 for a well-formed request"
    );
    response.json().await.unwrap()
}

/// `/v1/auth` with the key as a bearer token and optional Keyport headers.
pub async fn forward(app: &TestApp, key: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app
        .client
        .get(app.url("/v1/auth"))
        .header("authorization", format!("Bearer {key}"));
    // The tests' keys are of the orders API unless a test names another.
    if !headers.iter().any(|(name, _)| *name == "x-keyport-api") {
        request = request.header("x-keyport-api", "orders");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Asks both endpoints the same question; returns verify's code and forward auth's
/// (status, X-Keyport-Code).
pub async fn both(
    app: &TestApp,
    key: &str,
    api: Option<&str>,
    scopes: &[&str],
    version: Option<&str>,
) -> (String, u16, String) {
    let mut body = json!({ "key": key, "scopes": scopes, "ip": "127.0.0.1" });
    let mut headers = vec![];
    if let Some(api) = api {
        body["api"] = json!(api);
        headers.push(("x-keyport-api", api.to_owned()));
    }
    if let Some(v) = version {
        body["version"] = json!(v);
        headers.push(("x-keyport-version", v.to_owned()));
    }
    if !scopes.is_empty() {
        headers.push(("x-keyport-scopes", scopes.join(",")));
    }
    let code = verify(app, body).await["code"].as_str().unwrap().to_owned();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let response = forward(app, key, &headers).await;
    let status = response.status().as_u16();
    let auth_code = response
        .headers()
        .get("x-keyport-code")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_else(|| "VALID".into());
    (code, status, auth_code)
}
