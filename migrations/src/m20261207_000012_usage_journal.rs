//! The usage journal (issue 14): under load, each flush writes the counts of the minutes still
//! open as one row holding all of them (a compact blob), instead of one upsert per key-minute;
//! when a minute closes, its journal rows are deleted and their counts added to `usage_buckets`
//! in the same transaction, so every count reaches the buckets exactly once. Rows left by an
//! instance that died are folded into the buckets by whoever finds them old enough.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageJournal::Table)
                    .col(big_pk_auto(UsageJournal::Id))
                    .col(string_len(UsageJournal::Instance, 40))
                    // The newest minute (Unix seconds) counted in the row: the row is folded
                    // when that minute closes.
                    .col(big_integer(UsageJournal::Minute))
                    // Unix seconds.
                    .col(big_integer(UsageJournal::CreatedAt))
                    .col(big_integer(UsageJournal::Verifications))
                    .col(blob(UsageJournal::Entries))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_journal_instance_minute")
                    .table(UsageJournal::Table)
                    .col(UsageJournal::Instance)
                    .col(UsageJournal::Minute)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_journal_created_at")
                    .table(UsageJournal::Table)
                    .col(UsageJournal::CreatedAt)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            // Rows are written once and read at most once: compressing them would cost
            // PostgreSQL more CPU than the bytes it saves.
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE usage_journal ALTER COLUMN entries SET STORAGE EXTERNAL",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UsageJournal::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UsageJournal {
    Table,
    Id,
    Instance,
    Minute,
    CreatedAt,
    Verifications,
    Entries,
}
