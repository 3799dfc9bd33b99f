//! The domain layer's error type.
use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidDatabaseUrl { url: String, reason: String },
    /// A setting or file the operator provided is unusable.
    #[error("{0}")]
    Config(String),
    /// Something that is not the caller's fault; logged, and shown to users as a generic error.
    #[error("internal error: {0}")]
    Internal(String),
}
