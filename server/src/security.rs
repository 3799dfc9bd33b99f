//! The security headers of browser-facing responses (ASVS 3.4): a Content-Security-Policy on
//! every page with a fresh nonce for its hydration scripts (no `'unsafe-inline'` for scripts or
//! styles: the pages carry no inline style attributes), framing refused, the browsing context
//! isolated (`Cross-Origin-Opener-Policy`), powerful features off (`Permissions-Policy`), and
//! `Strict-Transport-Security` when Keyport is served over https.
use axum::{
    http::{HeaderName, HeaderValue, header},
    response::Response,
};
use leptos::nonce::Nonce;

/// A fresh nonce (128 random bits) for one page.
pub fn new_nonce() -> Nonce {
    Nonce::new()
}

/// The policy of a page whose inline scripts carry `nonce`: scripts, styles, images and fetches
/// from Keyport itself only, WebAssembly allowed to compile, no plugins, no `<base>`, forms
/// posting only to Keyport, and no framing.
pub fn page_policy(nonce: &Nonce) -> HeaderValue {
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).expect("a nonce is base64url, so the policy is a valid header")
}

/// The policy of every other response (JSON, redirects, files): nothing loads from it and
/// nothing frames it.
pub const DEFAULT_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Sets the page policy on `response` if it is an HTML page.
pub fn set_page_policy(response: &mut Response, nonce: &Nonce) {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, page_policy(nonce));
    }
}

/// Headers every response gets unless it set its own: (name, value).
pub fn default_headers(https: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_POLICY),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(
                "camera=(), microphone=(), geolocation=(), payment=(), usb=(), \
                 interest-cohort=(), browsing-topics=()",
            ),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ),
        (
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ),
    ];
    if https {
        // One year, as browsers' preload lists expect; only over https (RFC 6797 7.2).
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_policy_allows_only_its_own_nonce_and_no_inline_code() {
        let nonce = Nonce::from_value("abc123_-");
        let policy = page_policy(&nonce);
        let policy = policy.to_str().unwrap();
        assert!(policy.contains("script-src 'self' 'nonce-abc123_-' 'wasm-unsafe-eval';"));
        assert!(!policy.contains("unsafe-inline"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert_ne!(new_nonce().to_string(), new_nonce().to_string());
        assert!(new_nonce().to_string().len() >= 22, "at least 128 bits");
    }

    #[test]
    fn hsts_only_over_https() {
        let has_hsts = |https| {
            default_headers(https)
                .iter()
                .any(|(name, _)| name == header::STRICT_TRANSPORT_SECURITY)
        };
        assert!(has_hsts(true));
        assert!(!has_hsts(false));
    }
}
