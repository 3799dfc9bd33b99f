//! Every message Keyport mails, as a [`Template`] (what the outbox stores, sealed) rendered to a
//! subject, a plain-text part and an HTML part. Each says what happened, when (UTC), from where
//! when a person caused it, and where to go next; none carries a key, a code or a password.
use serde::{Deserialize, Serialize};

/// Links in messages start with this.
#[derive(Clone, Debug)]
pub struct Site {
    pub public_url: String,
}

/// A time as messages show it: `2026-12-06 21:00 UTC`.
pub fn utc(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Where a request came from, as a message shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// UTC, `YYYY-MM-DD HH:MM UTC`.
    pub at: String,
    pub ip: Option<String>,
    /// A short name for the browser ("Firefox on Linux").
    pub browser: Option<String>,
}

impl Origin {
    pub fn new(at: chrono::DateTime<chrono::Utc>, ctx: &crate::audit::RequestContext) -> Origin {
        Origin {
            at: utc(at),
            ip: ctx.ip.clone().filter(|ip| !ip.is_empty()),
            browser: ctx
                .user_agent
                .as_deref()
                .filter(|ua| !ua.is_empty())
                .map(crate::audit::describe_user_agent),
        }
    }

    fn line(&self) -> String {
        let mut line = format!("When: {}", self.at);
        match (&self.browser, &self.ip) {
            (Some(b), Some(ip)) => line.push_str(&format!("\nFrom: {b}, address {ip}")),
            (Some(b), None) => line.push_str(&format!("\nFrom: {b}")),
            (None, Some(ip)) => line.push_str(&format!("\nFrom: address {ip}")),
            (None, None) => {}
        }
        line
    }
}

/// A key as a notification names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    pub id: String,
    pub name: String,
    /// Its display start (`kp_AbC123`), never more.
    pub start: String,
}

impl KeyRef {
    fn label(&self) -> String {
        format!("\"{}\" ({}…)", self.name, self.start)
    }
}

/// A message to render. Serialized (sealed with the server key) into the outbox; its tokens are
/// single-use links, so `Debug` shows only the kind.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum Template {
    /// A new account: confirm the address.
    VerifyEmail { token: String, origin: Origin },
    /// Someone tried to sign up with an address that already has an account.
    SignUpExisting { origin: Origin },
    /// A password reset was asked for.
    PasswordReset { token: String, origin: Origin },
    /// A password reset was asked for an address that has no account (so the answer, and the
    /// work, are the same as for one that has).
    PasswordResetUnknown { origin: Origin },
    /// The password changed (security event, always sent).
    PasswordChanged { origin: Origin, by_reset: bool },
    /// Two-factor authentication was turned off to enrol again (security event).
    TwoFactorReset { origin: Origin, by_admin: bool },
    /// A recovery code signed someone in (security event).
    RecoveryCodeUsed { origin: Origin, remaining: u64 },
    /// A key expires soon (switchable).
    KeyExpiring {
        key: KeyRef,
        expires_at: String,
        days_left: i64,
        /// When Keyport noticed (UTC).
        #[serde(default)]
        at: String,
    },
    /// A key expired (switchable).
    KeyExpired {
        key: KeyRef,
        expired_at: String,
        #[serde(default)]
        at: String,
    },
    /// An anomaly alert fired on a key (switchable).
    AnomalyAlert {
        key: KeyRef,
        detail: String,
        #[serde(default)]
        at: String,
    },
    /// Someone else revoked or disabled a key (switchable).
    KeyChangedByOther {
        key: KeyRef,
        /// `revoked` or `disabled`.
        action: String,
        by: String,
        origin: Origin,
    },
    /// A key used 80% of its quota, or all of it (switchable, once per period each).
    QuotaWarning {
        key: KeyRef,
        used: u64,
        limit: u64,
        /// "today" or "this month".
        period: String,
        resets_at: String,
        /// The quota is the plan's, shared by all of the developer's keys (`key` is one of them).
        #[serde(default)]
        shared: bool,
        #[serde(default)]
        at: String,
    },
    /// A key kept hitting its rate limit (switchable).
    RateLimitSustained {
        key: KeyRef,
        /// Requests refused with RATE_LIMITED in the window.
        denied: u64,
        /// Minutes of the window in which some were refused.
        minutes: u64,
        window_minutes: u64,
        #[serde(default)]
        at: String,
    },
    /// A sign-in from a browser this account never signed in with before (switchable).
    NewSignIn { origin: Origin },
    /// A key was reported leaked and revoked or disabled (security event, always sent).
    KeyLeaked {
        key: KeyRef,
        detail: String,
        #[serde(default)]
        at: String,
    },
    /// Keyport disabled a webhook endpoint after a day of failed deliveries (always sent: the
    /// owner's integration is broken).
    WebhookDisabled {
        url: String,
        failing_since: String,
        last_error: String,
        #[serde(default)]
        at: String,
    },
    /// An admin invited this address.
    Invitation {
        token: String,
        invited_by: String,
        role: String,
        origin: Origin,
    },
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Template({})", self.kind())
    }
}

/// A message ready for the transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// One message's content before it is laid out as text and HTML.
struct Body {
    subject: String,
    heading: String,
    paragraphs: Vec<String>,
    origin: Option<Origin>,
    action: Option<(String, String)>,
    after: Vec<String>,
}

impl Template {
    /// The kind, as the outbox and the audit log name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Template::VerifyEmail { .. } => "verify_email",
            Template::SignUpExisting { .. } => "sign_up_existing",
            Template::PasswordReset { .. } => "password_reset",
            Template::PasswordResetUnknown { .. } => "password_reset_unknown",
            Template::PasswordChanged { .. } => "password_changed",
            Template::TwoFactorReset { .. } => "two_factor_reset",
            Template::RecoveryCodeUsed { .. } => "recovery_code_used",
            Template::Invitation { .. } => "invitation",
            Template::KeyExpiring { .. } => "key_expiring",
            Template::KeyExpired { .. } => "key_expired",
            Template::AnomalyAlert { .. } => "anomaly_alert",
            Template::KeyChangedByOther { .. } => "key_changed_by_other",
            Template::QuotaWarning { used, limit, .. } if used >= limit => "quota_exceeded",
            Template::QuotaWarning { .. } => "quota_warning",
            Template::RateLimitSustained { .. } => "rate_limit_sustained",
            Template::NewSignIn { .. } => "new_sign_in",
            Template::WebhookDisabled { .. } => "webhook_disabled",
            Template::KeyLeaked { .. } => "key_leaked",
        }
    }

    pub fn render(&self, site: &Site) -> Rendered {
        let url = |path: &str| format!("{}{path}", site.public_url);
        let body = match self {
            Template::VerifyEmail { token, origin } => Body {
                subject: "Confirm your email address for Keyport".into(),
                heading: "Confirm your email address".into(),
                paragraphs: vec![
                    "Someone created a Keyport account with this address. If it was you, \
                     confirm the address to start creating API keys."
                        .into(),
                ],
                origin: Some(origin.clone()),
                action: Some((
                    "Confirm email address".into(),
                    url(&format!("/verify-email/{token}")),
                )),
                after: vec![
                    "The link works once and expires in 24 hours.".into(),
                    "If you did not sign up, ignore this message: the account stays unconfirmed."
                        .into(),
                ],
            },
            Template::SignUpExisting { origin } => Body {
                subject: "Someone tried to sign up with your email address".into(),
                heading: "You already have an account".into(),
                paragraphs: vec![
                    "Someone tried to create a Keyport account with this address, which already \
                     has one. Nothing was changed."
                        .into(),
                    "If it was you, sign in instead, or reset your password if you forgot it."
                        .into(),
                ],
                origin: Some(origin.clone()),
                action: Some(("Sign in".into(), url("/login"))),
                after: vec![format!("Forgot your password? {}", url("/forgot-password"))],
            },
            Template::PasswordReset { token, origin } => Body {
                subject: "Reset your Keyport password".into(),
                heading: "Reset your password".into(),
                paragraphs: vec![
                    "Someone asked to reset the password of the Keyport account with this \
                     address. If it was you, choose a new password:"
                        .into(),
                ],
                origin: Some(origin.clone()),
                action: Some((
                    "Choose a new password".into(),
                    url(&format!("/reset/{token}")),
                )),
                after: vec![
                    "The link works once and expires in 1 hour. Signing in still needs your \
                     authenticator app."
                        .into(),
                    "If you did not ask for this, ignore this message: your password stays as \
                     it is."
                        .into(),
                ],
            },
            Template::PasswordResetUnknown { origin } => Body {
                subject: "Keyport password reset".into(),
                heading: "No account uses this address".into(),
                paragraphs: vec![
                    "Someone asked to reset the password of a Keyport account with this \
                     address, but no account uses it. Perhaps you signed up with another address."
                        .into(),
                ],
                origin: Some(origin.clone()),
                action: Some(("Create an account".into(), url("/signup"))),
                after: vec!["If you did not ask for this, ignore this message.".into()],
            },
            Template::PasswordChanged { origin, by_reset } => Body {
                subject: "Your Keyport password was changed".into(),
                heading: "Your password was changed".into(),
                paragraphs: vec![if *by_reset {
                    "The password of your Keyport account was reset through a link sent to this \
                     address, and every session was signed out."
                        .into()
                } else {
                    "The password of your Keyport account was changed from its settings.".into()
                }],
                origin: Some(origin.clone()),
                action: Some(("Review your account".into(), url("/settings"))),
                after: vec![
                    "If this was not you, reset your password now and tell your administrator."
                        .into(),
                ],
            },
            Template::TwoFactorReset { origin, by_admin } => Body {
                subject: "Two-factor authentication was reset on your Keyport account".into(),
                heading: "Two-factor authentication was reset".into(),
                paragraphs: vec![
                    if *by_admin {
                        "An administrator turned off two-factor authentication on your Keyport \
                         account, so you can set up a new authenticator app. Every session was \
                         signed out."
                            .into()
                    } else {
                        "Two-factor authentication was turned off on your Keyport account from \
                         its settings, to set up a new authenticator app."
                            .into()
                    },
                    "Your old recovery codes no longer work; you get new ones when you set up \
                     the new app."
                        .into(),
                ],
                origin: Some(origin.clone()),
                action: Some(("Sign in".into(), url("/login"))),
                after: vec![
                    "If this was not you, reset your password now and tell your administrator."
                        .into(),
                ],
            },
            Template::RecoveryCodeUsed { origin, remaining } => Body {
                subject: "A recovery code was used to sign in to Keyport".into(),
                heading: "A recovery code was used".into(),
                paragraphs: vec![format!(
                    "Someone signed in to your Keyport account with one of your recovery codes. \
                     {remaining} unused code{} left.",
                    if *remaining == 1 { " is" } else { "s are" }
                )],
                origin: Some(origin.clone()),
                action: Some(("Make new recovery codes".into(), url("/settings"))),
                after: vec![
                    "If this was not you, reset your password and your two-factor \
                     authentication now, and tell your administrator."
                        .into(),
                ],
            },
            Template::Invitation {
                token,
                invited_by,
                role,
                origin,
            } => Body {
                subject: "You are invited to Keyport".into(),
                heading: "You are invited to Keyport".into(),
                paragraphs: vec![format!(
                    "{invited_by} invited you to create {} {role} account on Keyport, the portal \
                     where you get API keys for the APIs you build on.",
                    if role.starts_with(['a', 'e', 'i', 'o', 'u']) {
                        "an"
                    } else {
                        "a"
                    }
                )],
                origin: Some(origin.clone()),
                action: Some((
                    "Create your account".into(),
                    url(&format!("/invite/{token}")),
                )),
                after: vec![
                    "The link works once and expires in 7 days.".into(),
                    "If you were not expecting this, ignore this message.".into(),
                ],
            },
            Template::KeyExpiring {
                key,
                expires_at,
                days_left,
                at,
            } => Body {
                subject: format!(
                    "Your Keyport key \"{}\" expires in {}",
                    key.name,
                    days(*days_left)
                ),
                heading: "A key expires soon".into(),
                paragraphs: vec![format!(
                    "Your key {} expires on {expires_at}. Requests with it will be refused from \
                     then on. Rotate it to get a new secret with a grace period for the old one.",
                    key.label()
                )],
                origin: noticed(at),
                action: Some(("Open the key".into(), url(&format!("/keys/{}", key.id)))),
                after: vec![switchable(site)],
            },
            Template::KeyExpired {
                key,
                expired_at,
                at,
            } => Body {
                subject: format!("Your Keyport key \"{}\" expired", key.name),
                heading: "A key expired".into(),
                paragraphs: vec![format!(
                    "Your key {} expired on {expired_at}; requests with it are refused. Create \
                     a new key if you still need one.",
                    key.label()
                )],
                origin: noticed(at),
                action: Some(("Open the key".into(), url(&format!("/keys/{}", key.id)))),
                after: vec![switchable(site)],
            },
            Template::AnomalyAlert { key, detail, at } => Body {
                subject: format!("Unusual use of your Keyport key \"{}\"", key.name),
                heading: "Unusual use of a key".into(),
                paragraphs: vec![
                    format!("Keyport noticed unusual use of your key {}:", key.label()),
                    detail.clone(),
                    "If the key leaked, revoke it or rotate it now.".into(),
                ],
                origin: noticed(at),
                action: Some(("Review the alert".into(), url("/alerts"))),
                after: vec![switchable(site)],
            },
            Template::KeyChangedByOther {
                key,
                action,
                by,
                origin,
            } => Body {
                subject: format!("Your Keyport key \"{}\" was {action}", key.name),
                heading: format!("A key was {action}"),
                paragraphs: vec![format!(
                    "{by} {action} your key {}. Requests with it are refused.",
                    key.label()
                )],
                origin: Some(origin.clone()),
                action: Some(("Open the key".into(), url(&format!("/keys/{}", key.id)))),
                after: vec![switchable(site)],
            },
            Template::QuotaWarning {
                key,
                used,
                limit,
                period,
                resets_at,
                shared,
                at,
            } => {
                let all = used >= limit;
                let whose = if *shared {
                    "Your Keyport keys".to_owned()
                } else {
                    format!("Your Keyport key \"{}\"", key.name)
                };
                Body {
                    subject: match (all, *shared) {
                        (true, false) => format!("{whose} used all of its quota"),
                        (false, false) => format!("{whose} used 80% of its quota"),
                        (true, true) => format!("{whose} used all of their shared quota"),
                        (false, true) => format!("{whose} used 80% of their shared quota"),
                    },
                    heading: match (all, *shared) {
                        (true, false) => "A key used all of its quota".into(),
                        (false, false) => "A key is close to its quota".into(),
                        (true, true) => "Your keys used all of their quota".into(),
                        (false, true) => "Your keys are close to their quota".into(),
                    },
                    paragraphs: vec![
                        if *shared {
                            format!(
                                "Your keys, which share your plan's quota, used {used} of their \
                                 {limit} requests {period}."
                            )
                        } else {
                            format!(
                                "Your key {} used {used} of its {limit} requests {period}.",
                                key.label()
                            )
                        },
                        if all {
                            format!(
                                "Further requests are refused (QUOTA_EXCEEDED) until the quota \
                                 resets on {resets_at}. An administrator can move you to a larger plan."
                            )
                        } else {
                            format!("The quota resets on {resets_at}.")
                        },
                    ],
                    origin: noticed(at),
                    action: Some(("Open the key".into(), url(&format!("/keys/{}", key.id)))),
                    after: vec![switchable(site)],
                }
            }
            Template::RateLimitSustained {
                key,
                denied,
                minutes,
                window_minutes,
                at,
            } => Body {
                subject: format!(
                    "Your Keyport key \"{}\" keeps hitting its rate limit",
                    key.name
                ),
                heading: "A key keeps hitting its rate limit".into(),
                paragraphs: vec![
                    format!(
                        "{denied} requests with your key {} were refused with RATE_LIMITED in \
                         {minutes} of the last {window_minutes} minutes.",
                        key.label()
                    ),
                    "Slow the client down (back off and retry after the time the answer \
                     gives), or ask an administrator for a plan with a higher limit."
                        .into(),
                ],
                origin: noticed(at),
                action: Some(("Open the key".into(), url(&format!("/keys/{}", key.id)))),
                after: vec![switchable(site)],
            },
            Template::KeyLeaked { key, detail, at } => Body {
                subject: format!("Your Keyport key {} was reported leaked", key.label()),
                heading: "A key was reported leaked".into(),
                paragraphs: vec![
                    detail.clone(),
                    "Anyone who found it can no longer use it. Create a new key for the service \
                     that used this one, and remove the old key from where it was published \
                     (and from that repository's history)."
                        .into(),
                ],
                origin: noticed(at),
                action: Some(("Open the key".into(), url(&format!("/keys/{}", key.id)))),
                after: vec![],
            },
            Template::WebhookDisabled {
                url: endpoint,
                failing_since,
                last_error,
                at,
            } => Body {
                subject: "Keyport disabled one of your webhook endpoints".into(),
                heading: "A webhook endpoint was disabled".into(),
                paragraphs: vec![
                    format!(
                        "Every delivery to {endpoint} failed since {failing_since}, so Keyport \
                         stopped sending to it. The last error: {last_error}."
                    ),
                    "Fix the receiver, then enable the endpoint again: deliveries still within \
                     their retries go out, and \"Redeliver\" sends any other."
                        .into(),
                ],
                origin: noticed(at),
                action: Some(("Open your webhooks".into(), url("/webhooks"))),
                after: vec![],
            },
            Template::NewSignIn { origin } => Body {
                subject: "New sign-in to your Keyport account".into(),
                heading: "A sign-in from a new browser".into(),
                paragraphs: vec![
                    "Your Keyport account was signed in to from a browser it was not signed in \
                     with before."
                        .into(),
                ],
                origin: Some(origin.clone()),
                action: Some(("Review your sessions".into(), url("/settings"))),
                after: vec![
                    "If this was not you, end that session, change your password and tell your \
                     administrator."
                        .into(),
                    switchable(site),
                ],
            },
        };
        body.layout(site)
    }
}

impl Body {
    fn layout(self, site: &Site) -> Rendered {
        let mut text = format!("{}\n\n", self.heading);
        for p in &self.paragraphs {
            text.push_str(p);
            text.push_str("\n\n");
        }
        if let Some((label, link)) = &self.action {
            text.push_str(&format!("{label}: {link}\n\n"));
        }
        if let Some(origin) = &self.origin {
            text.push_str(&origin.line());
            text.push_str("\n\n");
        }
        for p in &self.after {
            text.push_str(p);
            text.push_str("\n\n");
        }
        text.push_str(&format!("-- \nKeyport, {}\n", site.public_url));

        let mut html = String::from(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        );
        html.push_str(&format!("<title>{}</title></head>", escape(&self.subject)));
        html.push_str(
            "<body style=\"margin:0;padding:24px;background:#f1f5f9;font-family:-apple-system,\
             'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#0f172a\">\
             <table role=\"presentation\" width=\"100%\" cellspacing=\"0\" cellpadding=\"0\">\
             <tr><td align=\"center\"><table role=\"presentation\" width=\"100%\" \
             style=\"max-width:560px;background:#ffffff;border-radius:12px;padding:32px\">",
        );
        html.push_str(
            "<tr><td style=\"font-size:14px;font-weight:600;color:#4f46e5;padding-bottom:16px\">\
             Keyport</td></tr>",
        );
        html.push_str(&format!(
            "<tr><td><h1 style=\"font-size:20px;margin:0 0 16px\">{}</h1>",
            escape(&self.heading)
        ));
        for p in &self.paragraphs {
            html.push_str(&paragraph(p));
        }
        if let Some((label, link)) = &self.action {
            html.push_str(&format!(
                "<p style=\"margin:24px 0\"><a href=\"{}\" style=\"display:inline-block;\
                 background:#4f46e5;color:#ffffff;text-decoration:none;font-weight:600;\
                 padding:10px 18px;border-radius:8px\">{}</a></p>\
                 <p style=\"font-size:12px;color:#64748b;word-break:break-all\">Or open {}</p>",
                escape(link),
                escape(label),
                escape(link)
            ));
        }
        if let Some(origin) = &self.origin {
            html.push_str(&format!(
                "<p style=\"font-size:13px;color:#334155;background:#f8fafc;padding:12px;\
                 border-radius:8px\">{}</p>",
                escape(&origin.line()).replace('\n', "<br>")
            ));
        }
        for p in &self.after {
            html.push_str(&paragraph(p));
        }
        html.push_str(&format!(
            "<p style=\"font-size:12px;color:#64748b;margin-top:24px\">Keyport, {}</p>\
             </td></tr></table></td></tr></table></body></html>",
            escape(&site.public_url)
        ));
        Rendered {
            subject: self.subject,
            text,
            html,
        }
    }
}

/// The "When:" line of a notice Keyport raised itself (no browser, no address).
fn noticed(at: &str) -> Option<Origin> {
    (!at.is_empty()).then(|| Origin {
        at: at.to_owned(),
        ..Default::default()
    })
}

fn days(n: i64) -> String {
    match n {
        ..=0 => "less than a day".into(),
        1 => "1 day".into(),
        n => format!("{n} days"),
    }
}

/// The line under every notification that can be switched off.
fn switchable(site: &Site) -> String {
    format!(
        "You get this email because of your notification settings: {}/settings",
        site.public_url
    )
}

fn paragraph(text: &str) -> String {
    format!(
        "<p style=\"font-size:15px;line-height:1.5;margin:0 0 12px\">{}</p>",
        escape(text)
    )
}

/// HTML-escapes text (a browser name or an address typed by someone else ends up here).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            public_url: "https://keys.example.com".into(),
        }
    }

    #[test]
    fn a_reset_message_has_the_link_the_origin_and_no_markup_from_the_user_agent() {
        let t = Template::PasswordReset {
            token: "tok123".into(),
            origin: Origin {
                at: "2026-12-06 20:00 UTC".into(),
                ip: Some("203.0.113.9".into()),
                browser: Some("<script>alert(1)</script>".into()),
            },
        };
        let r = t.render(&site());
        assert_eq!(r.subject, "Reset your Keyport password");
        assert!(r.text.contains("https://keys.example.com/reset/tok123"));
        assert!(r.text.contains("When: 2026-12-06 20:00 UTC"));
        assert!(r.text.contains("address 203.0.113.9"));
        assert!(
            r.html
                .contains("href=\"https://keys.example.com/reset/tok123\"")
        );
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;"));
    }

    #[test]
    fn every_message_says_when_and_has_both_parts() {
        let key = KeyRef {
            id: "key_1".into(),
            name: "ci".into(),
            start: "kp_AbC123".into(),
        };
        let at = "2026-12-06 21:00 UTC".to_owned();
        let origin = Origin {
            at: at.clone(),
            ip: Some("198.51.100.7".into()),
            browser: Some("Firefox on Linux".into()),
        };
        let all = [
            Template::VerifyEmail {
                token: "t".into(),
                origin: origin.clone(),
            },
            Template::SignUpExisting {
                origin: origin.clone(),
            },
            Template::PasswordReset {
                token: "t".into(),
                origin: origin.clone(),
            },
            Template::PasswordResetUnknown {
                origin: origin.clone(),
            },
            Template::PasswordChanged {
                origin: origin.clone(),
                by_reset: false,
            },
            Template::TwoFactorReset {
                origin: origin.clone(),
                by_admin: true,
            },
            Template::RecoveryCodeUsed {
                origin: origin.clone(),
                remaining: 9,
            },
            Template::Invitation {
                token: "t".into(),
                invited_by: "root@example.com".into(),
                role: "developer".into(),
                origin: origin.clone(),
            },
            Template::KeyExpiring {
                key: key.clone(),
                expires_at: at.clone(),
                days_left: 6,
                at: at.clone(),
            },
            Template::KeyExpired {
                key: key.clone(),
                expired_at: at.clone(),
                at: at.clone(),
            },
            Template::AnomalyAlert {
                key: key.clone(),
                detail: "spike".into(),
                at: at.clone(),
            },
            Template::QuotaWarning {
                key: key.clone(),
                used: 80,
                limit: 100,
                period: "today".into(),
                resets_at: at.clone(),
                shared: false,
                at: at.clone(),
            },
            Template::RateLimitSustained {
                key: key.clone(),
                denied: 150,
                minutes: 5,
                window_minutes: 10,
                at: at.clone(),
            },
            Template::KeyChangedByOther {
                key: key.clone(),
                action: "revoked".into(),
                by: "An administrator".into(),
                origin: origin.clone(),
            },
            Template::KeyLeaked {
                key: key.clone(),
                detail: "The key was found in https://github.com/acme/app and reported leaked; Keyport revoked it.".into(),
                at: at.clone(),
            },
            Template::WebhookDisabled {
                url: "https://hooks.example.com/keyport".into(),
                failing_since: at.clone(),
                last_error: "HTTP 503".into(),
                at: at.clone(),
            },
            Template::NewSignIn { origin },
        ];
        for t in all {
            let r = t.render(&site());
            assert!(
                r.text.contains("When: 2026-12-06 21:00 UTC"),
                "{}: {}",
                t.kind(),
                r.text
            );
            assert!(r.text.contains("https://keys.example.com/"), "{}", t.kind());
            assert!(
                r.html.contains("<a href=\"https://keys.example.com/"),
                "{}",
                t.kind()
            );
            assert!(r.html.contains("Keyport"), "{}", t.kind());
            assert!(!r.subject.is_empty());
        }
    }

    #[test]
    fn debug_never_shows_a_token() {
        let t = Template::VerifyEmail {
            token: "secret-token".into(),
            origin: Origin::default(),
        };
        assert_eq!(format!("{t:?}"), "Template(verify_email)");
    }

    #[test]
    fn templates_survive_the_outbox_round_trip() {
        let t = Template::PasswordChanged {
            origin: Origin::default(),
            by_reset: true,
        };
        let json = serde_json::to_vec(&t).unwrap();
        assert_eq!(serde_json::from_slice::<Template>(&json).unwrap(), t);
    }
}
