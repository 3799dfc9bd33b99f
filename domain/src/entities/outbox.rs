//! One message waiting to leave Keyport (an email now; webhook deliveries later), written in the
//! transaction of the event that causes it and delivered by the outbox worker.
use sea_orm::entity::prelude::*;

/// The payload is sealed with the server key (it may hold a single-use link) and erased once
/// delivered, so `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `email` (later `webhook`).
    pub channel: String,
    /// What the message is about (`verify_email`, `password_reset`, ...).
    pub kind: String,
    /// An email address (later a webhook URL).
    pub recipient: String,
    pub payload: Option<Vec<u8>>,
    /// `pending`, `sent` or `failed` (gave up).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: ChronoDateTimeUtc,
    /// A worker is sending it until then (another instance leaves it alone).
    pub locked_until: Option<ChronoDateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: ChronoDateTimeUtc,
    pub sent_at: Option<ChronoDateTimeUtc>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
