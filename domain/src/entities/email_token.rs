//! A single-use link mailed to someone (verify an address, reset a password, accept an
//! invitation), stored as the SHA-256 of its token: the database never holds a usable link.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    /// The account it acts on; `None` for an invitation (the account does not exist yet).
    pub user_id: Option<String>,
    /// `verify_email`, `reset_password` or `invite`.
    pub purpose: String,
    /// The address it was sent to (invitations: the address the new account gets).
    pub email: Option<String>,
    /// JSON: what else the link carries (an invitation's role and plan).
    pub details: String,
    pub created_at: ChronoDateTimeUtc,
    pub expires_at: ChronoDateTimeUtc,
    pub used_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
