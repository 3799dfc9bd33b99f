//! The browser side of accounts: the session cookie, the middleware that resolves who the visitor
//! is before a handler runs, the data of the account pages (settings, admin users), the sign-up /
//! sign-in / enrolment form handlers, and the same-origin guard on every state-changing request.
//!
//! Forms post here and answer with a redirect (303) to the next page, carrying any error in a
//! one-time "flash" in the session, so every step works before, and without, WASM.
use app::session::{
    AdminUserRow, EnrolmentView, PageData, SessionRow, SessionView, Stage, UserView,
};
use axum::{
    Form, Router,
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
    routing::post,
};
use chrono::Utc;
use domain::{
    accounts::{
        AdminAction, ChangePasswordError, LinkError, Role, SecondStep, SignInError, SignUpError,
        Status, User,
    },
    audit::RequestContext,
    service::{Actor, ServiceError},
    sessions,
};
use serde::Deserialize;
use tower_sessions::{Expiry, Session, SessionManagerLayer, cookie::SameSite};

use crate::{
    AppState, Config,
    client::ClientContext,
    session_store::{DbSessionStore, PENDING_USER_KEY, USER_ID_KEY},
    web::{
        FLASH_KEY, FlashData, GENERIC_ERROR, SECOND_FACTOR_AT_KEY, flash_and_redirect,
        insert_sealed, internal, signed_in_user, take_sealed, utc_minutes,
    },
};

const CREATED_AT_KEY: &str = "created_at";
const RECOVERY_CODES_KEY: &str = "recovery_codes";
const IP_KEY: &str = "ip";
const USER_AGENT_KEY: &str = "user_agent";

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
        // Saving on every page view moves the stored expiry, so the idle timeout holds on the
        // server too (and "last seen" is known). The API's hot path does not use sessions.
        .with_always_save(true)
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

/// Who is visiting: the stage their session has reached and, past the password step, their
/// account. Put in the request's extensions by [`session_context`]; the access extractors of
/// [`crate::pages`] read it.
#[derive(Clone, Debug)]
pub(crate) struct Visitor {
    pub stage: Stage,
    pub user: Option<User>,
}

/// Resolves the visitor (signed in, half-way, or anonymous), enforces the session's absolute
/// lifetime, takes the one-time flash of a page view, and hands both on to the handlers: a
/// [`Visitor`] for access decisions and a [`SessionView`] for the page. Where each page may be
/// seen is declared by its handler's extractor, not here.
pub async fn session_context(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    if !is_page_request(request.uri().path()) {
        return next.run(request).await;
    }
    match resolve(&state, &session, request.method() == Method::GET).await {
        Ok((visitor, view)) => {
            let private = visitor.stage != Stage::Anonymous;
            request.extensions_mut().insert(visitor);
            request.extensions_mut().insert(view);
            let mut response = next.run(request).await;
            if private {
                // Account pages may show secrets (a new key, recovery codes, a 2FA seed): never
                // cache what a session sees.
                response.headers_mut().insert(
                    header::CACHE_CONTROL,
                    header::HeaderValue::from_static("no-store"),
                );
            }
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot resolve the session");
            (StatusCode::INTERNAL_SERVER_ERROR, GENERIC_ERROR).into_response()
        }
    }
}

async fn resolve(
    state: &AppState,
    session: &Session,
    is_get: bool,
) -> anyhow::Result<(Visitor, SessionView)> {
    let now = Utc::now().timestamp();
    let created = session.get::<i64>(CREATED_AT_KEY).await?;
    if created.is_some_and(|created| now - created > state.session_max_seconds) {
        session.flush().await?;
    }
    let mut stage = Stage::Anonymous;
    let mut user = None;
    if let Some(id) = session.get::<String>(USER_ID_KEY).await? {
        match state.accounts.find(&id).await? {
            Some(u) if u.status == Status::Active && (u.totp_enabled || !state.require_2fa) => {
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
    let flash = if is_get {
        session
            .remove::<FlashData>(FLASH_KEY)
            .await?
            .unwrap_or_default()
    } else {
        FlashData::default()
    };
    let view = SessionView {
        page: PageData::None,
        stage: stage.clone(),
        user: user.as_ref().map(|u: &User| UserView {
            id: u.id.clone(),
            email: u.email.clone(),
            is_admin: u.role == Role::Admin,
            totp_enabled: u.totp_enabled,
            email_verified: u.email_verified,
        }),
        flash: flash.into(),
        enrolment: None,
        recovery_codes: None,
        email_enabled: state.accounts.mails(),
    };
    Ok((Visitor { stage, user }, view))
}

/// Session key of the binding of the enrolment this session started.
const ENROLMENT_KEY: &str = "enrolment";

/// Starts an enrolment (a new seed) bound to this session.
async fn begin_enrolment(state: &AppState, session: &Session, user_id: &str) -> anyhow::Result<()> {
    let enrolment = state.accounts.begin_enrolment(user_id).await?;
    session.insert(ENROLMENT_KEY, enrolment.binding).await?;
    Ok(())
}

/// The binding of the enrolment this session started ("" if none).
async fn enrolment_binding(session: &Session) -> String {
    session
        .get::<String>(ENROLMENT_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The authenticator set-up of a user who is enrolling in this session: QR code, setup key and
/// URI (none for a session that did not start the enrolment).
pub(crate) async fn enrolment_view(
    state: &AppState,
    session: &Session,
    user_id: &str,
) -> anyhow::Result<Option<EnrolmentView>> {
    Ok(state
        .accounts
        .pending_enrolment(user_id, &enrolment_binding(session).await)
        .await?
        .map(|e| EnrolmentView {
            qr_svg: qr_svg(&e.otpauth_uri),
            setup_key: e.setup_key,
            otpauth_uri: e.otpauth_uri,
        }))
}

/// Fresh recovery codes, taken out of the session: shown on exactly one page view.
pub(crate) async fn take_recovery_codes(
    state: &AppState,
    session: &Session,
) -> anyhow::Result<Option<Vec<String>>> {
    take_sealed(state, session, RECOVERY_CODES_KEY).await
}

const USERS_PER_PAGE: u64 = 25;

/// `/settings`: the user's sessions (this one first) and how many recovery codes are left.
pub(crate) async fn settings_page(
    state: &AppState,
    session: &Session,
    user_id: &str,
) -> anyhow::Result<PageData> {
    let now = Utc::now();
    let current = session.id().map(|id| sessions::digest(&id.to_string()));
    let mut sessions: Vec<SessionRow> = sessions::list_for_user(&state.db, user_id, now)
        .await?
        .into_iter()
        .map(|s| {
            let data: serde_json::Value = serde_json::from_str(&s.data).unwrap_or_default();
            let text = |key: &str| {
                data.get(key)
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            };
            SessionRow {
                handle: sessions::handle(&s.id),
                user_agent: text(USER_AGENT_KEY)
                    .map(|ua| domain::audit::describe_user_agent(&ua))
                    .unwrap_or_else(|| "Unknown device".into()),
                ip: text(IP_KEY).unwrap_or_else(|| "unknown address".into()),
                last_seen: utc_minutes(
                    s.expires_at - chrono::Duration::minutes(state.session_idle_minutes),
                ),
                current: current.as_deref() == Some(s.id.as_str()),
            }
        })
        .collect();
    sessions.sort_by(|a, b| {
        b.current
            .cmp(&a.current)
            .then(b.last_seen.cmp(&a.last_seen))
    });
    let unused_recovery_codes = state.accounts.unused_recovery_codes(user_id).await?;
    let legacy_recovery_codes = state.accounts.legacy_recovery_codes(user_id).await?;
    let notifications = if state.accounts.mails() {
        Some(
            state
                .notifier
                .prefs(user_id)
                .await?
                .into_iter()
                .map(|(kind, on)| app::session::NotificationPref {
                    id: kind.id.to_owned(),
                    label: kind.label.to_owned(),
                    on,
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(PageData::Settings {
        sessions,
        unused_recovery_codes,
        legacy_recovery_codes,
        notifications,
    })
}

/// The query of `/admin/users`: a search and a page.
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct UsersQuery {
    pub q: String,
    pub page: String,
}

/// `/admin/users`: a page of users, with their plan and whether they are locked out.
pub(crate) async fn admin_users_page(
    state: &AppState,
    session: &Session,
    admin: &User,
    params: &UsersQuery,
) -> anyhow::Result<PageData> {
    let page = params.page.trim().parse::<u64>().unwrap_or(1).max(1);
    let (users, total) = state
        .accounts
        .list_users(params.q.trim(), USERS_PER_PAGE, (page - 1) * USERS_PER_PAGE)
        .await?;
    let now = Utc::now();
    let plans = crate::portal::plan_views(state).await?;
    let mut rows = Vec::with_capacity(users.len());
    for u in users {
        let locked = state.accounts.is_locked(&u.id, now).await?;
        rows.push((u, locked));
    }
    Ok(PageData::AdminUsers {
        users: rows
            .into_iter()
            .map(|(u, locked)| AdminUserRow {
                locked,
                email_unconfirmed: state.accounts.mails() && !u.email_verified,
                plan: u
                    .plan_id
                    .as_ref()
                    .and_then(|id| plans.iter().find(|p| &p.id == id))
                    .map(|p| p.name.clone()),
                plan_id: u.plan_id.clone(),
                id: u.id,
                email: u.email,
                is_admin: u.role == Role::Admin,
                totp_enabled: u.totp_enabled,
                disabled: u.status == Status::Disabled,
                created_at: utc_minutes(u.created_at),
                last_sign_in_at: u.last_sign_in_at.map(utc_minutes),
            })
            .collect(),
        query: params.q.trim().to_owned(),
        page,
        pages: total.div_ceil(USERS_PER_PAGE).max(1),
        total,
        plans,
        needs_step_up: crate::portal::needs_step_up(state, session, admin).await?,
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
        .route("/settings/password", post(change_password))
        .route("/settings/recovery-codes", post(regenerate_recovery_codes))
        .route("/settings/2fa/reset", post(reset_own_totp))
        .route("/settings/2fa/setup", post(set_up_totp))
        .route("/settings/sessions/end", post(end_session))
        .route("/settings/sessions/end-others", post(end_other_sessions))
        .route("/settings/notifications", post(set_notifications))
        .route("/admin/users/action", post(admin_user_action))
        .route("/admin/users/invite", post(invite))
        .route("/invite/{token}", post(accept_invitation))
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    sign_out_others: Option<String>,
}

async fn change_password(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<PasswordForm>,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let flash = match state
        .accounts
        .change_password(
            &user.id,
            &form.current_password,
            &form.new_password,
            &ctx,
            chrono::Utc::now(),
        )
        .await
    {
        Ok(()) => {
            let mut message = "Password changed.";
            if form.sign_out_others.is_some() {
                let current = session.id().map(|id| sessions::digest(&id.to_string()));
                match sessions::delete_for_user(&state.db, &user.id, current.as_deref()).await {
                    Ok(n) if n > 0 => {
                        message = "Password changed. Your other sessions were signed out."
                    }
                    Ok(_) => {}
                    Err(e) => return flash_and_redirect(&session, internal(e), "/settings").await,
                }
            }
            FlashData::notice(message)
        }
        Err(ChangePasswordError::WrongCurrent) => {
            FlashData::field("current_password", ChangePasswordError::WrongCurrent)
        }
        Err(e @ ChangePasswordError::Throttled(_)) => FlashData::field("current_password", e),
        Err(ChangePasswordError::Password(e)) => FlashData::field("new_password", e),
        Err(ChangePasswordError::Internal(e)) => internal(e),
    };
    flash_and_redirect(&session, flash, "/settings").await
}

async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    match state
        .accounts
        .regenerate_recovery_codes(&user.id, &form.code, &ctx, Utc::now())
        .await
    {
        Ok(codes) => match insert_sealed(&state, &session, RECOVERY_CODES_KEY, &codes).await {
            Ok(()) => Redirect::to("/enroll/recovery").into_response(),
            Err(e) => flash_and_redirect(&session, internal(e), "/settings").await,
        },
        Err(SignInError::Internal(e)) => {
            flash_and_redirect(&session, internal(e), "/settings").await
        }
        Err(e) => {
            flash_and_redirect(&session, FlashData::field("recovery_code", e), "/settings").await
        }
    }
}

async fn reset_own_totp(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    match state
        .accounts
        .reset_own_totp(&user.id, &form.code, &ctx, Utc::now())
        .await
    {
        Ok(()) => {
            // Back to the enrolment step, in a fresh session; other sessions end.
            let current = session.id().map(|id| sessions::digest(&id.to_string()));
            if let Err(e) = sessions::delete_for_user(&state.db, &user.id, current.as_deref()).await
            {
                return flash_and_redirect(&session, internal(e), "/settings").await;
            }
            to_enrolment(&state, &session, &user.id, &ctx).await
        }
        Err(SignInError::Internal(e)) => {
            flash_and_redirect(&session, internal(e), "/settings").await
        }
        Err(e) => {
            flash_and_redirect(&session, FlashData::field("reset_code", e), "/settings").await
        }
    }
}

/// Turns 2FA on for an account that has none (where it is optional): on to enrolment.
async fn set_up_totp(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    if user.totp_enabled {
        return Redirect::to("/settings").into_response();
    }
    to_enrolment(&state, &session, &user.id, &ctx).await
}

/// Sends a signed-in user back to the enrolment step, in a fresh session, with a new seed.
async fn to_enrolment(
    state: &AppState,
    session: &Session,
    user_id: &str,
    ctx: &RequestContext,
) -> Response {
    let moved = async {
        start_session(session, PENDING_USER_KEY, user_id, ctx).await?;
        begin_enrolment(state, session, user_id).await?;
        anyhow::Ok(())
    };
    match moved.await {
        Ok(()) => Redirect::to("/enroll").into_response(),
        Err(e) => flash_and_redirect(session, internal(e), "/login").await,
    }
}

/// Which email notifications are on (checkboxes named `on`).
async fn set_notifications(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    body: axum::body::Bytes,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let on = crate::portal::forms::Fields::parse(&body).all("on");
    let flash = match state.notifier.set_prefs(&user.id, &on, &ctx).await {
        Ok(()) => FlashData::notice("Notification settings saved."),
        Err(e) => internal(e),
    };
    flash_and_redirect(&session, flash, "/settings").await
}

#[derive(Deserialize)]
struct EndSessionForm {
    #[serde(default)]
    handle: String,
}

async fn end_session(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<EndSessionForm>,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let flash = match state
        .accounts
        .end_own_session(&user.id, &form.handle, &ctx, Utc::now())
        .await
    {
        Ok(true) => FlashData::notice("Session ended."),
        Ok(false) => FlashData::error("That session had already ended."),
        Err(e) => internal(e),
    };
    flash_and_redirect(&session, flash, "/settings").await
}

async fn end_other_sessions(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let current = session.id().map(|id| sessions::digest(&id.to_string()));
    let flash = match state
        .accounts
        .end_other_sessions(&user.id, current.as_deref(), &ctx)
        .await
    {
        Ok(n) => FlashData::notice(&format!(
            "Signed out {n} other session{}.",
            if n == 1 { "" } else { "s" }
        )),
        Err(e) => internal(e),
    };
    flash_and_redirect(&session, flash, "/settings").await
}

#[derive(Deserialize)]
struct AdminActionForm {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    action: String,
    /// A fresh 2FA code, for the actions that need one.
    #[serde(default)]
    code: String,
}

async fn admin_user_action(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<AdminActionForm>,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let Some(action) = AdminAction::parse(&form.action) else {
        return flash_and_redirect(
            &session,
            FlashData::error("Unknown action."),
            "/admin/users",
        )
        .await;
    };
    if user.role == Role::Admin
        && action.needs_step_up()
        && let Err(flash) =
            crate::portal::step_up_code(&state, &session, &user, &form.code, Vec::new(), &ctx).await
    {
        return flash_and_redirect(&session, flash, "/admin/users").await;
    }
    // Authorized in the domain, on the server, for every admin action (not only by hiding the
    // page): a developer's attempt is refused and audited.
    let actor = Actor::new(user.id.clone(), user.role == Role::Admin, ctx);
    let flash = match state
        .accounts
        .admin_action(&actor, &form.user_id, action)
        .await
    {
        Ok(target) => {
            let what = match action {
                AdminAction::Disable => "disabled; their sessions ended",
                AdminAction::Enable => "enabled",
                AdminAction::ResetTwoFactor => "reset: they set up 2FA again at next sign-in",
                AdminAction::EndSessions => "was signed out everywhere",
                AdminAction::Unlock => "can sign in again",
                AdminAction::Promote => "is now an admin",
                AdminAction::Demote => "is now a developer",
                AdminAction::ResendVerification => "was sent a new confirmation link",
            };
            FlashData::notice(&format!("{} {what}.", target.email))
        }
        Err(ServiceError::Forbidden(_)) => {
            return (StatusCode::NOT_FOUND, "Not found").into_response();
        }
        Err(ServiceError::NotFound) => FlashData::error("That user no longer exists."),
        Err(ServiceError::Conflict(message)) => {
            FlashData::error(format!("{}{}.", message[..1].to_uppercase(), &message[1..]))
        }
        Err(e) => internal(e),
    };
    flash_and_redirect(&session, flash, "/admin/users").await
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

async fn start_session(
    session: &Session,
    key: &str,
    user_id: &str,
    ctx: &RequestContext,
) -> anyhow::Result<()> {
    // A new id whenever privilege changes defeats session fixation.
    session.cycle_id().await?;
    session.remove::<String>(PENDING_USER_KEY).await?;
    session.remove::<String>(USER_ID_KEY).await?;
    session.remove::<String>(ENROLMENT_KEY).await?;
    session.insert(key, user_id).await?;
    if key == USER_ID_KEY {
        session
            .insert(SECOND_FACTOR_AT_KEY, Utc::now().timestamp())
            .await?;
    }
    // Shown in the user's list of sessions.
    session
        .insert(IP_KEY, ctx.ip.clone().unwrap_or_default())
        .await?;
    session
        .insert(USER_AGENT_KEY, ctx.user_agent.clone().unwrap_or_default())
        .await?;
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
    if state.accounts.mails() {
        // The same answer whether or not the address has an account (the mail says which).
        let flash = match state
            .accounts
            .sign_up_with_email(&form.email, &form.password, &ctx)
            .await
        {
            Ok(()) => FlashData {
                notice: Some(format!(
                    "Check your inbox: we sent a message to {} with what to do next.",
                    form.email.trim()
                )),
                email,
                ..Default::default()
            },
            Err(error) => return sign_up_failed(&session, error, email).await,
        };
        return flash_and_redirect(&session, flash, "/login").await;
    }
    match state
        .accounts
        .sign_up(&form.email, &form.password, &ctx)
        .await
    {
        Ok(user) => start_new_account(&state, &session, &user, &ctx).await,
        Err(error) => sign_up_failed(&session, error, email).await,
    }
}

/// A new account's first session: on to the authenticator set-up (or, where 2FA is optional,
/// signed in).
async fn start_new_account(
    state: &AppState,
    session: &Session,
    user: &User,
    ctx: &RequestContext,
) -> Response {
    let started = async {
        if state.require_2fa {
            start_session(session, PENDING_USER_KEY, &user.id, ctx).await?;
            begin_enrolment(state, session, &user.id).await?;
            anyhow::Ok("/enroll")
        } else {
            state
                .accounts
                .sign_in_without_second_factor(&user.id, ctx, Utc::now())
                .await?;
            start_session(session, USER_ID_KEY, &user.id, ctx).await?;
            anyhow::Ok("/dashboard")
        }
    };
    match started.await {
        Ok(next) => Redirect::to(next).into_response(),
        Err(e) => flash_and_redirect(session, internal(e), "/login").await,
    }
}

#[derive(Deserialize)]
struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    plan_id: String,
    #[serde(default)]
    code: String,
}

/// An admin invites someone by email (after a fresh 2FA code: it grants access).
async fn invite(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    Form(form): Form<InviteForm>,
) -> Response {
    let Some(user) = signed_in_user(&state, &session).await else {
        return Redirect::to("/login").into_response();
    };
    let refill = vec![
        ("invite_email".to_owned(), form.email.trim().to_owned()),
        ("invite_role".to_owned(), form.role.clone()),
        ("invite_plan".to_owned(), form.plan_id.clone()),
    ];
    if user.role == Role::Admin
        && let Err(flash) =
            crate::portal::step_up_code(&state, &session, &user, &form.code, refill.clone(), &ctx)
                .await
    {
        return flash_and_redirect(&session, flash, "/admin/users").await;
    }
    let role = if form.role == "admin" {
        Role::Admin
    } else {
        Role::Developer
    };
    let plan = Some(form.plan_id.trim()).filter(|p| !p.is_empty());
    let actor = Actor::new(user.id.clone(), user.role == Role::Admin, ctx);
    let flash = match state.accounts.invite(&actor, &form.email, role, plan).await {
        Ok(()) => FlashData::notice(&format!(
            "Invitation sent to {}. The link works once, for 7 days.",
            form.email.trim()
        )),
        Err(ServiceError::Invalid(errors)) => FlashData {
            error: Some("The invitation was not sent.".into()),
            field_errors: errors
                .0
                .into_iter()
                .map(|(field, message)| (format!("invite_{field}"), message))
                .collect(),
            values: refill,
            ..Default::default()
        },
        Err(ServiceError::Forbidden(_)) => {
            return (StatusCode::NOT_FOUND, "Not found").into_response();
        }
        Err(ServiceError::Conflict(message)) => {
            FlashData::error(format!("{}{}.", message[..1].to_uppercase(), &message[1..]))
        }
        Err(e) => internal(e),
    };
    flash_and_redirect(&session, flash, "/admin/users").await
}

#[derive(Deserialize)]
struct InvitationForm {
    #[serde(default)]
    password: String,
}

/// Creates the invited account, then on to the authenticator set-up like a sign-up.
async fn accept_invitation(
    State(state): State<AppState>,
    session: Session,
    ClientContext(ctx): ClientContext,
    axum::extract::Path(token): axum::extract::Path<String>,
    Form(form): Form<InvitationForm>,
) -> Response {
    let back = format!("/invite/{token}");
    match state
        .accounts
        .accept_invitation(&token, &form.password, &ctx, Utc::now())
        .await
    {
        Ok(user) => start_new_account(&state, &session, &user, &ctx).await,
        Err(LinkError::Password(e)) => {
            flash_and_redirect(&session, FlashData::field("password", e), &back).await
        }
        Err(LinkError::Internal(e)) => flash_and_redirect(&session, internal(e), &back).await,
        Err(e) => flash_and_redirect(&session, FlashData::error(e), &back).await,
    }
}

async fn sign_up_failed(session: &Session, error: SignUpError, email: Option<String>) -> Response {
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
        SignUpError::EmailUnavailable | SignUpError::Throttled(_) => FlashData {
            error: Some(error.to_string()),
            email,
            ..Default::default()
        },
        SignUpError::Internal(e) => FlashData {
            email,
            ..internal(e)
        },
    };
    flash_and_redirect(session, flash, "/signup").await
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
                match step {
                    SecondStep::Code => {
                        start_session(&session, PENDING_USER_KEY, &user.id, &ctx).await?;
                        anyhow::Ok("/login/code")
                    }
                    SecondStep::Enrol if state.require_2fa => {
                        start_session(&session, PENDING_USER_KEY, &user.id, &ctx).await?;
                        begin_enrolment(&state, &session, &user.id).await?;
                        anyhow::Ok("/enroll")
                    }
                    SecondStep::Enrol => {
                        state
                            .accounts
                            .sign_in_without_second_factor(&user.id, &ctx, Utc::now())
                            .await?;
                        start_session(&session, USER_ID_KEY, &user.id, &ctx).await?;
                        anyhow::Ok("/dashboard")
                    }
                }
            };
            match started.await {
                Ok(next) => Redirect::to(next).into_response(),
                Err(e) => flash_and_redirect(&session, internal(e), "/login").await,
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
        Ok(user) => match start_session(&session, USER_ID_KEY, &user.id, &ctx).await {
            Ok(()) => Redirect::to("/dashboard").into_response(),
            Err(e) => flash_and_redirect(&session, internal(e), "/login").await,
        },
        Err(SignInError::Internal(e)) => {
            flash_and_redirect(&session, internal(e), "/login/code").await
        }
        Err(error) => flash_and_redirect(&session, FlashData::error(error), "/login/code").await,
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
    let binding = enrolment_binding(&session).await;
    match state
        .accounts
        .confirm_enrolment(&user_id, &binding, &form.code, &ctx, Utc::now())
        .await
    {
        Ok(codes) => {
            let done = async {
                start_session(&session, USER_ID_KEY, &user_id, &ctx).await?;
                insert_sealed(&state, &session, RECOVERY_CODES_KEY, &codes).await?;
                anyhow::Ok(())
            };
            match done.await {
                Ok(()) => Redirect::to("/enroll/recovery").into_response(),
                Err(e) => flash_and_redirect(&session, internal(e), "/login").await,
            }
        }
        Err(SignInError::Internal(e)) => flash_and_redirect(&session, internal(e), "/enroll").await,
        Err(error) => flash_and_redirect(&session, FlashData::error(error), "/enroll").await,
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
    if let Ok(Some(user_id)) = session.get::<String>(USER_ID_KEY).await
        && let Err(error) = state.accounts.signed_out(&user_id, &ctx).await
    {
        tracing::error!(%error, "cannot record a sign-out");
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
}
