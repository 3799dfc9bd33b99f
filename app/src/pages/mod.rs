//! One module per page.
pub mod admin_catalog;
pub mod admin_leaks;
pub mod admin_users;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod dashboard;
pub mod docs;
pub mod error;
pub mod hygiene;
pub mod keys;
pub mod landing;
pub mod not_found;
pub mod settings;
pub mod webhooks;
