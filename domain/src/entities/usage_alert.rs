//! An anomaly noticed in a key's usage (see `crate::usage::alerts`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub key_id: String,
    pub owner_id: String,
    /// `spike`, `denials` or `dormant_traffic`.
    pub rule: String,
    /// The window the rule looked at, Unix seconds.
    pub window_start: i64,
    pub window_end: i64,
    pub observed: i64,
    pub baseline: i64,
    /// Why it fired, for people.
    pub detail: String,
    pub created_at: ChronoDateTimeUtc,
    pub acknowledged_at: Option<ChronoDateTimeUtc>,
    pub acknowledged_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
