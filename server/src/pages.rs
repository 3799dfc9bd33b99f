//! The portal's pages: one GET handler per route. Each declares who may see it with its access
//! extractor ([`Anyone`], [`NotSignedIn`], [`PendingCode`], [`PendingEnrolment`], [`SignedIn`],
//! [`Admin`]), reads its query and path into typed values, loads its data with one call, and
//! returns a [`Page`]; [`render`] then renders the Leptos app with that data. No page data is
//! chosen by matching path strings.
use app::session::{EnrolmentView, PageData, SessionView, Stage};
use axum::{
    Router,
    body::Body,
    extract::{FromRequestParts, Path, Request, State},
    http::{StatusCode, request::Parts},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use domain::{
    accounts::{Role, User},
    id::KeyId,
};
use serde::{Deserialize, de::DeserializeOwned};
use tower_sessions::Session;

use crate::{
    AppState,
    auth::{self, UsersQuery, Visitor},
    portal::{self, AuditQuery, KeysQuery, WebhooksQuery},
    portal_usage,
    web::GENERIC_ERROR,
};

/// Every page route and its handler. [`PATHS`] lists the same paths, and a test checks that
/// every route of the Leptos app is one of them.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(landing))
        .route("/signup", get(sign_up))
        .route("/login", get(login))
        .route("/login/code", get(login_code))
        .route("/forgot-password", get(forgot_password))
        .route("/reset/{token}", get(reset_password))
        .route("/verify-email/{token}", get(verify_email))
        .route("/invite/{token}", get(invitation))
        .route("/enroll", get(enroll))
        .route("/enroll/recovery", get(enroll_recovery))
        .route("/docs", get(docs))
        .route("/dashboard", get(dashboard))
        .route("/settings", get(settings))
        .route("/keys", get(keys))
        .route("/keys/new", get(new_key))
        .route("/keys/{id}", get(key))
        .route("/audit", get(audit))
        .route("/alerts", get(alerts))
        .route("/hygiene", get(hygiene))
        .route("/webhooks", get(webhooks))
        .route("/webhooks/{id}", get(webhook))
        .route("/admin", get(admin_dashboard))
        .route("/admin/users", get(admin_users))
        .route("/admin/apis", get(admin_apis))
        .route("/admin/apis/{slug}", get(admin_api))
        .route("/admin/plans", get(admin_plans))
        .route("/admin/leaks", get(admin_leaks))
}

/// The paths of [`routes`], in axum's syntax.
pub const PATHS: &[&str] = &[
    "/",
    "/signup",
    "/login",
    "/login/code",
    "/forgot-password",
    "/reset/{token}",
    "/verify-email/{token}",
    "/invite/{token}",
    "/enroll",
    "/enroll/recovery",
    "/docs",
    "/dashboard",
    "/settings",
    "/keys",
    "/keys/new",
    "/keys/{id}",
    "/audit",
    "/alerts",
    "/hygiene",
    "/webhooks",
    "/webhooks/{id}",
    "/admin",
    "/admin/users",
    "/admin/apis",
    "/admin/apis/{slug}",
    "/admin/plans",
    "/admin/leaks",
];

// ---- What a handler answers ----

/// A page to render: its data, and for the enrolment pages the set-up or the fresh codes.
#[derive(Clone, Debug, Default)]
pub struct Page {
    data: PageData,
    enrolment: Option<EnrolmentView>,
    recovery_codes: Option<Vec<String>>,
}

impl Page {
    /// A page that needs no data (or, on a page that expects data, shows "not found").
    pub fn plain() -> Page {
        Page::default()
    }
}

impl From<PageData> for Page {
    fn from(data: PageData) -> Page {
        Page {
            data,
            ..Default::default()
        }
    }
}

impl IntoResponse for Page {
    /// An empty answer carrying the page; [`render`] turns it into HTML.
    fn into_response(self) -> Response {
        let mut response = StatusCode::OK.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// The one error type of page handlers: an internal error, logged once here and answered with a
/// generic message (user mistakes never get here: a bad query falls back to defaults, an unknown
/// id renders the page's "not found").
#[derive(Debug)]
pub struct PortalError(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for PortalError {
    fn from(e: E) -> PortalError {
        PortalError(e.into())
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "cannot load a page");
        (StatusCode::INTERNAL_SERVER_ERROR, GENERIC_ERROR).into_response()
    }
}

type PageResult = Result<Page, PortalError>;

/// Renders the Leptos app for a handler's [`Page`]; any other answer (a redirect, an error)
/// passes through. Layered around [`routes`] only.
pub async fn render(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let for_render = parts.clone();
    let response = next.run(Request::from_parts(parts, body)).await;
    let Some(page) = response.extensions().get::<Page>().cloned() else {
        return response;
    };
    let mut request = Request::from_parts(for_render, Body::empty());
    if let Some(view) = request.extensions_mut().get_mut::<SessionView>() {
        view.page = page.data;
        view.enrolment = page.enrolment;
        view.recovery_codes = page.recovery_codes;
    }
    let options = state.leptos.clone();
    // The page's hydration scripts carry this nonce, and its policy allows only them.
    let nonce = crate::security::new_nonce();
    let for_page = nonce.clone();
    let handler = leptos_axum::render_app_to_stream_with_context(
        move || leptos::prelude::provide_context(for_page.clone()),
        move || app::shell(options.clone()),
    );
    let mut response = handler(request).await;
    crate::security::set_page_policy(&mut response, &nonce);
    response
}

// ---- Who may see a page ----

fn visitor(parts: &Parts) -> Visitor {
    parts
        .extensions
        .get::<Visitor>()
        .cloned()
        .unwrap_or(Visitor {
            stage: Stage::Anonymous,
            user: None,
        })
}

/// Where a visitor who may not see a page goes: the step of sign-in they are at.
fn to_their_step(stage: &Stage) -> Redirect {
    Redirect::to(match stage {
        Stage::SignedIn => "/dashboard",
        Stage::NeedsCode => "/login/code",
        Stage::NeedsEnrolment => "/enroll",
        Stage::Anonymous => "/login",
    })
}

/// Any visitor, signed in or not.
pub struct Anyone;

impl FromRequestParts<AppState> for Anyone {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(_: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Anyone)
    }
}

/// Anyone not fully signed in (sign-up and sign-in pages); a signed-in user goes to the
/// dashboard.
pub struct NotSignedIn;

impl FromRequestParts<AppState> for NotSignedIn {
    type Rejection = Redirect;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Redirect> {
        match visitor(parts).stage {
            Stage::SignedIn => Err(Redirect::to("/dashboard")),
            _ => Ok(NotSignedIn),
        }
    }
}

/// A visitor whose password was accepted and who owes an authentication code.
pub struct PendingCode;

impl FromRequestParts<AppState> for PendingCode {
    type Rejection = Redirect;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Redirect> {
        match visitor(parts).stage {
            Stage::NeedsCode => Ok(PendingCode),
            Stage::SignedIn => Err(Redirect::to("/dashboard")),
            _ => Err(Redirect::to("/login")),
        }
    }
}

/// A visitor whose password was accepted and who must set up an authenticator first.
pub struct PendingEnrolment(pub User);

impl FromRequestParts<AppState> for PendingEnrolment {
    type Rejection = Redirect;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Redirect> {
        match visitor(parts) {
            Visitor {
                stage: Stage::NeedsEnrolment,
                user: Some(user),
            } => Ok(PendingEnrolment(user)),
            Visitor {
                stage: Stage::SignedIn,
                ..
            } => Err(Redirect::to("/dashboard")),
            _ => Err(Redirect::to("/login")),
        }
    }
}

/// A fully signed-in user; anyone else goes to their step of sign-in.
pub struct SignedIn(pub User);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Redirect;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Redirect> {
        match visitor(parts) {
            Visitor {
                stage: Stage::SignedIn,
                user: Some(user),
            } => Ok(SignedIn(user)),
            other => Err(to_their_step(&other.stage)),
        }
    }
}

/// A signed-in admin. A signed-in developer gets the page's "not found" (404), never a hint
/// that the page exists; anyone else goes to their step of sign-in.
pub struct Admin(pub User);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let SignedIn(user) = SignedIn::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if user.role == Role::Admin {
            Ok(Admin(user))
        } else {
            tracing::warn!(user_id = %user.id, path = %parts.uri.path(), "non-admin asked for an admin page");
            Err(Page::plain().into_response())
        }
    }
}

/// A query string read leniently into `T`: a value that does not parse is the default, so a
/// mistyped link shows the page rather than an error.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequestParts<AppState> for Params<T> {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(Params(
            serde_urlencoded::from_str(query).unwrap_or_default(),
        ))
    }
}

/// `?range=` of the usage pages (`1h`, `24h`, `7d`, `30d`, `90d`).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RangeQuery {
    pub range: String,
}

/// `?show=all` on the alerts page.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ShowQuery {
    pub show: String,
}

/// `?api=` preselects an API on the new key form.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NewKeyQuery {
    pub api: String,
}

// ---- The pages ----

async fn landing(_: NotSignedIn) -> Page {
    Page::plain()
}

async fn sign_up(_: NotSignedIn) -> Page {
    Page::plain()
}

async fn login(_: NotSignedIn) -> Page {
    Page::plain()
}

async fn forgot_password(_: NotSignedIn) -> Page {
    Page::plain()
}

/// A password-reset link: the form when the link works, else how to get a new one. Opening it
/// changes nothing (mail scanners open links too).
async fn reset_password(
    State(state): State<AppState>,
    _: Anyone,
    Path(token): Path<String>,
) -> PageResult {
    email_link(&state, &token, domain::accounts::RESET_PASSWORD).await
}

/// An address-confirmation link: a button that confirms (opening it changes nothing).
async fn verify_email(
    State(state): State<AppState>,
    _: Anyone,
    Path(token): Path<String>,
) -> PageResult {
    email_link(&state, &token, domain::accounts::VERIFY_EMAIL).await
}

/// An invitation: the sign-up form with the address fixed, when the link works.
async fn invitation(
    State(state): State<AppState>,
    _: NotSignedIn,
    Path(token): Path<String>,
) -> PageResult {
    let invitation = state
        .accounts
        .invitation(&token, chrono::Utc::now())
        .await?;
    Ok(PageData::Invitation {
        valid: invitation.is_some(),
        email: invitation.as_ref().map(|i| i.email.clone()),
        role: invitation
            .map(|i| i.role.as_str().to_owned())
            .unwrap_or_default(),
    }
    .into())
}

async fn email_link(state: &AppState, token: &str, purpose: &str) -> PageResult {
    let link = state
        .accounts
        .link(token, purpose, chrono::Utc::now())
        .await?;
    Ok(PageData::EmailLink {
        valid: link.is_some(),
        email: link.and_then(|l| l.email),
    }
    .into())
}

async fn login_code(_: PendingCode) -> Page {
    Page::plain()
}

async fn enroll(
    State(state): State<AppState>,
    PendingEnrolment(user): PendingEnrolment,
    session: Session,
) -> PageResult {
    Ok(Page {
        enrolment: auth::enrolment_view(&state, &session, &user.id).await?,
        ..Page::plain()
    })
}

async fn enroll_recovery(
    State(state): State<AppState>,
    _: SignedIn,
    session: Session,
) -> PageResult {
    Ok(Page {
        recovery_codes: auth::take_recovery_codes(&state, &session).await?,
        ..Page::plain()
    })
}

async fn docs(_: Anyone) -> Page {
    Page::plain()
}

async fn dashboard(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Params(q): Params<RangeQuery>,
) -> PageResult {
    Ok(portal_usage::dashboard(&state, &user, q.range.trim())
        .await?
        .into())
}

async fn settings(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    session: Session,
) -> PageResult {
    Ok(auth::settings_page(&state, &session, &user.id)
        .await?
        .into())
}

async fn keys(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Params(q): Params<KeysQuery>,
) -> PageResult {
    Ok(portal::keys_page(&state, &user, &q).await?.into())
}

async fn new_key(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    session: Session,
    Params(q): Params<NewKeyQuery>,
) -> PageResult {
    Ok(portal::new_key_page(&state, &session, &user, &q.api)
        .await?
        .into())
}

async fn key(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    session: Session,
    Path(id): Path<String>,
    Params(q): Params<RangeQuery>,
) -> PageResult {
    // Not a key id at all: the page's "not found", without a query.
    let Ok(id) = KeyId::parse(&id) else {
        return Ok(Page::plain());
    };
    Ok(
        portal::key_page(&state, &session, &user, &id, q.range.trim())
            .await?
            .into(),
    )
}

async fn audit(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Params(q): Params<AuditQuery>,
) -> PageResult {
    Ok(portal::audit_page(&state, &user, &q).await?.into())
}

async fn alerts(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Params(q): Params<ShowQuery>,
) -> PageResult {
    Ok(portal_usage::alerts_page(&state, &user, q.show.trim())
        .await?
        .into())
}

async fn webhooks(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    session: Session,
    Params(q): Params<WebhooksQuery>,
) -> PageResult {
    Ok(portal::webhooks_page(&state, &session, &user, &q)
        .await?
        .into())
}

async fn webhook(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    session: Session,
    Path(id): Path<String>,
    Params(q): Params<WebhooksQuery>,
) -> PageResult {
    Ok(portal::webhook_page(&state, &session, &user, &id, &q)
        .await?
        .into())
}

/// `?page=` of the leak reports.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PageQuery {
    pub page: String,
}

async fn admin_leaks(
    State(state): State<AppState>,
    Admin(_): Admin,
    Params(q): Params<PageQuery>,
) -> PageResult {
    const PER_PAGE: u64 = 50;
    let page = q.page.parse::<u64>().unwrap_or(1).clamp(1, 20_000);
    let (reports, total) = state.leaks.list(PER_PAGE, (page - 1) * PER_PAGE).await?;
    Ok(app::session::PageData::AdminLeaks {
        rows: reports
            .into_iter()
            .map(|r| app::session::LeakRow {
                received_at: r.received_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                reporter: r.reporter,
                token_hash: r.token_hash,
                url: r.url,
                source: r.source,
                label: r.label,
                key_id: r.key_id,
                action: r.action,
            })
            .collect(),
        page,
        pages: total.div_ceil(PER_PAGE).max(1),
        total,
    }
    .into())
}

async fn hygiene(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    session: Session,
) -> PageResult {
    Ok(PageData::Hygiene {
        groups: portal_usage::hygiene_groups(&state, &user).await?,
        all_users: user.role == Role::Admin,
        needs_step_up: portal::needs_step_up(&state, &session, &user).await?,
    }
    .into())
}

async fn admin_dashboard(
    State(state): State<AppState>,
    Admin(user): Admin,
    Params(q): Params<RangeQuery>,
) -> PageResult {
    Ok(portal_usage::admin_dashboard(&state, &user, q.range.trim())
        .await?
        .into())
}

async fn admin_users(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Params(q): Params<UsersQuery>,
) -> PageResult {
    Ok(auth::admin_users_page(&state, &session, &admin, &q)
        .await?
        .into())
}

async fn admin_apis(State(state): State<AppState>, Admin(user): Admin) -> PageResult {
    Ok(portal::admin_apis_page(&state, &user).await?.into())
}

async fn admin_api(
    State(state): State<AppState>,
    _: Admin,
    Path(slug): Path<String>,
) -> PageResult {
    Ok(portal::admin_api_page(&state, &slug).await?.into())
}

async fn admin_plans(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
) -> PageResult {
    Ok(portal::admin_plans_page(&state, &session, &admin)
        .await?
        .into())
}
