//! Webhooks over real HTTP: deliveries to a receiver started by the test that checks every
//! signature with PyPI's `standardwebhooks` (an implementation independent of Keyport's), retries
//! with the same `webhook-id`, the delivery log, secret rotation, redelivery, an endpoint
//! disabled after a day of failures, the server-side request forgery defence (at save and at
//! send time), and who may see and change which endpoint.
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use domain::{
    audit::RequestContext,
    entities::{outbox, webhook_endpoint},
    service::Actor,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use server::Config;

use crate::{
    helpers::TestApp,
    keys_api::{
        Token, failure, forbidden, get_as, keyport_key, not_found, patch_as, post_as, read, send,
        success, unauthorized,
    },
};

const PASSWORD: &str = "glacier lantern pepper";
const SCOPES: [&str; 4] = ["keys:read", "keys:write", "webhooks:read", "webhooks:write"];

/// The Python of the test tools (with `standardwebhooks`), installed by the test command.
fn python() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/tools-venv/bin/python"
    )
    .to_owned()
}

/// The receiver process and what it printed, one JSON object per delivery.
struct Receiver {
    child: Child,
    port: u16,
    secrets: tempfile::NamedTempFile,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    /// A receiver answering 500 to the first `fail_first` deliveries.
    fn start(fail_first: u32) -> Receiver {
        let secrets = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/api/support/webhook_receiver.py"
            ))
            .arg(secrets.path())
            .arg(fail_first.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the test tools' Python (./dev.sh test installs it)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let port = first["port"].as_u64().unwrap() as u16;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Receiver {
            child,
            port,
            secrets,
            seen,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The secrets the receiver checks signatures against, in order.
    fn trust(&self, secrets: &[&str]) {
        std::fs::write(self.secrets.path(), secrets.join("\n")).unwrap();
    }

    fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (at most 20 s) until `n` deliveries arrived; returns them all.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected {n} deliveries, got {:#?}", self.seen());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The app with webhooks allowed to reach this machine (the receiver), retrying after 1 s.
async fn app_for_receivers() -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let config = Config {
        webhooks_allow_private: true,
        webhook_retry_seconds: vec![1, 1, 1],
        ..Config::for_data_dir(data_dir.path())
    };
    TestApp::spawn_with(config, data_dir, None).await
}

/// A developer and their management key with the webhook scopes.
async fn developer(app: &TestApp, email: &str, scopes: &[&str]) -> (Actor, Token) {
    let user = app
        .state
        .accounts
        .sign_up(email, PASSWORD, &RequestContext::default())
        .await
        .unwrap();
    let actor = Actor::new(user.id, false, RequestContext::default());
    let token = keyport_key(app, &actor, "management", scopes).await;
    (actor, token)
}

async fn admin(app: &TestApp) -> (Actor, Token) {
    let user = app
        .state
        .accounts
        .create_admin("root@example.com", PASSWORD)
        .await
        .unwrap();
    let actor = Actor::new(user.id, true, RequestContext::default());
    let token = keyport_key(app, &actor, "admin key", &["admin"]).await;
    (actor, token)
}

/// GETs `path` every 100 ms, for up to `tries` times, until `done` holds of the answer; returns
/// the last answer (the caller asserts on it).
async fn poll(
    app: &TestApp,
    token: &str,
    path: &str,
    tries: usize,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..tries {
        last = success(get_as(app, token, path).await, 200).await;
        if done(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

async fn delete_as(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    send(app.client.delete(app.url(path)).bearer_auth(token)).await
}

fn new_key() -> Value {
    json!({
        "name": "orders",
        "api": "keyport",
        "scopes": ["keys:read"],
        "expires_at": (Utc::now() + chrono::Duration::days(30)).to_rfc3339(),
    })
}

/// The deliveries (outbox rows) queued for `endpoint_id`, as event types.
async fn queued_for(app: &TestApp, endpoint_id: &str) -> Vec<String> {
    outbox::Entity::find()
        .filter(outbox::Column::Channel.eq("webhook"))
        .filter(outbox::Column::Recipient.eq(endpoint_id))
        .all(app.state.db.conn())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect()
}

#[tokio::test]
async fn deliveries_are_signed_retried_with_one_id_and_logged() {
    let app = app_for_receivers().await;
    let receiver = Receiver::start(2);
    let (_, dev) = developer(&app, "ada@example.com", &SCOPES).await;

    let endpoint = success(
        post_as(
            &app,
            &dev.bearer,
            "/v1/webhooks",
            &json!({
                "url": receiver.url("/hooks/keyport"),
                "description": "Orders service",
                "events": ["key.created", "key.revoked"],
            }),
        )
        .await,
        201,
    )
    .await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{endpoint}");
    assert_eq!(endpoint["events"], json!(["key.created", "key.revoked"]));
    let id = endpoint["id"].as_str().unwrap().to_owned();
    // The secret is shown once: never again in the endpoint's answers.
    let shown = success(
        get_as(&app, &dev.bearer, &format!("/v1/webhooks/{id}")).await,
        200,
    )
    .await;
    assert!(shown.get("secret").is_none(), "{shown}");
    receiver.trust(&[&secret]);

    // A key is created: its event is refused twice (500), then accepted.
    let key = success(
        post_as(&app, &dev.bearer, "/v1/keys", &new_key()).await,
        201,
    )
    .await;
    let key_id = key["id"].as_str().unwrap();
    let deliveries = receiver.wait_for(3).await;
    assert_eq!(
        deliveries
            .iter()
            .map(|d| d["answered"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [500, 500, 204]
    );
    let webhook_id = deliveries[0]["id"].as_str().unwrap();
    assert!(webhook_id.starts_with("msg_"));
    for d in &deliveries {
        assert_eq!(d["id"], webhook_id, "one webhook-id on every attempt");
        assert_eq!(
            d["verified"],
            json!([true]),
            "standardwebhooks verified it: {d}"
        );
        assert_eq!(d["path"], "/hooks/keyport");
        assert_eq!(d["content_type"], "application/json");
        assert_eq!(
            d["body"], deliveries[0]["body"],
            "the same bytes on every attempt"
        );
    }
    let body: Value = serde_json::from_str(deliveries[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "key.created");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    // The key as the REST API shows it, never its plaintext or hash.
    let as_api = success(
        get_as(&app, &dev.bearer, &format!("/v1/keys/{key_id}")).await,
        200,
    )
    .await;
    assert_eq!(body["data"], as_api);
    let raw = deliveries[0]["body"].as_str().unwrap();
    assert!(!raw.contains(key["key"].as_str().unwrap()));

    // The delivery log: one delivery, delivered, three attempts newest first.
    let log = success(
        get_as(&app, &dev.bearer, &format!("/v1/webhooks/{id}/deliveries")).await,
        200,
    )
    .await;
    assert_eq!(log["total"], 1, "{log}");
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["status"], "sent");
    assert_eq!(delivery["event"], "key.created");
    assert_eq!(delivery["message_id"], webhook_id);
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (
                a["attempt"].as_i64().unwrap(),
                a["status_code"].as_i64().unwrap()
            ))
            .collect::<Vec<_>>(),
        [(3, 204), (2, 500), (1, 500)]
    );
    assert_eq!(attempts[1]["response_body"], "not yet");

    // An event outside the filter is not sent; the next one in it is, once.
    success(
        patch_as(
            &app,
            &dev.bearer,
            &format!("/v1/keys/{key_id}"),
            &json!({ "name": "renamed" }),
        )
        .await,
        200,
    )
    .await;
    success(
        post_as(
            &app,
            &dev.bearer,
            &format!("/v1/keys/{key_id}/revoke"),
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    let deliveries = receiver.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = receiver.seen();
    assert_eq!(all.len(), 4, "{all:#?}");
    let revoked: Value = serde_json::from_str(deliveries[3]["body"].as_str().unwrap()).unwrap();
    assert_eq!(revoked["type"], "key.revoked");
    assert_eq!(revoked["data"]["status"], "revoked");
    assert_eq!(deliveries[3]["verified"], json!([true]));

    // Redelivery sends the same message again, with its webhook-id.
    let first = log["deliveries"][0]["id"].as_i64().unwrap();
    success(
        post_as(
            &app,
            &dev.bearer,
            &format!("/v1/webhooks/{id}/deliveries/{first}/redeliver"),
            &json!({}),
        )
        .await,
        202,
    )
    .await;
    let again = receiver.wait_for(5).await;
    assert_eq!(again[4]["id"], webhook_id);
    assert_eq!(again[4]["body"], deliveries[0]["body"]);
    assert_eq!(again[4]["verified"], json!([true]));
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_for_a_day() {
    let app = app_for_receivers().await;
    let receiver = Receiver::start(0);
    let (_, dev) = developer(&app, "ada@example.com", &SCOPES).await;
    let endpoint = success(
        post_as(
            &app,
            &dev.bearer,
            "/v1/webhooks",
            &json!({ "url": receiver.url("/") }),
        )
        .await,
        201,
    )
    .await;
    let id = endpoint["id"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap().to_owned();
    let rotated = success(
        post_as(
            &app,
            &dev.bearer,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    let until = chrono::DateTime::parse_from_rfc3339(
        rotated["previous_secret_valid_until"].as_str().unwrap(),
    )
    .unwrap();
    let hours = (until.with_timezone(&Utc) - Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours}");

    receiver.trust(&[&old, &new]);
    let queued = success(
        post_as(
            &app,
            &dev.bearer,
            &format!("/v1/webhooks/{id}/test"),
            &json!({}),
        )
        .await,
        202,
    )
    .await;
    assert!(queued["delivery_id"].as_i64().is_some());
    let d = &receiver.wait_for(1).await[0];
    assert_eq!(
        d["verified"],
        json!([true, true]),
        "a receiver on either secret accepts it: {d}"
    );
    assert_eq!(d["signature"].as_str().unwrap().split(' ').count(), 2);
    let body: Value = serde_json::from_str(d["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["data"]["endpoint_id"], id);

    // Once the old secret's day is over, only the new one signs.
    webhook_endpoint::Entity::update_many()
        .col_expr(
            webhook_endpoint::Column::PreviousSecretUntil,
            Expr::value(Some(Utc::now() - chrono::Duration::minutes(1))),
        )
        .filter(webhook_endpoint::Column::Id.eq(id))
        .exec(app.state.db.conn())
        .await
        .unwrap();
    success(
        post_as(
            &app,
            &dev.bearer,
            &format!("/v1/webhooks/{id}/test"),
            &json!({}),
        )
        .await,
        202,
    )
    .await;
    let d = &receiver.wait_for(2).await[1];
    assert_eq!(d["verified"], json!([false, true]), "{d}");
}

#[tokio::test]
async fn an_endpoint_failing_for_a_day_is_disabled_and_its_owner_told() {
    let app = app_for_receivers().await;
    let receiver = Receiver::start(1000);
    // Ada signs up in the browser too, to see the dashboard's warning.
    app.sign_up_and_enrol("ada@example.com").await;
    let ada = app
        .state
        .accounts
        .find_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    let ada = Actor::new(ada.id, false, RequestContext::default());
    let dev = keyport_key(&app, &ada, "management", &SCOPES).await;
    let dashboard = || async {
        let page = app.get("/dashboard").await;
        assert_eq!(page.status(), 200);
        page.text().await.unwrap()
    };
    assert!(!dashboard().await.contains("webhooks-disabled"));
    let endpoint = success(
        post_as(
            &app,
            &dev.bearer,
            "/v1/webhooks",
            &json!({ "url": receiver.url("/down") }),
        )
        .await,
        201,
    )
    .await;
    let id = endpoint["id"].as_str().unwrap();
    success(
        post_as(
            &app,
            &dev.bearer,
            &format!("/v1/webhooks/{id}/test"),
            &json!({}),
        )
        .await,
        202,
    )
    .await;
    receiver.wait_for(1).await;
    // The first failure starts the streak.
    let failing = poll(&app, &dev.bearer, &format!("/v1/webhooks/{id}"), 50, |e| {
        !e["failing_since"].is_null()
    })
    .await;
    assert!(!failing["failing_since"].is_null(), "{failing}");
    assert_eq!(failing["enabled"], true);
    // A day later, still failing.
    webhook_endpoint::Entity::update_many()
        .col_expr(
            webhook_endpoint::Column::FailingSince,
            Expr::value(Some(Utc::now() - chrono::Duration::hours(25))),
        )
        .filter(webhook_endpoint::Column::Id.eq(id))
        .exec(app.state.db.conn())
        .await
        .unwrap();
    receiver.wait_for(2).await;
    let disabled = poll(&app, &dev.bearer, &format!("/v1/webhooks/{id}"), 50, |e| {
        e["enabled"] == false
    })
    .await;
    assert_eq!(disabled["enabled"], false, "{disabled}");
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed for a day"),
        "{disabled}"
    );
    let audit = domain::audit::search(
        &app.state.db,
        &domain::audit::Filter {
            action: Some("webhook.auto_disable".into()),
            ..Default::default()
        },
        None,
        10,
    )
    .await
    .unwrap()
    .0;
    assert_eq!(audit.len(), 1);
    let page = dashboard().await;
    assert!(
        page.contains("data-testid=\"webhooks-disabled\"")
            && page.contains("1 webhook endpoint stopped receiving events"),
        "the dashboard warns of the disabled endpoint"
    );
    // Disabled, it receives nothing more, and a test is refused with a reason.
    let refused = failure(
        post_as(
            &app,
            &dev.bearer,
            &format!("/v1/webhooks/{id}/test"),
            &json!({}),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.seen().len(), 2);
    // Enabled again, the streak is forgotten.
    let enabled = success(
        patch_as(
            &app,
            &dev.bearer,
            &format!("/v1/webhooks/{id}"),
            &json!({ "enabled": true }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(enabled["enabled"], true);
    assert!(
        enabled["failing_since"].is_null() && enabled["disabled_reason"].is_null(),
        "{enabled}"
    );
    assert!(!dashboard().await.contains("webhooks-disabled"));
}

#[tokio::test]
async fn internal_addresses_are_refused_when_saved_and_when_sending() {
    // The default: no private targets.
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(0);
    let (_, dev) = developer(&app, "ada@example.com", &SCOPES).await;
    let port = receiver.port;
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.1:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.7/hook".to_owned(),
        "http://192.168.1.20/hook".to_owned(),
        "http://[fd12::1]/hook".to_owned(),
        "http://100.100.100.200/".to_owned(),
        "ftp://example.com/".to_owned(),
        "https://user:secret@example.com/".to_owned(),
    ] {
        let body = failure(
            post_as(&app, &dev.bearer, "/v1/webhooks", &json!({ "url": url })).await,
            422,
            "validation_failed",
        )
        .await;
        assert!(body["error"]["fields"]["url"].is_string(), "{url}: {body}");
    }
    // A public address is accepted...
    let endpoint = success(
        post_as(
            &app,
            &dev.bearer,
            "/v1/webhooks",
            &json!({ "url": "http://93.184.215.14/hook" }),
        )
        .await,
        201,
    )
    .await;
    let id = endpoint["id"].as_str().unwrap();
    // ...and an internal one may not be reached later either (a changed DNS answer, a row
    // edited behind Keyport's back): the check is repeated at every delivery.
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        webhook_endpoint::Entity::update_many()
            .col_expr(webhook_endpoint::Column::Url, Expr::value(url.clone()))
            .filter(webhook_endpoint::Column::Id.eq(id))
            .exec(app.state.db.conn())
            .await
            .unwrap();
        success(
            post_as(
                &app,
                &dev.bearer,
                &format!("/v1/webhooks/{id}/test"),
                &json!({}),
            )
            .await,
            202,
        )
        .await;
    }
    let first_attempts = |log: &Value| -> Vec<Value> {
        log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["attempts"].as_array().and_then(|a| a.first().cloned()))
            .collect()
    };
    let log = poll(
        &app,
        &dev.bearer,
        &format!("/v1/webhooks/{id}/deliveries"),
        100,
        |log| first_attempts(log).len() == 2,
    )
    .await;
    let attempts = first_attempts(&log);
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    for a in &attempts {
        assert!(a["status_code"].is_null(), "{a}");
        assert!(
            a["error"].as_str().unwrap().contains("internal address"),
            "{a}"
        );
    }
    assert!(receiver.seen().is_empty(), "nothing reached the receiver");
}

#[tokio::test]
async fn endpoints_are_their_owners_and_events_reach_only_whom_they_concern() {
    let app = app_for_receivers().await;
    let (_, admin) = admin(&app).await;
    let (_, ada) = developer(&app, "ada@example.com", &SCOPES).await;
    let (_, bob) = developer(&app, "bob@example.com", &SCOPES).await;
    let (_, reader) = developer(&app, "rita@example.com", &["webhooks:read"]).await;
    let (_, keys_only) = developer(&app, "kim@example.com", &["keys:read"]).await;
    let url = "http://127.0.0.1:9/hook";

    let adas = success(
        post_as(&app, &ada.bearer, "/v1/webhooks", &json!({ "url": url })).await,
        201,
    )
    .await;
    let ada_hook = adas["id"].as_str().unwrap().to_owned();
    let platform = success(
        post_as(
            &app,
            &admin.bearer,
            "/v1/webhooks",
            &json!({ "url": url, "platform": true, "events": ["user.created", "key.created"] }),
        )
        .await,
        201,
    )
    .await;
    let platform_hook = platform["id"].as_str().unwrap().to_owned();

    // Bob cannot see or touch Ada's endpoint: 404, as for one that does not exist.
    for path in [
        format!("/v1/webhooks/{ada_hook}"),
        format!("/v1/webhooks/{ada_hook}/deliveries"),
    ] {
        not_found(get_as(&app, &bob.bearer, &path).await).await;
    }
    not_found(
        patch_as(
            &app,
            &bob.bearer,
            &format!("/v1/webhooks/{ada_hook}"),
            &json!({ "enabled": false }),
        )
        .await,
    )
    .await;
    not_found(
        post_as(
            &app,
            &bob.bearer,
            &format!("/v1/webhooks/{ada_hook}/test"),
            &json!({}),
        )
        .await,
    )
    .await;
    not_found(
        post_as(
            &app,
            &bob.bearer,
            &format!("/v1/webhooks/{ada_hook}/rotate-secret"),
            &json!({}),
        )
        .await,
    )
    .await;
    not_found(delete_as(&app, &bob.bearer, &format!("/v1/webhooks/{ada_hook}")).await).await;
    not_found(get_as(&app, &bob.bearer, "/v1/webhooks/whe_00000000000000000000").await).await;
    not_found(get_as(&app, &bob.bearer, "/v1/webhooks/not-an-id").await).await;
    let bobs = success(get_as(&app, &bob.bearer, "/v1/webhooks").await, 200).await;
    assert_eq!(bobs["webhooks"], json!([]));
    // A developer may not listen to everyone, nor list everyone's; scopes hold.
    forbidden(
        post_as(
            &app,
            &bob.bearer,
            "/v1/webhooks",
            &json!({ "url": url, "platform": true }),
        )
        .await,
    )
    .await;
    forbidden(get_as(&app, &bob.bearer, "/v1/webhooks?all=true").await).await;
    failure(
        post_as(
            &app,
            &bob.bearer,
            "/v1/webhooks",
            &json!({ "url": url, "events": ["user.created"] }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    forbidden(post_as(&app, &reader.bearer, "/v1/webhooks", &json!({ "url": url })).await).await;
    success(get_as(&app, &reader.bearer, "/v1/webhooks").await, 200).await;
    forbidden(get_as(&app, &keys_only.bearer, "/v1/webhooks").await).await;
    unauthorized(
        app.client
            .get(app.url("/v1/webhooks"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Unknown fields are refused, not ignored (no setting of the owner or the secret).
    failure(
        post_as(
            &app,
            &bob.bearer,
            "/v1/webhooks",
            &json!({ "url": url, "owner_id": "usr_x", "secret": "whsec_x" }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    // The admin sees every endpoint; and may act on Ada's.
    let all = success(
        get_as(&app, &admin.bearer, "/v1/webhooks?all=true").await,
        200,
    )
    .await;
    assert_eq!(all["webhooks"].as_array().unwrap().len(), 2);
    success(
        get_as(&app, &admin.bearer, &format!("/v1/webhooks/{ada_hook}")).await,
        200,
    )
    .await;

    // Events: Bob's key goes to the platform endpoint only; Ada's to both; a new user only to
    // the platform endpoint.
    success(
        post_as(&app, &bob.bearer, "/v1/keys", &new_key()).await,
        201,
    )
    .await;
    success(
        post_as(&app, &ada.bearer, "/v1/keys", &new_key()).await,
        201,
    )
    .await;
    app.state
        .accounts
        .sign_up("newcomer@example.com", PASSWORD, &RequestContext::default())
        .await
        .unwrap();
    assert_eq!(queued_for(&app, &ada_hook).await, ["key.created"]);
    assert_eq!(
        queued_for(&app, &platform_hook).await,
        ["key.created", "key.created", "user.created"]
    );

    // Deleting gives up what waits for the endpoint.
    assert_eq!(
        delete_as(&app, &ada.bearer, &format!("/v1/webhooks/{ada_hook}"))
            .await
            .status(),
        204
    );
    not_found(get_as(&app, &ada.bearer, &format!("/v1/webhooks/{ada_hook}")).await).await;
    let (_, left) = read(get_as(&app, &admin.bearer, "/v1/outbox?status=pending").await).await;
    assert!(
        left["messages"]
            .as_array()
            .is_none_or(|m| m.iter().all(|m| m["recipient"] != ada_hook.as_str())),
        "{left}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    use axum::{Router, http::StatusCode, routing::post};
    let app = app_for_receivers().await;
    let (_, dev) = developer(&app, "ada@example.com", &SCOPES).await;
    let followed = Arc::new(Mutex::new(0));
    let hits = followed.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = Router::new()
        .route(
            "/moved",
            post(move || async move {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [("location", format!("http://127.0.0.1:{port}/elsewhere"))],
                )
            }),
        )
        .route(
            "/elsewhere",
            post(move || {
                *hits.lock().unwrap() += 1;
                async { StatusCode::NO_CONTENT }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let endpoint = success(
        post_as(
            &app,
            &dev.bearer,
            "/v1/webhooks",
            &json!({ "url": format!("http://127.0.0.1:{port}/moved") }),
        )
        .await,
        201,
    )
    .await;
    let id = endpoint["id"].as_str().unwrap();
    success(
        post_as(
            &app,
            &dev.bearer,
            &format!("/v1/webhooks/{id}/test"),
            &json!({}),
        )
        .await,
        202,
    )
    .await;
    let log = poll(
        &app,
        &dev.bearer,
        &format!("/v1/webhooks/{id}/deliveries"),
        100,
        |log| !log["deliveries"][0]["attempts"][0].is_null(),
    )
    .await;
    let attempt = &log["deliveries"][0]["attempts"][0];
    assert_eq!(attempt["status_code"], 307, "{attempt}");
    assert_eq!(attempt["error"], "HTTP 307");
    assert_eq!(
        *followed.lock().unwrap(),
        0,
        "the redirect was not followed"
    );
}
