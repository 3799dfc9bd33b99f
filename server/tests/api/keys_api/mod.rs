//! The management REST API under `/v1` over real HTTP, grouped by outcome: who may call it at all
//! (401), what a key may do (403), whose keys a caller can see (404, never 403, for another user's
//! key), clashes with the current state (409), refused input (422 naming the field; 400 for a body
//! that is not JSON), and the happy paths. Covers broken object level authorization (another
//! user's key), broken function level authorization (admin endpoints; an admin's key without the
//! `admin` scope) and broken object property level authorization (fields a caller may not set).
//! Each scenario runs on SQLite and, when configured, on PostgreSQL. This module holds the world
//! (an admin, two developers, their management keys) and the request helpers; each outcome has
//! its own file.
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

mod admin;
mod conflict;
mod forbidden;
mod invalid;
mod not_found;
mod ok;
mod unauthorized;
mod usage;

const PASSWORD: &str = "glacier lantern pepper";
/// The scopes of a developer's management key in these tests.
const DEVELOPER_SCOPES: [&str; 4] = ["keys:read", "keys:write", "audit:read", "usage:read"];
/// A well-formed key id that no key has.
const UNKNOWN_KEY: &str = "key_00000000000000000000";

// --- Setup ---------------------------------------------------------------------------------------

/// A key of the built-in `keyport` API: its id, and its plaintext to send as the bearer token.
pub(crate) struct Token {
    pub(crate) id: String,
    pub(crate) bearer: String,
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
pub(crate) async fn keyport_key(
    app: &TestApp,
    actor: &Actor,
    name: &str,
    scopes: &[&str],
) -> Token {
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
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Response {
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

pub(crate) async fn get_as(app: &TestApp, token: &str, path: &str) -> Response {
    send(app.client.get(app.url(path)).bearer_auth(token)).await
}

pub(crate) async fn post_as(app: &TestApp, token: &str, path: &str, body: &Value) -> Response {
    send(app.client.post(app.url(path)).bearer_auth(token).json(body)).await
}

pub(crate) async fn patch_as(app: &TestApp, token: &str, path: &str, body: &Value) -> Response {
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
pub(crate) async fn read(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Asserts the status of a successful answer and returns its body.
pub(crate) async fn success(response: Response, status: u16) -> Value {
    let (actual, body) = read(response).await;
    assert_eq!(actual, status, "{body}");
    body
}

/// Asserts an error answer in the API's shape, `{"error": {"code", "message", "fields"?}}`.
pub(crate) async fn failure(response: Response, status: u16, code: &str) -> Value {
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
pub(crate) async fn unauthorized(response: Response) {
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

pub(crate) async fn forbidden(response: Response) -> Value {
    failure(response, 403, "forbidden").await
}

pub(crate) async fn not_found(response: Response) -> Value {
    failure(response, 404, "not_found").await
}

pub(crate) async fn conflict(response: Response) -> Value {
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
