//! The management REST API under `/v1` over real HTTP, grouped by outcome: who may call it at all
//! (401), what a key may do (403), whose keys a caller can see (404, never 403, for another user's
//! key), clashes with the current state (409), refused input (422 naming the field; 400 for a body
//! that is not JSON), and the happy paths. Covers broken object level authorization (another
//! user's key), broken function level authorization (admin endpoints; an admin's key without the
//! `admin` scope) and broken object property level authorization (fields a caller may not set).
//! Each scenario runs on SQLite and, when configured, on PostgreSQL.
use chrono::{DateTime, Duration, Utc};
use domain::{
    accounts::{Status, User},
    audit::RequestContext,
    keys::{KeyPatch, NewKey, PlainKey, format::hash_hex},
    service::Actor,
};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::TestApp;

#[path = "usage_api.rs"]
mod usage_api;
use usage_api::*;

const PASSWORD: &str = "glacier lantern pepper";
/// The scopes of a developer's management key in these tests.
const DEVELOPER_SCOPES: [&str; 4] = ["keys:read", "keys:write", "audit:read", "usage:read"];
/// A well-formed key id that no key has.
const UNKNOWN_KEY: &str = "key_00000000000000000000";

// --- Setup ---------------------------------------------------------------------------------------

/// A key of the built-in `keyport` API: its id, and its plaintext to send as the bearer token.
struct Token {
    id: String,
    bearer: String,
}

struct Person {
    id: String,
    email: String,
    actor: Actor,
    /// A management key: scope `admin` for the admin, [`DEVELOPER_SCOPES`] for developers.
    token: Token,
}

struct World {
    admin: Person,
    ada: Person,
    bob: Person,
}

/// Creates a `keyport` key for `actor` through the domain, valid for 30 days.
async fn keyport_key(app: &TestApp, actor: &Actor, name: &str, scopes: &[&str]) -> Token {
    let created = app
        .state
        .keys
        .create(
            actor,
            NewKey {
                name: name.into(),
                api: "keyport".into(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                expires_at: Some(Utc::now() + Duration::days(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    Token {
        id: created.key.id,
        bearer: created.plaintext.expose().to_owned(),
    }
}

async fn person(app: &TestApp, user: User, is_admin: bool) -> Person {
    let actor = Actor::new(user.id.clone(), is_admin, RequestContext::default());
    let scopes: &[&str] = if is_admin {
        &["admin"]
    } else {
        &DEVELOPER_SCOPES
    };
    let token = keyport_key(app, &actor, "management", scopes).await;
    Person {
        id: user.id,
        email: user.email,
        actor,
        token,
    }
}

/// The `POST /v1/apis` body of the `orders` API.
fn orders_api() -> Value {
    json!({
        "slug": "orders",
        "name": "Orders",
        "description": "Orders of the shop",
        "scopes": [
            { "name": "orders:read", "description": "Read orders" },
            { "name": "orders:write", "description": "Change orders" },
        ],
        "versions": [{ "name": "v1", "status": "active" }],
    })
}

/// An admin and two developers, Ada and Bob, each with a management key; and the `orders` API,
/// registered by the admin through the REST API.
async fn world(app: &TestApp) -> World {
    let accounts = &app.state.accounts;
    let ctx = RequestContext::default();
    let admin = accounts
        .create_admin("root@example.com", PASSWORD)
        .await
        .unwrap();
    let ada = accounts
        .sign_up("ada@example.com", PASSWORD, &ctx)
        .await
        .unwrap();
    let bob = accounts
        .sign_up("bob@example.com", PASSWORD, &ctx)
        .await
        .unwrap();
    let w = World {
        admin: person(app, admin, true).await,
        ada: person(app, ada, false).await,
        bob: person(app, bob, false).await,
    };
    let orders = success(
        post_as(app, &w.admin.token.bearer, "/v1/apis", &orders_api()).await,
        201,
    )
    .await;
    assert_eq!(orders["slug"], "orders");
    w
}

// --- Requests and answers ------------------------------------------------------------------------

/// Sends a request as a well-behaved client: a management key has its plan's rate limit
/// (10 a second, burst 20, on the default plan), so a 429 is retried after its `Retry-After`.
/// The limit itself is tested in `caller_verified.rs`.
async fn send(request: reqwest::RequestBuilder) -> Response {
    for _ in 0..5 {
        let retry = request
            .try_clone()
            .expect("a request without a streaming body");
        let response = retry.send().await.expect("request sent");
        if response.status() != 429 {
            return response;
        }
        let wait: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&wait), "Retry-After {wait}");
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
    panic!("still rate limited after five retries");
}

async fn get_as(app: &TestApp, token: &str, path: &str) -> Response {
    send(app.client.get(app.url(path)).bearer_auth(token)).await
}

async fn post_as(app: &TestApp, token: &str, path: &str, body: &Value) -> Response {
    send(app.client.post(app.url(path)).bearer_auth(token).json(body)).await
}

async fn patch_as(app: &TestApp, token: &str, path: &str, body: &Value) -> Response {
    send(
        app.client
            .patch(app.url(path))
            .bearer_auth(token)
            .json(body),
    )
    .await
}

/// A request with a raw body, and a `Content-Type` when given.
async fn send_raw(
    app: &TestApp,
    method: Method,
    token: &str,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    send(request).await
}

/// The status and the body, as JSON when it is JSON (else as a JSON string, for messages).
async fn read(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Asserts the status of a successful answer and returns its body.
async fn success(response: Response, status: u16) -> Value {
    let (actual, body) = read(response).await;
    assert_eq!(actual, status, "{body}");
    body
}

/// Asserts an error answer in the API's shape, `{"error": {"code", "message", "fields"?}}`.
async fn failure(response: Response, status: u16, code: &str) -> Value {
    let (actual, body) = read(response).await;
    assert_eq!(actual, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// A 401 also challenges the client to authenticate with a bearer token.
async fn unauthorized(response: Response) {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    failure(response, 401, "unauthorized").await;
    assert!(
        challenge
            .as_deref()
            .is_some_and(|c| c.starts_with("Bearer")),
        "WWW-Authenticate: {challenge:?}"
    );
}

async fn forbidden(response: Response) -> Value {
    failure(response, 403, "forbidden").await
}

async fn not_found(response: Response) -> Value {
    failure(response, 404, "not_found").await
}

async fn conflict(response: Response) -> Value {
    failure(response, 409, "conflict").await
}

async fn bad_request(response: Response) -> Value {
    failure(response, 400, "bad_request").await
}

/// A 422 whose `error.fields` names `field`.
async fn invalid(response: Response, field: &str) -> Value {
    let body = failure(response, 422, "validation_failed").await;
    assert!(
        body["error"]["fields"][field].is_string(),
        "expected an error on {field}: {body}"
    );
    body
}

// --- Bodies and results --------------------------------------------------------------------------

/// RFC 3339, `days` from now.
fn in_days(days: i64) -> String {
    (Utc::now() + Duration::days(days)).to_rfc3339()
}

/// A valid `POST /v1/keys` body: an `orders` key that reads orders, for 30 days.
fn orders_key(name: &str) -> Value {
    json!({
        "name": name,
        "api": "orders",
        "scopes": ["orders:read"],
        "expires_at": in_days(30),
    })
}

/// `body` with `field` set to `value`.
fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

fn id(object: &Value) -> String {
    object["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {object}"))
        .to_owned()
}

/// One string field of each item.
fn strs<'a>(items: &'a [Value], field: &str) -> Vec<&'a str> {
    items
        .iter()
        .map(|item| item[field].as_str().unwrap_or_default())
        .collect()
}

async fn create_orders_key(app: &TestApp, token: &str, name: &str) -> Value {
    success(
        post_as(app, token, "/v1/keys", &orders_key(name)).await,
        201,
    )
    .await
}

/// The `keys` of a `GET /v1/keys` answer.
async fn key_list(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let page = success(get_as(app, token, path).await, 200).await;
    page["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no keys in {page}"))
        .clone()
}

/// The `events` of a `GET /v1/audit` answer.
async fn audit_events(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let page = success(get_as(app, token, path).await, 200).await;
    page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {page}"))
        .clone()
}

/// A key as the API shows it: no field named like a hash, and the key's SHA-256 nowhere in it.
fn assert_no_hash(key: &Value, plaintext: &str) {
    let object = key
        .as_object()
        .unwrap_or_else(|| panic!("not a key: {key}"));
    assert!(!object.keys().any(|k| k.contains("hash")), "{key}");
    assert!(!key.to_string().contains(&hash_hex(plaintext)), "{key}");
}

// --- 200 and 201: the happy paths ----------------------------------------------------------------

async fn me_describes_the_caller(app: &TestApp) {
    let w = world(app).await;
    let me = success(get_as(app, &w.ada.token.bearer, "/v1/me").await, 200).await;
    assert_eq!(
        me,
        json!({ "id": w.ada.id, "email": w.ada.email, "role": "developer" })
    );
    assert_eq!(w.ada.email, "ada@example.com");
    let me = success(get_as(app, &w.admin.token.bearer, "/v1/me").await, 200).await;
    assert_eq!(me["id"], w.admin.id.as_str());
    assert_eq!(me["role"], "admin");
}

async fn the_openapi_document_describes_the_api(app: &TestApp) {
    // The documentation needs no key.
    let response = app.get("/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = response.json().await.unwrap();
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "openapi: {version}");
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/v1/me",
        "/v1/apis",
        "/v1/apis/{slug}",
        "/v1/keys",
        "/v1/keys/{id}",
        "/v1/keys/{id}/rotate",
        "/v1/keys/{id}/revoke",
        "/v1/audit",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "{}",
        doc["components"]
    );
}

async fn admins_register_apis_and_everyone_reads_the_catalog(app: &TestApp) {
    let w = world(app).await;
    let billing = json!({
        "slug": "billing",
        "name": "Billing",
        "scopes": [{ "name": "invoices:read" }],
    });
    let created = success(
        post_as(app, &w.admin.token.bearer, "/v1/apis", &billing).await,
        201,
    )
    .await;
    assert_eq!(created["slug"], "billing");
    assert_eq!(created["built_in"], false);
    assert_eq!(created["scopes"][0]["name"], "invoices:read");

    let ada = &w.ada.token.bearer;
    let apis = success(get_as(app, ada, "/v1/apis").await, 200).await;
    let slugs = strs(apis["apis"].as_array().expect("apis"), "slug");
    for slug in ["keyport", "orders", "billing"] {
        assert!(slugs.contains(&slug), "{slugs:?}");
    }
    let orders = success(get_as(app, ada, "/v1/apis/orders").await, 200).await;
    assert_eq!(orders["name"], "Orders");
    assert_eq!(orders["built_in"], false);
    assert_eq!(
        strs(orders["scopes"].as_array().expect("scopes"), "name"),
        ["orders:read", "orders:write"]
    );
    assert_eq!(orders["versions"][0]["name"], "v1");
    assert_eq!(orders["versions"][0]["status"], "active");
    let keyport = success(get_as(app, ada, "/v1/apis/keyport").await, 200).await;
    assert_eq!(keyport["built_in"], true);
    assert_eq!(
        strs(keyport["scopes"].as_array().expect("scopes"), "name"),
        [
            "keys:read",
            "keys:write",
            "usage:read",
            "audit:read",
            "admin"
        ]
    );
    not_found(get_as(app, ada, "/v1/apis/shipping").await).await;
}

async fn developers_create_keys_and_see_the_plaintext_once(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let body = json!({
        "name": "ci",
        "api": "orders",
        "scopes": ["orders:write", "orders:read"],
        "expires_at": in_days(30),
        "ip_allowlist": ["203.0.113.7", "2001:db8::/32"],
    });
    let response = post_as(app, ada, "/v1/keys", &body).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created: Value = response.json().await.unwrap();
    let plaintext = created["key"].as_str().expect("the plaintext key");
    assert!(plaintext.starts_with("kp_"), "{plaintext}");
    assert_eq!(plaintext.len(), 49);
    assert_eq!(created["start"], &plaintext[..9]);
    assert_eq!(created["name"], "ci");
    assert_eq!(created["api"], "orders");
    assert_eq!(created["scopes"], json!(["orders:read", "orders:write"]));
    assert_eq!(created["owner_id"], w.ada.id.as_str());
    assert_eq!(
        created["ip_allowlist"],
        json!(["203.0.113.7", "2001:db8::/32"])
    );
    assert_eq!(created["status"], "active");
    assert_eq!(created["enabled"], true);
    assert!(
        created["ratelimit"].is_null() && created["quota"].is_null(),
        "{created}"
    );
    assert!(created.get("replaces").is_none(), "{created}");
    assert_no_hash(&created, plaintext);

    // Afterwards the key is shown without its plaintext.
    let key_id = id(&created);
    let fetched = success(get_as(app, ada, &format!("/v1/keys/{key_id}")).await, 200).await;
    assert!(fetched.get("key").is_none(), "{fetched}");
    assert_eq!(fetched["start"], created["start"]);
    assert_eq!(fetched["status"], "active");
    assert_no_hash(&fetched, plaintext);
    let listed = key_list(app, ada, "/v1/keys").await;
    assert!(strs(&listed, "id").contains(&key_id.as_str()));
    for key in &listed {
        assert!(key.get("key").is_none(), "{key}");
        assert_no_hash(key, plaintext);
    }
}

async fn keys_are_listed_newest_first_in_pages(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    for name in ["first", "second", "third"] {
        create_orders_key(app, ada, name).await;
    }
    create_orders_key(app, &w.bob.token.bearer, "bob's").await;

    let first = success(get_as(app, ada, "/v1/keys?limit=2").await, 200).await;
    let keys = first["keys"].as_array().expect("keys");
    assert_eq!(strs(keys, "name"), ["third", "second"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = success(
        get_as(app, ada, &format!("/v1/keys?limit=2&cursor={cursor}")).await,
        200,
    )
    .await;
    let keys = second["keys"].as_array().expect("keys");
    assert_eq!(strs(keys, "name"), ["first", "management"]);
    assert!(second["next_cursor"].is_null(), "{second}");

    // Only Ada's own keys, filtered on request.
    let all = key_list(app, ada, "/v1/keys").await;
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|k| k["owner_id"] == w.ada.id.as_str()));
    let orders = key_list(app, ada, "/v1/keys?api=orders").await;
    assert_eq!(strs(&orders, "name"), ["third", "second", "first"]);
    assert_eq!(key_list(app, ada, "/v1/keys?status=active").await.len(), 4);
    assert!(
        key_list(app, ada, "/v1/keys?status=revoked")
            .await
            .is_empty()
    );
}

async fn keys_are_renamed_rescoped_restricted_and_disabled(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "laptop").await;
    let path = format!("/v1/keys/{}", id(&key));
    let change = json!({
        "name": "laptop 2",
        "scopes": ["orders:read", "orders:write"],
        "ip_allowlist": ["203.0.113.7", "10.1.2.3/8"],
        "expires_at": in_days(60),
    });
    let patched = success(patch_as(app, ada, &path, &change).await, 200).await;
    assert_eq!(patched["id"], key["id"]);
    assert_eq!(patched["start"], key["start"]);
    assert_eq!(patched["name"], "laptop 2");
    assert_eq!(patched["scopes"], json!(["orders:read", "orders:write"]));
    assert_eq!(
        patched["ip_allowlist"],
        json!(["203.0.113.7", "10.0.0.0/8"])
    );
    assert_ne!(patched["expires_at"], key["expires_at"]);
    assert_eq!(patched["status"], "active");

    let disabled = success(
        patch_as(app, ada, &path, &json!({ "enabled": false })).await,
        200,
    )
    .await;
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(disabled["enabled"], false);
    let fetched = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(fetched["status"], "disabled");
    assert_eq!(fetched["name"], "laptop 2");

    // Enabled again, with the allowlist cleared.
    let enabled = success(
        patch_as(
            app,
            ada,
            &path,
            &json!({ "enabled": true, "ip_allowlist": [] }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(enabled["status"], "active");
    assert_eq!(enabled["ip_allowlist"], json!([]));
}

async fn rotation_keeps_the_old_key_working_for_the_grace_period(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let old = create_orders_key(app, ada, "deploy").await;
    let old_id = id(&old);
    let now = Utc::now();
    let response = post_as(
        app,
        ada,
        &format!("/v1/keys/{old_id}/rotate"),
        &json!({ "grace_period_s": 3600 }),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let new: Value = response.json().await.unwrap();
    assert_eq!(new["replaces"], old_id.as_str());
    assert_ne!(id(&new), old_id);
    let plaintext = new["key"].as_str().expect("the new plaintext");
    assert!(
        plaintext.starts_with("kp_") && plaintext.len() == 49,
        "{plaintext}"
    );
    assert_ne!(new["key"], old["key"]);
    assert_eq!(new["start"], &plaintext[..9]);
    assert_eq!(new["name"], "deploy");
    assert_eq!(new["scopes"], old["scopes"]);
    assert_eq!(new["status"], "active");
    assert_no_hash(&new, plaintext);

    let previous = success(get_as(app, ada, &format!("/v1/keys/{old_id}")).await, 200).await;
    assert_eq!(previous["status"], "rotating");
    let until: DateTime<Utc> = previous["expires_at"]
        .as_str()
        .expect("an expiry")
        .parse()
        .unwrap();
    assert!(
        until > now + Duration::minutes(59) && until < now + Duration::minutes(61),
        "{until}"
    );

    // Ada's own management key, rotated with a grace period: both keys work until it ends.
    let rotated = success(
        post_as(
            app,
            ada,
            &format!("/v1/keys/{}/rotate", w.ada.token.id),
            &json!({ "grace_period_s": 3600 }),
        )
        .await,
        201,
    )
    .await;
    let replacement = rotated["key"].as_str().expect("the new plaintext");
    for token in [ada.as_str(), replacement] {
        let me = success(get_as(app, token, "/v1/me").await, 200).await;
        assert_eq!(me["id"], w.ada.id.as_str());
    }
}

async fn revoked_keys_show_as_revoked(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key_id = id(&create_orders_key(app, ada, "old laptop").await);
    let revoked = success(
        post_as(
            app,
            ada,
            &format!("/v1/keys/{key_id}/revoke"),
            &json!({ "reason": "leaked in a log" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(revoked["id"], key_id.as_str());
    assert_eq!(revoked["status"], "revoked");
    let fetched = success(get_as(app, ada, &format!("/v1/keys/{key_id}")).await, 200).await;
    assert_eq!(fetched["status"], "revoked");
    let listed = key_list(app, ada, "/v1/keys?status=revoked").await;
    assert_eq!(strs(&listed, "id"), [key_id.as_str()]);
    // The reason is kept in the audit log.
    let events = audit_events(app, ada, "/v1/audit?action=key.revoke").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["target"], key_id.as_str());
    assert_eq!(events[0]["details"]["reason"], "leaked in a log");
}

async fn the_audit_log_shows_developers_their_own_events(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "deploy").await;
    let key_id = id(&key);
    let rotated = success(
        post_as(
            app,
            ada,
            &format!("/v1/keys/{key_id}/rotate"),
            &json!({ "grace_period_s": 3600 }),
        )
        .await,
        201,
    )
    .await;
    let new_id = id(&rotated);
    success(
        post_as(
            app,
            ada,
            &format!("/v1/keys/{new_id}/revoke"),
            &json!({ "reason": "project ended" }),
        )
        .await,
        200,
    )
    .await;
    let bob = &w.bob.token.bearer;
    let bobs = id(&create_orders_key(app, bob, "bob's").await);
    success(
        post_as(app, bob, &format!("/v1/keys/{bobs}/revoke"), &json!({})).await,
        200,
    )
    .await;

    // Newest first: Ada's key events, the first being her management key's creation.
    let events = audit_events(app, ada, "/v1/audit?action=key.").await;
    assert_eq!(
        strs(&events, "action"),
        ["key.revoke", "key.rotate", "key.create", "key.create"]
    );
    assert_eq!(
        strs(&events, "target"),
        [
            new_id.as_str(),
            key_id.as_str(),
            key_id.as_str(),
            w.ada.token.id.as_str()
        ]
    );
    assert!(
        events.iter().all(|e| e["actor_id"] == w.ada.id.as_str()),
        "{events:?}"
    );
    assert_eq!(events[0]["details"]["reason"], "project ended");
    assert_eq!(events[1]["details"]["new_key_id"], new_id.as_str());

    // Nothing of Bob's, whatever the filter, and no plaintext key anywhere.
    let all = audit_events(app, ada, "/v1/audit?limit=200").await;
    assert!(
        all.iter().all(|e| e["actor_id"] != w.bob.id.as_str()
            && e["target"] != w.bob.id.as_str()
            && e["target"] != bobs.as_str()),
        "{all:?}"
    );
    let by_bob = audit_events(app, ada, &format!("/v1/audit?actor_id={}", w.bob.id)).await;
    assert!(by_bob.is_empty(), "{by_bob:?}");
    let text = serde_json::to_string(&all).unwrap();
    for plaintext in [&key["key"], &rotated["key"]] {
        let plaintext = plaintext.as_str().expect("a plaintext key");
        assert!(
            !text.contains(plaintext),
            "a plaintext key in the audit log"
        );
    }

    // Bob's log has his events and none of Ada's.
    let bobs_events = audit_events(app, bob, "/v1/audit?action=key.").await;
    assert_eq!(
        strs(&bobs_events, "action"),
        ["key.revoke", "key.create", "key.create"]
    );
    assert!(
        bobs_events
            .iter()
            .all(|e| e["actor_id"] == w.bob.id.as_str()),
        "{bobs_events:?}"
    );
}

async fn an_admin_key_sees_every_key_and_filters_by_owner(app: &TestApp) {
    let w = world(app).await;
    let admin = &w.admin.token.bearer;
    let adas = id(&create_orders_key(app, &w.ada.token.bearer, "ada's").await);
    let bobs = id(&create_orders_key(app, &w.bob.token.bearer, "bob's").await);

    let all = key_list(app, admin, "/v1/keys").await;
    let ids = strs(&all, "id");
    for expected in [
        &adas,
        &bobs,
        &w.ada.token.id,
        &w.bob.token.id,
        &w.admin.token.id,
    ] {
        assert!(
            ids.contains(&expected.as_str()),
            "{expected} not in {ids:?}"
        );
    }
    let only_ada = key_list(app, admin, &format!("/v1/keys?owner_id={}", w.ada.id)).await;
    assert_eq!(
        strs(&only_ada, "id"),
        [adas.as_str(), w.ada.token.id.as_str()]
    );
    let fetched = success(get_as(app, admin, &format!("/v1/keys/{bobs}")).await, 200).await;
    assert_eq!(fetched["owner_id"], w.bob.id.as_str());

    // Admins create keys for others, beyond the plan's limits, and revoke anyone's.
    let for_bob = json!({
        "name": "for bob",
        "api": "orders",
        "scopes": ["orders:read"],
        "expires_at": null,
        "ratelimit": { "limit": 100, "period_s": 1 },
        "owner_id": w.bob.id,
    });
    let created = success(post_as(app, admin, "/v1/keys", &for_bob).await, 201).await;
    let created_id = id(&created);
    assert_eq!(created["owner_id"], w.bob.id.as_str());
    assert!(created["expires_at"].is_null(), "{created}");
    assert_eq!(created["ratelimit"], json!({ "limit": 100, "period_s": 1 }));
    let revoked = success(
        post_as(app, admin, &format!("/v1/keys/{bobs}/revoke"), &json!({})).await,
        200,
    )
    .await;
    assert_eq!(revoked["status"], "revoked");

    // And they see everyone's events.
    let events = audit_events(app, admin, "/v1/audit?action=key.create").await;
    let targets = strs(&events, "target");
    for expected in [&adas, &bobs, &created_id] {
        assert!(
            targets.contains(&expected.as_str()),
            "{expected} not in {targets:?}"
        );
    }
}

// --- 401: no usable key of the keyport API -------------------------------------------------------

async fn requests_without_a_valid_key_are_unauthorized(app: &TestApp) {
    let w = world(app).await;
    let anonymous = app.client.get(app.url("/v1/me")).send().await.unwrap();
    unauthorized(anonymous).await;
    let basic = app
        .client
        .get(app.url("/v1/me"))
        .header("authorization", "Basic YWRhOnNlY3JldA==")
        .send()
        .await
        .unwrap();
    unauthorized(basic).await;

    // Malformed, unknown, and Ada's key with its checksum broken.
    let unknown = PlainKey::generate();
    let mut tampered = w.ada.token.bearer.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    for token in ["kp_abc", "not-a-key", unknown.expose(), tampered.as_str()] {
        unauthorized(get_as(app, token, "/v1/me").await).await;
    }

    // Authentication comes first: strangers learn nothing from a 400, 404 or 422.
    let no_json = send_raw(
        app,
        Method::POST,
        "kp_abc",
        "/v1/keys",
        Some("application/json"),
        "{not json",
    )
    .await;
    unauthorized(no_json).await;
    let path = format!("/v1/keys/{}", w.ada.token.id);
    unauthorized(get_as(app, "kp_abc", &path).await).await;
    unauthorized(app.client.get(app.url("/v1/keys")).send().await.unwrap()).await;

    success(get_as(app, &w.ada.token.bearer, "/v1/me").await, 200).await;
}

async fn revoked_expired_and_disabled_keys_are_unauthorized(app: &TestApp) {
    let w = world(app).await;
    let keys = &app.state.keys;
    keys.revoke(&w.ada.actor, &w.ada.token.id, Some("laptop stolen"))
        .await
        .unwrap();
    unauthorized(get_as(app, &w.ada.token.bearer, "/v1/me").await).await;

    // Rotated without a grace period, the old key expires at once; its replacement works.
    let replacement = keys.rotate(&w.bob.actor, &w.bob.token.id, 0).await.unwrap();
    unauthorized(get_as(app, &w.bob.token.bearer, "/v1/me").await).await;
    let me = success(
        get_as(app, replacement.plaintext.expose(), "/v1/me").await,
        200,
    )
    .await;
    assert_eq!(me["id"], w.bob.id.as_str());

    // A disabled key.
    let spare = keyport_key(app, &w.bob.actor, "spare", &["keys:read"]).await;
    success(get_as(app, &spare.bearer, "/v1/me").await, 200).await;
    let disable = KeyPatch {
        enabled: Some(false),
        ..Default::default()
    };
    keys.update(&w.bob.actor, &spare.id, disable).await.unwrap();
    unauthorized(get_as(app, &spare.bearer, "/v1/me").await).await;
}

async fn keys_of_other_apis_are_unauthorized(app: &TestApp) {
    let w = world(app).await;
    let orders = create_orders_key(app, &w.ada.token.bearer, "shop").await;
    let plaintext = orders["key"].as_str().expect("the plaintext key");
    unauthorized(get_as(app, plaintext, "/v1/me").await).await;
    unauthorized(post_as(app, plaintext, "/v1/keys", &orders_key("more")).await).await;
}

async fn a_disabled_owners_keys_are_unauthorized(app: &TestApp) {
    let w = world(app).await;
    let accounts = &app.state.accounts;
    let ctx = RequestContext::default();
    accounts
        .set_status(&w.admin.id, &w.ada.id, Status::Disabled, &ctx)
        .await
        .unwrap();
    unauthorized(get_as(app, &w.ada.token.bearer, "/v1/me").await).await;
    unauthorized(get_as(app, &w.ada.token.bearer, "/v1/keys").await).await;

    // The admin sees her keys as disabled; Bob is unaffected.
    let path = format!("/v1/keys/{}", w.ada.token.id);
    let token = success(get_as(app, &w.admin.token.bearer, &path).await, 200).await;
    assert_eq!(token["status"], "disabled");
    success(get_as(app, &w.bob.token.bearer, "/v1/me").await, 200).await;

    // Enabled again, her keys work again.
    accounts
        .set_status(&w.admin.id, &w.ada.id, Status::Active, &ctx)
        .await
        .unwrap();
    success(get_as(app, &w.ada.token.bearer, "/v1/me").await, 200).await;
}

// --- 403: the key lacks a scope, or the caller a role --------------------------------------------

async fn keys_lacking_a_scope_are_forbidden(app: &TestApp) {
    let w = world(app).await;
    let key = create_orders_key(app, &w.ada.token.bearer, "ci").await;
    let path = format!("/v1/keys/{}", id(&key));

    let read_only = keyport_key(app, &w.ada.actor, "read only", &["keys:read"]).await;
    let reader = read_only.bearer.as_str();
    success(get_as(app, reader, "/v1/keys").await, 200).await;
    success(get_as(app, reader, &path).await, 200).await;
    let refused = forbidden(post_as(app, reader, "/v1/keys", &orders_key("more")).await).await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("keys:write"), "{refused}");
    forbidden(patch_as(app, reader, &path, &json!({ "name": "renamed" })).await).await;
    forbidden(post_as(app, reader, &format!("{path}/rotate"), &json!({})).await).await;
    forbidden(post_as(app, reader, &format!("{path}/revoke"), &json!({})).await).await;
    let refused = forbidden(get_as(app, reader, "/v1/audit").await).await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("audit:read"), "{refused}");

    let audit_only = keyport_key(app, &w.ada.actor, "auditor", &["audit:read"]).await;
    let auditor = audit_only.bearer.as_str();
    success(get_as(app, auditor, "/v1/me").await, 200).await;
    success(get_as(app, auditor, "/v1/audit").await, 200).await;
    forbidden(get_as(app, auditor, "/v1/keys").await).await;
    forbidden(get_as(app, auditor, &path).await).await;

    // Nothing changed, nothing was created.
    let after = success(get_as(app, &w.ada.token.bearer, &path).await, 200).await;
    assert_eq!(after["name"], "ci");
    assert_eq!(after["status"], "active");
    assert_eq!(
        key_list(app, &w.ada.token.bearer, "/v1/keys").await.len(),
        4
    );
}

async fn developers_cannot_call_admin_endpoints(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let billing = json!({
        "slug": "billing",
        "name": "Billing",
        "scopes": [{ "name": "invoices:read" }],
    });
    forbidden(post_as(app, ada, "/v1/apis", &billing).await).await;
    forbidden(patch_as(app, ada, "/v1/apis/orders", &json!({ "name": "Mine" })).await).await;
    forbidden(patch_as(app, ada, "/v1/apis/keyport", &json!({ "name": "Mine" })).await).await;

    // The catalog is unchanged, and reading it is for everyone.
    not_found(get_as(app, ada, "/v1/apis/billing").await).await;
    let orders = success(get_as(app, ada, "/v1/apis/orders").await, 200).await;
    assert_eq!(orders["name"], "Orders");
    success(get_as(app, ada, "/v1/apis").await, 200).await;
}

async fn an_admins_key_without_the_admin_scope_acts_as_a_developer(app: &TestApp) {
    let w = world(app).await;
    let adas = id(&create_orders_key(app, &w.ada.token.bearer, "ada's").await);
    let plain = keyport_key(app, &w.admin.actor, "no admin scope", &DEVELOPER_SCOPES).await;
    let token = plain.bearer.as_str();

    // It is the admin's key...
    let me = success(get_as(app, token, "/v1/me").await, 200).await;
    assert_eq!(me["id"], w.admin.id.as_str());
    assert_eq!(me["role"], "admin");

    // ...without admin powers: no catalog changes,
    let billing = with(orders_api(), "slug", json!("billing"));
    forbidden(post_as(app, token, "/v1/apis", &billing).await).await;
    forbidden(patch_as(app, token, "/v1/apis/orders", &json!({ "name": "Mine" })).await).await;

    // only its owner's keys, whatever the filter,
    for path in [
        "/v1/keys".to_owned(),
        format!("/v1/keys?owner_id={}", w.ada.id),
    ] {
        let listed = key_list(app, token, &path).await;
        assert!(
            !listed.is_empty() && listed.iter().all(|k| k["owner_id"] == w.admin.id.as_str()),
            "{path}: {listed:?}"
        );
    }
    let path = format!("/v1/keys/{adas}");
    not_found(get_as(app, token, &path).await).await;
    not_found(patch_as(app, token, &path, &json!({ "enabled": false })).await).await;
    not_found(post_as(app, token, &format!("{path}/revoke"), &json!({})).await).await;

    // no keys for others, no admin scope, and the plan's limits,
    let for_ada = with(orders_key("for ada"), "owner_id", json!(w.ada.id));
    forbidden(post_as(app, token, "/v1/keys", &for_ada).await).await;
    let grant = json!({
        "name": "ops",
        "api": "keyport",
        "scopes": ["admin"],
        "expires_at": in_days(1),
    });
    forbidden(post_as(app, token, "/v1/keys", &grant).await).await;
    let forever = with(orders_key("forever"), "expires_at", Value::Null);
    invalid(
        post_as(app, token, "/v1/keys", &forever).await,
        "expires_at",
    )
    .await;
    let fast = with(
        orders_key("fast"),
        "ratelimit",
        json!({ "limit": 100, "period_s": 1 }),
    );
    invalid(post_as(app, token, "/v1/keys", &fast).await, "ratelimit").await;

    // and only the events that involve the admin.
    let events = audit_events(app, token, "/v1/audit?limit=200").await;
    assert!(
        events
            .iter()
            .all(|e| e["target"] != adas.as_str() && e["actor_id"] != w.ada.id.as_str()),
        "{events:?}"
    );

    // Ada's key is untouched; the admin's key with the admin scope can see it.
    let fetched = success(get_as(app, &w.admin.token.bearer, &path).await, 200).await;
    assert_eq!(fetched["status"], "active");
}

async fn developers_cannot_create_keys_for_others_or_grant_admin(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let for_bob = with(orders_key("for bob"), "owner_id", json!(w.bob.id));
    forbidden(post_as(app, ada, "/v1/keys", &for_bob).await).await;
    let bobs = key_list(
        app,
        &w.admin.token.bearer,
        &format!("/v1/keys?owner_id={}", w.bob.id),
    )
    .await;
    assert_eq!(strs(&bobs, "id"), [w.bob.token.id.as_str()]);

    for scopes in [json!(["admin"]), json!(["keys:read", "admin"])] {
        let grant = json!({
            "name": "ops",
            "api": "keyport",
            "scopes": scopes,
            "expires_at": in_days(1),
        });
        forbidden(post_as(app, ada, "/v1/keys", &grant).await).await;
    }

    // Nor by widening a key she has, not even her own management key.
    let path = format!("/v1/keys/{}", w.ada.token.id);
    let before = success(get_as(app, ada, &path).await, 200).await;
    let widen =
        json!({ "scopes": ["keys:read", "keys:write", "audit:read", "usage:read", "admin"] });
    forbidden(patch_as(app, ada, &path, &widen).await).await;
    let after = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(after["scopes"], before["scopes"]);
    assert_eq!(
        after["scopes"],
        json!(["audit:read", "keys:read", "keys:write", "usage:read"])
    );

    // Naming herself as the owner is fine.
    let mine = with(orders_key("mine"), "owner_id", json!(w.ada.id));
    let created = success(post_as(app, ada, "/v1/keys", &mine).await, 201).await;
    assert_eq!(created["owner_id"], w.ada.id.as_str());
    assert_eq!(key_list(app, ada, "/v1/keys").await.len(), 2);
}

// --- 404: unknown, or another user's (never 403, which would confirm it exists) -------------------

async fn another_users_keys_are_not_found(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let bob = &w.bob.token.bearer;
    let bob_key = id(&create_orders_key(app, bob, "bob's").await);
    for key_id in [bob_key.as_str(), w.bob.token.id.as_str(), UNKNOWN_KEY] {
        let path = format!("/v1/keys/{key_id}");
        not_found(get_as(app, ada, &path).await).await;
        not_found(patch_as(app, ada, &path, &json!({ "name": "mine now" })).await).await;
        // Even a change Ada may never make is "not found" rather than "forbidden".
        not_found(patch_as(app, ada, &path, &json!({ "scopes": ["admin"] })).await).await;
        let rotate = json!({ "grace_period_s": 0 });
        not_found(post_as(app, ada, &format!("{path}/rotate"), &rotate).await).await;
        let revoke = json!({ "reason": "mine now" });
        not_found(post_as(app, ada, &format!("{path}/revoke"), &revoke).await).await;
    }

    // Someone else's key and a key that does not exist answer alike.
    let theirs = not_found(get_as(app, ada, &format!("/v1/keys/{bob_key}")).await).await;
    let nobodys = not_found(get_as(app, ada, &format!("/v1/keys/{UNKNOWN_KEY}")).await).await;
    assert_eq!(theirs, nobodys);

    // Bob's keys are untouched.
    let after = success(get_as(app, bob, &format!("/v1/keys/{bob_key}")).await, 200).await;
    assert_eq!(after["name"], "bob's");
    assert_eq!(after["status"], "active");
    success(get_as(app, bob, "/v1/me").await, 200).await;
    let events = audit_events(app, bob, "/v1/audit?action=key.").await;
    assert_eq!(strs(&events, "action"), ["key.create", "key.create"]);

    // Ada's list never shows them, even when she asks for Bob's.
    let listed = key_list(app, ada, &format!("/v1/keys?owner_id={}", w.bob.id)).await;
    assert!(
        !listed.is_empty() && listed.iter().all(|k| k["owner_id"] == w.ada.id.as_str()),
        "{listed:?}"
    );

    // Nothing else lives under /v1.
    not_found(get_as(app, ada, "/v1/secrets").await).await;
}

// --- 409: the request clashes with the current state ---------------------------------------------

async fn revoking_or_rotating_twice_conflicts(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let once = id(&create_orders_key(app, ada, "once").await);
    // An empty body revokes without a reason.
    let revoke = format!("/v1/keys/{once}/revoke");
    let revoked = success(
        send_raw(app, Method::POST, ada, &revoke, None, "").await,
        200,
    )
    .await;
    assert_eq!(revoked["status"], "revoked");
    conflict(post_as(app, ada, &revoke, &json!({ "reason": "again" })).await).await;
    // A revoked key can be neither changed nor rotated.
    let path = format!("/v1/keys/{once}");
    conflict(patch_as(app, ada, &path, &json!({ "enabled": true })).await).await;
    conflict(post_as(app, ada, &format!("{path}/rotate"), &json!({})).await).await;

    let twice = id(&create_orders_key(app, ada, "twice").await);
    let rotate = format!("/v1/keys/{twice}/rotate");
    let grace = json!({ "grace_period_s": 3600 });
    let replacement = success(post_as(app, ada, &rotate, &grace).await, 201).await;
    conflict(post_as(app, ada, &rotate, &grace).await).await;
    // The replacement is the one to rotate next.
    let next = format!("/v1/keys/{}/rotate", id(&replacement));
    success(post_as(app, ada, &next, &json!({})).await, 201).await;
}

async fn a_taken_api_slug_conflicts(app: &TestApp) {
    let w = world(app).await;
    let admin = &w.admin.token.bearer;
    conflict(post_as(app, admin, "/v1/apis", &orders_api()).await).await;
    let keyport = with(orders_api(), "slug", json!("keyport"));
    conflict(post_as(app, admin, "/v1/apis", &keyport).await).await;
    let apis = success(get_as(app, admin, "/v1/apis").await, 200).await;
    let slugs = strs(apis["apis"].as_array().expect("apis"), "slug");
    assert_eq!(slugs.iter().filter(|s| **s == "orders").count(), 1);
    assert_eq!(slugs.iter().filter(|s| **s == "keyport").count(), 1);
}

async fn the_plans_active_key_limit_conflicts(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    // The Free plan allows 10 active keys; Ada's management key is the first of them.
    let mut created = Vec::new();
    for i in 2..=10 {
        created.push(id(&create_orders_key(app, ada, &format!("key {i}")).await));
    }
    let refused = conflict(post_as(app, ada, "/v1/keys", &orders_key("key 11")).await).await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("10"), "{refused}");
    assert_eq!(key_list(app, ada, "/v1/keys").await.len(), 10);

    // Bob's keys count against his own limit.
    create_orders_key(app, &w.bob.token.bearer, "bob's").await;

    // A revoked key no longer counts.
    let revoke = format!("/v1/keys/{}/revoke", created[0]);
    success(post_as(app, ada, &revoke, &json!({})).await, 200).await;
    create_orders_key(app, ada, "key 11").await;
    conflict(post_as(app, ada, "/v1/keys", &orders_key("key 12")).await).await;
}

// --- 422 and 400: refused input ------------------------------------------------------------------

async fn invalid_new_keys_name_the_field(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let mut without_expiry = orders_key("x");
    without_expiry.as_object_mut().unwrap().remove("expires_at");
    let cases = [
        ("name", with(orders_key("x"), "name", json!(" "))),
        ("api", with(orders_key("x"), "api", json!("billing"))),
        (
            "scopes",
            with(orders_key("x"), "scopes", json!(["billing:read"])),
        ),
        ("scopes", with(orders_key("x"), "scopes", json!([]))),
        (
            "scopes",
            with(orders_key("x"), "scopes", json!("orders:read")),
        ),
        (
            "expires_at",
            with(orders_key("x"), "expires_at", json!(in_days(400))),
        ),
        (
            "expires_at",
            with(orders_key("x"), "expires_at", Value::Null),
        ),
        ("expires_at", without_expiry),
        (
            "expires_at",
            with(orders_key("x"), "expires_at", json!(in_days(-1))),
        ),
        (
            "expires_at",
            with(orders_key("x"), "expires_at", json!("next tuesday")),
        ),
        (
            "ip_allowlist",
            with(orders_key("x"), "ip_allowlist", json!(["300.1.1.1"])),
        ),
        (
            "ip_allowlist",
            with(orders_key("x"), "ip_allowlist", json!(["10.0.0.0/33"])),
        ),
        (
            "ratelimit",
            with(
                orders_key("x"),
                "ratelimit",
                json!({ "limit": 0, "period_s": 1 }),
            ),
        ),
        (
            "quota",
            with(
                orders_key("x"),
                "quota",
                json!({ "limit": 10, "period": "week" }),
            ),
        ),
        ("owner", with(orders_key("x"), "owner", json!(w.bob.id))),
    ];
    for (field, body) in &cases {
        invalid(post_as(app, ada, "/v1/keys", body).await, field).await;
    }
    // Nothing was created: Ada has only her management key.
    assert_eq!(key_list(app, ada, "/v1/keys").await.len(), 1);
}

async fn developers_cannot_raise_their_plans_limits(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let above = [
        ("ratelimit", json!({ "limit": 100, "period_s": 1 })),
        ("ratelimit", json!({ "limit": 11, "period_s": 1 })),
        ("ratelimit", json!({ "limit": 1000, "period_s": 60 })),
        ("quota", json!({ "limit": 10_001, "period": "day" })),
        ("quota", json!({ "limit": 5000, "period": "month" })),
        ("expires_at", json!(in_days(366))),
    ];
    for (field, value) in above {
        let body = with(orders_key("greedy"), field, value);
        invalid(post_as(app, ada, "/v1/keys", &body).await, field).await;
    }
    assert_eq!(key_list(app, ada, "/v1/keys").await.len(), 1);

    // Lower limits, and the longest lifetime, are fine.
    let limited = json!({
        "name": "limited",
        "api": "orders",
        "scopes": ["orders:read"],
        "expires_at": in_days(365),
        "ratelimit": { "limit": 5, "period_s": 1 },
        "quota": { "limit": 100, "period": "day" },
    });
    let created = success(post_as(app, ada, "/v1/keys", &limited).await, 201).await;
    assert_eq!(created["ratelimit"], json!({ "limit": 5, "period_s": 1 }));
    assert_eq!(created["quota"], json!({ "limit": 100, "period": "day" }));
}

async fn patching_fields_other_than_the_allowed_ones_is_refused(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "laptop").await;
    let path = format!("/v1/keys/{}", id(&key));
    let before = success(get_as(app, ada, &path).await, 200).await;
    let smuggled = [
        ("owner", json!(w.bob.id)),
        ("owner_id", json!(w.bob.id)),
        ("api", json!("keyport")),
        ("ratelimit", json!({ "limit": 1000, "period_s": 1 })),
        ("quota", json!({ "limit": 1_000_000, "period": "day" })),
        ("hash", json!("0".repeat(64))),
        ("start", json!("kp_000000")),
        ("status", json!("active")),
        ("revoked_at", Value::Null),
        ("replaces", json!(w.ada.token.id)),
        ("created_at", json!(in_days(-100))),
        ("id", json!(UNKNOWN_KEY)),
    ];
    for (field, value) in smuggled {
        let mut alone = json!({});
        alone[field] = value.clone();
        invalid(patch_as(app, ada, &path, &alone).await, field).await;
        // Next to allowed changes, the whole request is refused.
        let mut mixed = json!({ "name": "renamed", "enabled": false });
        mixed[field] = value;
        invalid(patch_as(app, ada, &path, &mixed).await, field).await;
    }
    let after = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(after, before);
}

async fn invalid_key_changes_name_the_field(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "laptop").await;
    let path = format!("/v1/keys/{}", id(&key));
    let before = success(get_as(app, ada, &path).await, 200).await;
    let cases = [
        ("name", json!({ "name": "" })),
        ("name", json!({ "name": "n".repeat(101) })),
        ("scopes", json!({ "scopes": [] })),
        ("scopes", json!({ "scopes": ["keys:read"] })),
        ("expires_at", json!({ "expires_at": null })),
        ("expires_at", json!({ "expires_at": in_days(400) })),
        ("ip_allowlist", json!({ "ip_allowlist": ["localhost"] })),
        ("enabled", json!({ "enabled": "no" })),
    ];
    for (field, body) in &cases {
        invalid(patch_as(app, ada, &path, body).await, field).await;
    }
    let after = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(after, before);
}

async fn invalid_parameters_name_the_field(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "laptop").await;
    let path = format!("/v1/keys/{}", id(&key));
    let rotate = format!("{path}/rotate");
    let too_long = json!({ "grace_period_s": 40 * 86_400 });
    invalid(
        post_as(app, ada, &rotate, &too_long).await,
        "grace_period_s",
    )
    .await;
    let not_a_number = json!({ "grace_period_s": "soon" });
    invalid(post_as(app, ada, &rotate, &not_a_number).await, "body").await;
    invalid(
        post_as(app, ada, &rotate, &json!({ "grace": 60 })).await,
        "body",
    )
    .await;
    let long_reason = json!({ "reason": "x".repeat(501) });
    invalid(
        post_as(app, ada, &format!("{path}/revoke"), &long_reason).await,
        "reason",
    )
    .await;
    for (query, field) in [
        ("/v1/keys?limit=0", "limit"),
        ("/v1/keys?limit=101", "limit"),
        ("/v1/keys?status=lost", "status"),
        ("/v1/audit?limit=201", "limit"),
        ("/v1/audit?cursor=abc", "cursor"),
        ("/v1/audit?from=yesterday", "query"),
    ] {
        invalid(get_as(app, ada, query).await, field).await;
    }
    // The key was neither rotated nor revoked.
    let after = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(after["status"], "active");
}

async fn bodies_that_are_not_json_are_bad_requests(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "laptop").await;
    let path = format!("/v1/keys/{}", id(&key));
    let as_json = Some("application/json");
    let cases = [
        (Method::POST, "/v1/keys".to_owned(), as_json, "{\"name\": "),
        (
            Method::POST,
            "/v1/keys".to_owned(),
            as_json,
            "name=ci&api=orders",
        ),
        (Method::PATCH, path.clone(), as_json, "enabled=false"),
        (Method::POST, format!("{path}/rotate"), as_json, "{"),
        (
            Method::POST,
            format!("{path}/revoke"),
            as_json,
            "reason: leaked",
        ),
    ];
    for (method, target, content_type, body) in cases {
        bad_request(send_raw(app, method, ada, &target, content_type, body).await).await;
    }
    // JSON sent without saying so.
    let unlabelled = orders_key("ci").to_string();
    bad_request(send_raw(app, Method::POST, ada, "/v1/keys", None, unlabelled).await).await;

    // Nothing changed.
    let after = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(after["status"], "active");
    assert_eq!(key_list(app, ada, "/v1/keys").await.len(), 2);
}

on_both_databases!(
    // 200 and 201
    me_describes_the_caller,
    the_openapi_document_describes_the_api,
    admins_register_apis_and_everyone_reads_the_catalog,
    developers_create_keys_and_see_the_plaintext_once,
    keys_are_listed_newest_first_in_pages,
    keys_are_renamed_rescoped_restricted_and_disabled,
    rotation_keeps_the_old_key_working_for_the_grace_period,
    revoked_keys_show_as_revoked,
    the_audit_log_shows_developers_their_own_events,
    an_admin_key_sees_every_key_and_filters_by_owner,
    // 401
    requests_without_a_valid_key_are_unauthorized,
    revoked_expired_and_disabled_keys_are_unauthorized,
    keys_of_other_apis_are_unauthorized,
    a_disabled_owners_keys_are_unauthorized,
    // usage
    key_usage_counts_verifications_by_outcome,
    usage_follows_the_keys_authorization_rules,
    bad_usage_parameters_name_the_field,
    // 403
    keys_lacking_a_scope_are_forbidden,
    developers_cannot_call_admin_endpoints,
    an_admins_key_without_the_admin_scope_acts_as_a_developer,
    developers_cannot_create_keys_for_others_or_grant_admin,
    // 404
    another_users_keys_are_not_found,
    // 409
    revoking_or_rotating_twice_conflicts,
    a_taken_api_slug_conflicts,
    the_plans_active_key_limit_conflicts,
    // 422 and 400
    invalid_new_keys_name_the_field,
    developers_cannot_raise_their_plans_limits,
    patching_fields_other_than_the_allowed_ones_is_refused,
    invalid_key_changes_name_the_field,
    invalid_parameters_name_the_field,
    bodies_that_are_not_json_are_bad_requests,
);
