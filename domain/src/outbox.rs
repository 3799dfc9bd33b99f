//! The outbox: every message that leaves Keyport (emails now, webhook deliveries later) is first
//! a row written in the same transaction as the event that causes it, so an event without its
//! message (or a message without its event) cannot happen. A worker on each instance sends the
//! rows that are due, with exponential backoff between attempts; the attempts and the last error
//! are kept for the admin. Rows are claimed with a conditional update (a lease), so several
//! instances never send the same row at the same time. Delivery is at-least-once: a crash between
//! the SMTP server's "250 OK" and the row's update sends that message again after the lease.
//!
//! Payloads may hold single-use links, so they are sealed with the server key and erased once
//! the message is sent.
use std::{future::Future, pin::Pin, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};

use crate::{
    Database, DomainError,
    entities::outbox,
    mail::{Mailer, Template},
    secret_key::SecretKey,
};

pub const EMAIL: &str = "email";
pub const WEBHOOK: &str = "webhook";

pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

/// How long a worker may take over one row before another may try it.
const LEASE: Duration = Duration::minutes(2);
/// Rows one pass of the worker takes at most.
const BATCH: u64 = 50;

/// When to try again after a failure, and when to give up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Wait after the first failure; each further failure doubles it...
    pub first: Duration,
    /// ...up to this.
    pub max: Duration,
    /// A message still failing this long after it was queued is given up (status `failed`;
    /// an admin can queue it again).
    pub give_up_after: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            first: Duration::seconds(10),
            max: Duration::hours(1),
            give_up_after: Duration::hours(72),
        }
    }
}

impl Retry {
    /// The wait after `attempts` failed attempts (1, 2, ...).
    pub fn backoff(&self, attempts: i32) -> Duration {
        let doublings = Ord::clamp(attempts - 1, 0, 30) as u32;
        let seconds = self.first.num_seconds().saturating_mul(1i64 << doublings);
        Duration::seconds(seconds).min(self.max)
    }
}

/// The outbox service: queue messages, deliver what is due, show the queue.
#[derive(Clone, Debug)]
pub struct Outbox {
    db: Database,
    key: SecretKey,
    wake: Arc<tokio::sync::Notify>,
}

/// One message handed to its channel: the row's facts and its opened payload.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    /// This attempt's number (1 for the first).
    pub attempt: i32,
    pub created_at: DateTime<Utc>,
    pub payload: Vec<u8>,
}

/// A boxed future, so channels can be used as `dyn Channel`.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A way out of Keyport for the outbox's rows of one `channel` value: SMTP, webhooks.
pub trait Channel: Send + Sync {
    /// The rows' `channel` value this delivers.
    fn name(&self) -> &'static str;
    /// Delivers one message; the error is what the admin (or the endpoint's owner) reads.
    fn deliver<'a>(&'a self, message: &'a Message) -> Delivery<'a>;
    /// The wait before the next attempt after `attempts` failed ones, or `None` to give up.
    fn retry_after(
        &self,
        attempts: i32,
        queued_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<Duration>;
    /// Whether the payload is erased once delivered (it may hold a single-use link).
    fn erase_when_delivered(&self) -> bool;
}

/// Email through SMTP: the payload is a [`Template`].
pub struct EmailChannel {
    pub mailer: Mailer,
    pub retry: Retry,
}

impl EmailChannel {
    pub fn new(mailer: Mailer) -> EmailChannel {
        EmailChannel {
            mailer,
            retry: Retry::default(),
        }
    }
}

impl Channel for EmailChannel {
    fn name(&self) -> &'static str {
        EMAIL
    }

    fn deliver<'a>(&'a self, message: &'a Message) -> Delivery<'a> {
        Box::pin(async move {
            let template: Template = serde_json::from_slice(&message.payload)
                .map_err(|e| format!("the message cannot be read: {e}"))?;
            self.mailer.send(&message.recipient, &template).await
        })
    }

    fn retry_after(
        &self,
        attempts: i32,
        queued_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<Duration> {
        (now - queued_at < self.retry.give_up_after).then(|| self.retry.backoff(attempts))
    }

    fn erase_when_delivered(&self) -> bool {
        true
    }
}

/// What one pass of the worker did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub sent: u64,
    pub failed: u64,
}

/// A row as the admin's queue shows it (never the payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub channel: String,
    pub kind: String,
    pub recipient: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<outbox::Model> for Entry {
    fn from(row: outbox::Model) -> Entry {
        Entry {
            id: row.id,
            channel: row.channel,
            kind: row.kind,
            recipient: row.recipient,
            status: row.status,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
            created_at: row.created_at,
            sent_at: row.sent_at,
        }
    }
}

/// How the queue stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub pending: u64,
    pub failed: u64,
    pub sent: u64,
}

impl Outbox {
    pub fn new(db: Database, key: SecretKey) -> Outbox {
        Outbox {
            db,
            key,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Queues an email in `conn` (the transaction of the event that causes it). Call
    /// [`Outbox::wake`] after the commit to send it at once.
    pub async fn enqueue_email(
        &self,
        conn: &impl ConnectionTrait,
        to: &str,
        template: &Template,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let payload = serde_json::to_vec(template)
            .map_err(|e| DomainError::Internal(format!("cannot encode a message: {e}")))?;
        self.enqueue(conn, EMAIL, template.kind(), to, &payload, now)
            .await
            .map(drop)
    }

    /// Queues a message of any channel in `conn`; returns the row's id.
    pub async fn enqueue(
        &self,
        conn: &impl ConnectionTrait,
        channel: &str,
        kind: &str,
        recipient: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<i64, DomainError> {
        let inserted = outbox::Entity::insert(outbox::ActiveModel {
            channel: Set(channel.to_owned()),
            kind: Set(kind.to_owned()),
            recipient: Set(recipient.to_owned()),
            payload: Set(Some(self.key.encrypt(payload))),
            status: Set(PENDING.to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            locked_until: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            sent_at: Set(None),
            ..Default::default()
        })
        .exec(conn)
        .await?;
        Ok(inserted.last_insert_id)
    }

    /// Tells this instance's worker that something was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers the messages due at `now` through their channels, one at a time (rows of a
    /// channel not given wait for an instance that has it).
    pub async fn deliver_due(
        &self,
        channels: &[Arc<dyn Channel>],
        now: DateTime<Utc>,
    ) -> Result<Pass, DomainError> {
        let names: Vec<&str> = channels.iter().map(|c| c.name()).collect();
        let due = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::Id)
            .filter(outbox::Column::Channel.is_in(names))
            .filter(outbox::Column::Status.eq(PENDING))
            .filter(outbox::Column::NextAttemptAt.lte(now))
            .order_by_asc(outbox::Column::Id)
            .limit(BATCH)
            .into_tuple::<i64>()
            .all(self.db.conn())
            .await?;
        let mut pass = Pass::default();
        for id in due {
            let Some(row) = self.claim(id, now).await? else {
                continue;
            };
            let Some(channel) = channels.iter().find(|c| c.name() == row.channel) else {
                continue;
            };
            let result = match self.open(&row) {
                Ok(payload) => {
                    let message = Message {
                        id: row.id,
                        kind: row.kind.clone(),
                        recipient: row.recipient.clone(),
                        attempt: row.attempts + 1,
                        created_at: row.created_at,
                        payload,
                    };
                    channel.deliver(&message).await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    self.sent(&row, channel.as_ref(), Ord::max(Utc::now(), now))
                        .await?;
                    pass.sent += 1;
                }
                Err(error) => {
                    tracing::warn!(id = row.id, channel = %row.channel, kind = %row.kind, attempts = row.attempts + 1, %error, "a message could not be delivered; it will be retried");
                    self.failed(&row, channel.as_ref(), &error, now).await?;
                    pass.failed += 1;
                }
            }
        }
        Ok(pass)
    }

    /// Takes the lease on a due row; `None` when another worker holds it or it was sent.
    async fn claim(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<outbox::Model>, DomainError> {
        let claimed = outbox::Entity::update_many()
            .col_expr(outbox::Column::LockedUntil, Expr::value(now + LEASE))
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::Status.eq(PENDING))
            .filter(
                outbox::Column::LockedUntil
                    .is_null()
                    .or(outbox::Column::LockedUntil.lte(now)),
            )
            .exec(self.db.conn())
            .await?;
        if claimed.rows_affected != 1 {
            return Ok(None);
        }
        Ok(outbox::Entity::find_by_id(id).one(self.db.conn()).await?)
    }

    fn open(&self, row: &outbox::Model) -> Result<Vec<u8>, String> {
        let sealed = row
            .payload
            .as_deref()
            .ok_or_else(|| "the message has no content".to_owned())?;
        self.key
            .decrypt(sealed)
            .map_err(|_| "the message cannot be decrypted with this server key".to_owned())
    }

    async fn sent(
        &self,
        row: &outbox::Model,
        channel: &dyn Channel,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut update = outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(SENT))
            .col_expr(outbox::Column::Attempts, Expr::value(row.attempts + 1))
            .col_expr(outbox::Column::SentAt, Expr::value(now));
        if channel.erase_when_delivered() {
            update = update.col_expr(
                outbox::Column::Payload,
                Expr::value(Option::<Vec<u8>>::None),
            );
        }
        update
            .col_expr(
                outbox::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                outbox::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(outbox::Column::Id.eq(row.id))
            .exec(self.db.conn())
            .await?;
        Ok(())
    }

    async fn failed(
        &self,
        row: &outbox::Model,
        channel: &dyn Channel,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let attempts = row.attempts + 1;
        let wait = channel.retry_after(attempts, row.created_at, now);
        let give_up = wait.is_none();
        let error: String = error.chars().take(1000).collect();
        outbox::Entity::update_many()
            .col_expr(
                outbox::Column::Status,
                Expr::value(if give_up { FAILED } else { PENDING }),
            )
            .col_expr(outbox::Column::Attempts, Expr::value(attempts))
            .col_expr(
                outbox::Column::NextAttemptAt,
                Expr::value(now + wait.unwrap_or_default()),
            )
            .col_expr(
                outbox::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(outbox::Column::LastError, Expr::value(Some(error)))
            .filter(outbox::Column::Id.eq(row.id))
            .exec(self.db.conn())
            .await?;
        Ok(())
    }

    /// The worker: delivers what is due, then waits for a wake-up, the next retry that falls
    /// due, or at most `idle` (rows queued by other instances).
    pub async fn run(self, channels: Vec<Arc<dyn Channel>>, idle: std::time::Duration) {
        loop {
            match self.deliver_due(&channels, Utc::now()).await {
                Ok(pass) if pass.sent + pass.failed > 0 => {
                    tracing::info!(sent = pass.sent, failed = pass.failed, "outbox delivered")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "cannot read the outbox"),
            }
            let wait = match self.next_due(&channels).await {
                Ok(Some(at)) => (at - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .clamp(std::time::Duration::from_millis(50), idle),
                _ => idle,
            };
            let _ = tokio::time::timeout(wait, self.wake.notified()).await;
        }
    }

    /// When the next waiting row of `channels` falls due.
    async fn next_due(
        &self,
        channels: &[Arc<dyn Channel>],
    ) -> Result<Option<DateTime<Utc>>, DomainError> {
        let names: Vec<&str> = channels.iter().map(|c| c.name()).collect();
        Ok(outbox::Entity::find()
            .select_only()
            .column(outbox::Column::NextAttemptAt)
            .filter(outbox::Column::Status.eq(PENDING))
            .filter(outbox::Column::Channel.is_in(names))
            // A row another worker holds is theirs until its lease ends.
            .filter(
                outbox::Column::LockedUntil
                    .is_null()
                    .or(outbox::Column::LockedUntil.lte(Utc::now())),
            )
            .order_by_asc(outbox::Column::NextAttemptAt)
            .limit(1)
            .into_tuple::<DateTime<Utc>>()
            .one(self.db.conn())
            .await?)
    }

    /// How many emails wait, gave up, and went out. This view and the three below are the email
    /// queue's: webhook deliveries share the table but have their own log per endpoint.
    pub async fn summary(&self) -> Result<Summary, DomainError> {
        let count = |status: &'static str| {
            outbox::Entity::find()
                .filter(outbox::Column::Channel.eq(EMAIL))
                .filter(outbox::Column::Status.eq(status))
                .count(self.db.conn())
        };
        Ok(Summary {
            pending: count(PENDING).await?,
            failed: count(FAILED).await?,
            sent: count(SENT).await?,
        })
    }

    /// A page of the queue, newest first; `status` narrows it.
    pub async fn list(
        &self,
        status: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<Entry>, u64), DomainError> {
        let mut query = outbox::Entity::find().filter(outbox::Column::Channel.eq(EMAIL));
        if let Some(status) = status {
            query = query.filter(outbox::Column::Status.eq(status));
        }
        let total = query.clone().count(self.db.conn()).await?;
        let rows = query
            .order_by_desc(outbox::Column::Id)
            .limit(limit)
            .offset(offset)
            .all(self.db.conn())
            .await?;
        Ok((rows.into_iter().map(Entry::from).collect(), total))
    }

    /// The messages not sent yet (waiting or given up), newest first.
    pub async fn unsent(&self, limit: u64) -> Result<Vec<Entry>, DomainError> {
        Ok(outbox::Entity::find()
            .filter(outbox::Column::Channel.eq(EMAIL))
            .filter(outbox::Column::Status.ne(SENT))
            .order_by_desc(outbox::Column::Id)
            .limit(limit)
            .all(self.db.conn())
            .await?
            .into_iter()
            .map(Entry::from)
            .collect())
    }

    /// Queues an email that gave up (or waits) for an attempt now; `false` when it was sent
    /// already or does not exist (webhook deliveries are redelivered from their endpoint).
    pub async fn retry_now(&self, id: i64, now: DateTime<Utc>) -> Result<bool, DomainError> {
        let result = outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(PENDING))
            .col_expr(outbox::Column::NextAttemptAt, Expr::value(now))
            .col_expr(outbox::Column::CreatedAt, Expr::value(now))
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::Channel.eq(EMAIL))
            .filter(outbox::Column::Status.ne(SENT))
            .filter(outbox::Column::Payload.is_not_null())
            .exec(self.db.conn())
            .await?;
        if result.rows_affected == 1 {
            self.wake();
        }
        Ok(result.rows_affected == 1)
    }
}

impl Outbox {
    /// Every queued message with its content, oldest first: what tests read instead of a
    /// mailbox when no SMTP server is involved.
    #[cfg(feature = "testing")]
    pub async fn peek(&self) -> Result<Vec<(Entry, Template)>, DomainError> {
        let rows = outbox::Entity::find()
            .order_by_asc(outbox::Column::Id)
            .all(self.db.conn())
            .await?;
        let mut out = Vec::new();
        for row in rows {
            if let Some(template) = self
                .open(&row)
                .ok()
                .and_then(|plain| serde_json::from_slice(&plain).ok())
            {
                out.push((Entry::from(row), template));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_an_hour() {
        let r = Retry::default();
        let waits: Vec<i64> = (1..=11).map(|n| r.backoff(n).num_seconds()).collect();
        assert_eq!(
            waits,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(r.backoff(10_000).num_seconds(), 3600);
    }

    #[test]
    fn an_hour_of_smtp_outage_is_retried_well_within_the_give_up_time() {
        let r = Retry::default();
        let mut waited = Duration::zero();
        let mut attempts = 0;
        while waited < Duration::hours(1) {
            attempts += 1;
            waited += r.backoff(attempts);
        }
        assert!(waited < r.give_up_after, "{waited}");
    }
}
