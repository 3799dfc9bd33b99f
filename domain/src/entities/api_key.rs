//! An API key as stored: SHA-256 of the key and its display start, never the key itself.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// Insertion order; the cursor of paginated lists.
    #[sea_orm(primary_key)]
    pub seq: i64,
    #[sea_orm(unique)]
    pub id: String,
    pub owner_id: String,
    pub api_id: String,
    pub name: String,
    pub start: String,
    #[sea_orm(unique)]
    pub hash: String,
    /// JSON array of scope names.
    pub scopes: String,
    /// JSON array of addresses and CIDRs; empty means any.
    pub ip_allowlist: String,
    pub rate_limit: Option<i32>,
    pub rate_period_s: Option<i32>,
    pub quota_limit: Option<i64>,
    pub quota_period: Option<String>,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    pub expires_at: Option<ChronoDateTimeUtc>,
    pub last_used_at: Option<ChronoDateTimeUtc>,
    pub revoked_at: Option<ChronoDateTimeUtc>,
    pub revoke_reason: Option<String>,
    pub replaces: Option<String>,
    pub replaced_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
