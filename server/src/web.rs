//! What every browser-facing handler shares: the one-time flash message and the redirect that
//! carries it, the generic answer to an internal error, the signed-in user of a session, and the
//! session keys these read. A leaf: the sign-in flow, the portal pages and the usage pages all
//! build on it, and it imports none of them.
use app::session::Flash;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use domain::accounts::Status;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tower_sessions::Session;

use crate::{AppState, session_store::USER_ID_KEY};

/// Session key of the one-time flash message.
pub(crate) const FLASH_KEY: &str = "flash";
/// When the session last passed a second-factor check (Unix seconds), for step-up.
pub(crate) const SECOND_FACTOR_AT_KEY: &str = "second_factor_at";

pub(crate) const GENERIC_ERROR: &str = "Something went wrong on our side. Please try again.";

#[derive(Serialize, Deserialize, Default)]
pub(crate) struct FlashData {
    pub error: Option<String>,
    pub field_errors: Vec<(String, String)>,
    pub email: Option<String>,
    #[serde(default)]
    pub notice: Option<String>,
    #[serde(default)]
    pub values: Vec<(String, String)>,
}

impl FlashData {
    pub fn notice(message: &str) -> FlashData {
        FlashData {
            notice: Some(message.to_owned()),
            ..Default::default()
        }
    }
    pub fn error(message: impl ToString) -> FlashData {
        FlashData {
            error: Some(message.to_string()),
            ..Default::default()
        }
    }
    pub fn field(field: &str, message: impl ToString) -> FlashData {
        FlashData {
            field_errors: vec![(field.to_owned(), message.to_string())],
            ..Default::default()
        }
    }
}

impl From<FlashData> for Flash {
    fn from(f: FlashData) -> Flash {
        Flash {
            error: f.error,
            field_errors: f.field_errors,
            email: f.email,
            notice: f.notice,
            values: f.values,
        }
    }
}

pub(crate) async fn flash_and_redirect(session: &Session, flash: FlashData, to: &str) -> Response {
    if let Err(error) = session.insert(FLASH_KEY, flash).await {
        tracing::error!(%error, "cannot store a flash message");
    }
    Redirect::to(to).into_response()
}

pub(crate) fn internal(error: impl std::fmt::Display) -> FlashData {
    tracing::error!(%error, "request failed");
    FlashData {
        error: Some(GENERIC_ERROR.into()),
        ..Default::default()
    }
}

/// The fully signed-in user of this session, if any (checked against the database, so a
/// disabled user or one whose 2FA was reset is not signed in any more).
pub(crate) async fn signed_in_user(
    state: &AppState,
    session: &Session,
) -> Option<domain::accounts::User> {
    let id = session.get::<String>(USER_ID_KEY).await.ok().flatten()?;
    let user = state.accounts.find(&id).await.ok().flatten()?;
    (user.status == Status::Active && (user.totp_enabled || !state.require_2fa)).then_some(user)
}

pub(crate) fn utc_minutes(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// Keeps `value` in the session encrypted with the server key, for secrets shown once (a new
/// key's plaintext, fresh recovery codes): the sessions table never holds them in plaintext.
pub(crate) async fn insert_sealed<T: Serialize>(
    state: &AppState,
    session: &Session,
    key: &str,
    value: &T,
) -> anyhow::Result<()> {
    let sealed = state.secret_key.encrypt(&serde_json::to_vec(value)?);
    session.insert(key, sealed).await?;
    Ok(())
}

/// Takes a value stored by [`insert_sealed`] out of the session (`None` if there is none, or it
/// cannot be opened, e.g. after the server key changed).
pub(crate) async fn take_sealed<T: DeserializeOwned>(
    state: &AppState,
    session: &Session,
    key: &str,
) -> anyhow::Result<Option<T>> {
    let Some(sealed) = session.remove::<Vec<u8>>(key).await? else {
        return Ok(None);
    };
    Ok(state
        .secret_key
        .decrypt(&sealed)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok()))
}
