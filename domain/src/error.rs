//! The domain layer's error type.
use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidDatabaseUrl { url: String, reason: String },
}
