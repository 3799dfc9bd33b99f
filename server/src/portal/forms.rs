//! What the portal's form handlers share: the acting user, the parsed form (`Fields`, which keeps
//! repeated fields and refills the form after an error), flash messages for invalid input and
//! service errors, and the step-up check (a fresh 2FA code before sensitive key changes).
use chrono::{DateTime, NaiveDate, Utc};
use domain::{
    accounts::{Role, User},
    service::{Actor, FieldErrors, ServiceError},
};
use tower_sessions::Session;

use crate::{
    AppState,
    web::{FlashData, SECOND_FACTOR_AT_KEY, internal},
};

pub(crate) fn actor(user: &User, ctx: domain::audit::RequestContext) -> Actor {
    Actor::new(user.id.clone(), user.role == Role::Admin, ctx)
}

pub(crate) fn page_actor(user: &User) -> Actor {
    actor(user, Default::default())
}

/// Form fields in order, repeated names kept (checkboxes).
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Fields {
        Fields(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    }
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }
    /// A number field: `Ok(None)` when empty.
    pub fn number<T: std::str::FromStr>(&self, name: &str, errors: &mut FieldErrors) -> Option<T> {
        let raw = self.get(name).replace([',', '_', ' '], "");
        if raw.is_empty() {
            return None;
        }
        match raw.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.add(name, "enter a whole number");
                None
            }
        }
    }
    /// The values to refill the form with (never secrets such as codes).
    pub(crate) fn refill(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| k != "code")
            .cloned()
            .collect()
    }
}

pub(crate) fn invalid_flash(errors: FieldErrors, fields: &Fields) -> FlashData {
    FlashData {
        error: Some("Please correct the fields marked below.".into()),
        field_errors: errors.0,
        values: fields.refill(),
        ..Default::default()
    }
}

/// The flash for a failed service call.
pub(crate) fn service_flash(e: ServiceError, fields: &Fields) -> FlashData {
    match e {
        ServiceError::Invalid(errors) => invalid_flash(errors, fields),
        ServiceError::NotFound => FlashData::error("That no longer exists, or it is not yours."),
        ServiceError::Forbidden(m) | ServiceError::Conflict(m) => FlashData {
            error: Some(capitalize(&m)),
            values: fields.refill(),
            ..Default::default()
        },
        ServiceError::Domain(e) => internal(e),
    }
}

pub(crate) fn needs_step_up_at(state: &AppState, user: &User, last: Option<i64>) -> bool {
    user.totp_enabled && last.is_none_or(|at| Utc::now().timestamp() - at > state.step_up_seconds)
}

pub(crate) async fn needs_step_up(
    state: &AppState,
    session: &Session,
    user: &User,
) -> anyhow::Result<bool> {
    let last = session.get::<i64>(SECOND_FACTOR_AT_KEY).await?;
    Ok(needs_step_up_at(state, user, last))
}

/// Checks the step-up code of a form when one is due. `Err` holds the flash to answer with.
pub(crate) async fn step_up(
    state: &AppState,
    session: &Session,
    user: &User,
    fields: &Fields,
    ctx: &domain::audit::RequestContext,
) -> Result<(), FlashData> {
    step_up_code(
        state,
        session,
        user,
        &fields.get("code"),
        fields.refill(),
        ctx,
    )
    .await
}

/// Checks `code` when a step-up is due (the last 2FA check of this session is older than the
/// step-up window); `refill` are the form's values to show again on failure.
pub(crate) async fn step_up_code(
    state: &AppState,
    session: &Session,
    user: &User,
    code: &str,
    refill: Vec<(String, String)>,
    ctx: &domain::audit::RequestContext,
) -> Result<(), FlashData> {
    match needs_step_up(state, session, user).await {
        Ok(false) => return Ok(()),
        Ok(true) => {}
        Err(e) => return Err(internal(e)),
    }
    let code = code.trim();
    let field_error = |message: String| FlashData {
        error: Some("Confirm it is you: enter a code from your authenticator app.".into()),
        field_errors: vec![("code".into(), message)],
        values: refill.clone(),
        ..Default::default()
    };
    if code.is_empty() {
        return Err(field_error(
            "Enter the 6-digit code from your authenticator app.".into(),
        ));
    }
    match state
        .accounts
        .step_up(&user.id, code, ctx, Utc::now())
        .await
    {
        Ok(()) => {
            if let Err(e) = session
                .insert(SECOND_FACTOR_AT_KEY, Utc::now().timestamp())
                .await
            {
                return Err(internal(e));
            }
            Ok(())
        }
        Err(domain::accounts::SignInError::Internal(e)) => Err(internal(e)),
        Err(e) => Err(field_error(e.to_string())),
    }
}

pub(crate) fn parse_day(s: &str) -> Option<DateTime<Utc>> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

pub(crate) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => {
            f.to_uppercase().chain(c).collect::<String>() + if s.ends_with('.') { "" } else { "." }
        }
        None => String::new(),
    }
}
