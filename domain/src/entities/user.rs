//! An account: developer or admin.
use sea_orm::entity::prelude::*;

/// Holds the password hash and the encrypted TOTP seed, so it is deliberately not `Serialize`
/// and its `Debug` leaves them out.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub status: String,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_enabled_at: Option<ChronoDateTimeUtc>,
    pub totp_last_step: Option<i64>,
    pub created_at: ChronoDateTimeUtc,
    pub last_sign_in_at: Option<ChronoDateTimeUtc>,
    /// `None`: the default plan.
    pub plan_id: Option<String>,
    /// When its owner proved they read mail at `email` (a link, or an invitation accepted).
    pub email_verified_at: Option<ChronoDateTimeUtc>,
    /// JSON: the email notifications switched from their default (`{"new_sign_in": true}`).
    pub notification_prefs: String,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("status", &self.status)
            .field("totp_enabled_at", &self.totp_enabled_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::recovery_code::Entity")]
    RecoveryCode,
}

impl Related<super::recovery_code::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RecoveryCode.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
