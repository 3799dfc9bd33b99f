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
        // The primary key leads with (width, start), so the minutes being counted now are
        // appended at the end of the tree; the second index serves one key's charts. On SQLite
        // the table is the primary key's tree itself (WITHOUT ROWID): one tree less per write.
        let without_rowid = match manager.get_database_backend() {
            DatabaseBackend::Sqlite => " WITHOUT ROWID",
            _ => "",
        };
        let conn = manager.get_connection();
        conn.execute_unprepared(&format!(
            "CREATE TABLE usage_buckets ( \
               width INTEGER NOT NULL, \
               start BIGINT NOT NULL, \
               key_id VARCHAR(40) NOT NULL, \
               code VARCHAR(24) NOT NULL, \
               count BIGINT NOT NULL, \
               PRIMARY KEY (width, start, key_id, code) \
             ){without_rowid}"
        ))
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_buckets_key")
                    .table(UsageBuckets::Table)
                    .col(UsageBuckets::KeyId)
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
