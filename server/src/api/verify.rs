//! The hot path: `POST /v1/keys/verify` (JSON) and `/v1/auth` (forward authentication for nginx
//! `auth_request`, Traefik ForwardAuth and Envoy ext_authz). Both ask the in-memory verifier;
//! the outcome code maps to HTTP in exactly one place, [`auth_status`].
use std::net::IpAddr;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use domain::{
    catalog::{KEYPORT_API, VERIFY_SCOPE},
    verification::{Code, Outcome, Request},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{dto::rfc3339, error::ApiError};
use crate::{
    AppState,
    client::{ClientIp, Peer},
};

/// Largest verify body accepted.
pub const MAX_VERIFY_BODY: usize = 16 * 1024;
/// Largest cost one verification may charge.
pub const MAX_COST: u32 = 1_000_000;

/// Why a caller of the verification endpoints was refused (with `--verify-requires-token`).
enum CallerRefused {
    /// 401 with this code.
    Unauthorized(&'static str),
    /// 429: the caller's own key is over its limits.
    Limited(Option<std::time::Duration>),
    /// 503: the caller's own key has limits that cannot be checked now.
    Unavailable,
}

/// With `--verify-requires-token`, only a caller presenting a key of the `keyport` API with the
/// `verify` scope may verify: in `X-Keyport-Token` (forward auth, so the client's own
/// `Authorization` passes through), or as `Authorization: Bearer` on the JSON endpoint. The
/// caller key's own allowlist is checked against the TCP peer (the gateway), and its use is
/// counted like any key's.
async fn check_caller(
    state: &AppState,
    token: Option<&str>,
    peer: IpAddr,
) -> Result<(), CallerRefused> {
    if !state.verify_requires_token {
        return Ok(());
    }
    let Some(token) = token else {
        return Err(CallerRefused::Unauthorized("MISSING_TOKEN"));
    };
    let outcome = state
        .verifier
        .verify(
            &Request {
                key: token,
                api: Some(KEYPORT_API),
                scopes: &[VERIFY_SCOPE.to_owned()],
                ip: Some(peer),
                version: None,
                cost: 1,
            },
            Utc::now(),
        )
        .await;
    if outcome.limits_unavailable {
        return Err(CallerRefused::Unavailable);
    }
    match outcome.code {
        Code::Valid => Ok(()),
        Code::RateLimited | Code::QuotaExceeded => Err(CallerRefused::Limited(outcome.retry_after)),
        _ => Err(CallerRefused::Unauthorized("INVALID_TOKEN")),
    }
}

/// The caller's own key for `--verify-requires-token`: `X-Keyport-Token`, or (on the JSON
/// endpoint, `bearer_allowed`) `Authorization: Bearer`.
fn caller_token(headers: &HeaderMap, bearer_allowed: bool) -> Option<&str> {
    header_text(headers, "x-keyport-token").or_else(|| {
        bearer_allowed
            .then(|| header_text(headers, "authorization"))
            .flatten()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
    })
}

/// [`caller_token`] of the JSON endpoint, taken from the request's headers where they are
/// (copying the header map for a handler is measurable on the hot path), and only when
/// `--verify-requires-token` asks for it.
pub struct CallerToken(Option<String>);

impl axum::extract::FromRequestParts<AppState> for CallerToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(CallerToken(
            state
                .verify_requires_token
                .then(|| caller_token(&parts.headers, true).map(str::to_owned))
                .flatten(),
        ))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    #[schema(example = "kp_00000000000000000000000000000000000000002kaqcA")]
    pub key: String,
    /// The key must belong to this API (slug); otherwise `NOT_FOUND`.
    pub api: Option<String>,
    /// All must be granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The original caller's address, checked against the key's allowlist.
    #[schema(example = "203.0.113.7")]
    pub ip: Option<String>,
    /// The API version being called.
    pub version: Option<String>,
    /// Quota units (default 1).
    #[schema(minimum = 1, maximum = 1000000)]
    pub cost: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct RateLimitState {
    pub limit: u32,
    pub remaining: u32,
    pub reset_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct QuotaState {
    pub limit: u64,
    pub remaining: u64,
    pub period: String,
    pub reset_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeprecationState {
    pub version: String,
    pub sunset_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyResponse {
    pub valid: bool,
    /// `MALFORMED`, `NOT_FOUND`, `DISABLED`, `REVOKED`, `EXPIRED`, `IP_NOT_ALLOWED`,
    /// `INSUFFICIENT_SCOPE`, `VERSION_RETIRED`, `RATE_LIMITED`, `QUOTA_EXCEEDED` or `VALID`.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Option<String>>,
    pub ratelimit: Option<RateLimitState>,
    pub quota: Option<QuotaState>,
    pub deprecation: Option<DeprecationState>,
}

impl From<&Outcome> for VerifyResponse {
    fn from(o: &Outcome) -> VerifyResponse {
        let key = o.key.as_ref();
        VerifyResponse {
            valid: o.valid(),
            code: o.code.as_str(),
            key_id: key.map(|k| k.id.to_string()),
            owner_id: key.map(|k| k.owner_id.to_string()),
            api: key.map(|k| k.api.to_string()),
            scopes: key.map(|k| k.scopes.to_vec()),
            expires_at: key.map(|k| k.expires_at.map(rfc3339)),
            ratelimit: o.ratelimit.as_ref().map(|r| RateLimitState {
                limit: r.limit,
                remaining: r.remaining,
                reset_at: rfc3339(r.reset_at),
            }),
            quota: o.quota.as_ref().map(|q| QuotaState {
                limit: q.limit,
                remaining: q.remaining,
                period: q.period.as_str().to_owned(),
                reset_at: rfc3339(q.reset_at),
            }),
            deprecation: o.deprecation.as_ref().map(|d| DeprecationState {
                version: d.version.clone(),
                sunset_at: d.sunset_at.map(rfc3339),
            }),
        }
    }
}

/// Verifies a key. HTTP 200 whenever the request is well formed; `code` says why a key is not
/// valid. Checks run in the order of the codes, and a request that fails an earlier check uses
/// no rate limit or quota.
#[utoipa::path(post, path = "/v1/keys/verify", tag = "verification", request_body = VerifyRequest, security(()),
    responses((status = 200, body = VerifyResponse), (status = 400, body = super::error::ErrorBody, description = "Not JSON, or no key"),
        (status = 401, body = super::error::ErrorBody, description = "Only with --verify-requires-token: no caller key with the verify scope"),
        (status = 413, body = super::error::ErrorBody, description = "Body over 16 KiB"), (status = 422, body = super::error::ErrorBody),
        (status = 429, body = super::error::ErrorBody, description = "Only with --verify-requires-token: the caller key is over its limits"),
        (status = 503, body = super::error::ErrorBody, description = "Only with --redis-failure closed: the key has limits and Redis is unavailable")))]
pub async fn verify(
    State(state): State<AppState>,
    Peer(peer): Peer,
    CallerToken(token): CallerToken,
    body: Bytes,
) -> Result<Json<VerifyResponse>, ApiError> {
    if let Err(refused) = check_caller(&state, token.as_deref(), peer).await {
        return Err(match refused {
            CallerRefused::Limited(wait) => ApiError::too_many_requests(
                "The verification token is over its rate limit or quota.",
                wait,
            ),
            CallerRefused::Unavailable => ApiError::limits_unavailable(),
            CallerRefused::Unauthorized(code) => ApiError::unauthorized(format!(
                "Verification requires a Keyport key with the verify scope in X-Keyport-Token or Authorization: Bearer ({code})."
            )),
        });
    }
    if body.len() > MAX_VERIFY_BODY {
        return Err(too_large());
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{')
        && serde_json::from_slice::<serde_json::Value>(&body).is_ok()
    {
        return Err(ApiError::invalid("body", "the body must be a JSON object"));
    }
    let req: VerifyRequest = serde_json::from_slice(&body).map_err(|e| {
        if e.is_data() && !e.to_string().contains("missing field `key`") {
            ApiError::invalid("body", e.to_string())
        } else {
            ApiError::bad_request(format!("Send a JSON body with at least \"key\": {e}"))
        }
    })?;
    let cost = match req.cost {
        None => 1,
        Some(cost @ 1..=MAX_COST) => cost,
        Some(other) => {
            return Err(ApiError::invalid(
                "cost",
                format!("{other} is not a cost from 1 to {MAX_COST}"),
            ));
        }
    };
    let ip = match req.ip.as_deref() {
        None | Some("") => None,
        Some(text) => Some(text.trim().parse::<IpAddr>().map_err(|_| {
            ApiError::invalid("ip", format!("{text:?} is not an IPv4 or IPv6 address"))
        })?),
    };
    let started = std::time::Instant::now();
    let outcome = state
        .verifier
        .verify(
            &Request {
                key: &req.key,
                api: req.api.as_deref(),
                scopes: &req.scopes,
                ip,
                version: req.version.as_deref(),
                cost,
            },
            Utc::now(),
        )
        .await;
    crate::metrics::verified("verify", outcome.code, started);
    if outcome.limits_unavailable {
        return Err(ApiError::limits_unavailable());
    }
    Ok(Json(VerifyResponse::from(&outcome)))
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "A verify request is at most 16 KiB.",
    )
}

/// The HTTP status for a forward-auth outcome: the one place codes become statuses.
pub fn auth_status(code: Code) -> StatusCode {
    match code {
        Code::Valid => StatusCode::OK,
        Code::Malformed | Code::NotFound | Code::Disabled | Code::Revoked | Code::Expired => {
            StatusCode::UNAUTHORIZED
        }
        Code::IpNotAllowed | Code::InsufficientScope | Code::VersionRetired => {
            StatusCode::FORBIDDEN
        }
        Code::RateLimited | Code::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Forward authentication. The key comes from `Authorization: Bearer` or `X-API-Key`; the API,
/// scopes and version from `X-Keyport-Api`, `X-Keyport-Scopes` (comma separated) and
/// `X-Keyport-Version`. 200 lets the request through; 401, 403 and 429 refuse it, with
/// `X-Keyport-Code` saying why. Without `X-Keyport-Api` (and no `--auth-default-api`) the
/// answer is 401 `MISSING_API`. With `--verify-requires-token` the gateway sends its own key
/// (scope `verify`) in `X-Keyport-Token`; without a valid one the answer is 401
/// `MISSING_TOKEN` / `INVALID_TOKEN`.
#[utoipa::path(get, path = "/v1/auth", tag = "verification", security(()),
    responses((status = 200, description = "Valid: X-Keyport-Key-Id, X-Keyport-Owner-Id, RateLimit-* headers"),
        (status = 401, description = "Missing, malformed, unknown, disabled, revoked or expired key; no X-Keyport-Api header (MISSING_API); or, with --verify-requires-token, no valid X-Keyport-Token (MISSING_TOKEN, INVALID_TOKEN)"),
        (status = 403, description = "IP not allowed, insufficient scope, or a retired version"),
        (status = 429, description = "Rate limited or over quota; Retry-After says when to retry"),
        (status = 503, description = "Only with --redis-failure closed: the key has limits and Redis is unavailable (LIMITS_UNAVAILABLE)")))]
pub async fn forward_auth(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Peer(peer): Peer,
    request: axum::extract::Request,
) -> Response {
    // The headers where they are, not a copy.
    let headers = request.headers();
    match check_caller(&state, caller_token(headers, false), peer).await {
        Ok(()) => {}
        Err(CallerRefused::Unauthorized(code)) => {
            return refuse(StatusCode::UNAUTHORIZED, code, None);
        }
        Err(CallerRefused::Limited(wait)) => {
            return refuse(StatusCode::TOO_MANY_REQUESTS, "TOKEN_LIMITED", wait);
        }
        Err(CallerRefused::Unavailable) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "LIMITS_UNAVAILABLE",
                Some(std::time::Duration::from_secs(1)),
            );
        }
    }
    let key = header_text(headers, "authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or_else(|| header_text(headers, "x-api-key"));
    let Some(key) = key else {
        return refuse(StatusCode::UNAUTHORIZED, "MISSING_KEY", None);
    };
    // Fail closed: a gateway route that forgot to name its API must not accept every API's keys.
    let Some(api) = header_text(headers, "x-keyport-api").or(state.auth_default_api.as_deref())
    else {
        return refuse(StatusCode::UNAUTHORIZED, "MISSING_API", None);
    };
    let scopes: Vec<String> = header_text(headers, "x-keyport-scopes")
        .map(|s| {
            s.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let started = std::time::Instant::now();
    let outcome = state
        .verifier
        .verify(
            &Request {
                key,
                api: Some(api),
                scopes: &scopes,
                ip: Some(ip),
                version: header_text(headers, "x-keyport-version"),
                cost: 1,
            },
            Utc::now(),
        )
        .await;
    crate::metrics::verified("auth", outcome.code, started);
    if outcome.limits_unavailable {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "LIMITS_UNAVAILABLE",
            outcome.retry_after,
        );
    }
    let status = auth_status(outcome.code);
    let mut response = if status == StatusCode::OK {
        let mut r = StatusCode::OK.into_response();
        if let Some(k) = &outcome.key {
            set(&mut r, "x-keyport-key-id", &k.id);
            set(&mut r, "x-keyport-owner-id", &k.owner_id);
        }
        r
    } else {
        refuse(status, outcome.code.as_str(), outcome.retry_after)
    };
    if let Some(rl) = &outcome.ratelimit {
        let reset = (rl.reset_at - Utc::now()).num_seconds().max(0);
        set(&mut response, "ratelimit-limit", &rl.limit.to_string());
        set(
            &mut response,
            "ratelimit-remaining",
            &rl.remaining.to_string(),
        );
        set(&mut response, "ratelimit-reset", &reset.to_string());
    }
    if let Some(d) = &outcome.deprecation {
        set(&mut response, "deprecation", "true");
        if let Some(sunset) = d.sunset_at {
            set(&mut response, "sunset", &sunset.to_rfc2822());
        }
    }
    response
}

fn refuse(status: StatusCode, code: &str, retry_after: Option<std::time::Duration>) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!(
            r#"{{"error":{{"code":"{}","message":"The API key was refused: {}."}}}}"#,
            code, code
        ),
    )
        .into_response();
    set(&mut r, "x-keyport-code", code);
    if status == StatusCode::UNAUTHORIZED {
        set(&mut r, "www-authenticate", "Bearer realm=\"keyport\"");
    }
    if let Some(wait) = retry_after {
        // Whole seconds, rounded up: never tell a client to come back too early.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        set(&mut r, "retry-after", &secs.max(1).to_string());
    }
    r
}

fn set(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(HeaderName::from_static(name), v);
    }
}
