//! Instance-wide settings stored in the database (e.g. the instance id shown to operators).
use chrono::Utc;
use sea_orm::{ActiveValue::Set, EntityTrait, sea_query::OnConflict};

use crate::{Database, DomainError, entities::setting};

/// Reads one setting, `None` when it was never written.
pub async fn get(db: &Database, key: &str) -> Result<Option<String>, DomainError> {
    Ok(setting::Entity::find_by_id(key.to_owned())
        .one(db.conn())
        .await?
        .map(|row| row.value))
}

/// Writes one setting, replacing any earlier value.
pub async fn set(db: &Database, key: &str, value: &str) -> Result<(), DomainError> {
    let row = setting::ActiveModel {
        key: Set(key.to_owned()),
        value: Set(value.to_owned()),
        updated_at: Set(Utc::now()),
    };
    setting::Entity::insert(row)
        .on_conflict(
            OnConflict::column(setting::Column::Key)
                .update_columns([setting::Column::Value, setting::Column::UpdatedAt])
                .to_owned(),
        )
        .exec(db.conn())
        .await?;
    Ok(())
}
