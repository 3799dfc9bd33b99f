//! `/v1/leaks`: leak reports in the secret-scanning partner format. A partner signs the raw body
//! with ECDSA P-256 (`Github-Public-Key-Identifier`, `Github-Public-Key-Signature`) against a key
//! of `--leak-report-keys`; an admin's management key may report too (`keyport scan --report`).
use axum::{
    Json,
    body::Bytes,
    extract::{Query, State},
    http::HeaderMap,
};
use domain::leaks::{MAX_TOKENS, Reported, Reporter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    caller::Caller,
    dto::rfc3339,
    error::{ApiError, ErrorBody},
};
use crate::{AppState, client::ClientContext};

pub const KEY_ID_HEADER: &str = "github-public-key-identifier";
pub const SIGNATURE_HEADER: &str = "github-public-key-signature";

/// One token found in a public place.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct LeakToken {
    /// The token as found.
    pub token: String,
    /// The partner's name for the kind of token, e.g. `keyport_api_key`.
    #[serde(rename = "type")]
    pub token_type: Option<String>,
    /// Where it was found.
    pub url: Option<String>,
    /// `content`, `commit`, `gist`, ...
    pub source: Option<String>,
}

/// The answer for one reported token.
#[derive(Serialize, ToSchema)]
pub struct LeakVerdict {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    pub token_type: String,
    /// `true_positive`: a key Keyport issued (revoked or disabled now); `false_positive`: not one.
    #[schema(example = "true_positive")]
    pub label: String,
}

/// Reports leaked tokens. Every live Keyport key among them is revoked (or disabled, by the
/// server's `--leak-policy`) at once, its owner alerted and mailed, and `key.leaked` sent to
/// webhooks. Authenticate with a partner signature of the raw body, or an admin's key.
#[utoipa::path(post, path = "/v1/leaks", tag = "leaks", request_body = Vec<LeakToken>,
    params(
        ("Github-Public-Key-Identifier" = Option<String>, Header, description = "The partner key that signed the body"),
        ("Github-Public-Key-Signature" = Option<String>, Header, description = "Base64 ECDSA P-256 (SHA-256, ASN.1 DER) signature of the raw body"),
    ),
    security(("bearer" = []), ()),
    responses((status = 200, body = Vec<LeakVerdict>), (status = 401, body = ErrorBody, description = "No valid signature or key"),
        (status = 403, body = ErrorBody, description = "A key that is not an admin's"),
        (status = 422, body = ErrorBody, description = "Not a list of tokens, or more than 1,000")))]
pub async fn report(
    State(state): State<AppState>,
    ClientContext(ctx): ClientContext,
    headers: HeaderMap,
    caller: Result<Caller, ApiError>,
    body: Bytes,
) -> Result<Json<Vec<LeakVerdict>>, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let reporter = match (header(KEY_ID_HEADER), header(SIGNATURE_HEADER)) {
        (Some(key_id), Some(signature)) => {
            if state.leak_keys.is_empty() {
                return Err(ApiError::unauthorized(
                    "This Keyport has no partner keys configured (--leak-report-keys).",
                ));
            }
            state
                .leak_keys
                .verify(key_id, signature, &body)
                .map_err(|e| ApiError::unauthorized(format!("The signature is refused: {e}.")))?;
            Reporter::Partner {
                key_id: key_id.to_owned(),
            }
        }
        _ => {
            let caller = caller?;
            caller.require_admin()?;
            Reporter::Admin {
                user_id: caller.actor.user_id.clone(),
            }
        }
    };
    let items: Vec<LeakToken> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(
            "body",
            format!("expected a JSON list of {{\"token\", \"type\", \"url\", \"source\"}}: {e}"),
        )
    })?;
    if items.len() > MAX_TOKENS {
        return Err(ApiError::invalid(
            "body",
            format!("a report holds at most {MAX_TOKENS} tokens"),
        ));
    }
    let items: Vec<Reported> = items
        .into_iter()
        .map(|t| Reported {
            token: t.token,
            token_type: t.token_type.unwrap_or_default(),
            url: t.url.unwrap_or_default(),
            source: t.source.unwrap_or_default(),
        })
        .collect();
    let verdicts = state
        .leaks
        .report(&reporter, &items, &ctx)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        verdicts
            .into_iter()
            .map(|v| LeakVerdict {
                token_hash: v.token_hash,
                token_type: v.token_type,
                label: v.label.to_owned(),
            })
            .collect(),
    ))
}

/// A reported token and what Keyport did.
#[derive(Serialize, ToSchema)]
pub struct LeakReportDto {
    pub id: i64,
    pub received_at: String,
    /// `partner:<key identifier>` or `admin:<user id>`.
    pub reporter: String,
    pub token_hash: String,
    pub token_type: String,
    pub url: String,
    pub source: String,
    pub label: String,
    pub key_id: Option<String>,
    /// `revoked`, `disabled`, `already revoked`, `already disabled` or `none`.
    pub action: String,
}

#[derive(Serialize, ToSchema)]
pub struct LeakReportList {
    pub total: u64,
    /// Newest first.
    pub reports: Vec<LeakReportDto>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeakListParams {
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
    /// 0 to 1,000,000.
    pub offset: Option<u64>,
}

/// The leak reports received, newest first (admins).
#[utoipa::path(get, path = "/v1/leaks", tag = "leaks", params(LeakListParams),
    responses((status = 200, body = LeakReportList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<LeakListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LeakReportList>, ApiError> {
    caller.require(domain::catalog::ADMIN_SCOPE)?;
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is 1 to 200"));
    }
    let offset = params.offset.unwrap_or(0);
    if offset > 1_000_000 {
        return Err(ApiError::invalid("offset", "offset is 0 to 1,000,000"));
    }
    let (reports, total) = state
        .leaks
        .list(limit, offset)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(LeakReportList {
        total,
        reports: reports
            .into_iter()
            .map(|r| LeakReportDto {
                id: r.id,
                received_at: rfc3339(r.received_at),
                reporter: r.reporter,
                token_hash: r.token_hash,
                token_type: r.token_type,
                url: r.url,
                source: r.source,
                label: r.label,
                key_id: r.key_id,
                action: r.action,
            })
            .collect(),
    }))
}
