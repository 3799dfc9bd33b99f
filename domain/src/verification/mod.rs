//! Verification, the hot path: is this key valid for this API, scope, address and version, and
//! within its limits? [`outcome`] names what is asked and answered, [`policy`] decides as pure
//! functions, [`verifier`] holds the in-memory index and limiters that feed the policy, and
//! [`global`] keeps limits shared by several instances in Redis.
pub mod global;
pub mod outcome;
pub mod policy;
pub mod verifier;

pub use outcome::{Code, Deprecation, QuotaInfo, RateInfo, Request};
pub use verifier::{CachedKey, Outcome, QuotaCounter, Verifier, quota_period};
