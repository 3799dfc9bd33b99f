//! `/v1/hygiene`: the caller's keys that deserve a look (admins: everyone's), as `/hygiene`
//! shows them, and revoking a batch of them. Each revocation goes through the keys service, so
//! each is authorized and audited on its own: another user's key fails as not found.
use axum::{
    Json,
    extract::{Query, State},
};
use chrono::Utc;
use domain::{
    id::KeyId,
    service::ServiceError,
    usage::hygiene::{Issue, report},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    caller::Caller,
    dto::{KeyDto, rfc3339},
    error::{ApiError, ApiJson, ErrorBody},
};
use crate::AppState;

/// A key that needs attention, and why.
#[derive(Serialize, ToSchema)]
pub struct FlaggedKeyDto {
    #[schema(example = "key_8Hq2LmZ0aB3cD4eF5gH6")]
    pub key_id: String,
    pub name: String,
    /// The key's first characters, as shown in lists.
    pub start: String,
    pub owner_email: String,
    /// The API's slug.
    pub api: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    /// Among `owner_disabled`, `expiring_soon`, `unused_30_days`, `never_used`, `never_expires`.
    pub issues: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HygieneReport {
    /// Oldest first.
    pub keys: Vec<FlaggedKeyDto>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HygieneParams {
    /// Only keys with this issue.
    pub issue: Option<String>,
}

/// Live keys with at least one hygiene issue: never used, unused for 30 days, expiring within
/// 7 days, never expiring, or owned by a disabled user. Your keys (admins: everyone's).
#[utoipa::path(get, path = "/v1/hygiene", tag = "keys", params(HygieneParams),
    responses((status = 200, body = HygieneReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<HygieneParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HygieneReport>, ApiError> {
    caller.require("keys:read")?;
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let only = match params.issue.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            Issue::ALL
                .into_iter()
                .find(|i| i.as_str() == s)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "issue",
                        "issue is one of owner_disabled, expiring_soon, unused_30_days, never_used, never_expires",
                    )
                })?,
        ),
    };
    let flagged = report(&state.db, &caller.actor, Utc::now()).await?;
    Ok(Json(HygieneReport {
        keys: flagged
            .into_iter()
            .filter(|k| only.is_none_or(|i| k.issues.contains(&i)))
            .map(|k| FlaggedKeyDto {
                key_id: k.key_id,
                name: k.name,
                start: k.start,
                owner_email: k.owner_email,
                api: k.api,
                created_at: rfc3339(k.created_at),
                expires_at: k.expires_at.map(rfc3339),
                last_used_at: k.last_used_at.map(rfc3339),
                issues: k.issues.iter().map(|i| i.as_str().to_owned()).collect(),
            })
            .collect(),
    }))
}

/// Most keys one bulk revocation takes.
const MAX_BATCH: usize = 100;

/// Keys to revoke together.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRevoke {
    /// 1 to 100 key ids.
    pub key_ids: Vec<String>,
    /// Recorded in each key's audit event.
    pub reason: Option<String>,
}

/// A key that could not be revoked, and why.
#[derive(Serialize, ToSchema)]
pub struct RevokeFailure {
    pub key_id: String,
    /// `not_found` (unknown, or another user's key), `conflict` (already revoked) or
    /// `internal` (retry it).
    pub code: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct BulkRevokeResult {
    /// The keys revoked by this call, as they are now.
    pub revoked: Vec<KeyDto>,
    pub failed: Vec<RevokeFailure>,
}

/// Revokes several keys at once, each authorized and audited on its own (a key that is not
/// yours fails as `not_found`; the others are still revoked).
#[utoipa::path(post, path = "/v1/hygiene/revoke", tag = "keys", request_body = BulkRevoke,
    responses((status = 200, body = BulkRevokeResult), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "No keys, more than 100, or an invalid reason (then nothing is revoked)")))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BulkRevoke>,
) -> Result<Json<BulkRevokeResult>, ApiError> {
    caller.require("keys:write")?;
    if body.key_ids.is_empty() || body.key_ids.len() > MAX_BATCH {
        return Err(ApiError::invalid("key_ids", "send 1 to 100 key ids"));
    }
    let mut ids = body.key_ids;
    ids.sort();
    ids.dedup();
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    let mut result = BulkRevokeResult {
        revoked: Vec::new(),
        failed: Vec::new(),
    };
    for id in ids {
        // Not a key id at all: like an unknown key, without a query.
        let revoked = match KeyId::parse(&id) {
            Ok(key_id) => {
                state
                    .keys
                    .revoke(&caller.actor, key_id.as_str(), reason.as_deref())
                    .await
            }
            Err(_) => Err(ServiceError::NotFound),
        };
        match revoked {
            Ok(key) => result.revoked.push(KeyDto::from(&key)),
            // The reason is the same for every key: refused for one, it is refused for all, so
            // nothing was revoked before this one.
            Err(e @ ServiceError::Invalid(_)) => return Err(e.into()),
            // Keys before this one may be revoked already: say which failed, and go on.
            Err(ServiceError::Domain(e)) => {
                let e = ApiError::internal(e);
                result.failed.push(RevokeFailure {
                    key_id: id,
                    code: e.code.to_owned(),
                    message: e.message,
                });
            }
            Err(e) => {
                let e = ApiError::from(e);
                result.failed.push(RevokeFailure {
                    key_id: id,
                    code: e.code.to_owned(),
                    message: e.message,
                });
            }
        }
    }
    Ok(Json(result))
}
