//! Standard Webhooks signing (<https://www.standardwebhooks.com>): each delivery carries
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, so receivers can check it with the `standardwebhooks` or `svix`
//! libraries. Secrets are `whsec_` + base64 of 32 random bytes; while a rotated-out secret is
//! still valid, both sign (the header lists both signatures, space-separated).
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2_11::Sha256;

const PREFIX: &str = "whsec_";

/// A signing secret as its owner copies it (`whsec_...`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    pub fn generate() -> Secret {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Secret(format!("{PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// A stored secret; `None` when it is not of this shape.
    pub fn parse(text: &str) -> Option<Secret> {
        let body = text.strip_prefix(PREFIX)?;
        STANDARD.decode(body).ok().filter(|b| b.len() >= 24)?;
        Some(Secret(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        STANDARD
            .decode(&self.0[PREFIX.len()..])
            .expect("checked when made")
    }

    /// `v1,<signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key())
            .expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per secret still valid.
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_like_the_reference_implementation() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn generated_secrets_parse_and_differ() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        assert_eq!(Secret::parse(a.expose()), Some(a.clone()));
        assert!(Secret::parse("whsec_").is_none());
        assert!(Secret::parse("nope").is_none());
        let header = signature_header(&[a.clone(), b.clone()], "msg_1", 1, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(format!("{a:?}").contains(".."));
    }
}
