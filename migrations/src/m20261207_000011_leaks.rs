//! Leak reports (issue 16): each reported token (as its SHA-256), who reported it, where it was
//! found, whether it was a Keyport key and what was done to it.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LeakReports::Table)
                    .col(big_pk_auto(LeakReports::Id))
                    .col(timestamp_with_time_zone(LeakReports::ReceivedAt))
                    .col(string_len(LeakReports::Reporter, 120))
                    .col(string_len(LeakReports::TokenHash, 64))
                    .col(string_len(LeakReports::TokenType, 100))
                    .col(string_len(LeakReports::Url, 2048))
                    .col(string_len(LeakReports::Source, 100))
                    .col(string_len(LeakReports::Label, 20))
                    .col(string_len_null(LeakReports::KeyId, 40))
                    .col(string_len(LeakReports::Action, 20))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LeakReports::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LeakReports {
    Table,
    Id,
    ReceivedAt,
    Reporter,
    TokenHash,
    TokenType,
    Url,
    Source,
    Label,
    KeyId,
    Action,
}
