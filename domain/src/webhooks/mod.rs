//! Webhooks: developers register endpoints for events of their own keys, admins for events of
//! the whole platform. An event is queued in the transaction of the change that causes it, one
//! outbox row (channel `webhook`) per endpoint that wants it, and delivered by the outbox worker
//! through [`Sender`]: signed the Standard Webhooks way, at least once, with the same
//! `webhook-id` on every retry. Endpoint URLs pass the [`guard`] (no internal addresses) when
//! saved and at every delivery.
pub mod guard;
mod sender;
pub mod signing;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use sender::{SCHEDULE, Sender};
pub use signing::Secret;

use crate::{
    Database, DomainError, audit,
    entities::{outbox, webhook_attempt, webhook_endpoint},
    id,
    outbox::{Outbox, PENDING, WEBHOOK},
    secret_key::SecretKey,
    service::{Actor, FieldErrors, ServiceError, deny},
};

/// Every event type an endpoint can ask for.
pub const EVENTS: [&str; 14] = [
    "key.created",
    "key.updated",
    "key.rotated",
    "key.revoked",
    "key.disabled",
    "key.enabled",
    "key.expiring",
    "key.expired",
    "key.leaked",
    "usage.anomaly",
    "quota.warning",
    "quota.exceeded",
    "user.created",
    "user.disabled",
];
/// What "Send test event" sends (to that endpoint only, whatever its filter).
pub const TEST_EVENT: &str = "webhook.test";
/// Most endpoints one user may have.
pub const MAX_ENDPOINTS: u64 = 20;
/// How long a rotated-out secret keeps signing, so receivers can switch without a gap.
pub const OLD_SECRET_VALID: Duration = Duration::hours(24);

/// Events about users reach only platform-wide endpoints (an admin's).
fn platform_only(event: &str) -> bool {
    event.starts_with("user.")
}

/// Something that happened, as endpoints receive it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// One of [`EVENTS`].
    pub kind: &'static str,
    /// Whose it is: their own endpoints receive it (besides platform-wide ones).
    pub owner_id: Option<String>,
    pub data: Value,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The sealed content of a webhook outbox row.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Payload {
    /// The `webhook-id` header, the same on every attempt.
    msg_id: String,
    /// The exact bytes signed and sent: `{"type","timestamp","data"}`.
    body: String,
}

/// An endpoint as its owner sees it (never the secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub owner_id: String,
    pub platform: bool,
    pub url: String,
    pub description: String,
    /// Empty: every event.
    pub events: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    /// While the previous secret still signs, until when.
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    fn from_row(row: webhook_endpoint::Model, now: DateTime<Utc>) -> Endpoint {
        Endpoint {
            events: serde_json::from_str(&row.events).unwrap_or_default(),
            previous_secret_until: row.previous_secret_until.filter(|u| *u > now),
            id: row.id,
            owner_id: row.owner_id,
            platform: row.platform,
            url: row.url,
            description: row.description,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            failing_since: row.failing_since,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    /// Whether this endpoint wants `kind` (by its filter).
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == kind)
    }
}

/// What a user submits to register an endpoint.
#[derive(Clone, Debug, Default)]
pub struct NewEndpoint {
    pub url: String,
    pub description: String,
    /// Empty: every event.
    pub events: Vec<String>,
    /// Every user's events (admins only).
    pub platform: bool,
}

/// A change to an endpoint; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// An endpoint and its signing secret, right after creation or rotation (the secret is shown
/// this once; Keyport keeps it sealed to sign with).
#[derive(Debug)]
pub struct WithSecret {
    pub endpoint: Endpoint,
    pub secret: Secret,
}

/// One delivery (an outbox row) and its attempts, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub msg_id: String,
    pub event: String,
    /// `pending`, `sent` or `failed` (gave up).
    pub status: String,
    pub attempts: Vec<Attempt>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

/// The webhooks service: endpoints, their deliveries, and queuing events.
#[derive(Clone, Debug)]
pub struct Webhooks {
    db: Database,
    key: SecretKey,
    outbox: Outbox,
    allow_private: bool,
}

impl Webhooks {
    pub fn new(db: Database, key: SecretKey, outbox: Outbox) -> Webhooks {
        Webhooks {
            db,
            key,
            outbox,
            allow_private: false,
        }
    }

    /// `--webhooks-allow-private`: endpoints may be internal addresses (tests, closed networks).
    pub fn allowing_private_targets(mut self, allow: bool) -> Webhooks {
        self.allow_private = allow;
        self
    }

    pub fn allows_private_targets(&self) -> bool {
        self.allow_private
    }

    /// The delivery channel for the outbox worker. `mail` (when email is on) tells an owner that
    /// Keyport disabled their endpoint.
    pub fn sender(&self, mail: Option<Outbox>) -> Sender {
        Sender::new(self.db.clone(), self.key.clone(), mail, self.allow_private)
    }

    /// Tells this instance's worker that something was queued.
    pub fn wake(&self) {
        self.outbox.wake();
    }

    /// Queues `event` in `conn` (the transaction of the change) for every enabled endpoint that
    /// wants it; returns how many deliveries were queued. Call [`Webhooks::wake`] after the
    /// commit.
    pub async fn emit(
        &self,
        conn: &impl ConnectionTrait,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<u64, DomainError> {
        let endpoints = self
            .listening(conn, &[event.kind], event.owner_id.as_deref(), now)
            .await?;
        self.emit_to(conn, &endpoints, event, now).await
    }

    /// The enabled endpoints that want at least one of `kinds` of events about `owner`'s things
    /// (platform endpoints hear everyone's): callers that must load data to build an event ask
    /// this first, and build nothing when no one listens.
    pub async fn listening(
        &self,
        conn: &impl ConnectionTrait,
        kinds: &[&str],
        owner: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Endpoint>, DomainError> {
        let mut whose = Condition::any().add(webhook_endpoint::Column::Platform.eq(true));
        if let Some(owner) = owner
            && kinds.iter().any(|k| !platform_only(k))
        {
            whose = whose.add(webhook_endpoint::Column::OwnerId.eq(owner));
        }
        Ok(webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .filter(whose)
            .all(conn)
            .await?
            .into_iter()
            .map(|row| Endpoint::from_row(row, now))
            .filter(|e| kinds.iter().any(|k| e.wants(k)))
            .collect())
    }

    /// Queues `event` for those of `endpoints` that want it (see [`Webhooks::listening`]).
    pub async fn emit_to(
        &self,
        conn: &impl ConnectionTrait,
        endpoints: &[Endpoint],
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<u64, DomainError> {
        let mut queued = 0;
        for endpoint in endpoints {
            if !endpoint.wants(event.kind)
                || (platform_only(event.kind) && !endpoint.platform)
                || (!endpoint.platform && event.owner_id.as_deref() != Some(&endpoint.owner_id))
            {
                continue;
            }
            self.enqueue(conn, &endpoint.id, event.kind, &event.data, now)
                .await?;
            queued += 1;
        }
        Ok(queued)
    }

    async fn enqueue(
        &self,
        conn: &impl ConnectionTrait,
        endpoint_id: &str,
        kind: &str,
        data: &Value,
        now: DateTime<Utc>,
    ) -> Result<i64, DomainError> {
        let body = json!({
            "type": kind,
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": data,
        })
        .to_string();
        let payload = serde_json::to_vec(&Payload {
            msg_id: id::new_id(id::MESSAGE),
            body,
        })
        .map_err(|e| DomainError::Internal(format!("cannot encode a webhook: {e}")))?;
        self.outbox
            .enqueue(conn, WEBHOOK, kind, endpoint_id, &payload, now)
            .await
    }

    async fn row(&self, id: &str) -> Result<Option<webhook_endpoint::Model>, ServiceError> {
        Ok(webhook_endpoint::Entity::find_by_id(id.to_owned())
            .one(self.db.conn())
            .await?)
    }

    /// An endpoint the actor may see: their own (admins: any), else `NotFound` (audited).
    async fn owned(
        &self,
        actor: &Actor,
        id: &str,
        action: &str,
    ) -> Result<webhook_endpoint::Model, ServiceError> {
        let row = self.row(id).await?.ok_or(ServiceError::NotFound)?;
        if row.owner_id != actor.user_id && !actor.is_admin {
            return Err(deny(&self.db, actor, action, Some(id), ServiceError::NotFound).await);
        }
        Ok(row)
    }

    /// The actor's endpoints (admins: `everyone` lists all users'), newest first.
    pub async fn list(&self, actor: &Actor, everyone: bool) -> Result<Vec<Endpoint>, ServiceError> {
        let mut query = webhook_endpoint::Entity::find();
        if !(everyone && actor.is_admin) {
            query = query.filter(webhook_endpoint::Column::OwnerId.eq(actor.user_id.as_str()));
        }
        let now = Utc::now();
        Ok(query
            .order_by_desc(webhook_endpoint::Column::CreatedAt)
            .order_by_desc(webhook_endpoint::Column::Id)
            .limit(500)
            .all(self.db.conn())
            .await?
            .into_iter()
            .map(|r| Endpoint::from_row(r, now))
            .collect())
    }

    pub async fn get(&self, actor: &Actor, id: &str) -> Result<Endpoint, ServiceError> {
        let row = self.owned(actor, id, "webhook.read").await?;
        Ok(Endpoint::from_row(row, Utc::now()))
    }

    async fn check_url(&self, url: &str, errors: &mut FieldErrors) -> Option<String> {
        match guard::check_endpoint(url, self.allow_private).await {
            Ok(url) => Some(url.to_string()),
            Err(e) => {
                errors.add("url", e.to_string());
                None
            }
        }
    }

    /// Registers an endpoint; the answer holds its signing secret, this once.
    pub async fn create(
        &self,
        actor: &Actor,
        new: NewEndpoint,
    ) -> Result<WithSecret, ServiceError> {
        if new.platform && !actor.is_admin {
            let refused = ServiceError::Forbidden(
                "only administrators can receive every user's events".into(),
            );
            return Err(deny(&self.db, actor, "webhook.create", None, refused).await);
        }
        let mut errors = FieldErrors::default();
        let url = self.check_url(&new.url, &mut errors).await;
        let description = check_description(&new.description, &mut errors);
        let events = check_events(&new.events, new.platform, &mut errors);
        errors.into_result()?;
        let count = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::OwnerId.eq(actor.user_id.as_str()))
            .count(self.db.conn())
            .await?;
        if count >= MAX_ENDPOINTS {
            return Err(ServiceError::Conflict(format!(
                "you have {count} endpoints, the most one account may have: delete one you no longer use first"
            )));
        }
        let now = Utc::now();
        let secret = Secret::generate();
        let id = id::new_id(id::WEBHOOK);
        let url = url.expect("checked above");
        let txn = self.db.begin_write().await?;
        webhook_endpoint::Entity::insert(webhook_endpoint::ActiveModel {
            id: Set(id.clone()),
            owner_id: Set(actor.user_id.clone()),
            platform: Set(new.platform),
            url: Set(url.clone()),
            description: Set(description.clone()),
            events: Set(json!(events).to_string()),
            enabled: Set(true),
            disabled_reason: Set(None),
            secret: Set(self.key.encrypt(secret.expose().as_bytes())),
            previous_secret: Set(None),
            previous_secret_until: Set(None),
            failing_since: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "webhook.create",
            Some(&id),
            json!({ "url": url, "events": events, "platform": new.platform }),
        )
        .await?;
        txn.commit().await?;
        let endpoint = self.get(actor, &id).await?;
        Ok(WithSecret { endpoint, secret })
    }

    /// Changes an endpoint. Enabling it again clears the failure streak.
    pub async fn update(
        &self,
        actor: &Actor,
        id: &str,
        patch: EndpointPatch,
    ) -> Result<Endpoint, ServiceError> {
        let row = self.owned(actor, id, "webhook.update").await?;
        let mut errors = FieldErrors::default();
        let url = match &patch.url {
            Some(u) => self.check_url(u, &mut errors).await,
            None => None,
        };
        let description = patch
            .description
            .as_deref()
            .map(|d| check_description(d, &mut errors));
        let events = patch
            .events
            .as_deref()
            .map(|e| check_events(e, row.platform, &mut errors));
        errors.into_result()?;
        let now = Utc::now();
        let mut update = webhook_endpoint::Entity::update_many()
            .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
            .filter(webhook_endpoint::Column::Id.eq(id));
        let mut changed = serde_json::Map::new();
        if let Some(url) = &url {
            update = update.col_expr(webhook_endpoint::Column::Url, Expr::value(url.clone()));
            changed.insert("url".into(), json!(url));
        }
        if let Some(d) = &description {
            update = update.col_expr(
                webhook_endpoint::Column::Description,
                Expr::value(d.clone()),
            );
            changed.insert("description".into(), json!(d));
        }
        if let Some(e) = &events {
            update = update.col_expr(
                webhook_endpoint::Column::Events,
                Expr::value(json!(e).to_string()),
            );
            changed.insert("events".into(), json!(e));
        }
        if let Some(enabled) = patch.enabled {
            update = update.col_expr(webhook_endpoint::Column::Enabled, Expr::value(enabled));
            if enabled {
                update = update
                    .col_expr(
                        webhook_endpoint::Column::DisabledReason,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(
                        webhook_endpoint::Column::FailingSince,
                        Expr::value(Option::<DateTime<Utc>>::None),
                    );
            }
            changed.insert("enabled".into(), json!(enabled));
        }
        let txn = self.db.begin_write().await?;
        update.exec(&txn).await?;
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "webhook.update",
            Some(id),
            Value::Object(changed),
        )
        .await?;
        txn.commit().await?;
        if patch.enabled == Some(true) {
            self.wake();
        }
        self.get(actor, id).await
    }

    /// Deletes an endpoint; its deliveries still waiting are given up.
    pub async fn delete(&self, actor: &Actor, id: &str) -> Result<(), ServiceError> {
        let row = self.owned(actor, id, "webhook.delete").await?;
        let txn = self.db.begin_write().await?;
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(crate::outbox::FAILED))
            .col_expr(
                outbox::Column::LastError,
                Expr::value(Some("the endpoint was deleted".to_owned())),
            )
            .filter(outbox::Column::Channel.eq(WEBHOOK))
            .filter(outbox::Column::Recipient.eq(id))
            .filter(outbox::Column::Status.eq(PENDING))
            .exec(&txn)
            .await?;
        webhook_endpoint::Entity::delete_by_id(id.to_owned())
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "webhook.delete",
            Some(id),
            json!({ "url": row.url }),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// A new signing secret; the old one keeps signing (alongside) for [`OLD_SECRET_VALID`].
    pub async fn rotate_secret(&self, actor: &Actor, id: &str) -> Result<WithSecret, ServiceError> {
        let row = self.owned(actor, id, "webhook.rotate_secret").await?;
        let now = Utc::now();
        let secret = Secret::generate();
        let txn = self.db.begin_write().await?;
        webhook_endpoint::Entity::update_many()
            .col_expr(
                webhook_endpoint::Column::Secret,
                Expr::value(self.key.encrypt(secret.expose().as_bytes())),
            )
            .col_expr(
                webhook_endpoint::Column::PreviousSecret,
                Expr::value(Some(row.secret.clone())),
            )
            .col_expr(
                webhook_endpoint::Column::PreviousSecretUntil,
                Expr::value(Some(now + OLD_SECRET_VALID)),
            )
            .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
            .filter(webhook_endpoint::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "webhook.rotate_secret",
            Some(id),
            json!({ "previous_valid_until": rfc3339(now + OLD_SECRET_VALID) }),
        )
        .await?;
        txn.commit().await?;
        let endpoint = self.get(actor, id).await?;
        Ok(WithSecret { endpoint, secret })
    }

    /// Queues a `webhook.test` event to this endpoint only; returns the delivery's id.
    pub async fn send_test(&self, actor: &Actor, id: &str) -> Result<i64, ServiceError> {
        let row = self.owned(actor, id, "webhook.test").await?;
        if !row.enabled {
            return Err(ServiceError::Conflict(
                "the endpoint is disabled: enable it to send a test event".into(),
            ));
        }
        let now = Utc::now();
        let txn = self.db.begin_write().await?;
        let delivery = self
            .enqueue(
                &txn,
                id,
                TEST_EVENT,
                &json!({
                    "endpoint_id": id,
                    "message": "A test event from Keyport: your endpoint receives and verifies webhooks.",
                }),
                now,
            )
            .await?;
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "webhook.test",
            Some(id),
            json!({ "delivery": delivery }),
        )
        .await?;
        txn.commit().await?;
        self.wake();
        Ok(delivery)
    }

    /// Sends a delivery of this endpoint again now (same `webhook-id`), whatever its status.
    pub async fn redeliver(
        &self,
        actor: &Actor,
        endpoint_id: &str,
        delivery_id: i64,
    ) -> Result<(), ServiceError> {
        let row = self.owned(actor, endpoint_id, "webhook.redeliver").await?;
        if !row.enabled {
            return Err(ServiceError::Conflict(
                "the endpoint is disabled: enable it to redeliver".into(),
            ));
        }
        let now = Utc::now();
        let txn = self.db.begin_write().await?;
        let result = outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(PENDING))
            .col_expr(outbox::Column::NextAttemptAt, Expr::value(now))
            .col_expr(
                outbox::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(outbox::Column::Id.eq(delivery_id))
            .filter(outbox::Column::Channel.eq(WEBHOOK))
            .filter(outbox::Column::Recipient.eq(endpoint_id))
            .filter(outbox::Column::Payload.is_not_null())
            .exec(&txn)
            .await?;
        if result.rows_affected != 1 {
            return Err(ServiceError::NotFound);
        }
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "webhook.redeliver",
            Some(endpoint_id),
            json!({ "delivery": delivery_id }),
        )
        .await?;
        txn.commit().await?;
        self.wake();
        Ok(())
    }

    /// A page of an endpoint's deliveries, newest first, with their attempts; and the total.
    pub async fn deliveries(
        &self,
        actor: &Actor,
        endpoint_id: &str,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<Delivery>, u64), ServiceError> {
        self.owned(actor, endpoint_id, "webhook.read").await?;
        let query = outbox::Entity::find()
            .filter(outbox::Column::Channel.eq(WEBHOOK))
            .filter(outbox::Column::Recipient.eq(endpoint_id));
        let total = query.clone().count(self.db.conn()).await?;
        let rows = query
            .order_by_desc(outbox::Column::Id)
            .limit(limit)
            .offset(offset)
            .all(self.db.conn())
            .await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let attempts = webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::OutboxId.is_in(ids))
            .order_by_desc(webhook_attempt::Column::Id)
            .all(self.db.conn())
            .await?;
        let deliveries = rows
            .into_iter()
            .map(|row| Delivery {
                msg_id: self.message_id(&row).unwrap_or_default(),
                attempts: attempts
                    .iter()
                    .filter(|a| a.outbox_id == row.id)
                    .map(|a| Attempt {
                        attempt: a.attempt,
                        at: a.at,
                        status_code: a.status_code,
                        latency_ms: a.latency_ms,
                        error: a.error.clone(),
                        response_body: a.response_body.clone(),
                    })
                    .collect(),
                next_attempt_at: (row.status == PENDING).then_some(row.next_attempt_at),
                id: row.id,
                event: row.kind,
                status: row.status,
                last_error: row.last_error,
                created_at: row.created_at,
            })
            .collect();
        Ok((deliveries, total))
    }

    /// Every webhook delivery queued so far, oldest first: (endpoint id, event type, body).
    #[cfg(feature = "testing")]
    pub async fn queued(&self) -> Result<Vec<(String, String, Value)>, DomainError> {
        let rows = outbox::Entity::find()
            .filter(outbox::Column::Channel.eq(WEBHOOK))
            .order_by_asc(outbox::Column::Id)
            .all(self.db.conn())
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let plain = self.key.decrypt(row.payload.as_deref()?).ok()?;
                let payload: Payload = serde_json::from_slice(&plain).ok()?;
                let body = serde_json::from_str(&payload.body).ok()?;
                Some((row.recipient, row.kind, body))
            })
            .collect())
    }

    fn message_id(&self, row: &outbox::Model) -> Option<String> {
        let plain = self.key.decrypt(row.payload.as_deref()?).ok()?;
        serde_json::from_slice::<Payload>(&plain)
            .ok()
            .map(|p| p.msg_id)
    }
}

fn check_description(text: &str, errors: &mut FieldErrors) -> String {
    let text = text.trim();
    if text.chars().count() > 200 {
        errors.add("description", "a description is at most 200 characters");
    }
    if text.chars().any(char::is_control) {
        errors.add("description", "a description is one line of text");
    }
    text.to_owned()
}

fn check_events(events: &[String], platform: bool, errors: &mut FieldErrors) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in events {
        let e = e.trim();
        if e.is_empty() {
            continue;
        }
        if !EVENTS.contains(&e) {
            errors.add(
                "events",
                format!(
                    "\"{e}\" is not an event; the events are {}",
                    EVENTS.join(", ")
                ),
            );
        } else if platform_only(e) && !platform {
            errors.add(
                "events",
                format!("{e} goes only to endpoints that receive every user's events"),
            );
        } else if !out.iter().any(|o| o == e) {
            out.push(e.to_owned());
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_filters_are_checked_and_tidied() {
        let mut errors = FieldErrors::default();
        let events = check_events(
            &[
                "key.revoked".into(),
                " key.created ".into(),
                "key.revoked".into(),
                "".into(),
            ],
            false,
            &mut errors,
        );
        assert!(errors.is_empty());
        assert_eq!(events, ["key.created", "key.revoked"]);
        check_events(&["key.exploded".into()], false, &mut errors);
        assert!(errors.get("events").unwrap().contains("not an event"));
        let mut errors = FieldErrors::default();
        check_events(&["user.created".into()], false, &mut errors);
        assert!(errors.get("events").unwrap().contains("every user"));
        let mut errors = FieldErrors::default();
        check_events(&["user.created".into()], true, &mut errors);
        assert!(errors.is_empty());
    }
}
