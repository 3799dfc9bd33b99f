//! Sign-up, enrolment, sign-in and sign-out over HTTP with a cookie-keeping client, as a browser
//! without JavaScript would do them.
use chrono::Utc;
use domain::accounts::{Status, totp::Seed};
use reqwest::Response;

use crate::helpers::TestApp;

const PASSWORD: &str = "glacier lantern pepper";

fn location(response: &Response) -> String {
    assert_eq!(response.status(), 303, "expected a redirect");
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn session_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("keyport_session="))
        .map(str::to_owned)
}

/// A unix time safely inside a 30 s step, so a code computed now is still current at the server.
async fn steady_now() -> u64 {
    let mut now = Utc::now().timestamp() as u64;
    if now % 30 > 26 {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        now = Utc::now().timestamp() as u64;
    }
    now
}

/// The text of the element whose opening tag contains `start`, up to `end`.
pub(crate) fn text_between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in page"))
        + start.len();
    let from = from + html[from..].find('>').unwrap() + 1;
    let to = from + html[from..].find(end).unwrap();
    &html[from..to]
}

impl TestApp {
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Signs up and enrols; returns the authenticator seed and the recovery codes.
    pub async fn sign_up_and_enrol(&self, email: &str) -> (Seed, Vec<String>) {
        let response = self
            .post_form("/signup", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(location(&response), "/enroll");
        let page = self.get("/enroll").await.text().await.unwrap();
        assert!(page.contains("Setup key"), "{page}");
        assert!(page.contains("<svg"), "QR code missing");
        let seed =
            Seed::from_base32(text_between(&page, "data-testid=\"setup-key\"", "<")).unwrap();
        // A code from the previous step (within the allowed drift), so sign-in can use the current one.
        let code = seed.code_at(steady_now().await - 30);
        let response = self.post_form("/enroll", &[("code", &code)]).await;
        assert_eq!(location(&response), "/enroll/recovery");
        let page = self.get("/enroll/recovery").await.text().await.unwrap();
        let list = text_between(&page, "data-testid=\"recovery-codes\"", "</ul>");
        let codes: Vec<String> = list
            .split("<li>")
            .skip(1)
            .map(|li| li.split("</li>").next().unwrap().to_owned())
            .collect();
        assert_eq!(codes.len(), 10, "{list}");
        (seed, codes)
    }

    /// Creates the admin `root@example.com` (as on the command line) and signs it in, enrolling
    /// at first sign-in with a code of the previous step; returns the authenticator seed.
    pub async fn sign_in_new_admin(&self) -> Seed {
        self.state
            .accounts
            .create_admin("root@example.com", "admin passphrase 4 keys")
            .await
            .unwrap();
        let r = self
            .post_form(
                "/login",
                &[
                    ("email", "root@example.com"),
                    ("password", "admin passphrase 4 keys"),
                ],
            )
            .await;
        assert_eq!(location(&r), "/enroll");
        let page = self.get("/enroll").await.text().await.unwrap();
        let seed =
            Seed::from_base32(text_between(&page, "data-testid=\"setup-key\"", "<")).unwrap();
        let code = seed.code_at(steady_now().await - 30);
        let r = self.post_form("/enroll", &[("code", &code)]).await;
        assert_eq!(location(&r), "/enroll/recovery");
        seed
    }

    pub async fn sign_in(&self, email: &str, code: &str) -> Response {
        let response = self
            .post_form("/login", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(location(&response), "/login/code");
        self.post_form("/login/code", &[("code", code)]).await
    }
}

#[tokio::test]
async fn sign_up_enrol_sign_out_and_sign_in_again() {
    let app = TestApp::spawn().await;
    let signup = app.get("/signup").await.text().await.unwrap();
    assert!(signup.contains("Create account") && signup.contains(r#"for="field-email""#));

    let (seed, _codes) = app.sign_up_and_enrol("ada@example.com").await;
    // The codes are shown once.
    let again = app.get("/enroll/recovery").await.text().await.unwrap();
    assert!(again.contains("already shown"));
    let dashboard = app.get("/dashboard").await.text().await.unwrap();
    assert!(dashboard.contains("ada@example.com"));
    assert!(dashboard.contains("Sign out"));

    assert_eq!(location(&app.post_form("/logout", &[]).await), "/");
    assert_eq!(location(&app.get("/dashboard").await), "/login");

    let code = seed.code_at(steady_now().await);
    let response = app.sign_in("ada@example.com", &code).await;
    assert_eq!(location(&response), "/dashboard");
    assert!(
        app.get("/dashboard")
            .await
            .text()
            .await
            .unwrap()
            .contains("ada@example.com")
    );
    // Signed-in visitors go straight to their dashboard.
    assert_eq!(location(&app.get("/").await), "/dashboard");
    assert_eq!(location(&app.get("/login").await), "/dashboard");

    // The same code again, in a new sign-in, is refused: each code works once.
    app.post_form("/logout", &[]).await;
    let replay = app.sign_in("ada@example.com", &code).await;
    assert_eq!(location(&replay), "/login/code");
    let page = app.get("/login/code").await.text().await.unwrap();
    assert!(page.contains("That code is not valid"), "{page}");
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let app = TestApp::spawn().await;
    let (_seed, codes) = app.sign_up_and_enrol("grace@example.com").await;
    app.post_form("/logout", &[]).await;
    assert_eq!(
        location(&app.sign_in("grace@example.com", &codes[0]).await),
        "/dashboard"
    );
    app.post_form("/logout", &[]).await;
    assert_eq!(
        location(&app.sign_in("grace@example.com", &codes[0]).await),
        "/login/code"
    );
}

#[tokio::test]
async fn errors_do_not_reveal_whether_an_email_exists() {
    let app = TestApp::spawn().await;
    app.sign_up_and_enrol("linus@example.com").await;
    app.post_form("/logout", &[]).await;

    let unknown = app
        .post_form(
            "/login",
            &[("email", "nobody@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&unknown), "/login");
    let unknown_page = app.get("/login").await.text().await.unwrap();
    let wrong = app
        .post_form(
            "/login",
            &[
                ("email", "linus@example.com"),
                ("password", "not my password!"),
            ],
        )
        .await;
    assert_eq!(location(&wrong), "/login");
    let wrong_page = app.get("/login").await.text().await.unwrap();
    assert!(unknown_page.contains("Incorrect email or password."));
    assert!(wrong_page.contains("Incorrect email or password."));
}

#[tokio::test]
async fn sign_up_errors_show_next_to_the_field_and_keep_the_email() {
    let app = TestApp::spawn().await;
    let response = app
        .post_form(
            "/signup",
            &[("email", "new@example.com"), ("password", "short")],
        )
        .await;
    assert_eq!(location(&response), "/signup");
    let page = app.get("/signup").await.text().await.unwrap();
    assert!(page.contains("Use at least 12 characters."), "{page}");
    assert!(page.contains(r#"value="new@example.com""#));
    assert!(page.contains(r#"aria-invalid="true""#));
    // Missing fields are a validation error, not a crash.
    let response = app.post_form("/signup", &[]).await;
    assert_eq!(location(&response), "/signup");
    assert!(
        app.get("/signup")
            .await
            .text()
            .await
            .unwrap()
            .contains("Enter an email address.")
    );
}

#[tokio::test]
async fn the_session_id_changes_at_sign_in() {
    let app = TestApp::spawn().await;
    let (seed, _) = app.sign_up_and_enrol("fix@example.com").await;
    app.post_form("/logout", &[]).await;
    // An anonymous session exists (it carries the sign-in error).
    let failed = app
        .post_form(
            "/login",
            &[
                ("email", "fix@example.com"),
                ("password", "wrong password!!"),
            ],
        )
        .await;
    let before = session_cookie(&failed).expect("a session cookie for the flash");
    assert!(
        before.contains("HttpOnly") && before.contains("SameSite=Lax") && before.contains("Path=/"),
        "{before}"
    );
    let step1 = app
        .post_form(
            "/login",
            &[("email", "fix@example.com"), ("password", PASSWORD)],
        )
        .await;
    let after_password = session_cookie(&step1).expect("new id after the password step");
    let step2 = app
        .post_form(
            "/login/code",
            &[("code", &seed.code_at(steady_now().await))],
        )
        .await;
    assert_eq!(location(&step2), "/dashboard");
    let after_code = session_cookie(&step2).expect("new id after the second factor");
    let id = |c: &str| c.split(';').next().unwrap().to_owned();
    assert_ne!(id(&before), id(&after_password));
    assert_ne!(id(&after_password), id(&after_code));

    // The pre-sign-in id is worthless: presenting it gets the sign-in page, not the dashboard.
    let stale = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = stale
        .get(app.url("/dashboard"))
        .header("cookie", id(&before))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/login");
}

#[tokio::test]
async fn cross_site_form_posts_are_refused() {
    let app = TestApp::spawn().await;
    let form = [("email", "x@example.com"), ("password", PASSWORD)];
    let by_fetch_metadata = app
        .client
        .post(app.url("/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(by_fetch_metadata.status(), 403);
    let by_origin = app
        .client
        .post(app.url("/signup"))
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(by_origin.status(), 403);
    let same_origin = app
        .client
        .post(app.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 303);
}

#[tokio::test]
async fn a_disabled_user_loses_their_sessions_and_cannot_sign_in() {
    let app = TestApp::spawn().await;
    let (seed, _) = app.sign_up_and_enrol("bob@example.com").await;
    assert_eq!(app.get("/dashboard").await.status(), 200);
    let user = app
        .state
        .accounts
        .find_by_email("bob@example.com")
        .await
        .unwrap()
        .unwrap();
    let admin = app
        .state
        .accounts
        .create_admin("root@example.com", "admin passphrase 4 keys")
        .await
        .unwrap();
    app.state
        .accounts
        .set_status(&admin.id, &user.id, Status::Disabled, &Default::default())
        .await
        .unwrap();

    assert_eq!(location(&app.get("/dashboard").await), "/login");
    let response = app
        .post_form(
            "/login",
            &[("email", "bob@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&response), "/login");
    assert!(
        app.get("/login")
            .await
            .text()
            .await
            .unwrap()
            .contains("This account is disabled")
    );
    let _ = seed;
}

#[tokio::test]
async fn pages_behind_sign_in_redirect_anonymous_visitors() {
    let app = TestApp::spawn().await;
    for path in ["/dashboard", "/enroll", "/login/code", "/enroll/recovery"] {
        assert_eq!(location(&app.get(path).await), "/login", "{path}");
    }
    let landing = app.get("/").await.text().await.unwrap();
    assert!(landing.contains(r#"href="/signup""#) && landing.contains(r#"href="/login""#));
}

#[tokio::test]
async fn postgres_sign_up_enrol_and_sign_in() {
    let app = TestApp::spawn_postgres().await;
    let (seed, _) = app.sign_up_and_enrol("pg@example.com").await;
    app.post_form("/logout", &[]).await;
    let response = app
        .sign_in("pg@example.com", &seed.code_at(steady_now().await))
        .await;
    assert_eq!(location(&response), "/dashboard");
    app.cleanup().await;
}

#[tokio::test]
async fn settings_change_password_and_end_other_sessions() {
    let app = TestApp::spawn().await;
    let (seed, _) = app.sign_up_and_enrol("set@example.com").await;
    // A second browser signs in too.
    let other = TestApp::client_for(&app);
    other
        .post(app.url("/login"))
        .form(&[("email", "set@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let r = other
        .post(app.url("/login/code"))
        .form(&[("code", &seed.code_at(steady_now().await))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/dashboard");

    let page = app.get("/settings").await.text().await.unwrap();
    assert!(page.contains("This session"), "{page}");
    assert_eq!(
        page.matches(">End session<").count(),
        1,
        "one other session to end"
    );
    assert!(
        page.contains("10 of 10 recovery codes unused"),
        "recovery code count"
    );

    // Wrong current password: an error next to the field, nothing changes.
    let r = app
        .post_form(
            "/settings/password",
            &[
                ("current_password", "wrong!"),
                ("new_password", "new harbour lights"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/settings");
    assert!(
        app.get("/settings")
            .await
            .text()
            .await
            .unwrap()
            .contains("Your current password is not correct.")
    );

    let r = app
        .post_form(
            "/settings/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "new harbour lights"),
                ("sign_out_others", "yes"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/settings");
    assert!(
        app.get("/settings")
            .await
            .text()
            .await
            .unwrap()
            .contains("Your other sessions were signed out.")
    );
    // The other browser is signed out; this one is not.
    let r = other.get(app.url("/dashboard")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/login");
    assert_eq!(app.get("/dashboard").await.status(), 200);

    // A third browser signs in; it is ended from the list by its handle (never its id).
    let third = TestApp::client_for(&app);
    third
        .post(app.url("/login"))
        .form(&[
            ("email", "set@example.com"),
            ("password", "new harbour lights"),
        ])
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(
        30 - Utc::now().timestamp() as u64 % 30,
    ))
    .await;
    let r = third
        .post(app.url("/login/code"))
        .form(&[("code", &seed.code_at(steady_now().await))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/dashboard");
    let page = app.get("/settings").await.text().await.unwrap();
    let handle = page
        .split(r#"name="handle" value=""#)
        .nth(1)
        .expect("an End session form")
        .split('"')
        .next()
        .unwrap();
    assert_eq!(handle.len(), 16);
    let r = app
        .post_form("/settings/sessions/end", &[("handle", handle)])
        .await;
    assert_eq!(location(&r), "/settings");
    assert!(
        app.get("/settings")
            .await
            .text()
            .await
            .unwrap()
            .contains("Session ended.")
    );
    assert_eq!(
        third
            .get(app.url("/dashboard"))
            .send()
            .await
            .unwrap()
            .headers()["location"],
        "/login"
    );
    assert_eq!(app.get("/dashboard").await.status(), 200);
}

#[tokio::test]
async fn admins_manage_users_and_developers_cannot() {
    let app = TestApp::spawn().await;
    let (dev_seed, _) = app.sign_up_and_enrol("dev@example.com").await;
    // A developer is refused the admin page and the admin actions, on the server.
    assert_eq!(app.get("/admin/users").await.status(), 404);
    let dev = app
        .state
        .accounts
        .find_by_email("dev@example.com")
        .await
        .unwrap()
        .unwrap();
    let r = app
        .post_form(
            "/admin/users/action",
            &[("user_id", &dev.id), ("action", "promote")],
        )
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        app.state
            .accounts
            .find(&dev.id)
            .await
            .unwrap()
            .unwrap()
            .role,
        domain::accounts::Role::Developer
    );
    app.post_form("/logout", &[]).await;

    // An admin (created on the command line, enrolled at first sign-in) sees and manages users.
    app.sign_in_new_admin().await;

    let page = app.get("/admin/users?q=dev").await.text().await.unwrap();
    assert!(
        page.contains("dev@example.com") && !page.contains("root@example.com (you)"),
        "search filters"
    );
    let page = app.get("/admin/users").await.text().await.unwrap();
    assert!(page.contains("root@example.com (you)") && page.contains("2 accounts"));
    assert!(
        page.contains("Confirm: disable"),
        "actions ask for confirmation"
    );

    let r = app
        .post_form(
            "/admin/users/action",
            &[("user_id", &dev.id), ("action", "disable")],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    assert!(
        app.get("/admin/users")
            .await
            .text()
            .await
            .unwrap()
            .contains("dev@example.com disabled")
    );
    let login = TestApp::client_for(&app);
    login
        .post(app.url("/login"))
        .form(&[("email", "dev@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let page = login
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("This account is disabled"));

    app.post_form(
        "/admin/users/action",
        &[("user_id", &dev.id), ("action", "enable")],
    )
    .await;
    app.post_form(
        "/admin/users/action",
        &[("user_id", &dev.id), ("action", "reset-2fa")],
    )
    .await;
    let r = login
        .post(app.url("/login"))
        .form(&[("email", "dev@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["location"],
        "/enroll",
        "after a 2FA reset the user enrols again"
    );
    let _ = dev_seed;

    // Ending a user's sessions signs them out everywhere.
    let dev_browser = TestApp::client_for(&app);
    domain::sessions::save(
        &app.state.db,
        &domain::sessions::StoredSession {
            id: "dev-session".into(),
            data: format!(r#"{{"user_id":"{}"}}"#, dev.id),
            expires_at: Utc::now() + chrono::Duration::minutes(30),
            user_id: Some(dev.id.clone()),
        },
    )
    .await
    .unwrap();
    let r = app
        .post_form(
            "/admin/users/action",
            &[("user_id", &dev.id), ("action", "end-sessions")],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    assert!(
        domain::sessions::list_for_user(&app.state.db, &dev.id, Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    let _ = dev_browser;

    // 100 failed sign-ins lock the account; the admin sees it and unlocks it.
    let key = domain::accounts::throttle::email_key(&dev.email);
    for _ in 0..100 {
        domain::accounts::throttle::record_failure(
            &app.state.db,
            &key,
            &domain::accounts::throttle::ACCOUNT,
            Utc::now(),
        )
        .await
        .unwrap();
    }
    let page = app.get("/admin/users?q=dev").await.text().await.unwrap();
    assert!(
        page.contains(">Locked<") && page.contains("Confirm: unlock"),
        "{page}"
    );
    let r = app
        .post_form(
            "/admin/users/action",
            &[("user_id", &dev.id), ("action", "unlock")],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    assert!(
        !app.get("/admin/users?q=dev")
            .await
            .text()
            .await
            .unwrap()
            .contains(">Locked<")
    );

    let admin = app
        .state
        .accounts
        .find_by_email("root@example.com")
        .await
        .unwrap()
        .unwrap();
    let r = app
        .post_form(
            "/admin/users/action",
            &[("user_id", &admin.id), ("action", "demote")],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    assert!(
        app.get("/admin/users")
            .await
            .text()
            .await
            .unwrap()
            .contains("You cannot change your own account here.")
    );
    let actions: Vec<String> = domain::audit::recent(&app.state.db, Some(&dev.id), 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in [
        "user.disable",
        "user.enable",
        "2fa.reset",
        "authz.denied",
        "user.unlock",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn closed_sign_up_refuses_new_accounts() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = server::Config {
        signup: "closed".into(),
        ..server::Config::for_data_dir(data_dir.path())
    };
    let app = TestApp::spawn_with(config, data_dir, None).await;
    let r = app
        .post_form(
            "/signup",
            &[("email", "new@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&r), "/signup");
    assert!(
        app.get("/signup")
            .await
            .text()
            .await
            .unwrap()
            .contains("Sign-up is closed")
    );
    assert!(
        app.state
            .accounts
            .find_by_email("new@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn behind_https_the_session_cookie_is_secure_and_host_prefixed() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = server::Config {
        public_url: Some("https://keys.example.com".into()),
        ..server::Config::for_data_dir(data_dir.path())
    };
    let app = TestApp::spawn_with(config, data_dir, None).await;
    let r = app
        .post_form(
            "/login",
            &[("email", "x@example.com"), ("password", PASSWORD)],
        )
        .await;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("keyport_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.starts_with("__Host-keyport_session="), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Domain="),
        "__Host- cookies carry no Domain: {cookie}"
    );
}

#[tokio::test]
async fn where_2fa_is_optional_users_sign_in_with_a_password_and_can_opt_in() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = server::Config {
        require_2fa: false,
        ..server::Config::for_data_dir(data_dir.path())
    };
    let app = TestApp::spawn_with(config, data_dir, None).await;
    let r = app
        .post_form(
            "/signup",
            &[("email", "opt@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&r), "/dashboard");
    let settings = app.get("/settings").await.text().await.unwrap();
    assert!(
        settings.contains("Set up two-factor authentication"),
        "{settings}"
    );
    app.post_form("/logout", &[]).await;
    let r = app
        .post_form(
            "/login",
            &[("email", "opt@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&r), "/dashboard", "no second step without 2FA");

    // Opting in: enrol, and from then on the code is needed.
    let r = app.post_form("/settings/2fa/setup", &[]).await;
    assert_eq!(location(&r), "/enroll");
    let page = app.get("/enroll").await.text().await.unwrap();
    let seed = Seed::from_base32(text_between(&page, "data-testid=\"setup-key\"", "<")).unwrap();
    let r = app
        .post_form(
            "/enroll",
            &[("code", &seed.code_at(steady_now().await - 30))],
        )
        .await;
    assert_eq!(location(&r), "/enroll/recovery");
    app.post_form("/logout", &[]).await;
    let r = app
        .post_form(
            "/login",
            &[("email", "opt@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&r), "/login/code");
}

#[tokio::test]
async fn sessions_end_after_their_absolute_lifetime_whatever_the_activity() {
    let app = TestApp::spawn().await;
    app.sign_up_and_enrol("old@example.com").await;
    assert_eq!(app.get("/dashboard").await.status(), 200);
    // Age the session: signed in 13 hours ago (the default limit is 12).
    let user = app
        .state
        .accounts
        .find_by_email("old@example.com")
        .await
        .unwrap()
        .unwrap();
    let now = Utc::now();
    for mut stored in domain::sessions::list_for_user(&app.state.db, &user.id, now)
        .await
        .unwrap()
    {
        let mut data: serde_json::Value = serde_json::from_str(&stored.data).unwrap();
        data["created_at"] = serde_json::json!(now.timestamp() - 13 * 3600);
        stored.data = data.to_string();
        domain::sessions::save(&app.state.db, &stored)
            .await
            .unwrap();
    }
    assert_eq!(location(&app.get("/dashboard").await), "/login");
    assert!(
        domain::sessions::list_for_user(&app.state.db, &user.id, now)
            .await
            .unwrap()
            .is_empty()
    );
}

/// With `KEYPORT_SECRET_KEY_FILE` the server key lives outside the data directory: a backup of
/// the data directory alone holds the encrypted TOTP seeds but not the key that opens them.
#[tokio::test]
async fn the_server_key_can_live_outside_the_data_directory() {
    let data_dir = tempfile::tempdir().unwrap();
    let data_path = data_dir.path().to_owned();
    let secrets = tempfile::tempdir().unwrap();
    let key_file = secrets.path().join("keyport").join("secret.key");
    let config = server::Config {
        secret_key_file: Some(key_file.clone()),
        ..server::Config::for_data_dir(&data_path)
    };
    let app = TestApp::spawn_with(config, data_dir, None).await;
    let (seed, _) = app.sign_up_and_enrol("kim@example.com").await;
    assert!(key_file.exists(), "the key file was not created");
    let in_data_dir: Vec<_> = std::fs::read_dir(&data_path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !in_data_dir.iter().any(|name| name.contains("secret")),
        "{in_data_dir:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The seed stored in the database opens with that key: signing in with a code works.
    app.post_form("/logout", &[]).await;
    let code = seed.code_at(steady_now().await);
    assert_eq!(
        location(&app.sign_in("kim@example.com", &code).await),
        "/dashboard"
    );
}

/// Changing who may do what asks for a fresh 2FA code, like key changes do: promoting or
/// demoting, disabling, resetting 2FA, moving a user to another plan and changing the default
/// plan. Without the code nothing changes; with it the change is made.
#[tokio::test]
async fn admin_changes_ask_for_a_fresh_code_after_the_step_up_window() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = server::Config {
        step_up_minutes: 0,
        ..server::Config::for_data_dir(data_dir.path())
    };
    let app = TestApp::spawn_with(config, data_dir, None).await;
    let accounts = &app.state.accounts;
    let dev = accounts
        .sign_up("dev@example.com", PASSWORD, &Default::default())
        .await
        .unwrap();
    let seed = app.sign_in_new_admin().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let page = app.get("/admin/users").await.text().await.unwrap();
    assert!(
        page.contains("id=\"code-promote-") && page.contains("id=\"plan-code-"),
        "the forms ask for a code"
    );
    let role = || async { accounts.find(&dev.id).await.unwrap().unwrap().role };
    for code in [None, Some("000000")] {
        let mut form = vec![("user_id", dev.id.as_str()), ("action", "promote")];
        form.extend(code.map(|c| ("code", c)));
        let r = app.post_form("/admin/users/action", &form).await;
        assert_eq!(location(&r), "/admin/users");
        assert_eq!(role().await, domain::accounts::Role::Developer, "{code:?}");
    }
    let page = app.get("/admin/users").await.text().await.unwrap();
    assert!(page.contains("Confirm it is you"), "{page}");
    // Disabling and resetting 2FA are guarded the same way.
    for action in ["disable", "reset-2fa", "demote"] {
        let r = app
            .post_form(
                "/admin/users/action",
                &[("user_id", &dev.id), ("action", action)],
            )
            .await;
        assert_eq!(location(&r), "/admin/users");
    }
    let after = accounts.find(&dev.id).await.unwrap().unwrap();
    assert_eq!(after.status, Status::Active, "disabled without a code");
    let audited = domain::audit::search(
        &app.state.db,
        &domain::audit::Filter {
            target: Some(dev.id.clone()),
            ..Default::default()
        },
        None,
        50,
    )
    .await
    .unwrap()
    .0;
    assert!(
        !audited.iter().any(
            |e| ["user.disable", "2fa.reset", "user.promote", "user.demote"]
                .contains(&e.event.action.as_str())
        ),
        "an admin action was made without a code"
    );

    // A plan change without the code changes nothing either.
    let plan = app
        .state
        .keys
        .catalog()
        .create_plan(
            &domain::service::Actor::cli(),
            domain::catalog::PlanInput {
                name: "Gold".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = app
        .post_form(
            "/admin/users/plan",
            &[("user_id", &dev.id), ("plan_id", &plan.id)],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    assert_eq!(accounts.find(&dev.id).await.unwrap().unwrap().plan_id, None);
    let r = app
        .post_form("/admin/plans/default", &[("plan_id", &plan.id)])
        .await;
    assert_eq!(location(&r), "/admin/plans");
    let default = app.state.keys.catalog().default_plan().await.unwrap();
    assert_ne!(
        default.id, plan.id,
        "the default plan changed without a code"
    );

    // With a fresh code, the change is made.
    let code = seed.code_at(steady_now().await);
    let r = app
        .post_form(
            "/admin/users/action",
            &[("user_id", &dev.id), ("action", "promote"), ("code", &code)],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    assert_eq!(role().await, domain::accounts::Role::Admin);
}

/// Someone who still has recovery codes from before 120-bit codes is asked, on the settings page,
/// to make new ones: before the background job rewraps them and after.
#[tokio::test]
async fn settings_ask_for_new_codes_while_legacy_ones_remain() {
    use domain::{accounts::recovery, entities::recovery_code};
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let app = TestApp::spawn().await;
    app.sign_up_and_enrol("legacy@example.com").await;
    const NOTICE: &str = "come from an earlier version of Keyport";
    let page = app.get("/settings").await.text().await.unwrap();
    assert!(!page.contains(NOTICE), "no notice with today's codes");
    let user = app
        .state
        .accounts
        .find_by_email("legacy@example.com")
        .await
        .unwrap()
        .unwrap();
    recovery_code::Entity::insert_many([recovery_code::ActiveModel {
        user_id: Set(user.id.clone()),
        code_hash: Set(format!("legacy:{}", recovery::digest("abcde-fghjk"))),
        used_at: Set(None),
        created_at: Set(Utc::now()),
        ..Default::default()
    }])
    .exec_without_returning(app.state.db.conn())
    .await
    .unwrap();
    let page = app.get("/settings").await.text().await.unwrap();
    assert!(page.contains(NOTICE), "{page}");
    assert_eq!(
        app.state
            .accounts
            .rewrap_legacy_recovery_codes(10)
            .await
            .unwrap(),
        1
    );
    let page = app.get("/settings").await.text().await.unwrap();
    assert!(page.contains(NOTICE), "still asked after the rewrap");
    app.cleanup().await;
}
