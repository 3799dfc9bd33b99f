//! Usage rollups (issue 6): verification counts per key, per outcome, in minute, hour and day
//! buckets (`width` 60, 3,600 or 86,400 seconds; `start` in Unix seconds, UTC), compacted from
//! minutes to hours to days by a background job; and the anomaly alerts computed from them.
//! Replaces `usage_minutes`, whose rows become minute buckets.
use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageBuckets::Table)
                    .col(string_len(UsageBuckets::KeyId, 40))
                    .col(integer(UsageBuckets::Width))
                    .col(big_integer(UsageBuckets::Start))
                    .col(string_len(UsageBuckets::Code, 24))
                    .col(big_integer(UsageBuckets::Count))
                    .primary_key(
                        Index::create()
                            .col(UsageBuckets::KeyId)
                            .col(UsageBuckets::Width)
                            .col(UsageBuckets::Start)
                            .col(UsageBuckets::Code),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_buckets_width_start")
                    .table(UsageBuckets::Table)
                    .col(UsageBuckets::Width)
                    .col(UsageBuckets::Start)
                    .to_owned(),
            )
            .await?;
        // Counted minutes so far become minute buckets.
        let epoch = match manager.get_database_backend() {
            DatabaseBackend::Postgres => "CAST(EXTRACT(EPOCH FROM minute) AS BIGINT)",
            _ => "CAST(strftime('%s', minute) AS INTEGER)",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO usage_buckets (key_id, width, start, code, count) \
                 SELECT key_id, 60, {epoch}, code, count FROM usage_minutes"
            ))
            .await?;
        manager
            .drop_table(Table::drop().table(UsageMinutes::Table).to_owned())
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UsageAlerts::Table)
                    .col(string_len(UsageAlerts::Id, 40).primary_key())
                    .col(string_len(UsageAlerts::KeyId, 40))
                    .col(string_len(UsageAlerts::OwnerId, 40))
                    .col(string_len(UsageAlerts::Rule, 24))
                    .col(big_integer(UsageAlerts::WindowStart))
                    .col(big_integer(UsageAlerts::WindowEnd))
                    .col(big_integer(UsageAlerts::Observed))
                    .col(big_integer(UsageAlerts::Baseline))
                    .col(text(UsageAlerts::Detail))
                    .col(timestamp_with_time_zone(UsageAlerts::CreatedAt))
                    .col(timestamp_with_time_zone_null(UsageAlerts::AcknowledgedAt))
                    .col(string_len_null(UsageAlerts::AcknowledgedBy, 40))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_alerts_once")
                    .table(UsageAlerts::Table)
                    .col(UsageAlerts::KeyId)
                    .col(UsageAlerts::Rule)
                    .col(UsageAlerts::WindowStart)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_alerts_owner")
                    .table(UsageAlerts::Table)
                    .col(UsageAlerts::OwnerId)
                    .col(UsageAlerts::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UsageAlerts::Table).to_owned())
            .await?;
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
            .drop_table(Table::drop().table(UsageBuckets::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UsageBuckets {
    Table,
    KeyId,
    Width,
    Start,
    Code,
    Count,
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
enum UsageAlerts {
    Table,
    Id,
    KeyId,
    OwnerId,
    Rule,
    WindowStart,
    WindowEnd,
    Observed,
    Baseline,
    Detail,
    CreatedAt,
    AcknowledgedAt,
    AcknowledgedBy,
}
