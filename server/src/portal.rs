//! The portal's key, catalog and audit pages: the data each page needs (one loader per page,
//! called by its handler in [`crate::pages`]) and their form handlers (303 + flash, like
//! sign-in).
//! Authorization is the domain services'; this module maps forms and views.
use app::session::{
    ApiView, AuditFilterView, AuditRow, KeyDetailView, KeyFilterView, KeyRow, PageData, PlanView,
};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
    routing::post,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::{
    accounts::{Role, User},
    audit,
    catalog::{
        Api, ApiPatch, NewApi, Plan, PlanInput, Quota, QuotaPeriod, RateLimit, Scope, Version,
        VersionStatus,
    },
    id::{KeyId, UserId},
    keys::{Key, KeyPage, KeyPatch, KeyStatus, ListFilter, NewKey, Sort},
    service::{Actor, FieldErrors, ServiceError},
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::{
    AppState,
    client::ClientContext,
    web::{
        FlashData, SECOND_FACTOR_AT_KEY, flash_and_redirect, internal, signed_in_user, utc_minutes,
    },
};

const KEYS_PER_PAGE: u64 = 20;
const AUDIT_PER_PAGE: u64 = 50;
/// Session key of a plaintext key waiting for its one-time display.
const NEW_KEY_KEY: &str = "new_key";

#[derive(Serialize, Deserialize)]
struct NewKeyDisplay {
    key_id: String,
    plaintext: String,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/keys/new", post(create_key))
        .route("/keys/{id}/action", post(key_action))
        .route("/hygiene/revoke", post(bulk_revoke))
        .route("/admin/apis", post(create_api))
        .route("/admin/apis/{slug}", post(update_api))
        .route("/admin/plans", post(save_plan))
        .route("/admin/plans/default", post(default_plan))
        .route("/admin/users/plan", post(assign_plan))
}

fn actor(user: &User, ctx: domain::audit::RequestContext) -> Actor {
    Actor::new(user.id.clone(), user.role == Role::Admin, ctx)
}

fn page_actor(user: &User) -> Actor {
    actor(user, Default::default())
}

/// Form fields in order, repeated names kept (checkboxes).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8]) -> Fields {
        Fields(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }
    /// A number field: `Ok(None)` when empty.
    fn number<T: std::str::FromStr>(&self, name: &str, errors: &mut FieldErrors) -> Option<T> {
        let raw = self.get(name).replace([',', '_', ' '], "");
        if raw.is_empty() {
            return None;
        }
        match raw.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.add(name, "enter a whole number");
                None
            }
        }
    }
    /// The values to refill the form with (never secrets such as codes).
    fn refill(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| k != "code")
            .cloned()
            .collect()
    }
}

fn invalid_flash(errors: FieldErrors, fields: &Fields) -> FlashData {
    FlashData {
        error: Some("Please correct the fields marked below.".into()),
        field_errors: errors.0,
        values: fields.refill(),
        ..Default::default()
    }
}

/// The flash for a failed service call.
fn service_flash(e: ServiceError, fields: &Fields) -> FlashData {
    match e {
        ServiceError::Invalid(errors) => invalid_flash(errors, fields),
        ServiceError::NotFound => FlashData::error("That no longer exists, or it is not yours."),
        ServiceError::Forbidden(m) | ServiceError::Conflict(m) => FlashData {
            error: Some(capitalize(&m)),
            values: fields.refill(),
            ..Default::default()
        },
        ServiceError::Domain(e) => internal(e),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => {
            f.to_uppercase().chain(c).collect::<String>() + if s.ends_with('.') { "" } else { "." }
        }
        None => String::new(),
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_period(limit: u32, period_s: u32) -> String {
    let unit = match period_s {
        1 => "second".to_owned(),
        60 => "minute".to_owned(),
        3600 => "hour".to_owned(),
        86_400 => "day".to_owned(),
        s => format!("{s} s"),
    };
    format!("{} per {unit}", thousands(limit as u64))
}

fn rate_text(r: &RateLimit) -> String {
    per_period(r.limit, r.period_s).replacen(" per ", " requests per ", 1)
}

fn quota_text(q: &Quota) -> String {
    format!("{} requests a {}", thousands(q.limit), q.period.as_str())
}

pub(crate) fn plan_view(p: &Plan) -> PlanView {
    let mut parts = Vec::new();
    parts.push(match (p.rate_limit, p.burst) {
        (Some(r), Some(b)) => format!(
            "{} requests/{} (burst {b})",
            thousands(r.limit as u64),
            if r.period_s == 1 {
                "s".to_owned()
            } else {
                format!("{} s", r.period_s)
            }
        ),
        (Some(r), None) => format!(
            "{} requests/{}",
            thousands(r.limit as u64),
            if r.period_s == 1 {
                "s".to_owned()
            } else {
                format!("{} s", r.period_s)
            }
        ),
        _ => "no rate limit".to_owned(),
    });
    parts.push(
        p.quota
            .map(|q| quota_text(&q))
            .unwrap_or_else(|| "no quota".into()),
    );
    parts.push(
        p.max_active_keys
            .map(|n| format!("up to {n} active keys"))
            .unwrap_or_else(|| "any number of keys".into()),
    );
    parts.push(
        p.max_lifetime_days
            .map(|d| format!("keys live up to {d} days"))
            .unwrap_or_else(|| "keys may never expire".into()),
    );
    PlanView {
        id: p.id.clone(),
        name: p.name.clone(),
        rate_limit: p.rate_limit.map(|r| r.limit),
        rate_period_s: p.rate_limit.map(|r| r.period_s),
        burst: p.burst,
        quota_limit: p.quota.map(|q| q.limit),
        quota_period: p.quota.map(|q| q.period.as_str().to_owned()),
        max_active_keys: p.max_active_keys,
        max_lifetime_days: p.max_lifetime_days,
        is_default: p.is_default,
        summary: parts.join(" · "),
    }
}

pub(crate) async fn plan_views(state: &AppState) -> anyhow::Result<Vec<PlanView>> {
    Ok(state
        .keys
        .catalog()
        .list_plans()
        .await?
        .iter()
        .map(plan_view)
        .collect())
}

fn api_view(a: &Api, keys: u64) -> ApiView {
    ApiView {
        slug: a.slug.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        built_in: a.built_in,
        scopes: a
            .scopes
            .iter()
            .map(|s| (s.name.clone(), s.description.clone()))
            .collect(),
        versions: a
            .versions
            .iter()
            .map(|v| {
                (
                    v.name.clone(),
                    v.status.as_str().to_owned(),
                    v.sunset_at.map(|d| d.format("%Y-%m-%d").to_string()),
                )
            })
            .collect(),
        keys,
    }
}

fn key_row(k: &Key, now: DateTime<Utc>) -> KeyRow {
    let status = k.status(now);
    KeyRow {
        id: k.id.clone(),
        name: k.name.clone(),
        start: k.start.clone(),
        api: k.api.clone(),
        scopes: k.scopes.clone(),
        owner_email: k.owner_email.clone(),
        created_at: utc_minutes(k.created_at),
        expires_at: k.expires_at.map(utc_minutes),
        last_used_at: k.last_used_at.map(utc_minutes),
        status: status.as_str().to_owned(),
        status_label: status.label().to_owned(),
        rotating_until: k
            .expires_at
            .filter(|_| status == KeyStatus::Rotating)
            .map(utc_minutes),
    }
}

/// A key's details. Its limits are the ones the verifier enforces ([`Key::effective`]), with
/// the burst and where they come from.
fn key_detail(k: &Key) -> KeyDetailView {
    let from_plan = |yes: bool| match (&k.plan, yes) {
        (Some(plan), true) => format!(" (plan {plan})"),
        _ => String::new(),
    };
    let rate_limit = match k.effective.rate {
        Some(r) => format!(
            "{}, bursts of {}{}",
            rate_text(&r.limit),
            thousands(r.burst as u64),
            from_plan(r.from_plan)
        ),
        None => "None".into(),
    };
    let quota = match k.effective.quota {
        Some(q) => format!("{}{}", quota_text(&q.quota), from_plan(q.from_plan)),
        None => "None".into(),
    };
    KeyDetailView {
        row: key_row(k, Utc::now()),
        owner_id: k.owner_id.clone(),
        ip_allowlist: k.ip_allowlist.clone(),
        rate_limit,
        quota,
        enabled: k.enabled,
        revoked_at: k.revoked_at.map(utc_minutes),
        revoke_reason: k.revoke_reason.clone(),
        replaces: k.replaces.clone(),
        replaced_by: k.replaced_by.clone(),
        ..Default::default()
    }
}

fn audit_rows(
    entries: Vec<audit::Entry>,
    emails: &std::collections::HashMap<String, String>,
) -> Vec<AuditRow> {
    entries
        .into_iter()
        .map(|e| {
            let ev = e.event;
            let actor = ev
                .actor_id
                .as_ref()
                .map(|a| emails.get(a).cloned().unwrap_or_else(|| a.clone()))
                .unwrap_or_else(|| "—".into());
            let target_href = ev
                .target
                .as_ref()
                .filter(|t| KeyId::parse(t).is_ok())
                .map(|t| format!("/keys/{t}"));
            let details = match serde_json::from_str::<serde_json::Value>(&ev.details) {
                Ok(serde_json::Value::Object(map)) => map
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => format!("{k}: {s}"),
                        other => format!("{k}: {other}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            };
            AuditRow {
                at: format!("{} UTC", ev.at.format("%Y-%m-%d %H:%M:%S")),
                actor,
                target: ev.target.map(|t| emails.get(&t).cloned().unwrap_or(t)),
                target_href,
                action: ev.action,
                ip: ev.ip.unwrap_or_default(),
                details,
            }
        })
        .collect()
}

/// The emails of the people an audit page names (actors and user targets), read in one query.
async fn user_emails(
    state: &AppState,
    entries: &[audit::Entry],
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let mut ids: Vec<String> = entries
        .iter()
        .flat_map(|e| [e.event.actor_id.clone(), e.event.target.clone()])
        .flatten()
        .filter(|id| UserId::parse(id).is_ok())
        .collect();
    ids.sort();
    ids.dedup();
    Ok(state.accounts.emails_of(&ids).await?)
}

fn needs_step_up_at(state: &AppState, user: &User, last: Option<i64>) -> bool {
    user.totp_enabled && last.is_none_or(|at| Utc::now().timestamp() - at > state.step_up_seconds)
}

pub(crate) async fn needs_step_up(
    state: &AppState,
    session: &Session,
    user: &User,
) -> anyhow::Result<bool> {
    let last = session.get::<i64>(SECOND_FACTOR_AT_KEY).await?;
    Ok(needs_step_up_at(state, user, last))
}

/// Checks the step-up code when one is due. `Err` holds the flash to answer with.
async fn step_up(
    state: &AppState,
    session: &Session,
    user: &User,
    fields: &Fields,
    ctx: &domain::audit::RequestContext,
) -> Result<(), FlashData> {
    match needs_step_up(state, session, user).await {
        Ok(false) => return Ok(()),
        Ok(true) => {}
        Err(e) => return Err(internal(e)),
    }
    let code = fields.get("code");
    let refill = fields.refill();
    let field_error = |message: String| FlashData {
        error: Some("Confirm it is you: enter a code from your authenticator app.".into()),
        field_errors: vec![("code".into(), message)],
        values: refill.clone(),
        ..Default::default()
    };
    if code.is_empty() {
        return Err(field_error(
            "Enter the 6-digit code from your authenticator app.".into(),
        ));
    }
    match state
        .accounts
        .step_up(&user.id, &code, ctx, Utc::now())
        .await
    {
        Ok(()) => {
            if let Err(e) = session
                .insert(SECOND_FACTOR_AT_KEY, Utc::now().timestamp())
                .await
            {
                return Err(internal(e));
            }
            Ok(())
        }
        Err(domain::accounts::SignInError::Internal(e)) => Err(internal(e)),
        Err(e) => Err(field_error(e.to_string())),
    }
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

/// The query of `/audit`.
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct AuditQuery {
    /// An email (or a user id).
    pub actor: String,
    pub action: String,
    pub target: String,
    /// Days, `YYYY-MM-DD`, UTC.
    pub from: String,
    pub to: String,
    /// The paging cursor.
    pub before: String,
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
                v.scopes
                    .retain(|(s, _)| !(a.slug == "keyport" && s == "admin"));
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
pub(crate) async fn admin_plans_page(state: &AppState) -> anyhow::Result<PageData> {
    Ok(PageData::AdminPlans {
        plans: plan_views(state).await?,
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
    let plaintext = match session.get::<NewKeyDisplay>(NEW_KEY_KEY).await? {
        Some(d) if d.key_id == key.id => {
            session.remove::<NewKeyDisplay>(NEW_KEY_KEY).await?;
            Some(d.plaintext)
        }
        _ => None,
    };
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

fn parse_day(s: &str) -> Option<DateTime<Utc>> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

/// `/audit`: the events by or about the caller (everyone's for admins), newest first.
pub(crate) async fn audit_page(
    state: &AppState,
    user: &User,
    query: &AuditQuery,
) -> anyhow::Result<PageData> {
    let (actor, action, target, from, to, before) = (
        query.actor.trim(),
        query.action.trim(),
        query.target.trim(),
        query.from.trim(),
        query.to.trim(),
        query.before.trim(),
    );
    let is_admin = user.role == Role::Admin;
    let actor_id = if actor.is_empty() {
        None
    } else if actor.contains('@') {
        Some(
            state
                .accounts
                .find_by_email(actor)
                .await?
                .map_or_else(|| actor.to_owned(), |u| u.id),
        )
    } else {
        Some(actor.to_owned())
    };
    let filter = audit::Filter {
        involving: (!is_admin).then(|| user.id.clone()),
        actor_id,
        action: (!action.is_empty()).then(|| action.to_owned()),
        target: (!target.is_empty()).then(|| target.to_owned()),
        from: parse_day(from),
        to: parse_day(to).map(|d| d + Duration::days(1)),
    };
    let (entries, next) =
        audit::search(&state.db, &filter, before.parse().ok(), AUDIT_PER_PAGE).await?;
    let emails = user_emails(state, &entries).await?;
    let view = AuditFilterView {
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        from: from.to_owned(),
        to: to.to_owned(),
    };
    let older = next.map(|n| {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("actor", &view.actor)
            .append_pair("action", &view.action)
            .append_pair("target", &view.target)
            .append_pair("from", &view.from)
            .append_pair("to", &view.to)
            .append_pair("before", &n.to_string())
            .finish();
        format!("/audit?{q}")
    });
    Ok(PageData::Audit {
        rows: audit_rows(entries, &emails),
        filter: view,
        all_users: is_admin,
        older,
    })
}

// ---- key forms ----

/// The expiry a form asks for: a preset number of days, a date, or never.
fn expiry_from(fields: &Fields, errors: &mut FieldErrors) -> Option<DateTime<Utc>> {
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

fn allowlist_from(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn create_key(
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
        Ok(created) => show_once(&session, created).await,
        Err(e) => flash_and_redirect(&session, service_flash(e, &fields), &back).await,
    }
}

/// Keeps the plaintext for exactly one view of the key's page.
async fn show_once(session: &Session, created: domain::keys::Created) -> Response {
    let display = NewKeyDisplay {
        key_id: created.key.id.clone(),
        plaintext: created.plaintext.expose().to_owned(),
    };
    if let Err(e) = session.insert(NEW_KEY_KEY, display).await {
        return flash_and_redirect(session, internal(e), "/keys").await;
    }
    Redirect::to(&format!("/keys/{}", created.key.id)).into_response()
}

/// Revokes the keys ticked on the hygiene page (each through the keys service, so each is
/// authorized and audited on its own).
async fn bulk_revoke(
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

async fn key_action(
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
    if matches!(action.as_str(), "rotate" | "revoke")
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
                Ok(created) => show_once(&session, created).await,
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

/// Scopes from a textarea, one per line: `name` then an optional description.
fn scopes_from(text: &str) -> Vec<Scope> {
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
fn versions_from(text: &str, errors: &mut FieldErrors) -> Vec<Version> {
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

async fn admin(state: &AppState, session: &Session) -> Option<User> {
    signed_in_user(state, session)
        .await
        .filter(|u| u.role == Role::Admin)
}

async fn create_api(
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

async fn update_api(
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

async fn save_plan(
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
    };
    if !errors.is_empty() {
        return flash_and_redirect(&session, invalid_flash(errors, &fields), "/admin/plans").await;
    }
    let actor = actor(&user, ctx);
    let plan_id = fields.get("plan_id");
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

async fn default_plan(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    body: Bytes,
) -> Response {
    let Some(user) = admin(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let fields = Fields::parse(&body);
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

async fn assign_plan(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    body: Bytes,
) -> Response {
    let Some(user) = admin(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let fields = Fields::parse(&body);
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
