//! Leak reports against a real database: a live key is revoked (or disabled) once, a malformed
//! token costs no query and is a false positive, and the owner is mailed about it whatever their
//! notification settings (a security notice), never as an "anomaly".
use chrono::{Duration, Utc};
use domain::{
    Database,
    accounts::Accounts,
    audit::RequestContext,
    keys::{KeyStatus, Keys, NewKey},
    leaks::{LeakReports, Policy, Reported, Reporter},
    mail::Template,
    notify::Notifier,
    outbox::Outbox,
    secret_key::SecretKey,
    service::Actor,
    testing::TestDb,
};

const PASSWORD: &str = "glacier lantern pepper";

fn reported(token: &str) -> Reported {
    Reported {
        token: token.into(),
        token_type: "keyport_api_key".into(),
        url: "https://github.com/acme/app/blob/main/.env".into(),
        source: "content".into(),
    }
}

async fn leaked_keys_are_revoked_once_and_their_owner_is_told(db: Database, policy: Policy) {
    let key = SecretKey::generate();
    let outbox = Outbox::new(db.clone(), key.clone());
    let accounts = Accounts::new(db.clone(), key).with_outbox(outbox.clone());
    let keys = Keys::new(db.clone());
    let notifier = Notifier::new(db.clone(), Some(outbox.clone()));
    let leaks = LeakReports::new(db.clone(), keys.clone(), policy);
    let ctx = RequestContext::default();
    let ada = accounts
        .sign_up("ada@example.com", PASSWORD, &ctx)
        .await
        .unwrap();
    // Ada switched every notification off: a leak is told anyway.
    notifier.set_prefs(&ada.id, &[], &ctx).await.unwrap();
    let actor = Actor::new(ada.id.clone(), false, ctx.clone());
    let created = keys
        .create(
            &actor,
            NewKey {
                name: "ci".into(),
                api: "keyport".into(),
                scopes: vec!["keys:read".into()],
                expires_at: Some(Utc::now() + Duration::days(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let partner = Reporter::Partner {
        key_id: "test".into(),
    };
    let verdicts = leaks
        .report(
            &partner,
            &[
                reported(created.plaintext.expose()),
                reported("kp_short"),
                reported(&format!("{}x", created.plaintext.expose())),
            ],
            &ctx,
        )
        .await
        .unwrap();
    let labels: Vec<&str> = verdicts.iter().map(|v| v.label).collect();
    assert_eq!(
        labels,
        ["true_positive", "false_positive", "false_positive"]
    );
    let after = keys.get(&actor, &created.key.id).await.unwrap();
    let expected = match policy {
        Policy::Revoke => KeyStatus::Revoked,
        Policy::Disable => KeyStatus::Disabled,
    };
    assert_eq!(after.status(Utc::now()), expected);

    notifier.run(Utc::now()).await.unwrap();
    notifier.run(Utc::now()).await.unwrap();
    let mails: Vec<Template> = outbox
        .peek()
        .await
        .unwrap()
        .into_iter()
        .filter(|(e, _)| e.recipient == "ada@example.com")
        .map(|(_, t)| t)
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let Template::KeyLeaked { key, detail, .. } = &mails[0] else {
        panic!("expected a leak notice, got {:?}", mails[0]);
    };
    assert_eq!(key.id, created.key.id);
    assert!(detail.contains("github.com/acme/app"), "{detail}");

    // Reported again: nothing more happens.
    leaks
        .report(&partner, &[reported(created.plaintext.expose())], &ctx)
        .await
        .unwrap();
    let (reports, total) = leaks.list(10, 0).await.unwrap();
    assert_eq!(total, 4);
    let again = match policy {
        Policy::Revoke => "already revoked",
        Policy::Disable => "already disabled",
    };
    assert_eq!(reports[0].action, again);
    assert_eq!(reports[0].key_id.as_deref(), Some(created.key.id.as_str()));
    notifier.run(Utc::now()).await.unwrap();
    assert_eq!(
        outbox
            .peek()
            .await
            .unwrap()
            .iter()
            .filter(|(e, _)| e.kind == "key_leaked")
            .count(),
        1
    );
}

#[tokio::test]
async fn sqlite_revoke() {
    let t = TestDb::sqlite_memory().await;
    leaked_keys_are_revoked_once_and_their_owner_is_told(t.db.clone(), Policy::Revoke).await;
}

#[tokio::test]
async fn sqlite_disable() {
    let t = TestDb::sqlite_memory().await;
    leaked_keys_are_revoked_once_and_their_owner_is_told(t.db.clone(), Policy::Disable).await;
}

#[tokio::test]
async fn postgres_revoke() {
    let t = TestDb::postgres()
        .await
        .expect("KEYPORT_TEST_POSTGRES_URL must be set");
    leaked_keys_are_revoked_once_and_their_owner_is_told(t.db.clone(), Policy::Revoke).await;
    t.cleanup().await;
}
