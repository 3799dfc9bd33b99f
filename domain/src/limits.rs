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
    /// True when `self` allows no more requests than `other`: the same limit or lower, and a
    /// daily quota under a daily plan (a month of a day's quota would be thirty times as much).
    pub fn within(&self, other: &Quota) -> bool {
        self.limit <= other.limit
            && !(other.period == QuotaPeriod::Day && self.period == QuotaPeriod::Month)
    }
}

/// The limits a plan gives keys that have none of their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanLimits {
    pub rate_limit: Option<RateLimit>,
    /// Requests allowed at once above the steady rate.
    pub burst: Option<u32>,
    pub quota: Option<Quota>,
}

/// A rate limit as enforced: the steady rate, the burst (GCRA's capacity), and whether it came
/// from the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectiveRate {
    pub limit: RateLimit,
    pub burst: u32,
    pub from_plan: bool,
}

/// A quota as enforced, and whether it came from the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectiveQuota {
    pub quota: Quota,
    pub from_plan: bool,
}

/// The limits that apply to a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effective {
    pub rate: Option<EffectiveRate>,
    pub quota: Option<EffectiveQuota>,
}

/// The limits of a key with its own `rate` and `quota` (either may be absent) under `plan`:
/// a key's own rate limit wins, with a burst of the plan's burst but never more than the key's
/// own limit (and at least 1); without one, the plan's rate and burst (the burst defaults to
/// the limit). A key's own quota wins over the plan's.
pub fn effective(rate: Option<RateLimit>, quota: Option<Quota>, plan: PlanLimits) -> Effective {
    let rate = match rate {
        Some(own) if own.limit > 0 && own.period_s > 0 => Some(EffectiveRate {
            limit: own,
            burst: Ord::max(plan.burst.map_or(own.limit, |b| Ord::min(b, own.limit)), 1),
            from_plan: false,
        }),
        _ => plan.rate_limit.map(|r| EffectiveRate {
            limit: r,
            burst: Ord::max(plan.burst.unwrap_or(r.limit), 1),
            from_plan: true,
        }),
    };
    let quota = match quota {
        Some(own) => Some(EffectiveQuota {
            quota: own,
            from_plan: false,
        }),
        None => plan.quota.map(|q| EffectiveQuota {
            quota: q,
            from_plan: true,
        }),
    };
    Effective { rate, quota }
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
}
