//! The account flows that need email (only when SMTP is configured): verified sign-up that never
//! says whether an address has an account, forgot password, and the security notices. Each
//! message is queued in the outbox in the transaction of the change that causes it.
//!
//! Links carry 256-bit random tokens; only their SHA-256 is stored, and each works once.
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    Accounts, Email, EmailError, NewUser, Password, PasswordError, Role, SignUpError, Status, User,
    new_user_row, password, throttle,
};
use crate::{
    DomainError,
    audit::{self, RequestContext},
    entities::{email_token, user},
    id,
    mail::{Template, templates::Origin},
    outbox::Outbox,
    service::{Actor, ServiceError},
};

pub const VERIFY_EMAIL: &str = "verify_email";
pub const RESET_PASSWORD: &str = "reset_password";
pub const INVITE: &str = "invite";

/// How long a verification link works.
pub const VERIFY_EMAIL_TTL: Duration = Duration::hours(24);
/// How long a password-reset link works.
pub const RESET_PASSWORD_TTL: Duration = Duration::hours(1);
/// How long an invitation works.
pub const INVITE_TTL: Duration = Duration::days(7);

/// An invitation, as the page it links to shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub email: String,
    pub role: Role,
    pub plan_id: Option<String>,
}

/// A link that cannot be used (unknown, expired, used, or for something else), and what can go
/// wrong while using one.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("This link has expired or was already used. Ask for a new one.")]
    Invalid,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("This account is disabled. Contact your administrator.")]
    Disabled,
    #[error("An account with this address exists already. Sign in instead.")]
    AccountExists,
    #[error(transparent)]
    Internal(#[from] DomainError),
}

impl From<sea_orm::DbErr> for LinkError {
    fn from(e: sea_orm::DbErr) -> Self {
        LinkError::Internal(e.into())
    }
}

/// A request that mails someone was refused.
#[derive(Debug, thiserror::Error)]
pub enum MailRequestError {
    #[error(transparent)]
    Email(#[from] EmailError),
    #[error("Too many requests, try again in {}.", .0.wait_text())]
    Throttled(throttle::Throttled),
    #[error(transparent)]
    Internal(#[from] DomainError),
}

impl From<sea_orm::DbErr> for MailRequestError {
    fn from(e: sea_orm::DbErr) -> Self {
        MailRequestError::Internal(e.into())
    }
}

/// A new link token and the digest that is stored.
fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `token` could be one of ours at all (43 base64url characters): anything else costs
/// no query.
fn plausible(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn insert_token(
    conn: &impl ConnectionTrait,
    user_id: &str,
    email: &str,
    purpose: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<String, DomainError> {
    insert_link(conn, Some(user_id), email, purpose, "{}".into(), ttl, now).await
}

async fn insert_link(
    conn: &impl ConnectionTrait,
    user_id: Option<&str>,
    email: &str,
    purpose: &str,
    details: String,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<String, DomainError> {
    let (token, hash) = new_token();
    email_token::Entity::insert(email_token::ActiveModel {
        token_hash: Set(hash),
        user_id: Set(user_id.map(str::to_owned)),
        purpose: Set(purpose.to_owned()),
        email: Set(Some(email.to_owned())),
        details: Set(details),
        created_at: Set(now),
        expires_at: Set(now + ttl),
        used_at: Set(None),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(token)
}

impl Accounts {
    /// Whether email flows are on (SMTP configured).
    pub fn mails(&self) -> bool {
        self.outbox.is_some()
    }

    fn outbox(&self) -> Result<&Outbox, DomainError> {
        self.outbox
            .as_ref()
            .ok_or_else(|| DomainError::Internal("email is not configured".into()))
    }

    /// Sign-up when email is on. Answers the same whether or not the address has an account:
    /// a new address gets an unverified account and a verification link; an address that has
    /// one gets a note that someone tried, and nothing else changes. Both cost one password
    /// hash, one transaction and one queued message.
    pub async fn sign_up_with_email(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<(), SignUpError> {
        let outbox = self.outbox()?;
        let now = Utc::now();
        let email = Email::parse(email)?;
        let password = Password::parse(password, email.as_str())?;
        let keys = throttle::mail_keys(email.as_str(), ctx);
        if let Err(throttled) = throttle::reserve(&self.db, &keys, now).await? {
            return Err(SignUpError::Throttled(throttled));
        }
        // Counted whatever happens next (a reservation dropped stays counted).
        let hash = password::hash(&password).await?;
        let origin = Origin::new(now, ctx);
        let txn = self.db.begin_write().await?;
        let existing = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(&txn)
            .await?;
        match existing {
            Some(row) => {
                outbox
                    .enqueue_email(&txn, &row.email, &Template::SignUpExisting { origin }, now)
                    .await?;
                audit::record(
                    &txn,
                    ctx,
                    None,
                    "account.sign_up_existing",
                    Some(&row.id),
                    json!({}),
                )
                .await?;
            }
            None => {
                let id = id::new_id(id::USER);
                let inserted = user::Entity::insert(new_user_row(NewUser {
                    id: id.clone(),
                    email: email.as_str().to_owned(),
                    password_hash: hash,
                    role: Role::Developer,
                    plan_id: None,
                    email_verified_at: None,
                    now,
                }))
                .exec_without_returning(&txn)
                .await;
                if let Err(e) = inserted {
                    // Another sign-up with this address committed first: it mailed the owner.
                    if crate::service::is_unique_violation(&e) {
                        return Ok(());
                    }
                    return Err(e.into());
                }
                let token = insert_token(
                    &txn,
                    &id,
                    email.as_str(),
                    VERIFY_EMAIL,
                    VERIFY_EMAIL_TTL,
                    now,
                )
                .await?;
                outbox
                    .enqueue_email(
                        &txn,
                        email.as_str(),
                        &Template::VerifyEmail { token, origin },
                        now,
                    )
                    .await?;
                audit::record(
                    &txn,
                    ctx,
                    Some(&id),
                    "account.sign_up",
                    Some(&id),
                    json!({}),
                )
                .await?;
                self.announce_user(&txn, "user.created", &id, now).await?;
            }
        }
        txn.commit().await?;
        outbox.wake();
        self.wake_webhooks();
        Ok(())
    }

    /// The valid, unused link `token` for `purpose`, if there is one (nothing is changed).
    pub async fn link(
        &self,
        token: &str,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<email_token::Model>, DomainError> {
        if !plausible(token) {
            return Ok(None);
        }
        Ok(email_token::Entity::find_by_id(token_hash(token))
            .filter(email_token::Column::Purpose.eq(purpose))
            .filter(email_token::Column::UsedAt.is_null())
            .filter(email_token::Column::ExpiresAt.gt(now))
            .one(self.db.conn())
            .await?)
    }

    /// Marks the link used; `false` when it was used (or expired) meanwhile.
    async fn use_link(
        conn: &impl ConnectionTrait,
        row: &email_token::Model,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let result = email_token::Entity::update_many()
            .col_expr(email_token::Column::UsedAt, Expr::value(now))
            .filter(email_token::Column::TokenHash.eq(row.token_hash.as_str()))
            .filter(email_token::Column::UsedAt.is_null())
            .filter(email_token::Column::ExpiresAt.gt(now))
            .exec(conn)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Confirms an address with the link mailed at sign-up.
    pub async fn verify_email(
        &self,
        token: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<User, LinkError> {
        let row = self
            .link(token, VERIFY_EMAIL, now)
            .await?
            .ok_or(LinkError::Invalid)?;
        let user_id = row.user_id.clone().ok_or(LinkError::Invalid)?;
        let txn = self.db.begin_write().await?;
        if !Self::use_link(&txn, &row, now).await? {
            return Err(LinkError::Invalid);
        }
        // Only the address the link was sent to is confirmed.
        user::Entity::update_many()
            .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
            .filter(user::Column::Id.eq(user_id.as_str()))
            .filter(user::Column::Email.eq(row.email.clone().unwrap_or_default()))
            .filter(user::Column::EmailVerifiedAt.is_null())
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            ctx,
            Some(&user_id),
            "email.verify",
            Some(&user_id),
            json!({}),
        )
        .await?;
        txn.commit().await?;
        self.find(&user_id).await?.ok_or(LinkError::Invalid)
    }

    /// Mails a new verification link to a signed-in user whose address is not confirmed
    /// (`false` when it already is). Throttled like every request that mails someone.
    pub async fn resend_verification(
        &self,
        user_id: &str,
        ctx: &RequestContext,
    ) -> Result<bool, MailRequestError> {
        self.outbox()?;
        let now = Utc::now();
        let Some(row) = user::Entity::find_by_id(user_id.to_owned())
            .one(self.db.conn())
            .await?
        else {
            return Ok(false);
        };
        if row.email_verified_at.is_some() {
            return Ok(false);
        }
        let keys = throttle::mail_keys(&row.email, ctx);
        if let Err(throttled) = throttle::reserve(&self.db, &keys, now).await? {
            return Err(MailRequestError::Throttled(throttled));
        }
        self.send_verification(user_id, user_id, ctx).await?;
        Ok(true)
    }

    /// Queues a new confirmation link for `user_id`'s address, asked for by `actor_id` (the
    /// user, or an admin).
    pub(super) async fn send_verification(
        &self,
        actor_id: &str,
        user_id: &str,
        ctx: &RequestContext,
    ) -> Result<(), DomainError> {
        let outbox = self.outbox()?;
        let now = Utc::now();
        let txn = self.db.begin_write().await?;
        let Some(row) = user::Entity::find_by_id(user_id.to_owned())
            .one(&txn)
            .await?
        else {
            return Ok(());
        };
        let token = insert_token(
            &txn,
            &row.id,
            &row.email,
            VERIFY_EMAIL,
            VERIFY_EMAIL_TTL,
            now,
        )
        .await?;
        outbox
            .enqueue_email(
                &txn,
                &row.email,
                &Template::VerifyEmail {
                    token,
                    origin: Origin::new(now, ctx),
                },
                now,
            )
            .await?;
        audit::record(
            &txn,
            ctx,
            Some(actor_id),
            "email.verification_sent",
            Some(user_id),
            json!({}),
        )
        .await?;
        txn.commit().await?;
        outbox.wake();
        Ok(())
    }

    /// Invites `email` to create an account with `role` and `plan_id` (admins only, email on).
    /// The link works once, for 7 days; the account it makes counts as confirmed.
    pub async fn invite(
        &self,
        actor: &Actor,
        email: &str,
        role: Role,
        plan_id: Option<&str>,
    ) -> Result<(), ServiceError> {
        if !actor.is_admin {
            audit::record(
                self.db.conn(),
                &actor.ctx,
                Some(&actor.user_id),
                "authz.denied",
                None,
                json!({ "action": "invite" }),
            )
            .await?;
            return Err(ServiceError::Forbidden("only admins invite people".into()));
        }
        let outbox = self
            .outbox
            .as_ref()
            .ok_or_else(|| ServiceError::Conflict("this Keyport does not send email".into()))?;
        let email =
            Email::parse(email).map_err(|e| ServiceError::invalid("email", e.to_string()))?;
        let now = Utc::now();
        let taken = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(self.db.conn())
            .await?
            .is_some();
        if taken {
            return Err(ServiceError::invalid(
                "email",
                "An account with this address exists already.",
            ));
        }
        if let Some(plan_id) = plan_id {
            let exists = crate::entities::plan::Entity::find_by_id(plan_id.to_owned())
                .one(self.db.conn())
                .await?
                .is_some();
            if !exists {
                return Err(ServiceError::invalid("plan_id", "There is no such plan."));
            }
        }
        let inviter = self
            .find(&actor.user_id)
            .await?
            .map(|u| u.email)
            .unwrap_or_else(|| "An administrator".into());
        let details =
            json!({ "role": role.as_str(), "plan_id": plan_id, "invited_by": actor.user_id });
        let txn = self.db.begin_write().await?;
        let token = insert_link(
            &txn,
            None,
            email.as_str(),
            INVITE,
            details.to_string(),
            INVITE_TTL,
            now,
        )
        .await?;
        outbox
            .enqueue_email(
                &txn,
                email.as_str(),
                &Template::Invitation {
                    token,
                    invited_by: inviter,
                    role: role.as_str().to_owned(),
                    origin: Origin::new(now, &actor.ctx),
                },
                now,
            )
            .await?;
        audit::record(
            &txn,
            &actor.ctx,
            Some(&actor.user_id),
            "user.invite",
            Some(email.as_str()),
            json!({ "role": role.as_str(), "plan_id": plan_id }),
        )
        .await?;
        txn.commit().await?;
        outbox.wake();
        Ok(())
    }

    /// The invitation behind a link, if the link works.
    pub async fn invitation(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Invitation>, DomainError> {
        Ok(self
            .link(token, INVITE, now)
            .await?
            .map(|row| invitation_of(&row)))
    }

    /// Creates the invited account (confirmed, with the invitation's role and plan) and spends
    /// the link.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<User, LinkError> {
        let link = self
            .link(token, INVITE, now)
            .await?
            .ok_or(LinkError::Invalid)?;
        let invitation = invitation_of(&link);
        let password = Password::parse(password, &invitation.email)?;
        let hash = password::hash(&password).await?;
        let id = id::new_id(id::USER);
        let txn = self.db.begin_write().await?;
        if !Self::use_link(&txn, &link, now).await? {
            return Err(LinkError::Invalid);
        }
        let inserted = user::Entity::insert(new_user_row(NewUser {
            id: id.clone(),
            email: invitation.email.clone(),
            password_hash: hash,
            role: invitation.role,
            plan_id: invitation.plan_id.clone(),
            email_verified_at: Some(now),
            now,
        }))
        .exec_without_returning(&txn)
        .await;
        if let Err(e) = inserted {
            if crate::service::is_unique_violation(&e) {
                return Err(LinkError::AccountExists);
            }
            return Err(e.into());
        }
        let invited_by = serde_json::from_str::<serde_json::Value>(&link.details)
            .ok()
            .and_then(|d| d.get("invited_by").cloned())
            .unwrap_or(serde_json::Value::Null);
        audit::record(
            &txn,
            ctx,
            Some(&id),
            "account.sign_up",
            Some(&id),
            json!({ "invited_by": invited_by }),
        )
        .await?;
        self.announce_user(&txn, "user.created", &id, now).await?;
        txn.commit().await?;
        self.wake_webhooks();
        self.find(&id).await?.ok_or(LinkError::Invalid)
    }

    /// Queues a security notice in `conn`, when email is on.
    pub(super) async fn notify(
        &self,
        conn: &impl ConnectionTrait,
        email: &str,
        template: Template,
    ) -> Result<(), DomainError> {
        if let Some(outbox) = &self.outbox {
            outbox
                .enqueue_email(conn, email, &template, Utc::now())
                .await?;
        }
        Ok(())
    }

    /// "Forgot password": mails a reset link when an active account has this address, and a
    /// note that there is none otherwise, so the answer and the work are the same either way.
    pub async fn request_password_reset(
        &self,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<(), MailRequestError> {
        let outbox = self.outbox()?;
        let now = Utc::now();
        let email = Email::parse(email)?;
        let keys = throttle::mail_keys(email.as_str(), ctx);
        if let Err(throttled) = throttle::reserve(&self.db, &keys, now).await? {
            return Err(MailRequestError::Throttled(throttled));
        }
        let origin = Origin::new(now, ctx);
        let txn = self.db.begin_write().await?;
        let row = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(&txn)
            .await?
            .filter(|row| Status::from_db(&row.status) == Status::Active);
        match row {
            Some(row) => {
                let token = insert_token(
                    &txn,
                    &row.id,
                    &row.email,
                    RESET_PASSWORD,
                    RESET_PASSWORD_TTL,
                    now,
                )
                .await?;
                outbox
                    .enqueue_email(
                        &txn,
                        &row.email,
                        &Template::PasswordReset { token, origin },
                        now,
                    )
                    .await?;
                audit::record(
                    &txn,
                    ctx,
                    None,
                    "password.reset_request",
                    Some(&row.id),
                    json!({}),
                )
                .await?;
            }
            None => {
                outbox
                    .enqueue_email(
                        &txn,
                        email.as_str(),
                        &Template::PasswordResetUnknown { origin },
                        now,
                    )
                    .await?;
                audit::record(&txn, ctx, None, "password.reset_request", None, json!({})).await?;
            }
        }
        txn.commit().await?;
        outbox.wake();
        Ok(())
    }

    /// Sets a new password with a reset link: the link is used up, every other reset link of
    /// the account too, every session ends, the address counts as confirmed, and the owner is
    /// told. Signing in afterwards still needs the second factor.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<User, LinkError> {
        let outbox = self.outbox()?;
        let link = self
            .link(token, RESET_PASSWORD, now)
            .await?
            .ok_or(LinkError::Invalid)?;
        let user_id = link.user_id.clone().ok_or(LinkError::Invalid)?;
        let row = user::Entity::find_by_id(user_id.clone())
            .one(self.db.conn())
            .await?
            .ok_or(LinkError::Invalid)?;
        if Status::from_db(&row.status) == Status::Disabled {
            return Err(LinkError::Disabled);
        }
        // A bad new password leaves the link usable for a second try.
        let password = Password::parse(new_password, &row.email)?;
        let hash = password::hash(&password).await?;
        let txn = self.db.begin_write().await?;
        if !Self::use_link(&txn, &link, now).await? {
            return Err(LinkError::Invalid);
        }
        email_token::Entity::update_many()
            .col_expr(email_token::Column::UsedAt, Expr::value(now))
            .filter(email_token::Column::UserId.eq(user_id.as_str()))
            .filter(email_token::Column::Purpose.eq(RESET_PASSWORD))
            .filter(email_token::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(hash))
            .filter(user::Column::Id.eq(user_id.as_str()))
            .exec(&txn)
            .await?;
        if row.email_verified_at.is_none() && link.email.as_deref() == Some(row.email.as_str()) {
            user::Entity::update_many()
                .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
                .filter(user::Column::Id.eq(user_id.as_str()))
                .exec(&txn)
                .await?;
        }
        outbox
            .enqueue_email(
                &txn,
                &row.email,
                &Template::PasswordChanged {
                    origin: Origin::new(now, ctx),
                    by_reset: true,
                },
                now,
            )
            .await?;
        audit::record(
            &txn,
            ctx,
            Some(&user_id),
            "password.reset",
            Some(&user_id),
            json!({}),
        )
        .await?;
        txn.commit().await?;
        outbox.wake();
        crate::sessions::delete_for_user(&self.db, &user_id, None).await?;
        // The owner proved they read the mail: earlier failed sign-ins no longer hold them back.
        throttle::clear(&self.db, &[throttle::email_key(&row.email)]).await?;
        self.find(&user_id).await?.ok_or(LinkError::Invalid)
    }

    /// Queues the "password changed" notice after a change from the settings (a security
    /// event: always sent when email is on).
    pub(super) async fn notify_password_changed(
        &self,
        conn: &impl ConnectionTrait,
        email: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        if let Some(outbox) = &self.outbox {
            outbox
                .enqueue_email(
                    conn,
                    email,
                    &Template::PasswordChanged {
                        origin: Origin::new(now, ctx),
                        by_reset: false,
                    },
                    now,
                )
                .await?;
        }
        Ok(())
    }

    /// Wakes the outbox worker after a commit that queued a message.
    pub(super) fn mail_queued(&self) {
        if let Some(outbox) = &self.outbox {
            outbox.wake();
        }
    }
}

fn invitation_of(row: &email_token::Model) -> Invitation {
    let details: serde_json::Value = serde_json::from_str(&row.details).unwrap_or_default();
    Invitation {
        email: row.email.clone().unwrap_or_default(),
        role: Role::from_db(details.get("role").and_then(|r| r.as_str()).unwrap_or("")),
        plan_id: details
            .get("plan_id")
            .and_then(|p| p.as_str())
            .map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_base64url_and_stored_as_their_digest() {
        let (token, hash) = new_token();
        assert!(plausible(&token), "{token}");
        assert_eq!(hash, token_hash(&token));
        assert_eq!(hash.len(), 64);
        assert_ne!(new_token().0, token);
        assert!(!plausible("short"));
        assert!(!plausible(&format!("{}!", &token[..42])));
    }
}
