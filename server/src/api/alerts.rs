//! `/v1/alerts`: the anomaly and leak alerts on the caller's keys (admins: everyone's), and
//! acknowledging one: what `/alerts` shows in the portal.
use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
};
use domain::id::AlertId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    caller::Caller,
    dto::rfc3339,
    error::{ApiError, ApiPath, ErrorBody},
};
use crate::AppState;

/// An alert on a key.
#[derive(Serialize, ToSchema)]
pub struct AlertDto {
    #[schema(example = "alr_8Hq2LmZ0aB3cD4eF5gH6")]
    pub id: String,
    /// `spike`, `denials`, `dormant_traffic` or `leaked`.
    pub rule: String,
    pub key_id: String,
    pub key_name: String,
    pub owner_email: String,
    /// Why it fired.
    pub detail: String,
    /// The start of the hour the rule looked at.
    pub window_start: String,
    pub created_at: String,
    pub acknowledged_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertList {
    /// Newest first.
    pub alerts: Vec<AlertDto>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// Acknowledged alerts too (default: open ones only).
    pub all: Option<bool>,
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
}

/// Alerts on your keys (admins: every key's), newest first.
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", params(AlertParams),
    responses((status = 200, body = AlertList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<AlertParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertList>, ApiError> {
    caller.require("usage:read")?;
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is 1 to 200"));
    }
    let alerts = state
        .alerts
        .list(&caller.actor, params.all.unwrap_or(false), limit)
        .await?;
    Ok(Json(AlertList {
        alerts: alerts
            .into_iter()
            .map(|a| AlertDto {
                id: a.id,
                rule: a.rule.as_str().to_owned(),
                key_id: a.key_id,
                key_name: a.key_name,
                owner_email: a.owner_email,
                detail: a.detail,
                window_start: rfc3339(a.window_start),
                created_at: rfc3339(a.created_at),
                acknowledged_at: a.acknowledged_at.map(rfc3339),
            })
            .collect(),
    }))
}

/// Acknowledges an alert: it leaves the list of open alerts.
#[utoipa::path(post, path = "/v1/alerts/{id}/acknowledge", tag = "alerts", params(("id" = String, Path)),
    responses((status = 204, description = "Acknowledged"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown, or an alert on another user's key")))]
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AlertId>,
) -> Result<StatusCode, ApiError> {
    caller.require("keys:write")?;
    state.alerts.acknowledge(&caller.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
