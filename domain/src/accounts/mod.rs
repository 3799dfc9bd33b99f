//! Accounts: sign-up, sign-in with password then a second factor (TOTP or a recovery code),
//! TOTP enrolment, and the admin operations on users. Every outcome that matters is audited.
pub mod admin;
pub mod email;
mod mail_flows;
pub mod password;
pub mod recovery;
pub mod throttle;
pub mod totp;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
    sea_query::Expr,
};
use serde_json::json;

pub use admin::AdminAction;
pub use email::{Email, EmailError};
pub use mail_flows::{
    INVITE, Invitation, LinkError, MailRequestError, RESET_PASSWORD, VERIFY_EMAIL,
};
pub use password::{Password, PasswordError};
pub use throttle::Throttled;

use crate::{
    Database, DomainError,
    audit::{self, RequestContext},
    changes::{KeyChanges, Listeners},
    entities::{recovery_code, user},
    id,
    secret_key::SecretKey,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Developer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }
    pub fn from_db(s: &str) -> Role {
        if s == "admin" {
            Role::Admin
        } else {
            Role::Developer
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
        }
    }
    pub fn from_db(s: &str) -> Status {
        if s == "disabled" {
            Status::Disabled
        } else {
            Status::Active
        }
    }
}

/// A user as the rest of Keyport sees one: no password hash, no TOTP seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub status: Status,
    pub totp_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// The assigned plan; `None` means the default plan.
    pub plan_id: Option<String>,
    /// Whether the owner confirmed the address (a link, or an account an admin made).
    pub email_verified: bool,
}

impl From<&user::Model> for User {
    fn from(row: &user::Model) -> User {
        User {
            id: row.id.clone(),
            email: row.email.clone(),
            role: Role::from_db(&row.role),
            status: Status::from_db(&row.status),
            totp_enabled: row.totp_enabled_at.is_some(),
            created_at: row.created_at,
            last_sign_in_at: row.last_sign_in_at,
            plan_id: row.plan_id.clone(),
            email_verified: row.email_verified_at.is_some(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error(transparent)]
    Email(#[from] EmailError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("An account with this email cannot be created. If it is yours, sign in instead.")]
    EmailUnavailable,
    #[error("Too many attempts, try again in {}.", .0.wait_text())]
    Throttled(Throttled),
    #[error(transparent)]
    Internal(#[from] DomainError),
}

#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    #[error("Your current password is not correct.")]
    WrongCurrent,
    #[error("Too many attempts, try again in {}.", .0.wait_text())]
    Throttled(Throttled),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Internal(#[from] DomainError),
}

impl From<sea_orm::DbErr> for ChangePasswordError {
    fn from(e: sea_orm::DbErr) -> Self {
        ChangePasswordError::Internal(e.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Deliberately the same for an unknown email and a wrong password.
    #[error("Incorrect email or password.")]
    InvalidCredentials,
    #[error("That code is not valid. Check your authenticator app and try again.")]
    InvalidCode,
    #[error("Too many attempts, try again in {}.", .0.wait_text())]
    Throttled(Throttled),
    #[error("This account is disabled. Contact your administrator.")]
    Disabled,
    #[error("Set up two-factor authentication first.")]
    NotEnrolled,
    #[error(transparent)]
    Internal(#[from] DomainError),
}

impl From<sea_orm::DbErr> for SignInError {
    fn from(e: sea_orm::DbErr) -> Self {
        SignInError::Internal(e.into())
    }
}
impl From<sea_orm::DbErr> for SignUpError {
    fn from(e: sea_orm::DbErr) -> Self {
        SignUpError::Internal(e.into())
    }
}

/// What the user must do after a correct password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecondStep {
    /// Enter a TOTP or recovery code.
    Code,
    /// Enrol an authenticator first (new account, or 2FA reset by an admin).
    Enrol,
}

/// A TOTP enrolment in progress: what the page shows, and the binding that ties it to the
/// session that started it (kept in that session; the seed is shown and accepted only there).
#[derive(Clone)]
pub struct Enrolment {
    pub setup_key: String,
    pub otpauth_uri: String,
    pub binding: String,
}

/// What ties an enrolment to its session: 128 bits of the seed's SHA-256 (hex). It reveals
/// nothing usable about the seed.
fn enrolment_binding(seed: &totp::Seed) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(seed.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(<redacted>)")
    }
}

/// The accounts service.
#[derive(Clone, Debug)]
pub struct Accounts {
    db: Database,
    key: SecretKey,
    listeners: Listeners,
    /// Set when SMTP is configured: the email flows are on.
    outbox: Option<crate::outbox::Outbox>,
    /// Where `user.created` and `user.disabled` go out (platform-wide endpoints).
    webhooks: Option<crate::webhooks::Webhooks>,
}

fn unix(now: DateTime<Utc>) -> u64 {
    Ord::max(now.timestamp(), 0) as u64
}

impl Accounts {
    pub fn new(db: Database, key: SecretKey) -> Accounts {
        Accounts {
            db,
            key,
            listeners: Listeners::default(),
            outbox: None,
            webhooks: None,
        }
    }

    /// Queues `user.created` and `user.disabled` webhook events.
    pub fn with_webhooks(mut self, webhooks: crate::webhooks::Webhooks) -> Accounts {
        self.webhooks = Some(webhooks);
        self
    }

    /// Queues a `kind` event about `user_id`, as it stands in `conn`, for the endpoints that want
    /// it. Call [`Accounts::wake_webhooks`] after the commit.
    async fn announce_user(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        kind: &'static str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let Some(webhooks) = &self.webhooks else {
            return Ok(());
        };
        let Some(u) = user::Entity::find_by_id(user_id.to_owned())
            .one(conn)
            .await?
        else {
            return Ok(());
        };
        let event = crate::webhooks::Event {
            kind,
            owner_id: Some(u.id.clone()),
            data: json!({
                "id": u.id,
                "email": u.email,
                "role": u.role,
                "status": u.status,
                "created_at": u.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }),
        };
        webhooks.emit(conn, &event, now).await?;
        Ok(())
    }

    fn wake_webhooks(&self) {
        if let Some(webhooks) = &self.webhooks {
            webhooks.wake();
        }
    }

    /// Turns the email flows on: verified sign-up, forgot password, security notices.
    pub fn with_outbox(mut self, outbox: crate::outbox::Outbox) -> Accounts {
        self.outbox = Some(outbox);
        self
    }

    /// Tells `listener` (the verifier) when a user's status or role changes: their keys stop
    /// (or start again) verifying at once, and an admin's key loses or gains its powers.
    pub fn with_changes(mut self, listener: std::sync::Arc<dyn KeyChanges>) -> Accounts {
        self.listeners.add(listener);
        self
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Creates a developer account (self-service sign-up).
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<User, SignUpError> {
        // Without email delivery a taken address cannot be hidden at sign-up, so probing for
        // addresses is slowed per client address like failed sign-ins are.
        let now = Utc::now();
        let keys: Vec<_> = ctx
            .ip
            .as_deref()
            .map(|ip| (throttle::ip_key(ip), throttle::CLIENT_IP))
            .into_iter()
            .collect();
        let reservation = match throttle::reserve(&self.db, &keys, now).await? {
            Ok(reservation) => reservation,
            Err(throttled) => return Err(SignUpError::Throttled(throttled)),
        };
        let user = match self.create(email, password, Role::Developer).await {
            Err(SignUpError::EmailUnavailable) => return Err(SignUpError::EmailUnavailable),
            Err(other) => {
                reservation.release(&self.db).await?;
                return Err(other);
            }
            Ok(user) => {
                reservation.release(&self.db).await?;
                user
            }
        };
        audit::record(
            self.db.conn(),
            ctx,
            Some(&user.id),
            "account.sign_up",
            Some(&user.id),
            json!({}),
        )
        .await?;
        Ok(user)
    }

    /// Creates an admin account (`keyport admin create`).
    pub async fn create_admin(&self, email: &str, password: &str) -> Result<User, SignUpError> {
        let user = self.create(email, password, Role::Admin).await?;
        audit::record(
            self.db.conn(),
            &RequestContext::default(),
            None,
            "admin.create",
            Some(&user.id),
            json!({ "via": "cli" }),
        )
        .await?;
        Ok(user)
    }

    async fn create(&self, email: &str, password: &str, role: Role) -> Result<User, SignUpError> {
        let email = Email::parse(email)?;
        let password = Password::parse(password, email.as_str())?;
        let hash = password::hash(&password).await?;
        let now = Utc::now();
        // An admin made on the command line is trusted with the address they gave.
        let row = new_user_row(NewUser {
            id: id::new_id(id::USER),
            email: email.as_str().to_owned(),
            password_hash: hash,
            role,
            plan_id: None,
            email_verified_at: (role == Role::Admin).then_some(now),
            now,
        });
        match user::Entity::insert(row.clone())
            .exec_without_returning(self.db.conn())
            .await
        {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                return Err(SignUpError::EmailUnavailable);
            }
            Err(e) => return Err(e.into()),
        }
        let id = row.id.unwrap();
        self.announce_user(self.db.conn(), "user.created", &id, now)
            .await?;
        self.wake_webhooks();
        let stored = user::Entity::find_by_id(id).one(self.db.conn()).await?;
        stored
            .as_ref()
            .map(User::from)
            .ok_or_else(|| DomainError::Internal("new user vanished".into()).into())
    }

    pub async fn find(&self, user_id: &str) -> Result<Option<User>, DomainError> {
        Ok(user::Entity::find_by_id(user_id.to_owned())
            .one(self.db.conn())
            .await?
            .as_ref()
            .map(User::from))
    }

    /// The emails of these users (unknown ids are left out), in one query: for pages that name
    /// the people in a list of events without reading every user.
    pub async fn emails_of(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>, DomainError> {
        let mut out = std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            for u in user::Entity::find()
                .filter(user::Column::Id.is_in(chunk.to_vec()))
                .all(self.db.conn())
                .await?
            {
                out.insert(u.id, u.email);
            }
        }
        Ok(out)
    }

    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>, DomainError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(None);
        };
        Ok(user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(self.db.conn())
            .await?
            .as_ref()
            .map(User::from))
    }

    /// First step of sign-in. Unknown emails and wrong passwords give the same error after the
    /// same amount of work; failures are throttled per account and per client address.
    pub async fn sign_in_password(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<(User, SecondStep), SignInError> {
        let row = match Email::parse(email) {
            Ok(email) => {
                user::Entity::find()
                    .filter(user::Column::Email.eq(email.as_str()))
                    .one(self.db.conn())
                    .await?
            }
            Err(_) => None,
        };
        // The address's counter exists whether or not an account has it, so a real and an
        // unknown address answer alike, message and delay.
        let email_key = throttle::email_key(email);
        let keys = throttle::account_and_client(email_key.clone(), ctx);
        let actor = row.as_ref().map(|r| r.id.clone());
        let reservation = match throttle::reserve(&self.db, &keys, now).await? {
            Ok(reservation) => reservation,
            Err(throttled) => {
                audit::record(
                    self.db.conn(),
                    ctx,
                    actor.as_deref(),
                    "sign_in.throttled",
                    None,
                    json!({ "step": "password" }),
                )
                .await?;
                return Err(SignInError::Throttled(throttled));
            }
        };
        let matches =
            password::verify(password, row.as_ref().map(|r| r.password_hash.as_str())).await?;
        let Some(row) = row.filter(|_| matches) else {
            // The reservation stands: this failure is counted.
            drop(reservation);
            audit::record(
                self.db.conn(),
                ctx,
                actor.as_deref(),
                "sign_in.failure",
                actor.as_deref(),
                json!({ "step": "password" }),
            )
            .await?;
            return Err(SignInError::InvalidCredentials);
        };
        reservation.succeeded(&self.db, &[email_key]).await?;
        let user = User::from(&row);
        if user.status == Status::Disabled {
            audit::record(
                self.db.conn(),
                ctx,
                Some(&user.id),
                "sign_in.failure",
                Some(&user.id),
                json!({ "step": "password", "reason": "disabled" }),
            )
            .await?;
            return Err(SignInError::Disabled);
        }
        let next = if user.totp_enabled {
            SecondStep::Code
        } else {
            SecondStep::Enrol
        };
        Ok((user, next))
    }

    /// Second step of sign-in: a TOTP code (each step accepted once) or an unused recovery code.
    pub async fn sign_in_code(
        &self,
        user_id: &str,
        code: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<User, SignInError> {
        let row = user::Entity::find_by_id(user_id.to_owned())
            .one(self.db.conn())
            .await?
            .ok_or(SignInError::InvalidCredentials)?;
        if Status::from_db(&row.status) == Status::Disabled {
            return Err(SignInError::Disabled);
        }
        if row.totp_enabled_at.is_none() {
            return Err(SignInError::NotEnrolled);
        }
        let totp_key = throttle::totp_key(user_id);
        let keys = throttle::account_and_client(totp_key.clone(), ctx);
        let reservation = match throttle::reserve(&self.db, &keys, now).await? {
            Ok(reservation) => reservation,
            Err(throttled) => {
                audit::record(
                    self.db.conn(),
                    ctx,
                    Some(user_id),
                    "sign_in.throttled",
                    Some(user_id),
                    json!({ "step": "code" }),
                )
                .await?;
                return Err(SignInError::Throttled(throttled));
            }
        };
        let method = if recovery::looks_like_recovery_code(code) {
            self.use_recovery_code(user_id, code, now)
                .await?
                .then_some("recovery_code")
        } else {
            self.accept_totp(&row, code, now).await?.then_some("totp")
        };
        let Some(method) = method else {
            drop(reservation);
            audit::record(
                self.db.conn(),
                ctx,
                Some(user_id),
                "sign_in.failure",
                Some(user_id),
                json!({ "step": "code" }),
            )
            .await?;
            return Err(SignInError::InvalidCode);
        };
        reservation
            .succeeded(&self.db, &[totp_key, throttle::email_key(&row.email)])
            .await?;
        user::Entity::update_many()
            .col_expr(user::Column::LastSignInAt, Expr::value(now))
            .filter(user::Column::Id.eq(user_id))
            .exec(self.db.conn())
            .await?;
        audit::record(
            self.db.conn(),
            ctx,
            Some(user_id),
            "sign_in.success",
            Some(user_id),
            json!({ "method": method }),
        )
        .await?;
        if method == "recovery_code" {
            let remaining = self.unused_recovery_codes(user_id).await?;
            self.notify(
                self.db.conn(),
                &row.email,
                crate::mail::Template::RecoveryCodeUsed {
                    origin: crate::mail::templates::Origin::new(now, ctx),
                    remaining,
                },
            )
            .await?;
            self.mail_queued();
        }
        self.find(user_id)
            .await?
            .ok_or(SignInError::InvalidCredentials)
    }

    /// Completes a sign-in after the password alone, for an account without 2FA on an instance
    /// that does not require it.
    pub async fn sign_in_without_second_factor(
        &self,
        user_id: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        user::Entity::update_many()
            .col_expr(user::Column::LastSignInAt, Expr::value(now))
            .filter(user::Column::Id.eq(user_id))
            .exec(self.db.conn())
            .await?;
        audit::record(
            self.db.conn(),
            ctx,
            Some(user_id),
            "sign_in.success",
            Some(user_id),
            json!({ "method": "password" }),
        )
        .await
    }

    /// Checks a TOTP code for this user and, if it matches a step later than the last accepted
    /// one, records that step. The conditional update makes a replay fail even under races.
    async fn accept_totp(
        &self,
        row: &user::Model,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let Some(sealed) = &row.totp_secret else {
            return Ok(false);
        };
        let seed = totp::Seed::from_bytes(self.key.decrypt(sealed)?);
        let Some(step) = seed.matching_step(code, unix(now)) else {
            return Ok(false);
        };
        let step = step as i64;
        let result = user::Entity::update_many()
            .col_expr(user::Column::TotpLastStep, Expr::value(step))
            .filter(user::Column::Id.eq(row.id.as_str()))
            .filter(
                user::Column::TotpLastStep
                    .is_null()
                    .or(user::Column::TotpLastStep.lt(step)),
            )
            .exec(self.db.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Marks an unused recovery code of this user as used, if `code` is one. Codes issued since
    /// 120-bit codes are found by their SHA-256 in one query; codes from before are tried
    /// against their argon2id hash (at most ten per user, only for users who still have them).
    async fn use_recovery_code(
        &self,
        user_id: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let digest = recovery::digest(code);
        let unused = || {
            recovery_code::Entity::update_many()
                .col_expr(recovery_code::Column::UsedAt, Expr::value(now))
                .filter(recovery_code::Column::UserId.eq(user_id))
                .filter(recovery_code::Column::UsedAt.is_null())
        };
        let result = unused()
            .filter(recovery_code::Column::CodeHash.is_in([
                digest.clone(),
                format!("{}{digest}", recovery::LEGACY_PREFIX),
            ]))
            .exec(self.db.conn())
            .await?;
        if result.rows_affected == 1 {
            return Ok(true);
        }
        let rewrapped = recovery_code::Entity::find()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .filter(recovery_code::Column::UsedAt.is_null())
            .filter(recovery_code::Column::CodeHash.starts_with(recovery::REWRAPPED_PREFIX))
            .all(self.db.conn())
            .await?;
        for row in rewrapped {
            if password::verify_secret(digest.clone(), row.code_hash.clone()).await? {
                let result = unused()
                    .filter(recovery_code::Column::Id.eq(row.id))
                    .exec(self.db.conn())
                    .await?;
                return Ok(result.rows_affected == 1);
            }
        }
        Ok(false)
    }

    /// Rewraps up to `limit` legacy recovery codes (see `recovery`) as argon2id hashes; returns
    /// how many were rewrapped. A code used meanwhile is rewrapped all the same (it stays used).
    pub async fn rewrap_legacy_recovery_codes(&self, limit: u64) -> Result<u64, DomainError> {
        let rows = recovery_code::Entity::find()
            .filter(recovery_code::Column::CodeHash.starts_with(recovery::LEGACY_PREFIX))
            .limit(limit)
            .all(self.db.conn())
            .await?;
        let mut rewrapped = 0;
        for row in rows {
            let Some(digest) = row.code_hash.strip_prefix(recovery::LEGACY_PREFIX) else {
                continue;
            };
            let wrapped = password::hash_secret(digest.to_owned()).await?;
            let result = recovery_code::Entity::update_many()
                .col_expr(recovery_code::Column::CodeHash, Expr::value(wrapped))
                .filter(recovery_code::Column::Id.eq(row.id))
                .filter(recovery_code::Column::CodeHash.eq(row.code_hash.as_str()))
                .exec(self.db.conn())
                .await?;
            rewrapped += result.rows_affected;
        }
        Ok(rewrapped)
    }

    /// Starts (or restarts) TOTP enrolment: a new seed, stored encrypted, not active until a code
    /// from it is confirmed. Refused once 2FA is on (reset it first).
    pub async fn begin_enrolment(&self, user_id: &str) -> Result<Enrolment, SignInError> {
        let row = user::Entity::find_by_id(user_id.to_owned())
            .one(self.db.conn())
            .await?
            .ok_or(SignInError::InvalidCredentials)?;
        if row.totp_enabled_at.is_some() {
            return Err(SignInError::Internal(DomainError::Internal(
                "2FA is already enabled".into(),
            )));
        }
        let seed = totp::Seed::generate();
        user::Entity::update_many()
            .col_expr(
                user::Column::TotpSecret,
                Expr::value(self.key.encrypt(seed.as_bytes())),
            )
            .col_expr(user::Column::TotpLastStep, Expr::value(Option::<i64>::None))
            .filter(user::Column::Id.eq(user_id))
            .exec(self.db.conn())
            .await?;
        Ok(Enrolment {
            setup_key: seed.base32(),
            otpauth_uri: seed.otpauth_uri(&row.email),
            binding: enrolment_binding(&seed),
        })
    }

    /// The enrolment started by [`Accounts::begin_enrolment`] with this `binding` (the session
    /// that started it) and not confirmed yet, if any. Another session gets nothing: a session
    /// left over from before a 2FA reset cannot read the new seed.
    pub async fn pending_enrolment(
        &self,
        user_id: &str,
        binding: &str,
    ) -> Result<Option<Enrolment>, DomainError> {
        let Some(row) = user::Entity::find_by_id(user_id.to_owned())
            .one(self.db.conn())
            .await?
        else {
            return Ok(None);
        };
        let (None, Some(sealed)) = (row.totp_enabled_at, row.totp_secret.as_ref()) else {
            return Ok(None);
        };
        let seed = totp::Seed::from_bytes(self.key.decrypt(sealed)?);
        let bound = enrolment_binding(&seed);
        if bound != binding {
            return Ok(None);
        }
        Ok(Some(Enrolment {
            setup_key: seed.base32(),
            otpauth_uri: seed.otpauth_uri(&row.email),
            binding: bound,
        }))
    }

    /// Finishes enrolment with a code from the new seed; turns 2FA on and returns ten new
    /// recovery codes (shown once; only their hashes are kept).
    pub async fn confirm_enrolment(
        &self,
        user_id: &str,
        binding: &str,
        code: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, SignInError> {
        let row = user::Entity::find_by_id(user_id.to_owned())
            .one(self.db.conn())
            .await?
            .ok_or(SignInError::InvalidCredentials)?;
        if row.totp_enabled_at.is_some()
            || self.pending_enrolment(user_id, binding).await?.is_none()
        {
            return Err(SignInError::NotEnrolled);
        }
        self.check_totp_code(&row, code, ctx, now, "2fa.enrol_failure")
            .await?;
        let codes = recovery::generate();
        let txn = self.db.begin_write().await?;
        user::Entity::update_many()
            .col_expr(user::Column::TotpEnabledAt, Expr::value(now))
            .col_expr(user::Column::LastSignInAt, Expr::value(now))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        replace_recovery_codes(&txn, user_id, &codes, now).await?;
        audit::record(
            &txn,
            ctx,
            Some(user_id),
            "2fa.enrol",
            Some(user_id),
            json!({}),
        )
        .await?;
        txn.commit().await?;
        Ok(codes)
    }

    /// Recovery codes not used yet.
    pub async fn unused_recovery_codes(&self, user_id: &str) -> Result<u64, DomainError> {
        use sea_orm::PaginatorTrait;
        Ok(recovery_code::Entity::find()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .filter(recovery_code::Column::UsedAt.is_null())
            .count(self.db.conn())
            .await?)
    }

    /// Unused recovery codes issued before 120-bit codes (shorter, 50 bits): the settings page
    /// asks their owner to make new ones.
    pub async fn legacy_recovery_codes(&self, user_id: &str) -> Result<u64, DomainError> {
        use sea_orm::{Condition, PaginatorTrait};
        Ok(recovery_code::Entity::find()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .filter(recovery_code::Column::UsedAt.is_null())
            .filter(
                Condition::any()
                    .add(recovery_code::Column::CodeHash.starts_with(recovery::LEGACY_PREFIX))
                    .add(recovery_code::Column::CodeHash.starts_with(recovery::REWRAPPED_PREFIX)),
            )
            .count(self.db.conn())
            .await?)
    }

    /// Changes the password after checking the current one (ASVS 6.2.3).
    pub async fn change_password(
        &self,
        user_id: &str,
        current: &str,
        new: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<(), ChangePasswordError> {
        let row = user::Entity::find_by_id(user_id.to_owned())
            .one(self.db.conn())
            .await?
            .ok_or(ChangePasswordError::WrongCurrent)?;
        // A wrong current password counts against the account like a failed sign-in: a stolen
        // session must not become an unthrottled password oracle.
        let email_key = throttle::email_key(&row.email);
        let keys = throttle::account_and_client(email_key.clone(), ctx);
        let reservation = match throttle::reserve(&self.db, &keys, now).await? {
            Ok(reservation) => reservation,
            Err(throttled) => return Err(ChangePasswordError::Throttled(throttled)),
        };
        if !password::verify(current, Some(&row.password_hash)).await? {
            drop(reservation);
            audit::record(
                self.db.conn(),
                ctx,
                Some(user_id),
                "password.change_failure",
                Some(user_id),
                json!({}),
            )
            .await?;
            return Err(ChangePasswordError::WrongCurrent);
        }
        reservation.succeeded(&self.db, &[email_key]).await?;
        let new = Password::parse(new, &row.email)?;
        let hash = password::hash(&new).await?;
        let txn = self.db.begin_write().await?;
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(hash))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        self.notify_password_changed(&txn, &row.email, ctx, now)
            .await?;
        audit::record(
            &txn,
            ctx,
            Some(user_id),
            "password.change",
            Some(user_id),
            json!({}),
        )
        .await?;
        txn.commit().await?;
        self.mail_queued();
        Ok(())
    }

    /// Checks a fresh TOTP code for a sensitive change (re-authentication, ASVS 7.5.1).
    pub async fn step_up(
        &self,
        user_id: &str,
        code: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<(), SignInError> {
        let row = user::Entity::find_by_id(user_id.to_owned())
            .one(self.db.conn())
            .await?
            .ok_or(SignInError::InvalidCode)?;
        self.check_totp_code(&row, code, ctx, now, "step_up.failure")
            .await
    }

    /// A TOTP code outside sign-in (enrolment, step-up): throttled on the account's TOTP
    /// counter, replay-protected, and audited as `failure_action` when wrong.
    async fn check_totp_code(
        &self,
        row: &user::Model,
        code: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
        failure_action: &str,
    ) -> Result<(), SignInError> {
        let totp_key = throttle::totp_key(&row.id);
        let keys = throttle::account_and_client(totp_key.clone(), ctx);
        let reservation = match throttle::reserve(&self.db, &keys, now).await? {
            Ok(reservation) => reservation,
            Err(throttled) => return Err(SignInError::Throttled(throttled)),
        };
        if !self.accept_totp(row, code, now).await? {
            drop(reservation);
            audit::record(
                self.db.conn(),
                ctx,
                Some(&row.id),
                failure_action,
                Some(&row.id),
                json!({}),
            )
            .await?;
            return Err(SignInError::InvalidCode);
        }
        reservation.succeeded(&self.db, &[totp_key]).await?;
        Ok(())
    }

    /// Replaces the recovery codes after a fresh TOTP code; returns the new ones (shown once).
    pub async fn regenerate_recovery_codes(
        &self,
        user_id: &str,
        code: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, SignInError> {
        self.step_up(user_id, code, ctx, now).await?;
        let codes = recovery::generate();
        let txn = self.db.begin_write().await?;
        replace_recovery_codes(&txn, user_id, &codes, now).await?;
        audit::record(
            &txn,
            ctx,
            Some(user_id),
            "recovery_codes.regenerate",
            Some(user_id),
            json!({}),
        )
        .await?;
        txn.commit().await?;
        Ok(codes)
    }

    /// Turns the user's own TOTP off after a fresh code, to enrol a new authenticator.
    pub async fn reset_own_totp(
        &self,
        user_id: &str,
        code: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<(), SignInError> {
        self.step_up(user_id, code, ctx, now).await?;
        self.clear_totp(user_id, ctx, false).await?;
        audit::record(
            self.db.conn(),
            ctx,
            Some(user_id),
            "2fa.reset",
            Some(user_id),
            json!({ "by": "self" }),
        )
        .await?;
        Ok(())
    }

    /// Turns 2FA off and deletes the recovery codes; the owner is told (a security event).
    async fn clear_totp(
        &self,
        user_id: &str,
        ctx: &RequestContext,
        by_admin: bool,
    ) -> Result<(), DomainError> {
        let txn = self.db.begin_write().await?;
        if let Some(row) = user::Entity::find_by_id(user_id.to_owned())
            .one(&txn)
            .await?
        {
            self.notify(
                &txn,
                &row.email,
                crate::mail::Template::TwoFactorReset {
                    origin: crate::mail::templates::Origin::new(Utc::now(), ctx),
                    by_admin,
                },
            )
            .await?;
        }
        user::Entity::update_many()
            .col_expr(
                user::Column::TotpSecret,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .col_expr(
                user::Column::TotpEnabledAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(user::Column::TotpLastStep, Expr::value(Option::<i64>::None))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.mail_queued();
        Ok(())
    }

    /// Ends one of the user's own sessions, named by its handle; `false` when there is none.
    pub async fn end_own_session(
        &self,
        user_id: &str,
        handle: &str,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let ended = crate::sessions::delete_by_handle(&self.db, user_id, handle, now).await?;
        if ended {
            audit::record(
                self.db.conn(),
                ctx,
                Some(user_id),
                "session.end",
                Some(user_id),
                json!({}),
            )
            .await?;
        }
        Ok(ended)
    }

    /// Ends every session of the user but `keep` (the current one); how many ended.
    pub async fn end_other_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<u64, DomainError> {
        let ended = crate::sessions::delete_for_user(&self.db, user_id, keep).await?;
        audit::record(
            self.db.conn(),
            ctx,
            Some(user_id),
            "session.end_others",
            Some(user_id),
            json!({ "ended": ended }),
        )
        .await?;
        Ok(ended)
    }

    /// Records a sign-out (the session itself is the web layer's to end).
    pub async fn signed_out(&self, user_id: &str, ctx: &RequestContext) -> Result<(), DomainError> {
        audit::record(
            self.db.conn(),
            ctx,
            Some(user_id),
            "sign_out",
            Some(user_id),
            json!({}),
        )
        .await
    }
}

/// What a new account starts with; everything else (2FA, sign-ins, preferences) starts empty.
struct NewUser {
    id: String,
    email: String,
    password_hash: String,
    role: Role,
    plan_id: Option<String>,
    email_verified_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

/// The row of a new, active account (self sign-up, `keyport admin create`, an invitation).
fn new_user_row(new: NewUser) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(new.id),
        email: Set(new.email),
        password_hash: Set(new.password_hash),
        role: Set(new.role.as_str().to_owned()),
        status: Set(Status::Active.as_str().to_owned()),
        totp_secret: Set(None),
        totp_enabled_at: Set(None),
        totp_last_step: Set(None),
        created_at: Set(new.now),
        last_sign_in_at: Set(None),
        plan_id: Set(new.plan_id),
        email_verified_at: Set(new.email_verified_at),
        notification_prefs: Set("{}".into()),
    }
}

async fn replace_recovery_codes(
    txn: &sea_orm::DatabaseTransaction,
    user_id: &str,
    codes: &[String],
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    recovery_code::Entity::insert_many(codes.iter().map(|code| recovery_code::ActiveModel {
        user_id: Set(user_id.to_owned()),
        code_hash: Set(recovery::digest(code)),
        used_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }))
    .exec_without_returning(txn)
    .await?;
    Ok(())
}
