//! SeaORM entities: the rows as stored. Domain types and wire DTOs are separate types.
pub mod audit_event;
pub mod auth_throttle;
pub mod recovery_code;
pub mod session;
pub mod setting;
pub mod user;
