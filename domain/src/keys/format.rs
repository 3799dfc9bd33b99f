//! The key format, frozen once shipped: `kp_` + 40 base62 characters from the OS CSPRNG + a
//! 6-character base62 CRC32 (IEEE) of the body. 49 characters in all. The checksum lets a leak
//! scanner (or this server, before any lookup) tell a Keyport key from random text.
use std::fmt;

use rand::TryRngCore;
use rand::{Rng, rngs::OsRng};
use sha2::{Digest, Sha256};

/// The prefix of every key. Frozen: keys in the wild carry it and scanners match on it.
pub const PREFIX: &str = "kp_";
/// Characters of random body.
pub const BODY_LEN: usize = 40;
/// Characters of checksum.
pub const CHECKSUM_LEN: usize = 6;
/// Length of a whole key.
pub const KEY_LEN: usize = PREFIX.len() + BODY_LEN + CHECKSUM_LEN;
/// Body characters kept in the display start (`kp_` + these).
pub const START_LEN: usize = 6;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A plaintext key. Never logged: `Debug` prints only its start.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainKey(String);

impl PlainKey {
    /// A new key from the operating system's CSPRNG.
    pub fn generate() -> PlainKey {
        let mut rng = OsRng.unwrap_err();
        let body: String = (0..BODY_LEN)
            .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
            .collect();
        PlainKey(format!("{PREFIX}{body}{}", checksum(&body)))
    }

    /// Checks shape and checksum; a string that fails is never looked up.
    pub fn parse(text: &str) -> Result<PlainKey, MalformedKey> {
        let body_and_sum = text.strip_prefix(PREFIX).ok_or(MalformedKey::Prefix)?;
        if text.len() != KEY_LEN {
            return Err(MalformedKey::Length);
        }
        if !body_and_sum.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedKey::Alphabet);
        }
        let (body, sum) = body_and_sum.split_at(BODY_LEN);
        if checksum(body) != sum {
            return Err(MalformedKey::Checksum);
        }
        Ok(PlainKey(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored: SHA-256 of the whole key, lowercase hex.
    pub fn hash(&self) -> String {
        hash_hex(&self.0)
    }

    /// What is shown: `kp_` + the first 6 body characters.
    pub fn start(&self) -> String {
        self.0[..PREFIX.len() + START_LEN].to_owned()
    }
}

impl fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainKey({}…)", self.start())
    }
}

/// SHA-256 of a key, lowercase hex.
pub fn hash_hex(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        use fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Why a string is not a Keyport key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedKey {
    #[error("a Keyport key starts with kp_")]
    Prefix,
    #[error("a Keyport key is 49 characters long")]
    Length,
    #[error("a Keyport key holds only letters and digits after kp_")]
    Alphabet,
    #[error("the key's checksum does not match: it was mistyped or truncated")]
    Checksum,
}

/// CRC32 (IEEE) of the body in base62, most significant digit first, left-padded to 6.
pub fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes()) as u64;
    let mut digits = [b'0'; CHECKSUM_LEN];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 digits are ASCII")
}
