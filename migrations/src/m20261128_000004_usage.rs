//! Verification usage and quota state: per key, per minute, per outcome counters (flushed from
//! memory every few seconds), and each key's quota use in its current period, so a restart does
//! not reset quotas.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageMinutes::Table)
                    .col(string_len(UsageMinutes::KeyId, 40))
                    .col(timestamp_with_time_zone(UsageMinutes::Minute))
                    .col(string_len(UsageMinutes::Code, 24))
                    .col(big_integer(UsageMinutes::Count))
                    .primary_key(
                        Index::create()
                            .col(UsageMinutes::KeyId)
                            .col(UsageMinutes::Minute)
                            .col(UsageMinutes::Code),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_minutes_minute")
                    .table(UsageMinutes::Table)
                    .col(UsageMinutes::Minute)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(KeyQuotas::Table)
                    .col(string_len(KeyQuotas::KeyId, 40).primary_key())
                    .col(timestamp_with_time_zone(KeyQuotas::PeriodStart))
                    .col(big_integer(KeyQuotas::Used))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            KeyQuotas::Table.into_iden(),
            UsageMinutes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum UsageMinutes {
    Table,
    KeyId,
    Minute,
    Code,
    Count,
}

#[derive(DeriveIden)]
enum KeyQuotas {
    Table,
    KeyId,
    PeriodStart,
    Used,
}
