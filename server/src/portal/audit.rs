//! The audit log page (`/audit`): filters by actor, action, target and days, newest first.
use app::session::{AuditFilterView, PageData};
use chrono::Duration;
use domain::{
    accounts::{Role, User},
    audit,
};
use serde::Deserialize;

use super::forms::*;
use super::views::*;
use crate::AppState;

pub(crate) const AUDIT_PER_PAGE: u64 = 50;

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
