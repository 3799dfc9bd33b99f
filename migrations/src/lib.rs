//! Keyport's database schema. Each migration names its own tables and columns (no import from
//! `domain`), so an old migration keeps meaning what it meant when it shipped.
pub use sea_orm_migration::prelude::*;

mod m20261128_000001_settings;
mod m20261128_000002_accounts;
mod m20261128_000003_keys;
mod m20261128_000004_usage;
mod m20261128_000005_usage_rollups;
mod m20261202_000006_verify_scope;
mod m20261202_000007_plan_limit_scope;
mod m20261202_000008_legacy_recovery_codes;
mod m20261206_000009_email;
mod m20261207_000010_webhooks;
mod m20261207_000011_leaks;
mod m20261207_000012_usage_journal;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_settings::Migration),
            Box::new(m20261128_000002_accounts::Migration),
            Box::new(m20261128_000003_keys::Migration),
            Box::new(m20261128_000004_usage::Migration),
            Box::new(m20261128_000005_usage_rollups::Migration),
            Box::new(m20261202_000006_verify_scope::Migration),
            Box::new(m20261202_000007_plan_limit_scope::Migration),
            Box::new(m20261202_000008_legacy_recovery_codes::Migration),
            Box::new(m20261206_000009_email::Migration),
            Box::new(m20261207_000010_webhooks::Migration),
            Box::new(m20261207_000011_leaks::Migration),
            Box::new(m20261207_000012_usage_journal::Migration),
        ]
    }
}
