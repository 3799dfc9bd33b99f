//! The database-backed tower-sessions store, and what the sessions table may hold: digests of
//! ids, no plaintext secrets, no expired rows, and every session of a user from the first step.
use std::collections::HashMap;

use domain::{entities::session, sessions::digest};
use sea_orm::EntityTrait;

use server::session_store::{DbSessionStore, USER_ID_KEY};
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
};

use crate::{accounts::text_between, helpers::TestApp};

#[tokio::test]
async fn records_round_trip_and_remember_their_user() {
    let app = TestApp::spawn().await;
    let store = DbSessionStore::new(app.state.db.clone());
    let mut data = HashMap::new();
    data.insert(USER_ID_KEY.to_owned(), serde_json::json!("usr_abc"));
    let mut record = Record {
        id: Id::default(),
        data,
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
    };
    store.create(&mut record).await.unwrap();
    let loaded = store.load(&record.id).await.unwrap().expect("stored");
    assert_eq!(loaded.data, record.data);
    assert_eq!(
        loaded.expiry_date.unix_timestamp(),
        record.expiry_date.unix_timestamp()
    );
    let listed = domain::sessions::list_for_user(&app.state.db, "usr_abc", chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    store.delete(&record.id).await.unwrap();
    assert!(store.load(&record.id).await.unwrap().is_none());

    // An expired record never loads.
    let mut expired = Record {
        id: Id::default(),
        data: HashMap::new(),
        expiry_date: time::OffsetDateTime::now_utc() - time::Duration::seconds(1),
    };
    store.create(&mut expired).await.unwrap();
    assert!(store.load(&expired.id).await.unwrap().is_none());
}

/// Every session row's data, concatenated: what someone reading the table would see.
pub async fn all_session_data(app: &TestApp) -> String {
    session::Entity::find()
        .all(app.state.db.conn())
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id + " " + &row.data + "\n")
        .collect()
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "expected a redirect");
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The session cookie's value as the browser holds it.
fn cookie_value(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("keyport_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// The table holds the SHA-256 of each session id, never the id the browser presents; fresh
/// recovery codes wait for their one display sealed, not in plaintext.
#[tokio::test]
async fn the_sessions_table_holds_no_usable_secret() {
    let app = TestApp::spawn().await;
    let response = app
        .post_form(
            "/signup",
            &[
                ("email", "ada@example.com"),
                ("password", "glacier lantern pepper"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/enroll");
    let id = cookie_value(&response);
    let rows = all_session_data(&app).await;
    assert!(!rows.contains(&id), "a session id is stored as is");
    assert!(rows.contains(&digest(&id)), "{rows}");

    // Enrol, then look at the table before the recovery codes page is shown.
    let page = app.get("/enroll").await.text().await.unwrap();
    let key = text_between(&page, "data-testid=\"setup-key\"", "<");
    let seed = domain::accounts::totp::Seed::from_base32(key).unwrap();
    let code = seed.code_at(chrono::Utc::now().timestamp() as u64 - 30);
    let response = app.post_form("/enroll", &[("code", &code)]).await;
    assert_eq!(location(&response), "/enroll/recovery");
    let before_display = all_session_data(&app).await;
    let page = app.get("/enroll/recovery").await.text().await.unwrap();
    let list = text_between(&page, "data-testid=\"recovery-codes\"", "</ul>");
    let codes: Vec<&str> = list
        .split("<li>")
        .skip(1)
        .map(|li| li.split("</li>").next().unwrap())
        .collect();
    assert_eq!(codes.len(), 10, "{list}");
    for code in codes {
        assert!(
            !before_display.contains(code),
            "recovery code {code} stored in plaintext"
        );
    }
}

/// A session that passed only the password step belongs to its user: "sign out other
/// sessions" ends it, and after the owner resets 2FA it cannot read the new seed.
#[tokio::test]
async fn half_signed_in_sessions_end_with_the_others() {
    let app = TestApp::spawn().await;
    let (seed, _) = app.sign_up_and_enrol("victim@example.com").await;
    let attacker = app.another_browser();
    let response = attacker
        .post_form(
            "/login",
            &[
                ("email", "victim@example.com"),
                ("password", "glacier lantern pepper"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/login/code");
    assert_eq!(attacker.get("/login/code").await.status(), 200);

    let response = app.post_form("/settings/sessions/end-others", &[]).await;
    assert_eq!(location(&response), "/settings");
    assert_eq!(
        location(&attacker.get("/login/code").await),
        "/login",
        "the half-signed-in session survived 'sign out other sessions'"
    );

    // Again half signed in; the victim resets 2FA (a fresh code) and gets a new seed.
    attacker
        .post_form(
            "/login",
            &[
                ("email", "victim@example.com"),
                ("password", "glacier lantern pepper"),
            ],
        )
        .await;
    let now = chrono::Utc::now().timestamp() as u64;
    let response = app
        .post_form("/settings/2fa/reset", &[("code", &seed.code_at(now))])
        .await;
    assert_eq!(location(&response), "/enroll");
    let victims = app.get("/enroll").await.text().await.unwrap();
    assert!(victims.contains("data-testid=\"setup-key\""), "{victims}");
    let response = attacker.get("/enroll").await;
    if response.status() == 200 {
        let page = response.text().await.unwrap();
        assert!(
            !page.contains("data-testid=\"setup-key\""),
            "the attacker sees the new seed"
        );
    } else {
        assert_eq!(location(&response), "/login");
    }
}

/// Expired sessions are deleted by the background job (it runs at start, then every minute).
#[tokio::test]
async fn expired_sessions_are_pruned() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = server::Config::for_data_dir(data_dir.path());
    {
        let db = server::http::open_database(&config).await.unwrap();
        for (id, age) in [("old", -60), ("live", 3600)] {
            domain::sessions::save(
                &db,
                &domain::sessions::StoredSession {
                    id: digest(id),
                    data: "{}".into(),
                    expires_at: chrono::Utc::now() + chrono::Duration::seconds(age),
                    user_id: None,
                },
            )
            .await
            .unwrap();
        }
    }
    let app = TestApp::spawn_with(config, data_dir, None).await;
    let mut rows = String::new();
    for _ in 0..50 {
        rows = all_session_data(&app).await;
        if !rows.contains(&digest("old")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !rows.contains(&digest("old")),
        "the expired session is still there"
    );
    assert!(rows.contains(&digest("live")));
}

/// An admin's "End sessions" also ends a session that has passed only the password step.
#[tokio::test]
async fn an_admin_ends_half_signed_in_sessions_too() {
    let app = TestApp::spawn().await;
    app.sign_up_and_enrol("victim@example.com").await;
    let victim = app
        .state
        .accounts
        .find_by_email("victim@example.com")
        .await
        .unwrap()
        .unwrap();
    let attacker = app.another_browser();
    let response = attacker
        .post_form(
            "/login",
            &[
                ("email", "victim@example.com"),
                ("password", "glacier lantern pepper"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/login/code");

    // The admin, in a third browser, signs in (enrolling at first sign-in) and ends them.
    let admin = app.another_browser();
    admin.sign_in_new_admin().await;
    let r = admin
        .post_form(
            "/admin/users/action",
            &[("user_id", &victim.id), ("action", "end-sessions")],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    assert_eq!(
        location(&attacker.get("/login/code").await),
        "/login",
        "the half-signed-in session survived the admin's End sessions"
    );
    assert!(
        domain::sessions::list_for_user(&app.state.db, &victim.id, chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
}
