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

pub async fn seed(
    db: &Database,
    config: &Config,
    keys: usize,
    limited: usize,
    out: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let accounts = domain::accounts::Accounts::new(db.clone(), config.secret_key()?);
    let user = match accounts.find_by_email("keyport-bench@example.com").await? {
        Some(u) => u,
        None => {
            accounts
                .create_admin("keyport-bench@example.com", "tidal basin marmalade")
                .await?
        }
    };
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
    let unknown: Vec<String> = (0..keys)
        .map(|_| PlainKey::generate().expose().to_owned())
        .collect();
    write("unknown.txt", &unknown)?;
    println!(
        "seeded {keys} valid keys, {limited} rate-limited keys, {keys} unknown keys into {}",
        out.display()
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
