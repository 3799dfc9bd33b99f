//! Leak reports over real HTTP: a report signed with a test partner's ECDSA P-256 key revokes the
//! key at once (verification answers REVOKED), audits where it was found, raises an alert and
//! queues `key.leaked`; a bad signature is 401 and changes nothing; a false positive changes
//! nothing; admins may report with their key, developers may not.
use base64::{Engine, engine::general_purpose::STANDARD};
use domain::{
    audit::RequestContext,
    entities::{outbox, usage_alert},
    leaks::pem_of_point,
    service::Actor,
};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use server::Config;

use crate::{
    helpers::TestApp,
    keys_api::{forbidden, keyport_key, post_as, read, success, unauthorized},
    verify_support::verify,
};

const PASSWORD: &str = "glacier lantern pepper";

struct Partner {
    pair: EcdsaKeyPair,
    // Keeps the keys file alive as long as the app reads it.
    _file: tempfile::NamedTempFile,
}

impl Partner {
    fn new() -> (Partner, std::path::PathBuf) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        let keys = json!({ "public_keys": [
            { "key_identifier": "test-partner", "key": pem_of_point(pair.public_key().as_ref()), "is_current": true }
        ]});
        std::fs::write(file.path(), keys.to_string()).unwrap();
        let path = file.path().to_owned();
        (Partner { pair, _file: file }, path)
    }

    fn sign(&self, body: &[u8]) -> String {
        STANDARD.encode(self.pair.sign(&SystemRandom::new(), body).unwrap())
    }
}

async fn app_with(policy: &str) -> (TestApp, Partner) {
    let (partner, keys_file) = Partner::new();
    let data_dir = tempfile::tempdir().unwrap();
    let config = Config {
        leak_report_keys: Some(keys_file),
        leak_policy: policy.into(),
        webhooks_allow_private: true,
        ..Config::for_data_dir(data_dir.path())
    };
    (TestApp::spawn_with(config, data_dir, None).await, partner)
}

async fn signed(app: &TestApp, key_id: &str, signature: &str, body: &[u8]) -> reqwest::Response {
    app.client
        .post(app.url("/v1/leaks"))
        .header("content-type", "application/json")
        .header("Github-Public-Key-Identifier", key_id)
        .header("Github-Public-Key-Signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// A developer with a key of the built-in API, and a webhook endpoint for their events.
async fn developer_with_key(app: &TestApp) -> (Actor, String) {
    let user = app
        .state
        .accounts
        .sign_up("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .unwrap();
    let actor = Actor::new(user.id, false, RequestContext::default());
    let token = keyport_key(app, &actor, "leaky", &["keys:read"]).await;
    app.state
        .webhooks
        .create(
            &actor,
            domain::webhooks::NewEndpoint {
                url: "http://127.0.0.1:9/hooks".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (actor, token.bearer)
}

#[tokio::test]
async fn a_signed_report_revokes_the_key_at_once_and_says_where_it_leaked() {
    let (app, partner) = app_with("revoke").await;
    let (actor, key) = developer_with_key(&app).await;
    assert_eq!(verify(&app, json!({ "key": key })).await["valid"], true);
    let body = serde_json::to_vec(&json!([
        { "token": key, "type": "keyport_api_key", "url": "https://github.com/acme/app/blob/abc/config.py", "source": "content" },
        { "token": "kp_not_a_real_key", "type": "keyport_api_key", "url": "https://example.com", "source": "content" },
    ]))
    .unwrap();

    // A signature that does not match is refused, and nothing happens.
    let other = partner.sign(b"[]");
    unauthorized(signed(&app, "test-partner", &other, &body).await).await;
    unauthorized(signed(&app, "someone-else", &partner.sign(&body), &body).await).await;
    unauthorized(signed(&app, "test-partner", "bm90IGEgc2lnbmF0dXJl", &body).await).await;
    assert_eq!(verify(&app, json!({ "key": key })).await["valid"], true);

    let (status, verdicts) =
        read(signed(&app, "test-partner", &partner.sign(&body), &body).await).await;
    assert_eq!(status, 200, "{verdicts}");
    assert_eq!(verdicts[0]["label"], "true_positive");
    assert_eq!(verdicts[0]["token_type"], "keyport_api_key");
    assert_eq!(
        verdicts[0]["token_hash"],
        domain::keys::format::hash_hex(&key)
    );
    assert_eq!(verdicts[1]["label"], "false_positive");
    // Refused at once, everywhere it is checked.
    let answer = verify(&app, json!({ "key": key })).await;
    assert_eq!(answer["code"], "REVOKED", "{answer}");

    // The audit event says where it was found and who reported it.
    let (events, _) = domain::audit::search(
        &app.state.db,
        &domain::audit::Filter {
            action: Some("key.leaked".into()),
            ..Default::default()
        },
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1);
    let details: Value = serde_json::from_str(&events[0].event.details).unwrap();
    assert_eq!(
        details["url"],
        "https://github.com/acme/app/blob/abc/config.py"
    );
    assert_eq!(details["source"], "content");
    assert_eq!(details["reporter"], "partner:test-partner");
    assert_eq!(details["action"], "revoked");
    // An alert for the owner, and key.leaked (then key.revoked) for their webhooks.
    let alerts = usage_alert::Entity::find()
        .filter(usage_alert::Column::OwnerId.eq(actor.user_id.as_str()))
        .all(app.state.db.conn())
        .await
        .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule, "leaked");
    assert!(
        alerts[0].detail.contains("github.com/acme/app"),
        "{}",
        alerts[0].detail
    );
    let events: Vec<String> = outbox::Entity::find()
        .filter(outbox::Column::Channel.eq("webhook"))
        .all(app.state.db.conn())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert!(
        events.ends_with(&["key.leaked".to_owned(), "key.revoked".to_owned()]),
        "{events:?}"
    );

    // Reported again: still a true positive, nothing more to do.
    let (_, again) = read(signed(&app, "test-partner", &partner.sign(&body), &body).await).await;
    assert_eq!(again[0]["label"], "true_positive");
    let (_, list) = read(app.client.get(app.url("/v1/leaks")).send().await.unwrap()).await;
    assert_eq!(list["error"]["code"], "unauthorized");
    let reports = app.state.leaks.list(10, 0).await.unwrap().0;
    let actions: Vec<&str> = reports.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["none", "already revoked", "none", "revoked"]);
}

#[tokio::test]
async fn with_the_disable_policy_a_leaked_key_is_disabled_and_admins_may_report_too() {
    let (app, _partner) = app_with("disable").await;
    let (_, key) = developer_with_key(&app).await;
    let admin = app
        .state
        .accounts
        .create_admin("root@example.com", PASSWORD)
        .await
        .unwrap();
    let admin_actor = Actor::new(admin.id, true, RequestContext::default());
    let admin_key = keyport_key(&app, &admin_actor, "admin", &["admin"]).await;
    let developer_key = {
        let dev = app
            .state
            .accounts
            .find_by_email("ada@example.com")
            .await
            .unwrap()
            .unwrap();
        let actor = Actor::new(dev.id, false, RequestContext::default());
        keyport_key(&app, &actor, "management", &["keys:read", "keys:write"]).await
    };
    let body = json!([{ "token": key, "type": "keyport_api_key", "url": "https://pastebin.example/x", "source": "paste" }]);
    // Not a partner and not an admin: refused.
    unauthorized(
        app.client
            .post(app.url("/v1/leaks"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    forbidden(post_as(&app, &developer_key.bearer, "/v1/leaks", &body).await).await;
    assert_eq!(verify(&app, json!({ "key": key })).await["valid"], true);

    let verdicts = success(
        post_as(&app, &admin_key.bearer, "/v1/leaks", &body).await,
        200,
    )
    .await;
    assert_eq!(verdicts[0]["label"], "true_positive");
    assert_eq!(
        verify(&app, json!({ "key": key })).await["code"],
        "DISABLED"
    );
    let list = success(
        crate::keys_api::get_as(&app, &admin_key.bearer, "/v1/leaks").await,
        200,
    )
    .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["reports"][0]["action"], "disabled");
    assert!(
        list["reports"][0]["reporter"]
            .as_str()
            .unwrap()
            .starts_with("admin:")
    );
    // Too many tokens, or not a list: a clear 422.
    let many: Vec<Value> = (0..1001).map(|_| json!({ "token": "x" })).collect();
    let (status, _) = read(post_as(&app, &admin_key.bearer, "/v1/leaks", &json!(many)).await).await;
    assert_eq!(status, 422);
    let (status, _) = read(
        post_as(
            &app,
            &admin_key.bearer,
            "/v1/leaks",
            &json!({ "token": "x" }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn keyport_scan_reports_what_it_finds_and_the_live_key_is_revoked() {
    let (app, _partner) = app_with("revoke").await;
    let (_, key) = developer_with_key(&app).await;
    let admin = app
        .state
        .accounts
        .create_admin("root@example.com", PASSWORD)
        .await
        .unwrap();
    let admin_actor = Actor::new(admin.id, true, RequestContext::default());
    let admin_key = keyport_key(&app, &admin_actor, "ci", &["admin"]).await;
    let tree = tempfile::tempdir().unwrap();
    let stale = domain::keys::PlainKey::generate();
    std::fs::write(
        tree.path().join("deploy.sh"),
        format!("export KEY={key}\nexport OLD={}\n", stale.expose()),
    )
    .unwrap();

    // Off the test's runtime thread: the app answering the report runs on it.
    let (dir, address, token) = (
        tree.path().to_owned(),
        app.address.clone(),
        admin_key.bearer.clone(),
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_keyport"))
            .args(["scan", dir.to_str().unwrap(), "--report", &address])
            .env("KEYPORT_TOKEN", token)
            .env("KEYPORT_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let start = &key[..9];
    assert!(
        stdout.contains(&format!(
            "{start}…: a live key of that server: revoked (or disabled) now"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{}…: not a live key of that server",
            stale.start()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains(&key), "never the whole key");
    assert_eq!(verify(&app, json!({ "key": key })).await["code"], "REVOKED");
}
