//! What is asked and answered in a verification: the outcome codes in their order, the request,
//! and the limit states passed back to callers. A leaf: the usage counters, the policy and the
//! verifier all build on it.
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::limits::QuotaPeriod;

/// The outcome of a verification. Checked in this order; the first that applies wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    Malformed,
    NotFound,
    Revoked,
    Disabled,
    Expired,
    IpNotAllowed,
    InsufficientScope,
    VersionRetired,
    RateLimited,
    QuotaExceeded,
    Valid,
}

impl Code {
    pub const ALL: [Code; 11] = [
        Code::Malformed,
        Code::NotFound,
        Code::Revoked,
        Code::Disabled,
        Code::Expired,
        Code::IpNotAllowed,
        Code::InsufficientScope,
        Code::VersionRetired,
        Code::RateLimited,
        Code::QuotaExceeded,
        Code::Valid,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Malformed => "MALFORMED",
            Code::NotFound => "NOT_FOUND",
            Code::Disabled => "DISABLED",
            Code::Revoked => "REVOKED",
            Code::Expired => "EXPIRED",
            Code::IpNotAllowed => "IP_NOT_ALLOWED",
            Code::InsufficientScope => "INSUFFICIENT_SCOPE",
            Code::VersionRetired => "VERSION_RETIRED",
            Code::RateLimited => "RATE_LIMITED",
            Code::QuotaExceeded => "QUOTA_EXCEEDED",
            Code::Valid => "VALID",
        }
    }
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What the caller asks about a key.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    pub key: &'a str,
    /// The key must belong to this API (slug).
    pub api: Option<&'a str>,
    /// All must be granted.
    pub scopes: &'a [String],
    /// The original caller's address, checked against the allowlist.
    pub ip: Option<IpAddr>,
    pub version: Option<&'a str>,
    /// Quota units this request costs (at least 1).
    pub cost: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    pub reset_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaInfo {
    pub limit: u64,
    pub remaining: u64,
    pub period: QuotaPeriod,
    pub reset_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deprecation {
    pub version: String,
    pub sunset_at: Option<DateTime<Utc>>,
}
