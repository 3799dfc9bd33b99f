//! Keyport's server-only business logic: database access, SeaORM entities and the services built
//! on them. Knows nothing of Leptos or axum, so the portal and the public API share one
//! implementation.
pub mod accounts;
pub mod audit;
pub mod catalog;
pub mod changes;
pub mod db;
pub mod entities;
pub mod error;
pub mod feed;
pub mod id;
pub mod keys;
pub mod leaks;
pub mod limits;
pub mod mail;
pub mod notify;
pub mod outbox;
pub mod secret_key;
pub mod service;
pub mod sessions;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;
pub mod usage;
pub mod verification;
pub mod webhooks;

pub use db::Database;
pub use error::DomainError;
