//! A URL that receives signed event deliveries: a developer's (events of their own keys) or an
//! admin's platform-wide one (every user's events).
use sea_orm::entity::prelude::*;

/// The signing secrets are sealed with the server key, so `Debug` leaves them out.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub owner_id: String,
    /// Receives every user's events (admins only).
    pub platform: bool,
    pub url: String,
    pub description: String,
    /// JSON array of event types; empty: every event.
    pub events: String,
    pub enabled: bool,
    /// Why Keyport disabled it (a day of failed deliveries); `None` when a person did.
    pub disabled_reason: Option<String>,
    pub secret: Vec<u8>,
    /// The secret before the last rotation, still signing until `previous_secret_until`.
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_until: Option<ChronoDateTimeUtc>,
    /// The first failed delivery since the last successful one.
    pub failing_since: Option<ChronoDateTimeUtc>,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("owner_id", &self.owner_id)
            .field("platform", &self.platform)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
