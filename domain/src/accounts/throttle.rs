//! Slowing down password and code guessing (NIST 800-63B 3.2.2, RFC 4226 7.3).
//!
//! Failures are counted per key: `email:<SHA-256 of the normalised email>` (password step, kept
//! whether or not an account has that address, so a real and an unknown address answer alike),
//! `totp:<user>` (second step, its own counter) and `ip:<address>` (IPv6 clients grouped by /64).
//! After a few free failures each further one doubles the wait (1 s, 2 s, 4 s, ... up to 15 min).
//! At 100 consecutive failures an account key is locked for 24 hours; only time or an admin
//! clears it. A key whose last failure is older than its policy's window (1 hour for addresses,
//! 24 hours for accounts) and that is not blocked starts again from zero.
//!
//! An attempt is *reserved* before it is evaluated: one conditional UPDATE (compare-and-swap on
//! the failure count) counts it as a failure and sets the next allowed time, so a burst of
//! concurrent guesses cannot slip in before the delay is written. A success clears or gives the
//! attempt back.
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, QueryFilter, sea_query::Expr,
    sea_query::OnConflict,
};
use sha2::{Digest, Sha256};

use crate::{Database, DomainError, entities::auth_throttle};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Failures allowed before any delay.
    pub free_failures: i32,
    /// The first delay; each further failure doubles it.
    pub first_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// Consecutive failures that lock the key, if any.
    pub lockout_after: Option<i32>,
    pub lockout: Duration,
    /// Failures are forgotten once the last one is this old (and the key is not blocked).
    pub window: Duration,
}

/// Per account (password step and TOTP step each).
pub const ACCOUNT: Policy = Policy {
    free_failures: 4,
    first_delay: Duration::seconds(1),
    max_delay: Duration::minutes(15),
    lockout_after: Some(100),
    lockout: Duration::hours(24),
    window: Duration::hours(24),
};

/// Per client address: more room (shared offices, NAT), never a hard lockout, and an address
/// that stops failing for an hour is free again.
pub const CLIENT_IP: Policy = Policy {
    free_failures: 20,
    first_delay: Duration::seconds(1),
    max_delay: Duration::minutes(15),
    lockout_after: None,
    lockout: Duration::zero(),
    window: Duration::hours(1),
};

/// Requests that mail someone (sign-up, forgot password, a new verification link), per
/// address: every request counts, so nobody can flood an inbox. Five go through, then each
/// waits longer (1, 2, 4, 8 minutes, then 15). Their own counters, so mailing never slows
/// anyone's sign-in.
pub const MAIL: Policy = Policy {
    free_failures: 4,
    first_delay: Duration::minutes(1),
    max_delay: Duration::minutes(15),
    lockout_after: None,
    lockout: Duration::zero(),
    window: Duration::hours(1),
};

/// Requests that mail someone, per client address: room for an office behind one NAT.
pub const MAIL_CLIENT: Policy = Policy {
    free_failures: 20,
    ..MAIL
};

/// The counters a request that mails `email` is counted on: the address under [`MAIL`]
/// (whether or not an account has it) and, when known, the client's address under
/// [`MAIL_CLIENT`].
pub fn mail_keys(email: &str, ctx: &crate::audit::RequestContext) -> Vec<(String, Policy)> {
    let mut keys = vec![(format!("mail-{}", email_key(email)), MAIL)];
    keys.extend(
        ctx.ip
            .as_deref()
            .map(|ip| (format!("mail-{}", ip_key(ip)), MAIL_CLIENT)),
    );
    keys
}

/// The password-step counter of an email address, whether or not an account has it. Stored as
/// a digest, so the table does not collect the addresses people typed.
pub fn email_key(email: &str) -> String {
    let normalised = email.trim().to_lowercase();
    let digest: String = Sha256::digest(normalised.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("email:{digest}")
}

pub fn totp_key(user_id: &str) -> String {
    format!("totp:{user_id}")
}

/// The counter of a client address. IPv6 clients are grouped by their /64 (one subscriber's
/// network), IPv4-mapped IPv6 addresses count as the IPv4 address.
pub fn ip_key(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let net = ipnet::Ipv6Net::new(v6, 64)
                    .map(|n| n.trunc().to_string())
                    .unwrap_or_else(|_| v6.to_string());
                format!("ip:{net}")
            }
        },
        Ok(v4) => format!("ip:{v4}"),
        Err(_) => format!("ip:{}", ip.trim()),
    }
}

/// The counters one attempt is reserved on: the account's `key` (under [`ACCOUNT`]) and, when
/// known, the client's address (under [`CLIENT_IP`]).
pub fn account_and_client(
    key: String,
    ctx: &crate::audit::RequestContext,
) -> Vec<(String, Policy)> {
    let mut keys = vec![(key, ACCOUNT)];
    keys.extend(ctx.ip.as_deref().map(|ip| (ip_key(ip), CLIENT_IP)));
    keys
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
    let factor = 1i64
        .checked_shl(Ord::min(over - 1, 30) as u32)
        .unwrap_or(i64::MAX);
    Duration::seconds(policy.first_delay.num_seconds().saturating_mul(factor)).min(policy.max_delay)
}

fn blocked_after(policy: &Policy, failures: i32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let delay = delay_after(policy, failures);
    (delay > Duration::zero()).then(|| now + delay)
}

/// Whether a row's failures are old enough to be forgotten.
fn is_stale(row: &auth_throttle::Model, policy: &Policy, now: DateTime<Utc>) -> bool {
    row.last_failure_at + policy.window <= now && row.blocked_until.is_none_or(|until| until <= now)
}

fn wait(row: &auth_throttle::Model, now: DateTime<Utc>) -> Option<Duration> {
    row.blocked_until
        .filter(|until| *until > now)
        .map(|until| until - now)
}

/// Refuses if any of `keys` is still waiting at `now` (no attempt is counted).
pub async fn check(
    db: &Database,
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<Result<(), Throttled>, DomainError> {
    let rows = auth_throttle::Entity::find()
        .filter(auth_throttle::Column::Key.is_in(keys.iter().cloned()))
        .all(db.conn())
        .await?;
    Ok(match rows.iter().filter_map(|row| wait(row, now)).max() {
        Some(retry_after) => Err(Throttled { retry_after }),
        None => Ok(()),
    })
}

/// One reserved attempt on one key.
#[derive(Debug)]
struct Held {
    key: String,
    /// What the reservation wrote, and what was there before (to give the attempt back).
    blocked: Option<DateTime<Utc>>,
    previous_blocked: Option<DateTime<Utc>>,
}

/// Attempts reserved on every key an attempt is counted against. Dropping it leaves them counted
/// as failures, which is what a failed (or abandoned) attempt is.
#[must_use = "a reservation counts as a failure unless it is released or succeeds"]
#[derive(Debug)]
pub struct Reservation {
    held: Vec<Held>,
}

impl Reservation {
    /// The attempt succeeded: the keys in `clear` start again from zero, the others get the
    /// attempt back.
    pub async fn succeeded(self, db: &Database, clear_keys: &[String]) -> Result<(), DomainError> {
        clear(db, clear_keys).await?;
        for held in self.held.iter().filter(|h| !clear_keys.contains(&h.key)) {
            give_back(db, held).await?;
        }
        Ok(())
    }

    /// The attempt was not evaluated (e.g. refused for another reason first): every key gets
    /// it back.
    pub async fn release(self, db: &Database) -> Result<(), DomainError> {
        for held in &self.held {
            give_back(db, held).await?;
        }
        Ok(())
    }
}

/// Reserves one attempt on each of `keys` at `now`, all or nothing: refused (nothing counted)
/// if any key is still waiting.
pub async fn reserve(
    db: &Database,
    keys: &[(String, Policy)],
    now: DateTime<Utc>,
) -> Result<Result<Reservation, Throttled>, DomainError> {
    let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    if let Err(throttled) = check(db, &names, now).await? {
        return Ok(Err(throttled));
    }
    let mut reservation = Reservation { held: Vec::new() };
    for (key, policy) in keys {
        match reserve_one(db, key, policy, now).await? {
            Ok(held) => reservation.held.push(held),
            Err(throttled) => {
                // A concurrent attempt got there first: give back what this one took.
                reservation.release(db).await?;
                return Ok(Err(throttled));
            }
        }
    }
    Ok(Ok(reservation))
}

/// Attempts at a compare-and-swap before giving up (only under extreme contention on one key).
const CAS_ROUNDS: usize = 64;

async fn reserve_one(
    db: &Database,
    key: &str,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Result<Held, Throttled>, DomainError> {
    for _ in 0..CAS_ROUNDS {
        let Some(row) = auth_throttle::Entity::find_by_id(key.to_owned())
            .one(db.conn())
            .await?
        else {
            let blocked = blocked_after(policy, 1, now);
            let inserted = auth_throttle::Entity::insert(auth_throttle::ActiveModel {
                key: Set(key.to_owned()),
                failures: Set(1),
                last_failure_at: Set(now),
                blocked_until: Set(blocked),
            })
            .on_conflict(
                OnConflict::column(auth_throttle::Column::Key)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db.conn())
            .await?;
            if inserted == 1 {
                return Ok(Ok(Held {
                    key: key.to_owned(),
                    blocked,
                    previous_blocked: None,
                }));
            }
            continue;
        };
        let stale = is_stale(&row, policy, now);
        if !stale && let Some(retry_after) = wait(&row, now) {
            return Ok(Err(Throttled { retry_after }));
        }
        let next = if stale { 1 } else { row.failures + 1 };
        let blocked = blocked_after(policy, next, now);
        let swapped = auth_throttle::Entity::update_many()
            .col_expr(auth_throttle::Column::Failures, Expr::value(next))
            .col_expr(auth_throttle::Column::LastFailureAt, Expr::value(now))
            .col_expr(auth_throttle::Column::BlockedUntil, Expr::value(blocked))
            .filter(auth_throttle::Column::Key.eq(key))
            .filter(auth_throttle::Column::Failures.eq(row.failures))
            .exec(db.conn())
            .await?;
        if swapped.rows_affected == 1 {
            return Ok(Ok(Held {
                key: key.to_owned(),
                blocked,
                previous_blocked: if stale { None } else { row.blocked_until },
            }));
        }
    }
    // Hundreds of attempts racing on one key: refuse this one rather than let it through.
    Ok(Err(Throttled {
        retry_after: Duration::seconds(1),
    }))
}

/// Takes back one reserved attempt (compare-and-swap, like the reservation).
async fn give_back(db: &Database, held: &Held) -> Result<(), DomainError> {
    for _ in 0..CAS_ROUNDS {
        let Some(row) = auth_throttle::Entity::find_by_id(held.key.clone())
            .one(db.conn())
            .await?
        else {
            return Ok(());
        };
        if row.failures <= 0 {
            return Ok(());
        }
        // Restore the previous wait only if nobody has failed since this reservation.
        let blocked = if row.blocked_until == held.blocked {
            held.previous_blocked
        } else {
            row.blocked_until
        };
        let swapped = auth_throttle::Entity::update_many()
            .col_expr(
                auth_throttle::Column::Failures,
                Expr::value(row.failures - 1),
            )
            .col_expr(auth_throttle::Column::BlockedUntil, Expr::value(blocked))
            .filter(auth_throttle::Column::Key.eq(held.key.as_str()))
            .filter(auth_throttle::Column::Failures.eq(row.failures))
            .exec(db.conn())
            .await?;
        if swapped.rows_affected == 1 {
            return Ok(());
        }
    }
    Ok(())
}

/// Counts one failure for `key` whether or not it is waiting, and sets its next allowed time
/// (for tools and tests that need an account in a given state; sign-in reserves instead).
pub async fn record_failure(
    db: &Database,
    key: &str,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
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
                Expr::col((auth_throttle::Entity, auth_throttle::Column::Failures)).add(1),
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
    auth_throttle::Entity::update_many()
        .col_expr(
            auth_throttle::Column::BlockedUntil,
            Expr::value(blocked_after(policy, row.failures, now)),
        )
        .filter(auth_throttle::Column::Key.eq(key))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Clears the counters of `keys` (after a success, or by an admin).
pub async fn clear(db: &Database, keys: &[String]) -> Result<(), DomainError> {
    if keys.is_empty() {
        return Ok(());
    }
    auth_throttle::Entity::delete_many()
        .filter(auth_throttle::Column::Key.is_in(keys.iter().cloned()))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Failures counted for `key` (as stored; a stale count is forgotten at the next attempt).
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
        let wait = |s| Throttled {
            retry_after: Duration::seconds(s),
        };
        assert_eq!(wait(1).minutes(), 1);
        assert_eq!(wait(61).minutes(), 2);
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64() {
        assert_eq!(ip_key("2001:db8:1:2::1"), "ip:2001:db8:1:2::/64");
        assert_eq!(ip_key("2001:db8:1:2:ffff::9"), ip_key("2001:db8:1:2::1"));
        assert_ne!(ip_key("2001:db8:1:3::1"), ip_key("2001:db8:1:2::1"));
        assert_eq!(ip_key("::ffff:192.0.2.1"), "ip:192.0.2.1");
        assert_eq!(ip_key("192.0.2.1"), "ip:192.0.2.1");
    }

    #[test]
    fn email_keys_ignore_case_and_spaces_and_hide_the_address() {
        assert_eq!(email_key(" Ada@Example.com "), email_key("ada@example.com"));
        assert!(!email_key("ada@example.com").contains("ada"));
        assert_ne!(email_key("ada@example.com"), email_key("bob@example.com"));
    }
}
