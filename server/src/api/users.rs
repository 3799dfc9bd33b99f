//! `/v1/users` (admins): find accounts and act on them as `/admin/users` does: disable and
//! enable, promote and demote, unlock, reset 2FA, end sessions, resend the confirmation link.
//! [`domain::accounts::Accounts::admin_action`] authorizes and audits each (never on the caller's
//! own account: 409); this maps the wire.
use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
};
use chrono::Utc;
use domain::{
    accounts::{AdminAction, Role, User},
    catalog::ADMIN_SCOPE,
    id::UserId,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    caller::Caller,
    dto::rfc3339,
    error::{ApiError, ApiJson, ApiPath, ErrorBody},
};
use crate::AppState;

/// An account, as an admin sees it. Never its password, second factor or recovery codes.
#[derive(Serialize, ToSchema)]
pub struct UserDto {
    #[schema(example = "usr_4k9XbQ2mN8pL1vR7tY3z")]
    pub id: String,
    pub email: String,
    /// `developer` or `admin`.
    pub role: String,
    /// `active` or `disabled`.
    pub status: String,
    pub email_verified: bool,
    pub totp_enabled: bool,
    /// Sign-in is refused for now after too many failed attempts (`unlock` clears it).
    pub locked: bool,
    /// The assigned plan; `null`: the default plan.
    pub plan_id: Option<String>,
    pub created_at: String,
    pub last_sign_in_at: Option<String>,
}

fn to_dto(u: User, locked: bool) -> UserDto {
    UserDto {
        id: u.id,
        email: u.email,
        role: u.role.as_str().to_owned(),
        status: u.status.as_str().to_owned(),
        email_verified: u.email_verified,
        totp_enabled: u.totp_enabled,
        locked,
        plan_id: u.plan_id,
        created_at: rfc3339(u.created_at),
        last_sign_in_at: u.last_sign_in_at.map(rfc3339),
    }
}

/// A user as they are now; 404 when there is none.
pub(crate) async fn user_dto(state: &AppState, id: &str) -> Result<UserDto, ApiError> {
    let user = state
        .accounts
        .find(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    let locked = state
        .accounts
        .is_locked(&user.id, Utc::now())
        .await
        .map_err(ApiError::internal)?;
    Ok(to_dto(user, locked))
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    /// Newest first.
    pub users: Vec<UserDto>,
    /// Users matching the search, over all pages.
    pub total: u64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserParams {
    /// Only addresses containing this text.
    pub q: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
    /// Users to skip, 0 to 1,000,000, default 0.
    pub offset: Option<u64>,
}

/// Users, newest first, optionally searched by address (admins).
#[utoipa::path(get, path = "/v1/users", tag = "users", params(UserParams),
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<UserParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UserList>, ApiError> {
    caller.require(ADMIN_SCOPE)?;
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is 1 to 200"));
    }
    let offset = params.offset.unwrap_or(0);
    if offset > 1_000_000 {
        return Err(ApiError::invalid("offset", "offset is 0 to 1,000,000"));
    }
    let q = params.q.unwrap_or_default();
    if q.chars().count() > 320 || q.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "q",
            "search for at most 320 characters, without control characters",
        ));
    }
    let (users, total) = state
        .accounts
        .list_users(&q, limit, offset)
        .await
        .map_err(ApiError::internal)?;
    let now = Utc::now();
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        let locked = state
            .accounts
            .is_locked(&u.id, now)
            .await
            .map_err(ApiError::internal)?;
        out.push(to_dto(u, locked));
    }
    Ok(Json(UserList { users: out, total }))
}

/// One user (admins).
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<UserDto>, ApiError> {
    caller.require(ADMIN_SCOPE)?;
    Ok(Json(user_dto(&state, id.as_str()).await?))
}

/// Runs an admin action on another user and answers the user as they are after it.
async fn act(
    state: &AppState,
    caller: &Caller,
    id: &UserId,
    action: AdminAction,
) -> Result<Json<UserDto>, ApiError> {
    caller.require(ADMIN_SCOPE)?;
    state
        .accounts
        .admin_action(&caller.actor, id.as_str(), action)
        .await?;
    Ok(Json(user_dto(state, id.as_str()).await?))
}

/// Disables a user (admins): their sessions end, their keys stop verifying, they cannot sign in.
#[utoipa::path(post, path = "/v1/users/{id}/disable", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Your own account")))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<UserDto>, ApiError> {
    act(&state, &caller, &id, AdminAction::Disable).await
}

/// Enables a disabled user again (admins).
#[utoipa::path(post, path = "/v1/users/{id}/enable", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Your own account")))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<UserDto>, ApiError> {
    act(&state, &caller, &id, AdminAction::Enable).await
}

/// Clears a user's failed sign-in attempts and lockout (admins).
#[utoipa::path(post, path = "/v1/users/{id}/unlock", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Your own account")))]
pub async fn unlock(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<UserDto>, ApiError> {
    act(&state, &caller, &id, AdminAction::Unlock).await
}

/// Turns a user's 2FA off and ends their sessions (admins): they set it up again at next sign-in.
#[utoipa::path(post, path = "/v1/users/{id}/reset-2fa", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Your own account")))]
pub async fn reset_two_factor(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<UserDto>, ApiError> {
    act(&state, &caller, &id, AdminAction::ResetTwoFactor).await
}

/// Signs a user out everywhere (admins). Their keys keep working.
#[utoipa::path(post, path = "/v1/users/{id}/end-sessions", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Your own account")))]
pub async fn end_sessions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<UserDto>, ApiError> {
    act(&state, &caller, &id, AdminAction::EndSessions).await
}

/// Mails a user a new address-confirmation link (admins; email on, address not confirmed).
#[utoipa::path(post, path = "/v1/users/{id}/resend-verification", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Your own account, email is off, or the address is confirmed already")))]
pub async fn resend_verification(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<UserDto>, ApiError> {
    act(&state, &caller, &id, AdminAction::ResendVerification).await
}

/// A user's role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// `admin` or `developer`.
    #[schema(example = "developer")]
    pub role: String,
}

/// Promotes a developer to admin or demotes an admin (admins; not your own account).
#[utoipa::path(put, path = "/v1/users/{id}/role", tag = "users", params(("id" = String, Path)), request_body = SetRole,
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Your own account"),
        (status = 422, body = ErrorBody)))]
pub async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<SetRole>,
) -> Result<Json<UserDto>, ApiError> {
    caller.require(ADMIN_SCOPE)?;
    let action = match body.role.as_str() {
        r if r == Role::Admin.as_str() => AdminAction::Promote,
        r if r == Role::Developer.as_str() => AdminAction::Demote,
        _ => {
            return Err(ApiError::invalid(
                "role",
                "role is \"admin\" or \"developer\"",
            ));
        }
    };
    act(&state, &caller, &id, action).await
}

/// Whom to invite.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    #[schema(example = "newcomer@example.com")]
    pub email: String,
    /// `developer` (default) or `admin`.
    pub role: Option<String>,
    /// The plan the account starts on; absent: the default plan.
    pub plan_id: Option<String>,
}

/// Mails someone a link to create an account with this role and plan (admins; email on). The
/// link works once, for 7 days, and the account counts as confirmed.
#[utoipa::path(post, path = "/v1/users/invitations", tag = "users", request_body = Invite,
    responses((status = 202, description = "The invitation is queued for mailing"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "This Keyport does not send email"),
        (status = 422, body = ErrorBody, description = "An invalid or taken address, an unknown plan or role")))]
pub async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Invite>,
) -> Result<StatusCode, ApiError> {
    caller.require(ADMIN_SCOPE)?;
    let role = match body.role.as_deref() {
        None => Role::Developer,
        Some(r) if r == Role::Developer.as_str() => Role::Developer,
        Some(r) if r == Role::Admin.as_str() => Role::Admin,
        Some(_) => {
            return Err(ApiError::invalid(
                "role",
                "role is \"admin\" or \"developer\"",
            ));
        }
    };
    if body
        .plan_id
        .as_deref()
        .is_some_and(|p| domain::id::PlanId::parse(p).is_err())
    {
        return Err(ApiError::invalid(
            "plan_id",
            "there is no plan with this id",
        ));
    }
    state
        .accounts
        .invite(&caller.actor, &body.email, role, body.plan_id.as_deref())
        .await?;
    Ok(StatusCode::ACCEPTED)
}
