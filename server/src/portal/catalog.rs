//! The admin's catalog pages (`/admin/apis`, `/admin/apis/{slug}`, `/admin/plans`) and their
//! forms: register and change APIs, save plans, choose the default plan, assign plans.
use app::session::PageData;
use axum::{
    body::Bytes,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use domain::{
    accounts::{Role, User},
    catalog::{
        ApiPatch, NewApi, PlanInput, Quota, QuotaPeriod, RateLimit, Scope, Version, VersionStatus,
    },
    keys::ListFilter,
    service::FieldErrors,
};
use tower_sessions::Session;

use super::forms::*;
use super::views::*;
use crate::{
    AppState,
    client::ClientContext,
    web::{FlashData, flash_and_redirect, signed_in_user},
};

/// `/admin/apis`: every API with its number of keys.
pub(crate) async fn admin_apis_page(state: &AppState, admin: &User) -> anyhow::Result<PageData> {
    let mut apis = Vec::new();
    for a in state.keys.catalog().list_apis().await? {
        let filter = ListFilter {
            api: Some(a.slug.clone()),
            ..Default::default()
        };
        let total = state
            .keys
            .list(&page_actor(admin), &filter, None, 0, 1)
            .await?
            .total;
        apis.push(api_view(&a, total));
    }
    Ok(PageData::AdminApis { apis })
}

/// `/admin/apis/{slug}`; `PageData::None` (the page says not found) for an unknown slug.
pub(crate) async fn admin_api_page(state: &AppState, slug: &str) -> anyhow::Result<PageData> {
    Ok(match state.keys.catalog().api_by_slug(slug).await? {
        Some(a) => PageData::AdminApi {
            api: api_view(&a, 0),
        },
        None => PageData::None,
    })
}

/// `/admin/plans`.
pub(crate) async fn admin_plans_page(
    state: &AppState,
    session: &Session,
    admin: &User,
) -> anyhow::Result<PageData> {
    Ok(PageData::AdminPlans {
        plans: plan_views(state).await?,
        needs_step_up: needs_step_up(state, session, admin).await?,
    })
}

/// Scopes from a textarea, one per line: `name` then an optional description.
pub(crate) fn scopes_from(text: &str) -> Vec<Scope> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, description) = l
                .split_once(char::is_whitespace)
                .map(|(n, d)| (n, d.trim().trim_start_matches(['-', '—', ':']).trim()))
                .unwrap_or((l, ""));
            Scope {
                name: name.to_owned(),
                description: description.to_owned(),
            }
        })
        .collect()
}

/// Versions from a textarea, one per line: `name status [sunset date]`.
pub(crate) fn versions_from(text: &str, errors: &mut FieldErrors) -> Vec<Version> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.split_whitespace();
        let name = parts.next().unwrap_or_default().to_owned();
        let status_text = parts.next().unwrap_or("active");
        let Some(status) = VersionStatus::parse(status_text) else {
            errors.add(
                "versions",
                format!(
                    "{name}: the status is active, deprecated or retired, not \"{status_text}\""
                ),
            );
            continue;
        };
        let sunset_at = match parts.next() {
            Some(d) => match parse_day(d) {
                Some(d) => Some(d),
                None => {
                    errors.add(
                        "versions",
                        format!("{name}: write the sunset date as YYYY-MM-DD"),
                    );
                    None
                }
            },
            None => None,
        };
        out.push(Version {
            name,
            status,
            sunset_at,
        });
    }
    out
}

pub(crate) async fn admin(state: &AppState, session: &Session) -> Option<User> {
    signed_in_user(state, session)
        .await
        .filter(|u| u.role == Role::Admin)
}

pub(crate) async fn create_api(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    body: Bytes,
) -> Response {
    let Some(user) = admin(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let fields = Fields::parse(&body);
    let mut errors = FieldErrors::default();
    let versions = versions_from(&fields.get("versions"), &mut errors);
    if !errors.is_empty() {
        return flash_and_redirect(&session, invalid_flash(errors, &fields), "/admin/apis").await;
    }
    let new = NewApi {
        slug: fields.get("slug"),
        name: fields.get("name"),
        description: fields.get("description"),
        scopes: scopes_from(&fields.get("scopes")),
        versions,
    };
    match state
        .keys
        .catalog()
        .create_api(&actor(&user, ctx), new)
        .await
    {
        Ok(api) => {
            flash_and_redirect(
                &session,
                FlashData::notice(&format!("API {} registered.", api.slug)),
                "/admin/apis",
            )
            .await
        }
        Err(e) => flash_and_redirect(&session, service_flash(e, &fields), "/admin/apis").await,
    }
}

pub(crate) async fn update_api(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Path(slug): Path<String>,
    body: Bytes,
) -> Response {
    let Some(user) = admin(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let fields = Fields::parse(&body);
    let back = format!("/admin/apis/{slug}");
    let mut errors = FieldErrors::default();
    let versions = versions_from(&fields.get("versions"), &mut errors);
    if !errors.is_empty() {
        return flash_and_redirect(&session, invalid_flash(errors, &fields), &back).await;
    }
    let patch = ApiPatch {
        name: Some(fields.get("name")),
        description: Some(fields.get("description")),
        scopes: Some(scopes_from(&fields.get("scopes"))),
        versions: Some(versions),
    };
    match state
        .keys
        .catalog()
        .update_api(&actor(&user, ctx), &slug, patch)
        .await
    {
        Ok(_) => flash_and_redirect(&session, FlashData::notice("Changes saved."), &back).await,
        Err(e) => flash_and_redirect(&session, service_flash(e, &fields), &back).await,
    }
}

pub(crate) async fn save_plan(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    body: Bytes,
) -> Response {
    let Some(user) = admin(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let fields = Fields::parse(&body);
    let mut errors = FieldErrors::default();
    let rate = fields.number::<u32>("rate_limit", &mut errors);
    let period = fields
        .number::<u32>("rate_period_s", &mut errors)
        .unwrap_or(1);
    let quota = fields.number::<u64>("quota_limit", &mut errors);
    let input = PlanInput {
        name: fields.get("name"),
        rate_limit: rate.map(|limit| RateLimit {
            limit,
            period_s: period,
        }),
        burst: fields.number("burst", &mut errors),
        quota: quota.map(|limit| Quota {
            limit,
            period: QuotaPeriod::parse(&fields.get("quota_period")).unwrap_or(QuotaPeriod::Day),
        }),
        max_active_keys: fields.number("max_active_keys", &mut errors),
        max_lifetime_days: fields.number("max_lifetime_days", &mut errors),
        per_developer: fields.get("limit_scope") == "developer",
    };
    if !errors.is_empty() {
        return flash_and_redirect(&session, invalid_flash(errors, &fields), "/admin/plans").await;
    }
    let plan_id = fields.get("plan_id");
    // Changing a plan's limits changes every key on it: a fresh 2FA code first.
    if !plan_id.is_empty()
        && let Err(flash) = step_up(&state, &session, &user, &fields, &ctx).await
    {
        return flash_and_redirect(&session, flash, "/admin/plans").await;
    }
    let actor = actor(&user, ctx);
    let result = if plan_id.is_empty() {
        state.keys.catalog().create_plan(&actor, input).await
    } else {
        state
            .keys
            .catalog()
            .update_plan(&actor, &plan_id, input)
            .await
    };
    match result {
        Ok(plan) => {
            flash_and_redirect(
                &session,
                FlashData::notice(&format!("Plan {} saved.", plan.name)),
                "/admin/plans",
            )
            .await
        }
        Err(e) => flash_and_redirect(&session, service_flash(e, &fields), "/admin/plans").await,
    }
}

pub(crate) async fn default_plan(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    body: Bytes,
) -> Response {
    let Some(user) = admin(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let fields = Fields::parse(&body);
    if let Err(flash) = step_up(&state, &session, &user, &fields, &ctx).await {
        return flash_and_redirect(&session, flash, "/admin/plans").await;
    }
    match state
        .keys
        .catalog()
        .set_default_plan(&actor(&user, ctx), &fields.get("plan_id"))
        .await
    {
        Ok(()) => {
            flash_and_redirect(
                &session,
                FlashData::notice(
                    "Default plan changed. New sign-ups and users without a plan get it.",
                ),
                "/admin/plans",
            )
            .await
        }
        Err(e) => flash_and_redirect(&session, service_flash(e, &fields), "/admin/plans").await,
    }
}

pub(crate) async fn assign_plan(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    body: Bytes,
) -> Response {
    let Some(user) = admin(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let fields = Fields::parse(&body);
    if let Err(flash) = step_up(&state, &session, &user, &fields, &ctx).await {
        return flash_and_redirect(&session, flash, "/admin/users").await;
    }
    let plan_id = fields.get("plan_id");
    let plan = (!plan_id.is_empty()).then_some(plan_id.as_str());
    match state
        .keys
        .catalog()
        .assign_plan(&actor(&user, ctx), &fields.get("user_id"), plan)
        .await
    {
        Ok(()) => {
            flash_and_redirect(
                &session,
                FlashData::notice("Plan assigned."),
                "/admin/users",
            )
            .await
        }
        Err(e) => flash_and_redirect(&session, service_flash(e, &fields), "/admin/users").await,
    }
}
