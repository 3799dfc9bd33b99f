//! Domain values as the portal shows them: plans, APIs, key rows and details (limits as
//! enforced, with their burst), audit rows with people named by email, and number formats.
use app::session::{ApiView, AuditRow, KeyDetailView, KeyRow, PlanView};
use chrono::{DateTime, Utc};
use domain::{
    audit,
    catalog::{Api, Plan, Quota, RateLimit},
    id::{KeyId, UserId},
    keys::{Key, KeyStatus},
};

use crate::{AppState, web::utc_minutes};

pub(crate) fn thousands(n: u64) -> String {
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

pub(crate) fn per_period(limit: u32, period_s: u32) -> String {
    let unit = match period_s {
        1 => "second".to_owned(),
        60 => "minute".to_owned(),
        3600 => "hour".to_owned(),
        86_400 => "day".to_owned(),
        s => format!("{s} s"),
    };
    format!("{} per {unit}", thousands(limit as u64))
}

pub(crate) fn rate_text(r: &RateLimit) -> String {
    per_period(r.limit, r.period_s).replacen(" per ", " requests per ", 1)
}

pub(crate) fn quota_text(q: &Quota) -> String {
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
    if p.per_developer && (p.rate_limit.is_some() || p.quota.is_some()) {
        parts.push("shared by all of a developer's keys".into());
    }
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
        per_developer: p.per_developer,
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

pub(crate) fn api_view(a: &Api, keys: u64) -> ApiView {
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

pub(crate) fn key_row(k: &Key, now: DateTime<Utc>) -> KeyRow {
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
pub(crate) fn key_detail(k: &Key) -> KeyDetailView {
    let plan = k.plan.clone().unwrap_or_default();
    let from_plan = |yes: bool, shared: bool| match (yes, shared) {
        (true, true) => format!(" (plan {plan}, shared by all of the owner's keys)"),
        (true, false) => format!(" (plan {plan})"),
        _ => String::new(),
    };
    // Under a plan whose limits are shared, the shared total applies too: say which bites.
    let pool = k.effective.pool.unwrap_or_default();
    let rate_limit = match k.effective.rate {
        Some(r) => {
            let mut text = format!(
                "{}, bursts of {}{}",
                rate_text(&r.limit),
                thousands(r.burst as u64),
                from_plan(r.from_plan, r.shared)
            );
            if let (false, Some(shared)) = (r.from_plan, pool.rate_limit) {
                text += &format!(
                    "; and at most {} across all of the owner's keys (plan {plan})",
                    rate_text(&shared)
                );
            }
            text
        }
        None => "None".into(),
    };
    let quota = match k.effective.quota {
        Some(q) => {
            let mut text = format!(
                "{}{}",
                quota_text(&q.quota),
                from_plan(q.from_plan, q.shared)
            );
            if let (false, Some(shared)) = (q.from_plan, pool.quota) {
                text += &format!(
                    "; and {} across all of the owner's keys (plan {plan})",
                    quota_text(&shared)
                );
            }
            text
        }
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
        actions: k.status(Utc::now()).allowed_action_names(),
        ..Default::default()
    }
}

pub(crate) fn audit_rows(
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
pub(crate) async fn user_emails(
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
