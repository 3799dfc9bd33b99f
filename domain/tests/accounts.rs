//! The accounts service against a real database: sign-up, enrolment, sign-in with TOTP and
//! recovery codes, replay, enumeration, throttling, lockout and admin actions. Each scenario runs
//! on SQLite and, when configured, on PostgreSQL.
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::{
    Database,
    accounts::{
        Accounts, ChangePasswordError, PasswordError, SecondStep, SignInError, SignUpError, Status,
        throttle, totp::Seed,
    },
    audit::{self, RequestContext},
    secret_key::SecretKey,
    testing::TestDb,
};

const PASSWORD: &str = "glacier lantern pepper";

fn ctx() -> RequestContext {
    RequestContext {
        ip: Some("203.0.113.7".into()),
        user_agent: Some("tests".into()),
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

/// Signs up and enrols; returns the service, user id and seed (the test's authenticator app).
async fn enrolled(db: &Database, email: &str) -> (Accounts, String, Seed, Vec<String>) {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    let user = accounts.sign_up(email, PASSWORD, &ctx()).await.unwrap();
    let (_, next) = accounts
        .sign_in_password(email, PASSWORD, &ctx(), t0())
        .await
        .unwrap();
    assert_eq!(next, SecondStep::Enrol);
    let enrolment = accounts.begin_enrolment(&user.id).await.unwrap();
    let seed = Seed::from_base32(&enrolment.setup_key).unwrap();
    assert!(enrolment.otpauth_uri.contains("issuer=Keyport"));
    let codes = accounts
        .confirm_enrolment(
            &user.id,
            &enrolment.binding,
            &seed.code_at(t0().timestamp() as u64),
            &ctx(),
            t0(),
        )
        .await
        .unwrap();
    (accounts, user.id, seed, codes)
}

async fn full_flow_with_replay_protection(db: Database) {
    let (accounts, id, seed, codes) = enrolled(&db, "ada@example.com").await;
    assert_eq!(codes.len(), 10);
    assert_eq!(accounts.unused_recovery_codes(&id).await.unwrap(), 10);
    let user = accounts.find(&id).await.unwrap().unwrap();
    assert!(user.totp_enabled);

    // Next sign-in, one step later: password, then a fresh code.
    let later = t0() + Duration::seconds(30);
    let (_, next) = accounts
        .sign_in_password("ADA@example.com ", PASSWORD, &ctx(), later)
        .await
        .unwrap();
    assert_eq!(next, SecondStep::Code);
    let code = seed.code_at(later.timestamp() as u64);
    let signed_in = accounts
        .sign_in_code(&id, &code, &ctx(), later)
        .await
        .unwrap();
    assert_eq!(signed_in.last_sign_in_at, Some(later));

    // The same code again, still inside its window: refused.
    let replay = accounts
        .sign_in_code(&id, &code, &ctx(), later + Duration::seconds(5))
        .await;
    assert!(
        matches!(replay, Err(SignInError::InvalidCode)),
        "{replay:?}"
    );
    // And the code of an earlier step (allowed by drift, but not newer than the last accepted).
    let old = seed.code_at(t0().timestamp() as u64);
    assert!(matches!(
        accounts.sign_in_code(&id, &old, &ctx(), later).await,
        Err(SignInError::InvalidCode)
    ));
    // The next step's code works.
    let next_step = later + Duration::seconds(30);
    accounts
        .sign_in_code(
            &id,
            &seed.code_at(next_step.timestamp() as u64),
            &ctx(),
            next_step,
        )
        .await
        .unwrap();

    // The seed is stored encrypted, not as the raw bytes.
    use sea_orm::EntityTrait;
    let row = domain::entities::user::Entity::find_by_id(id.clone())
        .one(db.conn())
        .await
        .unwrap()
        .unwrap();
    let stored = row.totp_secret.unwrap();
    assert!(!stored.windows(20).any(|w| w == seed.as_bytes()));
    assert!(row.password_hash.starts_with("$argon2id$"));

    let events: Vec<String> = audit::recent(&db, Some(&id), 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in [
        "account.sign_up",
        "2fa.enrol",
        "sign_in.success",
        "sign_in.failure",
    ] {
        assert!(
            events.iter().any(|e| e == action),
            "{action} missing from {events:?}"
        );
    }
}

async fn recovery_codes_work_once(db: Database) {
    let (accounts, id, _seed, codes) = enrolled(&db, "grace@example.com").await;
    let now = t0() + Duration::minutes(5);
    accounts
        .sign_in_password("grace@example.com", PASSWORD, &ctx(), now)
        .await
        .unwrap();
    accounts
        .sign_in_code(&id, &codes[3].to_uppercase(), &ctx(), now)
        .await
        .unwrap();
    assert_eq!(accounts.unused_recovery_codes(&id).await.unwrap(), 9);
    let again = accounts.sign_in_code(&id, &codes[3], &ctx(), now).await;
    assert!(matches!(again, Err(SignInError::InvalidCode)), "{again:?}");
    assert!(matches!(
        accounts.sign_in_code(&id, "abcde-fghij", &ctx(), now).await,
        Err(SignInError::InvalidCode)
    ));
}

async fn sign_in_does_not_reveal_which_emails_exist(db: Database) {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    accounts
        .sign_up("linus@example.com", PASSWORD, &ctx())
        .await
        .unwrap();
    let unknown = accounts
        .sign_in_password("nobody@example.com", PASSWORD, &ctx(), t0())
        .await
        .unwrap_err();
    let wrong = accounts
        .sign_in_password("linus@example.com", "wrong password here", &ctx(), t0())
        .await
        .unwrap_err();
    assert!(matches!(unknown, SignInError::InvalidCredentials));
    assert!(matches!(wrong, SignInError::InvalidCredentials));
    assert_eq!(unknown.to_string(), wrong.to_string());
    assert_eq!(unknown.to_string(), "Incorrect email or password.");
}

async fn sign_up_rules(db: Database) {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    let weak = accounts
        .sign_up("weak@example.com", "password1234", &ctx())
        .await
        .unwrap_err();
    assert!(
        matches!(weak, SignUpError::Password(PasswordError::TooCommon)),
        "{weak:?}"
    );
    let bad_email = accounts
        .sign_up("not-an-email", PASSWORD, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(bad_email, SignUpError::Email(_)), "{bad_email:?}");
    accounts
        .sign_up("dup@example.com", PASSWORD, &ctx())
        .await
        .unwrap();
    let dup = accounts
        .sign_up("DUP@example.com", PASSWORD, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(dup, SignUpError::EmailUnavailable), "{dup:?}");
}

async fn failures_slow_down_then_lock_the_account(db: Database) {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    let user = accounts
        .sign_up("mallory@example.com", PASSWORD, &ctx())
        .await
        .unwrap();
    // A different address each time, so only the per-account counter applies.
    let from = |i: usize| RequestContext {
        ip: Some(format!("198.51.100.{i}")),
        user_agent: None,
    };
    for i in 0..5 {
        let err = accounts
            .sign_in_password("mallory@example.com", "not the password", &from(i), t0())
            .await
            .unwrap_err();
        assert!(
            matches!(err, SignInError::InvalidCredentials),
            "attempt {i}: {err:?}"
        );
    }
    // The fifth failure set a delay: even the right password is refused until it passes.
    let err = accounts
        .sign_in_password("mallory@example.com", PASSWORD, &from(9), t0())
        .await
        .unwrap_err();
    let SignInError::Throttled(throttled) = err else {
        panic!("expected throttling, got {err:?}")
    };
    assert_eq!(throttled.retry_after, Duration::seconds(1));
    assert_eq!(err.to_string(), "Too many attempts, try again in 1 minute.");
    let (_, next) = accounts
        .sign_in_password(
            "mallory@example.com",
            PASSWORD,
            &from(9),
            t0() + Duration::seconds(2),
        )
        .await
        .unwrap();
    assert_eq!(next, SecondStep::Enrol);
    // Success cleared the counter.
    assert_eq!(
        throttle::failures(&db, &throttle::email_key("mallory@example.com"))
            .await
            .unwrap(),
        0
    );

    // 100 consecutive failures lock the account for a day.
    let key = throttle::email_key("mallory@example.com");
    for _ in 0..100 {
        throttle::record_failure(&db, &key, &throttle::ACCOUNT, t0())
            .await
            .unwrap();
    }
    let locked = accounts
        .sign_in_password(
            "mallory@example.com",
            PASSWORD,
            &from(10),
            t0() + Duration::hours(23),
        )
        .await
        .unwrap_err();
    assert!(matches!(locked, SignInError::Throttled(_)), "{locked:?}");
    assert!(
        accounts
            .is_locked(&user.id, t0() + Duration::hours(23))
            .await
            .unwrap()
    );
    // An admin can clear the lockout before it runs out.
    let admin = accounts
        .create_admin("lock-admin@example.com", "admin passphrase 4 keys")
        .await
        .unwrap();
    accounts.unlock(&admin.id, &user.id, &ctx()).await.unwrap();
    assert!(
        !accounts
            .is_locked(&user.id, t0() + Duration::hours(23))
            .await
            .unwrap()
    );
    accounts
        .sign_in_password(
            "mallory@example.com",
            PASSWORD,
            &from(10),
            t0() + Duration::hours(23),
        )
        .await
        .unwrap();
    for _ in 0..100 {
        throttle::record_failure(&db, &key, &throttle::ACCOUNT, t0())
            .await
            .unwrap();
    }
    accounts
        .sign_in_password(
            "mallory@example.com",
            PASSWORD,
            &from(10),
            t0() + Duration::hours(25),
        )
        .await
        .unwrap();
}

async fn totp_failures_have_their_own_counter(db: Database) {
    let (accounts, id, seed, _) = enrolled(&db, "eve@example.com").await;
    let now = t0() + Duration::minutes(10);
    for _ in 0..5 {
        let err = accounts
            .sign_in_code(&id, "000000", &RequestContext::default(), now)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            SignInError::InvalidCode | SignInError::Throttled(_)
        ));
    }
    assert_eq!(
        throttle::failures(&db, &throttle::totp_key(&id))
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        throttle::failures(&db, &throttle::email_key("eve@example.com"))
            .await
            .unwrap(),
        0
    );
    let good = seed.code_at(now.timestamp() as u64);
    let err = accounts
        .sign_in_code(&id, &good, &RequestContext::default(), now)
        .await
        .unwrap_err();
    assert!(matches!(err, SignInError::Throttled(_)), "{err:?}");
}

async fn admin_actions(db: Database) {
    let (accounts, id, _seed, _) = enrolled(&db, "bob@example.com").await;
    let admin = accounts
        .create_admin("root@example.com", "admin passphrase 4 keys")
        .await
        .unwrap();
    assert_eq!(admin.role, domain::accounts::Role::Admin);

    accounts
        .set_status(&admin.id, &id, Status::Disabled, &ctx())
        .await
        .unwrap();
    let err = accounts
        .sign_in_password("bob@example.com", PASSWORD, &ctx(), t0())
        .await
        .unwrap_err();
    assert!(matches!(err, SignInError::Disabled), "{err:?}");
    accounts
        .set_status(&admin.id, &id, Status::Active, &ctx())
        .await
        .unwrap();

    accounts.reset_totp(&admin.id, &id, &ctx()).await.unwrap();
    let (_, next) = accounts
        .sign_in_password("bob@example.com", PASSWORD, &ctx(), t0())
        .await
        .unwrap();
    assert_eq!(next, SecondStep::Enrol);
    assert_eq!(accounts.unused_recovery_codes(&id).await.unwrap(), 0);
    let actions: Vec<String> = audit::recent(&db, Some(&id), 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in ["user.disable", "user.enable", "2fa.reset"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} missing from {actions:?}"
        );
    }
}

async fn settings_changes_need_the_current_secret(db: Database) {
    let (accounts, id, seed, old_codes) = enrolled(&db, "set@example.com").await;
    // Password change needs the current password, and applies the rules to the new one.
    let wrong = accounts
        .change_password(&id, "not it at all!!", "new harbour lights", &ctx(), t0())
        .await;
    assert!(
        matches!(wrong, Err(ChangePasswordError::WrongCurrent)),
        "{wrong:?}"
    );
    let weak = accounts
        .change_password(&id, PASSWORD, "password1234", &ctx(), t0())
        .await;
    assert!(
        matches!(
            weak,
            Err(ChangePasswordError::Password(PasswordError::TooCommon))
        ),
        "{weak:?}"
    );
    accounts
        .change_password(&id, PASSWORD, "new harbour lights", &ctx(), t0())
        .await
        .unwrap();
    assert!(matches!(
        accounts
            .sign_in_password("set@example.com", PASSWORD, &ctx(), t0())
            .await,
        Err(SignInError::InvalidCredentials)
    ));
    accounts
        .sign_in_password("set@example.com", "new harbour lights", &ctx(), t0())
        .await
        .unwrap();

    // New recovery codes need a fresh TOTP code; the old ones stop working.
    let later = t0() + Duration::seconds(60);
    let bad = accounts
        .regenerate_recovery_codes(&id, "000000", &ctx(), later)
        .await;
    assert!(matches!(bad, Err(SignInError::InvalidCode)), "{bad:?}");
    let codes = accounts
        .regenerate_recovery_codes(&id, &seed.code_at(later.timestamp() as u64), &ctx(), later)
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    assert_ne!(codes, old_codes);
    assert!(matches!(
        accounts
            .sign_in_code(&id, &old_codes[0], &ctx(), later)
            .await,
        Err(SignInError::InvalidCode)
    ));
    accounts
        .sign_in_code(&id, &codes[0], &ctx(), later)
        .await
        .unwrap();

    // Resetting one's own 2FA needs a fresh code too, then enrolment starts over.
    let later = later + Duration::seconds(30);
    accounts
        .reset_own_totp(&id, &seed.code_at(later.timestamp() as u64), &ctx(), later)
        .await
        .unwrap();
    let (_, next) = accounts
        .sign_in_password("set@example.com", "new harbour lights", &ctx(), later)
        .await
        .unwrap();
    assert_eq!(next, SecondStep::Enrol);
}

async fn admins_list_search_and_promote(db: Database) {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    for email in ["a1@example.com", "a2@example.com", "b1@other.org"] {
        accounts.sign_up(email, PASSWORD, &ctx()).await.unwrap();
    }
    let admin = accounts
        .create_admin("boss@example.com", "admin passphrase 4 keys")
        .await
        .unwrap();
    let (all, total) = accounts.list_users("", 2, 0).await.unwrap();
    assert_eq!((all.len(), total), (2, 4));
    let (page2, _) = accounts.list_users("", 2, 2).await.unwrap();
    assert_eq!(page2.len(), 2);
    let (found, total) = accounts.list_users("EXAMPLE.com", 10, 0).await.unwrap();
    assert_eq!(total, 3);
    assert!(found.iter().all(|u| u.email.ends_with("@example.com")));
    let a1 = found.iter().find(|u| u.email == "a1@example.com").unwrap();
    accounts
        .set_role(&admin.id, &a1.id, domain::accounts::Role::Admin, &ctx())
        .await
        .unwrap();
    assert_eq!(
        accounts.find(&a1.id).await.unwrap().unwrap().role,
        domain::accounts::Role::Admin
    );
    accounts
        .set_role(&admin.id, &a1.id, domain::accounts::Role::Developer, &ctx())
        .await
        .unwrap();
    assert_eq!(
        accounts.find(&a1.id).await.unwrap().unwrap().role,
        domain::accounts::Role::Developer
    );
}

async fn one_address_guessing_many_accounts_is_slowed_down(db: Database) {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    accounts
        .sign_up("taken@example.com", PASSWORD, &ctx())
        .await
        .unwrap();
    let attacker = RequestContext {
        ip: Some("198.51.100.66".into()),
        user_agent: None,
    };
    // Different accounts each time: only the per-address counter grows.
    for i in 0..21 {
        let email = format!("guess{i}@example.com");
        let err = accounts
            .sign_in_password(&email, "password guess 1", &attacker, t0())
            .await
            .unwrap_err();
        assert!(
            matches!(err, SignInError::InvalidCredentials),
            "attempt {i}: {err:?}"
        );
    }
    let err = accounts
        .sign_in_password("taken@example.com", PASSWORD, &attacker, t0())
        .await
        .unwrap_err();
    assert!(matches!(err, SignInError::Throttled(_)), "{err:?}");
    // Someone else is not affected.
    accounts
        .sign_in_password("taken@example.com", PASSWORD, &ctx(), t0())
        .await
        .unwrap();
    // Probing sign-up for taken addresses counts too.
    let prober = RequestContext {
        ip: Some("198.51.100.77".into()),
        user_agent: None,
    };
    for _ in 0..21 {
        let err = accounts
            .sign_up("taken@example.com", PASSWORD, &prober)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                SignUpError::EmailUnavailable | SignUpError::Throttled(_)
            ),
            "{err:?}"
        );
    }
    let err = accounts
        .sign_up("fresh@example.com", PASSWORD, &prober)
        .await
        .unwrap_err();
    assert!(matches!(err, SignUpError::Throttled(_)), "{err:?}");
}

/// Admin actions are authorized in the domain: a developer is refused whatever the action (and
/// the attempt is audited), an admin cannot act on their own account, and an unknown user is
/// not found; an admin's action on another user takes effect.
async fn admin_actions_are_authorized_in_the_domain(db: Database) {
    use domain::{
        accounts::{AdminAction, Role},
        service::{Actor, ServiceError},
    };
    let (accounts, bob, _seed, _) = enrolled(&db, "bob@example.com").await;
    let carol = accounts
        .sign_up("carol@example.com", PASSWORD, &ctx())
        .await
        .unwrap();
    let admin = accounts
        .create_admin("root@example.com", "admin passphrase 4 keys")
        .await
        .unwrap();
    let as_bob = Actor::new(bob.clone(), false, ctx());
    for action in AdminAction::ALL {
        let err = accounts
            .admin_action(&as_bob, &carol.id, action)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ServiceError::Forbidden(_)),
            "{action:?}: {err:?}"
        );
    }
    // Claiming to be an admin is not enough either: the flag comes from the server's session.
    let carol_now = accounts.find(&carol.id).await.unwrap().unwrap();
    assert_eq!(carol_now.status, Status::Active);
    assert_eq!(carol_now.role, Role::Developer);
    let denied = audit::recent(&db, Some(&bob), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "authz.denied")
        .count();
    assert_eq!(denied, AdminAction::ALL.len());

    let as_admin = Actor::new(admin.id.clone(), true, ctx());
    let err = accounts
        .admin_action(&as_admin, &admin.id, AdminAction::Demote)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    let err = accounts
        .admin_action(&as_admin, "usr_00000000000000000000", AdminAction::Disable)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::NotFound), "{err:?}");
    let target = accounts
        .admin_action(&as_admin, &carol.id, AdminAction::Promote)
        .await
        .unwrap();
    assert_eq!(target.email, "carol@example.com");
    assert_eq!(
        accounts.find(&carol.id).await.unwrap().unwrap().role,
        Role::Admin
    );
}

/// An address that stops failing is free again after an hour; IPv6 clients share a counter per
/// /64 (one subscriber's network), so rotating through one's own /64 does not escape it.
async fn address_failures_are_forgotten_and_ipv6_is_grouped(db: Database) {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    let from = |ip: &str| RequestContext {
        ip: Some(ip.to_owned()),
        user_agent: None,
    };
    let guess = |email: String, ip: &'static str, at: DateTime<Utc>| {
        let accounts = accounts.clone();
        async move {
            accounts
                .sign_in_password(&email, "password guess 1", &from(ip), at)
                .await
                .unwrap_err()
        }
    };
    for i in 0..21 {
        let err = guess(format!("a{i}@example.com"), "198.51.100.9", t0()).await;
        assert!(
            matches!(err, SignInError::InvalidCredentials),
            "{i}: {err:?}"
        );
    }
    let err = guess("a-more@example.com".into(), "198.51.100.9", t0()).await;
    assert!(matches!(err, SignInError::Throttled(_)), "{err:?}");
    // An hour after the last failure the address has a clean slate: 20 free failures again.
    let later = t0() + Duration::minutes(61);
    for i in 0..20 {
        let err = guess(format!("b{i}@example.com"), "198.51.100.9", later).await;
        assert!(
            matches!(err, SignInError::InvalidCredentials),
            "attempt {i} an hour later: {err:?}"
        );
    }

    // Different addresses of one /64 count together; the next /64 does not.
    let ips = ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:abcd::3"];
    for i in 0..21 {
        let err = guess(format!("c{i}@example.com"), ips[i % 3], t0()).await;
        assert!(
            matches!(err, SignInError::InvalidCredentials),
            "{i}: {err:?}"
        );
    }
    let err = guess("c-more@example.com".into(), "2001:db8:5:6::ffff", t0()).await;
    assert!(matches!(err, SignInError::Throttled(_)), "{err:?}");
    let err = guess("c-more@example.com".into(), "2001:db8:5:7::1", t0()).await;
    assert!(matches!(err, SignInError::InvalidCredentials), "{err:?}");
}

/// Throttling must not tell a real account from an unknown address: the same wrong passwords
/// from the same places give the same answers, message and delay alike.
async fn real_and_unknown_addresses_are_throttled_alike(db: Database) {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    accounts
        .sign_up("real@example.com", PASSWORD, &ctx())
        .await
        .unwrap();
    let answers = |email: &'static str| {
        let accounts = accounts.clone();
        async move {
            let mut out = Vec::new();
            for i in 0..8 {
                let from = RequestContext {
                    ip: Some(format!("192.0.2.{}", 10 + i)),
                    user_agent: None,
                };
                let at = t0() + Duration::milliseconds(100 * i64::from(i));
                let err = accounts
                    .sign_in_password(email, "not the password", &from, at)
                    .await
                    .unwrap_err();
                out.push(err.to_string());
            }
            out
        }
    };
    let real = answers("real@example.com").await;
    let unknown = answers("nobody-here@example.com").await;
    assert_eq!(real, unknown);
    assert_eq!(real[4], "Incorrect email or password.");
    assert_eq!(real[5], "Too many attempts, try again in 1 minute.");
}

/// Fifty wrong passwords at once for one account: the attempt is reserved before the password
/// is checked, so no more are evaluated than the policy allows (4 free + the one that sets the
/// first delay); the rest are refused without a password check.
async fn concurrent_guesses_get_no_extra_attempts(db: Database) {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    accounts
        .sign_up("target@example.com", PASSWORD, &ctx())
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let accounts = accounts.clone();
        tasks.spawn(async move {
            let from = RequestContext {
                ip: Some(format!("198.18.{}.{}", i / 200, i % 200 + 1)),
                user_agent: None,
            };
            accounts
                .sign_in_password(
                    "target@example.com",
                    &format!("guess {i} wrong"),
                    &from,
                    t0(),
                )
                .await
                .unwrap_err()
        });
    }
    let mut evaluated = 0;
    let mut throttled = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            SignInError::InvalidCredentials => evaluated += 1,
            SignInError::Throttled(_) => throttled += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((evaluated, throttled), (5, 45));
    assert_eq!(
        throttle::failures(&db, &throttle::email_key("target@example.com"))
            .await
            .unwrap(),
        5
    );
}

/// A wrong current password on the password-change form counts against the account like a
/// failed sign-in: after five, even sign-in waits.
async fn wrong_current_passwords_count_like_sign_ins(db: Database) {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    let user = accounts
        .sign_up("changer@example.com", PASSWORD, &ctx())
        .await
        .unwrap();
    for i in 0..5 {
        let err = accounts
            .change_password(
                &user.id,
                "wrong current one",
                "new passphrase here",
                &ctx(),
                t0(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, ChangePasswordError::WrongCurrent),
            "{i}: {err:?}"
        );
    }
    let err = accounts
        .change_password(&user.id, PASSWORD, "new passphrase here", &ctx(), t0())
        .await
        .unwrap_err();
    assert!(matches!(err, ChangePasswordError::Throttled(_)), "{err:?}");
    let err = accounts
        .sign_in_password("changer@example.com", PASSWORD, &ctx(), t0())
        .await
        .unwrap_err();
    assert!(matches!(err, SignInError::Throttled(_)), "{err:?}");
}

/// Codes issued before 120-bit codes (10 characters, 50 bits) were stored as unsalted SHA-256.
/// Migration 8 marks them `legacy:`; the background job rewraps them as salted argon2id, after
/// which nothing stored reveals a code's SHA-256, and they still sign in once each.
async fn legacy_recovery_codes_are_rewrapped_and_still_work(db: Database) {
    use domain::{accounts::recovery, entities::recovery_code};
    use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
    let (accounts, id, _seed, codes) = enrolled(&db, "old@example.com").await;
    let old = ["abcde-fghjk", "mnpqr-stuvw", "xyz23-45678"];
    recovery_code::Entity::insert_many(old.iter().map(|code| recovery_code::ActiveModel {
        user_id: Set(id.clone()),
        code_hash: Set(format!("legacy:{}", recovery::digest(code))),
        used_at: Set(None),
        created_at: Set(t0()),
        ..Default::default()
    }))
    .exec_without_returning(db.conn())
    .await
    .unwrap();
    let now = t0() + Duration::minutes(5);
    let context = ctx();
    let code = |code: &'static str| accounts.sign_in_code(&id, code, &context, now);
    // Not rewrapped yet: a legacy code works once.
    code(old[0]).await.unwrap();
    assert!(matches!(code(old[0]).await, Err(SignInError::InvalidCode)));

    assert_eq!(accounts.rewrap_legacy_recovery_codes(2).await.unwrap(), 2);
    assert_eq!(accounts.rewrap_legacy_recovery_codes(100).await.unwrap(), 1);
    assert_eq!(accounts.rewrap_legacy_recovery_codes(100).await.unwrap(), 0);
    let stored: Vec<String> = recovery_code::Entity::find()
        .filter(recovery_code::Column::UserId.eq(id.as_str()))
        .all(db.conn())
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.code_hash)
        .collect();
    for code in old {
        let digest = recovery::digest(code);
        assert!(stored.iter().all(|h| !h.contains(&digest)), "{stored:?}");
    }
    let wrapped: Vec<&String> = stored
        .iter()
        .filter(|h| h.starts_with("$argon2id$"))
        .collect();
    assert_eq!(wrapped.len(), 3, "{stored:?}");
    // Each has its own salt: the PHC strings differ although the inputs have the same shape.
    assert_ne!(wrapped[0].split('$').nth(4), wrapped[1].split('$').nth(4));
    // The 120-bit codes of the enrolment are untouched (plain SHA-256 of 120 random bits).
    assert_eq!(stored.iter().filter(|h| h.len() == 64).count(), 10);

    // Rewrapped: the other legacy codes work once each; the used one, a wrong one, do not.
    code(old[1]).await.unwrap();
    assert!(matches!(code(old[1]).await, Err(SignInError::InvalidCode)));
    assert!(matches!(code(old[0]).await, Err(SignInError::InvalidCode)));
    assert!(matches!(
        code("zzzzz-zzzzz").await,
        Err(SignInError::InvalidCode)
    ));
    let upper: &'static str = old[2].to_uppercase().leak();
    code(upper).await.unwrap();
    // And the new codes still do.
    let new: &'static str = codes[0].clone().leak();
    code(new).await.unwrap();
    assert_eq!(accounts.unused_recovery_codes(&id).await.unwrap(), 9);
}

macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let t = super::TestDb::sqlite_memory().await;
                    super::$scenario(t.db.clone()).await;
                    t.cleanup().await;
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
    full_flow_with_replay_protection,
    recovery_codes_work_once,
    legacy_recovery_codes_are_rewrapped_and_still_work,
    sign_in_does_not_reveal_which_emails_exist,
    sign_up_rules,
    failures_slow_down_then_lock_the_account,
    totp_failures_have_their_own_counter,
    admin_actions,
    admin_actions_are_authorized_in_the_domain,
    settings_changes_need_the_current_secret,
    admins_list_search_and_promote,
    one_address_guessing_many_accounts_is_slowed_down,
    address_failures_are_forgotten_and_ipv6_is_grouped,
    real_and_unknown_addresses_are_throttled_alike,
    concurrent_guesses_get_no_extra_attempts,
    wrong_current_passwords_count_like_sign_ins,
);

/// An unknown email costs a full argon2 verification, like a wrong password: without the dummy
/// hash it would answer in well under a millisecond instead of tens of milliseconds. The bound is
/// loose (half) so machine noise cannot flip it; the gap it guards against is 50x or more.
#[tokio::test]
async fn unknown_emails_take_as_long_as_wrong_passwords() {
    let t = TestDb::sqlite_memory().await;
    let accounts = Accounts::new(t.db.clone(), SecretKey::generate());
    accounts
        .sign_up("known@example.com", PASSWORD, &ctx())
        .await
        .unwrap();
    domain::accounts::password::warm_up();
    let time = |email: &'static str| {
        let accounts = accounts.clone();
        async move {
            let mut total = std::time::Duration::ZERO;
            for i in 0..3 {
                let from = RequestContext {
                    ip: Some(format!("192.0.2.{i}")),
                    user_agent: None,
                };
                let start = std::time::Instant::now();
                let _ = accounts
                    .sign_in_password(email, "wrong password here", &from, t0())
                    .await;
                total += start.elapsed();
            }
            total
        }
    };
    let known = time("known@example.com").await;
    let unknown = time("unknown@example.com").await;
    assert!(
        unknown * 2 > known,
        "unknown email answered in {unknown:?}, wrong password in {known:?}"
    );
}
