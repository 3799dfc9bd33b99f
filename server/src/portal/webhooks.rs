//! The webhooks pages (`/webhooks`, `/webhooks/{id}`) and their forms: add an endpoint (its
//! secret shown once), test, enable or disable, rotate the secret, edit, delete, redeliver.
use app::session::{AttemptRow, DeliveryRow, PageData, WebhookRow};
use axum::{
    body::Bytes,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use domain::{
    accounts::{Role, User},
    id::WebhookId,
    webhooks::{Delivery, Endpoint, EndpointPatch, NewEndpoint, WithSecret},
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::forms::{Fields, actor, page_actor, service_flash};
use crate::{
    AppState,
    client::ClientContext,
    web::{
        FlashData, flash_and_redirect, insert_sealed, internal, signed_in_user, take_sealed,
        utc_minutes,
    },
};

/// Deliveries per page of an endpoint's log.
const DELIVERIES_PER_PAGE: u64 = 20;
/// Session key of a signing secret waiting for its one-time display.
const NEW_SECRET_KEY: &str = "new_webhook_secret";

#[derive(Serialize, Deserialize)]
struct NewSecretDisplay {
    endpoint_id: String,
    secret: String,
}

/// `?show=all` (admins) on `/webhooks`; `?page=` on `/webhooks/{id}`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct WebhooksQuery {
    pub show: String,
    pub page: String,
}

async fn row(state: &AppState, e: &Endpoint, with_owner: bool) -> anyhow::Result<WebhookRow> {
    let owner_email = if with_owner {
        state
            .accounts
            .find(&e.owner_id)
            .await?
            .map(|u| u.email)
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(WebhookRow {
        id: e.id.clone(),
        url: e.url.clone(),
        description: e.description.clone(),
        events: e.events.clone(),
        enabled: e.enabled,
        platform: e.platform,
        owner_email,
        disabled_reason: e.disabled_reason.clone(),
        failing_since: e.failing_since.map(utc_minutes),
        previous_secret_until: e.previous_secret_until.map(utc_minutes),
        created_at: utc_minutes(e.created_at),
    })
}

fn delivery_row(d: Delivery) -> DeliveryRow {
    DeliveryRow {
        id: d.id,
        msg_id: d.msg_id,
        event: d.event,
        status: d.status,
        created_at: d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        next_attempt_at: d
            .next_attempt_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        last_error: d.last_error,
        attempts: d
            .attempts
            .into_iter()
            .map(|a| AttemptRow {
                attempt: a.attempt,
                at: a.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                error: a.error,
            })
            .collect(),
    }
}

fn event_types() -> Vec<String> {
    domain::webhooks::EVENTS.map(str::to_owned).to_vec()
}

/// `/webhooks`: the user's endpoints (admins: `?show=all` for everyone's).
pub(crate) async fn webhooks_page(
    state: &AppState,
    session: &Session,
    user: &User,
    q: &WebhooksQuery,
) -> anyhow::Result<PageData> {
    let is_admin = user.role == Role::Admin;
    let all_users = is_admin && q.show == "all";
    let endpoints = state.webhooks.list(&page_actor(user), all_users).await?;
    let mut rows = Vec::with_capacity(endpoints.len());
    for e in &endpoints {
        rows.push(row(state, e, all_users).await?);
    }
    let new_secret = take_sealed::<NewSecretDisplay>(state, session, NEW_SECRET_KEY)
        .await?
        .map(|d| (d.endpoint_id, d.secret));
    Ok(PageData::Webhooks {
        endpoints: rows,
        event_types: event_types(),
        is_admin,
        all_users,
        new_secret,
    })
}

/// `/webhooks/{id}`: one endpoint and a page of its deliveries; `None` renders "not found".
pub(crate) async fn webhook_page(
    state: &AppState,
    session: &Session,
    user: &User,
    id: &str,
    q: &WebhooksQuery,
) -> anyhow::Result<PageData> {
    let Ok(id) = WebhookId::parse(id) else {
        return Ok(PageData::None);
    };
    let actor = page_actor(user);
    let endpoint = match state.webhooks.get(&actor, &id).await {
        Ok(e) => e,
        Err(domain::service::ServiceError::NotFound) => return Ok(PageData::None),
        Err(e) => return Err(e.into()),
    };
    let own = endpoint.owner_id == user.id;
    let page = q.page.parse::<u64>().unwrap_or(1).clamp(1, 50_000);
    let (deliveries, total) = state
        .webhooks
        .deliveries(
            &actor,
            &id,
            DELIVERIES_PER_PAGE,
            (page - 1) * DELIVERIES_PER_PAGE,
        )
        .await?;
    let new_secret = take_sealed::<NewSecretDisplay>(state, session, NEW_SECRET_KEY)
        .await?
        .filter(|d| d.endpoint_id == id.as_str())
        .map(|d| d.secret);
    Ok(PageData::WebhookDetail {
        endpoint: row(state, &endpoint, !own).await?,
        deliveries: deliveries.into_iter().map(delivery_row).collect(),
        page,
        pages: total.div_ceil(DELIVERIES_PER_PAGE).max(1),
        total,
        event_types: event_types(),
        new_secret,
        own,
    })
}

/// Keeps a new signing secret for exactly one view, then goes to `to`.
async fn show_secret(state: &AppState, session: &Session, made: WithSecret, to: &str) -> Response {
    let display = NewSecretDisplay {
        endpoint_id: made.endpoint.id.clone(),
        secret: made.secret.expose().to_owned(),
    };
    if let Err(e) = insert_sealed(state, session, NEW_SECRET_KEY, &display).await {
        return flash_and_redirect(session, internal(e), to).await;
    }
    Redirect::to(to).into_response()
}

/// `POST /webhooks`: adds an endpoint.
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    body: Bytes,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let fields = Fields::parse(&body);
    let new = NewEndpoint {
        url: fields.get("url"),
        description: fields.get("description"),
        events: fields.all("events"),
        platform: fields.get("platform") == "yes",
    };
    match state.webhooks.create(&actor(&user, ctx), new).await {
        Ok(made) => {
            let to = format!("/webhooks/{}", made.endpoint.id);
            show_secret(&state, &session, made, &to).await
        }
        Err(e) => flash_and_redirect(&session, service_flash(e, &fields), "/webhooks").await,
    }
}

/// `POST /webhooks/{id}/action`: test, enable, disable, rotate, edit, delete, redeliver.
pub(crate) async fn webhook_action(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let Ok(id) = WebhookId::parse(&id) else {
        return flash_and_redirect(&session, FlashData::error("No such endpoint."), "/webhooks")
            .await;
    };
    let fields = Fields::parse(&body);
    let back = format!("/webhooks/{id}");
    let actor = actor(&user, ctx);
    let hooks = &state.webhooks;
    let result = match fields.get("action").as_str() {
        "test" => hooks.send_test(&actor, &id).await.map(|_| {
            "Test event queued: it appears in the delivery log below within seconds.".to_owned()
        }),
        "enable" | "disable" => {
            let enable = fields.get("action") == "enable";
            let patch = EndpointPatch {
                enabled: Some(enable),
                ..Default::default()
            };
            hooks.update(&actor, &id, patch).await.map(|_| {
                if enable {
                    "Endpoint enabled.".to_owned()
                } else {
                    "Endpoint disabled: it receives nothing until you enable it.".to_owned()
                }
            })
        }
        "edit" => {
            let patch = EndpointPatch {
                url: Some(fields.get("url")),
                description: Some(fields.get("description")),
                events: Some(fields.all("events")),
                enabled: None,
            };
            hooks
                .update(&actor, &id, patch)
                .await
                .map(|_| "Endpoint saved.".to_owned())
        }
        "rotate" => {
            return match hooks.rotate_secret(&actor, &id).await {
                Ok(made) => show_secret(&state, &session, made, &back).await,
                Err(e) => flash_and_redirect(&session, service_flash(e, &fields), &back).await,
            };
        }
        "delete" => {
            return match hooks.delete(&actor, &id).await {
                Ok(()) => {
                    flash_and_redirect(
                        &session,
                        FlashData::notice("Endpoint deleted."),
                        "/webhooks",
                    )
                    .await
                }
                Err(e) => flash_and_redirect(&session, service_flash(e, &fields), &back).await,
            };
        }
        "redeliver" => match fields.get("delivery").parse::<i64>() {
            Ok(delivery) => hooks
                .redeliver(&actor, &id, delivery)
                .await
                .map(|_| "Delivery queued again, with the same webhook-id.".to_owned()),
            Err(_) => Err(domain::service::ServiceError::NotFound),
        },
        _ => {
            return flash_and_redirect(&session, FlashData::error("Unknown action."), &back).await;
        }
    };
    let flash = match result {
        Ok(notice) => FlashData::notice(&notice),
        Err(e) => service_flash(e, &fields),
    };
    flash_and_redirect(&session, flash, &back).await
}
