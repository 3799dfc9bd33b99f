//! Slowing down password and code guessing (NIST 800-63B 3.2.2, RFC 4226 7.3).
//!
//! Failures are counted per key: `pw:<user>` (password step), `totp:<user>` (second step, its own
//! counter) and `ip:<address>`. After a few free failures each further one doubles the wait
//! (1 s, 2 s, 4 s, ... up to 15 min). At 100 consecutive failures an account key is locked for
//! 24 hours; only time or an admin clears it. A success clears the account's counters.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, QueryFilter, sea_query::OnConflict,
};

use crate::{Database, DomainError, entities::auth_throttle};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Failures allowed before any delay.
    pub free_failures: i32,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// Consecutive failures that lock the key, if any.
    pub lockout_after: Option<i32>,
    pub lockout: Duration,
}

/// Per account (password step and TOTP step each).
pub const ACCOUNT: Policy = Policy {
    free_failures: 4,
    max_delay: Duration::minutes(15),
    lockout_after: Some(100),
    lockout: Duration::hours(24),
};

/// Per client address: more room (shared offices, NAT), never a hard lockout.
pub const CLIENT_IP: Policy = Policy {
    free_failures: 20,
    max_delay: Duration::minutes(15),
    lockout_after: None,
    lockout: Duration::zero(),
};

pub fn password_key(user_id: &str) -> String {
    format!("pw:{user_id}")
}
pub fn totp_key(user_id: &str) -> String {
    format!("totp:{user_id}")
}
pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// Refused because of earlier failures; try again after `retry_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole minutes to wait, rounded up, for messages like "try again in N minutes".
    pub fn minutes(&self) -> i64 {
        Ord::max((self.retry_after.num_seconds() + 59) / 60, 1)
    }

    /// "1 minute", "15 minutes".
    pub fn wait_text(&self) -> String {
        match self.minutes() {
            1 => "1 minute".to_owned(),
            n => format!("{n} minutes"),
        }
    }
}

/// Delay after `failures` consecutive failures under `policy`.
pub fn delay_after(policy: &Policy, failures: i32) -> Duration {
    if policy.lockout_after.is_some_and(|limit| failures >= limit) {
        return policy.lockout;
    }
    let over = failures - policy.free_failures;
    if over <= 0 {
        return Duration::zero();
    }
    let seconds = 1i64
        .checked_shl(Ord::min(over - 1, 30) as u32)
        .unwrap_or(i64::MAX);
    Duration::seconds(seconds).min(policy.max_delay)
}

/// Refuses if any of `keys` is still waiting at `now`.
pub async fn check(
    db: &Database,
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<Result<(), Throttled>, DomainError> {
    let rows = auth_throttle::Entity::find()
        .filter(auth_throttle::Column::Key.is_in(keys.iter().cloned()))
        .all(db.conn())
        .await?;
    let wait = rows
        .iter()
        .filter_map(|row| row.blocked_until)
        .filter(|until| *until > now)
        .map(|until| until - now)
        .max();
    Ok(match wait {
        Some(retry_after) => Err(Throttled { retry_after }),
        None => Ok(()),
    })
}

/// Counts one failure for `key` and sets its next allowed time.
pub async fn record_failure(
    db: &Database,
    key: &str,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    // Increment atomically (insert or bump), then read back the count to set the delay.
    auth_throttle::Entity::insert(auth_throttle::ActiveModel {
        key: Set(key.to_owned()),
        failures: Set(1),
        last_failure_at: Set(now),
        blocked_until: Set(None),
    })
    .on_conflict(
        OnConflict::column(auth_throttle::Column::Key)
            .value(
                auth_throttle::Column::Failures,
                sea_orm::sea_query::Expr::col((
                    auth_throttle::Entity,
                    auth_throttle::Column::Failures,
                ))
                .add(1),
            )
            .update_column(auth_throttle::Column::LastFailureAt)
            .to_owned(),
    )
    .exec_without_returning(db.conn())
    .await?;
    let row = auth_throttle::Entity::find_by_id(key.to_owned())
        .one(db.conn())
        .await?
        .ok_or_else(|| DomainError::Internal("throttle row vanished".into()))?;
    let delay = delay_after(policy, row.failures);
    if delay > Duration::zero() {
        auth_throttle::Entity::update(auth_throttle::ActiveModel {
            key: Set(key.to_owned()),
            blocked_until: Set(Some(now + delay)),
            ..Default::default()
        })
        .exec(db.conn())
        .await?;
    }
    Ok(())
}

/// Clears the counters of `keys` (after a success, or by an admin).
pub async fn clear(db: &Database, keys: &[String]) -> Result<(), DomainError> {
    auth_throttle::Entity::delete_many()
        .filter(auth_throttle::Column::Key.is_in(keys.iter().cloned()))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Consecutive failures counted for `key`.
pub async fn failures(db: &Database, key: &str) -> Result<i32, DomainError> {
    Ok(auth_throttle::Entity::find_by_id(key.to_owned())
        .one(db.conn())
        .await?
        .map_or(0, |row| row.failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_a_cap_then_lock() {
        assert_eq!(delay_after(&ACCOUNT, 4), Duration::zero());
        assert_eq!(delay_after(&ACCOUNT, 5), Duration::seconds(1));
        assert_eq!(delay_after(&ACCOUNT, 6), Duration::seconds(2));
        assert_eq!(delay_after(&ACCOUNT, 9), Duration::seconds(16));
        assert_eq!(delay_after(&ACCOUNT, 40), Duration::minutes(15));
        assert_eq!(delay_after(&ACCOUNT, 99), Duration::minutes(15));
        assert_eq!(delay_after(&ACCOUNT, 100), Duration::hours(24));
        assert_eq!(delay_after(&CLIENT_IP, 20), Duration::zero());
        assert_eq!(delay_after(&CLIENT_IP, 1000), Duration::minutes(15));
    }

    #[test]
    fn minutes_round_up() {
        assert_eq!(
            Throttled {
                retry_after: Duration::seconds(1)
            }
            .minutes(),
            1
        );
        assert_eq!(
            Throttled {
                retry_after: Duration::seconds(61)
            }
            .minutes(),
            2
        );
    }
}
