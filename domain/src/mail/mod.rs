//! Email: what Keyport mails (rendered from a template kind and its variables, see
//! [`templates`]) and the SMTP transport that sends it (the `lettre` crate). Messages reach the
//! transport only through the [`crate::outbox`], never straight from a request.
pub mod templates;

use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};

use crate::DomainError;
pub use templates::{Rendered, Template};

/// How long one SMTP conversation may take before the attempt counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// The SMTP transport, the sender, and what links in messages start with.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    site: templates::Site,
}

impl std::fmt::Debug for Mailer {
    // The transport holds the SMTP password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("public_url", &self.site.public_url)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// `smtp_url`: `smtp://host:port` (no TLS), `smtp://host:587?tls=required` (STARTTLS),
    /// `smtps://host:465` (TLS), with `user:password@` for authentication. `from`: `Name
    /// <address>` or an address. `public_url`: where people reach Keyport (links start with it).
    pub fn new(smtp_url: &str, from: &str, public_url: &str) -> Result<Mailer, DomainError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url.trim())
            .map_err(|e| {
                DomainError::Config(format!(
                    "the SMTP URL is not usable ({e}); expected e.g. smtp://user:password@host:587?tls=required or smtps://host:465"
                ))
            })?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from: Mailbox = from.trim().parse().map_err(|e| {
            DomainError::Config(format!(
                "the sender address {from:?} is not usable ({e}); expected e.g. \"Keyport <keys@example.com>\""
            ))
        })?;
        let public_url = public_url.trim().trim_end_matches('/').to_owned();
        if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
            return Err(DomainError::Config(format!(
                "the public URL {public_url:?} must start with https:// or http:// (links in emails start with it)"
            )));
        }
        Ok(Mailer {
            transport,
            from,
            site: templates::Site { public_url },
        })
    }

    /// Where links in messages point.
    pub fn public_url(&self) -> &str {
        &self.site.public_url
    }

    /// Renders `template` and sends it to `to`. The error is what the admin sees on the outbox
    /// page (no secret in it: the SMTP URL's password never appears in lettre's errors).
    pub async fn send(&self, to: &str, template: &Template) -> Result<(), String> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| format!("the recipient {to:?} is not an address ({e})"))?;
        let rendered = template.render(&self.site);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
