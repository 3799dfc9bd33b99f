//! Time-based one-time passwords (RFC 6238): SHA-1, 6 digits, 30 s steps, one step of drift
//! either side. Seeds are 160 bits from the OS CSPRNG. Replay protection (a step is accepted
//! once) lives in the accounts service, which stores the last accepted step per user.
use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const ISSUER: &str = "Keyport";
pub const STEP_SECONDS: u64 = 30;
pub const SEED_BYTES: usize = 20;

/// A TOTP seed in the clear. Not `Debug`-printable, not serialisable.
pub struct Seed(Vec<u8>);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

impl Seed {
    pub fn generate() -> Seed {
        let mut seed = vec![0u8; SEED_BYTES];
        OsRng.fill_bytes(&mut seed);
        Seed(seed)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Seed {
        Seed(bytes)
    }

    /// Reads a setup key as shown to the user (what an authenticator app does).
    pub fn from_base32(setup_key: &str) -> Option<Seed> {
        let compact: String = setup_key.chars().filter(|c| !c.is_whitespace()).collect();
        Secret::try_from_base32(compact.to_uppercase())
            .ok()
            .map(|s| Seed(s.as_ref().to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, account: &str) -> Totp {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(STEP_SECONDS)
            .with_secret(Secret::from(self.0.clone()))
            .with_issuer(Some(ISSUER))
            .with_account_name(account.replace(':', ""))
            .build()
            .expect("a 160-bit seed with RFC 6238 defaults is valid")
    }

    /// The seed in base32, for typing into an authenticator app by hand.
    pub fn base32(&self) -> String {
        Secret::from(self.0.clone()).to_base32()
    }

    /// The `otpauth://` URI that authenticator apps read from the QR code.
    pub fn otpauth_uri(&self, account: &str) -> String {
        self.totp(account).to_url().expect("account name is set")
    }

    /// The step a code matches at `unix_time` (allowing one step of drift), if any.
    pub fn matching_step(&self, code: &str, unix_time: u64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.totp("").check(&code, unix_time)
    }

    /// The code for `unix_time` (tests and the end-to-end suite's authenticator).
    pub fn code_at(&self, unix_time: u64) -> String {
        self.totp("").generate(unix_time).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 seed "12345678901234567890", truncated to 6 digits.
    #[test]
    fn matches_the_rfc_6238_test_vectors() {
        let seed = Seed::from_bytes(b"12345678901234567890".to_vec());
        for (time, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(seed.code_at(time), code, "t={time}");
            assert_eq!(seed.matching_step(code, time), Some(time / 30));
        }
    }

    #[test]
    fn accepts_one_step_of_drift_and_no_more() {
        let seed = Seed::generate();
        let now = 1_800_000_000;
        let code = seed.code_at(now);
        assert_eq!(seed.matching_step(&code, now - 30), Some(now / 30));
        assert_eq!(seed.matching_step(&code, now + 30), Some(now / 30));
        assert_eq!(seed.matching_step(&code, now - 60), None);
        assert_eq!(seed.matching_step(&code, now + 60), None);
    }

    #[test]
    fn seeds_are_160_random_bits_and_codes_must_be_6_digits() {
        let a = Seed::generate();
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a.as_bytes(), Seed::generate().as_bytes());
        assert_eq!(a.base32().len(), 32);
        assert_eq!(a.matching_step("12345", 0), None);
        assert_eq!(a.matching_step("abcdef", 0), None);
        let spaced = a.code_at(90);
        let spaced = format!("{} {}", &spaced[..3], &spaced[3..]);
        assert_eq!(a.matching_step(&spaced, 90), Some(3));
        assert_eq!(format!("{a:?}"), "Seed(<redacted>)");
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let uri = Seed::generate().otpauth_uri("ada@example.com");
        assert!(
            uri.starts_with("otpauth://totp/Keyport:ada%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Keyport"));
    }
}
