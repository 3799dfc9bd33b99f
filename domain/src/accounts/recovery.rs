//! Recovery codes: 10 per user, each 50 random bits written as `xxxxx-xxxxx` in an alphabet
//! without look-alike characters, single use, stored only as SHA-256 (a fast hash is enough for
//! random codes of this length; there is nothing to guess from a dictionary).
use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
use sha2::{Digest, Sha256};

pub const COUNT: usize = 10;
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// Ten new codes, in the form the user writes down.
pub fn generate() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let mut bytes = [0u8; 10];
            OsRng.fill_bytes(&mut bytes);
            let chars: String = bytes
                .iter()
                .map(|b| ALPHABET[(*b & 31) as usize] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
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

/// Whether `input` looks like a recovery code rather than a TOTP code.
pub fn looks_like_recovery_code(input: &str) -> bool {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    compact.len() == 10 && !compact.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_in_the_written_form() {
        let codes = generate();
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            assert!(looks_like_recovery_code(code));
        }
    }

    #[test]
    fn digest_ignores_case_spaces_and_dashes() {
        assert_eq!(digest("abcde-fghjk"), digest(" ABCDE FGHJK "));
        assert_eq!(digest("abcde-fghjk").len(), 64);
        assert_ne!(digest("abcde-fghjk"), digest("abcde-fghjm"));
        assert!(!looks_like_recovery_code("123456"));
    }
}
