//! The verifier keeps a bounded number of keys in memory (`--key-cache-capacity`): every key
//! still verifies correctly, whether it is cached, evicted or never loaded; memory holds at most
//! the capacity; an evicted key's quota use is not handed back; and a key changed while not in
//! memory is read fresh when next used.
use std::sync::Arc;

use chrono::{Duration, Utc};
use domain::{
    Database,
    accounts::Accounts,
    catalog::{Catalog, Quota, QuotaPeriod},
    keys::{KeyPatch, Keys, NewKey, PlainKey, seed::insert_keys},
    secret_key::SecretKey,
    service::Actor,
    testing::TestDb,
    usage::recorder::Recorder,
    verification::{
        Code, Request, Verifier,
        verifier::{Options, Outcome},
    },
};

fn bounded(db: &Database, capacity: u64) -> Verifier {
    Verifier::with_options(
        db.clone(),
        Recorder::new(db.clone()),
        Options {
            key_cache_capacity: capacity,
            ..Options::default()
        },
    )
}

async fn verify(verifier: &Verifier, key: &str) -> Outcome {
    verifier
        .verify(
            &Request {
                key,
                api: Some("keyport"),
                cost: 1,
                ..Default::default()
            },
            Utc::now(),
        )
        .await
}

/// An admin and `n` keys of theirs, inserted straight into the database.
async fn seeded(db: &Database, n: usize) -> (Actor, Vec<String>) {
    let admin = Accounts::new(db.clone(), SecretKey::generate())
        .create_admin("root@example.com", "glacier lantern pepper")
        .await
        .unwrap();
    let api = Catalog::new(db.clone())
        .api_by_slug("keyport")
        .await
        .unwrap()
        .unwrap();
    let keys = insert_keys(db, &admin.id, &api.id, &["keys:read"], n, None)
        .await
        .unwrap();
    (Actor::new(admin.id, true, Default::default()), keys)
}

#[tokio::test]
async fn a_bounded_cache_verifies_every_key_and_holds_at_most_its_capacity() {
    let t = TestDb::sqlite_memory().await;
    let (_, keys) = seeded(&t.db, 3_000).await;
    let verifier = bounded(&t.db, 300);
    let loaded = verifier.load().await.unwrap();
    assert_eq!(loaded, 300, "start-up loads only as many keys as fit");
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(verify(&verifier, key).await.code, Code::Valid, "key {i}");
    }
    assert!(
        verifier.len() <= 300,
        "{} keys in memory for a capacity of 300",
        verifier.len()
    );
    // Keys in memory and keys fetched again verify alike, a second time round too.
    for key in keys.iter().step_by(7) {
        assert_eq!(verify(&verifier, key).await.code, Code::Valid);
    }
    // Made-up keys are still no keys.
    for _ in 0..100 {
        let made_up = PlainKey::generate();
        assert_eq!(
            verify(&verifier, made_up.expose()).await.code,
            Code::NotFound
        );
    }
    t.cleanup().await;
}

#[tokio::test]
async fn an_evicted_key_keeps_its_quota_use_and_is_read_fresh_after_a_change() {
    let t = TestDb::sqlite_memory().await;
    let (admin, others) = seeded(&t.db, 1_000).await;
    let verifier = bounded(&t.db, 100);
    verifier.load().await.unwrap();
    let keys = Keys::new(t.db.clone()).with_changes(Arc::new(verifier.clone()));
    let new_key = |name: &str, quota| NewKey {
        name: name.into(),
        api: "keyport".into(),
        scopes: vec!["keys:read".into()],
        quota,
        expires_at: Some(Utc::now() + Duration::days(30)),
        ..Default::default()
    };
    let metered = keys
        .create(
            &admin,
            new_key(
                "metered",
                Some(Quota {
                    limit: 5,
                    period: QuotaPeriod::Day,
                }),
            ),
        )
        .await
        .unwrap();
    let doomed = keys.create(&admin, new_key("doomed", None)).await.unwrap();
    for _ in 0..2 {
        assert!(verify(&verifier, metered.plaintext.expose()).await.valid());
    }
    // A change to a cached key replaces it in memory: still found by id, its use kept.
    keys.update(
        &admin,
        &metered.key.id,
        KeyPatch {
            name: Some("metered, renamed".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let used = verifier.quota_use(&metered.key.id, Utc::now());
    assert_eq!(
        used.map(|q| q.remaining),
        Some(3),
        "a replaced key is still cached"
    );
    assert!(verify(&verifier, metered.plaintext.expose()).await.valid());
    assert!(verify(&verifier, doomed.plaintext.expose()).await.valid());
    // Traffic on many other keys, each used more often (three times in a row, so each counts as
    // in use while cached, as the metered key did), pushes both out of memory.
    for _ in 0..2 {
        for key in &others {
            for _ in 0..3 {
                assert!(verify(&verifier, key).await.valid());
            }
        }
    }
    verifier.len(); // applies pending evictions
    assert!(
        verifier.quota_use(&metered.key.id, Utc::now()).is_none(),
        "the metered key was evicted"
    );
    // Revoked elsewhere (this verifier is not told) while not in memory: refused when next
    // used, since an evicted key is read fresh.
    Keys::new(t.db.clone())
        .revoke(&admin, &doomed.key.id, None)
        .await
        .unwrap();
    assert_eq!(
        verify(&verifier, doomed.plaintext.expose()).await.code,
        Code::Revoked
    );
    // 3 of 5 were used before the eviction: 2 more, then the quota is spent.
    let codes: Vec<Code> = {
        let mut codes = Vec::new();
        for _ in 0..3 {
            codes.push(verify(&verifier, metered.plaintext.expose()).await.code);
        }
        codes
    };
    assert_eq!(
        codes,
        [Code::Valid, Code::Valid, Code::QuotaExceeded],
        "eviction handed quota back"
    );
    t.cleanup().await;
}
