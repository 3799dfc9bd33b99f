//! Who is calling the REST API: `Authorization: Bearer <key>` with a key of the built-in
//! `keyport` API. A developer's key acts as that developer; a key with the `admin` scope, owned by
//! an admin, acts on everything.
use axum::{extract::FromRequestParts, http::request::Parts};
use chrono::Utc;
use domain::{
    accounts::{Role, Status},
    catalog::{ADMIN_SCOPE, KEYPORT_API},
    keys::{PlainKey, format::hash_hex},
    service::Actor,
};

use super::error::ApiError;
use crate::{AppState, auth::ClientContext};

pub struct Caller {
    pub actor: Actor,
    pub key_id: String,
    pub email: String,
    pub role: Role,
    scopes: Vec<String>,
}

impl Caller {
    /// Refuses with 403 unless the key carries `scope` (or `admin`, which implies every scope).
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| s == scope || s == ADMIN_SCOPE)
            && (scope != ADMIN_SCOPE || self.actor.is_admin)
        {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "This key lacks the {scope} scope."
            )))
        }
    }

    /// Refuses with 403 unless the caller acts as an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.actor.is_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "Only an admin's key with the admin scope can do this.",
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized("Send a Keyport key as Authorization: Bearer kp_...")
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("Use the Bearer scheme: Authorization: Bearer kp_...")
            })?;
        let key = PlainKey::parse(token)
            .map_err(|e| ApiError::unauthorized(format!("That is not a Keyport key: {e}.")))?;
        let invalid = || {
            ApiError::unauthorized("This key is not valid (unknown, expired, revoked or disabled).")
        };
        let found = state
            .keys
            .find_by_hash(&hash_hex(key.expose()))
            .await
            .map_err(ApiError::from)?
            .ok_or_else(invalid)?;
        if found.api != KEYPORT_API {
            return Err(ApiError::unauthorized(
                "This key is for another API; the management API needs a key of the keyport API.",
            ));
        }
        if !found.status(Utc::now()).is_usable() {
            return Err(invalid());
        }
        let owner = state
            .accounts
            .find(&found.owner_id)
            .await
            .map_err(ApiError::internal)?
            .filter(|u| u.status == Status::Active)
            .ok_or_else(invalid)?;
        let ClientContext(ctx) = ClientContext::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let is_admin = owner.role == Role::Admin && found.scopes.iter().any(|s| s == ADMIN_SCOPE);
        Ok(Caller {
            actor: Actor::new(owner.id, is_admin, ctx),
            key_id: found.id,
            email: owner.email,
            role: owner.role,
            scopes: found.scopes,
        })
    }
}
