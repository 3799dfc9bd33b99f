//! The key pages of the portal over HTTP, as a browser without JavaScript uses them: create a
//! key and see it once, rotate, revoke with step-up 2FA, the audit log, and who may see what.
use chrono::Utc;
use domain::{
    catalog::{NewApi, Scope},
    keys::format::hash_hex,
    service::Actor,
};
use reqwest::Response;
use server::Config;

use crate::helpers::TestApp;

fn location(response: &Response) -> String {
    assert_eq!(response.status(), 303, "expected a redirect");
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The value of the one-time key field, if the page shows one.
fn shown_key(html: &str) -> Option<String> {
    let at = html.find("data-testid=\"new-key\"")?;
    let tag_start = html[..at].rfind('<')?;
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>')?];
    let value = tag.split("value=\"").nth(1)?.split('"').next()?;
    Some(value.to_owned())
}

async fn register_orders(app: &TestApp) {
    let admin = app
        .state
        .accounts
        .create_admin("root@example.com", "glacier lantern pepper")
        .await
        .unwrap();
    app.state
        .keys
        .catalog()
        .create_api(
            &Actor::new(admin.id, true, Default::default()),
            NewApi {
                slug: "orders".into(),
                name: "Orders".into(),
                description: "The shop's orders".into(),
                scopes: vec![
                    Scope {
                        name: "orders:read".into(),
                        description: "Read orders".into(),
                    },
                    Scope {
                        name: "orders:write".into(),
                        description: "Change orders".into(),
                    },
                ],
                versions: vec![],
            },
        )
        .await
        .unwrap();
}

async fn create_key(app: &TestApp, name: &str, extra: &[(&str, &str)]) -> Response {
    let mut form = vec![
        ("api", "orders"),
        ("name", name),
        ("scopes", "orders:read"),
        ("expires", "30"),
    ];
    form.extend_from_slice(extra);
    app.post_form("/keys/new", &form).await
}

#[tokio::test]
async fn a_developer_creates_sees_once_rotates_and_revokes_a_key() {
    let app = TestApp::spawn().await;
    register_orders(&app).await;
    app.sign_up_and_enrol("ada@example.com").await;

    let page = app.get("/keys").await.text().await.unwrap();
    assert!(page.contains("No API keys yet"), "empty state missing");
    let page = app.get("/keys/new").await.text().await.unwrap();
    assert!(page.contains("href=\"/keys/new?api=orders\""), "{page}");
    let page = app.get("/keys/new?api=orders").await.text().await.unwrap();
    assert!(page.contains("value=\"orders:read\"") && page.contains("value=\"orders:write\""));

    // Create: redirected to the key's page, which shows the key exactly once, uncached.
    let response = create_key(&app, "checkout prod", &[("scopes", "orders:write")]).await;
    let key_page = location(&response);
    assert!(key_page.starts_with("/keys/key_"), "{key_page}");
    // Waiting for its one display, the key sits in the session sealed, not in plaintext.
    let sessions_before_display = crate::sessions::all_session_data(&app).await;
    let response = app.get(&key_page).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let html = response.text().await.unwrap();
    let plaintext = shown_key(&html).expect("the new key is shown");
    assert!(
        plaintext.starts_with("kp_") && plaintext.len() == 49,
        "{plaintext}"
    );
    let stored = app
        .state
        .keys
        .find_by_hash(&hash_hex(&plaintext))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(format!("/keys/{}", stored.id), key_page);
    assert_eq!(stored.scopes, ["orders:read", "orders:write"]);
    assert!(html.contains("Copy your new key now"));
    assert!(
        !sessions_before_display.contains(&plaintext),
        "the sessions table held the plaintext key"
    );
    let again = app.get(&key_page).await.text().await.unwrap();
    assert_eq!(shown_key(&again), None, "the key is shown only once");
    assert!(again.contains(&stored.start));

    // Listed, with its start and status.
    let list = app.get("/keys").await.text().await.unwrap();
    assert!(
        list.contains("checkout prod") && list.contains(&stored.start) && list.contains("Active")
    );

    // A developer cannot raise the plan's limits through the form.
    let response = create_key(
        &app,
        "greedy",
        &[("rate_limit", "1000"), ("rate_period_s", "1")],
    )
    .await;
    assert_eq!(location(&response), "/keys/new?api=orders");
    let page = app.get("/keys/new?api=orders").await.text().await.unwrap();
    assert!(
        page.contains("your plan allows at most 10 requests per 1 s"),
        "{page}"
    );
    assert!(page.contains("value=\"greedy\""), "the name is refilled");

    // Rotate with a grace period: the new key is shown once; the old one is rotating.
    let response = app
        .post_form(
            &format!("{key_page}/action"),
            &[("action", "rotate"), ("grace_period_s", "3600")],
        )
        .await;
    let new_page = location(&response);
    assert_ne!(new_page, key_page);
    let html = app.get(&new_page).await.text().await.unwrap();
    let rotated = shown_key(&html).expect("the rotated key is shown");
    assert_ne!(rotated, plaintext);
    let old = app.get(&key_page).await.text().await.unwrap();
    assert!(
        old.contains(">Rotating<") && old.contains("until "),
        "old key should be rotating, with the end of its grace period as a time"
    );

    // Revoke with a reason.
    let response = app
        .post_form(
            &format!("{new_page}/action"),
            &[("action", "revoke"), ("reason", "test over")],
        )
        .await;
    assert_eq!(location(&response), new_page);
    let html = app.get(&new_page).await.text().await.unwrap();
    assert!(html.contains("Key revoked. It no longer verifies.") && html.contains("test over"));

    // The audit log shows the whole story.
    let audit = app.get("/audit?action=key.").await.text().await.unwrap();
    for action in ["key.create", "key.rotate", "key.revoke"] {
        assert!(
            audit.contains(action),
            "{action} missing from the audit log"
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn key_changes_ask_for_a_fresh_code_after_the_step_up_window() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = Config {
        step_up_minutes: 0,
        ..Config::for_data_dir(data_dir.path())
    };
    let app = TestApp::spawn_with(config, data_dir, None).await;
    register_orders(&app).await;
    let (seed, _) = app.sign_up_and_enrol("ada@example.com").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let page = app.get("/keys/new?api=orders").await.text().await.unwrap();
    assert!(
        page.contains("Authentication code"),
        "the form asks for a code"
    );
    let response = create_key(&app, "no code", &[]).await;
    assert_eq!(location(&response), "/keys/new?api=orders");
    let page = app.get("/keys/new?api=orders").await.text().await.unwrap();
    assert!(page.contains("Enter the 6-digit code"), "{page}");
    let listed = app.get("/keys").await.text().await.unwrap();
    assert!(
        listed.contains("No API keys yet"),
        "nothing was created without the code"
    );

    let response = create_key(&app, "wrong code", &[("code", "000000")]).await;
    assert_eq!(location(&response), "/keys/new?api=orders");
    let code = seed.code_at(Utc::now().timestamp() as u64);
    let response = create_key(&app, "with code", &[("code", &code)]).await;
    let key_page = location(&response);
    assert!(key_page.starts_with("/keys/key_"));

    // Tying a key to a network needs no code; freeing it from its allowlist does.
    let action = format!("{key_page}/action");
    let allowlist = |list: &'static str, code: Option<String>| {
        let mut form = vec![
            ("action", "allowlist".to_owned()),
            ("ip_allowlist", list.to_owned()),
        ];
        form.extend(code.map(|c| ("code", c)));
        let app = &app;
        let action = action.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_form(&action, &form).await
        }
    };
    let stored = || async {
        let id = key_page.trim_start_matches("/keys/");
        app.state
            .keys
            .get(&domain::service::Actor::cli(), id)
            .await
            .unwrap()
            .ip_allowlist
    };
    allowlist("10.0.0.0/8", None).await;
    assert_eq!(stored().await, ["10.0.0.0/8"]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for list in ["", "0.0.0.0/0"] {
        assert_eq!(location(&allowlist(list, None).await), key_page);
        assert_eq!(
            stored().await,
            ["10.0.0.0/8"],
            "{list:?} was saved without a code"
        );
    }
    let next_step = seed.code_at(Utc::now().timestamp() as u64 + 30);
    allowlist("", Some(next_step)).await;
    assert!(
        stored().await.is_empty(),
        "with a fresh code the allowlist is removed"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn other_users_keys_and_admin_pages_stay_hidden() {
    let app = TestApp::spawn().await;
    register_orders(&app).await;
    app.sign_up_and_enrol("ada@example.com").await;
    let key_page = location(&create_key(&app, "ada's", &[]).await);

    let bob = app.another_browser();
    bob.sign_up_and_enrol("bob@example.com").await;
    let response = bob.get(&key_page).await;
    assert_eq!(response.status(), 404);
    let response = bob
        .post_form(&format!("{key_page}/action"), &[("action", "revoke")])
        .await;
    location(&response);
    let key_id = key_page.trim_start_matches("/keys/");
    let stored = app
        .state
        .keys
        .get(&Actor::new("x", true, Default::default()), key_id)
        .await
        .unwrap();
    assert!(
        stored.revoked_at.is_none(),
        "Bob could not revoke Ada's key"
    );
    assert!(
        !bob.get("/keys")
            .await
            .text()
            .await
            .unwrap()
            .contains("ada&#x27;s")
    );

    // Admin pages are not for developers, and their forms refuse them.
    assert_eq!(bob.get("/admin/apis").await.status(), 404);
    assert_eq!(bob.get("/admin/plans").await.status(), 404);
    let response = bob
        .post_form(
            "/admin/apis",
            &[("slug", "evil"), ("name", "Evil"), ("scopes", "a:b")],
        )
        .await;
    assert_eq!(location(&response), "/login");
    assert!(
        app.state
            .keys
            .catalog()
            .api_by_slug("evil")
            .await
            .unwrap()
            .is_none()
    );
    app.cleanup().await;
}

#[tokio::test]
async fn key_hygiene_lists_keys_needing_attention_and_revokes_them_in_bulk() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

    let app = TestApp::spawn().await;
    register_orders(&app).await;
    app.sign_up_and_enrol("ada@example.com").await;
    let page = app.get("/hygiene").await.text().await.unwrap();
    assert!(page.contains("Nothing to tidy up"), "empty state missing");

    // A key made ten days ago and never used, and one expiring in three days.
    let stale = location(&create_key(&app, "stale", &[]).await);
    let stale_id = stale.trim_start_matches("/keys/").to_owned();
    let soon = (Utc::now() + chrono::Duration::days(3))
        .format("%Y-%m-%d")
        .to_string();
    let expiring = location(
        &app.post_form(
            "/keys/new",
            &[
                ("api", "orders"),
                ("name", "short-lived"),
                ("scopes", "orders:read"),
                ("expires", "date"),
                ("expires_on", &soon),
            ],
        )
        .await,
    );
    let expiring_id = expiring.trim_start_matches("/keys/").to_owned();
    // A healthy key: new, used, expiring in 30 days.
    location(&create_key(&app, "healthy", &[]).await);
    domain::entities::api_key::Entity::update_many()
        .col_expr(
            domain::entities::api_key::Column::CreatedAt,
            Expr::value(Utc::now() - chrono::Duration::days(10)),
        )
        .filter(domain::entities::api_key::Column::Id.eq(stale_id.as_str()))
        .exec(app.state.db.conn())
        .await
        .unwrap();

    let page = app.get("/hygiene").await.text().await.unwrap();
    let section = |issue: &str| {
        let at = page
            .find(&format!("data-testid=\"hygiene-{issue}\""))
            .unwrap_or_else(|| panic!("no {issue} list in {page}"));
        page[at..].split("</section>").next().unwrap().to_owned()
    };
    assert!(section("never_used").contains(">stale<"));
    assert!(!section("never_used").contains(">healthy<"));
    assert!(section("expiring_soon").contains(">short-lived<"));
    assert!(!page.contains(">healthy<"), "a healthy key is not listed");
    let dashboard = app.get("/dashboard").await.text().await.unwrap();
    assert!(dashboard.contains("2 keys need attention"), "{dashboard}");

    // Another developer cannot revoke Ada's keys by naming them.
    let bob = app.another_browser();
    bob.sign_up_and_enrol("bob@example.com").await;
    let r = bob
        .post_form("/hygiene/revoke", &[("key", stale_id.as_str())])
        .await;
    assert_eq!(location(&r), "/hygiene");
    let page = bob.get("/hygiene").await.text().await.unwrap();
    assert!(page.contains("could not be revoked"), "{page}");

    // Nothing selected is explained; then both go at once.
    let r = app
        .post_form("/hygiene/revoke", &[("reason", "tidy")])
        .await;
    assert_eq!(location(&r), "/hygiene");
    let page = app.get("/hygiene").await.text().await.unwrap();
    assert!(page.contains("Select at least one key"), "{page}");
    let r = app
        .post_form(
            "/hygiene/revoke",
            &[
                ("key", stale_id.as_str()),
                ("key", expiring_id.as_str()),
                ("key", stale_id.as_str()),
                ("reason", "tidy"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/hygiene");
    let page = app.get("/hygiene").await.text().await.unwrap();
    assert!(page.contains("Revoked 2 keys."), "{page}");
    assert!(page.contains("Nothing to tidy up"), "{page}");
    let revoked = app.get(&stale).await.text().await.unwrap();
    assert!(revoked.contains("tidy"), "the reason is recorded");
}
