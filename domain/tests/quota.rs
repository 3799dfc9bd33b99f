//! Quota counting is atomic: N concurrent requests against a quota of M never allow more than M.
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use domain::verification::QuotaCounter;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn concurrent_requests_never_exceed_the_quota(threads in 2usize..8, per_thread in 1u64..200, limit in 0u64..500, cost in 1u64..4) {
        let counter = Arc::new(QuotaCounter::default());
        let allowed = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let counter = counter.clone();
                let allowed = allowed.clone();
                std::thread::spawn(move || {
                    for _ in 0..per_thread {
                        if counter.consume(1_000, cost, limit).is_ok() {
                            allowed.fetch_add(cost, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let used = allowed.load(Ordering::Relaxed);
        let asked = threads as u64 * per_thread * cost;
        prop_assert!(used <= limit, "allowed {used} of a quota of {limit}");
        // Every request that fit was allowed: the quota is used up to the last whole cost.
        prop_assert_eq!(used, Ord::min(asked, limit - limit % cost));
    }
}

#[test]
fn a_new_period_starts_from_zero() {
    let c = QuotaCounter::default();
    assert_eq!(c.consume(100, 2, 3), Ok(2));
    assert_eq!(c.consume(100, 2, 3), Err(2));
    assert_eq!(c.consume(200, 2, 3), Ok(2));
}
