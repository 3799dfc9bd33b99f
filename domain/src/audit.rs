//! The audit log: who did what to which target, from where, when (UTC).
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::{Database, DomainError, entities::audit_event};

/// Where a request came from, as recorded in the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A short name for a browser from its user agent ("Chrome on Linux").
pub fn describe_user_agent(ua: &str) -> String {
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/", "curl/"]
        .iter()
        .find(|b| ua.contains(**b))
        .map(|b| match *b {
            "Edg/" => "Edge",
            "Firefox/" => "Firefox",
            "Chrome/" => "Chrome",
            "Safari/" => "Safari",
            _ => "curl",
        });
    let os = ["Windows", "Mac OS X", "Android", "iPhone", "Linux"]
        .iter()
        .find(|o| ua.contains(**o))
        .map(|o| match *o {
            "Mac OS X" => "macOS",
            "iPhone" => "iOS",
            other => other,
        });
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        _ => ua.chars().take(60).collect(),
    }
}

/// One audited action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub actor_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: String,
}

impl From<audit_event::Model> for Event {
    fn from(row: audit_event::Model) -> Event {
        Event {
            at: row.at,
            actor_id: row.actor_id,
            action: row.action,
            target: row.target,
            ip: row.ip,
            user_agent: row.user_agent,
            details: row.details,
        }
    }
}

/// Appends an event. Pass the transaction of the change it records, so the change and its
/// audit row commit together or not at all.
pub async fn record(
    conn: &impl ConnectionTrait,
    ctx: &RequestContext,
    actor_id: Option<&str>,
    action: &str,
    target: Option<&str>,
    details: serde_json::Value,
) -> Result<(), DomainError> {
    let user_agent = ctx
        .user_agent
        .as_deref()
        .map(|ua| ua.chars().take(512).collect::<String>());
    audit_event::Entity::insert(audit_event::ActiveModel {
        at: Set(Utc::now()),
        actor_id: Set(actor_id.map(str::to_owned)),
        action: Set(action.to_owned()),
        target: Set(target.map(str::to_owned)),
        ip: Set(ctx.ip.clone()),
        user_agent: Set(user_agent),
        details: Set(details.to_string()),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The newest events first, optionally only those by or about one user.
pub async fn recent(
    db: &Database,
    involving: Option<&str>,
    limit: u64,
) -> Result<Vec<Event>, DomainError> {
    let mut query = audit_event::Entity::find()
        .order_by_desc(audit_event::Column::Id)
        .limit(limit);
    if let Some(user) = involving {
        query = query.filter(
            audit_event::Column::ActorId
                .eq(user)
                .or(audit_event::Column::Target.eq(user)),
        );
    }
    Ok(query
        .all(db.conn())
        .await?
        .into_iter()
        .map(Event::from)
        .collect())
}

/// Which events a search returns.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only events about this user: by them, on their account, or on their keys. Admins pass
    /// `None` to see everyone's.
    pub involving: Option<String>,
    pub actor_id: Option<String>,
    /// An exact action (`key.revoke`) or a family (`key.`, ending with a dot).
    pub action: Option<String>,
    pub target: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// An event with its id (the paging cursor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub event: Event,
}

/// Newest first, `limit` at most, older than `before` (an entry id) when given. Returns the
/// entries and the cursor for the next page.
pub async fn search(
    db: &Database,
    filter: &Filter,
    before: Option<i64>,
    limit: u64,
) -> Result<(Vec<Entry>, Option<i64>), DomainError> {
    use sea_orm::{Condition, sea_query::Query};

    use crate::entities::api_key;

    let mut query = audit_event::Entity::find().order_by_desc(audit_event::Column::Id);
    if let Some(user) = &filter.involving {
        let own_keys = Query::select()
            .column(api_key::Column::Id)
            .from(api_key::Entity)
            .and_where(api_key::Column::OwnerId.eq(user.clone()))
            .to_owned();
        query = query.filter(
            Condition::any()
                .add(audit_event::Column::ActorId.eq(user.clone()))
                .add(audit_event::Column::Target.eq(user.clone()))
                .add(audit_event::Column::Target.in_subquery(own_keys)),
        );
    }
    if let Some(actor) = filter.actor_id.as_deref().filter(|a| !a.is_empty()) {
        query = query.filter(audit_event::Column::ActorId.eq(actor));
    }
    if let Some(action) = filter.action.as_deref().filter(|a| !a.is_empty()) {
        query = if action.ends_with('.') {
            query.filter(audit_event::Column::Action.starts_with(action))
        } else {
            query.filter(audit_event::Column::Action.eq(action))
        };
    }
    if let Some(target) = filter.target.as_deref().filter(|t| !t.is_empty()) {
        query = query.filter(audit_event::Column::Target.eq(target));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_event::Column::At.gte(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_event::Column::At.lt(to));
    }
    if let Some(before) = before {
        query = query.filter(audit_event::Column::Id.lt(before));
    }
    let rows = query.limit(limit + 1).all(db.conn()).await?;
    let more = rows.len() as u64 > limit;
    let entries: Vec<Entry> = rows
        .into_iter()
        .take(limit as usize)
        .map(|row| Entry {
            id: row.id,
            event: Event::from(row),
        })
        .collect();
    let next = if more {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok((entries, next))
}
