//! The catalog and key services against a real database: who may create what, the plan's limits,
//! rotation, revocation, listing and the audit trail. Each scenario runs on SQLite and, when
//! configured, on PostgreSQL.
use chrono::{Duration, Utc};
use domain::{
    Database,
    accounts::Accounts,
    audit::{self, RequestContext},
    catalog::{
        ApiPatch, NewApi, PlanInput, Quota, QuotaPeriod, RateLimit, Scope, Version, VersionStatus,
    },
    keys::{KeyPatch, KeyStatus, Keys, ListFilter, NewKey, PlainKey, Sort},
    secret_key::SecretKey,
    service::{Actor, ServiceError},
    testing::TestDb,
};

const PASSWORD: &str = "glacier lantern pepper";

fn ctx() -> RequestContext {
    RequestContext {
        ip: Some("203.0.113.7".into()),
        user_agent: Some("tests".into()),
    }
}

struct World {
    keys: Keys,
    admin: Actor,
    ada: Actor,
    bob: Actor,
}

async fn world(db: &Database) -> World {
    let accounts = Accounts::new(db.clone(), SecretKey::generate());
    let admin = accounts
        .create_admin("root@example.com", PASSWORD)
        .await
        .unwrap();
    let ada = accounts
        .sign_up("ada@example.com", PASSWORD, &ctx())
        .await
        .unwrap();
    let bob = accounts
        .sign_up("bob@example.com", PASSWORD, &ctx())
        .await
        .unwrap();
    let w = World {
        keys: Keys::new(db.clone()),
        admin: Actor::new(admin.id, true, ctx()),
        ada: Actor::new(ada.id, false, ctx()),
        bob: Actor::new(bob.id, false, ctx()),
    };
    w.keys
        .catalog()
        .create_api(
            &w.admin,
            NewApi {
                slug: "orders".into(),
                name: "Orders".into(),
                description: "Orders of the shop".into(),
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
                versions: vec![Version {
                    name: "v1".into(),
                    status: VersionStatus::Active,
                    sunset_at: None,
                }],
            },
        )
        .await
        .unwrap();
    w
}

fn orders_key(name: &str) -> NewKey {
    NewKey {
        name: name.into(),
        api: "orders".into(),
        scopes: vec!["orders:read".into()],
        expires_at: Some(Utc::now() + Duration::days(30)),
        ..Default::default()
    }
}

fn field_error(err: ServiceError, field: &str) -> String {
    match err {
        ServiceError::Invalid(errors) => errors
            .get(field)
            .unwrap_or_else(|| panic!("no error on {field}: {errors:?}"))
            .to_owned(),
        other => panic!("expected a validation error on {field}, got {other:?}"),
    }
}

async fn the_catalog_starts_with_keyport_and_a_default_plan(db: Database) {
    let w = world(&db).await;
    let apis = w.keys.catalog().list_apis().await.unwrap();
    let keyport = apis.iter().find(|a| a.slug == "keyport").unwrap();
    assert!(keyport.built_in);
    let scopes: Vec<_> = keyport.scopes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        scopes,
        [
            "keys:read",
            "keys:write",
            "usage:read",
            "audit:read",
            "admin",
            "verify",
            "webhooks:read",
            "webhooks:write"
        ]
    );
    let plan = w.keys.catalog().default_plan().await.unwrap();
    assert_eq!(plan.name, "Free");
    assert_eq!(
        w.keys
            .catalog()
            .plan_for_user(&w.ada.user_id)
            .await
            .unwrap(),
        plan
    );

    // Developers cannot change the catalog.
    let err = w
        .keys
        .catalog()
        .create_api(&w.ada, NewApi::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Forbidden(_)), "{err:?}");
    // Slugs are unique; input is checked field by field.
    let dup = NewApi {
        slug: "orders".into(),
        name: "Again".into(),
        scopes: vec![Scope {
            name: "x:y".into(),
            description: String::new(),
        }],
        ..Default::default()
    };
    let err = w
        .keys
        .catalog()
        .create_api(&w.admin, dup)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    let bad = NewApi {
        slug: "Bad Slug".into(),
        name: String::new(),
        ..Default::default()
    };
    let err = w
        .keys
        .catalog()
        .create_api(&w.admin, bad)
        .await
        .unwrap_err();
    let ServiceError::Invalid(errors) = err else {
        panic!()
    };
    assert!(
        errors.get("slug").is_some()
            && errors.get("name").is_some()
            && errors.get("scopes").is_some()
    );
    // The built-in API's scopes are fixed.
    let err = w
        .keys
        .catalog()
        .update_api(
            &w.admin,
            "keyport",
            ApiPatch {
                scopes: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Invalid(_)));
}

async fn developers_create_keys_within_their_plan(db: Database) {
    let w = world(&db).await;
    let created = w.keys.create(&w.ada, orders_key("ci")).await.unwrap();
    let plain = created.plaintext.expose().to_owned();
    assert!(PlainKey::parse(&plain).is_ok());
    assert_eq!(created.key.start, &plain[..9]);
    assert_eq!(created.key.owner_id, w.ada.user_id);
    assert_eq!(created.key.status(Utc::now()), KeyStatus::Active);
    let found = w
        .keys
        .find_by_hash(&created.plaintext.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, created.key.id);

    // Scopes must belong to the API; at least one.
    let mut k = orders_key("x");
    k.scopes = vec!["billing:read".into()];
    assert!(
        field_error(w.keys.create(&w.ada, k).await.unwrap_err(), "scopes").contains("billing:read")
    );
    let mut k = orders_key("x");
    k.scopes = vec![];
    field_error(w.keys.create(&w.ada, k).await.unwrap_err(), "scopes");
    // The Free plan (365 days max) does not allow never-expiring keys, nor longer ones.
    let mut k = orders_key("x");
    k.expires_at = None;
    field_error(w.keys.create(&w.ada, k).await.unwrap_err(), "expires_at");
    let mut k = orders_key("x");
    k.expires_at = Some(Utc::now() + Duration::days(400));
    field_error(w.keys.create(&w.ada, k).await.unwrap_err(), "expires_at");
    let mut k = orders_key("x");
    k.expires_at = Some(Utc::now() - Duration::days(1));
    field_error(w.keys.create(&w.ada, k).await.unwrap_err(), "expires_at");
    // No field raises the plan's limits (10 req/s, 10,000 a day).
    let mut k = orders_key("x");
    k.rate_limit = Some(RateLimit {
        limit: 11,
        period_s: 1,
    });
    field_error(w.keys.create(&w.ada, k).await.unwrap_err(), "ratelimit");
    let mut k = orders_key("x");
    k.rate_limit = Some(RateLimit {
        limit: 1000,
        period_s: 60,
    });
    field_error(w.keys.create(&w.ada, k).await.unwrap_err(), "ratelimit");
    let mut k = orders_key("x");
    k.quota = Some(Quota {
        limit: 10_001,
        period: QuotaPeriod::Day,
    });
    field_error(w.keys.create(&w.ada, k).await.unwrap_err(), "quota");
    let mut k = orders_key("x");
    k.quota = Some(Quota {
        limit: 10_001,
        period: QuotaPeriod::Month,
    });
    field_error(w.keys.create(&w.ada, k).await.unwrap_err(), "quota");
    // Lower limits are fine.
    let mut k = orders_key("limited");
    k.rate_limit = Some(RateLimit {
        limit: 5,
        period_s: 1,
    });
    k.quota = Some(Quota {
        limit: 100,
        period: QuotaPeriod::Day,
    });
    k.ip_allowlist = vec![
        "203.0.113.7".into(),
        "10.1.2.3/8".into(),
        "2001:db8::/32".into(),
    ];
    let limited = w.keys.create(&w.ada, k).await.unwrap().key;
    assert_eq!(
        limited.ip_allowlist,
        ["203.0.113.7", "10.0.0.0/8", "2001:db8::/32"]
    );
    assert_eq!(
        limited.rate_limit,
        Some(RateLimit {
            limit: 5,
            period_s: 1
        })
    );
    let mut k = orders_key("x");
    k.ip_allowlist = vec!["300.1.1.1".into()];
    field_error(w.keys.create(&w.ada, k).await.unwrap_err(), "ip_allowlist");

    // Developers cannot create keys for others, nor grant admin.
    let mut k = orders_key("x");
    k.owner_id = Some(w.bob.user_id.clone());
    assert!(matches!(
        w.keys.create(&w.ada, k).await.unwrap_err(),
        ServiceError::Forbidden(_)
    ));
    let admin_key = NewKey {
        name: "ops".into(),
        api: "keyport".into(),
        scopes: vec!["admin".into()],
        expires_at: Some(Utc::now() + Duration::days(1)),
        ..Default::default()
    };
    assert!(matches!(
        w.keys.create(&w.ada, admin_key.clone()).await.unwrap_err(),
        ServiceError::Forbidden(_)
    ));
    // Admins can, and are not bound by the default plan; but admin goes on admins' keys only.
    let mut for_bob = orders_key("for bob");
    for_bob.owner_id = Some(w.bob.user_id.clone());
    for_bob.expires_at = None;
    let bobs = w.keys.create(&w.admin, for_bob).await.unwrap().key;
    assert_eq!(bobs.owner_id, w.bob.user_id);
    assert_eq!(bobs.expires_at, None);
    assert!(w.keys.create(&w.admin, admin_key.clone()).await.is_ok());
    let mut admin_for_bob = admin_key;
    admin_for_bob.owner_id = Some(w.bob.user_id.clone());
    field_error(
        w.keys.create(&w.admin, admin_for_bob).await.unwrap_err(),
        "scopes",
    );
}

async fn plans_cap_active_keys(db: Database) {
    let w = world(&db).await;
    let plan = w
        .keys
        .catalog()
        .create_plan(
            &w.admin,
            PlanInput {
                name: "Tiny".into(),
                rate_limit: Some(RateLimit {
                    limit: 1,
                    period_s: 1,
                }),
                burst: Some(1),
                quota: None,
                max_active_keys: Some(2),
                max_lifetime_days: None,
                per_developer: false,
            },
        )
        .await
        .unwrap();
    w.keys
        .catalog()
        .assign_plan(&w.admin, &w.ada.user_id, Some(&plan.id))
        .await
        .unwrap();
    assert_eq!(
        w.keys
            .catalog()
            .plan_for_user(&w.ada.user_id)
            .await
            .unwrap()
            .name,
        "Tiny"
    );
    let mut never = orders_key("one");
    never.expires_at = None; // This plan allows keys that never expire.
    let one = w.keys.create(&w.ada, never).await.unwrap().key;
    w.keys.create(&w.ada, orders_key("two")).await.unwrap();
    let err = w
        .keys
        .create(&w.ada, orders_key("three"))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    // A revoked key no longer counts.
    w.keys
        .revoke(&w.ada, &one.id, Some("not needed"))
        .await
        .unwrap();
    w.keys.create(&w.ada, orders_key("three")).await.unwrap();
    // Plan names are unique; admins only.
    let err = w
        .keys
        .catalog()
        .create_plan(
            &w.admin,
            PlanInput {
                name: "Tiny".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    field_error(err, "name");
    let err = w
        .keys
        .catalog()
        .assign_plan(&w.ada, &w.ada.user_id, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Forbidden(_)));
}

async fn other_users_keys_are_not_found(db: Database) {
    let w = world(&db).await;
    let key = w
        .keys
        .create(&w.ada, orders_key("ada's"))
        .await
        .unwrap()
        .key;
    for result in [
        w.keys.get(&w.bob, &key.id).await.map(|_| ()),
        w.keys
            .update(
                &w.bob,
                &key.id,
                KeyPatch {
                    name: Some("mine".into()),
                    ..Default::default()
                },
            )
            .await
            .map(|_| ()),
        w.keys.rotate(&w.bob, &key.id, 0).await.map(|_| ()),
        w.keys.revoke(&w.bob, &key.id, None).await.map(|_| ()),
    ] {
        assert!(matches!(result, Err(ServiceError::NotFound)), "{result:?}");
    }
    assert_eq!(w.keys.get(&w.admin, &key.id).await.unwrap().id, key.id);
    let page = w
        .keys
        .list(&w.bob, &ListFilter::default(), None, 0, 50)
        .await
        .unwrap();
    assert_eq!(page.total, 0);
    // Bob asking for Ada's keys by owner filter still gets only his own.
    let filter = ListFilter {
        owner_id: Some(w.ada.user_id.clone()),
        ..Default::default()
    };
    assert_eq!(
        w.keys
            .list(&w.bob, &filter, None, 0, 50)
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        w.keys
            .list(&w.admin, &filter, None, 0, 50)
            .await
            .unwrap()
            .total,
        1
    );
}

async fn rotation_keeps_the_old_key_for_the_grace_period(db: Database) {
    let w = world(&db).await;
    let old = w
        .keys
        .create(&w.ada, orders_key("deploy"))
        .await
        .unwrap()
        .key;
    let new = w.keys.rotate(&w.ada, &old.id, 3600).await.unwrap();
    assert_eq!(new.key.replaces.as_deref(), Some(old.id.as_str()));
    assert_eq!(new.key.scopes, old.scopes);
    assert_eq!(new.key.name, old.name);
    assert_ne!(new.key.start, old.start);
    let old_now = w.keys.get(&w.ada, &old.id).await.unwrap();
    let now = Utc::now();
    assert_eq!(old_now.status(now), KeyStatus::Rotating);
    let until = old_now.expires_at.unwrap();
    assert!(until > now + Duration::minutes(59) && until <= now + Duration::minutes(61));
    assert_eq!(
        old_now.status(until + Duration::seconds(1)),
        KeyStatus::Expired
    );
    // Rotating twice is a conflict; rotate the replacement instead.
    let err = w.keys.rotate(&w.ada, &old.id, 0).await.unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)));
    // No grace: the old key expires at once.
    let again = w.keys.rotate(&w.ada, &new.key.id, 0).await.unwrap();
    let previous = w.keys.get(&w.ada, &new.key.id).await.unwrap();
    assert_eq!(previous.status(Utc::now()), KeyStatus::Expired);
    assert_eq!(again.key.status(Utc::now()), KeyStatus::Active);
    let err = w
        .keys
        .rotate(&w.ada, &again.key.id, 40 * 86_400)
        .await
        .unwrap_err();
    field_error(err, "grace_period_s");
}

async fn revoke_disable_and_update(db: Database) {
    let w = world(&db).await;
    let key = w
        .keys
        .create(&w.ada, orders_key("laptop"))
        .await
        .unwrap()
        .key;
    let disabled = w
        .keys
        .update(
            &w.ada,
            &key.id,
            KeyPatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(disabled.status(Utc::now()), KeyStatus::Disabled);
    let updated = w
        .keys
        .update(
            &w.ada,
            &key.id,
            KeyPatch {
                enabled: Some(true),
                name: Some("laptop 2".into()),
                scopes: Some(vec!["orders:read".into(), "orders:write".into()]),
                ip_allowlist: Some(vec!["2001:db8::1".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.status(Utc::now()), KeyStatus::Active);
    assert_eq!(updated.scopes, ["orders:read", "orders:write"]);
    assert_eq!(updated.ip_allowlist, ["2001:db8::1"]);
    let err = w
        .keys
        .update(
            &w.ada,
            &key.id,
            KeyPatch {
                expires_at: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    field_error(err, "expires_at");
    let revoked = w
        .keys
        .revoke(&w.ada, &key.id, Some("leaked in a log"))
        .await
        .unwrap();
    assert_eq!(revoked.status(Utc::now()), KeyStatus::Revoked);
    assert_eq!(revoked.revoke_reason.as_deref(), Some("leaked in a log"));
    assert!(matches!(
        w.keys.revoke(&w.ada, &key.id, None).await,
        Err(ServiceError::Conflict(_))
    ));
    assert!(matches!(
        w.keys
            .update(
                &w.ada,
                &key.id,
                KeyPatch {
                    enabled: Some(true),
                    ..Default::default()
                }
            )
            .await,
        Err(ServiceError::Conflict(_))
    ));
    // A scope held by a key cannot be dropped from the API (this key is revoked, so it can).
    let other = w
        .keys
        .create(&w.ada, orders_key("holder"))
        .await
        .unwrap()
        .key;
    let only_write = ApiPatch {
        scopes: Some(vec![Scope {
            name: "orders:write".into(),
            description: String::new(),
        }]),
        ..Default::default()
    };
    let err = w
        .keys
        .catalog()
        .update_api(&w.admin, "orders", only_write.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    w.keys.revoke(&w.ada, &other.id, None).await.unwrap();
    w.keys
        .catalog()
        .update_api(&w.admin, "orders", only_write)
        .await
        .unwrap();

    // Every change is in the audit log, which Ada sees for her keys and Bob does not.
    let filter = audit::Filter {
        involving: Some(w.ada.user_id.clone()),
        action: Some("key.".into()),
        ..Default::default()
    };
    let (entries, _) = audit::search(&db, &filter, None, 100).await.unwrap();
    let actions: Vec<_> = entries
        .iter()
        .rev()
        .map(|e| e.event.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "key.create",
            "key.disable",
            "key.update",
            "key.enable",
            "key.revoke",
            "key.create",
            "key.revoke"
        ]
    );
    assert!(
        entries
            .iter()
            .all(|e| !e.event.details.contains("kp_") || e.event.details.contains("\"start\""))
    );
    let bobs = audit::Filter {
        involving: Some(w.bob.user_id.clone()),
        action: Some("key.".into()),
        ..Default::default()
    };
    assert!(
        audit::search(&db, &bobs, None, 100)
            .await
            .unwrap()
            .0
            .is_empty()
    );
}

async fn lists_filter_sort_and_page(db: Database) {
    let w = world(&db).await;
    for i in 0..7 {
        let mut k = orders_key(&format!("key {i}"));
        k.expires_at = Some(Utc::now() + Duration::days(if i == 3 { 2 } else { 30 + i }));
        w.keys.create(&w.ada, k).await.unwrap();
    }
    let first = w
        .keys
        .list(&w.ada, &ListFilter::default(), None, 0, 3)
        .await
        .unwrap();
    assert_eq!(first.total, 7);
    let names: Vec<_> = first.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["key 6", "key 5", "key 4"]);
    let second = w
        .keys
        .list(
            &w.ada,
            &ListFilter::default(),
            first.next_cursor.as_deref(),
            0,
            3,
        )
        .await
        .unwrap();
    let names: Vec<_> = second.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["key 3", "key 2", "key 1"]);
    let soon = ListFilter {
        status: Some(KeyStatus::ExpiringSoon),
        ..Default::default()
    };
    let page = w.keys.list(&w.ada, &soon, None, 0, 10).await.unwrap();
    assert_eq!(
        page.keys
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
        ["key 3"]
    );
    let by_expiry = ListFilter {
        sort: Sort::Expires,
        ..Default::default()
    };
    let page = w.keys.list(&w.ada, &by_expiry, None, 0, 2).await.unwrap();
    assert_eq!(page.keys[0].name, "key 3");
    let search = ListFilter {
        query: Some("key 5".into()),
        ..Default::default()
    };
    assert_eq!(
        w.keys
            .list(&w.ada, &search, None, 0, 10)
            .await
            .unwrap()
            .total,
        1
    );
    let other_api = ListFilter {
        api: Some("keyport".into()),
        ..Default::default()
    };
    assert_eq!(
        w.keys
            .list(&w.ada, &other_api, None, 0, 10)
            .await
            .unwrap()
            .total,
        0
    );
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
    the_catalog_starts_with_keyport_and_a_default_plan,
    developers_create_keys_within_their_plan,
    plans_cap_active_keys,
    other_users_keys_are_not_found,
    rotation_keeps_the_old_key_for_the_grace_period,
    revoke_disable_and_update,
    lists_filter_sort_and_page,
);
