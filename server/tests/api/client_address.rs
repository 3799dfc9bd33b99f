//! One client address for the portal and the API: behind a trusted proxy the portal's per-IP
//! throttling, audit log and sessions see the client named by `X-Forwarded-For`, as `/v1/auth`
//! does; from any other peer those headers are ignored, so nobody picks their own address.
use domain::{
    accounts::throttle::{failures, ip_key},
    audit::{self, Filter},
};

use crate::helpers::TestApp;

const PASSWORD: &str = "glacier lantern pepper";

impl TestApp {
    async fn sign_in_from(&self, forwarded_for: &str, email: &str, password: &str) -> String {
        let response = self
            .client
            .post(self.url("/login"))
            .header("x-forwarded-for", forwarded_for)
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        // The flash is shown on the next page view.
        self.client
            .get(self.url("/login"))
            .header("x-forwarded-for", forwarded_for)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn last_audit_ip(&self) -> Option<String> {
        let (entries, _) = audit::search(&self.state.db, &Filter::default(), None, 1)
            .await
            .unwrap();
        entries.first().and_then(|e| e.event.ip.clone())
    }
}

/// The test client connects from 127.0.0.1, which the default configuration trusts as a proxy
/// (as a TLS proxy on the same machine would be).
#[tokio::test]
async fn behind_a_trusted_proxy_each_portal_visitor_keeps_their_own_address() {
    let app = TestApp::spawn().await;
    let page = app
        .sign_in_from("203.0.113.7", "nobody@example.com", "wrong password here")
        .await;
    assert!(page.contains("Incorrect email or password"), "{page}");
    let db = &app.state.db;
    assert_eq!(failures(db, &ip_key("203.0.113.7")).await.unwrap(), 1);
    assert_eq!(
        failures(db, &ip_key("127.0.0.1")).await.unwrap(),
        0,
        "the proxy's own address must not collect every visitor's failures"
    );
    assert_eq!(app.last_audit_ip().await.as_deref(), Some("203.0.113.7"));

    // One client's failures throttle that client only: the next visitor behind the same proxy
    // signs in at once.
    for i in 0..21 {
        app.sign_in_from(
            "203.0.113.7",
            &format!("guess{i}@example.com"),
            "wrong password here",
        )
        .await;
    }
    let page = app
        .sign_in_from(
            "203.0.113.7",
            "guess-more@example.com",
            "wrong password here",
        )
        .await;
    assert!(page.contains("Too many attempts"), "{page}");
    app.state
        .accounts
        .create_admin("root@example.com", PASSWORD)
        .await
        .unwrap();
    let other = app.another_browser();
    let page = other
        .sign_in_from("198.51.100.20", "root@example.com", "wrong password here")
        .await;
    assert!(
        page.contains("Incorrect email or password") && !page.contains("Too many"),
        "another client behind the same proxy was throttled: {page}"
    );
    assert_eq!(app.last_audit_ip().await.as_deref(), Some("198.51.100.20"));
    let response = other
        .client
        .post(other.url("/login"))
        .header("x-forwarded-for", "198.51.100.20")
        .form(&[("email", "root@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_ne!(response.headers()["location"], "/login");
}

/// From a peer that is not a trusted proxy, forwarding headers are ignored by the portal too:
/// a client cannot escape per-IP throttling, or write another address into the audit log, by
/// sending `X-Forwarded-For` or `X-Real-IP`.
#[tokio::test]
async fn an_untrusted_peer_cannot_choose_its_portal_address() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = server::Config {
        trusted_proxies: vec![],
        ..server::Config::for_data_dir(data_dir.path())
    };
    let app = TestApp::spawn_with(config, data_dir, None).await;
    for (i, spoofed) in ["203.0.113.7", "203.0.113.8", "2001:db8::1"]
        .into_iter()
        .enumerate()
    {
        app.sign_in_from(spoofed, &format!("x{i}@example.com"), "wrong password here")
            .await;
        assert_eq!(app.last_audit_ip().await.as_deref(), Some("127.0.0.1"));
        assert_eq!(failures(&app.state.db, &ip_key(spoofed)).await.unwrap(), 0);
    }
    let response = app
        .client
        .post(app.url("/login"))
        .header("x-real-ip", "192.0.2.1")
        .form(&[
            ("email", "y@example.com"),
            ("password", "wrong password here"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        failures(&app.state.db, &ip_key("127.0.0.1")).await.unwrap(),
        4,
        "every attempt counts against the real peer"
    );
    assert_eq!(
        failures(&app.state.db, &ip_key("192.0.2.1")).await.unwrap(),
        0
    );
}
