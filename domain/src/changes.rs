//! Key changes, told to whoever keeps a view of the keys. The services ([`crate::keys::Keys`],
//! [`crate::catalog::Catalog`]) announce every committed change through [`KeyChanges`]; the
//! verifier implements it to refresh its index at once. A [`Change`] is plain data, so a change
//! feed between instances can carry the same values.
use std::{future::Future, pin::Pin, sync::Arc};

use serde::{Deserialize, Serialize};

/// What changed, after the transaction that changed it committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Change {
    /// One key (created, rotated, revoked, disabled, limits or allowlist edited).
    Key(String),
    /// Every key of one user (status or plan changed).
    Owner(String),
    /// An API's versions (status or sunset).
    Versions,
    /// Anything that may touch many keys' effective limits (a plan, the default plan).
    All,
}

/// A boxed future, so the trait can be used as `dyn KeyChanges`.
pub type Applied<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Receives every key change. Implementations must not fail the change that was made: they log
/// and rely on their own safety net (the verifier's periodic refresh).
pub trait KeyChanges: Send + Sync + std::fmt::Debug {
    fn apply(&self, change: Change) -> Applied<'_>;
}

/// Where services send their changes; empty when nothing listens (tests, the CLI).
#[derive(Clone, Debug, Default)]
pub struct Listeners(Vec<Arc<dyn KeyChanges>>);

impl Listeners {
    pub fn add(&mut self, listener: Arc<dyn KeyChanges>) {
        self.0.push(listener);
    }

    pub async fn tell(&self, change: Change) {
        for l in &self.0 {
            l.apply(change.clone()).await;
        }
    }
}
