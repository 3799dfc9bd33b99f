//! Email notifications about a developer's keys and sign-ins, each switchable per user in their
//! settings (the security notices of [`crate::accounts`] are always sent). A job run every minute
//! looks at what happened lately (keys about to expire or expired, anomaly alerts, keys revoked
//! or disabled by someone else, sign-ins from a browser the account never used before) and
//! queues one message per event, once: the `notices_sent` row and the message commit together.
//! Each scan is bounded, so the work per run does not grow with the number of keys at rest.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::OnConflict,
};
use serde_json::json;

use crate::{
    Database, DomainError,
    accounts::Status,
    audit::{self, RequestContext},
    entities::{api_key, audit_event, notice_sent, usage_alert, user},
    keys::{Key, record},
    mail::{
        Template,
        templates::{KeyRef, Origin, utc},
    },
    outbox::Outbox,
    webhooks::{Event, Webhooks},
};

/// A kind of notification a user can switch on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub id: &'static str,
    pub label: &'static str,
    pub default_on: bool,
}

pub const KEY_EXPIRING: Kind = Kind {
    id: "key_expiring",
    label: "A key expires in 7 days, and again 1 day before",
    default_on: true,
};
pub const KEY_EXPIRED: Kind = Kind {
    id: "key_expired",
    label: "A key expired",
    default_on: true,
};
pub const ANOMALY: Kind = Kind {
    id: "anomaly",
    label: "Unusual use of a key (an anomaly alert)",
    default_on: true,
};
pub const KEY_CHANGED: Kind = Kind {
    id: "key_changed",
    label: "Someone else revoked or disabled one of your keys",
    default_on: true,
};
pub const QUOTA: Kind = Kind {
    id: "quota",
    label: "A key used 80% of its quota, and all of it (once per period)",
    default_on: true,
};
pub const RATE_LIMITED: Kind = Kind {
    id: "rate_limited",
    label: "A key keeps hitting its rate limit (in 5 of 10 minutes; at most every 6 hours)",
    default_on: true,
};
pub const NEW_SIGN_IN: Kind = Kind {
    id: "new_sign_in",
    label: "A sign-in from a browser not used before",
    default_on: false,
};

/// Security notices about keys (a key reported leaked): always sent, never switchable.
const KEY_SECURITY: Kind = Kind {
    id: "key_security",
    label: "A key was reported leaked",
    default_on: true,
};

/// Every switchable kind, in the order the settings page lists them.
pub const KINDS: [Kind; 7] = [
    KEY_EXPIRING,
    KEY_EXPIRED,
    ANOMALY,
    QUOTA,
    RATE_LIMITED,
    KEY_CHANGED,
    NEW_SIGN_IN,
];

/// Whether `kind` is on in a user's stored preferences (`{"kind": bool}`; absent: the default).
pub fn is_on(prefs: &str, kind: Kind) -> bool {
    serde_json::from_str::<serde_json::Value>(prefs)
        .ok()
        .and_then(|v| v.get(kind.id).and_then(|b| b.as_bool()))
        .unwrap_or(kind.default_on)
}

/// A key refused with RATE_LIMITED in at least this many of the last [`RATE_WINDOW_MINUTES`]
/// minutes keeps hitting its limit.
pub const RATE_MINUTES: u64 = 5;
pub const RATE_WINDOW_MINUTES: i64 = 10;
/// At most one rate-limit notice per key in this many hours.
pub const RATE_QUIET_HOURS: i64 = 6;

/// Rows each scan reads at most per run.
const SCAN: u64 = 1000;
/// How far back the event scans look (the job runs every minute; the margin covers restarts).
const LOOKBACK: Duration = Duration::hours(1);

#[derive(Clone, Debug)]
pub struct Notifier {
    db: Database,
    outbox: Option<Outbox>,
    /// Where quota use is counted (the verifier), for the quota notices.
    quotas: Option<crate::verification::Verifier>,
    /// Where the same events go out as webhooks (`key.expiring`, `quota.warning`, ...).
    webhooks: Option<Webhooks>,
}

impl Notifier {
    pub fn new(db: Database, outbox: Option<Outbox>) -> Notifier {
        Notifier {
            db,
            outbox,
            quotas: None,
            webhooks: None,
        }
    }

    /// Queues the events the job notices as webhooks too.
    pub fn with_webhooks(mut self, webhooks: Webhooks) -> Notifier {
        self.webhooks = Some(webhooks);
        self
    }

    /// A webhook event about a key: the key as the REST API shows it, or, with `extra`, an
    /// object holding it as `key` beside `extra`'s fields.
    async fn key_event(
        &self,
        kind: &'static str,
        row: &api_key::Model,
        extra: Option<serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<Option<Event>, DomainError> {
        if self.webhooks.is_none() {
            return Ok(None);
        }
        let Some(key) = record::load(self.db.conn(), vec![row.clone()])
            .await?
            .into_iter()
            .next()
            .map(Key::from)
        else {
            return Ok(None);
        };
        let data = match extra {
            None => key.to_json(now),
            Some(serde_json::Value::Object(mut fields)) => {
                fields.insert("key".into(), key.to_json(now));
                serde_json::Value::Object(fields)
            }
            Some(other) => json!({ "key": key.to_json(now), "detail": other }),
        };
        Ok(Some(Event {
            kind,
            owner_id: Some(key.owner_id.clone()),
            data,
        }))
    }

    /// Reads quota use from `verifier` for the quota notices.
    pub fn with_quotas(mut self, verifier: crate::verification::Verifier) -> Notifier {
        self.quotas = Some(verifier);
        self
    }

    /// Each switchable kind and whether it is on for this user.
    pub async fn prefs(&self, user_id: &str) -> Result<Vec<(Kind, bool)>, DomainError> {
        let stored = user::Entity::find_by_id(user_id.to_owned())
            .one(self.db.conn())
            .await?
            .map(|u| u.notification_prefs)
            .unwrap_or_default();
        Ok(KINDS.iter().map(|k| (*k, is_on(&stored, *k))).collect())
    }

    /// Stores which kinds are on (`on` names them; unknown names are ignored).
    pub async fn set_prefs(
        &self,
        user_id: &str,
        on: &[String],
        ctx: &RequestContext,
    ) -> Result<(), DomainError> {
        let prefs: serde_json::Map<String, serde_json::Value> = KINDS
            .iter()
            .map(|k| (k.id.to_owned(), json!(on.iter().any(|o| o == k.id))))
            .collect();
        let txn = self.db.begin_write().await?;
        user::Entity::update_many()
            .col_expr(
                user::Column::NotificationPrefs,
                sea_orm::sea_query::Expr::value(
                    serde_json::Value::Object(prefs.clone()).to_string(),
                ),
            )
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            ctx,
            Some(user_id),
            "settings.notifications",
            Some(user_id),
            serde_json::Value::Object(prefs),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Queues what happened lately; returns how many messages were queued.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<u64, DomainError> {
        if self.outbox.is_none() && self.webhooks.is_none() {
            return Ok(0);
        }
        let mut queued = 0;
        queued += self.expiring_keys(now).await?;
        queued += self.anomalies(now).await?;
        queued += self.quotas(now).await?;
        if let Some(outbox) = &self.outbox {
            queued += self.keys_changed_by_others(now).await?;
            queued += self.new_sign_ins(now).await?;
            queued += self.rate_limited(now).await?;
            if queued > 0 {
                outbox.wake();
            }
        }
        if queued > 0
            && let Some(webhooks) = &self.webhooks
        {
            webhooks.wake();
        }
        Ok(queued)
    }

    async fn expiring_keys(&self, now: DateTime<Utc>) -> Result<u64, DomainError> {
        let keys = api_key::Entity::find()
            .filter(api_key::Column::RevokedAt.is_null())
            .filter(api_key::Column::ExpiresAt.gt(now - Duration::days(1)))
            .filter(api_key::Column::ExpiresAt.lte(now + Duration::days(7)))
            .order_by_asc(api_key::Column::ExpiresAt)
            .limit(SCAN)
            .all(self.db.conn())
            .await?;
        let mut queued = 0;
        for key in keys {
            let Some(expires_at) = key.expires_at else {
                continue;
            };
            let at = utc(expires_at);
            let (subject_kind, kind, template) = if expires_at <= now {
                (
                    "expired",
                    KEY_EXPIRED,
                    Template::KeyExpired {
                        key: key_ref(&key),
                        expired_at: at,
                        at: utc(now),
                    },
                )
            } else {
                let left = expires_at - now;
                (
                    if left <= Duration::days(1) {
                        "expiring_1d"
                    } else {
                        "expiring_7d"
                    },
                    KEY_EXPIRING,
                    Template::KeyExpiring {
                        key: key_ref(&key),
                        expires_at: at,
                        days_left: left.num_days(),
                        at: utc(now),
                    },
                )
            };
            let event_kind = if expires_at <= now {
                "key.expired"
            } else {
                "key.expiring"
            };
            let event = self.key_event(event_kind, &key, None, now).await?;
            queued += self
                .once(
                    &key.id,
                    subject_kind,
                    &key.owner_id,
                    kind,
                    Some(template),
                    event,
                    now,
                )
                .await?;
        }
        Ok(queued)
    }

    async fn anomalies(&self, now: DateTime<Utc>) -> Result<u64, DomainError> {
        let alerts = usage_alert::Entity::find()
            .filter(usage_alert::Column::CreatedAt.gt(now - LOOKBACK))
            .order_by_asc(usage_alert::Column::CreatedAt)
            .limit(SCAN)
            .all(self.db.conn())
            .await?;
        let mut queued = 0;
        for alert in alerts {
            let Some(key) = api_key::Entity::find()
                .filter(api_key::Column::Id.eq(alert.key_id.as_str()))
                .one(self.db.conn())
                .await?
            else {
                continue;
            };
            if alert.rule == "leaked" {
                // Its webhook event (`key.leaked`) left with the change itself.
                let template = Template::KeyLeaked {
                    key: key_ref(&key),
                    detail: alert.detail.clone(),
                    at: utc(alert.created_at),
                };
                queued += self
                    .once(
                        &alert.id,
                        "leaked",
                        &alert.owner_id,
                        KEY_SECURITY,
                        Some(template),
                        None,
                        now,
                    )
                    .await?;
                continue;
            }
            let template = Template::AnomalyAlert {
                key: key_ref(&key),
                detail: alert.detail.clone(),
                at: utc(alert.created_at),
            };
            let event = self
                .key_event(
                    "usage.anomaly",
                    &key,
                    Some(json!({ "alert": {
                        "id": alert.id,
                        "detail": alert.detail,
                        "created_at": alert.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    }})),
                    now,
                )
                .await?;
            queued += self
                .once(
                    &alert.id,
                    "anomaly",
                    &alert.owner_id,
                    ANOMALY,
                    Some(template),
                    event,
                    now,
                )
                .await?;
        }
        Ok(queued)
    }

    async fn keys_changed_by_others(&self, now: DateTime<Utc>) -> Result<u64, DomainError> {
        let events = audit_event::Entity::find()
            .filter(audit_event::Column::At.gt(now - LOOKBACK))
            .filter(audit_event::Column::Action.is_in(["key.revoke", "key.disable"]))
            .order_by_asc(audit_event::Column::Id)
            .limit(SCAN)
            .all(self.db.conn())
            .await?;
        let mut queued = 0;
        for event in events {
            let Some(key_id) = &event.target else {
                continue;
            };
            let Some(key) = api_key::Entity::find()
                .filter(api_key::Column::Id.eq(key_id.as_str()))
                .one(self.db.conn())
                .await?
            else {
                continue;
            };
            if event.actor_id.as_deref() == Some(key.owner_id.as_str()) {
                continue;
            }
            let by = match &event.actor_id {
                Some(actor) => user::Entity::find_by_id(actor.clone())
                    .one(self.db.conn())
                    .await?
                    .map(|u| format!("An administrator ({})", u.email))
                    .unwrap_or_else(|| "An administrator".into()),
                None => "Keyport".into(),
            };
            let template = Template::KeyChangedByOther {
                key: key_ref(&key),
                action: if event.action == "key.revoke" {
                    "revoked".into()
                } else {
                    "disabled".into()
                },
                by,
                origin: origin_of(&event),
            };
            queued += self
                .once(
                    &format!("audit:{}", event.id),
                    "key_changed",
                    &key.owner_id,
                    KEY_CHANGED,
                    Some(template),
                    None,
                    now,
                )
                .await?;
        }
        Ok(queued)
    }

    async fn new_sign_ins(&self, now: DateTime<Utc>) -> Result<u64, DomainError> {
        let events = audit_event::Entity::find()
            .filter(audit_event::Column::At.gt(now - LOOKBACK))
            .filter(audit_event::Column::Action.eq("sign_in.success"))
            .order_by_asc(audit_event::Column::Id)
            .limit(SCAN)
            .all(self.db.conn())
            .await?;
        let mut queued = 0;
        for event in events {
            let Some(user_id) = event.actor_id.clone() else {
                continue;
            };
            let browser = |ua: &Option<String>| {
                ua.as_deref()
                    .filter(|ua| !ua.is_empty())
                    .map(audit::describe_user_agent)
            };
            let earlier = audit_event::Entity::find()
                .filter(audit_event::Column::ActorId.eq(user_id.as_str()))
                .filter(audit_event::Column::Action.eq("sign_in.success"))
                .filter(audit_event::Column::Id.lt(event.id))
                .order_by_desc(audit_event::Column::Id)
                .limit(50)
                .all(self.db.conn())
                .await?;
            // The very first sign-in is not news; a browser seen before is not either.
            let new = !earlier.is_empty()
                && earlier
                    .iter()
                    .all(|e| browser(&e.user_agent) != browser(&event.user_agent));
            let subject = format!("audit:{}", event.id);
            if !new {
                self.mark(&subject, "new_sign_in", now).await?;
                continue;
            }
            let template = Template::NewSignIn {
                origin: origin_of(&event),
            };
            queued += self
                .once(
                    &subject,
                    "new_sign_in",
                    &user_id,
                    NEW_SIGN_IN,
                    Some(template),
                    None,
                    now,
                )
                .await?;
        }
        Ok(queued)
    }

    /// Keys that used 80% or all of their quota in its current period (the keys with the most
    /// use first; each threshold once per period).
    async fn quotas(&self, now: DateTime<Utc>) -> Result<u64, DomainError> {
        let Some(verifier) = &self.quotas else {
            return Ok(0);
        };
        let rows = crate::entities::key_quota::Entity::find()
            .filter(crate::entities::key_quota::Column::PeriodStart.gt(now - Duration::days(32)))
            .order_by_desc(crate::entities::key_quota::Column::Used)
            .limit(SCAN)
            .all(self.db.conn())
            .await?;
        let mut queued = 0;
        for row in rows {
            // A quota a plan shares among a developer's keys is stored as `pool:<owner>`; its
            // use is read through any of their keys without a quota of its own.
            let shared = row.key_id.strip_prefix("pool:");
            let candidates = match shared {
                Some(owner) => {
                    api_key::Entity::find()
                        .filter(api_key::Column::OwnerId.eq(owner))
                        .filter(api_key::Column::RevokedAt.is_null())
                        .filter(api_key::Column::QuotaLimit.is_null())
                        .limit(20)
                        .all(self.db.conn())
                        .await?
                }
                None => {
                    api_key::Entity::find()
                        .filter(api_key::Column::Id.eq(row.key_id.as_str()))
                        .all(self.db.conn())
                        .await?
                }
            };
            let Some((key, quota)) = candidates
                .into_iter()
                .find_map(|k| verifier.quota_use(&k.id, now).map(|q| (k, q)))
            else {
                continue;
            };
            let used = quota.limit.saturating_sub(quota.remaining);
            if quota.limit == 0 || used * 10 < quota.limit * 8 {
                continue;
            }
            let threshold = if used >= quota.limit { 100 } else { 80 };
            let template = Template::QuotaWarning {
                key: key_ref(&key),
                used,
                limit: quota.limit,
                period: match quota.period {
                    crate::catalog::QuotaPeriod::Day => "today".into(),
                    crate::catalog::QuotaPeriod::Month => "this month".into(),
                },
                resets_at: utc(quota.reset_at),
                shared: shared.is_some(),
                at: utc(now),
            };
            let kind = format!("quota_{threshold}:{}", quota.reset_at.timestamp());
            let event = self
                .key_event(
                    if threshold == 100 {
                        "quota.exceeded"
                    } else {
                        "quota.warning"
                    },
                    &key,
                    Some(json!({ "quota": {
                        "used": used,
                        "limit": quota.limit,
                        "period": quota.period.as_str(),
                        "resets_at": quota.reset_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        "shared": shared.is_some(),
                    }})),
                    now,
                )
                .await?;
            queued += self
                .once(
                    &row.key_id,
                    &kind,
                    &key.owner_id,
                    QUOTA,
                    Some(template),
                    event,
                    now,
                )
                .await?;
        }
        Ok(queued)
    }

    /// Keys refused with RATE_LIMITED in most minutes of the last ten (from the per-minute usage
    /// buckets: a range of the primary key), at most once per key every six hours.
    async fn rate_limited(&self, now: DateTime<Utc>) -> Result<u64, DomainError> {
        use crate::entities::usage_bucket;
        let this_minute = now.timestamp().div_euclid(60) * 60;
        let rows = usage_bucket::Entity::find()
            .filter(usage_bucket::Column::Width.eq(60))
            .filter(usage_bucket::Column::Start.gte(this_minute - RATE_WINDOW_MINUTES * 60))
            .filter(usage_bucket::Column::Start.lt(this_minute))
            .filter(usage_bucket::Column::Code.eq("RATE_LIMITED"))
            .limit(SCAN * RATE_WINDOW_MINUTES as u64)
            .all(self.db.conn())
            .await?;
        let mut per_key: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for row in rows.iter().filter(|r| r.count > 0) {
            let entry = per_key.entry(row.key_id.clone()).or_default();
            entry.0 += 1;
            entry.1 += row.count as u64;
        }
        let mut queued = 0;
        for (key_id, (minutes, denied)) in per_key {
            if minutes < RATE_MINUTES {
                continue;
            }
            let Some(key) = api_key::Entity::find()
                .filter(api_key::Column::Id.eq(key_id.as_str()))
                .one(self.db.conn())
                .await?
            else {
                continue;
            };
            let window = now.timestamp().div_euclid(RATE_QUIET_HOURS * 3600);
            let template = Template::RateLimitSustained {
                key: key_ref(&key),
                denied,
                minutes,
                window_minutes: RATE_WINDOW_MINUTES as u64,
                at: utc(now),
            };
            queued += self
                .once(
                    &key.id,
                    &format!("rate_limited:{window}"),
                    &key.owner_id,
                    RATE_LIMITED,
                    Some(template),
                    None,
                    now,
                )
                .await?;
        }
        Ok(queued)
    }

    /// Records that `subject`'s `kind` was dealt with; `false` when it already was.
    async fn mark(
        &self,
        subject: &str,
        kind: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        mark_in(self.db.conn(), subject, kind, now).await
    }

    /// If `subject`'s `kind` was not dealt with yet: queues `template` to `owner_id` (when email
    /// is on and the owner, active, has `pref` on) and `event` to the webhook endpoints that
    /// want it. The mark and the messages commit together.
    #[allow(clippy::too_many_arguments)]
    async fn once(
        &self,
        subject: &str,
        kind: &str,
        owner_id: &str,
        pref: Kind,
        template: Option<Template>,
        event: Option<Event>,
        now: DateTime<Utc>,
    ) -> Result<u64, DomainError> {
        let txn = self.db.begin_write().await?;
        if !mark_in(&txn, subject, kind, now).await? {
            return Ok(0);
        }
        let mut queued = 0;
        if let (Some(outbox), Some(template)) = (&self.outbox, template) {
            let owner = user::Entity::find_by_id(owner_id.to_owned())
                .one(&txn)
                .await?;
            if let Some(owner) = owner
                && Status::from_db(&owner.status) == Status::Active
                && is_on(&owner.notification_prefs, pref)
            {
                outbox
                    .enqueue_email(&txn, &owner.email, &template, now)
                    .await?;
                queued = 1;
            }
        }
        if let (Some(webhooks), Some(event)) = (&self.webhooks, event) {
            queued += webhooks.emit(&txn, &event, now).await?;
        }
        txn.commit().await?;
        Ok(queued)
    }
}

async fn mark_in(
    conn: &impl sea_orm::ConnectionTrait,
    subject: &str,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    let inserted = notice_sent::Entity::insert(notice_sent::ActiveModel {
        subject: Set(subject.to_owned()),
        kind: Set(kind.to_owned()),
        sent_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([notice_sent::Column::Subject, notice_sent::Column::Kind])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await;
    match inserted {
        Ok(rows) => Ok(rows == 1),
        Err(DbErr::RecordNotInserted) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Where and when an audited action came from, as a message shows it.
fn origin_of(event: &audit_event::Model) -> Origin {
    Origin::new(
        event.at,
        &RequestContext {
            ip: event.ip.clone(),
            user_agent: event.user_agent.clone(),
        },
    )
}

fn key_ref(key: &api_key::Model) -> KeyRef {
    KeyRef {
        id: key.id.clone(),
        name: key.name.clone(),
        start: key.start.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_fall_back_to_each_kinds_default() {
        assert!(is_on("{}", KEY_EXPIRING));
        assert!(!is_on("{}", NEW_SIGN_IN));
        assert!(!is_on("not json", NEW_SIGN_IN));
        assert!(is_on(r#"{"new_sign_in": true}"#, NEW_SIGN_IN));
        assert!(!is_on(r#"{"key_expiring": false}"#, KEY_EXPIRING));
    }
}
