//! One module per page.
pub mod admin_users;
pub mod auth;
pub mod error;
pub mod landing;
pub mod not_found;
pub mod settings;
