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

/// A new random id of the given kind, e.g. `usr_4k9XbQ...`.
pub fn new_id(kind: &str) -> String {
    let mut rng = rand::rng();
    let body: String = (0..20)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect();
    format!("{kind}_{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn id_prefixes_are_frozen() {
        assert_eq!(USER, "usr");
        assert_eq!(KEY, "key");
        assert_eq!(API, "api");
        assert_eq!(PLAN, "pln");
    }
}
