//! The catalog admins maintain: APIs (with their scopes and versions) that keys grant access to,
//! and plans (rate limits, quotas, key limits) that users are on.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::Expr,
};
use serde_json::json;

use crate::{
    Database, audit,
    changes::{Change, KeyChanges, Listeners},
    entities::{api, api_key, api_scope, api_version, plan, user},
    id,
    service::{Actor, FieldErrors, ServiceError, is_unique_violation},
};

pub use crate::limits::{PlanLimits, Quota, QuotaPeriod, RateLimit};

/// The slug of the built-in API whose scopes govern Keyport's own REST API.
pub const KEYPORT_API: &str = "keyport";
/// The scope that lets a key act on everything (only admins' keys may carry it).
pub const ADMIN_SCOPE: &str = "admin";
/// The `keyport` scope a gateway's key needs when verification requires a token.
pub const VERIFY_SCOPE: &str = "verify";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub name: String,
    pub description: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionStatus {
    Active,
    Deprecated,
    Retired,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Active => "active",
            VersionStatus::Deprecated => "deprecated",
            VersionStatus::Retired => "retired",
        }
    }
    pub fn parse(s: &str) -> Option<VersionStatus> {
        match s {
            "active" => Some(VersionStatus::Active),
            "deprecated" => Some(VersionStatus::Deprecated),
            "retired" => Some(VersionStatus::Retired),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub name: String,
    pub status: VersionStatus,
    pub sunset_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Api {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub built_in: bool,
    pub scopes: Vec<Scope>,
    pub versions: Vec<Version>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Api {
    pub fn has_scope(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.name == name)
    }
}

/// What an admin submits to register an API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewApi {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub scopes: Vec<Scope>,
    pub versions: Vec<Version>,
}

/// A change to an API; `None` leaves a field as it is. Scopes and versions replace the lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub scopes: Option<Vec<Scope>>,
    pub versions: Option<Vec<Version>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub rate_limit: Option<RateLimit>,
    /// Requests allowed at once above the steady rate.
    pub burst: Option<u32>,
    pub quota: Option<Quota>,
    pub max_active_keys: Option<u32>,
    pub max_lifetime_days: Option<u32>,
    pub is_default: bool,
    /// The rate limit and quota are shared by all of a developer's keys (else each key's own).
    pub per_developer: bool,
}

impl Plan {
    /// The limits a key without its own inherits from this plan.
    pub fn limits(&self) -> PlanLimits {
        PlanLimits {
            rate_limit: self.rate_limit,
            burst: self.burst,
            quota: self.quota,
            per_developer: self.per_developer,
        }
    }
}

/// What an admin submits to create or change a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanInput {
    pub name: String,
    pub rate_limit: Option<RateLimit>,
    pub burst: Option<u32>,
    pub quota: Option<Quota>,
    pub max_active_keys: Option<u32>,
    pub max_lifetime_days: Option<u32>,
    /// The rate limit and quota are shared by all of a developer's keys.
    pub per_developer: bool,
}

impl From<plan::Model> for Plan {
    fn from(p: plan::Model) -> Plan {
        Plan {
            rate_limit: match (p.rate_limit, p.rate_period_s) {
                (Some(limit), Some(period)) if limit > 0 && period > 0 => Some(RateLimit {
                    limit: limit as u32,
                    period_s: period as u32,
                }),
                _ => None,
            },
            burst: p.rate_burst.map(|b| Ord::max(b, 1) as u32),
            quota: match (
                p.quota_limit,
                p.quota_period.as_deref().and_then(QuotaPeriod::parse),
            ) {
                (Some(limit), Some(period)) if limit >= 0 => Some(Quota {
                    limit: limit as u64,
                    period,
                }),
                _ => None,
            },
            max_active_keys: p.max_active_keys.map(|n| Ord::max(n, 0) as u32),
            max_lifetime_days: p.max_lifetime_days.map(|n| Ord::max(n, 1) as u32),
            is_default: p.is_default,
            per_developer: p.limit_scope == "developer",
            id: p.id,
            name: p.name,
        }
    }
}

fn valid_slug(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Scope names: lowercase letters, digits and `: . _ -`, e.g. `orders:read`.
pub fn valid_scope_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=100).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b':' | b'.' | b'_' | b'-')
        })
}

fn valid_version_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

fn check_scopes(scopes: &[Scope], errors: &mut FieldErrors) {
    let mut seen = std::collections::HashSet::new();
    for s in scopes {
        if !valid_scope_name(&s.name) {
            errors.add(
                "scopes",
                format!(
                    "\"{}\" is not a valid scope name: use lowercase letters, digits and : . _ - (e.g. orders:read)",
                    s.name
                ),
            );
        } else if !seen.insert(s.name.as_str()) {
            errors.add("scopes", format!("the scope {} is listed twice", s.name));
        }
        if s.description.len() > 500 {
            errors.add("scopes", "a scope description is at most 500 characters");
        }
    }
    if scopes.is_empty() {
        errors.add("scopes", "an API needs at least one scope");
    }
}

fn check_versions(versions: &[Version], errors: &mut FieldErrors) {
    let mut seen = std::collections::HashSet::new();
    for v in versions {
        if !valid_version_name(&v.name) {
            errors.add(
                "versions",
                format!(
                    "\"{}\" is not a valid version name: letters, digits and . _ - (e.g. v1)",
                    v.name
                ),
            );
        } else if !seen.insert(v.name.as_str()) {
            errors.add(
                "versions",
                format!("the version {} is listed twice", v.name),
            );
        }
        if v.sunset_at.is_some() && v.status == VersionStatus::Active {
            errors.add(
                "versions",
                format!("{}: only a deprecated version has a sunset date", v.name),
            );
        }
    }
}

fn check_name(name: &str, errors: &mut FieldErrors) {
    let len = name.trim().chars().count();
    if len == 0 {
        errors.add("name", "enter a name");
    } else if len > 200 {
        errors.add("name", "a name is at most 200 characters");
    } else if name.chars().any(char::is_control) {
        errors.add("name", "a name cannot contain control characters");
    }
}

/// The API catalog and plans.
#[derive(Clone, Debug)]
pub struct Catalog {
    db: Database,
    listeners: Listeners,
}

impl Catalog {
    /// Refuses (audited) unless the actor is an admin.
    async fn require_admin(&self, actor: &Actor, action: &str) -> Result<(), ServiceError> {
        if actor.is_admin {
            return Ok(());
        }
        let refused =
            ServiceError::Forbidden("only admins can change the API catalog and plans".into());
        Err(crate::service::deny(&self.db, actor, action, None, refused).await)
    }

    pub fn new(db: Database) -> Catalog {
        Catalog {
            db,
            listeners: Listeners::default(),
        }
    }

    /// Tells `listener` (the verifier) of every committed change to versions and limits.
    pub fn with_changes(mut self, listener: Arc<dyn KeyChanges>) -> Catalog {
        self.listeners.add(listener);
        self
    }

    /// After a change that affects many keys' effective limits.
    async fn limits_changed(&self, owner: Option<&str>) {
        let change = match owner {
            Some(user) => Change::Owner(user.to_owned()),
            None => Change::All,
        };
        self.listeners.tell(change).await;
    }

    async fn assemble(&self, rows: Vec<api::Model>) -> Result<Vec<Api>, ServiceError> {
        let ids: Vec<String> = rows.iter().map(|a| a.id.clone()).collect();
        let scopes = api_scope::Entity::find()
            .filter(api_scope::Column::ApiId.is_in(ids.clone()))
            .order_by_asc(api_scope::Column::Id)
            .all(self.db.conn())
            .await?;
        let versions = api_version::Entity::find()
            .filter(api_version::Column::ApiId.is_in(ids))
            .order_by_asc(api_version::Column::Id)
            .all(self.db.conn())
            .await?;
        Ok(rows
            .into_iter()
            .map(|a| Api {
                scopes: scopes
                    .iter()
                    .filter(|s| s.api_id == a.id)
                    .map(|s| Scope {
                        name: s.name.clone(),
                        description: s.description.clone(),
                    })
                    .collect(),
                versions: versions
                    .iter()
                    .filter(|v| v.api_id == a.id)
                    .map(|v| Version {
                        name: v.name.clone(),
                        status: VersionStatus::parse(&v.status).unwrap_or(VersionStatus::Active),
                        sunset_at: v.sunset_at,
                    })
                    .collect(),
                id: a.id,
                slug: a.slug,
                name: a.name,
                description: a.description,
                built_in: a.built_in,
                created_at: a.created_at,
                updated_at: a.updated_at,
            })
            .collect())
    }

    /// Every API, by slug.
    pub async fn list_apis(&self) -> Result<Vec<Api>, ServiceError> {
        let rows = api::Entity::find()
            .order_by_asc(api::Column::Slug)
            .all(self.db.conn())
            .await?;
        self.assemble(rows).await
    }

    pub async fn api_by_slug(&self, slug: &str) -> Result<Option<Api>, ServiceError> {
        let rows = api::Entity::find()
            .filter(api::Column::Slug.eq(slug))
            .all(self.db.conn())
            .await?;
        Ok(self.assemble(rows).await?.into_iter().next())
    }

    pub async fn api_by_id(&self, id: &str) -> Result<Option<Api>, ServiceError> {
        let rows = api::Entity::find_by_id(id.to_owned())
            .all(self.db.conn())
            .await?;
        Ok(self.assemble(rows).await?.into_iter().next())
    }

    pub async fn create_api(&self, actor: &Actor, new: NewApi) -> Result<Api, ServiceError> {
        self.require_admin(actor, "api.create").await?;
        let mut errors = FieldErrors::default();
        if !valid_slug(&new.slug) {
            errors.add(
                "slug",
                "use 2-64 lowercase letters, digits and hyphens, starting with a letter (e.g. orders)",
            );
        }
        check_name(&new.name, &mut errors);
        if new.description.len() > 2000 {
            errors.add("description", "a description is at most 2,000 characters");
        }
        check_scopes(&new.scopes, &mut errors);
        check_versions(&new.versions, &mut errors);
        errors.into_result()?;
        let now = Utc::now();
        let api_id = id::new_id(id::API);
        let txn = self.db.begin_write().await?;
        let inserted = api::Entity::insert(api::ActiveModel {
            id: Set(api_id.clone()),
            slug: Set(new.slug.clone()),
            name: Set(new.name.trim().to_owned()),
            description: Set(new.description.trim().to_owned()),
            built_in: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(ServiceError::Conflict(format!(
                    "an API with the slug {} already exists",
                    new.slug
                )));
            }
            other => {
                other?;
            }
        }
        insert_scopes(&txn, &api_id, &new.scopes).await?;
        insert_versions(&txn, &api_id, &new.versions).await?;
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "api.create",
            Some(&api_id),
            json!({ "slug": new.slug, "scopes": new.scopes.iter().map(|s| &s.name).collect::<Vec<_>>() }),
        )
        .await?;
        txn.commit().await?;
        self.listeners.tell(Change::Versions).await;
        self.api_by_id(&api_id).await?.ok_or(ServiceError::NotFound)
    }

    pub async fn update_api(
        &self,
        actor: &Actor,
        slug: &str,
        patch: ApiPatch,
    ) -> Result<Api, ServiceError> {
        self.require_admin(actor, "api.update").await?;
        let current = self
            .api_by_slug(slug)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let mut errors = FieldErrors::default();
        if let Some(name) = &patch.name {
            check_name(name, &mut errors);
        }
        if let Some(scopes) = &patch.scopes {
            check_scopes(scopes, &mut errors);
            if current.built_in
                && scopes
                    .iter()
                    .map(|s| &s.name)
                    .ne(current.scopes.iter().map(|s| &s.name))
            {
                errors.add("scopes", "the scopes of the built-in keyport API are fixed");
            }
        }
        if let Some(versions) = &patch.versions {
            check_versions(versions, &mut errors);
        }
        errors.into_result()?;
        if let Some(scopes) = &patch.scopes {
            for removed in current
                .scopes
                .iter()
                .filter(|old| !scopes.iter().any(|s| s.name == old.name))
            {
                let holders = keys_holding_scope(&self.db, &current.id, &removed.name).await?;
                if holders > 0 {
                    return Err(ServiceError::Conflict(format!(
                        "the scope {} is held by {holders} active key(s); revoke them or remove the scope from them first",
                        removed.name
                    )));
                }
            }
        }
        let txn = self.db.begin_write().await?;
        let mut update = api::Entity::update_many()
            .col_expr(api::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(api::Column::Id.eq(current.id.clone()));
        if let Some(name) = &patch.name {
            update = update.col_expr(api::Column::Name, Expr::value(name.trim().to_owned()));
        }
        if let Some(description) = &patch.description {
            update = update.col_expr(
                api::Column::Description,
                Expr::value(description.trim().to_owned()),
            );
        }
        update.exec(&txn).await?;
        if let Some(scopes) = &patch.scopes {
            api_scope::Entity::delete_many()
                .filter(api_scope::Column::ApiId.eq(current.id.clone()))
                .exec(&txn)
                .await?;
            insert_scopes(&txn, &current.id, scopes).await?;
        }
        if let Some(versions) = &patch.versions {
            api_version::Entity::delete_many()
                .filter(api_version::Column::ApiId.eq(current.id.clone()))
                .exec(&txn)
                .await?;
            insert_versions(&txn, &current.id, versions).await?;
        }
        let fields: Vec<&str> = [
            patch.name.as_ref().map(|_| "name"),
            patch.description.as_ref().map(|_| "description"),
            patch.scopes.as_ref().map(|_| "scopes"),
            patch.versions.as_ref().map(|_| "versions"),
        ]
        .into_iter()
        .flatten()
        .collect();
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "api.update",
            Some(&current.id),
            json!({ "slug": current.slug, "fields": fields }),
        )
        .await?;
        txn.commit().await?;
        self.listeners.tell(Change::Versions).await;
        self.api_by_id(&current.id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    // ---- plans ----

    pub async fn list_plans(&self) -> Result<Vec<Plan>, ServiceError> {
        Ok(plan::Entity::find()
            .order_by_asc(plan::Column::CreatedAt)
            .all(self.db.conn())
            .await?
            .into_iter()
            .map(Plan::from)
            .collect())
    }

    pub async fn plan(&self, id: &str) -> Result<Option<Plan>, ServiceError> {
        Ok(plan::Entity::find_by_id(id.to_owned())
            .one(self.db.conn())
            .await?
            .map(Plan::from))
    }

    pub async fn default_plan(&self) -> Result<Plan, ServiceError> {
        plan::Entity::find()
            .filter(plan::Column::IsDefault.eq(true))
            .one(self.db.conn())
            .await?
            .map(Plan::from)
            .ok_or_else(|| {
                ServiceError::Domain(crate::DomainError::Internal("no default plan".into()))
            })
    }

    /// The plan a user is on: the assigned one, else the default.
    pub async fn plan_for_user(&self, user_id: &str) -> Result<Plan, ServiceError> {
        let assigned = user::Entity::find_by_id(user_id.to_owned())
            .one(self.db.conn())
            .await?
            .and_then(|u| u.plan_id);
        if let Some(id) = assigned
            && let Some(plan) = self.plan(&id).await?
        {
            return Ok(plan);
        }
        self.default_plan().await
    }

    fn check_plan(input: &PlanInput) -> Result<(), ServiceError> {
        let mut errors = FieldErrors::default();
        check_name(&input.name, &mut errors);
        if let Some(r) = input.rate_limit
            && (r.limit == 0 || r.period_s == 0 || r.period_s > 86_400)
        {
            errors.add(
                "rate_limit",
                "a rate limit needs at least 1 request per period of 1 second to 1 day",
            );
        }
        if input
            .rate_limit
            .is_some_and(|r| r.limit > RateLimit::MAX_LIMIT)
        {
            errors.add(
                "rate_limit",
                "a rate limit is at most 1,000,000,000 requests per period",
            );
        }
        match (input.burst, input.rate_limit) {
            (Some(0), _) => errors.add("burst", "a burst is at least 1"),
            (Some(b), _) if b > RateLimit::MAX_LIMIT => {
                errors.add("burst", "a burst is at most 1,000,000,000")
            }
            (Some(b), Some(r)) if r.limit > 0 && !r.burst_fits(b) => errors.add(
                "burst",
                "at this rate the burst would take over a year to refill: lower it",
            ),
            _ => {}
        }
        match input.quota {
            Some(q) if q.limit == 0 => errors.add(
                "quota",
                "a quota is at least 1 request (a plan of 0 would refuse every key on it)",
            ),
            Some(q) if q.limit > Quota::MAX_LIMIT => {
                errors.add("quota", "a quota is at most 10^15 requests")
            }
            _ => {}
        }
        if input.max_active_keys.is_some_and(|n| n > 1_000_000) {
            errors.add(
                "max_active_keys",
                "a plan allows at most 1,000,000 active keys per developer",
            );
        }
        match input.max_lifetime_days {
            Some(0) => errors.add("max_lifetime_days", "a key lifetime is at least 1 day"),
            Some(d) if d > 36_500 => {
                errors.add("max_lifetime_days", "a key lifetime is at most 36,500 days")
            }
            _ => {}
        }
        errors.into_result()
    }

    pub async fn create_plan(&self, actor: &Actor, input: PlanInput) -> Result<Plan, ServiceError> {
        self.require_admin(actor, "plan.create").await?;
        Self::check_plan(&input)?;
        let plan_id = id::new_id(id::PLAN);
        let row = plan_row(&plan_id, &input);
        match plan::Entity::insert(plan::ActiveModel {
            is_default: Set(false),
            created_at: Set(Utc::now()),
            ..row
        })
        .exec_without_returning(self.db.conn())
        .await
        {
            Err(e) if is_unique_violation(&e) => {
                return Err(ServiceError::invalid(
                    "name",
                    "a plan with this name exists",
                ));
            }
            other => {
                other?;
            }
        }
        audit::record(
            self.db.conn(),
            &actor.ctx,
            Some(&actor.user_id),
            "plan.create",
            Some(&plan_id),
            json!({ "name": input.name.trim() }),
        )
        .await?;
        self.plan(&plan_id).await?.ok_or(ServiceError::NotFound)
    }

    pub async fn update_plan(
        &self,
        actor: &Actor,
        plan_id: &str,
        input: PlanInput,
    ) -> Result<Plan, ServiceError> {
        self.require_admin(actor, "plan.update").await?;
        Self::check_plan(&input)?;
        self.plan(plan_id).await?.ok_or(ServiceError::NotFound)?;
        match plan::Entity::update(plan_row(plan_id, &input))
            .exec(self.db.conn())
            .await
        {
            Err(e) if is_unique_violation(&e) => {
                return Err(ServiceError::invalid(
                    "name",
                    "a plan with this name exists",
                ));
            }
            other => {
                other?;
            }
        }
        audit::record(
            self.db.conn(),
            &actor.ctx,
            Some(&actor.user_id),
            "plan.update",
            Some(plan_id),
            json!({ "name": input.name.trim() }),
        )
        .await?;
        self.limits_changed(None).await;
        self.plan(plan_id).await?.ok_or(ServiceError::NotFound)
    }

    /// Makes a plan the one self-service sign-ups (and users without a plan) are on.
    pub async fn set_default_plan(&self, actor: &Actor, plan_id: &str) -> Result<(), ServiceError> {
        self.require_admin(actor, "plan.default").await?;
        self.plan(plan_id).await?.ok_or(ServiceError::NotFound)?;
        let txn = self.db.begin_write().await?;
        plan::Entity::update_many()
            .col_expr(plan::Column::IsDefault, Expr::value(false))
            .exec(&txn)
            .await?;
        plan::Entity::update_many()
            .col_expr(plan::Column::IsDefault, Expr::value(true))
            .filter(plan::Column::Id.eq(plan_id))
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "plan.default",
            Some(plan_id),
            json!({}),
        )
        .await?;
        txn.commit().await?;
        self.limits_changed(None).await;
        Ok(())
    }

    /// Puts a user on a plan (`None`: back to the default).
    pub async fn assign_plan(
        &self,
        actor: &Actor,
        user_id: &str,
        plan_id: Option<&str>,
    ) -> Result<(), ServiceError> {
        self.require_admin(actor, "user.plan").await?;
        if let Some(p) = plan_id {
            self.plan(p).await?.ok_or(ServiceError::NotFound)?;
        }
        let updated = user::Entity::update_many()
            .col_expr(
                user::Column::PlanId,
                Expr::value(plan_id.map(str::to_owned)),
            )
            .filter(user::Column::Id.eq(user_id))
            .exec(self.db.conn())
            .await?;
        if updated.rows_affected == 0 {
            return Err(ServiceError::NotFound);
        }
        audit::record(
            self.db.conn(),
            &actor.ctx,
            Some(&actor.user_id),
            "user.plan",
            Some(user_id),
            json!({ "plan_id": plan_id }),
        )
        .await?;
        self.limits_changed(Some(user_id)).await;
        Ok(())
    }
}

fn plan_row(plan_id: &str, input: &PlanInput) -> plan::ActiveModel {
    plan::ActiveModel {
        id: Set(plan_id.to_owned()),
        name: Set(input.name.trim().to_owned()),
        rate_limit: Set(input.rate_limit.map(|r| r.limit as i32)),
        rate_period_s: Set(input.rate_limit.map(|r| r.period_s as i32)),
        rate_burst: Set(input.burst.map(|b| b as i32)),
        quota_limit: Set(input.quota.map(|q| q.limit as i64)),
        quota_period: Set(input.quota.map(|q| q.period.as_str().to_owned())),
        max_active_keys: Set(input.max_active_keys.map(|n| n as i32)),
        max_lifetime_days: Set(input.max_lifetime_days.map(|n| n as i32)),
        limit_scope: Set(if input.per_developer {
            "developer"
        } else {
            "key"
        }
        .to_owned()),
        ..Default::default()
    }
}

async fn insert_scopes(
    txn: &impl sea_orm::ConnectionTrait,
    api_id: &str,
    scopes: &[Scope],
) -> Result<(), ServiceError> {
    if scopes.is_empty() {
        return Ok(());
    }
    api_scope::Entity::insert_many(scopes.iter().map(|s| api_scope::ActiveModel {
        api_id: Set(api_id.to_owned()),
        name: Set(s.name.clone()),
        description: Set(s.description.trim().to_owned()),
        ..Default::default()
    }))
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

async fn insert_versions(
    txn: &impl sea_orm::ConnectionTrait,
    api_id: &str,
    versions: &[Version],
) -> Result<(), ServiceError> {
    if versions.is_empty() {
        return Ok(());
    }
    api_version::Entity::insert_many(versions.iter().map(|v| api_version::ActiveModel {
        api_id: Set(api_id.to_owned()),
        name: Set(v.name.clone()),
        status: Set(v.status.as_str().to_owned()),
        sunset_at: Set(v.sunset_at),
        ..Default::default()
    }))
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Unrevoked keys of an API whose scopes include `scope`.
async fn keys_holding_scope(db: &Database, api_id: &str, scope: &str) -> Result<u64, ServiceError> {
    use sea_orm::PaginatorTrait;
    let needle = format!("%{}%", serde_json::to_string(scope).unwrap_or_default());
    Ok(api_key::Entity::find()
        .filter(api_key::Column::ApiId.eq(api_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .filter(api_key::Column::Scopes.like(needle))
        .count(db.conn())
        .await?)
}
