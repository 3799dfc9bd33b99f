//! Which webhook events are queued, for whom, and once: every change to a key through the keys
//! service, users created and disabled, and what the notifications job notices (expiring and
//! expired keys), on SQLite and PostgreSQL. Delivery over HTTP is the server's tests' part.
use chrono::{Duration, Utc};
use domain::{
    Database,
    accounts::{Accounts, Status},
    audit::RequestContext,
    keys::{KeyPatch, Keys, NewKey},
    notify::Notifier,
    outbox::Outbox,
    secret_key::SecretKey,
    service::{Actor, ServiceError},
    testing::TestDb,
    webhooks::{EndpointPatch, NewEndpoint, Webhooks},
};

const PASSWORD: &str = "glacier lantern pepper";

struct World {
    webhooks: Webhooks,
    keys: Keys,
    accounts: Accounts,
    notifier: Notifier,
    admin: Actor,
    ada: Actor,
    bob: Actor,
}

async fn world(db: Database) -> World {
    let key = SecretKey::generate();
    let outbox = Outbox::new(db.clone(), key.clone());
    let webhooks = Webhooks::new(db.clone(), key.clone(), outbox).allowing_private_targets(true);
    let accounts = Accounts::new(db.clone(), key).with_webhooks(webhooks.clone());
    let keys = Keys::new(db.clone()).with_webhooks(webhooks.clone());
    let notifier = Notifier::new(db.clone(), None).with_webhooks(webhooks.clone());
    let ctx = RequestContext::default();
    let admin = accounts
        .create_admin("root@example.com", PASSWORD)
        .await
        .unwrap();
    let ada = accounts
        .sign_up("ada@example.com", PASSWORD, &ctx)
        .await
        .unwrap();
    let bob = accounts
        .sign_up("bob@example.com", PASSWORD, &ctx)
        .await
        .unwrap();
    World {
        webhooks,
        keys,
        accounts,
        notifier,
        admin: Actor::new(admin.id, true, ctx.clone()),
        ada: Actor::new(ada.id, false, ctx.clone()),
        bob: Actor::new(bob.id, false, ctx),
    }
}

fn endpoint(url: &str) -> NewEndpoint {
    NewEndpoint {
        url: url.into(),
        ..Default::default()
    }
}

fn key_expiring_in(days: i64) -> NewKey {
    NewKey {
        name: "orders".into(),
        api: "keyport".into(),
        scopes: vec!["keys:read".into()],
        expires_at: Some(Utc::now() + Duration::days(days)),
        ..Default::default()
    }
}

/// The events queued for `endpoint_id`, in order.
async fn events_for(w: &World, endpoint_id: &str) -> Vec<String> {
    w.webhooks
        .queued()
        .await
        .unwrap()
        .into_iter()
        .filter(|(to, _, _)| to == endpoint_id)
        .map(|(_, kind, _)| kind)
        .collect()
}

async fn a_keys_life_is_told_to_its_owners_endpoints(db: Database) {
    let w = world(db).await;
    let adas = w
        .webhooks
        .create(&w.ada, endpoint("http://127.0.0.1:9/ada"))
        .await
        .unwrap();
    let bobs = w
        .webhooks
        .create(&w.bob, endpoint("http://127.0.0.1:9/bob"))
        .await
        .unwrap();
    let platform = w
        .webhooks
        .create(
            &w.admin,
            NewEndpoint {
                platform: true,
                events: vec!["user.created".into(), "user.disabled".into()],
                ..endpoint("http://127.0.0.1:9/platform")
            },
        )
        .await
        .unwrap();
    let quiet = w
        .webhooks
        .create(
            &w.ada,
            NewEndpoint {
                events: vec!["key.revoked".into()],
                ..endpoint("http://127.0.0.1:9/quiet")
            },
        )
        .await
        .unwrap();

    let key = w.keys.create(&w.ada, key_expiring_in(3)).await.unwrap().key;
    let patch = |p: KeyPatch| p;
    w.keys
        .update(
            &w.ada,
            &key.id,
            patch(KeyPatch {
                name: Some("renamed".into()),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    w.keys
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
    w.keys
        .update(
            &w.ada,
            &key.id,
            KeyPatch {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let new = w.keys.rotate(&w.ada, &key.id, 0).await.unwrap().key;
    w.keys
        .revoke(&w.admin, &new.id, Some("leaked"))
        .await
        .unwrap();
    assert_eq!(
        events_for(&w, &adas.endpoint.id).await,
        [
            "key.created",
            "key.updated",
            "key.disabled",
            "key.enabled",
            "key.rotated",
            "key.revoked"
        ]
    );
    assert_eq!(events_for(&w, &quiet.endpoint.id).await, ["key.revoked"]);
    assert!(
        events_for(&w, &bobs.endpoint.id).await.is_empty(),
        "Bob hears nothing of Ada's key"
    );

    // Each body is {type, timestamp, data}: the key as the REST API shows it.
    let queued = w.webhooks.queued().await.unwrap();
    let (_, _, revoked) = queued
        .iter()
        .rev()
        .find(|(to, _, _)| *to == adas.endpoint.id)
        .unwrap();
    assert_eq!(revoked["type"], "key.revoked");
    assert_eq!(revoked["data"]["id"], new.id.as_str());
    assert_eq!(revoked["data"]["status"], "revoked");
    assert!(revoked["data"].get("hash").is_none());

    // Users: created and disabled reach platform-wide endpoints only.
    let ctx = RequestContext::default();
    let carl = w
        .accounts
        .sign_up("carl@example.com", PASSWORD, &ctx)
        .await
        .unwrap();
    w.accounts
        .set_status(&w.admin.user_id, &carl.id, Status::Disabled, &ctx)
        .await
        .unwrap();
    assert_eq!(
        events_for(&w, &platform.endpoint.id).await,
        ["user.created", "user.disabled"]
    );
    let (_, _, disabled) = w.webhooks.queued().await.unwrap().pop().unwrap();
    assert_eq!(disabled["data"]["email"], "carl@example.com");
    assert_eq!(disabled["data"]["status"], "disabled");
    assert!(
        !events_for(&w, &adas.endpoint.id)
            .await
            .iter()
            .any(|e| e.starts_with("user."))
    );

    // A disabled endpoint gets nothing.
    w.webhooks
        .update(
            &w.ada,
            &adas.endpoint.id,
            EndpointPatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w.keys.create(&w.ada, key_expiring_in(30)).await.unwrap();
    assert_eq!(events_for(&w, &adas.endpoint.id).await.len(), 6);
}

async fn the_notifier_tells_of_expiring_and_expired_keys_once(db: Database) {
    let w = world(db.clone()).await;
    let hook = w
        .webhooks
        .create(&w.ada, endpoint("http://127.0.0.1:9/"))
        .await
        .unwrap();
    let soon = w.keys.create(&w.ada, key_expiring_in(3)).await.unwrap().key;
    let now = Utc::now();
    w.notifier.run(now).await.unwrap();
    w.notifier.run(now).await.unwrap();
    assert_eq!(
        events_for(&w, &hook.endpoint.id).await,
        ["key.created", "key.expiring"]
    );
    // A day before the end, once more; after it, "expired".
    let later = soon.expires_at.unwrap() - Duration::hours(12);
    w.notifier.run(later).await.unwrap();
    let after = soon.expires_at.unwrap() + Duration::minutes(5);
    w.notifier.run(after).await.unwrap();
    w.notifier.run(after).await.unwrap();
    assert_eq!(
        events_for(&w, &hook.endpoint.id).await,
        ["key.created", "key.expiring", "key.expiring", "key.expired"]
    );
    let (_, _, expired) = w.webhooks.queued().await.unwrap().pop().unwrap();
    assert_eq!(expired["data"]["id"], soon.id.as_str());
}

/// What the notifications job notices in usage goes to the key owner's endpoints too, once
/// each: `quota.warning` at 80%, `quota.exceeded` at 100%, `usage.anomaly` for an alert. Bob's
/// endpoint hears nothing of Ada's key.
async fn quota_and_anomaly_events_reach_the_owners_endpoints_once(db: Database) {
    use domain::{
        catalog::{Quota, QuotaPeriod},
        entities::usage_alert,
        usage::recorder::Recorder,
        verification::{Code, Request, Verifier},
    };
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let w = world(db.clone()).await;
    let adas = w
        .webhooks
        .create(&w.ada, endpoint("http://127.0.0.1:9/ada"))
        .await
        .unwrap();
    let bobs = w
        .webhooks
        .create(&w.bob, endpoint("http://127.0.0.1:9/bob"))
        .await
        .unwrap();
    let created = w
        .keys
        .create(
            &w.admin,
            NewKey {
                quota: Some(Quota {
                    limit: 10,
                    period: QuotaPeriod::Day,
                }),
                owner_id: Some(w.ada.user_id.clone()),
                ..key_expiring_in(30)
            },
        )
        .await
        .unwrap();
    let verifier = Verifier::new(db.clone(), Recorder::new(db.clone()));
    verifier.load().await.unwrap();
    let notifier = Notifier::new(db.clone(), None)
        .with_webhooks(w.webhooks.clone())
        .with_quotas(verifier.clone());
    let plaintext = created.plaintext.expose().to_owned();
    // One instant for the whole day's quota, so a run across midnight counts in one period.
    let today = Utc::now();
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
                        today,
                    )
                    .await;
                assert_eq!(outcome.code, Code::Valid);
            }
            verifier.flush().await.unwrap();
        }
    };
    let usage_events = || async {
        events_for(&w, &adas.endpoint.id)
            .await
            .into_iter()
            .filter(|e| !e.starts_with("key."))
            .collect::<Vec<_>>()
    };
    spend(7).await;
    notifier.run(today).await.unwrap();
    assert!(usage_events().await.is_empty(), "70% is not 80%");
    spend(1).await;
    notifier.run(today).await.unwrap();
    notifier.run(today).await.unwrap();
    assert_eq!(usage_events().await, ["quota.warning"]);
    spend(2).await;
    notifier.run(today).await.unwrap();
    notifier.run(today).await.unwrap();
    assert_eq!(usage_events().await, ["quota.warning", "quota.exceeded"]);
    let (_, _, exceeded) = w.webhooks.queued().await.unwrap().pop().unwrap();
    assert_eq!(exceeded["type"], "quota.exceeded");
    assert_eq!(exceeded["data"]["quota"]["used"], 10);
    assert_eq!(exceeded["data"]["quota"]["limit"], 10);
    assert_eq!(exceeded["data"]["key"]["id"], created.key.id.as_str());

    let now = Utc::now();
    usage_alert::Entity::insert(usage_alert::ActiveModel {
        id: Set("alr_webhooktest000000000".into()),
        key_id: Set(created.key.id.clone()),
        owner_id: Set(w.ada.user_id.clone()),
        rule: Set("spike".into()),
        window_start: Set(now.timestamp() - 3600),
        window_end: Set(now.timestamp()),
        observed: Set(5000),
        baseline: Set(50),
        detail: Set("5000 requests in an hour, 100 times the usual".into()),
        created_at: Set(now),
        acknowledged_at: Set(None),
        acknowledged_by: Set(None),
    })
    .exec_without_returning(db.conn())
    .await
    .unwrap();
    notifier.run(now).await.unwrap();
    notifier.run(now).await.unwrap();
    assert_eq!(
        usage_events().await,
        ["quota.warning", "quota.exceeded", "usage.anomaly"]
    );
    let (_, _, anomaly) = w.webhooks.queued().await.unwrap().pop().unwrap();
    assert_eq!(anomaly["data"]["alert"]["id"], "alr_webhooktest000000000");
    assert_eq!(anomaly["data"]["key"]["id"], created.key.id.as_str());
    assert!(events_for(&w, &bobs.endpoint.id).await.is_empty());
    // The admin's email queue shows none of these deliveries: they have their own log.
    let emails = Outbox::new(db.clone(), SecretKey::generate());
    assert_eq!(emails.summary().await.unwrap().pending, 0);
    assert_eq!(emails.list(None, 50, 0).await.unwrap().1, 0);
    assert!(emails.unsent(50).await.unwrap().is_empty());
}

async fn endpoints_belong_to_their_owner(db: Database) {
    let w = world(db).await;
    let adas = w
        .webhooks
        .create(&w.ada, endpoint("http://127.0.0.1:9/"))
        .await
        .unwrap();
    assert!(adas.secret.expose().starts_with("whsec_"));
    let id = adas.endpoint.id.as_str();
    assert!(matches!(
        w.webhooks.get(&w.bob, id).await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        w.webhooks.delete(&w.bob, id).await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        w.webhooks.rotate_secret(&w.bob, id).await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        w.webhooks.send_test(&w.bob, id).await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        w.webhooks
            .create(
                &w.bob,
                NewEndpoint {
                    platform: true,
                    ..endpoint("http://127.0.0.1:9/")
                }
            )
            .await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(w.webhooks.list(&w.bob, true).await.unwrap().is_empty());
    assert_eq!(w.webhooks.list(&w.admin, true).await.unwrap().len(), 1);
    w.webhooks
        .get(&w.admin, id)
        .await
        .expect("admins see every endpoint");
    let rotated = w.webhooks.rotate_secret(&w.ada, id).await.unwrap();
    assert_ne!(rotated.secret, adas.secret);
    assert!(rotated.endpoint.previous_secret_until.is_some());
    // At most 20 endpoints per account.
    for n in 1..20 {
        w.webhooks
            .create(&w.ada, endpoint(&format!("http://127.0.0.1:9/{n}")))
            .await
            .unwrap();
    }
    assert!(matches!(
        w.webhooks
            .create(&w.ada, endpoint("http://127.0.0.1:9/21"))
            .await,
        Err(ServiceError::Conflict(_))
    ));
    w.webhooks.delete(&w.ada, id).await.unwrap();
    assert!(matches!(
        w.webhooks.get(&w.ada, id).await,
        Err(ServiceError::NotFound)
    ));
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
    a_keys_life_is_told_to_its_owners_endpoints,
    the_notifier_tells_of_expiring_and_expired_keys_once,
    quota_and_anomaly_events_reach_the_owners_endpoints_once,
    endpoints_belong_to_their_owner
);
