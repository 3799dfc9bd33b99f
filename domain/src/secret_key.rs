//! The server key that encrypts secrets at rest (TOTP seeds). 32 random bytes, kept in
//! `<data-dir>/secret.key` (created with mode 0600 on first start) or given as 64 hex characters
//! in `KEYPORT_SECRET_KEY`. Losing it means every user must enrol 2FA again.
use std::{fs, io::Write, path::Path};

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, AeadCore, KeyInit, OsRng, rand_core::RngCore},
};

use crate::DomainError;

pub const FILE_NAME: &str = "secret.key";
const NONCE_LEN: usize = 24;

#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> SecretKey {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        SecretKey(key)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(hex: &str) -> Result<SecretKey, DomainError> {
        let hex = hex.trim();
        let invalid = || {
            DomainError::Config(
                "the secret key must be 64 hexadecimal characters (32 bytes)".into(),
            )
        };
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(invalid());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(SecretKey(key))
    }

    fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The key from `configured` (e.g. `KEYPORT_SECRET_KEY`) if given, else from the data
    /// directory's key file, which is created (0600) when missing.
    pub fn load_or_create(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> Result<SecretKey, DomainError> {
        Self::load_or_create_at(configured, &data_dir.join(FILE_NAME))
    }

    /// The key from `configured` if given, else from the key file at `path` (e.g.
    /// `KEYPORT_SECRET_KEY_FILE`, outside the data directory), created (0600, with its
    /// directory) when missing.
    pub fn load_or_create_at(
        configured: Option<&str>,
        path: &Path,
    ) -> Result<SecretKey, DomainError> {
        if let Some(hex) = configured.filter(|h| !h.trim().is_empty()) {
            return Self::from_hex(hex);
        }
        match fs::read_to_string(path) {
            Ok(hex) => Self::from_hex(&hex).map_err(|_| {
                DomainError::Config(format!("{} is not a valid secret key file", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
                }
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(|e| io_error(path, e))?;
                file.write_all(key.to_hex().as_bytes())
                    .map_err(|e| io_error(path, e))?;
                file.sync_all().map_err(|e| io_error(path, e))?;
                Ok(key)
            }
            Err(e) => Err(io_error(path, e)),
        }
    }

    /// Encrypts with XChaCha20-Poly1305 under a random nonce; output is nonce || ciphertext.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(
            cipher
                .encrypt(&nonce, plaintext)
                .expect("encryption of a short buffer cannot fail"),
        );
        out
    }

    /// Decrypts what [`SecretKey::encrypt`] produced; fails if it was made with another key or altered.
    pub fn decrypt(&self, sealed: &[u8]) -> Result<Vec<u8>, DomainError> {
        if sealed.len() < NONCE_LEN {
            return Err(DomainError::Internal("sealed secret is truncated".into()));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| {
                DomainError::Internal("sealed secret does not decrypt with this server key".into())
            })
    }
}

fn io_error(path: &Path, e: std::io::Error) -> DomainError {
    DomainError::Config(format!("cannot use {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_the_wrong_key() {
        let key = SecretKey::generate();
        let sealed = key.encrypt(b"seed bytes");
        assert_ne!(&sealed[NONCE_LEN..], b"seed bytes");
        assert_eq!(key.decrypt(&sealed).unwrap(), b"seed bytes");
        assert!(SecretKey::generate().decrypt(&sealed).is_err());
        assert!(key.decrypt(&sealed[..10]).is_err());
    }

    #[test]
    fn key_file_is_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretKey::load_or_create(None, dir.path()).unwrap();
        let second = SecretKey::load_or_create(None, dir.path()).unwrap();
        assert_eq!(first.0, second.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_configured_key_wins_and_bad_ones_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "00".repeat(31) + "ff";
        let key = SecretKey::load_or_create(Some(&hex), dir.path()).unwrap();
        assert_eq!(key.0[31], 0xff);
        assert!(!dir.path().join(FILE_NAME).exists());
        let err = SecretKey::load_or_create(Some("abc"), dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("64 hexadecimal characters"),
            "{err}"
        );
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    }
}
