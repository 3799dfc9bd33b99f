//! Bulk key creation for benchmarks: many keys at once, straight into the table (no audit
//! events), returning their plaintexts. Not reachable from the portal or the API.
use chrono::{Duration, Utc};
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::json;

use super::PlainKey;
use crate::{Database, DomainError, entities::api_key, id};

/// Inserts `count` keys of `api_id` owned by `owner_id`, valid for a year, with an optional
/// rate limit `(limit, period_s)`. Returns the plaintexts.
pub async fn insert_keys(
    db: &Database,
    owner_id: &str,
    api_id: &str,
    scopes: &[&str],
    count: usize,
    rate_limit: Option<(i32, i32)>,
) -> Result<Vec<String>, DomainError> {
    let now = Utc::now();
    let mut out = Vec::with_capacity(count);
    let txn = db.begin_write().await?;
    let mut batch = Vec::with_capacity(500);
    for i in 0..count {
        let key = PlainKey::generate();
        batch.push(api_key::ActiveModel {
            id: Set(id::new_id(id::KEY)),
            owner_id: Set(owner_id.to_owned()),
            api_id: Set(api_id.to_owned()),
            name: Set(format!("bench {i}")),
            start: Set(key.start()),
            hash: Set(key.hash()),
            scopes: Set(json!(scopes).to_string()),
            ip_allowlist: Set("[]".into()),
            rate_limit: Set(rate_limit.map(|r| r.0)),
            rate_period_s: Set(rate_limit.map(|r| r.1)),
            quota_limit: Set(None),
            quota_period: Set(None),
            enabled: Set(true),
            created_by: Set(owner_id.to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            expires_at: Set(Some(now + Duration::days(365))),
            ..Default::default()
        });
        out.push(key.expose().to_owned());
        if batch.len() == 500 {
            api_key::Entity::insert_many(std::mem::take(&mut batch))
                .exec_without_returning(&txn)
                .await?;
        }
    }
    if !batch.is_empty() {
        api_key::Entity::insert_many(batch)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(out)
}
