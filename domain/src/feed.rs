//! The change feed between instances that share one PostgreSQL database, through PostgreSQL's
//! own `LISTEN/NOTIFY` (no extra engine). Each instance publishes every committed key change on
//! the `keyport_changes` channel ([`PgFeed`], a [`KeyChanges`] listener beside the verifier) and
//! applies the changes of the others as they arrive ([`follow`]), so a key revoked on one
//! instance is refused on every other within milliseconds instead of at the next poll.
//!
//! NOTIFY is delivered only to connected listeners: a change sent while an instance's listening
//! connection is down is lost. [`follow`] therefore re-reads the keys changed meanwhile each time
//! it (re)connects, and the server's periodic `updated_at` poll stays as the safety net.
//!
//! The listener holds its own connection, opened from the database URL (not taken from the
//! pool): LISTEN needs a session, so this URL must not go through a transaction-mode pooler.
//!
//! With Redis configured, [`RedisFeed`] and [`follow_redis`] carry the same messages over a Redis
//! channel instead (PUBLISH / SUBSCRIBE), with the same catch-up after every reconnection.
use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, sqlx::postgres::PgListener};
use serde::{Deserialize, Serialize};

use crate::{
    Database, DomainError,
    changes::{Applied, Change, KeyChanges},
    verification::verifier::Verifier,
};

/// The PostgreSQL channel Keyport's instances talk on.
pub const CHANNEL: &str = "keyport_changes";

/// One message on the channel: which instance made the change (it skips its own), and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub origin: String,
    pub change: Change,
    /// When it was published (Unix milliseconds), for the feed's lag; absent in messages of
    /// older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<i64>,
}

/// Messages applied from other instances, and the lag of the last one (publication to
/// application, in milliseconds; clocks of instances differ slightly), for metrics.
static APPLIED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static LAST_LAG_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// (messages applied since start, the last one's lag in milliseconds).
pub fn applied() -> (u64, i64) {
    use std::sync::atomic::Ordering::Relaxed;
    (APPLIED.load(Relaxed), LAST_LAG_MS.load(Relaxed))
}

/// A random name for this process, so it can tell its own messages from the others'.
pub fn instance_id() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// Publishes every change this instance makes (after its commit) to the other instances.
#[derive(Clone, Debug)]
pub struct PgFeed {
    db: Database,
    origin: Arc<str>,
}

impl PgFeed {
    async fn publish(&self, change: Change) -> Result<(), sea_orm::DbErr> {
        let payload = serde_json::to_string(&Message {
            origin: self.origin.to_string(),
            change,
            at_ms: Some(Utc::now().timestamp_millis()),
        })
        .expect("a change serializes");
        self.db
            .conn()
            .execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), payload.into()],
            ))
            .await?;
        Ok(())
    }
}

impl KeyChanges for PgFeed {
    fn apply(&self, change: Change) -> Applied<'_> {
        Box::pin(async move {
            if let Err(error) = self.publish(change.clone()).await {
                // The other instances' poll picks the change up a few seconds later.
                tracing::warn!(%error, ?change, "cannot publish a key change to other instances");
            }
        })
    }
}

/// Follows the other instances' changes for as long as the process runs: listens on
/// [`CHANNEL`] over its own connection to `url`, applies each change (not our own) to the
/// verifier, and after every (re)connection re-reads the keys changed while it was not
/// listening. Never returns; reconnects with a pause after an error.
pub async fn follow(url: String, origin: String, verifier: Verifier) {
    let mut listening_since: Option<DateTime<Utc>> = None;
    let mut logged_down = false;
    loop {
        let lost_at = Utc::now();
        match listen(&url).await {
            Ok(mut listener) => {
                if std::mem::take(&mut logged_down) {
                    tracing::info!("listening to other instances' key changes again");
                }
                // Whatever changed while not listening (or since start) is read once now.
                catch_up(&verifier, listening_since.unwrap_or(lost_at)).await;
                listening_since = Some(Utc::now());
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            apply(&verifier, &origin, notification.payload()).await;
                            listening_since = Some(Utc::now());
                        }
                        // The connection dropped and sqlx listened again: messages in between
                        // are lost, so read what changed.
                        Ok(None) => {
                            let since = listening_since.unwrap_or_else(Utc::now);
                            catch_up(&verifier, since).await;
                            listening_since = Some(Utc::now());
                        }
                        Err(error) => {
                            tracing::warn!(%error, "the key change feed's connection failed; reconnecting");
                            logged_down = true;
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                if !logged_down {
                    tracing::warn!(%error, "cannot listen to other instances' key changes; \
                        relying on the periodic refresh until it works");
                    logged_down = true;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(url: &str) -> Result<PgListener, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Re-reads keys changed since a little before `since` (clocks of instances differ slightly).
async fn catch_up(verifier: &Verifier, since: DateTime<Utc>) {
    if let Err(error) = verifier
        .refresh_changed_since(since - chrono::Duration::seconds(5))
        .await
    {
        tracing::error!(%error, "cannot re-read keys changed while not listening");
    }
}

async fn apply(verifier: &Verifier, origin: &str, payload: &str) {
    match serde_json::from_str::<Message>(payload) {
        Ok(message) if message.origin == origin => {}
        Ok(message) => {
            verifier.apply(message.change).await;
            use std::sync::atomic::Ordering::Relaxed;
            APPLIED.fetch_add(1, Relaxed);
            if let Some(at) = message.at_ms {
                LAST_LAG_MS.store(Utc::now().timestamp_millis() - at, Relaxed);
            }
        }
        Err(error) => tracing::warn!(%error, payload, "ignoring an unreadable key change message"),
    }
}

/// The change feed an instance uses: Redis when configured, else PostgreSQL's NOTIFY on
/// PostgreSQL, else none (one SQLite node has no one to tell). Its `Debug` form names only the
/// engine (the URLs may hold passwords).
#[derive(Clone)]
pub enum Feed {
    Postgres { url: String },
    Redis(redis::Client),
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Feed::Postgres { .. } => "Feed::Postgres",
            Feed::Redis(_) => "Feed::Redis",
        })
    }
}

impl Feed {
    pub fn choose(db: &Database, redis_url: Option<&str>) -> Result<Option<Feed>, DomainError> {
        if let Some(url) = redis_url.map(str::trim).filter(|u| !u.is_empty()) {
            let client = redis::Client::open(url).map_err(|e| {
                DomainError::Config(format!(
                    "the Redis URL {} is not usable: {e}",
                    crate::db::redact_url(url)
                ))
            })?;
            return Ok(Some(Feed::Redis(client)));
        }
        Ok(
            (db.backend() == DatabaseBackend::Postgres).then(|| Feed::Postgres {
                url: db.url().to_owned(),
            }),
        )
    }

    /// The listener that publishes this instance's changes, for the services' `with_changes`.
    pub fn publisher(
        &self,
        db: &Database,
        origin: &str,
    ) -> Result<Arc<dyn KeyChanges>, DomainError> {
        Ok(match self {
            Feed::Postgres { .. } => Arc::new(PgFeed {
                db: db.clone(),
                origin: origin.into(),
            }),
            Feed::Redis(client) => Arc::new(
                RedisFeed::new(client.clone(), origin)
                    .map_err(|e| DomainError::Config(format!("cannot use Redis: {e}")))?,
            ),
        })
    }

    /// Applies the other instances' changes to `verifier` for as long as the process runs.
    pub async fn follow(self, origin: String, verifier: Verifier) {
        match self {
            Feed::Postgres { url } => follow(url, origin, verifier).await,
            Feed::Redis(client) => follow_redis(client, origin, verifier).await,
        }
    }
}

/// The Redis channel Keyport's instances talk on, when Redis is configured.
pub const REDIS_CHANNEL: &str = "keyport:changes";

/// How long publishing a change may wait for Redis: a change is made by a request, which must not
/// hang on an unreachable Redis (the other instances' poll is the safety net).
const REDIS_PUBLISH_TIMEOUT: Duration = Duration::from_millis(500);

/// Publishes every change this instance makes on [`REDIS_CHANNEL`]. Connects lazily and
/// reconnects by itself, so an unreachable Redis at start is not an error.
#[derive(Clone)]
pub struct RedisFeed {
    conn: redis::aio::ConnectionManager,
    origin: Arc<str>,
}

impl std::fmt::Debug for RedisFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFeed")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl RedisFeed {
    pub fn new(client: redis::Client, origin: &str) -> Result<Self, redis::RedisError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_PUBLISH_TIMEOUT))
            .set_response_timeout(Some(REDIS_PUBLISH_TIMEOUT))
            .set_number_of_retries(1);
        Ok(Self {
            conn: redis::aio::ConnectionManager::new_lazy_with_config(client, config)?,
            origin: origin.into(),
        })
    }

    async fn publish(&self, change: Change) -> Result<(), redis::RedisError> {
        let payload = serde_json::to_string(&Message {
            origin: self.origin.to_string(),
            change,
            at_ms: Some(Utc::now().timestamp_millis()),
        })
        .expect("a change serializes");
        let mut conn = self.conn.clone();
        match tokio::time::timeout(
            REDIS_PUBLISH_TIMEOUT,
            redis::cmd("PUBLISH")
                .arg(REDIS_CHANNEL)
                .arg(payload)
                .query_async::<i64>(&mut conn),
        )
        .await
        {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "Redis did not answer in time",
            ))),
        }
    }
}

impl KeyChanges for RedisFeed {
    fn apply(&self, change: Change) -> Applied<'_> {
        Box::pin(async move {
            if let Err(error) = self.publish(change.clone()).await {
                tracing::warn!(%error, ?change, "cannot publish a key change on Redis");
            }
        })
    }
}

/// [`follow`] over Redis: subscribes to [`REDIS_CHANNEL`], applies the other instances'
/// changes, and re-reads the keys changed while it was not subscribed after every reconnection.
/// Never returns.
pub async fn follow_redis(client: redis::Client, origin: String, verifier: Verifier) {
    use futures_util::StreamExt;
    let mut listening_since: Option<DateTime<Utc>> = None;
    let mut logged_down = false;
    loop {
        let lost_at = Utc::now();
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(REDIS_CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(Duration::from_secs(2), subscribed).await {
            Ok(Ok(pubsub)) => {
                if std::mem::take(&mut logged_down) {
                    tracing::info!("following other instances' key changes on Redis again");
                }
                catch_up(&verifier, listening_since.unwrap_or(lost_at)).await;
                listening_since = Some(Utc::now());
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    match message.get_payload::<String>() {
                        Ok(payload) => apply(&verifier, &origin, &payload).await,
                        Err(error) => {
                            tracing::warn!(%error, "ignoring an unreadable Redis message")
                        }
                    }
                    listening_since = Some(Utc::now());
                }
                tracing::warn!("the Redis change feed's connection ended; reconnecting");
                logged_down = true;
            }
            Ok(Err(error)) => {
                if !std::mem::replace(&mut logged_down, true) {
                    tracing::warn!(%error, "cannot subscribe to key changes on Redis; \
                        relying on the periodic refresh until it works");
                }
            }
            Err(_) => {
                if !std::mem::replace(&mut logged_down, true) {
                    tracing::warn!(
                        "Redis did not answer a subscription within 2 s; \
                        relying on the periodic refresh until it works"
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_small_tagged_json() {
        let text = serde_json::to_string(&Message {
            origin: "a1".into(),
            change: Change::Key("key_1".into()),
            at_ms: None,
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"origin":"a1","change":{"kind":"key","id":"key_1"}}"#
        );
        let all: Message =
            serde_json::from_str(r#"{"origin":"b","change":{"kind":"all"}}"#).unwrap();
        assert_eq!(all.change, Change::All);
    }

    #[tokio::test]
    async fn an_unusable_redis_url_is_a_clear_error_without_its_password() {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        let err = Feed::choose(&db, Some("http://user:s3cret@cache:6379")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("the Redis URL http://user:***@cache:6379 is not usable"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        // No Redis and SQLite: no feed; a Redis URL: Redis, whatever the database.
        assert!(Feed::choose(&db, None).unwrap().is_none());
        assert!(matches!(
            Feed::choose(&db, Some("redis://127.0.0.1:6379")).unwrap(),
            Some(Feed::Redis(_))
        ));
    }

    #[test]
    fn instance_ids_differ() {
        assert_ne!(instance_id(), instance_id());
    }
}
