//! The verification policy as pure functions: which code a request gets from what is known of
//! its key, before any rate limit or quota is spent, and the order in which limits are metered.
//! The verifier supplies the facts from memory; these functions decide.
use chrono::{DateTime, Utc};
use ipnet::IpNet;

use super::outcome::{Code, Request};
use crate::{
    catalog::VersionStatus,
    keys::{
        format::PlainKey,
        status::{KeyStatus, Lifecycle},
    },
};

/// What the policy needs to know of a key.
#[derive(Clone, Copy, Debug)]
pub struct KeyFacts<'a> {
    /// The slug of the API the key belongs to.
    pub api: &'a str,
    pub lifecycle: Lifecycle,
    /// Empty: any address.
    pub ip_allowlist: &'a [IpNet],
    pub scopes: &'a [String],
}

/// `MALFORMED` when the text cannot be a key (shape or checksum): decided before any lookup, so
/// a malformed key costs no memory or database work.
pub fn check_shape(key: &str) -> Option<Code> {
    PlainKey::parse(key).err().map(|_| Code::Malformed)
}

/// The first check a request fails, in the order of [`Code`], up to and including
/// `VERSION_RETIRED`; `None` when it passes them all and only its limits remain
/// (see [`meter`]). `key` is `None` when no key has this hash; `version` is the status of the
/// requested version of the key's API, when the request names a known one.
pub fn decide(
    key: Option<&KeyFacts<'_>>,
    req: &Request<'_>,
    version: Option<VersionStatus>,
    now: DateTime<Utc>,
) -> Option<Code> {
    check_shape(req.key).or_else(|| decide_well_formed(key, req, version, now))
}

/// [`decide`] for a key already known to be well formed: the verifier checks the shape before
/// any lookup and must not pay for it twice on the hot path.
pub fn decide_well_formed(
    key: Option<&KeyFacts<'_>>,
    req: &Request<'_>,
    version: Option<VersionStatus>,
    now: DateTime<Utc>,
) -> Option<Code> {
    let Some(key) = key else {
        return Some(Code::NotFound);
    };
    // A key of another API is, for this API, no key at all.
    if req.api.is_some_and(|a| a != key.api) {
        return Some(Code::NotFound);
    }
    match key.lifecycle.status(now) {
        KeyStatus::Revoked => return Some(Code::Revoked),
        KeyStatus::Disabled => return Some(Code::Disabled),
        KeyStatus::Expired => return Some(Code::Expired),
        KeyStatus::Active | KeyStatus::ExpiringSoon | KeyStatus::Rotating => {}
    }
    if !key.ip_allowlist.is_empty()
        && !req
            .ip
            .is_some_and(|ip| key.ip_allowlist.iter().any(|net| net.contains(&ip)))
    {
        return Some(Code::IpNotAllowed);
    }
    if !req.scopes.iter().all(|s| key.scopes.contains(s)) {
        return Some(Code::InsufficientScope);
    }
    if version == Some(VersionStatus::Retired) {
        return Some(Code::VersionRetired);
    }
    None
}

/// The limits of a request that passed [`decide`]: the rate limit first, then the quota, and a
/// rate-limited request spends no quota. `rate` and `quota` try to take their share and say
/// whether it was there; a key without a limit passes `|| true`.
pub fn meter(rate: impl FnOnce() -> bool, quota: impl FnOnce() -> bool) -> Code {
    if !rate() {
        Code::RateLimited
    } else if !quota() {
        Code::QuotaExceeded
    } else {
        Code::Valid
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::Cell, net::IpAddr};

    use chrono::Duration;

    use super::*;

    fn key_text() -> String {
        PlainKey::generate().expose().to_owned()
    }

    struct Case {
        name: &'static str,
        key: Option<KeyFacts<'static>>,
        api: Option<&'static str>,
        scopes: &'static [&'static str],
        ip: Option<&'static str>,
        version: Option<VersionStatus>,
        want: Option<Code>,
    }

    fn lifecycle() -> Lifecycle {
        Lifecycle {
            revoked: false,
            enabled: true,
            owner_active: true,
            expires_at: None,
            rotating: false,
        }
    }

    fn facts(lifecycle: Lifecycle, allow: &'static [IpNet]) -> Option<KeyFacts<'static>> {
        static SCOPES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        Some(KeyFacts {
            api: "weather",
            lifecycle,
            ip_allowlist: allow,
            scopes: SCOPES.get_or_init(|| vec!["read".into(), "write".into()]),
        })
    }

    fn allowlist() -> &'static [IpNet] {
        static NETS: std::sync::OnceLock<Vec<IpNet>> = std::sync::OnceLock::new();
        NETS.get_or_init(|| vec!["203.0.113.0/24".parse().unwrap()])
    }

    fn run(cases: Vec<Case>, now: DateTime<Utc>) {
        for c in cases {
            let key = key_text();
            let scopes: Vec<String> = c.scopes.iter().map(|s| s.to_string()).collect();
            let req = Request {
                key: &key,
                api: c.api,
                scopes: &scopes,
                ip: c.ip.map(|i| i.parse::<IpAddr>().unwrap()),
                version: None,
                cost: 1,
            };
            assert_eq!(
                decide(c.key.as_ref(), &req, c.version, now),
                c.want,
                "case: {}",
                c.name
            );
        }
    }

    fn case(name: &'static str, key: Option<KeyFacts<'static>>, want: Option<Code>) -> Case {
        Case {
            name,
            key,
            api: Some("weather"),
            scopes: &["read"],
            ip: Some("203.0.113.9"),
            version: Some(VersionStatus::Active),
            want,
        }
    }

    /// One row per code that `decide` gives, then one per ordering rule: when two checks fail,
    /// the earlier code wins.
    #[test]
    fn each_code_and_each_ordering_rule() {
        let now = Utc::now();
        let past = Some(now - Duration::seconds(1));
        let ok = facts(lifecycle(), allowlist());
        let revoked = Lifecycle {
            revoked: true,
            ..lifecycle()
        };
        let disabled = Lifecycle {
            enabled: false,
            ..lifecycle()
        };
        let owner_suspended = Lifecycle {
            owner_active: false,
            ..lifecycle()
        };
        let expired = Lifecycle {
            expires_at: past,
            ..lifecycle()
        };
        let rotating = Lifecycle {
            rotating: true,
            expires_at: Some(now + Duration::hours(1)),
            ..lifecycle()
        };
        run(
            vec![
                // One per code.
                case("valid key: only limits remain", ok, None),
                case(
                    "rotating key in its grace period",
                    facts(rotating, allowlist()),
                    None,
                ),
                case("unknown hash", None, Some(Code::NotFound)),
                Case {
                    api: Some("billing"),
                    ..case("key of another API", ok, Some(Code::NotFound))
                },
                Case {
                    api: None,
                    ..case("no API named: any API", ok, None)
                },
                case("revoked", facts(revoked, allowlist()), Some(Code::Revoked)),
                case(
                    "disabled key",
                    facts(disabled, allowlist()),
                    Some(Code::Disabled),
                ),
                case(
                    "suspended owner",
                    facts(owner_suspended, allowlist()),
                    Some(Code::Disabled),
                ),
                case("expired", facts(expired, allowlist()), Some(Code::Expired)),
                Case {
                    ip: Some("198.51.100.1"),
                    ..case(
                        "address outside the allowlist",
                        ok,
                        Some(Code::IpNotAllowed),
                    )
                },
                Case {
                    ip: None,
                    ..case("no address with an allowlist", ok, Some(Code::IpNotAllowed))
                },
                Case {
                    ip: Some("198.51.100.1"),
                    ..case("no allowlist: any address", facts(lifecycle(), &[]), None)
                },
                Case {
                    scopes: &["read", "admin"],
                    ..case("a scope not granted", ok, Some(Code::InsufficientScope))
                },
                Case {
                    scopes: &[],
                    ..case("no scope asked", ok, None)
                },
                Case {
                    version: Some(VersionStatus::Retired),
                    ..case("retired version", ok, Some(Code::VersionRetired))
                },
                Case {
                    version: Some(VersionStatus::Deprecated),
                    ..case("deprecated version still works", ok, None)
                },
                Case {
                    version: None,
                    ..case("unknown or no version", ok, None)
                },
                // Ordering: the earlier check wins.
                Case {
                    api: Some("billing"),
                    ..case(
                        "another API before revoked",
                        facts(revoked, allowlist()),
                        Some(Code::NotFound),
                    )
                },
                case(
                    "revoked before disabled",
                    facts(
                        Lifecycle {
                            enabled: false,
                            ..revoked
                        },
                        allowlist(),
                    ),
                    Some(Code::Revoked),
                ),
                case(
                    "revoked before a suspended owner",
                    facts(
                        Lifecycle {
                            owner_active: false,
                            ..revoked
                        },
                        allowlist(),
                    ),
                    Some(Code::Revoked),
                ),
                case(
                    "disabled before expired",
                    facts(
                        Lifecycle {
                            expires_at: past,
                            ..disabled
                        },
                        allowlist(),
                    ),
                    Some(Code::Disabled),
                ),
                Case {
                    ip: Some("198.51.100.1"),
                    ..case(
                        "expired before the allowlist",
                        facts(expired, allowlist()),
                        Some(Code::Expired),
                    )
                },
                Case {
                    ip: Some("198.51.100.1"),
                    scopes: &["admin"],
                    ..case("allowlist before scopes", ok, Some(Code::IpNotAllowed))
                },
                Case {
                    scopes: &["admin"],
                    version: Some(VersionStatus::Retired),
                    ..case(
                        "scopes before the version",
                        ok,
                        Some(Code::InsufficientScope),
                    )
                },
            ],
            now,
        );
    }

    #[test]
    fn malformed_comes_first_and_needs_no_key() {
        let now = Utc::now();
        for text in [
            "",
            "kp_short",
            "sk_live_123",
            &key_text()[..key_text().len() - 1],
        ] {
            let req = Request {
                key: text,
                ..Default::default()
            };
            assert_eq!(
                decide(None, &req, None, now),
                Some(Code::Malformed),
                "{text:?}"
            );
        }
        // A well-formed key whose checksum is wrong is malformed too, even if "found".
        let mut bad = key_text();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        let req = Request {
            key: &bad,
            ..Default::default()
        };
        let ok = facts(lifecycle(), &[]);
        assert_eq!(decide(ok.as_ref(), &req, None, now), Some(Code::Malformed));
    }

    #[test]
    fn meter_takes_the_rate_limit_first_and_spends_no_quota_when_limited() {
        let quota_taken = Cell::new(0);
        let take_quota = |fits: bool| {
            let quota_taken = &quota_taken;
            move || {
                quota_taken.set(quota_taken.get() + 1);
                fits
            }
        };
        assert_eq!(meter(|| true, take_quota(true)), Code::Valid);
        assert_eq!(quota_taken.get(), 1);
        assert_eq!(meter(|| true, take_quota(false)), Code::QuotaExceeded);
        assert_eq!(quota_taken.get(), 2);
        assert_eq!(meter(|| false, take_quota(true)), Code::RateLimited);
        assert_eq!(meter(|| false, take_quota(false)), Code::RateLimited);
        assert_eq!(quota_taken.get(), 2, "a rate-limited request spent quota");
    }
}
