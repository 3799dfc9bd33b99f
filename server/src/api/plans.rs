//! `/v1/plans` (admins): the plans that give keys their default rate limit, quota, key count and
//! lifetime; creating and changing them, choosing the default, and putting a user on one
//! (`PUT /v1/users/{id}/plan`). The rules live in `domain::catalog`; this maps the wire.
use axum::{Json, extract::State, http::StatusCode};
use domain::{
    catalog::{ADMIN_SCOPE, Plan, PlanInput, RateLimit},
    id::{PlanId, UserId},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    caller::Caller,
    dto::{QuotaDto, RateLimitDto, double_option, quota_in},
    error::{ApiError, ApiJson, ApiPath, ErrorBody},
    users::{UserDto, user_dto},
};
use crate::AppState;

/// A plan.
#[derive(Serialize, ToSchema)]
pub struct PlanDto {
    #[schema(example = "pln_8Hq2LmZ0aB3cD4eF5gH6")]
    pub id: String,
    pub name: String,
    /// Requests per period for keys without their own limit; `null`: unlimited.
    pub rate_limit: Option<RateLimitDto>,
    /// Requests allowed at once above the steady rate; `null`: the rate limit itself.
    pub burst: Option<u32>,
    pub quota: Option<QuotaDto>,
    /// Most active keys a developer on this plan may hold; `null`: no limit.
    pub max_active_keys: Option<u32>,
    /// Longest a key may live, in days; `null`: keys may never expire.
    pub max_lifetime_days: Option<u32>,
    /// Sign-ups and users without a plan get this one.
    pub is_default: bool,
    /// `key`: each key has its own rate limit and quota; `developer`: a developer's keys share them.
    #[schema(example = "key")]
    pub limit_scope: String,
}

impl From<&Plan> for PlanDto {
    fn from(p: &Plan) -> PlanDto {
        PlanDto {
            id: p.id.clone(),
            name: p.name.clone(),
            rate_limit: p.rate_limit.map(|r| RateLimitDto {
                limit: r.limit,
                period_s: r.period_s,
            }),
            burst: p.burst,
            quota: p.quota.map(|q| QuotaDto {
                limit: q.limit,
                period: q.period.as_str().to_owned(),
            }),
            max_active_keys: p.max_active_keys,
            max_lifetime_days: p.max_lifetime_days,
            is_default: p.is_default,
            limit_scope: if p.per_developer { "developer" } else { "key" }.to_owned(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PlanList {
    /// Oldest first.
    pub plans: Vec<PlanDto>,
}

/// A new plan. Absent limits mean none.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    #[schema(example = "Team")]
    pub name: String,
    pub rate_limit: Option<RateLimitDto>,
    pub burst: Option<u32>,
    pub quota: Option<QuotaDto>,
    pub max_active_keys: Option<u32>,
    pub max_lifetime_days: Option<u32>,
    /// `key` (default) or `developer`.
    pub limit_scope: Option<String>,
}

/// A change to a plan: absent fields stay as they are, `null` removes a limit.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlan {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RateLimitDto>)]
    pub rate_limit: Option<Option<RateLimitDto>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub burst: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<QuotaDto>)]
    pub quota: Option<Option<QuotaDto>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub max_active_keys: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub max_lifetime_days: Option<Option<u32>>,
    /// `key` or `developer`.
    pub limit_scope: Option<String>,
}

/// Which plan a user is on.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignPlan {
    /// A plan's id, or `null` for the default plan. Required.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, example = "pln_8Hq2LmZ0aB3cD4eF5gH6")]
    pub plan_id: Option<Option<String>>,
}

fn per_developer(scope: Option<&str>, current: bool) -> Result<bool, ApiError> {
    match scope {
        None => Ok(current),
        Some("key") => Ok(false),
        Some("developer") => Ok(true),
        Some(_) => Err(ApiError::invalid(
            "limit_scope",
            "limit_scope is \"key\" or \"developer\"",
        )),
    }
}

fn rate_in(r: RateLimitDto) -> RateLimit {
    RateLimit {
        limit: r.limit,
        period_s: r.period_s,
    }
}

async fn plan_or_404(state: &AppState, id: &PlanId) -> Result<Plan, ApiError> {
    state
        .keys
        .catalog()
        .plan(id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)
}

/// Every plan, oldest first (admins).
#[utoipa::path(get, path = "/v1/plans", tag = "plans",
    responses((status = 200, body = PlanList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PlanList>, ApiError> {
    caller.require(ADMIN_SCOPE)?;
    let plans = state.keys.catalog().list_plans().await?;
    Ok(Json(PlanList {
        plans: plans.iter().map(PlanDto::from).collect(),
    }))
}

/// Creates a plan (admins).
#[utoipa::path(post, path = "/v1/plans", tag = "plans", request_body = CreatePlan,
    responses((status = 201, body = PlanDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "Invalid limits, or the name is taken")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreatePlan>,
) -> Result<(StatusCode, Json<PlanDto>), ApiError> {
    caller.require(ADMIN_SCOPE)?;
    let input = PlanInput {
        name: body.name,
        rate_limit: body.rate_limit.map(rate_in),
        burst: body.burst,
        quota: body.quota.map(quota_in).transpose()?,
        max_active_keys: body.max_active_keys,
        max_lifetime_days: body.max_lifetime_days,
        per_developer: per_developer(body.limit_scope.as_deref(), false)?,
    };
    let plan = state
        .keys
        .catalog()
        .create_plan(&caller.actor, input)
        .await?;
    Ok((StatusCode::CREATED, Json(PlanDto::from(&plan))))
}

/// One plan (admins).
#[utoipa::path(get, path = "/v1/plans/{id}", tag = "plans", params(("id" = String, Path)),
    responses((status = 200, body = PlanDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<PlanId>,
) -> Result<Json<PlanDto>, ApiError> {
    caller.require(ADMIN_SCOPE)?;
    Ok(Json(PlanDto::from(&plan_or_404(&state, &id).await?)))
}

/// Changes a plan (admins). Every key on it gets the new limits at once, on every instance.
#[utoipa::path(patch, path = "/v1/plans/{id}", tag = "plans", params(("id" = String, Path)), request_body = UpdatePlan,
    responses((status = 200, body = PlanDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<PlanId>,
    ApiJson(body): ApiJson<UpdatePlan>,
) -> Result<Json<PlanDto>, ApiError> {
    caller.require(ADMIN_SCOPE)?;
    let old = plan_or_404(&state, &id).await?;
    let quota = match body.quota {
        None => old.quota,
        Some(q) => q.map(quota_in).transpose()?,
    };
    let input = PlanInput {
        name: body.name.unwrap_or(old.name),
        rate_limit: body.rate_limit.map_or(old.rate_limit, |r| r.map(rate_in)),
        burst: body.burst.unwrap_or(old.burst),
        quota,
        max_active_keys: body.max_active_keys.unwrap_or(old.max_active_keys),
        max_lifetime_days: body.max_lifetime_days.unwrap_or(old.max_lifetime_days),
        per_developer: per_developer(body.limit_scope.as_deref(), old.per_developer)?,
    };
    let plan = state
        .keys
        .catalog()
        .update_plan(&caller.actor, id.as_str(), input)
        .await?;
    Ok(Json(PlanDto::from(&plan)))
}

/// Makes a plan the default (admins): sign-ups and users without a plan get it.
#[utoipa::path(post, path = "/v1/plans/{id}/default", tag = "plans", params(("id" = String, Path)),
    responses((status = 200, body = PlanDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn make_default(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<PlanId>,
) -> Result<Json<PlanDto>, ApiError> {
    caller.require(ADMIN_SCOPE)?;
    state
        .keys
        .catalog()
        .set_default_plan(&caller.actor, id.as_str())
        .await?;
    Ok(Json(PlanDto::from(&plan_or_404(&state, &id).await?)))
}

/// Puts a user on a plan, or back on the default with `"plan_id": null` (admins).
#[utoipa::path(put, path = "/v1/users/{id}/plan", tag = "users", params(("id" = String, Path)), request_body = AssignPlan,
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such user"),
        (status = 422, body = ErrorBody, description = "No such plan, or plan_id is missing")))]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(body): ApiJson<AssignPlan>,
) -> Result<Json<UserDto>, ApiError> {
    caller.require(ADMIN_SCOPE)?;
    let Some(plan_id) = body.plan_id else {
        return Err(ApiError::invalid(
            "plan_id",
            "plan_id is required: a plan's id, or null for the default plan",
        ));
    };
    let catalog = state.keys.catalog();
    if let Some(p) = &plan_id
        && (PlanId::parse(p).is_err() || catalog.plan(p).await?.is_none())
    {
        return Err(ApiError::invalid(
            "plan_id",
            "there is no plan with this id",
        ));
    }
    catalog
        .assign_plan(&caller.actor, user_id.as_str(), plan_id.as_deref())
        .await?;
    Ok(Json(user_dto(&state, user_id.as_str()).await?))
}
