//! Delivering webhooks: the outbox's `webhook` channel. Each attempt signs the stored body
//! afresh (the timestamp is the attempt's), POSTs it with a 10 s timeout, follows no redirect,
//! reads at most 64 KiB of the answer, and logs the attempt. A 2xx answer is a delivery; anything
//! else is retried on [`SCHEDULE`]. An endpoint failing for a day is disabled, and its owner told.
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::json;

use super::{Payload, guard, signing};
use crate::{
    Database, DomainError, audit,
    entities::{user, webhook_attempt, webhook_endpoint},
    mail::{Template, templates::utc},
    outbox::{Channel, Delivery, Message, Outbox, WEBHOOK},
    secret_key::SecretKey,
};

/// Waits after the 1st, 2nd, ... failed attempt (seconds); after the last, the delivery gives up.
pub const SCHEDULE: [i64; 6] = [5, 60, 600, 3600, 6 * 3600, 24 * 3600];
/// How long one attempt may take in all.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The most of an answer read.
const BODY_CAP: usize = 64 * 1024;
/// The most of an answer kept in the delivery log.
const LOGGED_BODY: usize = 1024;
/// An endpoint whose deliveries all failed for this long is disabled.
const DISABLE_AFTER: Duration = Duration::hours(24);

/// The `webhook` channel of the outbox.
pub struct Sender {
    db: Database,
    key: SecretKey,
    /// Where the owner's "endpoint disabled" email goes, when email is on.
    mail: Option<Outbox>,
    client: reqwest::Client,
    allow_private: bool,
    schedule: Vec<Duration>,
}

impl Sender {
    pub(super) fn new(
        db: Database,
        key: SecretKey,
        mail: Option<Outbox>,
        allow_private: bool,
    ) -> Sender {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(std::time::Duration::from_secs(5))
            .no_proxy()
            .dns_resolver(guard::GuardedResolver::shared(allow_private))
            .user_agent(concat!("Keyport-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the webhook HTTP client builds");
        Sender {
            db,
            key,
            mail,
            client,
            allow_private,
            schedule: SCHEDULE.iter().map(|s| Duration::seconds(*s)).collect(),
        }
    }

    /// Other waits between attempts (tests: seconds instead of hours).
    pub fn with_schedule(mut self, waits: Vec<Duration>) -> Sender {
        self.schedule = waits;
        self
    }

    async fn attempt(&self, message: &Message) -> Result<(), String> {
        let payload: Payload = serde_json::from_slice(&message.payload)
            .map_err(|e| format!("the delivery cannot be read: {e}"))?;
        let endpoint = webhook_endpoint::Entity::find_by_id(message.recipient.clone())
            .one(self.db.conn())
            .await
            .map_err(|e| format!("cannot read the endpoint: {e}"))?
            .ok_or_else(|| "the endpoint was deleted".to_owned())?;
        if !endpoint.enabled {
            return Err("the endpoint is disabled".into());
        }
        let now = Utc::now();
        let started = Instant::now();
        let outcome = self.post(&endpoint, &payload, now).await;
        let latency_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        let (status_code, body, error) = match &outcome {
            Ok((status, body)) => (
                Some(*status as i32),
                Some(body.clone()),
                (!(200..300).contains(status)).then(|| format!("HTTP {status}")),
            ),
            Err(e) => (None, None, Some(e.clone())),
        };
        self.log(
            message,
            &endpoint,
            now,
            status_code,
            latency_ms,
            &error,
            body,
        )
        .await
        .map_err(|e| format!("cannot log the attempt: {e}"))?;
        match error {
            None => {
                if endpoint.failing_since.is_some() {
                    self.set_failing_since(&endpoint.id, None)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Some(error) => {
                self.failed(&endpoint, &error, now)
                    .await
                    .map_err(|e| format!("{error} (and: {e})"))?;
                Err(error)
            }
        }
    }

    /// Signs and sends; the status code and the start of the answer, or why there is none.
    async fn post(
        &self,
        endpoint: &webhook_endpoint::Model,
        payload: &Payload,
        now: DateTime<Utc>,
    ) -> Result<(u16, String), String> {
        // The URL was checked when saved; checked again, since the rules may have changed.
        let url = guard::check_url(&endpoint.url, self.allow_private).map_err(|e| e.to_string())?;
        let mut secrets = vec![self.secret(&endpoint.secret)?];
        if let (Some(previous), Some(until)) =
            (&endpoint.previous_secret, endpoint.previous_secret_until)
            && until > now
        {
            secrets.push(self.secret(previous)?);
        }
        let timestamp = now.timestamp();
        let signature = signing::signature_header(
            &secrets,
            &payload.msg_id,
            timestamp,
            payload.body.as_bytes(),
        );
        let mut response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &payload.msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(payload.body.clone())
            .send()
            .await
            .map_err(describe)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while body.len() < BODY_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        body.truncate(LOGGED_BODY);
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    fn secret(&self, sealed: &[u8]) -> Result<signing::Secret, String> {
        self.key
            .decrypt(sealed)
            .ok()
            .and_then(|plain| String::from_utf8(plain).ok())
            .and_then(|text| signing::Secret::parse(&text))
            .ok_or_else(|| "the signing secret cannot be decrypted with this server key".into())
    }

    #[allow(clippy::too_many_arguments)]
    async fn log(
        &self,
        message: &Message,
        endpoint: &webhook_endpoint::Model,
        at: DateTime<Utc>,
        status_code: Option<i32>,
        latency_ms: i32,
        error: &Option<String>,
        body: Option<String>,
    ) -> Result<(), DomainError> {
        webhook_attempt::Entity::insert(webhook_attempt::ActiveModel {
            outbox_id: Set(message.id),
            endpoint_id: Set(endpoint.id.clone()),
            attempt: Set(message.attempt),
            at: Set(at),
            status_code: Set(status_code),
            latency_ms: Set(latency_ms),
            error: Set(error.clone()),
            response_body: Set(body),
            ..Default::default()
        })
        .exec_without_returning(self.db.conn())
        .await?;
        Ok(())
    }

    async fn set_failing_since(
        &self,
        id: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<(), DomainError> {
        webhook_endpoint::Entity::update_many()
            .col_expr(webhook_endpoint::Column::FailingSince, Expr::value(since))
            .filter(webhook_endpoint::Column::Id.eq(id))
            .exec(self.db.conn())
            .await?;
        Ok(())
    }

    /// Counts a failure; disables the endpoint when it has failed for [`DISABLE_AFTER`].
    async fn failed(
        &self,
        endpoint: &webhook_endpoint::Model,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let Some(since) = endpoint.failing_since else {
            return self.set_failing_since(&endpoint.id, Some(now)).await;
        };
        if now - since < DISABLE_AFTER {
            return Ok(());
        }
        let txn = self.db.begin_write().await?;
        let disabled = webhook_endpoint::Entity::update_many()
            .col_expr(webhook_endpoint::Column::Enabled, Expr::value(false))
            .col_expr(
                webhook_endpoint::Column::DisabledReason,
                Expr::value(Some(format!(
                    "Keyport disabled it: every delivery failed for a day (since {}). Last error: {error}",
                    utc(since)
                ))),
            )
            .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
            .filter(webhook_endpoint::Column::Id.eq(endpoint.id.as_str()))
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .exec(&txn)
            .await?;
        if disabled.rows_affected == 0 {
            return Ok(());
        }
        audit::record(
            &txn,
            &audit::RequestContext::default(),
            None,
            "webhook.auto_disable",
            Some(&endpoint.id),
            json!({ "url": endpoint.url, "failing_since": since.to_rfc3339(), "last_error": error }),
        )
        .await?;
        if let Some(mail) = &self.mail
            && let Some(owner) = user::Entity::find_by_id(endpoint.owner_id.clone())
                .one(&txn)
                .await?
        {
            let template = Template::WebhookDisabled {
                url: endpoint.url.clone(),
                failing_since: utc(since),
                last_error: error.to_owned(),
                at: utc(now),
            };
            mail.enqueue_email(&txn, &owner.email, &template, now)
                .await?;
        }
        txn.commit().await?;
        tracing::warn!(endpoint = %endpoint.id, url = %endpoint.url, "a webhook endpoint failed for a day and was disabled");
        if let Some(mail) = &self.mail {
            mail.wake();
        }
        Ok(())
    }
}

/// A request error with its causes (the guard's refusal sits deep in the chain).
fn describe(error: reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out after 10 s".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(&error);
    let mut last = String::new();
    while let Some(cause) = source {
        let here = cause.to_string();
        if !here.is_empty() && !last.contains(&here) {
            text.push_str(": ");
            text.push_str(&here);
            last = here;
        }
        source = cause.source();
    }
    text.chars().take(500).collect()
}

impl Channel for Sender {
    fn name(&self) -> &'static str {
        WEBHOOK
    }

    fn deliver<'a>(&'a self, message: &'a Message) -> Delivery<'a> {
        Box::pin(self.attempt(message))
    }

    fn retry_after(
        &self,
        attempts: i32,
        _queued_at: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Option<Duration> {
        usize::try_from(attempts - 1)
            .ok()
            .and_then(|i| self.schedule.get(i).copied())
    }

    fn erase_when_delivered(&self) -> bool {
        // The body holds no secret, and "Redeliver" sends it again.
        false
    }
}
