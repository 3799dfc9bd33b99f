//! The form handlers of the email flows (only when SMTP is configured): forgot password, reset
//! with a mailed link, confirm an address, and ask for a new confirmation link. Their pages are
//! in [`crate::pages`]. Like every form here, each answers with a redirect and a one-time flash.
use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::post,
};
use chrono::Utc;
use domain::accounts::{LinkError, MailRequestError};
use serde::Deserialize;
use tower_sessions::Session;

use crate::{
    AppState,
    client::ClientContext,
    web::{FlashData, flash_and_redirect, internal, signed_in_user},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/forgot-password", post(forgot_password))
        .route("/reset/{token}", post(reset_password))
        .route("/verify-email/resend", post(resend_verification))
        .route("/verify-email/{token}", post(verify_email))
        .route("/admin/outbox/retry", post(retry))
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not found").into_response()
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    email: String,
}

/// Always "check your inbox" for a well-formed address, whether or not it has an account.
async fn forgot_password(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<EmailForm>,
) -> Response {
    if !state.accounts.mails() {
        return not_found();
    }
    let email = Some(form.email.trim().to_owned());
    match state
        .accounts
        .request_password_reset(&form.email, &ctx)
        .await
    {
        Ok(()) => {
            let flash = FlashData {
                notice: Some(format!(
                    "Check your inbox: we sent a message to {} with what to do next.",
                    form.email.trim()
                )),
                email,
                ..Default::default()
            };
            flash_and_redirect(&session, flash, "/login").await
        }
        Err(MailRequestError::Email(e)) => {
            let flash = FlashData {
                email,
                ..FlashData::field("email", e)
            };
            flash_and_redirect(&session, flash, "/forgot-password").await
        }
        Err(e @ MailRequestError::Throttled(_)) => {
            let flash = FlashData {
                email,
                ..FlashData::error(e)
            };
            flash_and_redirect(&session, flash, "/forgot-password").await
        }
        Err(MailRequestError::Internal(e)) => {
            flash_and_redirect(&session, internal(e), "/forgot-password").await
        }
    }
}

#[derive(Deserialize)]
struct NewPasswordForm {
    #[serde(default)]
    password: String,
}

async fn reset_password(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Path(token): Path<String>,
    Form(form): Form<NewPasswordForm>,
) -> Response {
    if !state.accounts.mails() {
        return not_found();
    }
    let back = format!("/reset/{token}");
    match state
        .accounts
        .reset_password(&token, &form.password, &ctx, Utc::now())
        .await
    {
        Ok(user) => {
            // Every session of the account ended; this browser's too, so nothing of it is
            // saved back.
            if let Err(error) = session.flush().await {
                tracing::error!(%error, "cannot end the session");
            }
            let flash = FlashData {
                notice: Some(
                    "Your password was changed and every session was signed out. Sign in with \
                     your new password."
                        .into(),
                ),
                email: Some(user.email),
                ..Default::default()
            };
            flash_and_redirect(&session, flash, "/login").await
        }
        Err(LinkError::Password(e)) => {
            flash_and_redirect(&session, FlashData::field("password", e), &back).await
        }
        Err(LinkError::Internal(e)) => flash_and_redirect(&session, internal(e), &back).await,
        Err(e) => flash_and_redirect(&session, FlashData::error(e), &back).await,
    }
}

async fn verify_email(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Path(token): Path<String>,
) -> Response {
    match state.accounts.verify_email(&token, &ctx, Utc::now()).await {
        Ok(user) => {
            let signed_in = signed_in_user(&state, &session).await.is_some();
            let flash = FlashData {
                notice: Some(format!(
                    "{} is confirmed.{}",
                    user.email,
                    if signed_in {
                        " You can create API keys now."
                    } else {
                        " Sign in to create API keys."
                    }
                )),
                email: Some(user.email),
                ..Default::default()
            };
            let to = if signed_in { "/dashboard" } else { "/login" };
            flash_and_redirect(&session, flash, to).await
        }
        Err(LinkError::Internal(e)) => {
            flash_and_redirect(&session, internal(e), &format!("/verify-email/{token}")).await
        }
        Err(e) => {
            flash_and_redirect(
                &session,
                FlashData::error(e),
                &format!("/verify-email/{token}"),
            )
            .await
        }
    }
}

async fn resend_verification(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    if !state.accounts.mails() {
        return not_found();
    }
    let flash = match state.accounts.resend_verification(&user.id, &ctx).await {
        Ok(true) => FlashData::notice(&format!(
            "We sent a new confirmation link to {}.",
            user.email
        )),
        Ok(false) => FlashData::notice(&format!("{} is already confirmed.", user.email)),
        Err(MailRequestError::Internal(e)) => internal(e),
        Err(e) => FlashData::error(e),
    };
    flash_and_redirect(&session, flash, "/dashboard").await
}

#[derive(Deserialize)]
struct RetryForm {
    #[serde(default)]
    id: String,
}

/// An admin queues an unsent email for an attempt now.
async fn retry(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<RetryForm>,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let (true, Some(outbox)) = (user.role == domain::accounts::Role::Admin, &state.outbox) else {
        return not_found();
    };
    let flash = match form.id.trim().parse::<i64>() {
        Ok(id) => match outbox.retry_now(id, Utc::now()).await {
            Ok(true) => {
                if let Err(e) = domain::audit::record(
                    state.db.conn(),
                    &ctx,
                    Some(&user.id),
                    "outbox.retry",
                    Some(&id.to_string()),
                    serde_json::json!({}),
                )
                .await
                {
                    tracing::error!(error = %e, "cannot audit an outbox retry");
                }
                FlashData::notice("The email is queued for an attempt now.")
            }
            Ok(false) => FlashData::error("That email was already sent."),
            Err(e) => internal(e),
        },
        Err(_) => FlashData::error("That email was already sent."),
    };
    flash_and_redirect(&session, flash, "/admin#outbox").await
}
