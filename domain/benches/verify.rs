//! In-process verification of a cached key, with a rate limit and usage counting: the cost of
//! the hot path without HTTP. `cargo bench -p domain --bench verify`.
use chrono::{Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use domain::{
    catalog::{NewApi, PlanInput, RateLimit, Scope},
    keys::{Keys, NewKey},
    service::Actor,
    testing::TestDb,
    verification::{Code, Request, Verifier},
};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (verifier, key) = rt.block_on(async {
        let t = TestDb::sqlite_memory().await;
        let accounts = domain::accounts::Accounts::new(
            t.db.clone(),
            domain::secret_key::SecretKey::generate(),
        );
        let admin = accounts
            .create_admin("keyport-bench@example.com", "tidal basin marmalade")
            .await
            .unwrap();
        let actor = Actor::new(admin.id.clone(), true, Default::default());
        let verifier = Verifier::new(
            t.db.clone(),
            domain::usage::recorder::Recorder::new(t.db.clone()),
        );
        let keys = Keys::new(t.db.clone()).with_changes(std::sync::Arc::new(verifier.clone()));
        keys.catalog()
            .create_api(
                &actor,
                NewApi {
                    slug: "bench".into(),
                    name: "Bench".into(),
                    scopes: vec![Scope {
                        name: "bench:read".into(),
                        description: String::new(),
                    }],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let plan = keys
            .catalog()
            .create_plan(
                &actor,
                PlanInput {
                    name: "big".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        keys.catalog()
            .assign_plan(&actor, &admin.id, Some(&plan.id))
            .await
            .unwrap();
        let created = keys
            .create(
                &actor,
                NewKey {
                    name: "bench".into(),
                    api: "bench".into(),
                    scopes: vec!["bench:read".into()],
                    expires_at: Some(Utc::now() + Duration::days(30)),
                    // High enough never to refuse during the benchmark, so each call pays for
                    // a successful GCRA check.
                    rate_limit: Some(RateLimit {
                        limit: 1_000_000_000,
                        period_s: 1,
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        verifier.load().await.unwrap();
        (verifier, created.plaintext.expose().to_owned())
    });
    let scopes = vec!["bench:read".to_owned()];
    let req = Request {
        key: &key,
        api: Some("bench"),
        scopes: &scopes,
        ip: Some("203.0.113.7".parse().unwrap()),
        version: None,
        cost: 1,
    };
    let now = Utc::now();
    assert_eq!(verifier.verify_cached(&req, now).unwrap().code, Code::Valid);
    c.bench_function("verify_cached_hit_with_rate_limit_and_usage", |b| {
        b.iter(|| {
            let outcome = verifier
                .verify_cached(std::hint::black_box(&req), now)
                .unwrap();
            std::hint::black_box(outcome.code)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
