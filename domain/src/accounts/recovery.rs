//! Recovery codes: 10 per user, each 120 random bits written as `xxxx-xxxx-xxxx-xxxx-xxxx-xxxx`
//! (24 characters of a 32-letter alphabet without look-alike characters), single use, stored
//! only as SHA-256. ASVS 6.5.2 allows an approved fast hash for secrets of at least 112 bits of
//! entropy: nothing can be guessed from a dictionary, and 2^120 SHA-256 digests are out of reach.
//! Codes issued before (10 characters, 50 bits) still work until they are used or regenerated,
//! but are not kept as fast hashes: migration 8 marks every code that existed at upgrade as
//! `legacy:<sha256>`, and `Accounts::rewrap_legacy_recovery_codes` (run by the server's background
//! job) replaces each with an argon2id hash, salted per code, of that SHA-256.
use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
use sha2::{Digest, Sha256};

pub const COUNT: usize = 10;
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// Characters in a code (5 bits each): 120 bits.
pub const LENGTH: usize = 24;
/// Characters per group in the written form.
const GROUP: usize = 4;
/// Length of the codes issued before they had 120 bits; still accepted.
const OLD_LENGTH: usize = 10;

/// Ten new codes, in the form the user writes down.
pub fn generate() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let mut bytes = [0u8; LENGTH];
            OsRng.fill_bytes(&mut bytes);
            let chars: Vec<char> = bytes
                .iter()
                .map(|b| ALPHABET[(*b & 31) as usize] as char)
                .collect();
            chars
                .chunks(GROUP)
                .map(|group| group.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// What is stored for a code: SHA-256 over its normalised form (hex).
pub fn digest(code: &str) -> String {
    let normalised: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    Sha256::digest(normalised.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How migration 8 marks a code that existed before the upgrade and is not rewrapped yet.
pub const LEGACY_PREFIX: &str = "legacy:";
/// How a rewrapped legacy code starts (a PHC string).
pub const REWRAPPED_PREFIX: &str = "$argon2";

/// Whether `input` looks like a recovery code rather than a TOTP code.
pub fn looks_like_recovery_code(input: &str) -> bool {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    (compact.len() == LENGTH || compact.len() == OLD_LENGTH)
        && !compact.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_of_120_bits_in_the_written_form() {
        let codes = generate();
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 29, "{code}");
            assert_eq!(code.split('-').count(), 6, "{code}");
            let compact: String = code.chars().filter(|c| *c != '-').collect();
            assert!(compact.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            // 5 bits a character: at least 112 bits (ASVS 6.5.2).
            assert!(compact.len() * 5 >= 112);
            assert!(looks_like_recovery_code(code));
        }
    }

    #[test]
    fn digest_ignores_case_spaces_and_dashes() {
        assert_eq!(digest("abcde-fghjk"), digest(" ABCDE FGHJK "));
        assert_eq!(digest("abcde-fghjk").len(), 64);
        assert_ne!(digest("abcde-fghjk"), digest("abcde-fghjm"));
        assert!(!looks_like_recovery_code("123456"));
        // Codes issued before the 120-bit ones are still recognised.
        assert!(looks_like_recovery_code("abcde-fghjk"));
    }
}
