//! Server-side sessions as rows: the browser holds only the random id, and the table holds only
//! its SHA-256 (a copy of the table, or of a backup, opens no session). Expired rows are never
//! returned and are pruned in the background; a user's sessions can be listed and ended.
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::OnConflict};

use crate::{Database, DomainError, entities::session};

/// What is stored for a session id (a bearer secret): its SHA-256, in hex.
pub fn digest(id: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A stored session: the [`digest`] of its id, JSON data and owner.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The SHA-256 of the session id (see [`digest`]), never the id itself.
    pub id: String,
    pub data: String,
    pub expires_at: DateTime<Utc>,
    pub user_id: Option<String>,
}

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl From<session::Model> for StoredSession {
    fn from(row: session::Model) -> Self {
        StoredSession {
            id: row.id,
            data: row.data,
            expires_at: row.expires_at,
            user_id: row.user_id,
        }
    }
}

fn active_model(s: &StoredSession) -> session::ActiveModel {
    session::ActiveModel {
        id: Set(s.id.clone()),
        data: Set(s.data.clone()),
        expires_at: Set(s.expires_at),
        user_id: Set(s.user_id.clone()),
    }
}

/// Inserts a new session; `Ok(false)` if the id is already taken (the caller picks another).
pub async fn create(db: &Database, s: &StoredSession) -> Result<bool, DomainError> {
    let result = session::Entity::insert(active_model(s))
        .on_conflict(
            OnConflict::column(session::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db.conn())
        .await?;
    Ok(result == 1)
}

/// Inserts or replaces a session.
pub async fn save(db: &Database, s: &StoredSession) -> Result<(), DomainError> {
    session::Entity::insert(active_model(s))
        .on_conflict(
            OnConflict::column(session::Column::Id)
                .update_columns([
                    session::Column::Data,
                    session::Column::ExpiresAt,
                    session::Column::UserId,
                ])
                .to_owned(),
        )
        .exec_without_returning(db.conn())
        .await?;
    Ok(())
}

/// The session with this id, unless it has expired.
pub async fn load(
    db: &Database,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<StoredSession>, DomainError> {
    Ok(session::Entity::find_by_id(id.to_owned())
        .filter(session::Column::ExpiresAt.gt(now))
        .one(db.conn())
        .await?
        .map(StoredSession::from))
}

pub async fn delete(db: &Database, id: &str) -> Result<(), DomainError> {
    session::Entity::delete_by_id(id.to_owned())
        .exec(db.conn())
        .await?;
    Ok(())
}

/// A user's live sessions.
pub async fn list_for_user(
    db: &Database,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<StoredSession>, DomainError> {
    Ok(session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::ExpiresAt.gt(now))
        .all(db.conn())
        .await?
        .into_iter()
        .map(StoredSession::from)
        .collect())
}

/// Ends all of a user's sessions except `keep` (e.g. "sign out other sessions", or all of them
/// when an admin disables the user). Returns how many ended.
pub async fn delete_for_user(
    db: &Database,
    user_id: &str,
    keep: Option<&str>,
) -> Result<u64, DomainError> {
    let mut query = session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
    if let Some(keep) = keep {
        query = query.filter(session::Column::Id.ne(keep));
    }
    Ok(query.exec(db.conn()).await?.rows_affected)
}

/// A stable, non-secret name for a session, from its stored [`digest`]: its first 16 hex digits.
pub fn handle(digest: &str) -> String {
    digest.chars().take(16).collect()
}

/// Ends one of `user_id`'s sessions by its handle; `false` if there is no such session.
pub async fn delete_by_handle(
    db: &Database,
    user_id: &str,
    handle: &str,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    for s in list_for_user(db, user_id, now).await? {
        if self::handle(&s.id) == handle {
            delete(db, &s.id).await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes expired sessions; returns how many.
pub async fn delete_expired(db: &Database, now: DateTime<Utc>) -> Result<u64, DomainError> {
    Ok(session::Entity::delete_many()
        .filter(session::Column::ExpiresAt.lte(now))
        .exec(db.conn())
        .await?
        .rows_affected)
}
