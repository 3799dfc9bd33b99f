//! The server-side request forgery defence of webhooks: an endpoint's URL may not reach this
//! machine, the private network it sits in, or a cloud metadata service. Checked when an
//! endpoint is saved (the URL and what its name resolves to) and again at every delivery, on the
//! very addresses the request connects to (the HTTP client resolves names through
//! [`GuardedResolver`]), so a name that resolves to a public address when saved and to a
//! private one later (DNS rebinding) is refused too.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use ipnet::{IpNet, Ipv6Net};

/// How long resolving an endpoint's host name may take.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Longest URL an endpoint may have.
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL cannot receive webhooks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("enter a URL starting with https:// (or http://)")]
    NotHttp,
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("the URL has no host name")]
    NoHost,
    #[error("the URL may not carry a user name or password; the signature authenticates Keyport")]
    Credentials,
    #[error(
        "{0} is a loopback, private, link-local or otherwise internal address: webhooks only go to public addresses"
    )]
    Internal(IpAddr),
    #[error("{host} resolves to {ip}, an internal address: webhooks only go to public addresses")]
    ResolvesInternal { host: String, ip: IpAddr },
    #[error("{0} does not resolve to any address")]
    Unresolvable(String),
}

/// Networks no webhook may reach (unless `--webhooks-allow-private`), beyond what the standard
/// library classifies: shared address space, benchmarking, reserved, NAT64 and 6to4 prefixes
/// (whose embedded IPv4 address is checked separately), unique-local and site-local IPv6.
fn blocked_nets() -> &'static [IpNet] {
    static NETS: std::sync::OnceLock<Vec<IpNet>> = std::sync::OnceLock::new();
    NETS.get_or_init(|| {
        [
            "0.0.0.0/8",
            "100.64.0.0/10",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "240.0.0.0/4",
            "fc00::/7",
            "fec0::/10",
            "100::/64",
            "2001:db8::/32",
        ]
        .iter()
        .map(|n| n.parse().expect("a valid network"))
        .collect()
    })
}

/// Whether a webhook may not go to `ip`.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || blocked_nets()
            .iter()
            .any(|n| matches!(n, IpNet::V4(n) if n.contains(&ip)))
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    // An IPv4 address in IPv6 clothing is judged as the IPv4 address it carries.
    if let Some(v4) = embedded_v4(ip) {
        return is_internal_v4(v4);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (ip.segments()[0] & 0xffc0) == 0xfe80
        || blocked_nets()
            .iter()
            .any(|n| matches!(n, IpNet::V6(n) if n.contains(&ip)))
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return Some(last);
    }
    let nat64: Ipv6Net = "64:ff9b::/96".parse().expect("a valid network");
    if nat64.contains(&ip) {
        return Some(last);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// Checks the shape of an endpoint URL and, when the host is an address, the address. Returns
/// the URL as normalised (`http://2130706433/` becomes `http://127.0.0.1/`, so what is
/// checked is what is connected to).
pub fn check_url(text: &str, allow_private: bool) -> Result<url::Url, UrlError> {
    let text = text.trim();
    if text.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    let url = url::Url::parse(text).map_err(|_| UrlError::NotHttp)?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(UrlError::NotHttp);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    match url.host() {
        None => return Err(UrlError::NoHost),
        Some(url::Host::Domain("")) => return Err(UrlError::NoHost),
        Some(url::Host::Ipv4(ip)) if !allow_private && is_internal_v4(ip) => {
            return Err(UrlError::Internal(IpAddr::V4(ip)));
        }
        Some(url::Host::Ipv6(ip)) if !allow_private && is_internal_v6(ip) => {
            return Err(UrlError::Internal(IpAddr::V6(ip)));
        }
        Some(_) => {}
    }
    Ok(url)
}

/// Resolves `host` and refuses it when any of its addresses is internal (a name with one public
/// and one private address could be steered to the private one).
pub async fn resolve(host: &str, allow_private: bool) -> Result<Vec<SocketAddr>, UrlError> {
    // A slow resolver may not hold a request (or a delivery) for long.
    let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, 0)));
    let addrs: Vec<SocketAddr> = match lookup.await {
        Ok(Ok(addrs)) => addrs.collect(),
        _ => return Err(UrlError::Unresolvable(host.to_owned())),
    };
    if addrs.is_empty() {
        return Err(UrlError::Unresolvable(host.to_owned()));
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
        return Err(UrlError::ResolvesInternal {
            host: host.to_owned(),
            ip: bad.ip(),
        });
    }
    Ok(addrs)
}

/// Checks a URL when an endpoint is saved: its shape, and what its host name resolves to now.
pub async fn check_endpoint(text: &str, allow_private: bool) -> Result<url::Url, UrlError> {
    let url = check_url(text, allow_private)?;
    if let Some(url::Host::Domain(name)) = url.host() {
        resolve(name, allow_private).await?;
    }
    Ok(url)
}

/// The webhook HTTP client's resolver: every address a delivery connects to passes
/// [`is_internal`] (the client never resolves a name any other way).
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolve(name.as_str(), allow_private)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl GuardedResolver {
    pub fn shared(allow_private: bool) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { allow_private })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_in_every_spelling() {
        for url in [
            "http://127.0.0.1/hook",
            "http://127.1/hook",
            "http://2130706433/hook",
            "http://0x7f000001/hook",
            "http://0.0.0.0/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:c0a8:101::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
        ] {
            let err = check_url(url, false).expect_err(url);
            assert!(matches!(err, UrlError::Internal(_)), "{url}: {err}");
            check_url(url, true).expect("allowed with the flag");
        }
    }

    #[test]
    fn public_addresses_and_names_pass_the_shape_check() {
        for url in [
            "https://hooks.example.com/keyport",
            "http://93.184.215.14/x",
            "https://[2606:4700:4700::1111]/x",
            "https://[::ffff:93.184.215.14]/x",
        ] {
            check_url(url, false).expect(url);
        }
    }

    #[test]
    fn urls_of_the_wrong_shape_are_refused() {
        assert_eq!(
            check_url("ftp://example.com/", false),
            Err(UrlError::NotHttp)
        );
        assert_eq!(check_url("example.com/hook", false), Err(UrlError::NotHttp));
        assert_eq!(
            check_url("file:///etc/passwd", false),
            Err(UrlError::NotHttp)
        );
        assert_eq!(
            check_url("https://user:pw@example.com/", false),
            Err(UrlError::Credentials)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_url(&long, false), Err(UrlError::TooLong));
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let err = check_endpoint("http://localhost:8080/hook", false)
            .await
            .unwrap_err();
        assert!(matches!(err, UrlError::ResolvesInternal { .. }), "{err}");
        check_endpoint("http://localhost:8080/hook", true)
            .await
            .expect("allowed with the flag");
    }
}
