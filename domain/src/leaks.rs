//! Leak reports: a secret-scanning partner (GitHub's format) or an admin reports tokens found in
//! public places, and every live Keyport key among them is revoked (or disabled, by the admin's
//! policy) at once, with the report's URL and source in the audit event, a `key.leaked` webhook,
//! an alert and an email to its owner. Partners authenticate by an ECDSA P-256 signature over
//! the raw body, against public keys configured in a file (no internet needed).
//!
//! Each token's checksum is checked first: a malformed token costs no query.
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    Database, DomainError,
    audit::RequestContext,
    entities::{api_key, leak_report},
    keys::{Keys, LeakAction, PlainKey, format::hash_hex},
};

/// Most tokens one report may carry.
pub const MAX_TOKENS: usize = 1000;

/// One token as a partner reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Reported {
    pub token: String,
    #[serde(rename = "type", default)]
    pub token_type: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub source: String,
}

/// The answer for one token: whether it is a real Keyport key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub token_hash: String,
    pub token_type: String,
    /// `true_positive` (a key Keyport issued) or `false_positive`.
    pub label: &'static str,
}

/// What happens to a leaked key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Revoked for good (the default).
    #[default]
    Revoke,
    /// Disabled, so an admin can look before deciding.
    Disable,
}

impl Policy {
    pub fn parse(text: &str) -> Option<Policy> {
        match text {
            "revoke" => Some(Policy::Revoke),
            "disable" => Some(Policy::Disable),
            _ => None,
        }
    }
}

/// Who reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reporter {
    /// A partner whose signature checked out against this configured key.
    Partner { key_id: String },
    /// An admin, with their management key.
    Admin { user_id: String },
}

impl Reporter {
    fn describe(&self) -> String {
        match self {
            Reporter::Partner { key_id } => format!("partner:{key_id}"),
            Reporter::Admin { user_id } => format!("admin:{user_id}"),
        }
    }
}

/// Why a signed report is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no public key with this identifier is configured")]
    UnknownKey,
    #[error("the signature is not base64")]
    NotBase64,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// The DER prefix of a P-256 public key in SubjectPublicKeyInfo form, before its 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The uncompressed point of a P-256 public key given as a PEM `PUBLIC KEY`.
pub fn point_of_pem(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD
        .decode(body)
        .map_err(|_| "the key is not PEM (base64 between BEGIN/END PUBLIC KEY lines)".to_owned())?;
    match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        Some(point) if point.len() == 65 && point[0] == 4 => Ok(point.to_vec()),
        _ => Err("the key is not an ECDSA P-256 public key".to_owned()),
    }
}

/// A PEM `PUBLIC KEY` for an uncompressed P-256 point (what [`point_of_pem`] reads).
pub fn pem_of_point(point: &[u8]) -> String {
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(point);
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

/// The partners' public keys, by identifier.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys(Vec<(String, Vec<u8>)>);

#[derive(Deserialize)]
struct KeysFile {
    public_keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
}

impl TrustedKeys {
    /// Reads GitHub's format (`{"public_keys": [{"key_identifier", "key"}]}`, as served at
    /// `https://api.github.com/meta/public_keys/secret_scanning`).
    pub fn from_json(text: &str) -> Result<TrustedKeys, String> {
        let file: KeysFile = serde_json::from_str(text).map_err(|e| {
            format!("expected {{\"public_keys\": [{{\"key_identifier\", \"key\"}}]}}: {e}")
        })?;
        let mut keys = Vec::new();
        for entry in file.public_keys {
            let point = point_of_pem(&entry.key)
                .map_err(|e| format!("key {:?}: {e}", entry.key_identifier))?;
            keys.push((entry.key_identifier, point));
        }
        Ok(TrustedKeys(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks `signature` (base64 of an ASN.1 DER ECDSA signature) over `body`.
    pub fn verify(&self, key_id: &str, signature: &str, body: &[u8]) -> Result<(), SignatureError> {
        let (_, point) = self
            .0
            .iter()
            .find(|(id, _)| id == key_id)
            .ok_or(SignatureError::UnknownKey)?;
        let signature = STANDARD
            .decode(signature.trim())
            .map_err(|_| SignatureError::NotBase64)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .verify(body, &signature)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// A report as the admin page lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakReport {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub reporter: String,
    pub token_hash: String,
    pub token_type: String,
    pub url: String,
    pub source: String,
    pub label: String,
    pub key_id: Option<String>,
    /// `revoked`, `disabled`, `already revoked`, `already disabled` or `none`.
    pub action: String,
}

/// The leak reports service.
#[derive(Clone, Debug)]
pub struct LeakReports {
    db: Database,
    keys: Keys,
    policy: Policy,
}

impl LeakReports {
    pub fn new(db: Database, keys: Keys, policy: Policy) -> LeakReports {
        LeakReports { db, keys, policy }
    }

    /// Labels every token, and revokes (or disables) every live key among them.
    pub async fn report(
        &self,
        reporter: &Reporter,
        items: &[Reported],
        ctx: &RequestContext,
    ) -> Result<Vec<Verdict>, DomainError> {
        let now = Utc::now();
        let mut verdicts = Vec::with_capacity(items.len());
        for item in items {
            let token_hash = hash_hex(&item.token);
            let key = match PlainKey::parse(item.token.trim()) {
                // Not even shaped like a key: no query.
                Err(_) => None,
                Ok(plain) => {
                    api_key::Entity::find()
                        .filter(api_key::Column::Hash.eq(plain.hash()))
                        .one(self.db.conn())
                        .await?
                }
            };
            let action = match &key {
                None => "none",
                Some(key) => {
                    let details = json!({
                        "url": item.url,
                        "source": item.source,
                        "token_type": item.token_type,
                        "reporter": reporter.describe(),
                    });
                    let actor = match reporter {
                        Reporter::Admin { user_id } => Some(user_id.as_str()),
                        Reporter::Partner { .. } => None,
                    };
                    let wanted = match self.policy {
                        Policy::Revoke => LeakAction::Revoke,
                        Policy::Disable => LeakAction::Disable,
                    };
                    match self
                        .keys
                        .mark_leaked(&key.id, wanted, actor, details, ctx)
                        .await
                    {
                        Ok(done) => done,
                        // Deleted meanwhile: nothing left to revoke.
                        Err(crate::service::ServiceError::NotFound) => "none",
                        Err(crate::service::ServiceError::Domain(e)) => return Err(e),
                        Err(other) => return Err(DomainError::Internal(other.to_string())),
                    }
                }
            };
            let label = if key.is_some() {
                "true_positive"
            } else {
                "false_positive"
            };
            leak_report::Entity::insert(leak_report::ActiveModel {
                received_at: Set(now),
                reporter: Set(reporter.describe()),
                token_hash: Set(token_hash.clone()),
                token_type: Set(item.token_type.chars().take(100).collect()),
                url: Set(item.url.chars().take(2048).collect()),
                source: Set(item.source.chars().take(100).collect()),
                label: Set(label.to_owned()),
                key_id: Set(key.as_ref().map(|k| k.id.clone())),
                action: Set(action.to_owned()),
                ..Default::default()
            })
            .exec_without_returning(self.db.conn())
            .await?;
            verdicts.push(Verdict {
                token_hash,
                token_type: item.token_type.clone(),
                label,
            });
        }
        Ok(verdicts)
    }

    /// A page of reports, newest first, and the total.
    pub async fn list(
        &self,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<LeakReport>, u64), DomainError> {
        let total = leak_report::Entity::find().count(self.db.conn()).await?;
        let rows = leak_report::Entity::find()
            .order_by_desc(leak_report::Column::Id)
            .limit(limit)
            .offset(offset)
            .all(self.db.conn())
            .await?;
        Ok((
            rows.into_iter()
                .map(|r| LeakReport {
                    id: r.id,
                    received_at: r.received_at,
                    reporter: r.reporter,
                    token_hash: r.token_hash,
                    token_type: r.token_type,
                    url: r.url,
                    source: r.source,
                    label: r.label,
                    key_id: r.key_id,
                    action: r.action,
                })
                .collect(),
            total,
        ))
    }
}

#[cfg(test)]
mod tests {
    use ring::{
        rand::SystemRandom,
        signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair},
    };

    use super::*;

    fn partner() -> (EcdsaKeyPair, TrustedKeys) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let file = json!({ "public_keys": [
            { "key_identifier": "partner-1", "key": pem_of_point(pair.public_key().as_ref()), "is_current": true }
        ]});
        (pair, TrustedKeys::from_json(&file.to_string()).unwrap())
    }

    #[test]
    fn signatures_check_out_only_for_the_body_and_key_they_were_made_with() {
        let (pair, trusted) = partner();
        let body =
            br#"[{"token":"kp_x","type":"keyport_api_key","url":"https://x","source":"content"}]"#;
        let signature = STANDARD.encode(pair.sign(&SystemRandom::new(), body).unwrap());
        assert_eq!(trusted.verify("partner-1", &signature, body), Ok(()));
        assert_eq!(
            trusted.verify("partner-1", &signature, b"[]"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            trusted.verify("partner-2", &signature, body),
            Err(SignatureError::UnknownKey)
        );
        assert_eq!(
            trusted.verify("partner-1", "not base64!", body),
            Err(SignatureError::NotBase64)
        );
        let (_, other) = partner();
        assert_eq!(
            other.verify("partner-1", &signature, body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn key_files_are_read_in_githubs_format_with_clear_errors() {
        assert!(
            TrustedKeys::from_json("{}")
                .unwrap_err()
                .contains("public_keys")
        );
        let bad = json!({ "public_keys": [{ "key_identifier": "k", "key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" }] });
        assert!(
            TrustedKeys::from_json(&bad.to_string())
                .unwrap_err()
                .contains("P-256")
        );
        let (pair, _) = partner();
        let pem = pem_of_point(pair.public_key().as_ref());
        assert_eq!(point_of_pem(&pem).unwrap(), pair.public_key().as_ref());
    }
}
