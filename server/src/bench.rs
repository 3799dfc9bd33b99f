//! Benchmark support: seeding many keys, and the baseline handler the verify endpoint is
//! measured against (mounted only with `KEYPORT_BENCH_BASELINE=1`).
use std::{io::Write, path::Path};

use anyhow::Context;
use axum::{Json, body::Bytes};
use domain::{
    Database,
    catalog::{NewApi, PlanInput, Scope},
    keys::PlainKey,
    service::Actor,
};

use crate::{
    Config,
    api::{
        error::ApiError,
        verify::{MAX_VERIFY_BODY, VerifyRequest, VerifyResponse},
    },
};

/// The admin that owns benchmark keys, created on first use.
async fn bench_admin(db: &Database, config: &Config) -> anyhow::Result<domain::accounts::User> {
    let accounts = domain::accounts::Accounts::new(db.clone(), config.secret_key()?);
    Ok(
        match accounts.find_by_email("keyport-bench@example.com").await? {
            Some(u) => u,
            None => {
                accounts
                    .create_admin("keyport-bench@example.com", "tidal basin marmalade")
                    .await?
            }
        },
    )
}

pub async fn seed(
    db: &Database,
    config: &Config,
    keys: usize,
    (limited, metered): (usize, usize),
    out: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let user = bench_admin(db, config).await?;
    let actor = Actor::new(user.id.clone(), true, Default::default());
    let catalog = domain::catalog::Catalog::new(db.clone());
    let api = match catalog.api_by_slug("bench").await? {
        Some(a) => a,
        None => {
            catalog
                .create_api(
                    &actor,
                    NewApi {
                        slug: "bench".into(),
                        name: "Benchmark".into(),
                        description: "Seeded by keyport bench seed".into(),
                        scopes: vec![Scope {
                            name: "bench:read".into(),
                            description: String::new(),
                        }],
                        versions: vec![],
                    },
                )
                .await?
        }
    };
    // No plan limits for the bench user: (b) measures verification, not rejection.
    let plan = catalog
        .create_plan(
            &actor,
            PlanInput {
                name: format!("bench-unlimited-{}", chrono::Utc::now().timestamp_millis()),
                ..Default::default()
            },
        )
        .await?;
    catalog
        .assign_plan(&actor, &user.id, Some(&plan.id))
        .await?;
    let write = |name: &str, lines: &[String]| -> anyhow::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(out.join(name))?);
        for l in lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    };
    let valid =
        domain::keys::seed::insert_keys(db, &user.id, &api.id, &["bench:read"], keys, None).await?;
    write("valid.txt", &valid).context("cannot write valid.txt")?;
    // One request an hour: after the first, every request is rate limited.
    let slow = domain::keys::seed::insert_keys(
        db,
        &user.id,
        &api.id,
        &["bench:read"],
        limited,
        Some((1, 3600)),
    )
    .await?;
    write("limited.txt", &slow)?;
    let fast = domain::keys::seed::insert_keys(
        db,
        &user.id,
        &api.id,
        &["bench:read"],
        metered,
        Some((1_000_000, 1)),
    )
    .await?;
    write("metered.txt", &fast)?;
    let unknown: Vec<String> = (0..keys)
        .map(|_| PlainKey::generate().expose().to_owned())
        .collect();
    write("unknown.txt", &unknown)?;
    println!(
        "seeded {keys} valid keys, {limited} rate-limited keys, {metered} metered keys, \
         {keys} unknown keys into {}",
        out.display()
    );
    Ok(())
}

/// Prints `name=count` lines of what the database holds (see `keyport bench totals`).
pub async fn totals(db: &Database) -> anyhow::Result<()> {
    for (name, q) in [
        (
            "usage",
            "SELECT CAST(SUM(count) AS BIGINT) FROM usage_buckets WHERE width = 60",
        ),
        ("journal_rows", "SELECT COUNT(*) FROM usage_journal"),
        (
            "journal_verifications",
            "SELECT CAST(SUM(verifications) AS BIGINT) FROM usage_journal",
        ),
        ("keys", "SELECT COUNT(*) FROM api_keys"),
        ("users", "SELECT COUNT(*) FROM users"),
        ("audit", "SELECT COUNT(*) FROM audit_events"),
    ] {
        println!("{name}={}", db.scalar(q).await?);
    }
    Ok(())
}

/// The usage analytics benchmark (issue 6): 10 million verifications over 30 days for one key
/// and lighter traffic for 1,000 more, written through the same path as the verifier's flush and
/// compacted as the background job does; then the 30-day key chart and the admin dashboard are
/// timed (median of 7 runs).
pub async fn usage(db: &Database, config: &Config) -> anyhow::Result<()> {
    use chrono::{Duration, Utc};
    use domain::{
        usage::{DAY, Range, Usage, add_minute_counts},
        verification::Code,
    };
    use std::time::Instant;

    let user = bench_admin(db, config).await?;
    let actor = Actor::new(user.id.clone(), true, Default::default());
    let api = domain::catalog::Catalog::new(db.clone())
        .api_by_slug("keyport")
        .await?
        .context("the built-in keyport API is missing")?;
    let ids = |db: &Database, n: usize| {
        let db = db.clone();
        let (owner, api) = (user.id.clone(), api.id.clone());
        async move {
            let plain =
                domain::keys::seed::insert_keys(&db, &owner, &api, &["keys:read"], n, None).await?;
            let keys = domain::keys::Keys::new(db.clone());
            let mut out = Vec::new();
            for p in plain {
                let k = keys
                    .find_by_hash(&domain::keys::format::hash_hex(&p))
                    .await?
                    .context("a seeded key is missing")?;
                out.push(k.id);
            }
            anyhow::Ok(out)
        }
    };
    let heavy = ids(db, 1).await?.remove(0);
    let light = ids(db, 1_000).await?;

    const TOTAL: u64 = 10_000_000;
    let now = Utc::now().timestamp();
    let end = now - now.rem_euclid(60);
    let start = end - 30 * DAY;
    let minutes = (30 * DAY / 60) as u64;
    let started = Instant::now();
    let mut rows = 0usize;
    let mut batch: Vec<(String, i64, Code, u64)> = Vec::with_capacity(60_000);
    let flush = async |batch: &mut Vec<(String, i64, Code, u64)>| -> anyhow::Result<()> {
        let counts: Vec<_> = batch
            .iter()
            .map(|(k, m, c, n)| (k.as_str(), *m, *c, *n))
            .collect();
        add_minute_counts(db, &counts).await?;
        batch.clear();
        Ok(())
    };
    for i in 0..minutes {
        let minute = start + i as i64 * 60;
        // 10,000,000 spread evenly over the minutes, 3% of them rate limited.
        let n = TOTAL / minutes + u64::from(i < TOTAL % minutes);
        let limited = n * 3 / 100;
        batch.push((heavy.clone(), minute, Code::Valid, n - limited));
        batch.push((heavy.clone(), minute, Code::RateLimited, limited));
        // Each light key is used in one minute of every hour.
        if i % 60 == 0 {
            for (j, k) in light.iter().enumerate() {
                let m = minute + (j as i64 % 60) * 60;
                if m < end {
                    batch.push((k.clone(), m, Code::Valid, 1 + (j as u64 + i) % 20));
                }
            }
        }
        if batch.len() >= 50_000 {
            rows += batch.len();
            flush(&mut batch).await?;
        }
    }
    rows += batch.len();
    flush(&mut batch).await?;
    println!(
        "seeded {rows} minute rows ({TOTAL} verifications of one key over 30 days, 1,000 lighter keys) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let keys = domain::keys::Keys::new(db.clone());
    let usage = Usage::new(db.clone(), keys);
    let t = Instant::now();
    let done = usage.compact(Utc::now(), &config.usage_retention()).await?;
    println!(
        "compacted minutes into hours and days in {:.1} s ({} minute rows past 48 h pruned)",
        t.elapsed().as_secs_f64(),
        done.pruned
    );

    async fn median<F, Fut, T>(mut f: F) -> anyhow::Result<(f64, T)>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..7 {
            let t = Instant::now();
            last = Some(f().await?);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        Ok((times[3], last.expect("seven runs")))
    }
    let now = Utc::now();
    let month = Range::last(30 * DAY, now);
    let (ms, s) = median(|| async { Ok(usage.key_series(&actor, &heavy, month).await?) }).await?;
    println!(
        "key chart, 30 days by day ({} buckets, {} verifications): {ms:.1} ms   (target <= 50 ms)",
        s.buckets.len(),
        s.total()
    );
    let hours = Range::new(
        now - Duration::days(30),
        now,
        Some(domain::usage::Granularity::Hour),
    )?;
    let (ms, s) = median(|| async { Ok(usage.key_series(&actor, &heavy, hours).await?) }).await?;
    println!(
        "key chart, 30 days by hour ({} buckets): {ms:.1} ms",
        s.buckets.len()
    );
    let day = Range::last(DAY, now);
    let (ms, _) = median(|| async { Ok(usage.key_series(&actor, &heavy, day).await?) }).await?;
    println!("key chart, 24 hours by hour: {ms:.1} ms");
    let (ms, o) = median(|| async { Ok(usage.overview(&actor, month).await?) }).await?;
    println!(
        "admin dashboard, 30 days ({} active keys, {} verifications): {ms:.1} ms   (target <= 200 ms)",
        o.active_keys,
        o.series.total()
    );
    Ok(())
}

/// The baseline: parses the same JSON body as verify and answers a JSON body of the same size,
/// doing no verification.
pub async fn baseline(body: Bytes) -> Result<Json<VerifyResponse>, ApiError> {
    if body.len() > MAX_VERIFY_BODY {
        return Err(ApiError::bad_request("too large"));
    }
    let req: VerifyRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(VerifyResponse {
        valid: true,
        code: "VALID",
        key_id: Some("key_00000000000000000000".into()),
        owner_id: Some("usr_00000000000000000000".into()),
        api: req.api.or(Some("bench".into())),
        scopes: Some(req.scopes),
        expires_at: Some(Some("2027-11-28T00:00:00Z".into())),
        ratelimit: None,
        quota: None,
        deprecation: None,
    }))
}
