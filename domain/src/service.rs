//! What the catalog and key services share: who is acting, and the errors they answer with.
//! Authorization lives in the services, so the portal and the REST API cannot disagree on it.
use serde_json::json;

use crate::{Database, DomainError, audit::RequestContext};

/// The actor id the command line is recorded under.
pub const CLI_ACTOR: &str = "cli";

/// The signed-in user (or key owner) an operation is performed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub is_admin: bool,
    pub ctx: RequestContext,
    /// The management key making the call, when the call comes through the REST API: it may
    /// not grant more than it holds.
    pub via_key: Option<ViaKey>,
}

/// A key of the `keyport` API acting for its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViaKey {
    pub id: String,
    pub scopes: Vec<String>,
}

impl Actor {
    /// The command line (`keyport keys create`, ...): an operator with the machine's access,
    /// acting as an admin and recorded in the audit log as `cli`.
    pub fn cli() -> Actor {
        Actor::new(CLI_ACTOR, true, RequestContext::default())
    }

    pub fn new(user_id: impl Into<String>, is_admin: bool, ctx: RequestContext) -> Actor {
        Actor {
            user_id: user_id.into(),
            is_admin,
            ctx,
            via_key: None,
        }
    }

    /// The same actor, acting through the management key `id` holding `scopes`.
    pub fn via_key(mut self, id: impl Into<String>, scopes: Vec<String>) -> Actor {
        self.via_key = Some(ViaKey {
            id: id.into(),
            scopes,
        });
        self
    }
}

/// Errors attached to the fields of the input that caused them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(String, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        if !self.0.iter().any(|(f, _)| f == field) {
            self.0.push((field.to_owned(), message.into()));
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
    /// `Err(Invalid)` when any field has an error.
    pub fn into_result(self) -> Result<(), ServiceError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(self))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Unknown, or not the actor's to see (never "forbidden" for another user's key).
    #[error("not found")]
    NotFound,
    /// The actor may not do this at all (missing role).
    #[error("{0}")]
    Forbidden(String),
    /// The request clashes with the current state (a taken slug, the key limit of a plan).
    #[error("{0}")]
    Conflict(String),
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<sea_orm::DbErr> for ServiceError {
    fn from(e: sea_orm::DbErr) -> ServiceError {
        ServiceError::Domain(DomainError::Database(e))
    }
}

impl ServiceError {
    pub fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        ServiceError::Invalid(errors)
    }
}

/// True when the error is a unique-constraint violation (a taken name or slug).
pub fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Records a refused attempt (ASVS 16.3.2) as `authz.denied` in the audit log, with what was
/// tried (`action`), on what, and why, and logs it; returns `error` (the refusal to answer
/// with: `Forbidden`, or `NotFound` for another user's object). If the audit write fails, that
/// failure is returned instead.
pub async fn deny(
    db: &Database,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    error: ServiceError,
) -> ServiceError {
    let reason = match &error {
        ServiceError::Forbidden(m) => m.clone(),
        ServiceError::NotFound => "not the actor's to see".to_owned(),
        other => other.to_string(),
    };
    tracing::warn!(actor = %actor.user_id, action, target, %reason, "authorization refused");
    let detail = json!({
        "action": action,
        "reason": reason,
        "via_key": actor.via_key.as_ref().map(|k| &k.id),
    });
    match crate::audit::record(
        db.conn(),
        &actor.ctx,
        Some(&actor.user_id),
        "authz.denied",
        target,
        detail,
    )
    .await
    {
        Ok(()) => error,
        Err(e) => ServiceError::Domain(e),
    }
}
