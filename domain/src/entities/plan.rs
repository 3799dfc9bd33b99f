//! A plan: the limits a user's keys get unless the key sets tighter ones.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub name: String,
    pub rate_limit: Option<i32>,
    pub rate_period_s: Option<i32>,
    pub rate_burst: Option<i32>,
    pub quota_limit: Option<i64>,
    pub quota_period: Option<String>,
    pub max_active_keys: Option<i32>,
    pub max_lifetime_days: Option<i32>,
    pub is_default: bool,
    pub created_at: ChronoDateTimeUtc,
    /// `key`: each key gets the limits; `developer`: all of a developer's keys share them.
    pub limit_scope: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
