//! One token of a leak report and what Keyport did about it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "leak_reports")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub received_at: ChronoDateTimeUtc,
    /// `partner:<key identifier>` or `admin:<user id>`.
    pub reporter: String,
    /// SHA-256 of the reported token (the token itself is not kept).
    pub token_hash: String,
    pub token_type: String,
    pub url: String,
    pub source: String,
    /// `true_positive` or `false_positive`.
    pub label: String,
    pub key_id: Option<String>,
    /// `revoked`, `disabled`, `already revoked`, `already disabled` or `none`.
    pub action: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
