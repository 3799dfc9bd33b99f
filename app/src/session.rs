//! What a page knows about the visitor. The server's session middleware resolves it before
//! rendering and puts it in the request's extensions; pages read it synchronously here.

/// The signed-in (or half signed-in) user, without anything secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub is_admin: bool,
    pub totp_enabled: bool,
    /// With email on: whether the address is confirmed (keys need it).
    pub email_verified: bool,
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
    /// Values to refill a form with after an error, by field name.
    pub values: Vec<(String, String)>,
}

impl Flash {
    pub fn field_error(&self, field: &str) -> Option<String> {
        self.field_errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, e)| e.clone())
    }
    /// The submitted value of a field, to refill it.
    pub fn value(&self, field: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v.clone())
    }
    /// Every submitted value of a field (checkboxes).
    pub fn values_of(&self, field: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(f, _)| f == field)
            .map(|(_, v)| v.clone())
            .collect()
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
    /// Email is on and the address is not confirmed yet.
    pub email_unconfirmed: bool,
    pub created_at: String,
    pub last_sign_in_at: Option<String>,
    /// The plan's name; `None`: the default plan.
    pub plan: Option<String>,
    pub plan_id: Option<String>,
}

/// A key as lists and the detail page show it (never the hash).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub start: String,
    pub api: String,
    pub scopes: Vec<String>,
    pub owner_email: String,
    pub created_at: String,
    /// "Never" when it does not expire.
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    /// `active`, `expiring_soon`, `expired`, `rotating`, `revoked`, `disabled`.
    pub status: String,
    pub status_label: String,
    /// For a rotating key: the end of its grace period (UTC, minutes).
    pub rotating_until: Option<String>,
}

/// The rest of a key, for its detail page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyDetailView {
    pub row: KeyRow,
    pub owner_id: String,
    pub ip_allowlist: Vec<String>,
    /// e.g. "5 requests per second", or the plan's when the key sets none.
    pub rate_limit: String,
    pub quota: String,
    pub enabled: bool,
    pub revoked_at: Option<String>,
    pub revoke_reason: Option<String>,
    pub replaces: Option<String>,
    pub replaced_by: Option<String>,
    pub range: RangeView,
    pub chart: ChartView,
    /// "7,412 of 10,000 today", when the key has a quota.
    pub quota_use: Option<String>,
    /// "18 of 20 available now", when the key has a rate limit.
    pub rate_use: Option<String>,
    /// What can still be done to the key: `edit`, `toggle`, `rotate`, `revoke` (the domain's
    /// rule; the page shows only these).
    pub actions: Vec<String>,
}

/// One audit log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    /// A link for the target when it is a key the viewer can open.
    pub target_href: Option<String>,
    pub ip: String,
    pub details: String,
}

/// An API and its scopes, for the key form and the catalog pages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiView {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub built_in: bool,
    /// (name, description)
    pub scopes: Vec<(String, String)>,
    /// (name, status, sunset date)
    pub versions: Vec<(String, String, Option<String>)>,
    pub keys: u64,
}

/// A plan as admins edit it and developers read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    pub rate_limit: Option<u32>,
    pub rate_period_s: Option<u32>,
    pub burst: Option<u32>,
    pub quota_limit: Option<u64>,
    pub quota_period: Option<String>,
    pub max_active_keys: Option<u32>,
    pub max_lifetime_days: Option<u32>,
    pub is_default: bool,
    /// The rate limit and quota are shared by all of a developer's keys.
    pub per_developer: bool,
    /// One line for humans: "10 requests/s (burst 20) · 10,000 a day · 10 keys · keys live ≤ 365 days".
    pub summary: String,
}

/// The filters of the keys list, as submitted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyFilterView {
    pub q: String,
    pub api: String,
    pub status: String,
    pub sort: String,
    pub owner: String,
}

/// The filters of the audit log, as submitted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilterView {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub from: String,
    pub to: String,
}

/// One kind of outcome in a chart: its code, its name for people, its total in the range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChartSeries {
    pub code: String,
    pub label: String,
    pub total: u64,
}

/// One bar of a chart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChartBucket {
    /// A short axis label ("14:00", "Nov 28").
    pub label: String,
    /// The bucket's start, RFC 3339 UTC.
    pub start: String,
    /// The counts of each series, in the order of [`ChartView::series`].
    pub values: Vec<u64>,
}

/// A chart of verifications over time, stacked by outcome, ready to draw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChartView {
    /// Series in stacking order, bottom first (VALID first, then each denial kind).
    pub series: Vec<ChartSeries>,
    pub buckets: Vec<ChartBucket>,
    /// "minute", "hour" or "day".
    pub granularity: String,
    pub total: u64,
    /// The same data as CSV.
    pub csv_href: String,
}

/// A key's use in the dashboard's range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyUsageRow {
    pub id: String,
    pub name: String,
    pub start: String,
    pub owner_email: String,
    pub api: String,
    pub total: u64,
    pub denied: u64,
    pub last_used_at: Option<String>,
}

/// A developer or an API in the admin dashboard's rankings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RankedRow {
    pub label: String,
    pub href: String,
    pub total: u64,
    pub denied: u64,
}

/// An anomaly alert as the alerts page shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertRow {
    pub id: String,
    pub rule: String,
    pub rule_label: String,
    pub key_id: String,
    pub key_name: String,
    pub owner_email: String,
    pub detail: String,
    /// The hour it looked at, UTC.
    pub window: String,
    pub acknowledged: bool,
    /// Whether the key can still be disabled (not revoked, enabled).
    pub key_active: bool,
}

/// A webhook endpoint as the webhooks pages show it (never its secret).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Empty: every event.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Receives every user's events (an admin's).
    pub platform: bool,
    /// The owner, on an admin's list of everyone's endpoints.
    pub owner_email: String,
    /// Why Keyport disabled it.
    pub disabled_reason: Option<String>,
    /// UTC, minutes.
    pub failing_since: Option<String>,
    /// While the previous secret still signs, until when (UTC, minutes).
    pub previous_secret_until: Option<String>,
    pub created_at: String,
}

/// One delivery of a webhook and its attempts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: i64,
    pub msg_id: String,
    pub event: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    /// Newest first.
    pub attempts: Vec<AttemptRow>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttemptRow {
    pub attempt: i32,
    /// UTC, seconds.
    pub at: String,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

/// A reported token as the leak reports page lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeakRow {
    /// UTC, seconds.
    pub received_at: String,
    pub reporter: String,
    pub token_hash: String,
    pub url: String,
    pub source: String,
    pub label: String,
    pub key_id: Option<String>,
    pub action: String,
}

/// A key in a hygiene list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HygieneRow {
    pub id: String,
    pub name: String,
    pub start: String,
    pub owner_email: String,
    pub api: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// One hygiene list: why these keys are listed and what to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HygieneGroup {
    pub issue: String,
    pub label: String,
    pub advice: String,
    pub rows: Vec<HygieneRow>,
}

/// The range picker: the current preset and the choices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeView {
    pub current: String,
    /// (value, label)
    pub choices: Vec<(String, String)>,
}

/// Data a particular page needs, loaded by the server before it renders.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PageData {
    #[default]
    None,
    /// An invitation's sign-up form.
    Invitation {
        valid: bool,
        email: Option<String>,
        /// `developer` or `admin`.
        role: String,
    },
    /// A page opened from a link in an email (confirm an address, reset a password).
    EmailLink {
        /// The link works (unknown, used and expired links do not).
        valid: bool,
        /// The address it was sent to, when valid.
        email: Option<String>,
    },
    Settings {
        sessions: Vec<SessionRow>,
        unused_recovery_codes: u64,
        /// Of those, codes from before 120-bit codes (the page asks for new ones).
        legacy_recovery_codes: u64,
        /// The email notifications and whether each is on; `None` when no email is sent.
        notifications: Option<Vec<NotificationPref>>,
    },
    AdminUsers {
        users: Vec<AdminUserRow>,
        query: String,
        page: u64,
        pages: u64,
        total: u64,
        plans: Vec<PlanView>,
        /// Role, access and plan changes ask for a fresh 2FA code.
        needs_step_up: bool,
    },
    Keys {
        rows: Vec<KeyRow>,
        filter: KeyFilterView,
        apis: Vec<String>,
        /// Admins see every user's keys, with an owner column.
        all_users: bool,
        page: u64,
        pages: u64,
        total: u64,
    },
    NewKey {
        apis: Vec<ApiView>,
        /// The API chosen in the first step.
        selected: Option<ApiView>,
        plan: PlanView,
        needs_step_up: bool,
        is_admin: bool,
    },
    KeyDetail {
        key: Box<KeyDetailView>,
        /// The plaintext, on the one page view right after creation or rotation.
        plaintext: Option<String>,
        events: Vec<AuditRow>,
        needs_step_up: bool,
    },
    Audit {
        rows: Vec<AuditRow>,
        filter: AuditFilterView,
        all_users: bool,
        /// Link to the next (older) page.
        older: Option<String>,
    },
    AdminApis {
        apis: Vec<ApiView>,
    },
    AdminApi {
        api: ApiView,
    },
    AdminPlans {
        plans: Vec<PlanView>,
        /// Changing a plan or the default asks for a fresh 2FA code.
        needs_step_up: bool,
    },
    Dashboard {
        range: RangeView,
        chart: ChartView,
        keys: Vec<KeyUsageRow>,
        alerts: Vec<AlertRow>,
        /// Keys on the hygiene page.
        attention: u64,
        /// The user's webhook endpoints Keyport disabled after a day of failed deliveries.
        disabled_webhooks: u64,
    },
    Hygiene {
        groups: Vec<HygieneGroup>,
        all_users: bool,
        needs_step_up: bool,
    },
    Alerts {
        rows: Vec<AlertRow>,
        /// Acknowledged ones too.
        show_all: bool,
        all_users: bool,
    },
    Webhooks {
        endpoints: Vec<WebhookRow>,
        /// Every event type an endpoint can ask for.
        event_types: Vec<String>,
        /// Admins may create platform-wide endpoints.
        is_admin: bool,
        /// Admins listing every user's endpoints.
        all_users: bool,
        /// A signing secret just made, shown this once: (endpoint id, secret).
        new_secret: Option<(String, String)>,
    },
    WebhookDetail {
        endpoint: WebhookRow,
        deliveries: Vec<DeliveryRow>,
        page: u64,
        pages: u64,
        total: u64,
        event_types: Vec<String>,
        /// A signing secret just made, shown this once.
        new_secret: Option<String>,
        /// Whether the viewer owns it (an admin may look at anyone's).
        own: bool,
    },
    AdminLeaks {
        rows: Vec<LeakRow>,
        page: u64,
        pages: u64,
        total: u64,
    },
    AdminDashboard {
        range: RangeView,
        chart: ChartView,
        active_keys: u64,
        active_developers: u64,
        new_signups: u64,
        top_keys: Vec<KeyUsageRow>,
        top_developers: Vec<RankedRow>,
        apis: Vec<RankedRow>,
        /// The email outbox, when this Keyport sends email.
        outbox: Option<OutboxView>,
    },
}

/// One kind of email notification on the settings page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationPref {
    pub id: String,
    pub label: String,
    pub on: bool,
}

/// The outbox as the admin dashboard shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxView {
    pub pending: u64,
    pub failed: u64,
    pub sent: u64,
    /// The latest messages not sent yet.
    pub unsent: Vec<OutboxRow>,
}

/// A message waiting in (or given up by) the outbox; never its content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    /// `pending` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// UTC, minutes.
    pub next_attempt_at: String,
    pub created_at: String,
    pub last_error: Option<String>,
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
    /// Whether this Keyport sends email (sign-up confirms addresses, "Forgot password?").
    pub email_enabled: bool,
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
