//! SeaORM entities: the rows as stored. Domain types and wire DTOs are separate types.
pub mod api;
pub mod api_key;
pub mod api_scope;
pub mod api_version;
pub mod audit_event;
pub mod auth_throttle;
pub mod email_token;
pub mod key_quota;
pub mod notice_sent;
pub mod outbox;
pub mod plan;
pub mod recovery_code;
pub mod session;
pub mod setting;
pub mod usage_alert;
pub mod usage_bucket;
pub mod user;
