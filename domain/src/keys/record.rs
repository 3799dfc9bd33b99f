//! One key model: a key's row with its owner, its API and the plan its limits fall back to,
//! loaded together (one query per table, for any number of keys) and decoded in one place
//! (scopes, allowlist, own limits, status facts, effective limits). The key service, the
//! verifier and the hygiene report read keys through it.
use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use crate::{
    accounts::{Role, Status},
    catalog::Plan,
    entities::{api, api_key, plan, user},
    keys::status::Lifecycle,
    limits::{self, Effective, Quota, QuotaPeriod, RateLimit},
};

/// A key with what it is read with.
#[derive(Clone, Debug)]
pub struct KeyRecord {
    pub row: api_key::Model,
    /// `None` only if the owner's row is gone (the key then counts as disabled).
    pub owner: Option<user::Model>,
    /// The slug of the key's API.
    pub api: String,
    /// The owner's plan, else the default plan.
    pub plan: Option<Plan>,
}

impl KeyRecord {
    pub fn scopes(&self) -> Vec<String> {
        serde_json::from_str(&self.row.scopes).unwrap_or_default()
    }

    /// The allowlist as stored (addresses and CIDR ranges, already normalised on write).
    pub fn ip_allowlist(&self) -> Vec<String> {
        serde_json::from_str(&self.row.ip_allowlist).unwrap_or_default()
    }

    /// The key's own rate limit, if it has one.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        match (self.row.rate_limit, self.row.rate_period_s) {
            (Some(limit), Some(period_s)) if limit > 0 && period_s > 0 => Some(RateLimit {
                limit: limit as u32,
                period_s: period_s as u32,
            }),
            _ => None,
        }
    }

    /// The key's own quota, if it has one.
    pub fn quota(&self) -> Option<Quota> {
        match (
            self.row.quota_limit,
            self.row
                .quota_period
                .as_deref()
                .and_then(QuotaPeriod::parse),
        ) {
            (Some(limit), Some(period)) => Some(Quota {
                limit: Ord::max(limit, 0) as u64,
                period,
            }),
            _ => None,
        }
    }

    /// The limits enforced on the key (its own, else its plan's).
    pub fn effective(&self) -> Effective {
        limits::effective(
            self.rate_limit(),
            self.quota(),
            self.plan.as_ref().map(Plan::limits).unwrap_or_default(),
        )
    }

    pub fn owner_active(&self) -> bool {
        self.owner
            .as_ref()
            .is_some_and(|u| Status::from_db(&u.status) == Status::Active)
    }

    pub fn owner_is_admin(&self) -> bool {
        self.owner
            .as_ref()
            .is_some_and(|u| Role::from_db(&u.role) == Role::Admin)
    }

    pub fn owner_email(&self) -> String {
        self.owner
            .as_ref()
            .map(|u| u.email.clone())
            .unwrap_or_default()
    }

    /// The facts the key's status follows from (see [`Lifecycle::status`]).
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            revoked: self.row.revoked_at.is_some(),
            enabled: self.row.enabled,
            owner_active: self.owner_active(),
            expires_at: self.row.expires_at,
            rotating: self.row.replaced_by.is_some(),
        }
    }
}

/// The records of these key rows: their owners, APIs and plans in one query per table.
pub async fn load(
    conn: &impl ConnectionTrait,
    rows: Vec<api_key::Model>,
) -> Result<Vec<KeyRecord>, DbErr> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut owner_ids: Vec<String> = rows.iter().map(|r| r.owner_id.clone()).collect();
    owner_ids.sort();
    owner_ids.dedup();
    let mut owners: HashMap<String, user::Model> = HashMap::new();
    for chunk in owner_ids.chunks(500) {
        for u in user::Entity::find()
            .filter(user::Column::Id.is_in(chunk.to_vec()))
            .all(conn)
            .await?
        {
            owners.insert(u.id.clone(), u);
        }
    }
    let apis: HashMap<String, String> = api::Entity::find()
        .all(conn)
        .await?
        .into_iter()
        .map(|a| (a.id, a.slug))
        .collect();
    let plans: HashMap<String, Plan> = plan::Entity::find()
        .all(conn)
        .await?
        .into_iter()
        .map(|p| (p.id.clone(), Plan::from(p)))
        .collect();
    let default_plan = plans.values().find(|p| p.is_default).cloned();
    Ok(rows
        .into_iter()
        .map(|row| {
            let owner = owners.get(&row.owner_id).cloned();
            let plan = owner
                .as_ref()
                .and_then(|u| u.plan_id.as_ref())
                .and_then(|p| plans.get(p))
                .cloned()
                .or_else(|| default_plan.clone());
            KeyRecord {
                api: apis.get(&row.api_id).cloned().unwrap_or_default(),
                owner,
                plan,
                row,
            }
        })
        .collect())
}
