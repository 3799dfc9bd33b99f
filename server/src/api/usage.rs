//! Usage over time, from the rollups: one key's, or every key the caller may read. Same
//! authorization as the keys API: another user's key answers 404.
use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
};
use chrono::Utc;
use domain::{
    id::KeyId,
    usage::{Filter, Range, Series},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    caller::Caller,
    error::{ApiError, ApiPath, ErrorBody},
};
use crate::AppState;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// RFC 3339; default 24 hours before `to`. Rounded down to the granularity.
    pub from: Option<String>,
    /// RFC 3339, exclusive; default now. Rounded up to the granularity.
    pub to: Option<String>,
    /// `minute`, `hour` or `day`; default the coarsest that fits the range (minutes up to
    /// 3 hours, hours up to 8 days). At most 1,500 buckets.
    pub granularity: Option<String>,
    /// Admins: only this user's keys.
    pub owner_id: Option<String>,
    /// Only keys of this API (slug).
    pub api: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageBucket {
    /// Start of the bucket, RFC 3339 UTC.
    pub start: String,
    /// Verifications by outcome code; codes that did not occur are left out.
    #[schema(example = json!({"VALID": 7412, "RATE_LIMITED": 3}))]
    pub counts: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageSeries {
    /// `minute`, `hour` or `day`.
    pub granularity: String,
    pub from: String,
    pub to: String,
    /// Every bucket of the range, oldest first, empty ones included.
    pub buckets: Vec<UsageBucket>,
}

impl From<Series> for UsageSeries {
    fn from(s: Series) -> Self {
        let t = |d: chrono::DateTime<Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        UsageSeries {
            granularity: s.range.granularity.as_str().to_owned(),
            from: t(s.range.from),
            to: t(s.range.to),
            buckets: s
                .buckets
                .into_iter()
                .map(|b| UsageBucket {
                    start: t(b.start),
                    counts: b
                        .counts
                        .into_iter()
                        .map(|(c, n)| (c.as_str().to_owned(), n))
                        .collect(),
                })
                .collect(),
        }
    }
}

fn range(p: &UsageParams) -> Result<Range, ApiError> {
    Ok(Range::parse(
        p.from.as_deref(),
        p.to.as_deref(),
        p.granularity.as_deref(),
        Utc::now(),
    )?)
}

/// One key's verifications over time, by outcome.
#[utoipa::path(get, path = "/v1/keys/{id}/usage", tag = "usage",
    params(("id" = String, Path, description = "The key's id"), UsageParams),
    responses((status = 200, body = UsageSeries), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn key_usage(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<KeyId>,
    params: Result<Query<UsageParams>, QueryRejection>,
) -> Result<Json<UsageSeries>, ApiError> {
    caller.require("usage:read")?;
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let range = range(&params)?;
    let series = state.usage.key_series(&caller.actor, &id, range).await?;
    Ok(Json(series.into()))
}

/// Verifications over time of all your keys (admins: the whole platform, or one user's keys
/// with `owner_id`), optionally of one API.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageParams),
    responses((status = 200, body = UsageSeries), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<UsageParams>, QueryRejection>,
) -> Result<Json<UsageSeries>, ApiError> {
    caller.require("usage:read")?;
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let range = range(&params)?;
    let filter = Filter {
        owner_id: params.owner_id.clone().filter(|s| !s.is_empty()),
        api: params.api.clone().filter(|s| !s.is_empty()),
    };
    let series = state.usage.series(&caller.actor, &filter, range).await?;
    Ok(Json(series.into()))
}
