//! API keys: creation (the plaintext is returned once and never stored), listing, rotation with a
//! grace period, revocation, enabling and disabling. Every change is audited, and every rule on
//! who may do what lives here so the portal and the REST API agree.
pub mod format;
pub mod record;
pub mod seed;
pub mod status;

use std::{net::IpAddr, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use ipnet::IpNet;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, ExprTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use serde_json::json;

pub use format::{MalformedKey, PlainKey};
pub use record::KeyRecord;
pub use status::{EXPIRING_SOON, KeyAction, KeyStatus, Lifecycle};

use crate::{
    Database, audit,
    catalog::{ADMIN_SCOPE, Api, Catalog, KEYPORT_API, Plan, Quota, RateLimit, VERIFY_SCOPE},
    changes::{Change, KeyChanges, Listeners},
    entities::{api_key, user},
    id,
    limits::Effective,
    service::{Actor, FieldErrors, ServiceError, deny},
    webhooks::{Event, Webhooks},
};

/// Most entries in one key's IP allowlist.
pub const MAX_ALLOWLIST: usize = 100;
/// Longest grace period a rotation may keep the old key working.
pub const MAX_GRACE_SECONDS: u32 = 30 * 86_400;

/// A key as the portal and the API show it: never the hash, never the plaintext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    pub name: String,
    pub start: String,
    pub api_id: String,
    pub api: String,
    pub scopes: Vec<String>,
    pub owner_id: String,
    pub owner_email: String,
    pub owner_disabled: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub ip_allowlist: Vec<String>,
    pub rate_limit: Option<RateLimit>,
    pub quota: Option<Quota>,
    pub enabled: bool,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoke_reason: Option<String>,
    pub replaces: Option<String>,
    pub replaced_by: Option<String>,
    /// The limits enforced on the key: its own, else its plan's (see [`crate::limits`]).
    pub effective: Effective,
    /// The name of the plan the key's limits fall back to.
    pub plan: Option<String>,
}

impl From<KeyRecord> for Key {
    fn from(r: KeyRecord) -> Key {
        Key {
            api: r.api.clone(),
            owner_email: r.owner_email(),
            owner_disabled: !r.owner_active(),
            scopes: r.scopes(),
            ip_allowlist: r.ip_allowlist(),
            rate_limit: r.rate_limit(),
            quota: r.quota(),
            effective: r.effective(),
            plan: r.plan.as_ref().map(|p| p.name.clone()),
            id: r.row.id,
            name: r.row.name,
            start: r.row.start,
            api_id: r.row.api_id,
            owner_id: r.row.owner_id,
            created_at: r.row.created_at,
            expires_at: r.row.expires_at,
            last_used_at: r.row.last_used_at,
            enabled: r.row.enabled,
            revoked_at: r.row.revoked_at,
            revoke_reason: r.row.revoke_reason,
            replaces: r.row.replaces,
            replaced_by: r.row.replaced_by,
        }
    }
}

impl Key {
    /// The key as `GET /v1/keys/{id}` answers it (never the hash or the plaintext): what
    /// webhook events carry.
    pub fn to_json(&self, now: DateTime<Utc>) -> serde_json::Value {
        let rfc3339 = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let status = self.status(now);
        json!({
            "id": self.id,
            "name": self.name,
            "start": self.start,
            "api": self.api,
            "scopes": self.scopes,
            "owner_id": self.owner_id,
            "created_at": rfc3339(self.created_at),
            "expires_at": self.expires_at.map(rfc3339),
            "last_used_at": self.last_used_at.map(rfc3339),
            "ip_allowlist": self.ip_allowlist,
            "ratelimit": self.rate_limit.map(|r| json!({"limit": r.limit, "period_s": r.period_s})),
            "quota": self.quota.map(|q| json!({"limit": q.limit, "period": q.period.as_str()})),
            "status": status.as_str(),
            "enabled": self.enabled,
            "allowed_actions": status.allowed_action_names(),
        })
    }

    /// The key's status: the one rule in [`Lifecycle::status`], shared with the verifier.
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        Lifecycle {
            revoked: self.revoked_at.is_some(),
            enabled: self.enabled,
            owner_active: !self.owner_disabled,
            expires_at: self.expires_at,
            rotating: self.replaced_by.is_some(),
        }
        .status(now)
    }
}

/// A key and its plaintext, right after creation or rotation (the only time it exists).
#[derive(Debug)]
pub struct Created {
    pub key: Key,
    pub plaintext: PlainKey,
}

/// What a developer (or admin) submits to create a key.
#[derive(Clone, Debug, Default)]
pub struct NewKey {
    pub name: String,
    /// The API's slug.
    pub api: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub ip_allowlist: Vec<String>,
    pub rate_limit: Option<RateLimit>,
    pub quota: Option<Quota>,
    /// Admins only: create the key for another user.
    pub owner_id: Option<String>,
}

/// What a leak report does to a live key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeakAction {
    Revoke,
    Disable,
}

/// A change to a key; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    /// `Some(None)`: never expires (if the plan allows).
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub ip_allowlist: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Newest,
    Oldest,
    Name,
    Expires,
    LastUsed,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Oldest => "oldest",
            Sort::Name => "name",
            Sort::Expires => "expires",
            Sort::LastUsed => "last_used",
        }
    }
    pub fn parse(s: &str) -> Sort {
        match s {
            "oldest" => Sort::Oldest,
            "name" => Sort::Name,
            "expires" => Sort::Expires,
            "last_used" => Sort::LastUsed,
            _ => Sort::Newest,
        }
    }
}

/// Which keys a list shows.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Admins: one owner's keys (developers always see only their own).
    pub owner_id: Option<String>,
    /// An API slug.
    pub api: Option<String>,
    pub status: Option<KeyStatus>,
    /// Part of the name or start.
    pub query: Option<String>,
    pub sort: Sort,
}

/// One page of keys.
#[derive(Clone, Debug, Default)]
pub struct KeyPage {
    pub keys: Vec<Key>,
    pub total: u64,
    /// For cursor paging (newest first): pass back to get the next page.
    pub next_cursor: Option<String>,
}

/// Parses an allowlist entry: an IPv4/IPv6 address or a CIDR.
pub fn parse_allowlist_entry(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .map(|n| n.trunc())
        .ok()
        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
}

fn check_allowlist(entries: &[String], errors: &mut FieldErrors) -> Vec<String> {
    let mut out = Vec::new();
    for e in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        match parse_allowlist_entry(e) {
            Some(net) => {
                let text = if net.prefix_len() == net.max_prefix_len() {
                    net.addr().to_string()
                } else {
                    net.to_string()
                };
                if !out.contains(&text) {
                    out.push(text);
                }
            }
            None => errors.add(
                "ip_allowlist",
                format!("\"{e}\" is not an IP address or CIDR (e.g. 203.0.113.7, 10.0.0.0/8, 2001:db8::/32)"),
            ),
        }
    }
    if out.len() > MAX_ALLOWLIST {
        errors.add(
            "ip_allowlist",
            format!("at most {MAX_ALLOWLIST} addresses or ranges"),
        );
    }
    out
}

fn check_key_name(name: &str, errors: &mut FieldErrors) {
    let len = name.trim().chars().count();
    if len == 0 {
        errors.add("name", "give the key a name, e.g. where it is used");
    } else if len > 100 {
        errors.add("name", "a key name is at most 100 characters");
    }
}

/// The API keys service.
#[derive(Clone, Debug)]
pub struct Keys {
    db: Database,
    catalog: Catalog,
    listeners: Listeners,
    /// With email on, a developer creates keys only once their address is confirmed.
    require_verified_email: bool,
    /// Where key events go out (queued in the transaction of each change).
    webhooks: Option<Webhooks>,
}

struct Owner {
    id: String,
    is_admin: bool,
}

impl Keys {
    pub fn new(db: Database) -> Keys {
        Keys {
            catalog: Catalog::new(db.clone()),
            db,
            listeners: Listeners::default(),
            require_verified_email: false,
            webhooks: None,
        }
    }

    /// Queues a webhook event for every change to a key.
    pub fn with_webhooks(mut self, webhooks: Webhooks) -> Keys {
        self.webhooks = Some(webhooks);
        self
    }

    /// Queues `kinds` of events about `key_id`, as it stands in `txn`, for the endpoints that
    /// want them.
    async fn announce(
        &self,
        txn: &DatabaseTransaction,
        kinds: &[&'static str],
        key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let Some(webhooks) = &self.webhooks else {
            return Ok(());
        };
        if kinds.is_empty() {
            return Ok(());
        }
        let rows = api_key::Entity::find()
            .filter(api_key::Column::Id.eq(key_id))
            .all(txn)
            .await?;
        let Some(owner) = rows.first().map(|r| r.owner_id.clone()) else {
            return Ok(());
        };
        // Most keys have no one listening: then the key is not loaded whole.
        let endpoints = webhooks.listening(txn, kinds, Some(&owner), now).await?;
        if endpoints.is_empty() {
            return Ok(());
        }
        let Some(key) = record::load(txn, rows)
            .await?
            .into_iter()
            .next()
            .map(Key::from)
        else {
            return Ok(());
        };
        for kind in kinds {
            let event = Event {
                kind,
                owner_id: Some(key.owner_id.clone()),
                data: key.to_json(now),
            };
            webhooks.emit_to(txn, &endpoints, &event, now).await?;
        }
        Ok(())
    }

    /// Refuses key creation to developers whose address is not confirmed (when email is on).
    pub fn with_verified_email_required(mut self) -> Keys {
        self.require_verified_email = true;
        self
    }

    async fn check_email_verified(&self, actor: &Actor) -> Result<(), ServiceError> {
        if !self.require_verified_email || actor.is_admin {
            return Ok(());
        }
        let verified = user::Entity::find_by_id(actor.user_id.clone())
            .one(self.db.conn())
            .await?
            .is_some_and(|u| u.email_verified_at.is_some());
        if verified {
            Ok(())
        } else {
            Err(ServiceError::Conflict(
                "Confirm your email address before creating keys: open the link we mailed you, \
                 or ask for a new one on your dashboard."
                    .into(),
            ))
        }
    }

    /// Tells `listener` (the verifier) of every committed change to a key, a plan or a version,
    /// here and in the catalog.
    pub fn with_changes(mut self, listener: Arc<dyn KeyChanges>) -> Keys {
        self.catalog = self.catalog.with_changes(listener.clone());
        self.listeners.add(listener);
        self
    }

    /// After a key's change committed: the verifier's index, and the webhook worker.
    async fn reindex(&self, key_id: &str) {
        self.listeners.tell(Change::Key(key_id.to_owned())).await;
        if let Some(webhooks) = &self.webhooks {
            webhooks.wake();
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    async fn to_keys(&self, rows: Vec<api_key::Model>) -> Result<Vec<Key>, ServiceError> {
        Ok(record::load(self.db.conn(), rows)
            .await?
            .into_iter()
            .map(Key::from)
            .collect())
    }

    async fn row(&self, key_id: &str) -> Result<Option<api_key::Model>, ServiceError> {
        Ok(api_key::Entity::find()
            .filter(api_key::Column::Id.eq(key_id))
            .one(self.db.conn())
            .await?)
    }

    /// A key the actor may see (their own; any for admins), else `NotFound`.
    pub async fn get(&self, actor: &Actor, key_id: &str) -> Result<Key, ServiceError> {
        let row = self.row(key_id).await?.ok_or(ServiceError::NotFound)?;
        if row.owner_id != actor.user_id && !actor.is_admin {
            // Another user's key: "not found", as for a key that does not exist, but audited.
            let refused = ServiceError::NotFound;
            return Err(deny(&self.db, actor, "key.read", Some(key_id), refused).await);
        }
        Ok(self.to_keys(vec![row]).await?.remove(0))
    }

    /// The key with this SHA-256, whoever owns it (for authenticating a request).
    pub async fn find_by_hash(&self, hash: &str) -> Result<Option<Key>, ServiceError> {
        let rows = api_key::Entity::find()
            .filter(api_key::Column::Hash.eq(hash))
            .all(self.db.conn())
            .await?;
        Ok(self.to_keys(rows).await?.into_iter().next())
    }

    async fn owner(&self, actor: &Actor, owner_id: Option<&str>) -> Result<Owner, ServiceError> {
        match owner_id {
            None => Ok(Owner {
                id: actor.user_id.clone(),
                is_admin: actor.is_admin,
            }),
            Some(id) if id == actor.user_id => Ok(Owner {
                id: id.to_owned(),
                is_admin: actor.is_admin,
            }),
            Some(id) if !actor.is_admin => {
                let refused =
                    ServiceError::Forbidden("only admins can create keys for other users".into());
                Err(deny(&self.db, actor, "key.create", Some(id), refused).await)
            }
            Some(id) => {
                let user = user::Entity::find_by_id(id.to_owned())
                    .one(self.db.conn())
                    .await?
                    .ok_or_else(|| ServiceError::invalid("owner_id", "no user has this id"))?;
                Ok(Owner {
                    id: user.id,
                    is_admin: user.role == "admin",
                })
            }
        }
    }

    /// Scope, expiry and limit rules shared by create and update.
    #[allow(clippy::too_many_arguments)]
    fn check_grant(
        actor: &Actor,
        owner: &Owner,
        api: &Api,
        plan: &Plan,
        scopes: Option<&[String]>,
        expires_at: Option<Option<DateTime<Utc>>>,
        now: DateTime<Utc>,
        errors: &mut FieldErrors,
    ) -> Result<(), ServiceError> {
        if let Some(scopes) = scopes {
            if scopes.is_empty() {
                errors.add("scopes", "choose at least one scope");
            }
            for s in scopes {
                if !api.has_scope(s) {
                    errors.add("scopes", format!("{} has no scope named \"{s}\"", api.slug));
                }
            }
            // No privilege minting: a management key may grant on the management API only the
            // scopes it holds itself (`admin` holds them all).
            if api.slug == KEYPORT_API
                && let Some(via) = &actor.via_key
                && !via.scopes.iter().any(|s| s == ADMIN_SCOPE)
                && let Some(extra) = scopes.iter().find(|s| !via.scopes.contains(s))
            {
                return Err(ServiceError::Forbidden(format!(
                    "this key cannot grant the {extra} scope: it does not hold it itself"
                )));
            }
            // Verification tokens are for gateways, which admins set up.
            if api.slug == KEYPORT_API
                && scopes.iter().any(|s| s == VERIFY_SCOPE)
                && !actor.is_admin
            {
                return Err(ServiceError::Forbidden(
                    "only admins can grant the verify scope (it is for gateways)".into(),
                ));
            }
            if api.slug == KEYPORT_API && scopes.iter().any(|s| s == ADMIN_SCOPE) {
                if !actor.is_admin {
                    return Err(ServiceError::Forbidden(
                        "only admins can grant the admin scope".into(),
                    ));
                }
                if !owner.is_admin {
                    errors.add(
                        "scopes",
                        "the admin scope can only be granted on an admin's key",
                    );
                }
            }
        }
        if let Some(expires_at) = expires_at {
            match expires_at {
                Some(at) if at <= now => {
                    errors.add("expires_at", "the expiry must be in the future");
                }
                Some(at) => {
                    if !actor.is_admin
                        && let Some(days) = plan.max_lifetime_days
                        && at > now + Duration::days(days as i64) + Duration::minutes(5)
                    {
                        errors.add(
                            "expires_at",
                            format!("your plan allows keys to live at most {days} days"),
                        );
                    }
                }
                None => {
                    if !actor.is_admin
                        && let Some(days) = plan.max_lifetime_days
                    {
                        errors.add(
                            "expires_at",
                            format!("your plan needs keys to expire within {days} days"),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Passes `result` through, recording a refusal (403) in the audit log as `authz.denied`.
    async fn audit_denial(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        result: Result<(), ServiceError>,
    ) -> Result<(), ServiceError> {
        match result {
            Err(refused @ ServiceError::Forbidden(_)) => {
                Err(deny(&self.db, actor, action, target, refused).await)
            }
            other => other,
        }
    }

    /// Creates a key; the plaintext in the result is the only copy there will ever be.
    pub async fn create(&self, actor: &Actor, new: NewKey) -> Result<Created, ServiceError> {
        let now = Utc::now();
        self.check_email_verified(actor).await?;
        let owner = self.owner(actor, new.owner_id.as_deref()).await?;
        let mut errors = FieldErrors::default();
        check_key_name(&new.name, &mut errors);
        let api = self.catalog.api_by_slug(&new.api).await?;
        if api.is_none() {
            errors.add("api", format!("there is no API named \"{}\"", new.api));
        }
        let plan = self.catalog.plan_for_user(&owner.id).await?;
        let ip_allowlist = check_allowlist(&new.ip_allowlist, &mut errors);
        if let Some(api) = &api {
            let granted = Self::check_grant(
                actor,
                &owner,
                api,
                &plan,
                Some(&new.scopes),
                Some(new.expires_at),
                now,
                &mut errors,
            );
            self.audit_denial(actor, "key.create", None, granted)
                .await?;
        }
        if let Some(r) = new.rate_limit {
            if r.limit == 0 || r.period_s == 0 || r.period_s > 86_400 {
                errors.add(
                    "ratelimit",
                    "a rate limit is at least 1 request per period of 1 second to 1 day",
                );
            } else if r.limit > RateLimit::MAX_LIMIT {
                errors.add(
                    "ratelimit",
                    "a rate limit is at most 1,000,000,000 requests per period",
                );
            } else if !actor.is_admin
                && let Some(p) = plan.rate_limit
                && !r.within(&p)
            {
                errors.add(
                    "ratelimit",
                    format!(
                        "your plan allows at most {} requests per {} s; a key can only lower it",
                        p.limit, p.period_s
                    ),
                );
            }
        }
        if let Some(q) = new.quota {
            if q.limit == 0 {
                errors.add("quota", "a quota is at least 1 request");
            } else if q.limit > Quota::MAX_LIMIT {
                errors.add("quota", "a quota is at most 10^15 requests");
            } else if !actor.is_admin
                && let Some(p) = plan.quota
                && !q.within(&p)
            {
                errors.add(
                    "quota",
                    format!(
                        "your plan allows at most {} requests per {}; a key's quota per {} can be at most {}",
                        p.limit,
                        p.period.as_str(),
                        q.period.as_str(),
                        p.largest_within(q.period)
                    ),
                );
            }
        }
        errors.into_result()?;
        let api = api.expect("checked above");
        if !actor.is_admin
            && let Some(max) = plan.max_active_keys
        {
            let active = self.count_active(&owner.id, now).await?;
            if active >= max as u64 {
                return Err(ServiceError::Conflict(format!(
                    "your plan allows {max} active keys and you have {active}: revoke one you no longer use first"
                )));
            }
        }
        let mut scopes = new.scopes.clone();
        scopes.sort();
        scopes.dedup();
        let plaintext = PlainKey::generate();
        let key_id = id::new_id(id::KEY);
        let txn = self.db.begin_write().await?;
        api_key::Entity::insert(api_key::ActiveModel {
            id: Set(key_id.clone()),
            owner_id: Set(owner.id.clone()),
            api_id: Set(api.id.clone()),
            name: Set(new.name.trim().to_owned()),
            start: Set(plaintext.start()),
            hash: Set(plaintext.hash()),
            scopes: Set(json!(scopes).to_string()),
            ip_allowlist: Set(json!(ip_allowlist).to_string()),
            rate_limit: Set(new.rate_limit.map(|r| r.limit as i32)),
            rate_period_s: Set(new.rate_limit.map(|r| r.period_s as i32)),
            quota_limit: Set(new.quota.map(|q| q.limit as i64)),
            quota_period: Set(new.quota.map(|q| q.period.as_str().to_owned())),
            enabled: Set(true),
            created_by: Set(actor.user_id.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            expires_at: Set(new.expires_at),
            ..Default::default()
        })
        .exec_without_returning(&txn)
        .await?;
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "key.create",
            Some(&key_id),
            json!({
                "name": new.name.trim(), "api": api.slug, "scopes": scopes,
                "owner_id": owner.id, "start": plaintext.start(),
                "expires_at": new.expires_at.map(|e| e.to_rfc3339()),
            }),
        )
        .await?;
        self.announce(&txn, &["key.created"], &key_id, now).await?;
        txn.commit().await?;
        self.reindex(&key_id).await;
        let key = self.get(actor, &key_id).await?;
        Ok(Created { key, plaintext })
    }

    /// Keys that count against a plan's "active keys": not revoked, not expired.
    async fn count_active(&self, owner_id: &str, now: DateTime<Utc>) -> Result<u64, ServiceError> {
        Ok(api_key::Entity::find()
            .filter(api_key::Column::OwnerId.eq(owner_id))
            .filter(api_key::Column::RevokedAt.is_null())
            .filter(
                Condition::any()
                    .add(api_key::Column::ExpiresAt.is_null())
                    .add(api_key::Column::ExpiresAt.gt(now)),
            )
            .count(self.db.conn())
            .await?)
    }

    /// A page of keys: the actor's own (admins: everyone's, or one owner's).
    /// `cursor` pages newest-first by creation; `offset` pages any sort order.
    pub async fn list(
        &self,
        actor: &Actor,
        filter: &ListFilter,
        cursor: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<KeyPage, ServiceError> {
        let now = Utc::now();
        let mut query = api_key::Entity::find();
        if !actor.is_admin {
            query = query.filter(api_key::Column::OwnerId.eq(actor.user_id.clone()));
        } else if let Some(owner) = &filter.owner_id {
            query = query.filter(api_key::Column::OwnerId.eq(owner.clone()));
        }
        if let Some(slug) = &filter.api {
            match self.catalog.api_by_slug(slug).await? {
                Some(api) => query = query.filter(api_key::Column::ApiId.eq(api.id)),
                None => {
                    return Ok(KeyPage {
                        keys: vec![],
                        total: 0,
                        next_cursor: None,
                    });
                }
            }
        }
        if let Some(q) = filter
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
        {
            let like = format!("%{}%", q.replace(['%', '_'], ""));
            query = query.filter(
                Condition::any()
                    .add(api_key::Column::Name.like(like.clone()))
                    .add(api_key::Column::Start.like(like))
                    .add(api_key::Column::Id.eq(q)),
            );
        }
        if let Some(status) = filter.status {
            query = query.filter(status_condition(status, now));
        }
        let total = query.clone().count(self.db.conn()).await?;
        let cursor_seq = cursor.and_then(|c| c.parse::<i64>().ok());
        if let Some(seq) = cursor_seq {
            query = query.filter(api_key::Column::Seq.lt(seq));
        }
        query = match filter.sort {
            Sort::Newest => query.order_by_desc(api_key::Column::Seq),
            Sort::Oldest => query.order_by_asc(api_key::Column::Seq),
            Sort::Name => query
                .order_by_asc(api_key::Column::Name)
                .order_by_desc(api_key::Column::Seq),
            Sort::Expires => query
                .order_by_asc(Expr::col(api_key::Column::ExpiresAt).is_null())
                .order_by_asc(api_key::Column::ExpiresAt)
                .order_by_desc(api_key::Column::Seq),
            Sort::LastUsed => query
                .order_by_asc(Expr::col(api_key::Column::LastUsedAt).is_null())
                .order_by_desc(api_key::Column::LastUsedAt)
                .order_by_desc(api_key::Column::Seq),
        };
        let rows = query
            .offset(if cursor_seq.is_some() { 0 } else { offset })
            .limit(limit + 1)
            .all(self.db.conn())
            .await?;
        let more = rows.len() as u64 > limit;
        let rows: Vec<_> = rows.into_iter().take(limit as usize).collect();
        let next_cursor = (more && filter.sort == Sort::Newest)
            .then(|| rows.last().map(|r| r.seq.to_string()))
            .flatten();
        Ok(KeyPage {
            keys: self.to_keys(rows).await?,
            total,
            next_cursor,
        })
    }

    pub async fn update(
        &self,
        actor: &Actor,
        key_id: &str,
        patch: KeyPatch,
    ) -> Result<Key, ServiceError> {
        let now = Utc::now();
        let key = self.get(actor, key_id).await?;
        let status = key.status(now);
        let editing = patch.name.is_some()
            || patch.scopes.is_some()
            || patch.expires_at.is_some()
            || patch.ip_allowlist.is_some();
        for (wanted, action) in [
            (editing, KeyAction::Edit),
            (patch.enabled.is_some(), KeyAction::Toggle),
        ] {
            if wanted && let Err(why) = status.allows(action) {
                return Err(ServiceError::Conflict(why.into()));
            }
        }
        let owner = self.owner(actor, Some(&key.owner_id)).await?;
        let api = self
            .catalog
            .api_by_id(&key.api_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let plan = self.catalog.plan_for_user(&key.owner_id).await?;
        let mut errors = FieldErrors::default();
        if let Some(name) = &patch.name {
            check_key_name(name, &mut errors);
        }
        let ip_allowlist = patch
            .ip_allowlist
            .as_ref()
            .map(|list| check_allowlist(list, &mut errors));
        let mut granted = Self::check_grant(
            actor,
            &owner,
            &api,
            &plan,
            patch.scopes.as_deref(),
            patch.expires_at,
            now,
            &mut errors,
        );
        // A key may not loosen its own IP allowlist: whoever holds a stolen key could otherwise
        // free it from the network it is tied to.
        if granted.is_ok()
            && actor.via_key.as_ref().is_some_and(|via| via.id == key_id)
            && let Some(list) = &ip_allowlist
            && *list != key.ip_allowlist
        {
            granted = Err(ServiceError::Forbidden(
                "a key cannot change its own IP allowlist; change it in the portal or with another key"
                    .into(),
            ));
        }
        self.audit_denial(actor, "key.update", Some(key_id), granted)
            .await?;
        errors.into_result()?;
        let mut update = api_key::Entity::update_many()
            .col_expr(api_key::Column::UpdatedAt, Expr::value(now))
            .filter(api_key::Column::Id.eq(key_id));
        let mut fields = Vec::new();
        if let Some(name) = &patch.name {
            update = update.col_expr(api_key::Column::Name, Expr::value(name.trim().to_owned()));
            fields.push("name");
        }
        if let Some(scopes) = &patch.scopes {
            let mut scopes = scopes.clone();
            scopes.sort();
            scopes.dedup();
            update = update.col_expr(
                api_key::Column::Scopes,
                Expr::value(json!(scopes).to_string()),
            );
            fields.push("scopes");
        }
        if let Some(expires_at) = patch.expires_at {
            update = update.col_expr(api_key::Column::ExpiresAt, Expr::value(expires_at));
            fields.push("expires_at");
        }
        if let Some(list) = &ip_allowlist {
            update = update.col_expr(
                api_key::Column::IpAllowlist,
                Expr::value(json!(list).to_string()),
            );
            fields.push("ip_allowlist");
        }
        let toggled = patch.enabled.filter(|e| *e != key.enabled);
        if let Some(enabled) = toggled {
            update = update.col_expr(api_key::Column::Enabled, Expr::value(enabled));
        }
        let txn = self.db.begin_write().await?;
        update.exec(&txn).await?;
        if !fields.is_empty() {
            audit::record(
                &txn,
                &actor.ctx,
                Some(&actor.user_id),
                "key.update",
                Some(key_id),
                json!({ "fields": fields, "scopes": patch.scopes, "ip_allowlist": ip_allowlist }),
            )
            .await?;
        }
        if let Some(enabled) = toggled {
            audit::record(
                &txn,
                &actor.ctx,
                Some(&actor.user_id),
                if enabled { "key.enable" } else { "key.disable" },
                Some(key_id),
                json!({}),
            )
            .await?;
        }
        let mut events = Vec::new();
        if !fields.is_empty() {
            events.push("key.updated");
        }
        match toggled {
            Some(true) => events.push("key.enabled"),
            Some(false) => events.push("key.disabled"),
            None => {}
        }
        self.announce(&txn, &events, key_id, now).await?;
        txn.commit().await?;
        self.reindex(key_id).await;
        self.get(actor, key_id).await
    }

    /// Replaces a key with a new one of the same settings; the old one keeps working for
    /// `grace_seconds` (0: stops now), then answers expired.
    pub async fn rotate(
        &self,
        actor: &Actor,
        key_id: &str,
        grace_seconds: u32,
    ) -> Result<Created, ServiceError> {
        let now = Utc::now();
        if grace_seconds > MAX_GRACE_SECONDS {
            return Err(ServiceError::invalid(
                "grace_period_s",
                "a grace period is at most 30 days (2592000 s)",
            ));
        }
        let old = self.get(actor, key_id).await?;
        if let Err(why) = old.status(now).allows(KeyAction::Rotate) {
            return Err(ServiceError::Conflict(why.into()));
        }
        let row = self.row(key_id).await?.ok_or(ServiceError::NotFound)?;
        // Same settings, including the same lifetime from now on.
        let expires_at = row.expires_at.map(|e| now + (e - row.created_at));
        let plaintext = PlainKey::generate();
        let new_id = id::new_id(id::KEY);
        let grace_end = now + Duration::seconds(grace_seconds as i64);
        let old_expiry = match row.expires_at {
            Some(e) if e < grace_end => e,
            _ => grace_end,
        };
        let txn = self.db.begin_write().await?;
        // Claim the old key first, so two concurrent rotations cannot both succeed.
        let claimed = api_key::Entity::update_many()
            .col_expr(api_key::Column::ReplacedBy, Expr::value(new_id.clone()))
            .col_expr(api_key::Column::ExpiresAt, Expr::value(old_expiry))
            .col_expr(api_key::Column::UpdatedAt, Expr::value(now))
            .filter(api_key::Column::Id.eq(key_id))
            .filter(api_key::Column::ReplacedBy.is_null())
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(ServiceError::Conflict(
                "this key was already rotated; rotate its replacement instead".into(),
            ));
        }
        api_key::Entity::insert(api_key::ActiveModel {
            id: Set(new_id.clone()),
            owner_id: Set(row.owner_id.clone()),
            api_id: Set(row.api_id.clone()),
            name: Set(row.name.clone()),
            start: Set(plaintext.start()),
            hash: Set(plaintext.hash()),
            scopes: Set(row.scopes.clone()),
            ip_allowlist: Set(row.ip_allowlist.clone()),
            rate_limit: Set(row.rate_limit),
            rate_period_s: Set(row.rate_period_s),
            quota_limit: Set(row.quota_limit),
            quota_period: Set(row.quota_period.clone()),
            enabled: Set(row.enabled),
            created_by: Set(actor.user_id.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            expires_at: Set(expires_at),
            replaces: Set(Some(key_id.to_owned())),
            ..Default::default()
        })
        .exec_without_returning(&txn)
        .await?;
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "key.rotate",
            Some(key_id),
            json!({ "new_key_id": new_id, "grace_period_s": grace_seconds, "old_key_expires_at": old_expiry.to_rfc3339() }),
        )
        .await?;
        self.announce(&txn, &["key.rotated"], &new_id, now).await?;
        txn.commit().await?;
        self.reindex(key_id).await;
        self.reindex(&new_id).await;
        let key = self.get(actor, &new_id).await?;
        Ok(Created { key, plaintext })
    }

    /// A key reported leaked: revoked (or disabled) at once unless it already is, audited as
    /// `key.leaked` with the report's `details`, an alert raised for its owner (who is also
    /// mailed, by the notifications job), and `key.leaked` queued for webhooks. Returns what was
    /// done: `revoked`, `disabled`, `already revoked` or `already disabled`.
    pub async fn mark_leaked(
        &self,
        key_id: &str,
        action: LeakAction,
        actor_id: Option<&str>,
        details: serde_json::Value,
        ctx: &crate::audit::RequestContext,
    ) -> Result<&'static str, ServiceError> {
        let now = Utc::now();
        let row = self.row(key_id).await?.ok_or(ServiceError::NotFound)?;
        let txn = self.db.begin_write().await?;
        let mut update = api_key::Entity::update_many()
            .col_expr(api_key::Column::UpdatedAt, Expr::value(now))
            .filter(api_key::Column::Id.eq(key_id))
            .filter(api_key::Column::RevokedAt.is_null());
        update = match action {
            LeakAction::Revoke => update
                .col_expr(api_key::Column::RevokedAt, Expr::value(now))
                .col_expr(
                    api_key::Column::RevokeReason,
                    Expr::value(Some("reported leaked".to_owned())),
                ),
            LeakAction::Disable => update
                .col_expr(api_key::Column::Enabled, Expr::value(false))
                .filter(api_key::Column::Enabled.eq(true)),
        };
        let changed = update.exec(&txn).await?.rows_affected == 1;
        let done = match (changed, action) {
            (false, _) if row.revoked_at.is_some() => "already revoked",
            (false, _) => "already disabled",
            (true, LeakAction::Revoke) => "revoked",
            (true, LeakAction::Disable) => "disabled",
        };
        let mut audited = details.clone();
        if let Some(fields) = audited.as_object_mut() {
            fields.insert("action".into(), json!(done));
        }
        audit::record(&txn, ctx, actor_id, "key.leaked", Some(key_id), audited).await?;
        if !changed {
            // Reported before: recorded, but the owner and the webhooks heard of it already.
            txn.commit().await?;
            return Ok(done);
        }
        let place = details
            .get("url")
            .and_then(|u| u.as_str())
            .filter(|u| !u.is_empty())
            .unwrap_or("a public place");
        crate::entities::usage_alert::Entity::insert(crate::entities::usage_alert::ActiveModel {
            id: Set(id::new_id(id::ALERT)),
            key_id: Set(key_id.to_owned()),
            owner_id: Set(row.owner_id.clone()),
            rule: Set("leaked".to_owned()),
            window_start: Set(now.timestamp()),
            window_end: Set(now.timestamp()),
            observed: Set(0),
            baseline: Set(0),
            detail: Set(format!(
                "The key was found in {place} and reported leaked; Keyport {done} it."
            )),
            created_at: Set(now),
            acknowledged_at: Set(None),
            acknowledged_by: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
        let mut events = vec!["key.leaked"];
        match done {
            "revoked" => events.push("key.revoked"),
            "disabled" => events.push("key.disabled"),
            _ => {}
        }
        self.announce(&txn, &events, key_id, now).await?;
        txn.commit().await?;
        self.reindex(key_id).await;
        Ok(done)
    }

    /// Revokes a key: it stops verifying at once, for good.
    pub async fn revoke(
        &self,
        actor: &Actor,
        key_id: &str,
        reason: Option<&str>,
    ) -> Result<Key, ServiceError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > 500) {
            return Err(ServiceError::invalid(
                "reason",
                "a reason is at most 500 characters",
            ));
        }
        if reason.is_some_and(|r| {
            r.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        }) {
            return Err(ServiceError::invalid(
                "reason",
                "a reason cannot contain control characters",
            ));
        }
        self.get(actor, key_id).await?;
        let now = Utc::now();
        let txn = self.db.begin_write().await?;
        let revoked = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(now))
            .col_expr(
                api_key::Column::RevokeReason,
                Expr::value(reason.map(str::to_owned)),
            )
            .col_expr(api_key::Column::UpdatedAt, Expr::value(now))
            .filter(api_key::Column::Id.eq(key_id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if revoked.rows_affected == 0 {
            return Err(ServiceError::Conflict("this key is already revoked".into()));
        }
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "key.revoke",
            Some(key_id),
            json!({ "reason": reason }),
        )
        .await?;
        self.announce(&txn, &["key.revoked"], key_id, now).await?;
        txn.commit().await?;
        self.reindex(key_id).await;
        self.get(actor, key_id).await
    }
}

/// The SQL condition for keys in a status (see [`Key::status`]; "disabled" here means the key
/// itself is disabled).
fn status_condition(status: KeyStatus, now: DateTime<Utc>) -> Condition {
    let not_revoked = api_key::Column::RevokedAt.is_null();
    match status {
        KeyStatus::Revoked => Condition::all().add(api_key::Column::RevokedAt.is_not_null()),
        KeyStatus::Disabled => Condition::all()
            .add(not_revoked)
            .add(api_key::Column::Enabled.eq(false)),
        KeyStatus::Expired => Condition::all()
            .add(not_revoked)
            .add(api_key::Column::Enabled.eq(true))
            .add(api_key::Column::ExpiresAt.lte(now)),
        KeyStatus::Rotating => Condition::all()
            .add(not_revoked)
            .add(api_key::Column::Enabled.eq(true))
            .add(api_key::Column::ReplacedBy.is_not_null())
            .add(api_key::Column::ExpiresAt.gt(now)),
        KeyStatus::ExpiringSoon => Condition::all()
            .add(not_revoked)
            .add(api_key::Column::Enabled.eq(true))
            .add(api_key::Column::ReplacedBy.is_null())
            .add(api_key::Column::ExpiresAt.gt(now))
            .add(api_key::Column::ExpiresAt.lte(now + EXPIRING_SOON)),
        KeyStatus::Active => Condition::all()
            .add(not_revoked)
            .add(api_key::Column::Enabled.eq(true))
            .add(api_key::Column::ReplacedBy.is_null())
            .add(
                Condition::any()
                    .add(api_key::Column::ExpiresAt.is_null())
                    .add(api_key::Column::ExpiresAt.gt(now + EXPIRING_SOON)),
            ),
    }
}
