//! The `verify` scope of the built-in `keyport` API (issue 12): with `--verify-requires-token`,
//! only a key holding it may call `/v1/keys/verify` and `/v1/auth`.
use sea_orm_migration::prelude::*;

const KEYPORT_API_ID: &str = "api_0000000000000keyport";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(ApiScopes::Table)
                    .columns([ApiScopes::ApiId, ApiScopes::Name, ApiScopes::Description])
                    .values_panic([
                        KEYPORT_API_ID.into(),
                        "verify".into(),
                        "Call /v1/keys/verify and /v1/auth (gateways, when verification requires a token)"
                            .into(),
                    ])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(ApiScopes::Table)
                    .and_where(Expr::col(ApiScopes::ApiId).eq(KEYPORT_API_ID))
                    .and_where(Expr::col(ApiScopes::Name).eq("verify"))
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ApiScopes {
    Table,
    ApiId,
    Name,
    Description,
}
