//! The browser side of accounts: the session cookie, the middleware that resolves who the visitor
//! is before a page renders, the sign-up / sign-in / enrolment form handlers, and the same-origin
//! guard on every state-changing request.
//!
//! Forms post here and answer with a redirect (303) to the next page, carrying any error in a
//! one-time "flash" in the session, so every step works before, and without, WASM.
use std::net::SocketAddr;

use app::session::{EnrolmentView, Flash, SessionView, Stage, UserView};
use axum::{
    Form, Router,
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
    routing::post,
};
use chrono::Utc;
use domain::{
    accounts::{Role, SecondStep, SignInError, SignUpError, Status},
    audit::RequestContext,
};
use serde::{Deserialize, Serialize};
use tower_sessions::{Expiry, Session, SessionManagerLayer, cookie::SameSite};

use crate::{
    AppState, Config,
    session_store::{DbSessionStore, USER_ID_KEY},
};

/// Session key of a user who passed the password step but not the second factor yet.
const PENDING_USER_KEY: &str = "pending_user_id";
const CREATED_AT_KEY: &str = "created_at";
const FLASH_KEY: &str = "flash";
const RECOVERY_CODES_KEY: &str = "recovery_codes";

const GENERIC_ERROR: &str = "Something went wrong on our side. Please try again.";

/// The session cookie: HttpOnly, SameSite=Lax, idle timeout; Secure with the `__Host-` prefix
/// when Keyport is served over HTTPS.
pub fn session_layer(
    config: &Config,
    store: DbSessionStore,
) -> SessionManagerLayer<DbSessionStore> {
    let https = config.serves_https();
    SessionManagerLayer::new(store)
        .with_name(if https {
            "__Host-keyport_session"
        } else {
            "keyport_session"
        })
        .with_secure(https)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            config.session_idle_minutes,
        )))
}

/// Client address and user agent, for throttling and the audit log.
pub struct ClientContext(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for ClientContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(ClientContext(RequestContext { ip, user_agent }))
    }
}

#[derive(Serialize, Deserialize, Default)]
struct FlashData {
    error: Option<String>,
    field_errors: Vec<(String, String)>,
    email: Option<String>,
}

impl From<FlashData> for Flash {
    fn from(f: FlashData) -> Flash {
        Flash {
            error: f.error,
            field_errors: f.field_errors,
            email: f.email,
        }
    }
}

async fn flash_and_redirect(session: &Session, flash: FlashData, to: &str) -> Response {
    if let Err(error) = session.insert(FLASH_KEY, flash).await {
        tracing::error!(%error, "cannot store a flash message");
    }
    Redirect::to(to).into_response()
}

fn internal(error: impl std::fmt::Display) -> FlashData {
    tracing::error!(%error, "request failed");
    FlashData {
        error: Some(GENERIC_ERROR.into()),
        ..Default::default()
    }
}

/// Refuses state-changing requests a browser made on behalf of another site (CSRF), using the
/// `Sec-Fetch-Site` header and, for browsers without it, `Origin` against `Host`.
pub async fn same_origin_guard(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && is_cross_site(request.headers()) {
        tracing::warn!(path = %request.uri().path(), "refused a cross-site request");
        return (StatusCode::FORBIDDEN, "Cross-site request refused.").into_response();
    }
    next.run(request).await
}

fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false; // Not a browser request: CSRF needs a browser.
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

fn is_page_request(path: &str) -> bool {
    !(path.starts_with("/pkg/")
        || path == "/healthz"
        || path == "/readyz"
        || path == "/favicon.svg")
}

/// Resolves the visitor (signed in, half-way, or anonymous), enforces the session's absolute
/// lifetime, sends each page to where the visitor belongs, and hands the page a [`SessionView`].
pub async fn session_context(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if !is_page_request(&path) {
        return next.run(request).await;
    }
    match resolve(&state, &session, &path, request.method() == Method::GET).await {
        Ok(Resolved::Redirect(to)) => Redirect::to(&to).into_response(),
        Ok(Resolved::View(view)) => {
            request.extensions_mut().insert(*view);
            next.run(request).await
        }
        Err(error) => {
            tracing::error!(%error, "cannot resolve the session");
            (StatusCode::INTERNAL_SERVER_ERROR, GENERIC_ERROR).into_response()
        }
    }
}

enum Resolved {
    Redirect(String),
    View(Box<SessionView>),
}

async fn resolve(
    state: &AppState,
    session: &Session,
    path: &str,
    is_get: bool,
) -> anyhow::Result<Resolved> {
    let now = Utc::now().timestamp();
    let created = session.get::<i64>(CREATED_AT_KEY).await?;
    if created.is_some_and(|created| now - created > state.session_max_seconds) {
        session.flush().await?;
    }
    let mut stage = Stage::Anonymous;
    let mut user = None;
    if let Some(id) = session.get::<String>(USER_ID_KEY).await? {
        match state.accounts.find(&id).await? {
            Some(u) if u.status == Status::Active && u.totp_enabled => {
                stage = Stage::SignedIn;
                user = Some(u);
            }
            _ => session.flush().await?,
        }
    } else if let Some(id) = session.get::<String>(PENDING_USER_KEY).await? {
        match state.accounts.find(&id).await? {
            Some(u) if u.status == Status::Active => {
                stage = if u.totp_enabled {
                    Stage::NeedsCode
                } else {
                    Stage::NeedsEnrolment
                };
                user = Some(u);
            }
            _ => session.flush().await?,
        }
    }

    if is_get {
        let signed_in = stage == Stage::SignedIn;
        let target = match path {
            "/" | "/login" | "/signup" if signed_in => Some("/dashboard"),
            "/login/code" if stage != Stage::NeedsCode => {
                Some(if signed_in { "/dashboard" } else { "/login" })
            }
            "/enroll" if stage != Stage::NeedsEnrolment => {
                Some(if signed_in { "/dashboard" } else { "/login" })
            }
            p if requires_sign_in(p) && !signed_in => Some(match stage {
                Stage::NeedsCode => "/login/code",
                Stage::NeedsEnrolment => "/enroll",
                _ => "/login",
            }),
            _ => None,
        };
        if let Some(target) = target {
            return Ok(Resolved::Redirect(target.to_owned()));
        }
    }

    let flash = if is_get {
        session
            .remove::<FlashData>(FLASH_KEY)
            .await?
            .unwrap_or_default()
    } else {
        FlashData::default()
    };
    let recovery_codes = if is_get && path == "/enroll/recovery" {
        session.remove::<Vec<String>>(RECOVERY_CODES_KEY).await?
    } else {
        None
    };
    let enrolment = match (&stage, &user) {
        (Stage::NeedsEnrolment, Some(u)) if path == "/enroll" => state
            .accounts
            .pending_enrolment(&u.id)
            .await?
            .map(|e| EnrolmentView {
                qr_svg: qr_svg(&e.otpauth_uri),
                setup_key: e.setup_key,
                otpauth_uri: e.otpauth_uri,
            }),
        _ => None,
    };
    Ok(Resolved::View(Box::new(SessionView {
        stage,
        user: user.map(|u| UserView {
            id: u.id,
            email: u.email,
            is_admin: u.role == Role::Admin,
        }),
        flash: flash.into(),
        enrolment,
        recovery_codes,
    })))
}

fn requires_sign_in(path: &str) -> bool {
    [
        "/dashboard",
        "/enroll/recovery",
        "/settings",
        "/keys",
        "/admin",
        "/audit",
        "/alerts",
    ]
    .iter()
    .any(|p| {
        path == *p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(error) => {
            tracing::error!(%error, "cannot render the enrolment QR code");
            String::new()
        }
    }
}

/// The form handlers, mounted beside the pages they serve.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signup", post(sign_up))
        .route("/login", post(sign_in))
        .route("/login/code", post(sign_in_code))
        .route("/enroll", post(enrol))
        .route("/enroll/done", post(enrol_done))
        .route("/logout", post(sign_out))
}

#[derive(Deserialize)]
struct CredentialsForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

async fn start_session(session: &Session, key: &str, user_id: &str) -> anyhow::Result<()> {
    // A new id whenever privilege changes defeats session fixation.
    session.cycle_id().await?;
    session.remove::<String>(PENDING_USER_KEY).await?;
    session.insert(key, user_id).await?;
    if session.get::<i64>(CREATED_AT_KEY).await?.is_none() {
        session
            .insert(CREATED_AT_KEY, Utc::now().timestamp())
            .await?;
    }
    Ok(())
}

async fn sign_up(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<CredentialsForm>,
) -> Response {
    if !state.signup_open {
        let flash = FlashData {
            error: Some(
                "Sign-up is closed on this Keyport. Ask an administrator for an account.".into(),
            ),
            ..Default::default()
        };
        return flash_and_redirect(&session, flash, "/signup").await;
    }
    let email = Some(form.email.trim().to_owned());
    match state
        .accounts
        .sign_up(&form.email, &form.password, &ctx)
        .await
    {
        Ok(user) => {
            let started = async {
                start_session(&session, PENDING_USER_KEY, &user.id).await?;
                state.accounts.begin_enrolment(&user.id).await?;
                anyhow::Ok(())
            };
            match started.await {
                Ok(()) => Redirect::to("/enroll").into_response(),
                Err(e) => flash_and_redirect(&session, internal(e), "/login").await,
            }
        }
        Err(error) => {
            let flash = match error {
                SignUpError::Email(e) => FlashData {
                    field_errors: vec![("email".into(), e.to_string())],
                    email,
                    ..Default::default()
                },
                SignUpError::Password(e) => FlashData {
                    field_errors: vec![("password".into(), e.to_string())],
                    email,
                    ..Default::default()
                },
                SignUpError::EmailUnavailable => FlashData {
                    error: Some(error.to_string()),
                    email,
                    ..Default::default()
                },
                SignUpError::Internal(e) => FlashData {
                    email,
                    ..internal(e)
                },
            };
            flash_and_redirect(&session, flash, "/signup").await
        }
    }
}

async fn sign_in(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<CredentialsForm>,
) -> Response {
    let email = Some(form.email.trim().to_owned());
    match state
        .accounts
        .sign_in_password(&form.email, &form.password, &ctx, Utc::now())
        .await
    {
        Ok((user, step)) => {
            let started = async {
                start_session(&session, PENDING_USER_KEY, &user.id).await?;
                if step == SecondStep::Enrol {
                    state.accounts.begin_enrolment(&user.id).await?;
                }
                anyhow::Ok(())
            };
            match (started.await, step) {
                (Ok(()), SecondStep::Code) => Redirect::to("/login/code").into_response(),
                (Ok(()), SecondStep::Enrol) => Redirect::to("/enroll").into_response(),
                (Err(e), _) => flash_and_redirect(&session, internal(e), "/login").await,
            }
        }
        Err(SignInError::Internal(e)) => {
            flash_and_redirect(
                &session,
                FlashData {
                    email,
                    ..internal(e)
                },
                "/login",
            )
            .await
        }
        Err(error) => {
            flash_and_redirect(
                &session,
                FlashData {
                    error: Some(error.to_string()),
                    email,
                    ..Default::default()
                },
                "/login",
            )
            .await
        }
    }
}

async fn sign_in_code(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<CodeForm>,
) -> Response {
    let Ok(Some(user_id)) = session.get::<String>(PENDING_USER_KEY).await else {
        return Redirect::to("/login").into_response();
    };
    match state
        .accounts
        .sign_in_code(&user_id, &form.code, &ctx, Utc::now())
        .await
    {
        Ok(user) => match start_session(&session, USER_ID_KEY, &user.id).await {
            Ok(()) => Redirect::to("/dashboard").into_response(),
            Err(e) => flash_and_redirect(&session, internal(e), "/login").await,
        },
        Err(SignInError::Internal(e)) => {
            flash_and_redirect(&session, internal(e), "/login/code").await
        }
        Err(error) => {
            flash_and_redirect(
                &session,
                FlashData {
                    error: Some(error.to_string()),
                    ..Default::default()
                },
                "/login/code",
            )
            .await
        }
    }
}

async fn enrol(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<CodeForm>,
) -> Response {
    let Ok(Some(user_id)) = session.get::<String>(PENDING_USER_KEY).await else {
        return Redirect::to("/login").into_response();
    };
    match state
        .accounts
        .confirm_enrolment(&user_id, &form.code, &ctx, Utc::now())
        .await
    {
        Ok(codes) => {
            let done = async {
                start_session(&session, USER_ID_KEY, &user_id).await?;
                session.insert(RECOVERY_CODES_KEY, codes).await?;
                anyhow::Ok(())
            };
            match done.await {
                Ok(()) => Redirect::to("/enroll/recovery").into_response(),
                Err(e) => flash_and_redirect(&session, internal(e), "/login").await,
            }
        }
        Err(SignInError::Internal(e)) => flash_and_redirect(&session, internal(e), "/enroll").await,
        Err(error) => {
            flash_and_redirect(
                &session,
                FlashData {
                    error: Some(error.to_string()),
                    ..Default::default()
                },
                "/enroll",
            )
            .await
        }
    }
}

async fn enrol_done() -> Redirect {
    Redirect::to("/dashboard")
}

async fn sign_out(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
) -> Response {
    if let Ok(Some(user_id)) = session.get::<String>(USER_ID_KEY).await {
        let _ = domain::audit::record(
            state.accounts.db(),
            &ctx,
            Some(&user_id),
            "sign_out",
            Some(&user_id),
            serde_json::json!({}),
        )
        .await;
    }
    if let Err(error) = session.flush().await {
        tracing::error!(%error, "cannot end the session");
    }
    Redirect::to("/").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cross_site_detection() {
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(is_cross_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "keyport.example")
        ])));
        assert!(!is_cross_site(&headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(is_cross_site(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(!is_cross_site(&headers(&[("host", "127.0.0.1:3000")])));
    }

    #[test]
    fn protected_paths() {
        assert!(requires_sign_in("/dashboard"));
        assert!(requires_sign_in("/admin/users"));
        assert!(!requires_sign_in("/administrator"));
        assert!(!requires_sign_in("/login"));
    }
}
