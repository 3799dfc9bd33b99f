//! The management REST API under `/v1`: JSON in and out, authenticated by a key of the built-in
//! `keyport` API, documented by the OpenAPI 3.1 document at `/v1/openapi.json` (generated from
//! these handlers by utoipa). Authorization rules live in the domain services; this layer maps
//! wire types and errors.
pub mod alerts;
pub mod caller;
pub mod dto;
pub mod error;
pub mod hygiene;
pub mod leaks;
pub mod plans;
pub mod usage;
pub mod users;
pub mod verify;
pub mod webhooks;

use std::sync::OnceLock;

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use chrono::{DateTime, Utc};
use domain::{
    audit,
    catalog::{ApiPatch, NewApi, RateLimit},
    id::KeyId,
    keys::{Created, KeyPatch, KeyStatus, ListFilter, NewKey},
};
use serde::Deserialize;
use utoipa::{
    IntoParams, Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use self::{
    caller::Caller,
    dto::*,
    error::{ApiError, ApiJson, ApiPath, ErrorBody},
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/openapi.json", get(openapi_json))
        .route("/v1/me", get(me))
        .route("/v1/apis", get(list_apis).post(create_api))
        .route("/v1/apis/{slug}", get(get_api).patch(update_api))
        .route("/v1/keys/verify", post(verify::verify))
        .route("/v1/auth", axum::routing::any(verify::forward_auth))
        .route("/v1/auth/{*path}", axum::routing::any(verify::forward_auth))
        .route("/v1/keys", get(list_keys).post(create_key))
        .route("/v1/keys/{id}", get(get_key).patch(update_key))
        .route("/v1/keys/{id}/rotate", post(rotate_key))
        .route("/v1/keys/{id}/revoke", post(revoke_key))
        .route("/v1/keys/{id}/usage", get(usage::key_usage))
        .route("/v1/usage", get(usage::usage))
        .route("/v1/hygiene", get(hygiene::list))
        .route("/v1/hygiene/revoke", post(hygiene::revoke))
        .route("/v1/plans", get(plans::list).post(plans::create))
        .route("/v1/plans/{id}", get(plans::get).patch(plans::update))
        .route("/v1/plans/{id}/default", post(plans::make_default))
        .route("/v1/users", get(users::list))
        .route("/v1/users/invitations", post(users::invite))
        .route("/v1/users/{id}", get(users::get))
        .route("/v1/users/{id}/plan", put(plans::assign))
        .route("/v1/users/{id}/role", put(users::set_role))
        .route("/v1/users/{id}/disable", post(users::disable))
        .route("/v1/users/{id}/enable", post(users::enable))
        .route("/v1/users/{id}/unlock", post(users::unlock))
        .route("/v1/users/{id}/reset-2fa", post(users::reset_two_factor))
        .route("/v1/users/{id}/end-sessions", post(users::end_sessions))
        .route(
            "/v1/users/{id}/resend-verification",
            post(users::resend_verification),
        )
        .route("/v1/audit", get(list_audit))
        .route("/v1/outbox", get(list_outbox))
        .route("/v1/outbox/{id}/retry", post(retry_outbox))
        .route("/v1/leaks", get(leaks::list).post(leaks::report))
        .route("/v1/alerts", get(alerts::list))
        .route("/v1/alerts/{id}/acknowledge", post(alerts::acknowledge))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/v1/webhooks/{id}/test", post(webhooks::send_test))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            post(webhooks::redeliver),
        )
        .route("/v1/{*rest}", axum::routing::any(no_such_endpoint))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keyport management API",
        description = "Manage API keys, the API catalog and the audit log. Authenticate with `Authorization: Bearer <key>`, using a key of the built-in `keyport` API. Errors are `{\"error\": {\"code\", \"message\", \"fields\"?}}`.",
    ),
    paths(verify::verify, verify::forward_auth, me, list_apis, create_api, get_api, update_api, list_keys, create_key, get_key, update_key, rotate_key, revoke_key, usage::key_usage, usage::usage, list_audit, list_outbox, retry_outbox,
        webhooks::list, webhooks::create, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::rotate_secret, webhooks::send_test, webhooks::deliveries, webhooks::redeliver,
        leaks::report, leaks::list, alerts::list, alerts::acknowledge,
        hygiene::list, hygiene::revoke,
        plans::list, plans::create, plans::get, plans::update, plans::make_default, plans::assign,
        users::list, users::get, users::set_role, users::disable, users::enable, users::unlock,
        users::reset_two_factor, users::end_sessions, users::resend_verification, users::invite),
    modifiers(&BearerAuth, &CommonResponses),
    security(("bearer" = [])),
    tags(
        (name = "verification", description = "Is this key valid? For your API or its gateway"),
        (name = "keys", description = "Your API keys (admins: everyone's)"),
        (name = "catalog", description = "APIs that keys grant access to"),
        (name = "plans", description = "Default limits, key counts and lifetimes for groups of users (admins)"),
        (name = "users", description = "Accounts: find them, disable, promote, unlock, reset 2FA, end sessions (admins)"),
        (name = "usage", description = "Verifications over time, by outcome"),
        (name = "audit", description = "Who did what, when"),
        (name = "outbox", description = "Email waiting to go out, sent, or given up (admins)"),
        (name = "webhooks", description = "Signed event deliveries to your endpoints (Standard Webhooks)"),
        (name = "alerts", description = "Anomalies and leaks noticed on your keys"),
        (name = "leaks", description = "Leaked tokens reported by secret-scanning partners or admins; live keys are revoked at once"),
        (name = "account", description = "The caller"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("kp_ key of the keyport API")
                    .build(),
            ),
        );
    }
}

/// Answers every management operation can give, documented once: 400 for a request that cannot
/// be read (a body that is not JSON, a query string of the wrong types) and 429 when the caller's
/// own key is over its rate limit or quota (management calls are verified like any key).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            ContentBuilder, HeaderBuilder, Ref, ResponseBuilder, Type, schema::ObjectBuilder,
        };
        let error = |description: &str| {
            ResponseBuilder::new().description(description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
        };
        let unreadable = error("The request cannot be read: a body that is not JSON of this shape, or a query string of the wrong types").build();
        let limited = error("The caller's key is over its rate limit or quota")
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::Integer))
                    .description(Some("Seconds until a retry can succeed"))
                    .build(),
            )
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path == "/v1/keys/verify" || path == "/v1/auth" {
                continue;
            }
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut operation.responses.responses;
                responses
                    .entry("400".into())
                    .or_insert_with(|| unreadable.clone().into());
                responses
                    .entry("429".into())
                    .or_insert_with(|| limited.clone().into());
            }
        }
    }
}

async fn no_such_endpoint() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such endpoint; see /v1/openapi.json.",
    )
}

async fn openapi_json() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], doc.clone()).into_response()
}

/// The caller: the owner of the key in `Authorization`.
#[utoipa::path(get, path = "/v1/me", tag = "account",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Me>, ApiError> {
    let user = state
        .accounts
        .find(&caller.actor.user_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::unauthorized("This key's owner no longer exists."))?;
    let plan = state.keys.catalog().plan_for_user(&user.id).await?;
    Ok(Json(Me {
        id: user.id,
        email: user.email,
        role: user.role.as_str().to_owned(),
        plan: plans::PlanDto::from(&plan),
    }))
}

/// Every API and its scopes and versions (what a key can be granted).
#[utoipa::path(get, path = "/v1/apis", tag = "catalog",
    responses((status = 200, body = ApiList), (status = 401, body = ErrorBody)))]
async fn list_apis(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<ApiList>, ApiError> {
    let apis = state.keys.catalog().list_apis().await?;
    Ok(Json(ApiList {
        apis: apis.iter().map(ApiDto::from).collect(),
    }))
}

/// Registers an API (admin).
#[utoipa::path(post, path = "/v1/apis", tag = "catalog", request_body = CreateApi,
    responses((status = 201, body = ApiDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The slug is taken"), (status = 422, body = ErrorBody)))]
async fn create_api(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateApi>,
) -> Result<(StatusCode, Json<ApiDto>), ApiError> {
    caller.require_admin()?;
    let api = state
        .keys
        .catalog()
        .create_api(
            &caller.actor,
            NewApi {
                slug: body.slug.trim().to_owned(),
                name: body.name,
                description: body.description,
                scopes: scopes_in(body.scopes),
                versions: versions_in(body.versions)?,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(ApiDto::from(&api))))
}

/// One API by slug.
#[utoipa::path(get, path = "/v1/apis/{slug}", tag = "catalog", params(("slug" = String, Path)),
    responses((status = 200, body = ApiDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_api(
    State(state): State<AppState>,
    _caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<ApiDto>, ApiError> {
    let api = state
        .keys
        .catalog()
        .api_by_slug(&slug)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(ApiDto::from(&api)))
}

/// Changes an API (admin). `scopes` and `versions` replace the lists.
#[utoipa::path(patch, path = "/v1/apis/{slug}", tag = "catalog", params(("slug" = String, Path)), request_body = UpdateApi,
    responses((status = 200, body = ApiDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "A removed scope is still held by keys"), (status = 422, body = ErrorBody)))]
async fn update_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<UpdateApi>,
) -> Result<Json<ApiDto>, ApiError> {
    caller.require_admin()?;
    let patch = ApiPatch {
        name: body.name,
        description: body.description,
        scopes: body.scopes.map(scopes_in),
        versions: body.versions.map(versions_in).transpose()?,
    };
    let api = state
        .keys
        .catalog()
        .update_api(&caller.actor, &slug, patch)
        .await?;
    Ok(Json(ApiDto::from(&api)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct KeyListParams {
    /// 1 to 100, default 50.
    limit: Option<u64>,
    /// From `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Admins: only this user's keys.
    owner_id: Option<String>,
    /// Only keys of this API (slug).
    api: Option<String>,
    /// Only keys in this status.
    status: Option<String>,
}

/// Your keys, newest first (admins: everyone's, or `?owner_id=`).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(KeyListParams),
    responses((status = 200, body = KeyList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<KeyListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<KeyList>, ApiError> {
    caller.require("keys:read")?;
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is 1 to 100"));
    }
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(KeyStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "status",
                "status is one of active, expiring_soon, expired, rotating, revoked, disabled",
            )
        })?),
    };
    let filter = ListFilter {
        owner_id: params.owner_id,
        api: params.api,
        status,
        ..Default::default()
    };
    let page = state
        .keys
        .list(&caller.actor, &filter, params.cursor.as_deref(), 0, limit)
        .await?;
    Ok(Json(KeyList {
        keys: page.keys.iter().map(KeyDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn created(c: Created) -> Response {
    let body = NewKeyResponse {
        key: KeyDto::from(&c.key),
        plaintext: c.plaintext.expose().to_owned(),
        replaces: c.key.replaces.clone(),
    };
    (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}

/// Creates a key. The answer holds the plaintext `key`, this once.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = NewKeyResponse), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Missing keys:write, or an admin-only field"),
        (status = 409, body = ErrorBody, description = "The plan's active key limit is reached"),
        (status = 422, body = ErrorBody, description = "Invalid input, or limits above the plan's")))]
async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<Response, ApiError> {
    caller.require("keys:write")?;
    let new = NewKey {
        name: body.name,
        api: body.api,
        scopes: body.scopes,
        expires_at: body.expires_at,
        ip_allowlist: body.ip_allowlist,
        rate_limit: body.ratelimit.map(|r| RateLimit {
            limit: r.limit,
            period_s: r.period_s,
        }),
        quota: body.quota.map(quota_in).transpose()?,
        owner_id: body.owner_id,
    };
    Ok(created(state.keys.create(&caller.actor, new).await?))
}

/// One key.
#[utoipa::path(get, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 200, body = KeyDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown, or another user's key")))]
async fn get_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<KeyId>,
) -> Result<Json<KeyDto>, ApiError> {
    caller.require("keys:read")?;
    let key = state.keys.get(&caller.actor, &id).await?;
    Ok(Json(KeyDto::from(&key)))
}

/// Changes a key's name, scopes, expiry, IP allowlist or enabled flag. Other fields are refused.
#[utoipa::path(patch, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)), request_body = UpdateKey,
    responses((status = 200, body = KeyDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The key is revoked"), (status = 422, body = ErrorBody)))]
async fn update_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<KeyId>,
    ApiJson(body): ApiJson<UpdateKey>,
) -> Result<Json<KeyDto>, ApiError> {
    caller.require("keys:write")?;
    let patch = KeyPatch {
        name: body.name,
        scopes: body.scopes,
        expires_at: body.expires_at,
        ip_allowlist: body.ip_allowlist,
        enabled: body.enabled,
    };
    let key = state.keys.update(&caller.actor, &id, patch).await?;
    Ok(Json(KeyDto::from(&key)))
}

/// Replaces a key with a new one of the same settings. The old key keeps working for
/// `grace_period_s`, then answers expired.
#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "keys", params(("id" = String, Path)), request_body = RotateKey,
    responses((status = 201, body = NewKeyResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Revoked, expired or already rotated"), (status = 422, body = ErrorBody)))]
async fn rotate_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<KeyId>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require("keys:write")?;
    let grace = error::optional_json::<RotateKey>(&body)?.grace_period_s;
    Ok(created(state.keys.rotate(&caller.actor, &id, grace).await?))
}

/// Revokes a key at once, for good.
#[utoipa::path(post, path = "/v1/keys/{id}/revoke", tag = "keys", params(("id" = String, Path)), request_body = RevokeKey,
    responses((status = 200, body = KeyDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Already revoked"),
        (status = 422, body = ErrorBody, description = "A body of the wrong shape")))]
async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<KeyId>,
    body: axum::body::Bytes,
) -> Result<Json<KeyDto>, ApiError> {
    caller.require("keys:write")?;
    let reason = error::optional_json::<RevokeKey>(&body)?.reason;
    let key = state
        .keys
        .revoke(&caller.actor, &id, reason.as_deref())
        .await?;
    Ok(Json(KeyDto::from(&key)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OutboxParams {
    /// `pending`, `sent` or `failed`; every message when absent.
    status: Option<String>,
    /// 1 to 200, default 50.
    limit: Option<u64>,
    /// Messages to skip (newest first), 0 to 1,000,000, default 0.
    offset: Option<u64>,
}

/// The email outbox (admins): how many messages wait, gave up and went out, and a page of them,
/// newest first. Never a message's content.
#[utoipa::path(get, path = "/v1/outbox", tag = "outbox", params(OutboxParams),
    responses((status = 200, body = OutboxList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_outbox(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<OutboxParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<OutboxList>, ApiError> {
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
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some(s @ ("pending" | "sent" | "failed")) => Some(s),
        Some(_) => {
            return Err(ApiError::invalid(
                "status",
                "status is pending, sent or failed",
            ));
        }
    };
    let Some(outbox) = &state.outbox else {
        return Ok(Json(OutboxList {
            email_enabled: false,
            pending: 0,
            failed: 0,
            sent: 0,
            total: 0,
            messages: Vec::new(),
        }));
    };
    let summary = outbox.summary().await.map_err(ApiError::internal)?;
    let (messages, total) = outbox
        .list(status, limit, offset)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(OutboxList {
        email_enabled: true,
        pending: summary.pending,
        failed: summary.failed,
        sent: summary.sent,
        total,
        messages: messages.into_iter().map(OutboxMessageDto::from).collect(),
    }))
}

/// Queues a message that waits or gave up for an attempt now (admins).
#[utoipa::path(post, path = "/v1/outbox/{id}/retry", tag = "outbox", params(("id" = i64, Path)),
    responses((status = 204, description = "Queued for an attempt now"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "Unknown, or sent already")))]
async fn retry_outbox(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require(domain::catalog::ADMIN_SCOPE)?;
    let Some(outbox) = &state.outbox else {
        return Err(ApiError::not_found());
    };
    if !outbox
        .retry_now(id, Utc::now())
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::not_found());
    }
    audit::record(
        state.db.conn(),
        &caller.actor.ctx,
        Some(&caller.actor.user_id),
        "outbox.retry",
        Some(&id.to_string()),
        serde_json::json!({}),
    )
    .await
    .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// 1 to 200, default 50.
    limit: Option<u64>,
    cursor: Option<String>,
    actor_id: Option<String>,
    /// An action (`key.revoke`) or a family ending with a dot (`key.`).
    action: Option<String>,
    target: Option<String>,
    /// RFC 3339, inclusive.
    from: Option<DateTime<Utc>>,
    /// RFC 3339, exclusive.
    to: Option<DateTime<Utc>>,
}

/// The audit log, newest first: your own events (admins: everyone's).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditList>, ApiError> {
    caller.require("audit:read")?;
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is 1 to 200"));
    }
    let before =
        match params.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(c.parse::<i64>().map_err(|_| {
                ApiError::invalid("cursor", "use the next_cursor of a previous page")
            })?),
        };
    let filter = audit::Filter {
        involving: (!caller.actor.is_admin).then(|| caller.actor.user_id.clone()),
        actor_id: params.actor_id,
        action: params.action,
        target: params.target,
        from: params.from,
        to: params.to,
    };
    let (entries, next) = audit::search(&state.db, &filter, before, limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(AuditList {
        events: entries
            .into_iter()
            .map(|e| AuditEventDto {
                id: e.id.to_string(),
                at: rfc3339(e.event.at),
                actor_id: e.event.actor_id,
                action: e.event.action,
                target: e.event.target,
                ip: e.event.ip,
                details: serde_json::from_str(&e.event.details).unwrap_or_default(),
            })
            .collect(),
        next_cursor: next.map(|n| n.to_string()),
    }))
}
