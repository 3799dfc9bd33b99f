//! Password rules and hashing.
//!
//! Rules (ASVS 6.2; NIST 800-63B): 12 to 128 characters, any characters, compared exactly as
//! typed; no composition rules; reject common or easily guessed passwords (zxcvbn, which knows
//! the common-password lists), and any password containing the user's email or the product name.
//!
//! Hashing: argon2id with m = 19 MiB, t = 2, p = 1 and a random salt, run on the blocking pool so
//! it never stalls the async workers. An unknown account is checked against a dummy hash so the
//! response time does not reveal whether an email is registered.
use std::sync::LazyLock;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};

use crate::DomainError;

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 128;
/// argon2id memory cost in KiB (19 MiB), iterations and lanes (OWASP Password Storage Cheat Sheet).
pub const ARGON2_M_KIB: u32 = 19 * 1024;
pub const ARGON2_T: u32 = 2;
pub const ARGON2_P: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("Use at least {MIN_CHARS} characters.")]
    TooShort,
    #[error("Use at most {MAX_CHARS} characters.")]
    TooLong,
    #[error("Don't use your email address in your password.")]
    ContainsEmail,
    #[error("Don't use the name of this site in your password.")]
    ContainsProductName,
    #[error("This password is too common or easy to guess. Try a few unrelated words.")]
    TooCommon,
}

/// A password that passed the rules. Never printed, never serialised.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Checks a new password for the account with this email.
    pub fn parse(raw: &str, email: &str) -> Result<Password, PasswordError> {
        let chars = raw.chars().count();
        if chars < MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        let lower = raw.to_lowercase();
        let email = email.trim().to_lowercase();
        let local_part = email.split('@').next().unwrap_or_default();
        if !email.is_empty()
            && (lower.contains(&email) || (local_part.len() >= 4 && lower.contains(local_part)))
        {
            return Err(PasswordError::ContainsEmail);
        }
        if lower.contains("keyport") {
            return Err(PasswordError::ContainsProductName);
        }
        let estimate = zxcvbn::zxcvbn(raw, &[email.as_str(), local_part, "keyport"]);
        if estimate.score() < zxcvbn::Score::Three {
            return Err(PasswordError::TooCommon);
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).expect("argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a random password, used when the account does not exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_blocking("keyport-dummy-password-for-timing").expect("hashing a constant works")
});

fn hash_blocking(password: &str) -> Result<String, DomainError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DomainError::Internal(format!("argon2 hashing failed: {e}")))
}

/// Hashes a password (PHC string format) on the blocking pool.
pub async fn hash(password: &Password) -> Result<String, DomainError> {
    let password = password.0.clone();
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| DomainError::Internal(format!("hashing task failed: {e}")))?
}

/// Checks `candidate` against `stored` (or the dummy hash when there is no account), on the
/// blocking pool. Takes as long either way.
pub async fn verify(candidate: &str, stored: Option<&str>) -> Result<bool, DomainError> {
    let candidate = candidate.to_owned();
    let stored = stored.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let is_real = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&phc).map_err(|e| {
            DomainError::Internal(format!("stored password hash is unreadable: {e}"))
        })?;
        let matches = argon2()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok();
        Ok(is_real && matches)
    })
    .await
    .map_err(|e| DomainError::Internal(format!("verification task failed: {e}")))?
}

/// Hashes a secret that is not a password (a legacy recovery code's digest) as argon2id with
/// its own salt, on the blocking pool.
pub(crate) async fn hash_secret(secret: String) -> Result<String, DomainError> {
    tokio::task::spawn_blocking(move || hash_blocking(&secret))
        .await
        .map_err(|e| DomainError::Internal(format!("hashing task failed: {e}")))?
}

/// Checks a secret against one of `hash_secret`'s PHC strings, on the blocking pool. An
/// unreadable string never matches.
pub(crate) async fn verify_secret(candidate: String, phc: String) -> Result<bool, DomainError> {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|parsed| {
            argon2()
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .map_err(|e| DomainError::Internal(format!("verification task failed: {e}")))
}

/// Forces the dummy hash now, so the first sign-in with an unknown email is not faster.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMAIL: &str = "ada@example.com";

    #[test]
    fn length_is_counted_in_characters_from_12_to_128() {
        assert_eq!(
            Password::parse("ab1!ab1!ab1", EMAIL).unwrap_err(),
            PasswordError::TooShort
        );
        assert!(Password::parse("plume-orbit-cactus", EMAIL).is_ok());
        // 12 characters that are 24 bytes: long enough.
        assert!(Password::parse("éàüöñçøåæœßð", EMAIL).is_ok());
        let long = "river-stone-".repeat(11); // 132 characters
        assert_eq!(
            Password::parse(&long, EMAIL).unwrap_err(),
            PasswordError::TooLong
        );
        let max = &long[..128];
        assert!(Password::parse(max, EMAIL).is_ok());
    }

    #[test]
    fn no_composition_rules() {
        // All lower case, no digits or symbols: fine if it is long and uncommon.
        assert!(Password::parse("glacier lantern pepper", EMAIL).is_ok());
    }

    #[test]
    fn common_passwords_are_rejected() {
        for common in [
            "password1234",
            "123456789012",
            "qwertyuiop12",
            "iloveyou1234",
            "aaaaaaaaaaaa",
        ] {
            assert_eq!(
                Password::parse(common, EMAIL).unwrap_err(),
                PasswordError::TooCommon,
                "{common}"
            );
        }
    }

    #[test]
    fn email_and_product_name_are_rejected() {
        assert_eq!(
            Password::parse("xx-ada@example.com-xx", EMAIL).unwrap_err(),
            PasswordError::ContainsEmail
        );
        assert_eq!(
            Password::parse("Grace-hopper-1906!", "grace@example.com").unwrap_err(),
            PasswordError::ContainsEmail
        );
        assert_eq!(
            Password::parse("my-KeyPort-secret-9", EMAIL).unwrap_err(),
            PasswordError::ContainsProductName
        );
    }

    #[test]
    fn passwords_never_print() {
        let p = Password::parse("glacier lantern pepper", EMAIL).unwrap();
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
    }

    #[tokio::test]
    async fn hashes_with_argon2id_and_the_required_cost() {
        let p = Password::parse("glacier lantern pepper", EMAIL).unwrap();
        let h = hash(&p).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        // Unique salt: the same password hashes differently.
        assert_ne!(h, hash(&p).await.unwrap());
        assert!(verify("glacier lantern pepper", Some(&h)).await.unwrap());
        // Verified exactly as typed.
        assert!(!verify("Glacier lantern pepper", Some(&h)).await.unwrap());
        assert!(!verify("glacier lantern pepper ", Some(&h)).await.unwrap());
        // No account: never matches, not even the dummy password.
        assert!(
            !verify("keyport-dummy-password-for-timing", None)
                .await
                .unwrap()
        );
    }
}
