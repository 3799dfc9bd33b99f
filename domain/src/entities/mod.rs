//! SeaORM entities: the rows as stored. Domain types and wire DTOs are separate types.
pub mod setting;
