//! The portal's usage views: the developer dashboard, the admin's platform dashboard, the chart
//! on a key's page, and the CSV export of each chart (same data, same authorization).
use app::session::{
    AlertRow, ChartBucket, ChartSeries, ChartView, KeyUsageRow, PageData, RangeView, RankedRow,
};
use axum::{
    Router,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono::Utc;
use domain::{
    accounts::{Role, User},
    id::{AlertId, KeyId},
    keys::Key,
    service::{Actor, ServiceError},
    usage::{Filter, Granularity, KeyUsage, PRESETS, Range, Series, alerts::Alert},
    verification::Code,
};
use serde::Deserialize;
use tower_sessions::Session;

use crate::{
    AppState,
    client::ClientContext,
    web::{FlashData, flash_and_redirect, internal, signed_in_user, utc_minutes},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/usage.csv", get(dashboard_csv))
        .route("/admin/usage.csv", get(admin_csv))
        .route("/keys/{id}/usage.csv", get(key_csv))
        .route("/alerts/{id}/acknowledge", post(acknowledge))
}

fn alert_row(a: Alert) -> AlertRow {
    AlertRow {
        rule: a.rule.as_str().to_owned(),
        rule_label: a.rule.label().to_owned(),
        key_active: !a.key_revoked && a.key_enabled,
        window: format!(
            "{} – {}",
            utc_minutes(a.window_start),
            (a.window_start + chrono::Duration::hours(1)).format("%H:%M")
        ),
        acknowledged: a.acknowledged_at.is_some(),
        id: a.id,
        key_id: a.key_id,
        key_name: a.key_name,
        owner_email: a.owner_email,
        detail: a.detail,
    }
}

/// The hygiene lists, one per issue that has keys.
pub(crate) async fn hygiene_groups(
    state: &AppState,
    user: &User,
) -> anyhow::Result<Vec<app::session::HygieneGroup>> {
    use domain::usage::hygiene::{Issue, report};
    let flagged = report(&state.db, &actor(user), Utc::now()).await?;
    Ok(Issue::ALL
        .into_iter()
        .filter_map(|issue| {
            let rows: Vec<app::session::HygieneRow> = flagged
                .iter()
                .filter(|k| k.issues.contains(&issue))
                .map(|k| app::session::HygieneRow {
                    id: k.key_id.clone(),
                    name: k.name.clone(),
                    start: k.start.clone(),
                    owner_email: k.owner_email.clone(),
                    api: k.api.clone(),
                    created_at: utc_minutes(k.created_at),
                    expires_at: k.expires_at.map(utc_minutes),
                    last_used_at: k.last_used_at.map(utc_minutes),
                })
                .collect();
            (!rows.is_empty()).then(|| app::session::HygieneGroup {
                issue: issue.as_str().to_owned(),
                label: issue.label().to_owned(),
                advice: issue.advice().to_owned(),
                rows,
            })
        })
        .collect())
}

pub(crate) async fn alerts_page(
    state: &AppState,
    user: &User,
    show: &str,
) -> anyhow::Result<PageData> {
    let show_all = show == "all";
    let rows = state.alerts.list(&actor(user), show_all, 200).await?;
    Ok(PageData::Alerts {
        rows: rows.into_iter().map(alert_row).collect(),
        show_all,
        all_users: user.role == Role::Admin,
    })
}

async fn acknowledge(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Path(id): Path<String>,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let a = Actor::new(user.id.clone(), user.role == Role::Admin, ctx);
    let acknowledged = match AlertId::parse(&id) {
        Ok(id) => state.alerts.acknowledge(&a, &id).await,
        Err(_) => Err(ServiceError::NotFound),
    };
    let flash = match acknowledged {
        Ok(()) => FlashData {
            notice: Some("Alert acknowledged.".into()),
            ..Default::default()
        },
        Err(ServiceError::NotFound) => {
            FlashData::error("That alert no longer exists, or it is not yours.")
        }
        Err(e) => internal(e),
    };
    flash_and_redirect(&session, flash, "/alerts").await
}

fn actor(user: &User) -> Actor {
    Actor::new(
        user.id.clone(),
        user.role == Role::Admin,
        Default::default(),
    )
}

/// The preset named `param` (default 24 hours) and its range ending now.
pub(crate) fn range_of(param: &str) -> (String, Range) {
    let (name, _, seconds) = PRESETS
        .iter()
        .find(|(n, _, _)| *n == param)
        .copied()
        .unwrap_or(PRESETS[1]);
    (name.to_owned(), Range::last(seconds, Utc::now()))
}

pub(crate) fn range_view(current: &str) -> RangeView {
    RangeView {
        current: current.to_owned(),
        choices: PRESETS
            .iter()
            .map(|(n, label, _)| ((*n).to_owned(), (*label).to_owned()))
            .collect(),
    }
}

fn axis_label(t: chrono::DateTime<Utc>, g: Granularity, range_seconds: i64) -> String {
    match g {
        Granularity::Minute => t.format("%H:%M").to_string(),
        Granularity::Hour if range_seconds <= 86_400 => t.format("%H:%M").to_string(),
        Granularity::Hour => t.format("%b %-d %H:%M").to_string(),
        Granularity::Day => t.format("%b %-d").to_string(),
    }
}

/// A series as the chart draws it: VALID at the bottom, then each denial kind that occurred.
pub(crate) fn chart_view(series: &Series, csv_href: String) -> ChartView {
    let totals = series.totals();
    let mut codes: Vec<Code> = totals.keys().copied().collect();
    codes.sort_by_key(|c| (*c != Code::Valid, *c));
    let seconds = series.range.to.timestamp() - series.range.from.timestamp();
    ChartView {
        series: codes
            .iter()
            .map(|c| ChartSeries {
                code: c.as_str().to_owned(),
                label: app::components::chart::label(c.as_str()).to_owned(),
                total: totals.get(c).copied().unwrap_or(0),
            })
            .collect(),
        buckets: series
            .buckets
            .iter()
            .map(|b| ChartBucket {
                label: axis_label(b.start, series.range.granularity, seconds),
                start: b.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                values: codes
                    .iter()
                    .map(|c| b.counts.get(c).copied().unwrap_or(0))
                    .collect(),
            })
            .collect(),
        granularity: series.range.granularity.as_str().to_owned(),
        total: series.total(),
        csv_href,
    }
}

fn usage_row(k: KeyUsage) -> KeyUsageRow {
    KeyUsageRow {
        id: k.key_id,
        name: k.name,
        start: k.start,
        owner_email: k.owner_email,
        api: k.api,
        total: k.total,
        denied: k.denied,
        last_used_at: k.last_used_at.map(utc_minutes),
    }
}

pub(crate) async fn dashboard(
    state: &AppState,
    user: &User,
    range_param: &str,
) -> anyhow::Result<PageData> {
    let (name, range) = range_of(range_param);
    let me = Actor::new(user.id.clone(), false, Default::default());
    let series = state.usage.series(&me, &Filter::default(), range).await?;
    let keys = state.usage.own_keys(&me, range).await?;
    let alerts = state.alerts.list(&me, false, 5).await?;
    let attention = domain::usage::hygiene::report(&state.db, &me, Utc::now())
        .await?
        .len() as u64;
    let disabled_webhooks = state
        .webhooks
        .list(&me, false)
        .await?
        .iter()
        .filter(|e| !e.enabled && e.disabled_reason.is_some())
        .count() as u64;
    Ok(PageData::Dashboard {
        range: range_view(&name),
        chart: chart_view(&series, format!("/dashboard/usage.csv?range={name}")),
        keys: keys.into_iter().take(100).map(usage_row).collect(),
        alerts: alerts.into_iter().map(alert_row).collect(),
        attention,
        disabled_webhooks,
    })
}

/// Rankings, each row linking to `{link}{id}`.
fn ranked_rows(ranked: Vec<domain::usage::Ranked>, link: &str) -> Vec<RankedRow> {
    ranked
        .into_iter()
        .map(|r| RankedRow {
            href: format!("{link}{}", r.id),
            label: r.label,
            total: r.total,
            denied: r.denied,
        })
        .collect()
}

pub(crate) async fn admin_dashboard(
    state: &AppState,
    user: &User,
    range_param: &str,
) -> anyhow::Result<PageData> {
    let (name, range) = range_of(range_param);
    let o = state.usage.overview(&actor(user), range).await?;
    Ok(PageData::AdminDashboard {
        range: range_view(&name),
        chart: chart_view(&o.series, format!("/admin/usage.csv?range={name}")),
        active_keys: o.active_keys,
        active_developers: o.active_developers,
        new_signups: o.new_signups,
        top_keys: o.top_keys.into_iter().map(usage_row).collect(),
        top_developers: ranked_rows(o.top_developers, "/keys?owner="),
        apis: ranked_rows(o.apis, "/admin/apis/"),
        outbox: outbox_view(state).await?,
    })
}

/// How many emails wait, gave up and went out, and the latest unsent ones.
async fn outbox_view(state: &AppState) -> anyhow::Result<Option<app::session::OutboxView>> {
    let Some(outbox) = &state.outbox else {
        return Ok(None);
    };
    let summary = outbox.summary().await?;
    let unsent = outbox
        .unsent(20)
        .await?
        .into_iter()
        .map(|e| app::session::OutboxRow {
            id: e.id,
            kind: e.kind,
            recipient: e.recipient,
            status: e.status,
            attempts: e.attempts,
            next_attempt_at: crate::web::utc_minutes(e.next_attempt_at),
            created_at: crate::web::utc_minutes(e.created_at),
            last_error: e.last_error,
        })
        .collect();
    Ok(Some(app::session::OutboxView {
        pending: summary.pending,
        failed: summary.failed,
        sent: summary.sent,
        unsent,
    }))
}

/// The chart of a key's page, its quota use ("7,412 of 10,000 today") and what its rate limit
/// allows now ("18 of 20 available now").
pub(crate) async fn key_chart(
    state: &AppState,
    user: &User,
    key: &Key,
    range_param: &str,
) -> anyhow::Result<(RangeView, ChartView, Option<String>, Option<String>)> {
    let (name, range) = range_of(range_param);
    let series = state.usage.key_series(&actor(user), &key.id, range).await?;
    let quota_use = state.verifier.quota_use(&key.id, Utc::now()).map(|q| {
        format!(
            "{} of {} {}",
            app::components::chart::thousands(q.limit - q.remaining),
            app::components::chart::thousands(q.limit),
            match q.period {
                domain::catalog::QuotaPeriod::Day => "today",
                domain::catalog::QuotaPeriod::Month => "this month",
            }
        )
    });
    let rate_use = state.verifier.rate_use(&key.id, Utc::now()).map(|r| {
        format!(
            "{} of {} available now",
            app::components::chart::thousands(r.remaining as u64),
            app::components::chart::thousands(r.limit as u64)
        )
    });
    Ok((
        range_view(&name),
        chart_view(&series, format!("/keys/{}/usage.csv?range={name}", key.id)),
        quota_use,
        rate_use,
    ))
}

#[derive(Deserialize)]
struct CsvParams {
    #[serde(default)]
    range: String,
}

fn csv(series: &Series, name: &str) -> Response {
    let mut r = series.to_csv().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

fn failed(e: ServiceError) -> Response {
    match e {
        ServiceError::NotFound => (StatusCode::NOT_FOUND, "Not found").into_response(),
        ServiceError::Forbidden(m) => (StatusCode::FORBIDDEN, m).into_response(),
        ServiceError::Invalid(_) | ServiceError::Conflict(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "Invalid range").into_response()
        }
        ServiceError::Domain(error) => {
            tracing::error!(%error, "cannot export usage");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong; try again.",
            )
                .into_response()
        }
    }
}

async fn dashboard_csv(
    State(state): State<AppState>,
    session: Session,
    Query(p): Query<CsvParams>,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let (name, range) = range_of(&p.range);
    let me = Actor::new(user.id.clone(), false, Default::default());
    match state.usage.series(&me, &Filter::default(), range).await {
        Ok(s) => csv(&s, &format!("keyport-usage-{name}")),
        Err(e) => failed(e),
    }
}

async fn admin_csv(
    State(state): State<AppState>,
    session: Session,
    Query(p): Query<CsvParams>,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let (name, range) = range_of(&p.range);
    match state.usage.overview(&actor(&user), range).await {
        Ok(o) => csv(&o.series, &format!("keyport-platform-usage-{name}")),
        Err(e) => failed(e),
    }
}

async fn key_csv(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(p): Query<CsvParams>,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let Ok(id) = KeyId::parse(&id) else {
        return failed(ServiceError::NotFound);
    };
    let (name, range) = range_of(&p.range);
    match state.usage.key_series(&actor(&user), &id, range).await {
        Ok(s) => csv(&s, &format!("keyport-{id}-usage-{name}")),
        Err(e) => failed(e),
    }
}
