//! Who is calling the REST API: `Authorization: Bearer <key>` with a key of the built-in
//! `keyport` API, verified by the verifier like any other key. A developer's key acts as that developer; a key with the `admin` scope, owned by
//! an admin, acts on everything.
use axum::{extract::FromRequestParts, http::request::Parts};
use chrono::Utc;
use domain::{
    accounts::{Role, Status},
    catalog::{ADMIN_SCOPE, KEYPORT_API},
    keys::PlainKey,
    service::Actor,
    verification::{Code, Request},
};

use super::error::ApiError;
use crate::{AppState, client::ClientContext};

pub struct Caller {
    pub actor: Actor,
    pub key_id: String,
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

    /// The bearer key is verified like any key of the `keyport` API, from the verifier's memory:
    /// its IP allowlist, rate limit (429 with `Retry-After`) and quota hold here too, the call is
    /// counted in the key's usage, and made-up keys hit the negative cache, not the database.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(parts, state).await;
        if let Err(refused) = &caller {
            // Failed authentication is logged (ASVS 16.3.1); with no known actor there is no
            // one to audit it under.
            tracing::warn!(
                status = refused.status.as_u16(),
                reason = %refused.message,
                method = %parts.method,
                path = %parts.uri.path(),
                "management API caller refused"
            );
        }
        caller
    }
}

async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
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
    PlainKey::parse(token)
        .map_err(|e| ApiError::unauthorized(format!("That is not a Keyport key: {e}.")))?;
    let token = token.to_owned();
    let ClientContext(ctx) = ClientContext::from_request_parts(parts, state)
        .await
        .unwrap_or_else(|never| match never {});
    let ip = ctx.ip.as_deref().and_then(|ip| ip.parse().ok());
    let outcome = state
        .verifier
        .verify(
            &Request {
                key: &token,
                api: Some(KEYPORT_API),
                scopes: &[],
                ip,
                version: None,
                cost: 1,
            },
            Utc::now(),
        )
        .await;
    if outcome.limits_unavailable {
        return Err(ApiError::limits_unavailable());
    }
    let key = match (outcome.code, outcome.key) {
        (Code::Valid, Some(key)) => key,
        (Code::IpNotAllowed, _) => {
            return Err(ApiError::forbidden(
                "This key may not be used from this address (see its IP allowlist).",
            ));
        }
        (Code::RateLimited, _) => {
            return Err(ApiError::too_many_requests(
                "This key is over its rate limit; retry after the time in Retry-After.",
                outcome.retry_after,
            ));
        }
        (Code::QuotaExceeded, _) => {
            return Err(ApiError::too_many_requests(
                "This key has used its quota for the period; retry after the time in Retry-After.",
                outcome.retry_after,
            ));
        }
        _ => {
            return Err(ApiError::unauthorized(
                "This key is not valid for the management API (unknown, of another API, \
                     expired, revoked or disabled).",
            ));
        }
    };
    let mut is_admin = key.owner_is_admin && key.scopes.iter().any(|s| s == ADMIN_SCOPE);
    if is_admin {
        // Acting on everything is confirmed against the database on each call, so a demoted
        // or disabled admin's key loses that power at once, whichever instance it reaches.
        let owner = state
            .accounts
            .find(&key.owner_id)
            .await
            .map_err(ApiError::internal)?;
        is_admin = owner.is_some_and(|u| u.role == Role::Admin && u.status == Status::Active);
    }
    Ok(Caller {
        actor: Actor::new(key.owner_id.to_string(), is_admin, ctx)
            .via_key(key.id.to_string(), key.scopes.to_vec()),
        key_id: key.id.to_string(),
        scopes: key.scopes.to_vec(),
    })
}
