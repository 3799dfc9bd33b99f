//! `/v1/webhooks`: a caller's webhook endpoints (admins: also platform-wide ones), their
//! delivery log, test events and redelivery. The rules (who may see what, URL checks) live in
//! `domain::webhooks`; this maps the wire.
use axum::{
    Json,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use domain::{
    id::WebhookId,
    webhooks::{Delivery, Endpoint, EndpointPatch, NewEndpoint, WithSecret},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    caller::Caller,
    dto::rfc3339,
    error::{ApiError, ApiJson, ApiPath, ErrorBody},
};
use crate::AppState;

/// A webhook endpoint. Never carries its signing secret (only the answers that create or
/// rotate it do).
#[derive(Serialize, ToSchema)]
pub struct WebhookDto {
    #[schema(example = "whe_8Hq2LmZ0aB3cD4eF5gH6")]
    pub id: String,
    pub owner_id: String,
    /// Receives every user's events (admins' endpoints only).
    pub platform: bool,
    #[schema(example = "https://hooks.example.com/keyport")]
    pub url: String,
    pub description: String,
    /// The event types it receives; empty: every event.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why Keyport disabled it (a day of failed deliveries).
    pub disabled_reason: Option<String>,
    /// The first failed delivery since the last successful one.
    pub failing_since: Option<String>,
    /// While the previous signing secret still signs too (after a rotation), until when.
    pub previous_secret_valid_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Endpoint> for WebhookDto {
    fn from(e: &Endpoint) -> WebhookDto {
        WebhookDto {
            id: e.id.clone(),
            owner_id: e.owner_id.clone(),
            platform: e.platform,
            url: e.url.clone(),
            description: e.description.clone(),
            events: e.events.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since.map(rfc3339),
            previous_secret_valid_until: e.previous_secret_until.map(rfc3339),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookDto,
    /// `whsec_...`: verify deliveries with it (Standard Webhooks). Keyport shows it only now.
    pub secret: String,
}

fn with_secret(status: StatusCode, w: WithSecret) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(WebhookWithSecret {
            endpoint: WebhookDto::from(&w.endpoint),
            secret: w.secret.expose().to_owned(),
        }),
    )
        .into_response()
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookDto>,
    /// Every event type an endpoint can ask for.
    pub event_types: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `https://` (or `http://`) URL on a public address.
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// Event types to receive; empty or absent: every event.
    #[serde(default)]
    pub events: Vec<String>,
    /// Every user's events (admins only).
    #[serde(default)]
    pub platform: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    /// Enabling again clears the failure streak.
    pub enabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct AttemptDto {
    pub attempt: i32,
    pub at: String,
    /// The receiver's status code; `null` when there was no answer (see `error`).
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    /// The start of the receiver's answer (1 KiB at most).
    pub response_body: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryDto {
    pub id: i64,
    /// The `webhook-id` header: the same on every attempt.
    pub message_id: String,
    pub event: String,
    /// `pending` (waiting for its next attempt), `sent` or `failed` (gave up).
    pub status: String,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    /// Newest first.
    pub attempts: Vec<AttemptDto>,
}

impl From<Delivery> for DeliveryDto {
    fn from(d: Delivery) -> DeliveryDto {
        DeliveryDto {
            id: d.id,
            message_id: d.msg_id,
            event: d.event,
            status: d.status,
            next_attempt_at: d.next_attempt_at.map(rfc3339),
            last_error: d.last_error,
            created_at: rfc3339(d.created_at),
            attempts: d
                .attempts
                .into_iter()
                .map(|a| AttemptDto {
                    attempt: a.attempt,
                    at: rfc3339(a.at),
                    status_code: a.status_code,
                    latency_ms: a.latency_ms,
                    error: a.error,
                    response_body: a.response_body,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub total: u64,
    pub deliveries: Vec<DeliveryDto>,
}

#[derive(Serialize, ToSchema)]
pub struct Queued {
    /// The delivery, as the delivery log lists it.
    pub delivery_id: i64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookListParams {
    /// Admins: every user's endpoints.
    pub all: Option<bool>,
}

/// Your webhook endpoints, newest first (admins: `?all=true` for everyone's).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(WebhookListParams),
    responses((status = 200, body = WebhookList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Missing webhooks:read, or `all` without being an admin"),
        (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<WebhookListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<WebhookList>, ApiError> {
    caller.require("webhooks:read")?;
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let all = params.all.unwrap_or(false);
    if all {
        caller.require_admin()?;
    }
    let endpoints = state.webhooks.list(&caller.actor, all).await?;
    Ok(Json(WebhookList {
        webhooks: endpoints.iter().map(WebhookDto::from).collect(),
        event_types: domain::webhooks::EVENTS.map(str::to_owned).to_vec(),
    }))
}

/// Registers an endpoint. The answer holds its signing `secret`, this once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookWithSecret), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Missing webhooks:write, or `platform` without being an admin"),
        (status = 409, body = ErrorBody, description = "The account has the most endpoints allowed"),
        (status = 422, body = ErrorBody, description = "A URL that is not public http(s), or an unknown event")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<Response, ApiError> {
    caller.require("webhooks:write")?;
    let created = state
        .webhooks
        .create(
            &caller.actor,
            NewEndpoint {
                url: body.url,
                description: body.description,
                events: body.events,
                platform: body.platform,
            },
        )
        .await?;
    Ok(with_secret(StatusCode::CREATED, created))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown, or another user's endpoint")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<Json<WebhookDto>, ApiError> {
    caller.require("webhooks:read")?;
    let endpoint = state.webhooks.get(&caller.actor, &id).await?;
    Ok(Json(WebhookDto::from(&endpoint)))
}

/// Changes an endpoint's URL, description, events or enabled flag.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)), request_body = UpdateWebhook,
    responses((status = 200, body = WebhookDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<WebhookId>,
    ApiJson(body): ApiJson<UpdateWebhook>,
) -> Result<Json<WebhookDto>, ApiError> {
    caller.require("webhooks:write")?;
    let patch = EndpointPatch {
        url: body.url,
        description: body.description,
        events: body.events,
        enabled: body.enabled,
    };
    let endpoint = state.webhooks.update(&caller.actor, &id, patch).await?;
    Ok(Json(WebhookDto::from(&endpoint)))
}

/// Deletes an endpoint; its deliveries still waiting are given up.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<StatusCode, ApiError> {
    caller.require("webhooks:write")?;
    state.webhooks.delete(&caller.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret, shown this once. The previous one keeps signing (both signatures are
/// sent) for 24 hours, so receivers can switch without losing a delivery.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookWithSecret), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<Response, ApiError> {
    caller.require("webhooks:write")?;
    let rotated = state.webhooks.rotate_secret(&caller.actor, &id).await?;
    Ok(with_secret(StatusCode::OK, rotated))
}

/// Queues a `webhook.test` event to this endpoint (whatever its event filter).
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 202, body = Queued), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The endpoint is disabled")))]
pub async fn send_test(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<WebhookId>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    caller.require("webhooks:write")?;
    let delivery_id = state.webhooks.send_test(&caller.actor, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { delivery_id })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// 1 to 100, default 20.
    pub limit: Option<u64>,
    /// Deliveries to skip (newest first), 0 to 1,000,000.
    pub offset: Option<u64>,
}

/// An endpoint's deliveries, newest first, each with its attempts.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path), DeliveryParams),
    responses((status = 200, body = DeliveryList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<WebhookId>,
    params: Result<Query<DeliveryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeliveryList>, ApiError> {
    caller.require("webhooks:read")?;
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is 1 to 100"));
    }
    let offset = params.offset.unwrap_or(0);
    if offset > 1_000_000 {
        return Err(ApiError::invalid("offset", "offset is 0 to 1,000,000"));
    }
    let (deliveries, total) = state
        .webhooks
        .deliveries(&caller.actor, &id, limit, offset)
        .await?;
    Ok(Json(DeliveryList {
        total,
        deliveries: deliveries.into_iter().map(DeliveryDto::from).collect(),
    }))
}

/// Sends a delivery again now, with the same `webhook-id`.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    params(("id" = String, Path), ("delivery_id" = i64, Path)),
    responses((status = 202, body = Queued), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The endpoint is disabled")))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, delivery_id)): axum::extract::Path<(String, String)>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    caller.require("webhooks:write")?;
    let id = WebhookId::parse(&id).map_err(|_| ApiError::not_found())?;
    let delivery_id: i64 = delivery_id.parse().map_err(|_| ApiError::not_found())?;
    state
        .webhooks
        .redeliver(&caller.actor, &id, delivery_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { delivery_id })))
}
