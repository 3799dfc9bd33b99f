//! The key pages (`/keys`, `/keys/new`, `/keys/{id}`) and their forms: create (the plaintext
//! shown once), rename, rescope, restrict, disable, rotate, revoke, and bulk revoke.
use app::session::{ApiView, KeyFilterView, PageData};
use axum::{
    body::Bytes,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Duration, Utc};
use domain::{
    accounts::{Role, User},
    audit,
    catalog::{ADMIN_SCOPE, KEYPORT_API, Quota, QuotaPeriod, RateLimit, VERIFY_SCOPE},
    id::{KeyId, UserId},
    keys::{KeyPage, KeyPatch, KeyStatus, ListFilter, NewKey, Sort},
    service::{FieldErrors, ServiceError},
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::forms::*;
use super::views::*;
use crate::{
    AppState,
    client::ClientContext,
    web::{FlashData, flash_and_redirect, insert_sealed, internal, signed_in_user, take_sealed},
};

pub(crate) const KEYS_PER_PAGE: u64 = 20;

/// Session key of a plaintext key waiting for its one-time display.
pub(crate) const NEW_KEY_KEY: &str = "new_key";

#[derive(Serialize, Deserialize)]
pub(crate) struct NewKeyDisplay {
    key_id: String,
    plaintext: String,
}

/// The query of `/keys`: search, filters, sort and page. Unknown values fall back to defaults.
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct KeysQuery {
    pub q: String,
    pub api: String,
    pub status: String,
    pub sort: String,
    /// Admins only: an owner's email or user id.
    pub owner: String,
    pub page: String,
}

/// `/keys/new`: the APIs a key can be for (the `admin` scope only for admins), the one picked
/// in the query, and the caller's plan.
pub(crate) async fn new_key_page(
    state: &AppState,
    session: &Session,
    user: &User,
    api: &str,
) -> anyhow::Result<PageData> {
    let is_admin = user.role == Role::Admin;
    let apis: Vec<ApiView> = state
        .keys
        .catalog()
        .list_apis()
        .await?
        .iter()
        .map(|a| {
            let mut v = api_view(a, 0);
            if !is_admin {
                // Admin powers and gateway verification tokens are granted by admins only.
                v.scopes.retain(|(s, _)| {
                    !(a.slug == KEYPORT_API && (s == ADMIN_SCOPE || s == VERIFY_SCOPE))
                });
            }
            v
        })
        .collect();
    let selected = apis.iter().find(|a| a.slug == api.trim()).cloned();
    let plan = plan_view(&state.keys.catalog().plan_for_user(&user.id).await?);
    Ok(PageData::NewKey {
        apis,
        selected,
        plan,
        needs_step_up: needs_step_up(state, session, user).await?,
        is_admin,
    })
}

/// `/keys`: a page of the caller's keys (everyone's for admins), filtered and sorted.
pub(crate) async fn keys_page(
    state: &AppState,
    user: &User,
    query: &KeysQuery,
) -> anyhow::Result<PageData> {
    let (q, api, status, sort, owner) = (
        query.q.trim(),
        query.api.trim(),
        query.status.trim(),
        query.sort.trim(),
        query.owner.trim(),
    );
    let is_admin = user.role == Role::Admin;
    let page = query.page.trim().parse::<u64>().unwrap_or(1).max(1);
    // Admins filter by owner, named by user id or email. An owner no one is has no keys.
    let (owner_id, nobody) = if !is_admin || owner.is_empty() {
        (None, false)
    } else if let Ok(id) = UserId::parse(owner) {
        (Some(String::from(id)), false)
    } else {
        match state.accounts.find_by_email(owner).await? {
            Some(u) => (Some(u.id), false),
            None => (None, true),
        }
    };
    let filter = ListFilter {
        owner_id,
        api: (!api.is_empty()).then(|| api.to_owned()),
        status: KeyStatus::parse(status),
        query: (!q.is_empty()).then(|| q.to_owned()),
        sort: Sort::parse(sort),
    };
    let listed = if nobody {
        KeyPage::default()
    } else {
        state
            .keys
            .list(
                &page_actor(user),
                &filter,
                None,
                (page - 1) * KEYS_PER_PAGE,
                KEYS_PER_PAGE,
            )
            .await?
    };
    let now = Utc::now();
    let apis = state
        .keys
        .catalog()
        .list_apis()
        .await?
        .into_iter()
        .map(|a| a.slug)
        .collect();
    Ok(PageData::Keys {
        rows: listed.keys.iter().map(|k| key_row(k, now)).collect(),
        filter: KeyFilterView {
            q: q.to_owned(),
            api: api.to_owned(),
            status: filter
                .status
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            sort: filter.sort.as_str().to_owned(),
            owner: owner.to_owned(),
        },
        apis,
        all_users: is_admin,
        page,
        pages: listed.total.div_ceil(KEYS_PER_PAGE).max(1),
        total: listed.total,
    })
}

/// `/keys/{id}`: one key with its chart, limits now, events and (once) its plaintext;
/// `PageData::None` (the page says not found) for another user's key or an unknown id.
pub(crate) async fn key_page(
    state: &AppState,
    session: &Session,
    user: &User,
    key_id: &str,
    range: &str,
) -> anyhow::Result<PageData> {
    let key = match state.keys.get(&page_actor(user), key_id).await {
        Ok(k) => k,
        Err(ServiceError::NotFound) => return Ok(PageData::None),
        Err(e) => return Err(e.into()),
    };
    // Shown on the page of the key it belongs to, once; any other page view drops it.
    let plaintext = take_sealed::<NewKeyDisplay>(state, session, NEW_KEY_KEY)
        .await?
        .filter(|d| d.key_id == key.id)
        .map(|d| d.plaintext);
    let filter = audit::Filter {
        target: Some(key.id.clone()),
        ..Default::default()
    };
    let (entries, _) = audit::search(&state.db, &filter, None, 20).await?;
    let emails = user_emails(state, &entries).await?;
    let mut detail = key_detail(&key);
    (
        detail.range,
        detail.chart,
        detail.quota_use,
        detail.rate_use,
    ) = crate::portal_usage::key_chart(state, user, &key, range).await?;
    Ok(PageData::KeyDetail {
        key: Box::new(detail),
        plaintext,
        events: audit_rows(entries, &emails),
        needs_step_up: needs_step_up(state, session, user).await?,
    })
}

/// The expiry a form asks for: a preset number of days, a date, or never.
pub(crate) fn expiry_from(fields: &Fields, errors: &mut FieldErrors) -> Option<DateTime<Utc>> {
    let now = Utc::now();
    match fields.get("expires").as_str() {
        "never" => None,
        "date" => match parse_day(&fields.get("expires_on")) {
            Some(d) => Some(d + Duration::days(1) - Duration::seconds(1)),
            None => {
                errors.add("expires_at", "pick the date the key expires");
                None
            }
        },
        days => match days.parse::<i64>() {
            Ok(d @ 1..=3650) => Some(now + Duration::days(d)),
            _ => {
                errors.add("expires_at", "choose when the key expires");
                None
            }
        },
    }
}

pub(crate) fn allowlist_from(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) async fn create_key(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    body: Bytes,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let fields = Fields::parse(&body);
    let api = fields.get("api");
    let back = format!(
        "/keys/new?api={}",
        form_urlencoded::byte_serialize(api.as_bytes()).collect::<String>()
    );
    let mut errors = FieldErrors::default();
    let expires_at = expiry_from(&fields, &mut errors);
    let rate_limit = fields
        .number::<u32>("rate_limit", &mut errors)
        .map(|limit| RateLimit {
            limit,
            period_s: fields.get("rate_period_s").parse().unwrap_or(1),
        });
    let quota = fields
        .number::<u64>("quota_limit", &mut errors)
        .map(|limit| Quota {
            limit,
            period: QuotaPeriod::parse(&fields.get("quota_period")).unwrap_or(QuotaPeriod::Day),
        });
    if !errors.is_empty() {
        return flash_and_redirect(&session, invalid_flash(errors, &fields), &back).await;
    }
    if let Err(flash) = step_up(&state, &session, &user, &fields, &ctx).await {
        return flash_and_redirect(&session, flash, &back).await;
    }
    let new = NewKey {
        name: fields.get("name"),
        api,
        scopes: fields.all("scopes"),
        expires_at,
        ip_allowlist: allowlist_from(&fields.get("ip_allowlist")),
        rate_limit,
        quota,
        owner_id: None,
    };
    match state.keys.create(&actor(&user, ctx), new).await {
        Ok(created) => show_once(&state, &session, created).await,
        Err(e) => flash_and_redirect(&session, service_flash(e, &fields), &back).await,
    }
}

/// Keeps the plaintext for exactly one view of the key's page.
pub(crate) async fn show_once(
    state: &AppState,
    session: &Session,
    created: domain::keys::Created,
) -> Response {
    let display = NewKeyDisplay {
        key_id: created.key.id.clone(),
        plaintext: created.plaintext.expose().to_owned(),
    };
    if let Err(e) = insert_sealed(state, session, NEW_KEY_KEY, &display).await {
        return flash_and_redirect(session, internal(e), "/keys").await;
    }
    Redirect::to(&format!("/keys/{}", created.key.id)).into_response()
}

/// Revokes the keys ticked on the hygiene page (each through the keys service, so each is
/// authorized and audited on its own).
pub(crate) async fn bulk_revoke(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    body: Bytes,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let fields = Fields::parse(&body);
    let mut ids = fields.all("key");
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return flash_and_redirect(
            &session,
            FlashData::error("Select at least one key to revoke."),
            "/hygiene",
        )
        .await;
    }
    if let Err(flash) = step_up(&state, &session, &user, &fields, &ctx).await {
        return flash_and_redirect(&session, flash, "/hygiene").await;
    }
    let actor = actor(&user, ctx);
    let reason = fields.get("reason");
    let reason = (!reason.is_empty()).then_some(reason.as_str());
    let (mut done, mut failed) = (0, Vec::new());
    for id in &ids {
        match state.keys.revoke(&actor, id, reason).await {
            Ok(_) => done += 1,
            Err(ServiceError::Invalid(errors)) => {
                let m = errors.0.first().map(|(_, m)| m.clone()).unwrap_or_default();
                return flash_and_redirect(
                    &session,
                    FlashData::error(format!("Nothing was revoked: the reason {m}.")),
                    "/hygiene",
                )
                .await;
            }
            Err(ServiceError::Domain(e)) => {
                return flash_and_redirect(&session, internal(e), "/hygiene").await;
            }
            Err(_) => failed.push(id.clone()),
        }
    }
    let flash = if failed.is_empty() {
        FlashData {
            notice: Some(format!(
                "Revoked {done} {}.",
                if done == 1 { "key" } else { "keys" }
            )),
            ..Default::default()
        }
    } else {
        FlashData {
            notice: (done > 0).then(|| format!("Revoked {done}.")),
            error: Some(format!(
                "{} could not be revoked (already revoked, or not yours): {}.",
                failed.len(),
                failed.join(", ")
            )),
            ..Default::default()
        }
    };
    flash_and_redirect(&session, flash, "/hygiene").await
}

pub(crate) async fn key_action(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Path(key_id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let Ok(key_id) = KeyId::parse(&key_id) else {
        return flash_and_redirect(&session, FlashData::error("No such key."), "/keys").await;
    };
    let fields = Fields::parse(&body);
    let back = format!("/keys/{key_id}");
    let action = fields.get("action");
    // Removing a key's IP allowlist (emptying it, or allowing every address) frees the key from
    // its network: it needs a fresh code like rotation and revocation.
    let frees_the_key = action == "allowlist" && {
        let wanted = allowlist_from(&fields.get("ip_allowlist"));
        let opens = wanted.is_empty() || wanted.iter().any(|e| e.ends_with("/0"));
        opens
            && state
                .keys
                .get(&actor(&user, ctx.clone()), &key_id)
                .await
                .is_ok_and(|k| !k.ip_allowlist.is_empty())
    };
    if (matches!(action.as_str(), "rotate" | "revoke") || frees_the_key)
        && let Err(flash) = step_up(&state, &session, &user, &fields, &ctx).await
    {
        return flash_and_redirect(&session, flash, &back).await;
    }
    let actor = actor(&user, ctx);
    let result = match action.as_str() {
        "rename" => state
            .keys
            .update(
                &actor,
                &key_id,
                KeyPatch {
                    name: Some(fields.get("name")),
                    ..Default::default()
                },
            )
            .await
            .map(|_| "Key renamed."),
        "allowlist" => state
            .keys
            .update(
                &actor,
                &key_id,
                KeyPatch {
                    ip_allowlist: Some(allowlist_from(&fields.get("ip_allowlist"))),
                    ..Default::default()
                },
            )
            .await
            .map(|_| "IP allowlist saved."),
        "disable" | "enable" => state
            .keys
            .update(
                &actor,
                &key_id,
                KeyPatch {
                    enabled: Some(action == "enable"),
                    ..Default::default()
                },
            )
            .await
            .map(|_| {
                if action == "enable" {
                    "Key enabled: it verifies again."
                } else {
                    "Key disabled: it stops verifying until you enable it."
                }
            }),
        "revoke" => {
            let reason = fields.get("reason");
            state
                .keys
                .revoke(&actor, &key_id, Some(&reason))
                .await
                .map(|_| "Key revoked. It no longer verifies.")
        }
        "rotate" => {
            let grace = fields.get("grace_period_s").parse().unwrap_or(0);
            return match state.keys.rotate(&actor, &key_id, grace).await {
                Ok(created) => show_once(&state, &session, created).await,
                Err(e) => flash_and_redirect(&session, service_flash(e, &fields), &back).await,
            };
        }
        _ => return flash_and_redirect(&session, FlashData::error("Unknown action."), &back).await,
    };
    match result {
        Ok(notice) => flash_and_redirect(&session, FlashData::notice(notice), &back).await,
        Err(e) => flash_and_redirect(&session, service_flash(e, &fields), &back).await,
    }
}

// ---- admin: catalog and plans ----
