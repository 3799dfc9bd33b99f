//! The email flows of the accounts service against a real database, reading the outbox instead
//! of a mailbox (the server's tests deliver through a real SMTP server): verified sign-up without
//! enumeration, single-use links, password reset, and equal work for known and unknown addresses.
use chrono::{Duration, Utc};
use domain::{
    Database,
    accounts::{Accounts, LinkError, PasswordError},
    audit::RequestContext,
    mail::Template,
    outbox::Outbox,
    secret_key::SecretKey,
    testing::TestDb,
};

const PASSWORD: &str = "glacier lantern pepper";

fn ctx(n: u32) -> RequestContext {
    RequestContext {
        ip: Some(format!("198.51.100.{}", n % 250)),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into()),
    }
}

fn accounts(db: &Database) -> (Accounts, Outbox) {
    let key = SecretKey::generate();
    let outbox = Outbox::new(db.clone(), key.clone());
    (
        Accounts::new(db.clone(), key).with_outbox(outbox.clone()),
        outbox,
    )
}

/// The token of the last queued message to `to` of the given kind.
async fn token_to(outbox: &Outbox, to: &str, kind: &str) -> String {
    outbox
        .peek()
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|(entry, _)| entry.recipient == to && entry.kind == kind)
        .and_then(|(_, template)| match template {
            Template::VerifyEmail { token, .. } | Template::PasswordReset { token, .. } => {
                Some(token)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {kind} message to {to}"))
}

async fn verified_sign_up_and_reset(db: Database) {
    let (accounts, outbox) = accounts(&db);
    accounts
        .sign_up_with_email("ada@example.com", PASSWORD, &ctx(1))
        .await
        .unwrap();
    accounts
        .sign_up_with_email("ada@example.com", "another long passphrase", &ctx(2))
        .await
        .expect("a taken address answers like a new one");
    let queued = outbox.peek().await.unwrap();
    let kinds: Vec<_> = queued.iter().map(|(e, _)| e.kind.as_str()).collect();
    assert_eq!(kinds, ["verify_email", "sign_up_existing"]);
    assert!(queued.iter().all(|(e, _)| e.status == "pending"));
    let (users, total) = accounts.list_users("ada@", 10, 0).await.unwrap();
    assert_eq!((users.len(), total), (1, 1));
    assert!(!users[0].email_verified);

    // The link confirms once.
    let token = token_to(&outbox, "ada@example.com", "verify_email").await;
    let now = Utc::now();
    let user = accounts.verify_email(&token, &ctx(1), now).await.unwrap();
    assert!(user.email_verified);
    assert!(matches!(
        accounts.verify_email(&token, &ctx(1), now).await,
        Err(LinkError::Invalid)
    ));
    assert!(matches!(
        accounts.verify_email("x", &ctx(1), now).await,
        Err(LinkError::Invalid)
    ));

    // Reset: a weak password keeps the link usable; a good one spends it.
    accounts
        .request_password_reset("ada@example.com", &ctx(3))
        .await
        .unwrap();
    let reset = token_to(&outbox, "ada@example.com", "password_reset").await;
    assert!(
        accounts
            .link(&reset, "verify_email", Utc::now())
            .await
            .unwrap()
            .is_none(),
        "a reset link is not a verification link"
    );
    assert!(matches!(
        accounts
            .reset_password(&reset, "short", &ctx(3), Utc::now())
            .await,
        Err(LinkError::Password(PasswordError::TooShort))
    ));
    accounts
        .reset_password(&reset, "a brand new passphrase", &ctx(3), Utc::now())
        .await
        .unwrap();
    assert!(matches!(
        accounts
            .reset_password(&reset, "yet another passphrase", &ctx(3), Utc::now())
            .await,
        Err(LinkError::Invalid)
    ));
    assert!(
        accounts
            .sign_in_password("ada@example.com", PASSWORD, &ctx(4), Utc::now())
            .await
            .is_err()
    );
    accounts
        .sign_in_password(
            "ada@example.com",
            "a brand new passphrase",
            &ctx(4),
            Utc::now(),
        )
        .await
        .unwrap();
    let last = outbox.peek().await.unwrap().pop().unwrap();
    assert_eq!(last.0.kind, "password_changed");

    // A link past its time does not work.
    accounts
        .request_password_reset("ada@example.com", &ctx(5))
        .await
        .unwrap();
    let late = token_to(&outbox, "ada@example.com", "password_reset").await;
    assert!(matches!(
        accounts
            .reset_password(
                &late,
                "a later passphrase 1",
                &ctx(5),
                Utc::now() + Duration::hours(2)
            )
            .await,
        Err(LinkError::Invalid)
    ));

    // Unknown addresses get a note, never a link.
    accounts
        .request_password_reset("nobody@example.com", &ctx(6))
        .await
        .unwrap();
    let note = outbox.peek().await.unwrap().pop().unwrap();
    assert_eq!(note.0.kind, "password_reset_unknown");
    assert_eq!(note.0.recipient, "nobody@example.com");
}

async fn payloads_are_sealed(db: Database) {
    use sea_orm::EntityTrait;
    let (accounts, outbox) = accounts(&db);
    accounts
        .sign_up_with_email("sealed@example.com", PASSWORD, &ctx(1))
        .await
        .unwrap();
    let token = token_to(&outbox, "sealed@example.com", "verify_email").await;
    let row = domain::entities::outbox::Entity::find()
        .one(db.conn())
        .await
        .unwrap()
        .unwrap();
    let payload = row.payload.expect("kept until sent");
    assert!(
        !payload.windows(token.len()).any(|w| w == token.as_bytes()),
        "the link is not readable in the database"
    );
}

async fn notifications_go_out_once_and_follow_preferences(db: Database) {
    use domain::{
        keys::{Keys, NewKey},
        notify::Notifier,
        service::Actor,
    };
    let (accounts, outbox) = accounts(&db);
    let notifier = Notifier::new(db.clone(), Some(outbox.clone()));
    let keys = Keys::new(db.clone());
    let dev = accounts
        .sign_up("dev@example.com", PASSWORD, &ctx(1))
        .await
        .unwrap();
    let admin = accounts
        .create_admin("root@example.com", "admin passphrase 4 keys")
        .await
        .unwrap();
    let owner = Actor::new(dev.id.clone(), false, ctx(1));
    let new_key = |name: &str, days: i64| NewKey {
        name: name.into(),
        api: "keyport".into(),
        scopes: vec!["keys:read".into()],
        expires_at: Some(Utc::now() + Duration::days(days) - Duration::minutes(1)),
        ..Default::default()
    };
    let kinds_to = |to: &'static str| {
        let outbox = outbox.clone();
        async move {
            outbox
                .peek()
                .await
                .unwrap()
                .into_iter()
                .filter(|(e, _)| e.recipient == to)
                .map(|(e, _)| e.kind)
                .collect::<Vec<_>>()
        }
    };

    // A key expiring in 3 days: one notice, not one per run.
    let soon = keys.create(&owner, new_key("soon", 3)).await.unwrap();
    assert_eq!(notifier.run(Utc::now()).await.unwrap(), 1);
    assert_eq!(notifier.run(Utc::now()).await.unwrap(), 0);
    assert_eq!(kinds_to("dev@example.com").await, ["key_expiring"]);
    // The day before, a second one; once expired, a third.
    let expires = Utc::now() + Duration::days(3);
    notifier.run(expires - Duration::hours(12)).await.unwrap();
    notifier.run(expires + Duration::minutes(5)).await.unwrap();
    assert_eq!(
        kinds_to("dev@example.com").await,
        ["key_expiring", "key_expiring", "key_expired"]
    );

    // Switched off: nothing more about expiring keys (and nothing owed for later).
    notifier
        .set_prefs(&dev.id, &["key_changed".into()], &ctx(1))
        .await
        .unwrap();
    let prefs = notifier.prefs(&dev.id).await.unwrap();
    assert!(prefs.iter().any(|(k, on)| k.id == "key_changed" && *on));
    assert!(prefs.iter().any(|(k, on)| k.id == "key_expiring" && !*on));
    keys.create(&owner, new_key("quiet", 2)).await.unwrap();
    notifier.run(Utc::now()).await.unwrap();
    assert_eq!(kinds_to("dev@example.com").await.len(), 3);

    // Revoked by an admin: the owner hears of it; by the owner: no message.
    let admin_actor = Actor::new(admin.id.clone(), true, ctx(2));
    keys.revoke(&admin_actor, &soon.key.id, Some("leaked"))
        .await
        .unwrap();
    let mine = keys.create(&owner, new_key("mine", 30)).await.unwrap();
    keys.revoke(&owner, &mine.key.id, None).await.unwrap();
    notifier.run(Utc::now()).await.unwrap();
    let to_dev = outbox.peek().await.unwrap();
    let changed: Vec<_> = to_dev
        .iter()
        .filter(|(e, _)| e.kind == "key_changed_by_other")
        .collect();
    assert_eq!(changed.len(), 1);
    match &changed[0].1 {
        Template::KeyChangedByOther {
            action, by, key, ..
        } => {
            assert_eq!(action, "revoked");
            assert!(by.contains("root@example.com"), "{by}");
            assert_eq!(key.name, "soon");
        }
        other => panic!("{other:?}"),
    }

    // New browsers: off by default; when on, the first sign-in ever is not news, a browser
    // seen before is not either.
    let sign_in = |ua: &'static str| {
        let db = db.clone();
        let id = dev.id.clone();
        async move {
            domain::audit::record(
                db.conn(),
                &RequestContext {
                    ip: Some("198.51.100.9".into()),
                    user_agent: Some(ua.into()),
                },
                Some(&id),
                "sign_in.success",
                Some(&id),
                serde_json::json!({}),
            )
            .await
            .unwrap();
        }
    };
    let firefox = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";
    let chrome = "Mozilla/5.0 (Windows NT 10.0) Chrome/150.0 Safari/537.36";
    sign_in(firefox).await;
    sign_in(chrome).await;
    notifier.run(Utc::now()).await.unwrap();
    assert!(
        !kinds_to("dev@example.com")
            .await
            .contains(&"new_sign_in".to_owned())
    );
    notifier
        .set_prefs(&dev.id, &["new_sign_in".into()], &ctx(1))
        .await
        .unwrap();
    sign_in(firefox).await;
    sign_in("Mozilla/5.0 (Macintosh; Mac OS X 14_0) Safari/605.1.15").await;
    notifier.run(Utc::now()).await.unwrap();
    let news: Vec<_> = kinds_to("dev@example.com")
        .await
        .into_iter()
        .filter(|k| k == "new_sign_in")
        .collect();
    assert_eq!(news.len(), 1, "only Safari on macOS is new");
}

macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let t = super::TestDb::sqlite_memory().await;
                    super::$scenario(t.db.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let t = super::TestDb::postgres().await.expect("KEYPORT_TEST_POSTGRES_URL must be set");
                    super::$scenario(t.db.clone()).await;
                    t.cleanup().await;
                }
            )*
        }
    };
}

on_both_databases!(
    verified_sign_up_and_reset,
    payloads_are_sealed,
    notifications_go_out_once_and_follow_preferences
);

/// Signing up with a taken address costs what a new one costs (one password hash, one
/// transaction, one queued message), so timing does not tell them apart. The bound is loose
/// (half) so machine noise cannot flip it; without the hash on both paths the gap is 50x.
#[tokio::test]
async fn a_taken_address_signs_up_as_slowly_as_a_new_one() {
    let t = TestDb::sqlite_memory().await;
    let (accounts, _) = accounts(&t.db);
    domain::accounts::password::warm_up();
    accounts
        .sign_up_with_email("taken@example.com", PASSWORD, &ctx(0))
        .await
        .unwrap();
    // Five requests an hour per address: the first and these four. Interleaved, so both see
    // the same load; the fastest of each is its intrinsic cost.
    let (mut taken, mut new) = (Vec::new(), Vec::new());
    for i in 0..4 {
        let start = std::time::Instant::now();
        accounts
            .sign_up_with_email("taken@example.com", PASSWORD, &ctx(i + 10))
            .await
            .unwrap();
        taken.push(start.elapsed());
        let start = std::time::Instant::now();
        accounts
            .sign_up_with_email(&format!("new{i}@example.com"), PASSWORD, &ctx(i + 20))
            .await
            .unwrap();
        new.push(start.elapsed());
    }
    let (taken, new) = (*taken.iter().min().unwrap(), *new.iter().min().unwrap());
    assert!(
        taken * 2 > new && new * 2 > taken,
        "taken address {taken:?}, new address {new:?}"
    );
}

/// A reset asked for an unknown address does the same work as one for a known address (one
/// transaction, one queued message, one audit row); the bound is loose (a third), on the fastest
/// of 15 interleaved runs each.
#[tokio::test]
async fn an_unknown_address_asks_for_a_reset_as_slowly_as_a_known_one() {
    let t = TestDb::sqlite_memory().await;
    let (accounts, _) = accounts(&t.db);
    for i in 0..9 {
        accounts
            .sign_up(&format!("known{i}@example.com"), PASSWORD, &ctx(100 + i))
            .await
            .unwrap();
    }
    // Interleaved, so both see the same load; the fastest of each is its intrinsic cost.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..15 {
        let start = std::time::Instant::now();
        accounts
            .request_password_reset(&format!("known{}@example.com", i % 9), &ctx(i))
            .await
            .unwrap();
        known.push(start.elapsed());
        let start = std::time::Instant::now();
        accounts
            .request_password_reset(&format!("unknown{i}@example.com"), &ctx(i + 50))
            .await
            .unwrap();
        unknown.push(start.elapsed());
    }
    let (known, unknown) = (*known.iter().min().unwrap(), *unknown.iter().min().unwrap());
    assert!(
        known < unknown * 3 && unknown < known * 3,
        "known address {known:?}, unknown address {unknown:?}"
    );
}

/// A key's quota: one notice at 80%, one when it is all used, once per period each.
#[tokio::test]
async fn quota_notices_go_out_at_80_and_100_percent_once() {
    use domain::{
        catalog::{Quota, QuotaPeriod},
        keys::{Keys, NewKey},
        notify::Notifier,
        service::Actor,
        usage::recorder::Recorder,
        verification::{Code, Request, Verifier},
    };
    let t = TestDb::sqlite_memory().await;
    let db = t.db.clone();
    let (accounts, outbox) = accounts(&db);
    let verifier = Verifier::new(db.clone(), Recorder::new(db.clone()));
    verifier.load().await.unwrap();
    let keys = Keys::new(db.clone()).with_changes(std::sync::Arc::new(verifier.clone()));
    let notifier = Notifier::new(db.clone(), Some(outbox.clone())).with_quotas(verifier.clone());
    let dev = accounts
        .sign_up("dev@example.com", PASSWORD, &ctx(1))
        .await
        .unwrap();
    let admin = accounts
        .create_admin("root@example.com", "admin passphrase 4 keys")
        .await
        .unwrap();
    let created = keys
        .create(
            &Actor::new(admin.id, true, ctx(2)),
            NewKey {
                name: "metered".into(),
                api: "keyport".into(),
                scopes: vec!["keys:read".into()],
                quota: Some(Quota {
                    limit: 10,
                    period: QuotaPeriod::Day,
                }),
                expires_at: Some(Utc::now() + Duration::days(30)),
                owner_id: Some(dev.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let plaintext = created.plaintext.expose().to_owned();
    let spend = |n: u32| {
        let verifier = verifier.clone();
        let key = plaintext.clone();
        async move {
            for _ in 0..n {
                let outcome = verifier
                    .verify(
                        &Request {
                            key: &key,
                            cost: 1,
                            ..Default::default()
                        },
                        Utc::now(),
                    )
                    .await;
                assert_eq!(outcome.code, Code::Valid);
            }
            verifier.flush().await.unwrap();
        }
    };
    let quota_kinds = || {
        let outbox = outbox.clone();
        async move {
            outbox
                .peek()
                .await
                .unwrap()
                .into_iter()
                .map(|(e, _)| e.kind)
                .filter(|k| k.starts_with("quota"))
                .collect::<Vec<_>>()
        }
    };
    spend(7).await;
    assert_eq!(notifier.run(Utc::now()).await.unwrap(), 0, "70% is not 80%");
    spend(1).await;
    notifier.run(Utc::now()).await.unwrap();
    notifier.run(Utc::now()).await.unwrap();
    assert_eq!(quota_kinds().await, ["quota_warning"]);
    spend(2).await;
    notifier.run(Utc::now()).await.unwrap();
    notifier.run(Utc::now()).await.unwrap();
    assert_eq!(quota_kinds().await, ["quota_warning", "quota_exceeded"]);
    let (_, exceeded) = outbox.peek().await.unwrap().pop().unwrap();
    match exceeded {
        Template::QuotaWarning { used, limit, .. } => assert_eq!((used, limit), (10, 10)),
        other => panic!("{other:?}"),
    }
}

/// A key refused with RATE_LIMITED in 5 of the last 10 minutes: one notice (not one per run);
/// in 4 of them, none.
#[tokio::test]
async fn a_key_that_keeps_hitting_its_rate_limit_is_reported_once() {
    use domain::{
        entities::usage_bucket,
        keys::{Keys, NewKey},
        notify::Notifier,
        service::Actor,
    };
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let t = TestDb::sqlite_memory().await;
    let db = t.db.clone();
    let (accounts, outbox) = accounts(&db);
    let notifier = Notifier::new(db.clone(), Some(outbox.clone()));
    let dev = accounts
        .sign_up("dev@example.com", PASSWORD, &ctx(1))
        .await
        .unwrap();
    let keys = Keys::new(db.clone());
    let new_key = |name: &str| NewKey {
        name: name.into(),
        api: "keyport".into(),
        scopes: vec!["keys:read".into()],
        expires_at: Some(Utc::now() + Duration::days(30)),
        ..Default::default()
    };
    let owner = Actor::new(dev.id.clone(), false, ctx(1));
    let busy = keys.create(&owner, new_key("busy")).await.unwrap();
    let calm = keys.create(&owner, new_key("calm")).await.unwrap();
    let now = Utc::now();
    let minute = now.timestamp().div_euclid(60) * 60;
    for (key, minutes) in [(&busy, 5), (&calm, 4)] {
        for m in 1..=minutes {
            usage_bucket::Entity::insert(usage_bucket::ActiveModel {
                key_id: Set(key.key.id.clone()),
                width: Set(60),
                start: Set(minute - m * 60),
                code: Set("RATE_LIMITED".into()),
                count: Set(30),
            })
            .exec_without_returning(db.conn())
            .await
            .unwrap();
        }
    }
    assert_eq!(notifier.run(now).await.unwrap(), 1);
    assert_eq!(notifier.run(now).await.unwrap(), 0);
    let (entry, template) = outbox.peek().await.unwrap().pop().unwrap();
    assert_eq!(entry.kind, "rate_limit_sustained");
    match template {
        Template::RateLimitSustained {
            key,
            denied,
            minutes,
            ..
        } => {
            assert_eq!(key.name, "busy");
            assert_eq!((denied, minutes), (150, 5));
        }
        other => panic!("{other:?}"),
    }
}

/// A quota a plan shares among a developer's keys: one notice for the pool, whichever key used it.
#[tokio::test]
async fn a_shared_quota_is_reported_once_for_all_of_a_developers_keys() {
    use domain::{
        catalog::{PlanInput, Quota, QuotaPeriod},
        keys::{Keys, NewKey},
        notify::Notifier,
        service::Actor,
        usage::recorder::Recorder,
        verification::{Code, Request, Verifier},
    };
    let t = TestDb::sqlite_memory().await;
    let db = t.db.clone();
    let (accounts, outbox) = accounts(&db);
    let verifier = Verifier::new(db.clone(), Recorder::new(db.clone()));
    verifier.load().await.unwrap();
    let keys = Keys::new(db.clone()).with_changes(std::sync::Arc::new(verifier.clone()));
    let notifier = Notifier::new(db.clone(), Some(outbox.clone())).with_quotas(verifier.clone());
    let admin = accounts
        .create_admin("root@example.com", "admin passphrase 4 keys")
        .await
        .unwrap();
    let admin = Actor::new(admin.id, true, ctx(2));
    let dev = accounts
        .sign_up("dev@example.com", PASSWORD, &ctx(1))
        .await
        .unwrap();
    let plan = keys
        .catalog()
        .create_plan(
            &admin,
            PlanInput {
                name: "Team".into(),
                quota: Some(Quota {
                    limit: 5,
                    period: QuotaPeriod::Day,
                }),
                per_developer: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    keys.catalog()
        .assign_plan(&admin, &dev.id, Some(&plan.id))
        .await
        .unwrap();
    let owner = Actor::new(dev.id.clone(), false, ctx(1));
    let mut plaintexts = Vec::new();
    for name in ["first", "second"] {
        let created = keys
            .create(
                &owner,
                NewKey {
                    name: name.into(),
                    api: "keyport".into(),
                    scopes: vec!["keys:read".into()],
                    expires_at: Some(Utc::now() + Duration::days(30)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        plaintexts.push(created.plaintext.expose().to_owned());
    }
    for (i, key) in ["a", "b", "a", "b"].iter().enumerate() {
        let key = if *key == "a" {
            &plaintexts[0]
        } else {
            &plaintexts[1]
        };
        let outcome = verifier
            .verify(
                &Request {
                    key,
                    cost: 1,
                    ..Default::default()
                },
                Utc::now(),
            )
            .await;
        assert_eq!(outcome.code, Code::Valid, "request {i}");
    }
    verifier.flush().await.unwrap();
    notifier.run(Utc::now()).await.unwrap();
    notifier.run(Utc::now()).await.unwrap();
    let quota: Vec<_> = outbox
        .peek()
        .await
        .unwrap()
        .into_iter()
        .filter(|(e, _)| e.kind.starts_with("quota"))
        .collect();
    assert_eq!(quota.len(), 1, "one notice for the pool, not one per key");
    match &quota[0].1 {
        Template::QuotaWarning {
            used,
            limit,
            shared,
            ..
        } => assert_eq!((*used, *limit, *shared), (4, 5, true)),
        other => panic!("{other:?}"),
    }
}
