//! API keys and what they grant: the API catalog (APIs, scopes, versions), plans, and the keys
//! themselves. Seeds the built-in `keyport` API, whose scopes govern the management REST API, and
//! the default plan for self-service sign-ups.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Ids of the seeded rows. Frozen: later code looks the built-ins up by slug/flag, not by id.
const KEYPORT_API_ID: &str = "api_0000000000000keyport";
const FREE_PLAN_ID: &str = "pln_0000000000000000free";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Plans::Table)
                    .col(string_len(Plans::Id, 40).primary_key())
                    .col(string_len_uniq(Plans::Name, 100))
                    .col(integer_null(Plans::RateLimit))
                    .col(integer_null(Plans::RatePeriodS))
                    .col(integer_null(Plans::RateBurst))
                    .col(big_integer_null(Plans::QuotaLimit))
                    .col(string_len_null(Plans::QuotaPeriod, 8))
                    .col(integer_null(Plans::MaxActiveKeys))
                    .col(integer_null(Plans::MaxLifetimeDays))
                    .col(boolean(Plans::IsDefault))
                    .col(timestamp_with_time_zone(Plans::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(string_len_null(Users::PlanId, 40))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Apis::Table)
                    .col(string_len(Apis::Id, 40).primary_key())
                    .col(string_len_uniq(Apis::Slug, 64))
                    .col(string_len(Apis::Name, 200))
                    .col(text(Apis::Description))
                    .col(boolean(Apis::BuiltIn))
                    .col(timestamp_with_time_zone(Apis::CreatedAt))
                    .col(timestamp_with_time_zone(Apis::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiScopes::Table)
                    .col(big_pk_auto(ApiScopes::Id))
                    .col(string_len(ApiScopes::ApiId, 40))
                    .col(string_len(ApiScopes::Name, 100))
                    .col(text(ApiScopes::Description))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiScopes::Table, ApiScopes::ApiId)
                            .to(Apis::Table, Apis::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_scopes_api_name")
                    .table(ApiScopes::Table)
                    .col(ApiScopes::ApiId)
                    .col(ApiScopes::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiVersions::Table)
                    .col(big_pk_auto(ApiVersions::Id))
                    .col(string_len(ApiVersions::ApiId, 40))
                    .col(string_len(ApiVersions::Name, 32))
                    .col(string_len(ApiVersions::Status, 16))
                    .col(timestamp_with_time_zone_null(ApiVersions::SunsetAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiVersions::Table, ApiVersions::ApiId)
                            .to(Apis::Table, Apis::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_versions_api_name")
                    .table(ApiVersions::Table)
                    .col(ApiVersions::ApiId)
                    .col(ApiVersions::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(big_pk_auto(ApiKeys::Seq))
                    .col(string_len_uniq(ApiKeys::Id, 40))
                    .col(string_len(ApiKeys::OwnerId, 40))
                    .col(string_len(ApiKeys::ApiId, 40))
                    .col(string_len(ApiKeys::Name, 200))
                    .col(string_len(ApiKeys::Start, 16))
                    .col(string_len_uniq(ApiKeys::Hash, 64))
                    .col(text(ApiKeys::Scopes))
                    .col(text(ApiKeys::IpAllowlist))
                    .col(integer_null(ApiKeys::RateLimit))
                    .col(integer_null(ApiKeys::RatePeriodS))
                    .col(big_integer_null(ApiKeys::QuotaLimit))
                    .col(string_len_null(ApiKeys::QuotaPeriod, 8))
                    .col(boolean(ApiKeys::Enabled))
                    .col(string_len(ApiKeys::CreatedBy, 40))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(timestamp_with_time_zone(ApiKeys::UpdatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .col(text_null(ApiKeys::RevokeReason))
                    .col(string_len_null(ApiKeys::Replaces, 40))
                    .col(string_len_null(ApiKeys::ReplacedBy, 40))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiKeys::Table, ApiKeys::OwnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiKeys::Table, ApiKeys::ApiId)
                            .to(Apis::Table, Apis::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_api_keys_owner", ApiKeys::OwnerId),
            ("idx_api_keys_api", ApiKeys::ApiId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(ApiKeys::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_target")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::Target)
                    .to_owned(),
            )
            .await?;
        seed(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_audit_events_target")
                    .table(AuditEvents::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            ApiKeys::Table.into_iden(),
            ApiVersions::Table.into_iden(),
            ApiScopes::Table.into_iden(),
            Apis::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::PlanId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Plans::Table).to_owned())
            .await
    }
}

async fn seed(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let now = chrono::Utc::now();
    manager
        .exec_stmt(
            Query::insert()
                .into_table(Plans::Table)
                .columns([
                    Plans::Id,
                    Plans::Name,
                    Plans::RateLimit,
                    Plans::RatePeriodS,
                    Plans::RateBurst,
                    Plans::QuotaLimit,
                    Plans::QuotaPeriod,
                    Plans::MaxActiveKeys,
                    Plans::MaxLifetimeDays,
                    Plans::IsDefault,
                    Plans::CreatedAt,
                ])
                .values_panic([
                    FREE_PLAN_ID.into(),
                    "Free".into(),
                    10.into(),
                    1.into(),
                    20.into(),
                    10_000i64.into(),
                    "day".into(),
                    10.into(),
                    365.into(),
                    true.into(),
                    now.into(),
                ])
                .to_owned(),
        )
        .await?;
    manager
        .exec_stmt(
            Query::insert()
                .into_table(Apis::Table)
                .columns([
                    Apis::Id,
                    Apis::Slug,
                    Apis::Name,
                    Apis::Description,
                    Apis::BuiltIn,
                    Apis::CreatedAt,
                    Apis::UpdatedAt,
                ])
                .values_panic([
                    KEYPORT_API_ID.into(),
                    "keyport".into(),
                    "Keyport management API".into(),
                    "The REST API of this portal under /v1: manage your keys, read usage and the audit log from scripts and CI.".into(),
                    true.into(),
                    now.into(),
                    now.into(),
                ])
                .to_owned(),
        )
        .await?;
    let mut scopes = Query::insert()
        .into_table(ApiScopes::Table)
        .columns([ApiScopes::ApiId, ApiScopes::Name, ApiScopes::Description])
        .to_owned();
    for (name, description) in [
        ("keys:read", "List and read your keys"),
        ("keys:write", "Create, update, rotate and revoke your keys"),
        ("usage:read", "Read the usage of your keys"),
        ("audit:read", "Read your audit log"),
        ("admin", "Act on every user, key and API (admins only)"),
    ] {
        scopes.values_panic([KEYPORT_API_ID.into(), name.into(), description.into()]);
    }
    manager.exec_stmt(scopes).await?;
    manager
        .exec_stmt(
            Query::insert()
                .into_table(ApiVersions::Table)
                .columns([ApiVersions::ApiId, ApiVersions::Name, ApiVersions::Status])
                .values_panic([KEYPORT_API_ID.into(), "v1".into(), "active".into()])
                .to_owned(),
        )
        .await?;
    Ok(())
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    PlanId,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Target,
}

#[derive(DeriveIden)]
enum Plans {
    Table,
    Id,
    Name,
    RateLimit,
    RatePeriodS,
    RateBurst,
    QuotaLimit,
    QuotaPeriod,
    MaxActiveKeys,
    MaxLifetimeDays,
    IsDefault,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Apis {
    Table,
    Id,
    Slug,
    Name,
    Description,
    BuiltIn,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApiScopes {
    Table,
    Id,
    ApiId,
    Name,
    Description,
}

#[derive(DeriveIden)]
enum ApiVersions {
    Table,
    Id,
    ApiId,
    Name,
    Status,
    SunsetAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Seq,
    Id,
    OwnerId,
    ApiId,
    Name,
    Start,
    Hash,
    Scopes,
    IpAllowlist,
    RateLimit,
    RatePeriodS,
    QuotaLimit,
    QuotaPeriod,
    Enabled,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
    RevokeReason,
    Replaces,
    ReplacedBy,
}
