//! Public ids: a kind prefix (`usr_`, `key_`, ...) and 20 random base62 characters, so the wrong
//! kind of id is obvious in a log line and ids cannot be guessed.
use rand::Rng;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Prefix of user ids. Frozen once shipped: ids in databases and logs carry it.
pub const USER: &str = "usr";
/// Prefix of API key ids (the id, not the key).
pub const KEY: &str = "key";
/// Prefix of API (catalog entry) ids.
pub const API: &str = "api";
/// Prefix of plan ids.
pub const PLAN: &str = "pln";

/// Prefix of anomaly alert ids.
pub const ALERT: &str = "alr";

/// Prefix of webhook endpoint ids.
pub const WEBHOOK: &str = "whe";
/// Prefix of webhook message ids (the `webhook-id` header; the same on every retry).
pub const MESSAGE: &str = "msg";

/// Characters after the prefix and its underscore.
const BODY_LEN: usize = 20;

/// A new random id of the given kind, e.g. `usr_4k9XbQ...`.
pub fn new_id(kind: &str) -> String {
    let mut rng = rand::rng();
    let body: String = (0..BODY_LEN)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect();
    format!("{kind}_{body}")
}

/// An id of the kind `prefix` as 15 bytes (its 20 base62 characters as one number, little
/// endian): how the usage journal stores key ids, half the size of the text. `None` for text
/// that is not such an id.
pub fn pack(text: &str, prefix: &str) -> Option<[u8; 15]> {
    if !is_id(text, prefix) {
        return None;
    }
    let mut n: u128 = 0;
    for c in text.as_bytes()[prefix.len() + 1..].iter().rev() {
        let digit = BASE62.iter().position(|b| b == c)? as u128;
        n = n * 62 + digit;
    }
    let mut out = [0; 15];
    out.copy_from_slice(&n.to_le_bytes()[..15]);
    Some(out)
}

/// The id [`pack`] made these bytes from; `None` for bytes it cannot have made.
pub fn unpack(bytes: &[u8; 15], prefix: &str) -> Option<String> {
    let mut le = [0; 16];
    le[..15].copy_from_slice(bytes);
    let mut n = u128::from_le_bytes(le);
    let mut text = String::with_capacity(prefix.len() + 1 + BODY_LEN);
    text.push_str(prefix);
    text.push('_');
    for _ in 0..BODY_LEN {
        text.push(BASE62[(n % 62) as usize] as char);
        n /= 62;
    }
    (n == 0).then_some(text)
}

/// Whether `text` is an id of the kind `prefix`: the prefix, `_`, 20 base62 characters.
pub fn is_id(text: &str, prefix: &str) -> bool {
    text.len() == prefix.len() + 1 + BODY_LEN
        && text.starts_with(prefix)
        && text.as_bytes()[prefix.len()] == b'_'
        && text.as_bytes()[prefix.len() + 1..]
            .iter()
            .all(u8::is_ascii_alphanumeric)
}

/// Text that is not an id of the kind asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a {kind} id")]
pub struct BadId {
    pub kind: &'static str,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:expr, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A new random id.
            pub fn generate() -> $name {
                $name(new_id($prefix))
            }
            /// Checks the frozen prefix and the shape, so an id of another kind (or anything else)
            /// never reaches a query.
            pub fn parse(text: &str) -> Result<$name, BadId> {
                if is_id(text, $prefix) {
                    Ok($name(text.to_owned()))
                } else {
                    Err(BadId { kind: $kind })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = BadId;
            fn from_str(text: &str) -> Result<$name, BadId> {
                $name::parse(text)
            }
        }

        impl TryFrom<String> for $name {
            type Error = BadId;
            fn try_from(text: String) -> Result<$name, BadId> {
                $name::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

typed_id!(
    /// A user's id (`usr_...`).
    UserId, USER, "user"
);
typed_id!(
    /// An API key's id (`key_...`; the id, not the key).
    KeyId, KEY, "key"
);
typed_id!(
    /// An API's id (`api_...`).
    ApiId, API, "API"
);
typed_id!(
    /// A plan's id (`pln_...`).
    PlanId, PLAN, "plan"
);
typed_id!(
    /// An anomaly alert's id (`alr_...`).
    AlertId, ALERT, "alert"
);

typed_id!(
    /// A webhook endpoint's id (`whe_...`).
    WebhookId, WEBHOOK, "webhook endpoint"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_ids_come_back_as_they_were() {
        for _ in 0..1_000 {
            let id = new_id(KEY);
            let packed = pack(&id, KEY).unwrap();
            assert_eq!(unpack(&packed, KEY).as_deref(), Some(id.as_str()));
        }
        for edge in ["key_00000000000000000000", "key_zzzzzzzzzzzzzzzzzzzz"] {
            assert_eq!(
                unpack(&pack(edge, KEY).unwrap(), KEY).as_deref(),
                Some(edge)
            );
        }
        // Not ids of the kind: not packed.
        for other in [
            "key_a",
            "usr_00000000000000000000",
            "key_0000000000000000000!",
            "",
        ] {
            assert_eq!(pack(other, KEY), None, "{other}");
        }
        // Bytes no id packs to (over 62^20).
        assert_eq!(unpack(&[0xff; 15], KEY), None);
    }

    #[test]
    fn ids_carry_their_kind_and_do_not_repeat() {
        let a = new_id(USER);
        let b = new_id(USER);
        assert!(a.starts_with("usr_"));
        assert_eq!(a.len(), 24);
        assert!(a[4..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn typed_ids_parse_only_their_own_kind() {
        let key = KeyId::generate();
        assert_eq!(KeyId::parse(key.as_str()), Ok(key.clone()));
        assert!(
            UserId::parse(key.as_str()).is_err(),
            "a key id is no user id"
        );
        for bad in [
            "",
            "key_",
            "key_0000000000000000000",
            "key_000000000000000000000",
            "key-00000000000000000000",
            "kex_00000000000000000000",
            "key_0000000000000000000!",
            "key_00000000000000000000 ",
            "key_0000000000000000000é",
        ] {
            assert_eq!(KeyId::parse(bad), Err(BadId { kind: "key" }), "{bad:?}");
        }
        assert!(KeyId::parse("key_00000000000000000000").is_ok());
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), key);
        assert!(serde_json::from_str::<UserId>(&json).is_err());
    }

    #[test]
    fn id_prefixes_are_frozen() {
        assert_eq!(USER, "usr");
        assert_eq!(KEY, "key");
        assert_eq!(API, "api");
        assert_eq!(PLAN, "pln");
        assert_eq!(ALERT, "alr");
    }
}
