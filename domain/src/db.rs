//! Opening the database (SQLite file by default, PostgreSQL for larger deployments), applying
//! migrations and checking that it answers.
use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use crate::DomainError;

/// SQLite page cache in all, by default (MiB).
pub const DEFAULT_SQLITE_CACHE_MIB: u32 = 64;
/// Connections to a SQLite file.
const SQLITE_CONNECTIONS: u32 = 8;

/// The PostgreSQL advisory lock migrations run under ("keyport" in ASCII).
const MIGRATION_LOCK: i64 = 0x6b_6579_706f_7274;

/// A pooled connection to Keyport's database. Cheap to clone. Its `Debug` form shows the URL
/// without its password.
#[derive(Clone)]
pub struct Database {
    conn: DatabaseConnection,
    url: std::sync::Arc<str>,
}

impl Database {
    /// Connects to `url` (`sqlite://path`, `sqlite::memory:` or `postgres://...`).
    ///
    /// SQLite runs in WAL mode with `synchronous=FULL`, so a committed write survives a crash or
    /// power loss; the file is created when missing.
    pub async fn connect(url: &str) -> Result<Self, DomainError> {
        Self::connect_with(url, DEFAULT_SQLITE_CACHE_MIB).await
    }

    /// [`Database::connect`] with `sqlite_cache_mib` of SQLite page cache in all (shared among
    /// the pool's connections; ignored on PostgreSQL).
    pub async fn connect_with(url: &str, sqlite_cache_mib: u32) -> Result<Self, DomainError> {
        let backend = backend_of(url)?;
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .sqlx_logging(false)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10));
        if backend == DatabaseBackend::Sqlite {
            let connections = if url.contains(":memory:") || url.contains("mode=memory") {
                // Every connection to an in-memory database is a new, empty database: keep exactly one.
                options.max_connections(1).min_connections(1);
                1
            } else {
                options.max_connections(SQLITE_CONNECTIONS);
                SQLITE_CONNECTIONS
            };
            // Each connection has its own page cache (a negative `cache_size` is in KiB): the
            // budget is split so the process' memory does not grow with the database's size.
            let cache_kib = Ord::max(
                u64::from(sqlite_cache_mib) * 1024 / u64::from(connections),
                1024,
            );
            options.map_sqlx_sqlite_opts(move |o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
                    .pragma("cache_size", format!("-{cache_kib}"))
            });
        } else {
            options.max_connections(16);
        }
        let conn = sea_orm::Database::connect(options).await?;
        Ok(Self {
            conn,
            url: url.into(),
        })
    }

    /// Connects and brings the schema up to date.
    pub async fn connect_and_migrate(url: &str) -> Result<Self, DomainError> {
        Self::connect_with_and_migrate(url, DEFAULT_SQLITE_CACHE_MIB).await
    }

    /// [`Database::connect_with`], then brings the schema up to date.
    pub async fn connect_with_and_migrate(
        url: &str,
        sqlite_cache_mib: u32,
    ) -> Result<Self, DomainError> {
        let db = Self::connect_with(url, sqlite_cache_mib).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Applies every pending migration. On PostgreSQL, under an advisory lock held on a
    /// connection of its own: instances (or `keyport migrate`) started at the same moment take
    /// turns, and the later ones find nothing left to do.
    pub async fn migrate(&self) -> Result<(), DomainError> {
        if self.backend() != DatabaseBackend::Postgres {
            Migrator::up(&self.conn, None).await?;
            return Ok(());
        }
        let mut options = ConnectOptions::new(self.url.to_string());
        options
            .sqlx_logging(false)
            .max_connections(1)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10));
        let lock = sea_orm::Database::connect(options).await?;
        lock.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .await?;
        let result = Migrator::up(&self.conn, None).await;
        // Closing the lock's only connection releases the lock in any case.
        lock.execute_unprepared(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            .await
            .ok();
        lock.close().await.ok();
        Ok(result?)
    }

    /// Names of the migrations applied so far, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<String>, DomainError> {
        Ok(Migrator::get_applied_migrations(&self.conn)
            .await?
            .iter()
            .map(|m| m.name().to_owned())
            .collect())
    }

    /// Names of the migrations this build knows, oldest first.
    pub fn known_migrations() -> Vec<String> {
        Migrator::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect()
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DomainError> {
        self.conn.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.conn.get_database_backend()
    }

    /// The URL this database was opened with (for connections outside the pool, such as the
    /// change feed's listener). Contains the password, if any: never log it unredacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Starts a transaction that writes. On SQLite it takes the write lock at `BEGIN`
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes cannot upgrade
    /// its lock after another connection committed in between, and SQLite then fails at once
    /// with "database is locked" instead of waiting out the busy timeout. On PostgreSQL this is
    /// a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, sea_orm::DbErr> {
        self.conn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
    }

    /// Runs a query of one integer (a count, a sum; NULL reads as 0): for the benchmarks'
    /// checks of what the database holds. Never with user input.
    pub async fn scalar(&self, sql: &str) -> Result<i64, DomainError> {
        use sea_orm::{ConnectionTrait, Statement};
        let row = self
            .conn
            .query_one_raw(Statement::from_string(
                self.conn.get_database_backend(),
                sql.to_owned(),
            ))
            .await?;
        Ok(match row {
            Some(row) => row.try_get_by_index::<Option<i64>>(0)?.unwrap_or(0),
            None => 0,
        })
    }

    pub async fn close(self) -> Result<(), DomainError> {
        self.conn.close().await?;
        Ok(())
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("url", &redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

fn backend_of(url: &str) -> Result<DatabaseBackend, DomainError> {
    if url.starts_with("sqlite:") {
        Ok(DatabaseBackend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(DatabaseBackend::Postgres)
    } else {
        Err(DomainError::InvalidDatabaseUrl {
            url: redact_url(url),
            reason: "expected a sqlite:// or postgres:// URL".into(),
        })
    }
}

/// The URL with any password replaced, fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://kp:s3cret@db:5432/keyport"),
            "postgres://kp:***@db:5432/keyport"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(
            redact_url("sqlite://data/keyport.db"),
            "sqlite://data/keyport.db"
        );
    }

    #[tokio::test]
    async fn debug_output_hides_the_password() {
        let db = Database {
            conn: sea_orm::DatabaseConnection::default(),
            url: "postgres://kp:s3cret@db:5432/keyport".into(),
        };
        let shown = format!("{db:?}");
        assert!(
            shown.contains("postgres://kp:***@db:5432/keyport"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn rejects_unknown_schemes() {
        let err = backend_of("mysql://localhost/db").unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a sqlite:// or postgres:// URL")
        );
    }
}
