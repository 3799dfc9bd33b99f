//! Plans choose whether their rate limit and quota apply to each key (`key`, as before) or are
//! shared by all of a developer's keys (`developer`) (issue 12).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Plans::Table)
                    .add_column(string_len(Plans::LimitScope, 16).default("key"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Plans::Table)
                    .drop_column(Plans::LimitScope)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Plans {
    Table,
    LimitScope,
}
