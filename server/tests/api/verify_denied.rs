//! Verification that refuses a key (401 and 403 at the gateway), in the documented check order.
use chrono::Utc;
use domain::{
    accounts::Status,
    keys::{KeyPatch, KeyStatus, NewKey},
};
use serde_json::json;

use crate::{helpers::TestApp, verify_support::*};

fn unknown_key() -> String {
    domain::keys::PlainKey::generate().expose().to_owned()
}

async fn malformed_and_unknown_keys_are_unauthorized(app: &TestApp) {
    let w = world(app).await;
    let (good, _) = key(app, &w.dev, orders_key()).await;
    let mut broken = good.clone();
    broken.replace_range(10..11, if &good[10..11] == "a" { "b" } else { "a" });
    for (k, code) in [
        ("kp_short", "MALFORMED"),
        ("sk_live_1234", "MALFORMED"),
        (broken.as_str(), "MALFORMED"),
        (unknown_key().as_str(), "NOT_FOUND"),
    ] {
        assert_eq!(
            both(app, k, None, &[], None).await,
            (code.into(), 401, code.into()),
            "{k}"
        );
    }
    // The same unknown key again is answered from the negative cache, still NOT_FOUND.
    let unknown = unknown_key();
    for _ in 0..3 {
        assert_eq!(both(app, &unknown, None, &[], None).await.0, "NOT_FOUND");
    }
    // A key of another API is, for this API, not found; the body then carries no key details.
    let body = verify(app, json!({ "key": good, "api": "keyport" })).await;
    assert_eq!(body["code"], "NOT_FOUND");
    assert!(body.get("key_id").is_none());
    let r = forward(app, &good, &[("x-keyport-api", "keyport")]).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
}

async fn disabled_revoked_and_expired_keys_are_unauthorized(app: &TestApp) {
    let w = world(app).await;
    let (k, id) = key(app, &w.dev, orders_key()).await;
    let keys = &app.state.keys;
    keys.update(
        &w.dev,
        &id,
        KeyPatch {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        both(app, &k, None, &[], None).await,
        ("DISABLED".into(), 401, "DISABLED".into())
    );
    keys.update(
        &w.dev,
        &id,
        KeyPatch {
            enabled: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(both(app, &k, None, &[], None).await.0, "VALID");
    // Revocation takes effect on the very next request.
    keys.revoke(&w.dev, &id, None).await.unwrap();
    assert_eq!(
        both(app, &k, None, &[], None).await,
        ("REVOKED".into(), 401, "REVOKED".into())
    );
    // Revoked is final, so it comes before disabled: a revoked key that was also disabled
    // verifies and shows as revoked, whatever the order of the two changes.
    let (k2, id2) = key(app, &w.dev, orders_key()).await;
    keys.update(
        &w.dev,
        &id2,
        KeyPatch {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    keys.revoke(&w.dev, &id2, None).await.unwrap();
    assert_eq!(
        both(app, &k2, None, &[], None).await,
        ("REVOKED".into(), 401, "REVOKED".into())
    );
    let shown = keys.get(&w.dev, &id2).await.unwrap();
    assert_eq!(shown.status(Utc::now()), KeyStatus::Revoked);
    // And a revoked key of a suspended owner: the owner's status does not hide the revocation.
    let (k3, id3) = key(app, &w.dev, orders_key()).await;
    keys.revoke(&w.dev, &id3, None).await.unwrap();
    app.state
        .accounts
        .set_status(
            &w.admin.user_id,
            &w.dev.user_id,
            Status::Disabled,
            &Default::default(),
        )
        .await
        .unwrap();
    app.state
        .verifier
        .refresh_owner(&w.dev.user_id)
        .await
        .unwrap();
    assert_eq!(both(app, &k3, None, &[], None).await.0, "REVOKED");
    let shown = keys.get(&w.admin, &id3).await.unwrap();
    assert_eq!(shown.status(Utc::now()), KeyStatus::Revoked);
    app.state
        .accounts
        .set_status(
            &w.admin.user_id,
            &w.dev.user_id,
            Status::Active,
            &Default::default(),
        )
        .await
        .unwrap();
    app.state
        .verifier
        .refresh_owner(&w.dev.user_id)
        .await
        .unwrap();

    // Rotation: the old key works during its grace period, then answers EXPIRED.
    let (old, old_id) = key(app, &w.dev, orders_key()).await;
    let new = keys.rotate(&w.dev, &old_id, 1).await.unwrap();
    assert_eq!(both(app, &old, None, &[], None).await.0, "VALID");
    assert_eq!(
        both(app, new.plaintext.expose(), None, &[], None).await.0,
        "VALID"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        both(app, &old, None, &[], None).await,
        ("EXPIRED".into(), 401, "EXPIRED".into())
    );
    assert_eq!(
        both(app, new.plaintext.expose(), None, &[], None).await.0,
        "VALID"
    );
}

async fn a_disabled_owners_keys_stop_verifying(app: &TestApp) {
    let w = world(app).await;
    let (k, _) = key(app, &w.dev, orders_key()).await;
    app.state
        .accounts
        .set_status(
            &w.admin.user_id,
            &w.dev.user_id,
            Status::Disabled,
            &Default::default(),
        )
        .await
        .unwrap();
    app.state
        .verifier
        .refresh_owner(&w.dev.user_id)
        .await
        .unwrap();
    assert_eq!(
        both(app, &k, None, &[], None).await,
        ("DISABLED".into(), 401, "DISABLED".into())
    );
    app.state
        .accounts
        .set_status(
            &w.admin.user_id,
            &w.dev.user_id,
            Status::Active,
            &Default::default(),
        )
        .await
        .unwrap();
    app.state
        .verifier
        .refresh_owner(&w.dev.user_id)
        .await
        .unwrap();
    assert_eq!(both(app, &k, None, &[], None).await.0, "VALID");
}

async fn addresses_scopes_and_versions_are_forbidden(app: &TestApp) {
    let w = world(app).await;
    let new = NewKey {
        ip_allowlist: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
        ..orders_key()
    };
    let (k, _) = key(app, &w.dev, new).await;
    for (ip, code) in [
        ("10.1.2.3", "VALID"),
        ("2001:db8::7", "VALID"),
        ("2001:db9::7", "IP_NOT_ALLOWED"),
        ("203.0.113.7", "IP_NOT_ALLOWED"),
    ] {
        let body = verify(app, json!({ "key": k, "ip": ip })).await;
        assert_eq!(body["code"], code, "{ip}");
    }
    // No address given while the key has an allowlist: refused.
    assert_eq!(
        verify(app, json!({ "key": k })).await["code"],
        "IP_NOT_ALLOWED"
    );
    // Forward auth sees the TCP peer (127.0.0.1), which is not allowed.
    let r = forward(app, &k, &[]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-keyport-code"], "IP_NOT_ALLOWED");
    // The peer is a trusted proxy (loopback), so X-Forwarded-For names the client.
    let r = forward(app, &k, &[("x-forwarded-for", "10.9.9.9")]).await;
    assert_eq!(r.status(), 200);
    let r = forward(app, &k, &[("x-forwarded-for", "2001:db8::1, 127.0.0.1")]).await;
    assert_eq!(
        r.status(),
        200,
        "the right-most untrusted hop is the client"
    );
    let r = forward(app, &k, &[("x-real-ip", "10.9.9.9")]).await;
    assert_eq!(r.status(), 200);

    let (open, _) = key(app, &w.dev, orders_key()).await;
    assert_eq!(
        both(app, &open, None, &["orders:read", "orders:write"], None).await,
        (
            "INSUFFICIENT_SCOPE".into(),
            403,
            "INSUFFICIENT_SCOPE".into()
        )
    );
    assert_eq!(
        both(app, &open, Some("orders"), &["orders:read"], None)
            .await
            .0,
        "VALID"
    );
    assert_eq!(
        both(app, &open, None, &[], Some("v0")).await,
        ("VERSION_RETIRED".into(), 403, "VERSION_RETIRED".into())
    );
    // The check order: IP before scope before version.
    let body = verify(
        app,
        json!({ "key": k, "ip": "203.0.113.7", "scopes": ["orders:write"], "version": "v0" }),
    )
    .await;
    assert_eq!(body["code"], "IP_NOT_ALLOWED");
    let body = verify(
        app,
        json!({ "key": k, "ip": "10.0.0.1", "scopes": ["orders:write"], "version": "v0" }),
    )
    .await;
    assert_eq!(body["code"], "INSUFFICIENT_SCOPE");
}

/// With no trusted proxies, forwarding headers are ignored: the TCP peer is the client.
#[tokio::test]
async fn untrusted_peers_cannot_spoof_their_address() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = server::Config {
        trusted_proxies: vec![],
        ..server::Config::for_data_dir(data_dir.path())
    };
    let app = TestApp::spawn_with(config, data_dir, None).await;
    let w = world(&app).await;
    let new = NewKey {
        ip_allowlist: vec!["10.0.0.0/8".into()],
        ..orders_key()
    };
    let (k, _) = key(&app, &w.dev, new).await;
    for header in ["x-forwarded-for", "x-real-ip"] {
        let r = forward(&app, &k, &[(header, "10.1.1.1")]).await;
        assert_eq!(
            r.status(),
            403,
            "{header} from an untrusted peer must be ignored"
        );
        assert_eq!(r.headers()["x-keyport-code"], "IP_NOT_ALLOWED");
    }
}

on_both_databases!(
    malformed_and_unknown_keys_are_unauthorized,
    disabled_revoked_and_expired_keys_are_unauthorized,
    a_disabled_owners_keys_stop_verifying,
    addresses_scopes_and_versions_are_forbidden,
);
