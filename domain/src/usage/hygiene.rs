//! Key hygiene: keys that deserve a look even though nothing is wrong yet. Never used (created
//! more than a day ago), unused for 30 days, expiring within 7 days, never expiring, and keys of
//! disabled users. Developers see their own keys, admins everyone's; revoked and expired keys
//! are left out (they no longer work).

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::{
    Database,
    entities::api_key,
    service::{Actor, ServiceError},
};

/// Why a key is listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Issue {
    OwnerDisabled,
    ExpiringSoon,
    Unused,
    NeverUsed,
    NeverExpires,
}

impl Issue {
    pub const ALL: [Issue; 5] = [
        Issue::OwnerDisabled,
        Issue::ExpiringSoon,
        Issue::Unused,
        Issue::NeverUsed,
        Issue::NeverExpires,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Issue::OwnerDisabled => "owner_disabled",
            Issue::ExpiringSoon => "expiring_soon",
            Issue::Unused => "unused_30_days",
            Issue::NeverUsed => "never_used",
            Issue::NeverExpires => "never_expires",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Issue::OwnerDisabled => "Keys of disabled users",
            Issue::ExpiringSoon => "Expiring within 7 days",
            Issue::Unused => "Unused for 30 days",
            Issue::NeverUsed => "Never used",
            Issue::NeverExpires => "Never expire",
        }
    }
    /// What to do about it.
    pub fn advice(self) -> &'static str {
        match self {
            Issue::OwnerDisabled => {
                "Their owner can no longer sign in and the keys fail verification; revoke them if the account will not come back."
            }
            Issue::ExpiringSoon => "Rotate these before they stop working, or let them lapse.",
            Issue::Unused => {
                "Keys nobody uses are risk without benefit: revoke the ones you no longer need."
            }
            Issue::NeverUsed => {
                "Created more than a day ago and never verified: revoke them if they were made by mistake."
            }
            Issue::NeverExpires => {
                "Keys that never expire live forever if they leak: prefer keys with an expiry and rotate them."
            }
        }
    }
}

/// A key that needs attention, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flagged {
    pub key_id: String,
    pub name: String,
    pub start: String,
    pub owner_email: String,
    pub api: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub issues: Vec<Issue>,
}

/// The issues of one key at `now` (`owner_disabled`: its owner's account is disabled).
pub fn issues_of(
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    owner_disabled: bool,
    now: DateTime<Utc>,
) -> Vec<Issue> {
    let mut out = Vec::new();
    if owner_disabled {
        out.push(Issue::OwnerDisabled);
    }
    match expires_at {
        None => out.push(Issue::NeverExpires),
        Some(e) if e > now && e <= now + Duration::days(7) => out.push(Issue::ExpiringSoon),
        _ => {}
    }
    match last_used_at {
        None if created_at < now - Duration::days(1) => out.push(Issue::NeverUsed),
        Some(t) if t < now - Duration::days(30) => out.push(Issue::Unused),
        _ => {}
    }
    out.sort();
    out
}

/// Every live key of the actor (admins: of everyone) with at least one issue, oldest first.
pub async fn report(
    db: &Database,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<Flagged>, ServiceError> {
    let mut q = api_key::Entity::find().filter(api_key::Column::RevokedAt.is_null());
    if !actor.is_admin {
        q = q.filter(api_key::Column::OwnerId.eq(actor.user_id.as_str()));
    }
    let rows = q.order_by_asc(api_key::Column::Seq).all(db.conn()).await?;
    let records = crate::keys::record::load(db.conn(), rows).await?;
    Ok(records
        .into_iter()
        .filter(|k| k.row.expires_at.is_none_or(|e| e > now))
        .filter_map(|k| {
            let issues = issues_of(
                k.row.created_at,
                k.row.expires_at,
                k.row.last_used_at,
                !k.owner_active(),
                now,
            );
            (!issues.is_empty()).then(|| Flagged {
                owner_email: k.owner_email(),
                api: k.api.clone(),
                key_id: k.row.id,
                name: k.row.name,
                start: k.row.start,
                created_at: k.row.created_at,
                expires_at: k.row.expires_at,
                last_used_at: k.row.last_used_at,
                issues,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_issue_is_recognised() {
        let now = Utc::now();
        let old = now - Duration::days(90);
        // A healthy key: used yesterday, expires in a month.
        assert!(
            issues_of(
                old,
                Some(now + Duration::days(30)),
                Some(now - Duration::days(1)),
                false,
                now
            )
            .is_empty()
        );
        assert_eq!(
            issues_of(old, None, Some(now), false, now),
            [Issue::NeverExpires]
        );
        assert_eq!(
            issues_of(
                old,
                Some(now + Duration::days(3)),
                Some(now - Duration::days(31)),
                true,
                now
            ),
            [Issue::OwnerDisabled, Issue::ExpiringSoon, Issue::Unused]
        );
        assert_eq!(
            issues_of(old, Some(now + Duration::days(30)), None, false, now),
            [Issue::NeverUsed]
        );
        // A key made an hour ago is not "never used" yet.
        assert!(
            issues_of(
                now - Duration::hours(1),
                Some(now + Duration::days(30)),
                None,
                false,
                now
            )
            .is_empty()
        );
    }
}
