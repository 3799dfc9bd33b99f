//! What admins do to other accounts: list and search users, disable and enable, promote and
//! demote, unlock, end sessions, reset 2FA. [`Accounts::admin_action`] authorizes them (only
//! admins, never on their own account) and audits refused attempts; each change is audited and
//! a status or role change reaches the verifier through the key change listeners.
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::json;

use super::{Accounts, Role, Status, User, throttle};
use crate::{
    DomainError,
    audit::{self, RequestContext},
    changes::Change,
    entities::user,
    service::{Actor, ServiceError},
};

/// What an admin can do to another user's account (see [`Accounts::admin_action`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminAction {
    Disable,
    Enable,
    ResetTwoFactor,
    EndSessions,
    Unlock,
    Promote,
    Demote,
    /// Mails a new address-confirmation link (email on, address not confirmed yet).
    ResendVerification,
}

impl AdminAction {
    pub const ALL: [AdminAction; 8] = [
        AdminAction::Disable,
        AdminAction::Enable,
        AdminAction::ResetTwoFactor,
        AdminAction::EndSessions,
        AdminAction::Unlock,
        AdminAction::Promote,
        AdminAction::Demote,
        AdminAction::ResendVerification,
    ];
    /// The form value naming the action.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminAction::Disable => "disable",
            AdminAction::Enable => "enable",
            AdminAction::ResetTwoFactor => "reset-2fa",
            AdminAction::EndSessions => "end-sessions",
            AdminAction::Unlock => "unlock",
            AdminAction::Promote => "promote",
            AdminAction::Demote => "demote",
            AdminAction::ResendVerification => "resend-verification",
        }
    }
    pub fn parse(s: &str) -> Option<AdminAction> {
        AdminAction::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether the action changes who may do what (roles, access, the second factor), so the
    /// portal asks for a fresh 2FA code first (step-up, like key changes).
    pub fn needs_step_up(self) -> bool {
        matches!(
            self,
            AdminAction::Disable
                | AdminAction::ResetTwoFactor
                | AdminAction::Promote
                | AdminAction::Demote
        )
    }
}

impl Accounts {
    /// Users whose email contains `search`, newest first, one page at a time.
    pub async fn list_users(
        &self,
        search: &str,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<User>, u64), DomainError> {
        use sea_orm::{PaginatorTrait, QueryOrder, QuerySelect};
        let mut query = user::Entity::find();
        let search = search.trim().to_lowercase();
        if !search.is_empty() {
            query = query.filter(user::Column::Email.contains(&search));
        }
        let total = query.clone().count(self.db.conn()).await?;
        let rows = query
            .order_by_desc(user::Column::CreatedAt)
            .limit(limit)
            .offset(offset)
            .all(self.db.conn())
            .await?;
        Ok((rows.iter().map(User::from).collect(), total))
    }

    /// The failed-attempt counters of an account: its address's password counter and its
    /// second-step counter.
    async fn throttle_keys(&self, user_id: &str) -> Result<Vec<String>, DomainError> {
        let mut keys = vec![throttle::totp_key(user_id)];
        if let Some(user) = self.find(user_id).await? {
            keys.push(throttle::email_key(&user.email));
        }
        Ok(keys)
    }

    /// Whether sign-in is currently refused for this account because of failed attempts.
    pub async fn is_locked(&self, user_id: &str, now: DateTime<Utc>) -> Result<bool, DomainError> {
        let keys = self.throttle_keys(user_id).await?;
        Ok(throttle::check(&self.db, &keys, now).await?.is_err())
    }

    /// Clears an account's failed-attempt counters and lockout (admin action).
    pub async fn unlock(
        &self,
        admin_id: &str,
        user_id: &str,
        ctx: &RequestContext,
    ) -> Result<(), DomainError> {
        let keys = self.throttle_keys(user_id).await?;
        throttle::clear(&self.db, &keys).await?;
        audit::record(
            self.db.conn(),
            ctx,
            Some(admin_id),
            "user.unlock",
            Some(user_id),
            json!({}),
        )
        .await
    }

    /// Ends all of a user's sessions (admin action); returns how many.
    pub async fn end_sessions(
        &self,
        admin_id: &str,
        user_id: &str,
        ctx: &RequestContext,
    ) -> Result<u64, DomainError> {
        let ended = crate::sessions::delete_for_user(&self.db, user_id, None).await?;
        audit::record(
            self.db.conn(),
            ctx,
            Some(admin_id),
            "user.end_sessions",
            Some(user_id),
            json!({ "ended": ended }),
        )
        .await?;
        Ok(ended)
    }

    /// Promotes a developer to admin or back (admin action).
    pub async fn set_role(
        &self,
        admin_id: &str,
        user_id: &str,
        role: Role,
        ctx: &RequestContext,
    ) -> Result<(), DomainError> {
        let txn = self.db.begin_write().await?;
        user::Entity::update_many()
            .col_expr(user::Column::Role, Expr::value(role.as_str()))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        let action = if role == Role::Admin {
            "user.promote"
        } else {
            "user.demote"
        };
        audit::record(&txn, ctx, Some(admin_id), action, Some(user_id), json!({})).await?;
        txn.commit().await?;
        self.listeners.tell(Change::Owner(user_id.to_owned())).await;
        Ok(())
    }

    /// An admin's action on another user, authorized here: a non-admin is refused (and the
    /// attempt audited as `authz.denied`), an admin cannot act on their own account, and an
    /// unknown user is `NotFound`. Returns the target, as it was.
    pub async fn admin_action(
        &self,
        actor: &Actor,
        target_id: &str,
        action: AdminAction,
    ) -> Result<User, ServiceError> {
        if !actor.is_admin {
            tracing::warn!(user_id = %actor.user_id, "non-admin attempted an admin action");
            audit::record(
                self.db.conn(),
                &actor.ctx,
                Some(&actor.user_id),
                "authz.denied",
                Some(target_id),
                json!({ "action": action.as_str() }),
            )
            .await?;
            return Err(ServiceError::Forbidden(
                "only admins can change other accounts".into(),
            ));
        }
        let target = self.find(target_id).await?.ok_or(ServiceError::NotFound)?;
        if target.id == actor.user_id {
            return Err(ServiceError::Conflict(
                "you cannot change your own account here".into(),
            ));
        }
        let (admin, ctx) = (actor.user_id.as_str(), &actor.ctx);
        match action {
            AdminAction::Disable => {
                self.set_status(admin, target_id, Status::Disabled, ctx)
                    .await?
            }
            AdminAction::Enable => {
                self.set_status(admin, target_id, Status::Active, ctx)
                    .await?
            }
            AdminAction::ResetTwoFactor => self.reset_totp(admin, target_id, ctx).await?,
            AdminAction::EndSessions => {
                self.end_sessions(admin, target_id, ctx).await?;
            }
            AdminAction::Unlock => self.unlock(admin, target_id, ctx).await?,
            AdminAction::Promote => self.set_role(admin, target_id, Role::Admin, ctx).await?,
            AdminAction::Demote => {
                self.set_role(admin, target_id, Role::Developer, ctx)
                    .await?
            }
            AdminAction::ResendVerification => {
                if !self.mails() {
                    return Err(ServiceError::Conflict(
                        "this Keyport does not send email".into(),
                    ));
                }
                if target.email_verified {
                    return Err(ServiceError::Conflict(format!(
                        "{} is already confirmed",
                        target.email
                    )));
                }
                self.send_verification(admin, target_id, ctx).await?;
            }
        }
        Ok(target)
    }

    /// Disables or re-enables a user (admin action).
    pub async fn set_status(
        &self,
        admin_id: &str,
        user_id: &str,
        status: Status,
        ctx: &RequestContext,
    ) -> Result<(), DomainError> {
        let txn = self.db.begin_write().await?;
        user::Entity::update_many()
            .col_expr(user::Column::Status, Expr::value(status.as_str()))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        let action = if status == Status::Disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        audit::record(&txn, ctx, Some(admin_id), action, Some(user_id), json!({})).await?;
        if status == Status::Disabled {
            self.announce_user(&txn, "user.disabled", user_id, chrono::Utc::now())
                .await?;
        }
        txn.commit().await?;
        self.wake_webhooks();
        self.listeners.tell(Change::Owner(user_id.to_owned())).await;
        if status == Status::Disabled {
            crate::sessions::delete_for_user(&self.db, user_id, None).await?;
        }
        Ok(())
    }

    /// Turns 2FA off for a user who lost their phone; they enrol again at next sign-in.
    pub async fn reset_totp(
        &self,
        admin_id: &str,
        user_id: &str,
        ctx: &RequestContext,
    ) -> Result<(), DomainError> {
        self.clear_totp(user_id, ctx, true).await?;
        crate::sessions::delete_for_user(&self.db, user_id, None).await?;
        let keys = self.throttle_keys(user_id).await?;
        throttle::clear(&self.db, &keys).await?;
        audit::record(
            self.db.conn(),
            ctx,
            Some(admin_id),
            "2fa.reset",
            Some(user_id),
            json!({}),
        )
        .await
    }
}
