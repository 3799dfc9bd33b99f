//! Memory per cached key (issue 14: at most 1 KB). The heap a verifier holds for the keys it
//! caches, counted by a counting allocator over the system one: every Rust allocation made while
//! loading 20,000 keys and not freed after. SQLite's own memory (its page cache, allocated in C)
//! is not counted: it is bounded by `--sqlite-cache-mib` whatever the number of keys.
//! `bench/flush.sh` prints the same figure as the process' RSS sees it.
use std::alloc::System;

use domain::{
    accounts::Accounts,
    catalog::Catalog,
    keys::seed::insert_keys,
    secret_key::SecretKey,
    testing::TestDb,
    usage::recorder::Recorder,
    verification::{Code, Request, Verifier},
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const KEYS: usize = 20_000;

#[tokio::test(flavor = "current_thread")]
async fn a_cached_key_takes_at_most_a_kilobyte() {
    let t = TestDb::sqlite_memory().await;
    let admin = Accounts::new(t.db.clone(), SecretKey::generate())
        .create_admin("root@example.com", "glacier lantern pepper")
        .await
        .unwrap();
    let api = Catalog::new(t.db.clone())
        .api_by_slug("keyport")
        .await
        .unwrap()
        .unwrap();
    let keys = insert_keys(&t.db, &admin.id, &api.id, &["keys:read"], KEYS, None)
        .await
        .unwrap();
    // An empty verifier first (its fixed parts: the filter of known hashes, sized for at least
    // 100,000 keys), then the keys.
    let verifier = Verifier::new(t.db.clone(), Recorder::new(t.db.clone()));
    let region = Region::new(GLOBAL);
    assert_eq!(verifier.load().await.unwrap(), KEYS);
    verifier.len();
    let stats = region.change();
    // (A reallocation's growth or shrinking is counted in these two already.)
    let held = stats.bytes_allocated as i64 - stats.bytes_deallocated as i64;
    let per_key = held / KEYS as i64;
    println!(
        "{KEYS} keys loaded: {held} bytes held ({per_key} per cached key, {} allocations left)",
        stats.allocations as i64 - stats.deallocations as i64
    );
    // The keys are really there: verifying one is answered from memory.
    let outcome = verifier
        .verify(
            &Request {
                key: &keys[KEYS / 2],
                api: Some("keyport"),
                cost: 1,
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .await;
    assert_eq!(outcome.code, Code::Valid);
    assert!(
        per_key <= 1024,
        "{per_key} bytes per cached key (target: at most 1 KB)"
    );
    t.cleanup().await;
}
