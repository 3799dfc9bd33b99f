//! Webhooks (issue 16): the endpoints that developers (for their own keys) and admins (for the
//! whole platform) register, and each delivery attempt. Deliveries themselves are rows of the
//! outbox (channel `webhook`), so they share its lease, backoff and admin view.
//!
//! Also the `webhooks:read` and `webhooks:write` scopes of the built-in `keyport` API.
use sea_orm_migration::{prelude::*, schema::*};

const KEYPORT_API_ID: &str = "api_0000000000000keyport";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(string_len(WebhookEndpoints::Id, 40).primary_key())
                    .col(string_len(WebhookEndpoints::OwnerId, 40))
                    .col(boolean(WebhookEndpoints::Platform).default(false))
                    .col(string_len(WebhookEndpoints::Url, 2048))
                    .col(string_len(WebhookEndpoints::Description, 200).default(""))
                    .col(text(WebhookEndpoints::Events))
                    .col(boolean(WebhookEndpoints::Enabled).default(true))
                    .col(string_len_null(WebhookEndpoints::DisabledReason, 300))
                    .col(blob(WebhookEndpoints::Secret))
                    .col(blob_null(WebhookEndpoints::PreviousSecret))
                    .col(timestamp_with_time_zone_null(
                        WebhookEndpoints::PreviousSecretUntil,
                    ))
                    .col(timestamp_with_time_zone_null(
                        WebhookEndpoints::FailingSince,
                    ))
                    .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookEndpoints::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookEndpoints::Table, WebhookEndpoints::OwnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_endpoints_owner")
                    .table(WebhookEndpoints::Table)
                    .col(WebhookEndpoints::OwnerId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(big_pk_auto(WebhookAttempts::Id))
                    .col(big_integer(WebhookAttempts::OutboxId))
                    .col(string_len(WebhookAttempts::EndpointId, 40))
                    .col(integer(WebhookAttempts::Attempt))
                    .col(timestamp_with_time_zone(WebhookAttempts::At))
                    .col(integer_null(WebhookAttempts::StatusCode))
                    .col(integer(WebhookAttempts::LatencyMs))
                    .col(text_null(WebhookAttempts::Error))
                    .col(text_null(WebhookAttempts::ResponseBody))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_attempts_outbox")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::OutboxId)
                    .to_owned(),
            )
            .await?;
        // The delivery log of one endpoint: its outbox rows, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_recipient")
                    .table(Outbox::Table)
                    .col(Outbox::Channel)
                    .col(Outbox::Recipient)
                    .col(Outbox::Id)
                    .to_owned(),
            )
            .await?;
        let mut scopes = Query::insert()
            .into_table(ApiScopes::Table)
            .columns([ApiScopes::ApiId, ApiScopes::Name, ApiScopes::Description])
            .to_owned();
        for (name, description) in [
            (
                "webhooks:read",
                "List your webhook endpoints and their deliveries",
            ),
            (
                "webhooks:write",
                "Create, change, delete and test your webhook endpoints",
            ),
        ] {
            scopes.values_panic([KEYPORT_API_ID.into(), name.into(), description.into()]);
        }
        manager.exec_stmt(scopes).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(ApiScopes::Table)
                    .and_where(Expr::col(ApiScopes::ApiId).eq(KEYPORT_API_ID))
                    .and_where(
                        Expr::col(ApiScopes::Name).is_in(["webhooks:read", "webhooks:write"]),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_outbox_recipient")
                    .table(Outbox::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookAttempts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookEndpoints::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Channel,
    Recipient,
    Id,
}

#[derive(DeriveIden)]
enum ApiScopes {
    Table,
    ApiId,
    Name,
    Description,
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    OwnerId,
    Platform,
    Url,
    Description,
    Events,
    Enabled,
    DisabledReason,
    Secret,
    PreviousSecret,
    PreviousSecretUntil,
    FailingSince,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    OutboxId,
    EndpointId,
    Attempt,
    At,
    StatusCode,
    LatencyMs,
    Error,
    ResponseBody,
}
