//! Verifications of one key with one outcome in one bucket of time: a minute, an hour or a day
//! (`width` in seconds), starting at `start` (Unix seconds, UTC).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_buckets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub width: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub start: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    pub count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
