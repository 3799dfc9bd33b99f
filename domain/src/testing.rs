//! Fresh databases for tests: an in-memory SQLite one, and, when `KEYPORT_TEST_POSTGRES_URL` is
//! set, a brand-new PostgreSQL database per test so tests never see each other's rows.
use rand::Rng;
use sea_orm::ConnectionTrait;

use crate::Database;

/// The environment variable naming the PostgreSQL server used by the tests.
pub const POSTGRES_ENV: &str = "KEYPORT_TEST_POSTGRES_URL";

/// A migrated database for one test. Call [`TestDb::cleanup`] at the end to drop a PostgreSQL one.
pub struct TestDb {
    pub db: Database,
    pub url: String,
    drop_on_cleanup: Option<(String, String)>,
}

impl TestDb {
    /// A migrated in-memory SQLite database.
    pub async fn sqlite_memory() -> TestDb {
        let url = "sqlite::memory:".to_owned();
        let db = Database::connect_and_migrate(&url)
            .await
            .expect("in-memory SQLite opens and migrates");
        TestDb {
            db,
            url,
            drop_on_cleanup: None,
        }
    }

    /// A fresh, empty (not yet migrated) PostgreSQL database, or `None` when
    /// `KEYPORT_TEST_POSTGRES_URL` is unset.
    pub async fn postgres_empty() -> Option<TestDb> {
        let admin_url = std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty())?;
        let name = format!("keyport_test_{:016x}", rand::rng().random::<u64>());
        let admin = Database::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but PostgreSQL is unreachable: {e}"));
        admin
            .conn()
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create a fresh test database");
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        let db = Database::connect(&url)
            .await
            .expect("connect to the fresh test database");
        Some(TestDb {
            db,
            url,
            drop_on_cleanup: Some((admin_url, name)),
        })
    }

    /// A fresh, migrated PostgreSQL database, or `None` when `KEYPORT_TEST_POSTGRES_URL` is unset.
    pub async fn postgres() -> Option<TestDb> {
        let test = Self::postgres_empty().await?;
        test.db
            .migrate()
            .await
            .expect("migrations apply on PostgreSQL");
        Some(test)
    }

    /// Closes the pool and drops the database if this test created one.
    pub async fn cleanup(self) {
        self.db.close().await.ok();
        if let Some((admin_url, name)) = self.drop_on_cleanup {
            let admin = Database::connect(&admin_url)
                .await
                .expect("reconnect to drop the test database");
            admin
                .conn()
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .expect("drop the test database");
            admin.close().await.ok();
        }
    }
}

/// `url` with its database name replaced by `name`, keeping any query string.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
    }
}
