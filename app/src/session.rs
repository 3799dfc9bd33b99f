//! What a page knows about the visitor. The server's session middleware resolves it before
//! rendering and puts it in the request's extensions; pages read it synchronously here.

/// The signed-in (or half signed-in) user, without anything secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub is_admin: bool,
    pub totp_enabled: bool,
}

/// How far along sign-in the visitor is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    #[default]
    Anonymous,
    /// Password accepted; an authentication code is next.
    NeedsCode,
    /// Password accepted; an authenticator must be set up first.
    NeedsEnrolment,
    SignedIn,
}

/// An error and the values to refill, carried across a form's redirect (shown once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flash {
    pub error: Option<String>,
    /// Errors that belong to one field, by field name.
    pub field_errors: Vec<(String, String)>,
    pub email: Option<String>,
    /// A success message ("Password changed.").
    pub notice: Option<String>,
}

impl Flash {
    pub fn field_error(&self, field: &str) -> Option<String> {
        self.field_errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, e)| e.clone())
    }
}

/// A pending TOTP enrolment as the enrolment page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrolmentView {
    pub setup_key: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// One of the user's signed-in sessions, as the settings page lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// A non-secret name for the session, used to end it.
    pub handle: String,
    pub user_agent: String,
    pub ip: String,
    /// UTC, `YYYY-MM-DD HH:MM`.
    pub last_seen: String,
    pub current: bool,
}

/// A row of the admin Users page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminUserRow {
    pub id: String,
    pub email: String,
    pub is_admin: bool,
    pub totp_enabled: bool,
    pub disabled: bool,
    /// Sign-in refused for now after repeated failures.
    pub locked: bool,
    pub created_at: String,
    pub last_sign_in_at: Option<String>,
}

/// Data a particular page needs, loaded by the server before it renders.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PageData {
    #[default]
    None,
    Settings {
        sessions: Vec<SessionRow>,
        unused_recovery_codes: u64,
    },
    AdminUsers {
        users: Vec<AdminUserRow>,
        query: String,
        page: u64,
        pages: u64,
        total: u64,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionView {
    pub page: PageData,
    pub stage: Stage,
    pub user: Option<UserView>,
    pub flash: Flash,
    pub enrolment: Option<EnrolmentView>,
    /// Fresh recovery codes, present only on the one page view right after they were made.
    pub recovery_codes: Option<Vec<String>>,
}

/// The current visitor's session view (server side; empty in the browser, where only islands run).
pub fn current() -> SessionView {
    #[cfg(feature = "ssr")]
    {
        use leptos::prelude::use_context;
        if let Some(view) = use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<SessionView>().cloned())
        {
            return view;
        }
    }
    SessionView::default()
}
