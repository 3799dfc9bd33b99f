//! The email flows against a real SMTP server (aiosmtpd over TCP), as a browser without
//! JavaScript would use them: verified sign-up that never says whether an address has an
//! account, forgot password, the security notice, and the outbox's retries while SMTP is down.
use chrono::{Duration, Utc};
use domain::{
    audit::RequestContext,
    entities::email_token,
    keys::NewKey,
    service::{Actor, ServiceError},
};
use reqwest::Response;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use server::Config;

use crate::{
    accounts::text_between,
    helpers::{SmtpServer, TestApp},
};

const PUBLIC_URL: &str = "http://keys.example.test";
const PASSWORD: &str = "glacier lantern pepper";

fn location(response: &Response) -> String {
    assert_eq!(response.status(), 303, "expected a redirect");
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn app_mailing_to(smtp: &SmtpServer) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let config = Config {
        smtp_url: Some(smtp.url()),
        public_url: Some(PUBLIC_URL.into()),
        ..Config::for_data_dir(data_dir.path())
    };
    TestApp::spawn_with(config, data_dir, None).await
}

/// The notice a page shows after a form (the `role="status"` box).
async fn notice(app: &TestApp, path: &str) -> String {
    let page = app.get(path).await.text().await.unwrap();
    text_between(&page, "role=\"status\"", "<").to_owned()
}

fn key_for(user_id: &str) -> (Actor, NewKey) {
    (
        Actor::new(user_id, false, RequestContext::default()),
        NewKey {
            name: "first".into(),
            api: "keyport".into(),
            scopes: vec!["keys:read".into()],
            expires_at: Some(Utc::now() + Duration::days(30)),
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn sign_up_mails_a_link_that_confirms_the_address_once() {
    let smtp = SmtpServer::start().await;
    let app = app_mailing_to(&smtp).await;

    let r = app
        .post_form(
            "/signup",
            &[("email", "Ada@Example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        location(&r),
        "/login",
        "no session before the address is confirmed"
    );
    assert!(
        notice(&app, "/login")
            .await
            .starts_with("Check your inbox: we sent a message to Ada@Example.com")
    );

    let mail = smtp.wait_for("ada@example.com", 1).await.remove(0);
    assert_eq!(mail.subject, "Confirm your email address for Keyport");
    assert_eq!(mail.from, "keyport@keys.example.test");
    assert!(mail.text.contains("When: "), "{}", mail.text);
    assert!(
        mail.html
            .contains("href=\"http://keys.example.test/verify-email/")
    );
    assert!(!mail.raw.contains(PASSWORD), "the password never travels");

    // Unconfirmed: the account exists but may not create keys.
    let user = app
        .state
        .accounts
        .find_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!user.email_verified);
    let (actor, new) = key_for(&user.id);
    let refused = app.state.keys.create(&actor, new.clone()).await;
    assert!(
        matches!(&refused, Err(ServiceError::Conflict(m)) if m.contains("Confirm your email")),
        "{refused:?}"
    );

    // Opening the link changes nothing (mail scanners open links); the button confirms.
    let link = mail.link_path(PUBLIC_URL, "/verify-email/");
    let page = app.get(&link).await.text().await.unwrap();
    assert!(page.contains("Confirm email address") && page.contains("ada@example.com"));
    assert!(
        !app.state
            .accounts
            .find(&user.id)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    let r = app.post_form(&link, &[]).await;
    assert_eq!(location(&r), "/login");
    assert_eq!(
        notice(&app, "/login").await,
        "ada@example.com is confirmed. Sign in to create API keys."
    );
    assert!(
        app.state
            .accounts
            .find(&user.id)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    app.state
        .keys
        .create(&actor, new)
        .await
        .expect("a confirmed developer creates keys");

    // The link works once.
    let r = app.post_form(&link, &[]).await;
    assert_eq!(location(&r), link);
    let page = app.get(&link).await.text().await.unwrap();
    assert!(
        page.contains("This link has expired or was already used"),
        "{page}"
    );
    // A made-up token is the same dead link, and costs no query.
    let page = app
        .get("/verify-email/not-a-token")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("This link has expired or was already used"));
}

#[tokio::test]
async fn sign_up_answers_alike_for_taken_and_new_addresses() {
    let smtp = SmtpServer::start().await;
    let app = app_mailing_to(&smtp).await;
    app.state
        .accounts
        .sign_up("taken@example.com", PASSWORD, &RequestContext::default())
        .await
        .unwrap();

    let other = app.another_browser();
    let taken = app
        .post_form(
            "/signup",
            &[
                ("email", "taken@example.com"),
                ("password", "a different passphrase 9"),
            ],
        )
        .await;
    let fresh = other
        .post_form(
            "/signup",
            &[
                ("email", "fresh@example.com"),
                ("password", "a different passphrase 9"),
            ],
        )
        .await;
    assert_eq!(location(&taken), location(&fresh));
    assert_eq!(
        notice(&app, "/login").await.replace("taken@", "x@"),
        notice(&other, "/login").await.replace("fresh@", "x@")
    );

    let to_taken = smtp.wait_for("taken@example.com", 1).await.remove(0);
    assert_eq!(
        to_taken.subject,
        "Someone tried to sign up with your email address"
    );
    assert!(to_taken.text.contains("http://keys.example.test/login"));
    assert!(
        to_taken
            .text
            .contains("http://keys.example.test/forgot-password")
    );
    assert!(!to_taken.text.contains("/verify-email/"));
    let to_fresh = smtp.wait_for("fresh@example.com", 1).await.remove(0);
    assert!(to_fresh.text.contains("/verify-email/"));

    // Nothing about the existing account changed: its password still works.
    app.state
        .accounts
        .sign_in_password(
            "taken@example.com",
            PASSWORD,
            &RequestContext::default(),
            Utc::now(),
        )
        .await
        .expect("the old password still signs in");
}

/// Creates a developer (without email) and enrols them in `app`'s browser; returns the seed.
async fn enrolled_developer(app: &TestApp, email: &str) -> domain::accounts::totp::Seed {
    app.state
        .accounts
        .sign_up(email, PASSWORD, &RequestContext::default())
        .await
        .unwrap();
    let r = app
        .post_form("/login", &[("email", email), ("password", PASSWORD)])
        .await;
    assert_eq!(location(&r), "/enroll");
    let page = app.get("/enroll").await.text().await.unwrap();
    let seed = domain::accounts::totp::Seed::from_base32(text_between(
        &page,
        "data-testid=\"setup-key\"",
        "<",
    ))
    .unwrap();
    let code = seed.code_at(Utc::now().timestamp() as u64 - 30);
    let r = app.post_form("/enroll", &[("code", &code)]).await;
    assert_eq!(location(&r), "/enroll/recovery");
    seed
}

#[tokio::test]
async fn forgot_password_resets_once_ends_every_session_and_still_asks_for_the_code() {
    let smtp = SmtpServer::start().await;
    let app = app_mailing_to(&smtp).await;
    enrolled_developer(&app, "grace@example.com").await;
    assert_eq!(app.get("/dashboard").await.status(), 200, "signed in");

    let login_page = app.another_browser();
    let page = login_page.get("/login").await.text().await.unwrap();
    assert!(
        page.contains("href=\"/forgot-password\""),
        "the login page offers a reset"
    );

    let visitor = app.another_browser();
    let r = visitor
        .post_form("/forgot-password", &[("email", "grace@example.com")])
        .await;
    assert_eq!(location(&r), "/login");
    let mail = smtp.wait_for("grace@example.com", 1).await.remove(0);
    assert_eq!(mail.subject, "Reset your Keyport password");
    assert!(mail.text.contains("expires in 1 hour"));
    let link = mail.link_path(PUBLIC_URL, "/reset/");

    let page = visitor.get(&link).await.text().await.unwrap();
    assert!(page.contains("Choose a new password") && page.contains("grace@example.com"));

    // A weak password is refused next to the field, and the link still works.
    let r = visitor.post_form(&link, &[("password", "short")]).await;
    assert_eq!(location(&r), link);
    let page = visitor.get(&link).await.text().await.unwrap();
    assert!(page.contains("field-password-error"), "{page}");

    let new_password = "a brand new passphrase 7";
    let r = visitor
        .post_form(&link, &[("password", new_password)])
        .await;
    assert_eq!(location(&r), "/login");
    assert!(
        notice(&visitor, "/login")
            .await
            .starts_with("Your password was changed and every session was signed out")
    );

    // Every session ended, the link is spent, and the second factor is still asked for.
    assert_eq!(location(&app.get("/dashboard").await), "/login");
    let r = visitor
        .post_form(&link, &[("password", "yet another passphrase 8")])
        .await;
    assert_eq!(location(&r), link);
    assert!(
        visitor
            .get(&link)
            .await
            .text()
            .await
            .unwrap()
            .contains("This link has expired or was already used")
    );
    let r = visitor
        .post_form(
            "/login",
            &[("email", "grace@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&r), "/login", "the old password is gone");
    let r = visitor
        .post_form(
            "/login",
            &[("email", "grace@example.com"), ("password", new_password)],
        )
        .await;
    assert_eq!(location(&r), "/login/code", "a reset never skips 2FA");

    let notices = smtp.wait_for("grace@example.com", 2).await;
    assert_eq!(notices[1].subject, "Your Keyport password was changed");
    assert!(notices[1].text.contains("every session was signed out"));
    assert!(!notices[1].text.contains(new_password));

    let actions: Vec<String> = domain::entities::audit_event::Entity::find()
        .all(app.state.accounts.db().conn())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"password.reset_request".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"password.reset".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn an_expired_reset_link_is_refused() {
    let smtp = SmtpServer::start().await;
    let app = app_mailing_to(&smtp).await;
    app.state
        .accounts
        .sign_up("lin@example.com", PASSWORD, &RequestContext::default())
        .await
        .unwrap();
    app.post_form("/forgot-password", &[("email", "lin@example.com")])
        .await;
    let link = smtp.wait_for("lin@example.com", 1).await[0].link_path(PUBLIC_URL, "/reset/");
    email_token::Entity::update_many()
        .col_expr(
            email_token::Column::ExpiresAt,
            Expr::value(Utc::now() - Duration::minutes(1)),
        )
        .filter(email_token::Column::Purpose.eq("reset_password"))
        .exec(app.state.accounts.db().conn())
        .await
        .unwrap();
    let page = app.get(&link).await.text().await.unwrap();
    assert!(page.contains("This link has expired or was already used"));
    let r = app
        .post_form(&link, &[("password", "a brand new passphrase 7")])
        .await;
    assert_eq!(location(&r), link);
    app.state
        .accounts
        .sign_in_password(
            "lin@example.com",
            PASSWORD,
            &RequestContext::default(),
            Utc::now(),
        )
        .await
        .expect("the password did not change");
}

#[tokio::test]
async fn forgot_password_answers_alike_for_unknown_addresses_and_is_throttled() {
    let smtp = SmtpServer::start().await;
    let app = app_mailing_to(&smtp).await;
    app.state
        .accounts
        .sign_up("known@example.com", PASSWORD, &RequestContext::default())
        .await
        .unwrap();
    let other = app.another_browser();
    let known = app
        .post_form("/forgot-password", &[("email", "known@example.com")])
        .await;
    let unknown = other
        .post_form("/forgot-password", &[("email", "unknown@example.com")])
        .await;
    assert_eq!(location(&known), location(&unknown));
    assert_eq!(
        notice(&app, "/login").await.replace("known@", "x@"),
        notice(&other, "/login").await.replace("unknown@", "x@")
    );
    assert!(
        smtp.wait_for("known@example.com", 1).await[0]
            .text
            .contains("/reset/")
    );
    let to_unknown = smtp.wait_for("unknown@example.com", 1).await.remove(0);
    assert_eq!(to_unknown.subject, "Keyport password reset");
    assert!(
        !to_unknown.text.contains("/reset/"),
        "no link for an address without an account"
    );

    // A malformed address is a field error, the same for everyone.
    let r = app
        .post_form("/forgot-password", &[("email", "not-an-address")])
        .await;
    assert_eq!(location(&r), "/forgot-password");
    let page = app.get("/forgot-password").await.text().await.unwrap();
    assert!(page.contains("Enter an email address like name@example.com."));

    // Five requests an hour per address, known or not; the sixth waits.
    for address in ["known@example.com", "unknown@example.com"] {
        for _ in 0..4 {
            let r = app
                .post_form("/forgot-password", &[("email", address)])
                .await;
            assert_eq!(location(&r), "/login");
        }
        let r = app
            .post_form("/forgot-password", &[("email", address)])
            .await;
        assert_eq!(location(&r), "/forgot-password", "{address}");
        let page = app.get("/forgot-password").await.text().await.unwrap();
        assert!(
            page.contains("Too many requests, try again in"),
            "{address}"
        );
    }
}

#[tokio::test]
async fn a_message_queued_while_smtp_is_down_arrives_once_it_is_back() {
    let mut smtp = SmtpServer::stopped(crate::helpers::free_port().await);
    let app = app_mailing_to(&smtp).await;
    let r = app
        .post_form("/forgot-password", &[("email", "later@example.com")])
        .await;
    assert_eq!(location(&r), "/login", "the request does not wait for SMTP");
    let outbox = app.state.outbox.clone().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let failed = loop {
        let (rows, _) = outbox.list(None, 10, 0).await.unwrap();
        if let Some(row) = rows.into_iter().find(|r| r.attempts >= 1) {
            break row;
        }
        assert!(std::time::Instant::now() < deadline, "no attempt was made");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(failed.status, "pending", "kept for a retry");
    assert!(failed.last_error.is_some());
    assert!(failed.next_attempt_at > failed.created_at);

    smtp.restart().await;
    let mail = smtp.wait_for_within("later@example.com", 1, 30).await;
    assert_eq!(mail.len(), 1);
    // Later passes of the worker do not send it again.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(
        smtp.messages()
            .iter()
            .filter(|m| m.to == "later@example.com")
            .count(),
        1
    );
    let (rows, _) = outbox.list(Some("sent"), 10, 0).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 2);
    assert_eq!(rows[0].last_error, None);
}

#[tokio::test]
async fn without_smtp_there_are_no_email_flows() {
    let app = TestApp::spawn().await;
    let page = app.get("/login").await.text().await.unwrap();
    assert!(!page.contains("Forgot password?"));
    let page = app.get("/forgot-password").await.text().await.unwrap();
    assert!(page.contains("This Keyport does not send email"));
    let r = app
        .post_form("/forgot-password", &[("email", "a@example.com")])
        .await;
    assert_eq!(r.status(), 404);
    assert!(app.state.outbox.is_none());
}

#[tokio::test]
async fn an_admin_invites_someone_who_signs_up_with_the_address_fixed() {
    let smtp = SmtpServer::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let config = Config {
        smtp_url: Some(smtp.url()),
        public_url: Some(PUBLIC_URL.into()),
        signup: "closed".into(),
        ..Config::for_data_dir(data_dir.path())
    };
    let admin = TestApp::spawn_with(config, data_dir, None).await;
    admin.sign_in_new_admin().await;

    let r = admin
        .post_form(
            "/admin/users/invite",
            &[
                ("email", "Newcomer@example.com"),
                ("role", "developer"),
                ("plan_id", ""),
            ],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    assert_eq!(
        notice(&admin, "/admin/users").await,
        "Invitation sent to Newcomer@example.com. The link works once, for 7 days."
    );
    let mail = smtp.wait_for("newcomer@example.com", 1).await.remove(0);
    assert_eq!(mail.subject, "You are invited to Keyport");
    assert!(
        mail.text
            .contains("root@example.com invited you to create a developer account")
    );
    let link = mail.link_path(PUBLIC_URL, "/invite/");

    // The invitee: the address is fixed, the password follows the usual rules.
    let invitee = admin.another_browser();
    let page = invitee.get(&link).await.text().await.unwrap();
    assert!(
        page.contains("newcomer@example.com") && page.contains("as a developer"),
        "{page}"
    );
    let r = invitee.post_form(&link, &[("password", "short")]).await;
    assert_eq!(location(&r), link);
    let r = invitee.post_form(&link, &[("password", PASSWORD)]).await;
    assert_eq!(
        location(&r),
        "/enroll",
        "on to the authenticator, like a sign-up"
    );
    let user = admin
        .state
        .accounts
        .find_by_email("newcomer@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.email_verified, "the invitation proved the address");
    assert_eq!(user.role, domain::accounts::Role::Developer);

    // Once only; an address with an account cannot be invited.
    let again = admin.another_browser();
    assert!(
        again
            .get(&link)
            .await
            .text()
            .await
            .unwrap()
            .contains("This link has expired or was already used")
    );
    let r = admin
        .post_form(
            "/admin/users/invite",
            &[
                ("email", "newcomer@example.com"),
                ("role", "admin"),
                ("plan_id", ""),
            ],
        )
        .await;
    assert_eq!(location(&r), "/admin/users");
    let page = admin.get("/admin/users").await.text().await.unwrap();
    assert!(
        page.contains("An account with this address exists already."),
        "{page}"
    );

    // A developer cannot invite (the page and the handler both say "not found").
    let r = invitee
        .post_form(
            "/admin/users/invite",
            &[
                ("email", "friend@example.com"),
                ("role", "admin"),
                ("plan_id", ""),
            ],
        )
        .await;
    assert_ne!(r.status(), 200);
    assert_eq!(
        smtp.messages()
            .iter()
            .filter(|m| m.to == "friend@example.com")
            .count(),
        0
    );
}

#[tokio::test]
async fn developers_choose_their_notifications_and_they_arrive_by_mail() {
    let smtp = SmtpServer::start().await;
    let app = app_mailing_to(&smtp).await;
    enrolled_developer(&app, "dev@example.com").await;
    let page = app.get("/settings").await.text().await.unwrap();
    assert!(page.contains("Email notifications"));
    assert!(page.contains("value=\"new_sign_in\""));

    let body = "on=key_changed&on=new_sign_in";
    let r = app
        .client
        .post(app.url("/settings/notifications"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/settings");
    assert_eq!(
        notice(&app, "/settings").await,
        "Notification settings saved."
    );
    let dev = app
        .state
        .accounts
        .find_by_email("dev@example.com")
        .await
        .unwrap()
        .unwrap();
    let prefs = app.state.notifier.prefs(&dev.id).await.unwrap();
    let on: Vec<_> = prefs
        .iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k.id)
        .collect();
    assert_eq!(on, ["key_changed", "new_sign_in"]);

    // An admin revokes the developer's key: the developer is told, by mail.
    let admin = app
        .state
        .accounts
        .create_admin("root@example.com", "admin passphrase 4 keys")
        .await
        .unwrap();
    // (The developer's address is not confirmed, so an admin makes the key for them.)
    let (_, new) = key_for(&dev.id);
    let admin_actor = Actor::new(admin.id.clone(), true, RequestContext::default());
    let new = NewKey {
        owner_id: Some(dev.id.clone()),
        ..new
    };
    let key = app.state.keys.create(&admin_actor, new).await.unwrap();
    app.state
        .keys
        .revoke(&admin_actor, &key.key.id, Some("suspected leak"))
        .await
        .unwrap();
    assert_eq!(app.state.notifier.run(Utc::now()).await.unwrap(), 1);
    let mail = smtp.wait_for("dev@example.com", 1).await.remove(0);
    assert_eq!(mail.subject, "Your Keyport key \"first\" was revoked");
    assert!(
        mail.text
            .contains("An administrator (root@example.com) revoked your key")
    );
    assert!(mail.text.contains(&format!("/keys/{}", key.key.id)));
    assert!(
        !mail.raw.contains(key.plaintext.expose()),
        "never the key itself"
    );
    assert_eq!(app.state.notifier.run(Utc::now()).await.unwrap(), 0, "once");

    // Without email, the settings have no such section.
    let plain = TestApp::spawn().await;
    plain.sign_up_and_enrol("solo@example.com").await;
    let page = plain.get("/settings").await.text().await.unwrap();
    assert!(!page.contains("Email notifications"));
}

#[tokio::test]
async fn admins_read_and_retry_the_outbox_over_rest() {
    // Nothing listens on the SMTP port: messages wait in the outbox.
    let smtp = SmtpServer::stopped(crate::helpers::free_port().await);
    let app = app_mailing_to(&smtp).await;
    let admin = app
        .state
        .accounts
        .create_admin("root@example.com", "admin passphrase 4 keys")
        .await
        .unwrap();
    let dev = app
        .state
        .accounts
        .sign_up("dev@example.com", PASSWORD, &RequestContext::default())
        .await
        .unwrap();
    let admin_actor = Actor::new(admin.id.clone(), true, RequestContext::default());
    let token = |owner: Option<String>, scopes: Vec<String>| {
        let app = &app;
        let admin_actor = admin_actor.clone();
        async move {
            app.state
                .keys
                .create(
                    &admin_actor,
                    NewKey {
                        name: "ops".into(),
                        api: "keyport".into(),
                        scopes,
                        expires_at: Some(Utc::now() + Duration::days(30)),
                        owner_id: owner,
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .plaintext
                .expose()
                .to_owned()
        }
    };
    let admin_token = token(None, vec!["admin".into()]).await;
    let dev_token = token(Some(dev.id.clone()), vec!["keys:read".into()]).await;
    app.post_form("/forgot-password", &[("email", "dev@example.com")])
        .await;

    let get = |token: String, query: &'static str| {
        let app = &app;
        async move {
            app.client
                .get(app.url(&format!("/v1/outbox{query}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let r = get(admin_token.clone(), "?status=pending").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["email_enabled"], true);
    assert_eq!(body["total"], 1);
    let message = &body["messages"][0];
    assert_eq!(message["kind"], "password_reset");
    assert_eq!(message["recipient"], "dev@example.com");
    assert!(message.get("payload").is_none(), "never the content");
    assert!(!body.to_string().contains("/reset/"));

    assert_eq!(
        get(dev_token.clone(), "").await.status(),
        403,
        "admins only"
    );
    assert_eq!(get(admin_token.clone(), "?status=lost").await.status(), 422);
    assert_eq!(get(admin_token.clone(), "?limit=0").await.status(), 422);
    assert_eq!(get(String::new(), "").await.status(), 401);

    let id = message["id"].as_i64().unwrap();
    let retry = |token: String, id: i64| {
        let app = &app;
        async move {
            app.client
                .post(app.url(&format!("/v1/outbox/{id}/retry")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(retry(dev_token, id).await, 403);
    assert_eq!(retry(admin_token.clone(), id).await, 204);
    assert_eq!(retry(admin_token.clone(), 999_999).await, 404);
}

/// `POST /v1/users/invitations`: an admin's key invites someone, the mail arrives with a link
/// that makes an admin account; bad input names its field and sends nothing.
#[tokio::test]
async fn admins_invite_over_rest() {
    use crate::keys_api::{failure, keyport_key, post_as};
    use serde_json::json;
    let smtp = SmtpServer::start().await;
    let app = app_mailing_to(&smtp).await;
    let admin = app
        .state
        .accounts
        .create_admin("root@example.com", "admin passphrase 4 keys")
        .await
        .unwrap();
    let admin = Actor::new(admin.id, true, RequestContext::default());
    let key = keyport_key(&app, &admin, "ops", &["admin"]).await;
    let invite = |body: serde_json::Value| {
        let (app, bearer) = (&app, key.bearer.clone());
        async move { post_as(app, &bearer, "/v1/users/invitations", &body).await }
    };
    for (body, field) in [
        (json!({ "email": "not an address" }), "email"),
        (json!({ "email": "root@example.com" }), "email"),
        (json!({ "email": "x@example.com", "role": "owner" }), "role"),
        (
            json!({ "email": "x@example.com", "plan_id": "pln_00000000000000000000" }),
            "plan_id",
        ),
    ] {
        let refused = failure(invite(body).await, 422, "validation_failed").await;
        assert!(refused["error"]["fields"][field].is_string(), "{refused}");
    }
    let r = invite(json!({ "email": "Chief@Example.com", "role": "admin" })).await;
    assert_eq!(r.status(), 202);
    let mail = smtp.wait_for("chief@example.com", 1).await.remove(0);
    assert!(
        mail.text
            .contains("root@example.com invited you to create an admin account"),
        "{}",
        mail.text
    );
    let link = mail.link_path(PUBLIC_URL, "/invite/");
    let r = app
        .another_browser()
        .post_form(&link, &[("password", PASSWORD)])
        .await;
    assert_eq!(location(&r), "/enroll");
    let chief = app
        .state
        .accounts
        .find_by_email("chief@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chief.role, domain::accounts::Role::Admin);
    assert!(chief.email_verified);
    // The refused ones queued nothing.
    let (queued, _) = app
        .state
        .outbox
        .as_ref()
        .unwrap()
        .list(None, 50, 0)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].recipient, "chief@example.com");
}
