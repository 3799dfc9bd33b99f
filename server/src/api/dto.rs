//! The REST API's wire types. Domain types stay in `domain`; these are what clients see.
use chrono::{DateTime, SecondsFormat, Utc};
use domain::{
    catalog::{self, Api, QuotaPeriod, VersionStatus},
    keys::Key,
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// RFC 3339, UTC, whole seconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    #[schema(example = "usr_4k9XbQ2mN8pL1vR7tY3z")]
    pub id: String,
    pub email: String,
    /// `developer` or `admin`.
    pub role: String,
    /// The plan whose limits the caller's keys get (their own, or the default).
    pub plan: super::plans::PlanDto,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RateLimitDto {
    /// Requests allowed per period.
    pub limit: u32,
    /// The period in seconds.
    pub period_s: u32,
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct QuotaDto {
    pub limit: u64,
    /// `day` or `month` (UTC).
    #[schema(example = "day")]
    pub period: String,
}

/// An API key. Never carries the hash; the plaintext only in the answer that created it.
#[derive(Serialize, ToSchema)]
pub struct KeyDto {
    #[schema(example = "key_8Hq2LmZ0aB3cD4eF5gH6")]
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it.
    #[schema(example = "kp_AbC123")]
    pub start: String,
    /// The API's slug.
    pub api: String,
    pub scopes: Vec<String>,
    pub owner_id: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// The minute the key was last verified. Exact to the minute at ordinary load; when more
    /// than 2,000 keys are in use at once it may lag by up to 10 minutes (see the README).
    pub last_used_at: Option<String>,
    pub ip_allowlist: Vec<String>,
    /// The key's own rate limit; `null`: the owner's plan applies.
    pub ratelimit: Option<RateLimitDto>,
    /// The key's own quota; `null`: the owner's plan applies.
    pub quota: Option<QuotaDto>,
    /// `active`, `expiring_soon`, `expired`, `rotating`, `revoked` or `disabled`.
    pub status: String,
    pub enabled: bool,
    /// What can still be done to the key in its status: `edit` (PATCH its fields), `toggle`
    /// (PATCH `enabled`), `rotate`, `revoke`. Anything else answers 409.
    pub allowed_actions: Vec<String>,
}

impl From<&Key> for KeyDto {
    fn from(k: &Key) -> KeyDto {
        KeyDto {
            id: k.id.clone(),
            name: k.name.clone(),
            start: k.start.clone(),
            api: k.api.clone(),
            scopes: k.scopes.clone(),
            owner_id: k.owner_id.clone(),
            created_at: rfc3339(k.created_at),
            expires_at: k.expires_at.map(rfc3339),
            last_used_at: k.last_used_at.map(rfc3339),
            ip_allowlist: k.ip_allowlist.clone(),
            ratelimit: k.rate_limit.map(|r| RateLimitDto {
                limit: r.limit,
                period_s: r.period_s,
            }),
            quota: k.quota.map(|q| QuotaDto {
                limit: q.limit,
                period: q.period.as_str().to_owned(),
            }),
            status: k.status(Utc::now()).as_str().to_owned(),
            enabled: k.enabled,
            allowed_actions: k.status(Utc::now()).allowed_action_names(),
        }
    }
}

/// A key just created or rotated: the key object plus the plaintext, shown this once.
#[derive(Serialize, ToSchema)]
pub struct NewKeyResponse {
    #[serde(flatten)]
    pub key: KeyDto,
    /// The plaintext key. Store it now: Keyport keeps only its SHA-256.
    #[serde(rename = "key")]
    pub plaintext: String,
    /// On rotation: the id of the key this one replaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyDto>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    /// The API's slug.
    pub api: String,
    pub scopes: Vec<String>,
    /// RFC 3339; omit or `null` for a key that never expires (if the plan allows).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    #[serde(default)]
    pub ratelimit: Option<RateLimitDto>,
    #[serde(default)]
    pub quota: Option<QuotaDto>,
    /// Admins only: create the key for this user.
    #[serde(default)]
    pub owner_id: Option<String>,
}

/// Distinguishes an absent field (leave as is) from `null` (clear it).
pub(crate) fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    /// RFC 3339, or `null` for never (if the plan allows).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub ip_allowlist: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the old key keeps working, in seconds (0 to 2592000). Default 0.
    #[serde(default)]
    pub grace_period_s: u32,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RevokeKey {
    pub reason: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct ScopeDto {
    #[schema(example = "orders:read")]
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct VersionDto {
    #[schema(example = "v1")]
    pub name: String,
    /// `active`, `deprecated` or `retired`.
    pub status: String,
    /// RFC 3339; deprecated versions only.
    #[serde(default)]
    pub sunset_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiDto {
    #[schema(example = "api_2bX9kL0mN1pQ2rS3tU4v")]
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub built_in: bool,
    pub scopes: Vec<ScopeDto>,
    pub versions: Vec<VersionOut>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct VersionOut {
    pub name: String,
    pub status: String,
    pub sunset_at: Option<String>,
}

impl From<&Api> for ApiDto {
    fn from(a: &Api) -> ApiDto {
        ApiDto {
            id: a.id.clone(),
            slug: a.slug.clone(),
            name: a.name.clone(),
            description: a.description.clone(),
            built_in: a.built_in,
            scopes: a
                .scopes
                .iter()
                .map(|s| ScopeDto {
                    name: s.name.clone(),
                    description: s.description.clone(),
                })
                .collect(),
            versions: a
                .versions
                .iter()
                .map(|v| VersionOut {
                    name: v.name.clone(),
                    status: v.status.as_str().to_owned(),
                    sunset_at: v.sunset_at.map(rfc3339),
                })
                .collect(),
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiList {
    pub apis: Vec<ApiDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApi {
    #[schema(example = "orders")]
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub scopes: Vec<ScopeDto>,
    #[serde(default)]
    pub versions: Vec<VersionDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApi {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Replaces the list of scopes.
    pub scopes: Option<Vec<ScopeDto>>,
    /// Replaces the list of versions.
    pub versions: Option<Vec<VersionDto>>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventDto {
    pub id: String,
    pub at: String,
    pub actor_id: Option<String>,
    #[schema(example = "key.revoke")]
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub events: Vec<AuditEventDto>,
    pub next_cursor: Option<String>,
}

pub fn scopes_in(list: Vec<ScopeDto>) -> Vec<catalog::Scope> {
    list.into_iter()
        .map(|s| catalog::Scope {
            name: s.name.trim().to_owned(),
            description: s.description,
        })
        .collect()
}

pub fn versions_in(list: Vec<VersionDto>) -> Result<Vec<catalog::Version>, super::error::ApiError> {
    list.into_iter()
        .map(|v| {
            let status = VersionStatus::parse(&v.status).ok_or_else(|| {
                super::error::ApiError::invalid(
                    "versions",
                    format!(
                        "{}: status must be active, deprecated or retired, not \"{}\"",
                        v.name, v.status
                    ),
                )
            })?;
            Ok(catalog::Version {
                name: v.name.trim().to_owned(),
                status,
                sunset_at: v.sunset_at,
            })
        })
        .collect()
}

pub fn quota_in(q: QuotaDto) -> Result<catalog::Quota, super::error::ApiError> {
    Ok(catalog::Quota {
        limit: q.limit,
        period: QuotaPeriod::parse(&q.period).ok_or_else(|| {
            super::error::ApiError::invalid("quota", "period must be \"day\" or \"month\"")
        })?,
    })
}

/// A message in the outbox: what it is about and how its delivery goes, never its content.
#[derive(Serialize, ToSchema)]
pub struct OutboxMessageDto {
    pub id: i64,
    /// `email`.
    pub channel: String,
    /// What the message is about, e.g. `password_reset`, `verify_email`, `key_expiring`.
    pub kind: String,
    pub recipient: String,
    /// `pending` (waiting for its next attempt), `sent` or `failed` (given up).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

impl From<domain::outbox::Entry> for OutboxMessageDto {
    fn from(e: domain::outbox::Entry) -> OutboxMessageDto {
        OutboxMessageDto {
            id: e.id,
            channel: e.channel,
            kind: e.kind,
            recipient: e.recipient,
            status: e.status,
            attempts: e.attempts,
            next_attempt_at: rfc3339(e.next_attempt_at),
            last_error: e.last_error,
            created_at: rfc3339(e.created_at),
            sent_at: e.sent_at.map(rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OutboxList {
    /// Whether this Keyport sends email (SMTP configured); without it the outbox stays empty.
    pub email_enabled: bool,
    pub pending: u64,
    pub failed: u64,
    pub sent: u64,
    /// Messages matching the status filter.
    pub total: u64,
    /// Newest first.
    pub messages: Vec<OutboxMessageDto>,
}
