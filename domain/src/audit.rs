//! The audit log: who did what to which target, from where, when (UTC).
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::{Database, DomainError, entities::audit_event};

/// Where a request came from, as recorded in the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
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

/// Appends an event.
pub async fn record(
    db: &Database,
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
    .exec_without_returning(db.conn())
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
        .map(|row| Event {
            at: row.at,
            actor_id: row.actor_id,
            action: row.action,
            target: row.target,
            ip: row.ip,
            user_agent: row.user_agent,
            details: row.details,
        })
        .collect())
}
