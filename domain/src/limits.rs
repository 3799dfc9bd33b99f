//! Rate limits and quotas, and the one rule for which apply to a key: its own, else its
//! owner's plan's, with a burst never above the plan's. The verifier enforces what
//! [`effective`] says and the portal shows the same, so they cannot drift apart.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaPeriod {
    Day,
    Month,
}

impl QuotaPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "day",
            QuotaPeriod::Month => "month",
        }
    }
    pub fn parse(s: &str) -> Option<QuotaPeriod> {
        match s {
            "day" => Some(QuotaPeriod::Day),
            "month" => Some(QuotaPeriod::Month),
            _ => None,
        }
    }
}

/// Requests per period (GCRA), with a burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub period_s: u32,
}

impl RateLimit {
    /// The most requests a limit, or a burst, may allow per period: it is stored in a 32-bit
    /// column, and a larger number would wrap around to "no limit".
    pub const MAX_LIMIT: u32 = 1_000_000_000;

    /// Whether a burst of `burst` requests at this rate refills within a year: the limiters
    /// keep that span in nanoseconds, and a longer one would overflow (wrapping to a wrong limit).
    pub fn burst_fits(&self, burst: u32) -> bool {
        const YEAR_NS: u128 = 365 * 86_400 * 1_000_000_000;
        self.limit > 0
            && (burst as u128) * (self.period_s as u128) * 1_000_000_000 / (self.limit as u128)
                <= YEAR_NS
    }

    /// True when `self` allows no more requests per unit of time than `other`.
    pub fn within(&self, other: &RateLimit) -> bool {
        (self.limit as u64) * (other.period_s as u64)
            <= (other.limit as u64) * (self.period_s as u64)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub period: QuotaPeriod,
}

impl Quota {
    /// The largest quota: stored in a 64-bit signed column, and no traffic comes near it.
    pub const MAX_LIMIT: u64 = 1_000_000_000_000_000;

    /// The largest quota per `period` that never allows more than `self` in any day or month:
    /// the same limit for the same period, a 31st of a monthly quota per day (a month of days
    /// must fit), and a daily quota's limit per month (one day may use it all).
    pub fn largest_within(&self, period: QuotaPeriod) -> u64 {
        match (period, self.period) {
            (QuotaPeriod::Day, QuotaPeriod::Month) => self.limit / 31,
            _ => self.limit,
        }
    }

    /// True when `self` never allows more requests than `other` in any day or month: limits are
    /// compared as rates, so a daily quota under a monthly plan counts 31 times.
    pub fn within(&self, other: &Quota) -> bool {
        self.limit <= other.largest_within(self.period)
    }
}

/// The limits a plan gives keys that have none of their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanLimits {
    pub rate_limit: Option<RateLimit>,
    /// Requests allowed at once above the steady rate.
    pub burst: Option<u32>,
    pub quota: Option<Quota>,
    /// The rate limit and quota are shared by all of a developer's keys (else each key's own).
    pub per_developer: bool,
}

/// A rate limit as enforced: the steady rate, the burst (GCRA's capacity), and whether it came
/// from the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectiveRate {
    pub limit: RateLimit,
    pub burst: u32,
    pub from_plan: bool,
    /// The plan's limit, shared by all of the owner's keys.
    pub shared: bool,
}

/// A quota as enforced, and whether it came from the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectiveQuota {
    pub quota: Quota,
    pub from_plan: bool,
    /// The plan's quota, shared by all of the owner's keys.
    pub shared: bool,
}

/// The limits that apply to a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effective {
    pub rate: Option<EffectiveRate>,
    pub quota: Option<EffectiveQuota>,
    /// The plan's limits when they are shared by all of the owner's keys: they apply on top of
    /// a key's own limits (a key cannot escape its owner's total by setting its own).
    pub pool: Option<PlanLimits>,
}

/// The limits of a key with its own `rate` and `quota` (either may be absent) under `plan`. The
/// plan is a ceiling, applied at verification time: a key's own rate limit applies when it is
/// no faster than the plan's, with a burst of the plan's burst but never more than the key's own
/// limit (and at least 1); otherwise (or without one) the plan's rate and burst (the burst
/// defaults to the limit). A key's own quota applies when it never allows more than the plan's
/// in any day or month; otherwise the plan's. So lowering a plan lowers existing keys at once.
pub fn effective(rate: Option<RateLimit>, quota: Option<Quota>, plan: PlanLimits) -> Effective {
    let own_rate = rate
        .filter(|own| own.limit > 0 && own.period_s > 0)
        .filter(|own| plan.rate_limit.is_none_or(|p| own.within(&p)));
    let rate = match own_rate {
        Some(own) => Some(EffectiveRate {
            limit: own,
            burst: Ord::max(plan.burst.map_or(own.limit, |b| Ord::min(b, own.limit)), 1),
            from_plan: false,
            shared: false,
        }),
        None => plan.rate_limit.map(|r| EffectiveRate {
            limit: r,
            burst: Ord::max(plan.burst.unwrap_or(r.limit), 1),
            from_plan: true,
            shared: plan.per_developer,
        }),
    };
    let own_quota = quota.filter(|own| plan.quota.is_none_or(|p| own.within(&p)));
    let quota = match own_quota {
        Some(own) => Some(EffectiveQuota {
            quota: own,
            from_plan: false,
            shared: false,
        }),
        None => plan.quota.map(|q| EffectiveQuota {
            quota: q,
            from_plan: true,
            shared: plan.per_developer,
        }),
    };
    let pool =
        (plan.per_developer && (plan.rate_limit.is_some() || plan.quota.is_some())).then_some(plan);
    Effective { rate, quota, pool }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FREE: PlanLimits = PlanLimits {
        rate_limit: Some(RateLimit {
            limit: 10,
            period_s: 1,
        }),
        burst: Some(20),
        quota: Some(Quota {
            limit: 10_000,
            period: QuotaPeriod::Day,
        }),
        per_developer: false,
    };

    #[test]
    fn a_keys_own_limits_win_and_its_burst_never_exceeds_its_limit() {
        let own = RateLimit {
            limit: 5,
            period_s: 1,
        };
        let e = effective(Some(own), None, FREE);
        let rate = e.rate.unwrap();
        assert_eq!((rate.limit, rate.burst, rate.from_plan), (own, 5, false));
        let quota = e.quota.unwrap();
        assert_eq!((quota.quota.limit, quota.from_plan), (10_000, true));
        // A key allowed more per period than the plan's burst gets the plan's burst.
        let own = RateLimit {
            limit: 600,
            period_s: 60,
        };
        assert_eq!(effective(Some(own), None, FREE).rate.unwrap().burst, 20);
    }

    #[test]
    fn without_its_own_a_key_has_its_plans_limits_or_none() {
        let e = effective(None, None, FREE);
        assert_eq!(e.rate.unwrap().burst, 20);
        assert!(e.rate.unwrap().from_plan);
        let no_burst = PlanLimits {
            burst: None,
            ..FREE
        };
        assert_eq!(effective(None, None, no_burst).rate.unwrap().burst, 10);
        assert_eq!(
            effective(None, None, PlanLimits::default()),
            Effective::default()
        );
        let own_quota = Quota {
            limit: 3,
            period: QuotaPeriod::Month,
        };
        let e = effective(None, Some(own_quota), FREE);
        assert_eq!(e.quota.unwrap().quota, own_quota);
        assert!(!e.quota.unwrap().from_plan);
    }

    #[test]
    fn quotas_are_compared_as_rates() {
        let per = |limit, period| Quota { limit, period };
        let month = per(10_000, QuotaPeriod::Month);
        // 10,000 a day would be 310,000 a month under a 10,000-a-month plan.
        assert!(!per(10_000, QuotaPeriod::Day).within(&month));
        assert!(per(322, QuotaPeriod::Day).within(&month));
        assert!(!per(323, QuotaPeriod::Day).within(&month));
        let day = per(1_000, QuotaPeriod::Day);
        assert!(per(1_000, QuotaPeriod::Month).within(&day));
        assert!(!per(1_001, QuotaPeriod::Month).within(&day));
        assert!(per(1_000, QuotaPeriod::Day).within(&day));
        assert_eq!(month.largest_within(QuotaPeriod::Day), 322);
    }

    #[test]
    fn the_plan_is_a_ceiling_for_a_keys_own_limits() {
        // A key set faster than its plan (10/s) gets the plan's rate, shown as the plan's.
        let fast = RateLimit {
            limit: 100,
            period_s: 1,
        };
        let rate = effective(Some(fast), None, FREE).rate.unwrap();
        assert_eq!(
            (rate.limit.limit, rate.burst, rate.from_plan),
            (10, 20, true)
        );
        // A daily quota that could reach more than the plan's in a day gets the plan's.
        let big = Quota {
            limit: 50_000,
            period: QuotaPeriod::Day,
        };
        let quota = effective(None, Some(big), FREE).quota.unwrap();
        assert_eq!((quota.quota.limit, quota.from_plan), (10_000, true));
        // A monthly quota above the plan's daily one: one day could use it all.
        let monthly = Quota {
            limit: 10_001,
            period: QuotaPeriod::Month,
        };
        assert!(
            effective(None, Some(monthly), FREE)
                .quota
                .unwrap()
                .from_plan
        );
        // Without a plan limit a key's own limits stand.
        let open = PlanLimits::default();
        assert_eq!(
            effective(Some(fast), Some(big), open).rate.unwrap().limit,
            fast
        );
        assert_eq!(
            effective(Some(fast), Some(big), open).quota.unwrap().quota,
            big
        );
    }

    #[test]
    fn a_plan_shared_by_a_developers_keys_is_a_pool_on_top_of_a_keys_own_limits() {
        let shared = PlanLimits {
            per_developer: true,
            ..FREE
        };
        let inherited = effective(None, None, shared);
        assert!(inherited.rate.unwrap().shared && inherited.quota.unwrap().shared);
        assert_eq!(inherited.pool, Some(shared));
        let own = RateLimit {
            limit: 5,
            period_s: 1,
        };
        let e = effective(Some(own), None, shared);
        let rate = e.rate.unwrap();
        assert!(!rate.shared && !rate.from_plan);
        assert_eq!(
            e.pool,
            Some(shared),
            "the pool applies to keys with their own limits too"
        );
        assert_eq!(effective(None, None, FREE).pool, None);
    }
}
