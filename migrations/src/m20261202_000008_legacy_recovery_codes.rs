//! Recovery codes issued before issue 12 may have 50 bits, stored as unsalted SHA-256 (below
//! ASVS 6.5.2's 112 bits). This marks every code that exists at upgrade time as `legacy:<sha256>`;
//! the server's background job then rewraps each as an argon2id hash (per-code salt) of that
//! SHA-256, and sign-in accepts both forms. PostgreSQL's `code_hash` grows from 64 characters to
//! fit the PHC string (SQLite does not enforce the length).
use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE recovery_codes ALTER COLUMN code_hash TYPE VARCHAR(255)",
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE recovery_codes SET code_hash = 'legacy:' || code_hash \
                 WHERE code_hash NOT LIKE 'legacy:%' AND code_hash NOT LIKE '$argon2%'",
            )
            .await?;
        Ok(())
    }

    /// Codes not rewrapped yet go back to plain SHA-256; rewrapped ones cannot (their owners
    /// generate new codes).
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE recovery_codes SET code_hash = substr(code_hash, 8) \
                 WHERE code_hash LIKE 'legacy:%'",
            )
            .await?;
        Ok(())
    }
}
