//! The state shared by every request: the database pool, the services and the settings. Behind
//! one `Arc`, so handing it to a request (axum clones the state for each) costs one atomic
//! increment rather than a clone of every service.
use axum::extract::FromRef;
use domain::{
    Database,
    accounts::Accounts,
    keys::Keys,
    usage::{Usage, alerts::Alerts},
    verification::Verifier,
};
use leptos::config::LeptosOptions;

#[derive(Clone, Debug)]
pub struct AppState(std::sync::Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(std::sync::Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Shared {
    pub db: Database,
    pub accounts: Accounts,
    pub keys: Keys,
    pub verifier: Verifier,
    /// Set when shutdown starts: `/readyz` answers 503 from then on.
    pub draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub usage: Usage,
    pub alerts: Alerts,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: std::sync::Arc<Vec<ipnet::IpNet>>,
    /// Whether static files come from the binary (see [`crate::site`]).
    pub embedded_site: bool,
    /// How often usage counters are written to the database.
    pub usage_flush: std::time::Duration,
    /// How long usage is kept at each granularity.
    pub usage_retention: domain::usage::Retention,
    pub leptos: LeptosOptions,
    /// Idle timeout of a session.
    pub session_idle_minutes: i64,
    /// Absolute session lifetime, whatever the activity.
    pub session_max_seconds: i64,
    /// Whether every account must have 2FA before it is signed in.
    pub require_2fa: bool,
    /// Whether self-service sign-up is open.
    pub signup_open: bool,
    /// A key change in the portal asks for a fresh 2FA code when the last one is older.
    pub step_up_seconds: i64,
    /// The API `/v1/auth` checks keys against when a gateway sends no `X-Keyport-Api`; unset,
    /// such requests are refused (a forgotten header must not let every API's keys in).
    pub auth_default_api: Option<std::sync::Arc<str>>,
    /// Whether the verification endpoints need a caller key with the `verify` scope.
    pub verify_requires_token: bool,
    /// The server key: seals what a session must hold for a moment (see `web::insert_sealed`).
    pub secret_key: domain::secret_key::SecretKey,
    /// The outbox, when SMTP is configured (email flows on).
    pub outbox: Option<domain::outbox::Outbox>,
    /// Webhook endpoints and their deliveries.
    pub webhooks: domain::webhooks::Webhooks,
    /// Leak reports, and the partners' keys that may sign them.
    pub leaks: domain::leaks::LeakReports,
    pub leak_keys: std::sync::Arc<domain::leaks::TrustedKeys>,
    /// The switchable email notifications (a job; nothing is queued without the outbox).
    pub notifier: domain::notify::Notifier,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

impl FromRef<AppState> for Database {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}
