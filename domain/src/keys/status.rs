//! A key's status, decided once: the portal, the REST API and the verifier all ask
//! [`Lifecycle::status`], so a key can never show one status and verify as another.
use chrono::{DateTime, Duration, Utc};

/// A key is "expiring soon" this long before it expires.
pub const EXPIRING_SOON: Duration = Duration::days(7);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyStatus {
    Active,
    ExpiringSoon,
    Expired,
    Rotating,
    Revoked,
    Disabled,
}

impl KeyStatus {
    pub const ALL: [KeyStatus; 6] = [
        KeyStatus::Active,
        KeyStatus::ExpiringSoon,
        KeyStatus::Expired,
        KeyStatus::Rotating,
        KeyStatus::Revoked,
        KeyStatus::Disabled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::ExpiringSoon => "expiring_soon",
            KeyStatus::Expired => "expired",
            KeyStatus::Rotating => "rotating",
            KeyStatus::Revoked => "revoked",
            KeyStatus::Disabled => "disabled",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::ExpiringSoon => "Expiring soon",
            KeyStatus::Expired => "Expired",
            KeyStatus::Rotating => "Rotating",
            KeyStatus::Revoked => "Revoked",
            KeyStatus::Disabled => "Disabled",
        }
    }
    pub fn parse(s: &str) -> Option<KeyStatus> {
        KeyStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What can be done to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAction {
    /// Rename, rescope, change its expiry or IP allowlist.
    Edit,
    /// Switch it off or on again.
    Toggle,
    Rotate,
    Revoke,
}

impl KeyAction {
    pub const ALL: [KeyAction; 4] = [
        KeyAction::Edit,
        KeyAction::Toggle,
        KeyAction::Rotate,
        KeyAction::Revoke,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAction::Edit => "edit",
            KeyAction::Toggle => "toggle",
            KeyAction::Rotate => "rotate",
            KeyAction::Revoke => "revoke",
        }
    }
}

impl KeyStatus {
    /// Whether `action` can be done to a key in this status; `Err` says why not (the service
    /// answers it as a conflict). The one rule behind the key page's buttons, the REST API's
    /// `allowed_actions` and the service's refusals.
    pub fn allows(self, action: KeyAction) -> Result<(), &'static str> {
        use KeyAction::*;
        match (self, action) {
            (KeyStatus::Revoked, Revoke) => Err("this key is already revoked"),
            (KeyStatus::Revoked, _) => Err("this key is revoked; revoked keys cannot be changed"),
            (KeyStatus::Expired, Rotate) => {
                Err("an expired key cannot be rotated; create a new key")
            }
            (KeyStatus::Rotating, Rotate) => {
                Err("this key was already rotated; rotate its replacement instead")
            }
            _ => Ok(()),
        }
    }

    /// The actions [`KeyStatus::allows`].
    pub fn allowed_actions(self) -> Vec<KeyAction> {
        KeyAction::ALL
            .into_iter()
            .filter(|a| self.allows(*a).is_ok())
            .collect()
    }

    /// The names of [`KeyStatus::allowed_actions`], as the key page and the REST API show them.
    pub fn allowed_action_names(self) -> Vec<String> {
        self.allowed_actions()
            .into_iter()
            .map(|a| a.as_str().to_owned())
            .collect()
    }
}

/// The facts a key's status follows from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    pub revoked: bool,
    pub enabled: bool,
    /// The owner's account is active (a suspended owner's keys are disabled with it).
    pub owner_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// Replaced by a rotation and working until `expires_at` (the grace period).
    pub rotating: bool,
}

impl Lifecycle {
    /// The status at `now`. Order: revoked is final, so it wins over disabled (key or owner);
    /// a disabled key is disabled whether or not it has expired; then expired, rotating,
    /// expiring soon, active.
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        if self.revoked {
            KeyStatus::Revoked
        } else if !self.enabled || !self.owner_active {
            KeyStatus::Disabled
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyStatus::Expired
        } else if self.rotating {
            KeyStatus::Rotating
        } else if self.expires_at.is_some_and(|e| e - now <= EXPIRING_SOON) {
            KeyStatus::ExpiringSoon
        } else {
            KeyStatus::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active() -> Lifecycle {
        Lifecycle {
            revoked: false,
            enabled: true,
            owner_active: true,
            expires_at: None,
            rotating: false,
        }
    }

    #[test]
    fn each_status_allows_its_actions() {
        use KeyAction::*;
        let table = [
            (KeyStatus::Active, vec![Edit, Toggle, Rotate, Revoke]),
            (KeyStatus::ExpiringSoon, vec![Edit, Toggle, Rotate, Revoke]),
            (KeyStatus::Disabled, vec![Edit, Toggle, Rotate, Revoke]),
            (KeyStatus::Rotating, vec![Edit, Toggle, Revoke]),
            (KeyStatus::Expired, vec![Edit, Toggle, Revoke]),
            (KeyStatus::Revoked, vec![]),
        ];
        for (status, actions) in table {
            assert_eq!(status.allowed_actions(), actions, "{status:?}");
        }
        assert_eq!(
            KeyStatus::Revoked.allows(Revoke),
            Err("this key is already revoked")
        );
    }

    #[test]
    fn each_fact_gives_its_status_and_revoked_wins_over_everything() {
        let now = Utc::now();
        let past = Some(now - Duration::seconds(1));
        let cases = [
            (active(), KeyStatus::Active),
            (
                Lifecycle {
                    expires_at: Some(now + Duration::days(3)),
                    ..active()
                },
                KeyStatus::ExpiringSoon,
            ),
            (
                Lifecycle {
                    expires_at: Some(now + Duration::days(30)),
                    ..active()
                },
                KeyStatus::Active,
            ),
            (
                Lifecycle {
                    expires_at: past,
                    ..active()
                },
                KeyStatus::Expired,
            ),
            (
                Lifecycle {
                    rotating: true,
                    expires_at: Some(now + Duration::hours(1)),
                    ..active()
                },
                KeyStatus::Rotating,
            ),
            (
                Lifecycle {
                    rotating: true,
                    expires_at: past,
                    ..active()
                },
                KeyStatus::Expired,
            ),
            (
                Lifecycle {
                    enabled: false,
                    ..active()
                },
                KeyStatus::Disabled,
            ),
            (
                Lifecycle {
                    owner_active: false,
                    ..active()
                },
                KeyStatus::Disabled,
            ),
            (
                Lifecycle {
                    enabled: false,
                    expires_at: past,
                    ..active()
                },
                KeyStatus::Disabled,
            ),
            (
                Lifecycle {
                    revoked: true,
                    ..active()
                },
                KeyStatus::Revoked,
            ),
            (
                Lifecycle {
                    revoked: true,
                    enabled: false,
                    ..active()
                },
                KeyStatus::Revoked,
            ),
            (
                Lifecycle {
                    revoked: true,
                    owner_active: false,
                    ..active()
                },
                KeyStatus::Revoked,
            ),
            (
                Lifecycle {
                    revoked: true,
                    owner_active: false,
                    enabled: false,
                    expires_at: past,
                    rotating: true,
                },
                KeyStatus::Revoked,
            ),
        ];
        for (facts, want) in cases {
            assert_eq!(facts.status(now), want, "{facts:?}");
        }
    }
}
