//! A version of an API and its lifecycle status.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_versions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub api_id: String,
    pub name: String,
    pub status: String,
    pub sunset_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
