//! The schema applies on SQLite (memory and file) and PostgreSQL, and rows round-trip through it.
use domain::{Database, settings, testing::TestDb};

async fn round_trip(db: &Database) {
    assert_eq!(settings::get(db, "signup").await.unwrap(), None);
    settings::set(db, "signup", "open").await.unwrap();
    assert_eq!(
        settings::get(db, "signup").await.unwrap().as_deref(),
        Some("open")
    );
    settings::set(db, "signup", "closed").await.unwrap();
    assert_eq!(
        settings::get(db, "signup").await.unwrap().as_deref(),
        Some("closed")
    );
}

async fn assert_fully_migrated(db: &Database) {
    let applied = db.applied_migrations().await.unwrap();
    assert!(!applied.is_empty());
    assert_eq!(applied, Database::known_migrations());
}

#[tokio::test]
async fn sqlite_memory_migrates_and_round_trips() {
    let t = TestDb::sqlite_memory().await;
    assert_fully_migrated(&t.db).await;
    round_trip(&t.db).await;
    t.db.ping().await.unwrap();
    t.cleanup().await;
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_keeps_data_across_restarts() {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keyport.db", dir.path().display());

    let db = Database::connect_and_migrate(&url).await.unwrap();
    settings::set(&db, "instance", "abc").await.unwrap();
    let mode = db
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            db.backend(),
            "PRAGMA journal_mode",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<String>(0)
        .unwrap();
    assert_eq!(mode, "wal");
    db.close().await.unwrap();
    assert!(dir.path().join("keyport.db").exists());

    // Migrating again is a no-op and the data is still there.
    let db = Database::connect_and_migrate(&url).await.unwrap();
    assert_fully_migrated(&db).await;
    assert_eq!(
        settings::get(&db, "instance").await.unwrap().as_deref(),
        Some("abc")
    );
    db.close().await.unwrap();
}

/// A transaction that reads and then writes (sign-up with a taken address, key rotation...)
/// must wait for a concurrent writer on a SQLite file, not fail: a deferred `BEGIN` pins the
/// snapshot at the first read, and once another connection commits, SQLite refuses the
/// upgrade to a write at once ("database is locked") without waiting out the busy timeout.
#[tokio::test]
async fn sqlite_file_transactions_that_read_then_write_wait_for_other_writers() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keyport.db", dir.path().display());
    let db = Database::connect_and_migrate(&url).await.unwrap();
    let run = |sql: &str| sea_orm::Statement::from_string(db.backend(), sql.to_owned());
    db.conn()
        .execute_raw(run("CREATE TABLE scratch (who TEXT NOT NULL)"))
        .await
        .unwrap();

    let txn = db.begin_write().await.unwrap();
    txn.query_one_raw(run("SELECT count(*) FROM scratch"))
        .await
        .unwrap();
    // Another connection writes while the transaction is between its read and its write.
    let other = {
        let db = db.clone();
        tokio::spawn(async move {
            db.conn()
                .execute_raw(sea_orm::Statement::from_string(
                    db.backend(),
                    "INSERT INTO scratch (who) VALUES ('other')",
                ))
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    txn.execute_raw(run("INSERT INTO scratch (who) VALUES ('transaction')"))
        .await
        .expect("the transaction's write goes through");
    txn.commit().await.unwrap();
    other
        .await
        .unwrap()
        .expect("the other writer waited its turn");
    let count = db
        .conn()
        .query_one_raw(run("SELECT count(*) FROM scratch"))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(count, 2);

    // What a plain deferred transaction does in the same order, for contrast: it is refused.
    let txn = db.conn().begin().await.unwrap();
    txn.query_one_raw(run("SELECT count(*) FROM scratch"))
        .await
        .unwrap();
    db.conn()
        .execute_raw(run("INSERT INTO scratch (who) VALUES ('other again')"))
        .await
        .unwrap();
    let refused = txn
        .execute_raw(run("INSERT INTO scratch (who) VALUES ('deferred')"))
        .await
        .expect_err("a deferred transaction cannot write over a newer commit");
    assert!(refused.to_string().contains("locked"), "{refused}");
    txn.rollback().await.unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn postgres_migrates_and_round_trips() {
    // `./dev.sh test` runs tests named `postgres` only when KEYPORT_TEST_POSTGRES_URL is set.
    let t = TestDb::postgres_empty()
        .await
        .expect("KEYPORT_TEST_POSTGRES_URL must be set for PostgreSQL tests");
    t.db.migrate().await.unwrap();
    assert_fully_migrated(&t.db).await;
    // Re-running migrations is a no-op.
    t.db.migrate().await.unwrap();
    round_trip(&t.db).await;
    t.cleanup().await;
}

#[tokio::test]
async fn unknown_database_schemes_are_a_clear_error() {
    let err = Database::connect("mysql://localhost/x").await.unwrap_err();
    assert!(
        err.to_string().contains("sqlite:// or postgres://"),
        "{err}"
    );
}

mod sessions {
    use chrono::{Duration, Utc};
    use domain::{
        Database,
        sessions::{self, StoredSession},
        testing::TestDb,
    };

    fn session(id: &str, user: Option<&str>, expires_in: Duration) -> StoredSession {
        StoredSession {
            id: id.into(),
            data: r#"{"user_id":"x"}"#.into(),
            expires_at: Utc::now() + expires_in,
            user_id: user.map(Into::into),
        }
    }

    async fn lifecycle(db: Database) {
        let now = Utc::now();
        assert!(
            sessions::create(&db, &session("s1", Some("usr_a"), Duration::minutes(30)))
                .await
                .unwrap()
        );
        // Same id again: refused, so the store can pick a fresh one.
        assert!(
            !sessions::create(&db, &session("s1", None, Duration::minutes(30)))
                .await
                .unwrap()
        );
        sessions::create(&db, &session("s2", Some("usr_a"), Duration::minutes(30)))
            .await
            .unwrap();
        sessions::create(&db, &session("s3", Some("usr_b"), Duration::minutes(30)))
            .await
            .unwrap();
        sessions::create(&db, &session("old", Some("usr_a"), Duration::minutes(-1)))
            .await
            .unwrap();

        assert_eq!(
            sessions::load(&db, "s1", now)
                .await
                .unwrap()
                .unwrap()
                .user_id
                .as_deref(),
            Some("usr_a")
        );
        assert!(
            sessions::load(&db, "old", now).await.unwrap().is_none(),
            "expired sessions never load"
        );
        assert_eq!(
            sessions::list_for_user(&db, "usr_a", now)
                .await
                .unwrap()
                .len(),
            2
        );

        let mut updated = session("s1", Some("usr_a"), Duration::hours(1));
        updated.data = r#"{"n":2}"#.into();
        sessions::save(&db, &updated).await.unwrap();
        assert_eq!(
            sessions::load(&db, "s1", now).await.unwrap().unwrap().data,
            r#"{"n":2}"#
        );

        // "Sign out other sessions" keeps the current one.
        assert_eq!(
            sessions::delete_for_user(&db, "usr_a", Some("s1"))
                .await
                .unwrap(),
            2
        );
        assert!(sessions::load(&db, "s2", now).await.unwrap().is_none());
        assert!(sessions::load(&db, "s1", now).await.unwrap().is_some());
        assert!(
            sessions::load(&db, "s3", now).await.unwrap().is_some(),
            "other users untouched"
        );

        sessions::delete(&db, "s1").await.unwrap();
        assert!(sessions::load(&db, "s1", now).await.unwrap().is_none());
        sessions::create(&db, &session("old2", None, Duration::minutes(-5)))
            .await
            .unwrap();
        assert_eq!(sessions::delete_expired(&db, now).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn sqlite_session_lifecycle() {
        let t = TestDb::sqlite_memory().await;
        lifecycle(t.db.clone()).await;
        t.cleanup().await;
    }

    #[tokio::test]
    async fn postgres_session_lifecycle() {
        let t = TestDb::postgres()
            .await
            .expect("KEYPORT_TEST_POSTGRES_URL must be set");
        lifecycle(t.db.clone()).await;
        t.cleanup().await;
    }
}

/// Upgrading keeps counted usage: `usage_minutes` rows become minute buckets.
async fn usage_minutes_survive_the_rollup_migration(db: &Database) {
    use chrono::TimeZone;
    use migrations::{Migrator, MigratorTrait};
    use sea_orm::{
        ConnectionTrait, Statement,
        sea_query::{Alias, Query},
    };
    let conn = db.conn();
    // Up to the migration before the rollups, as an earlier Keyport left it.
    Migrator::up(conn, Some(4)).await.unwrap();
    let minute = chrono::Utc
        .with_ymd_and_hms(2026, 11, 28, 9, 36, 0)
        .unwrap();
    let insert = Query::insert()
        .into_table(Alias::new("usage_minutes"))
        .columns([
            Alias::new("key_id"),
            Alias::new("minute"),
            Alias::new("code"),
            Alias::new("count"),
        ])
        .values_panic(["key_a".into(), minute.into(), "VALID".into(), 7i64.into()])
        .values_panic([
            "key_a".into(),
            minute.into(),
            "RATE_LIMITED".into(),
            2i64.into(),
        ])
        .to_owned();
    conn.execute(&insert).await.unwrap();
    Migrator::up(conn, None).await.unwrap();
    assert_fully_migrated(db).await;
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT width, start, code, count FROM usage_buckets WHERE key_id = 'key_a' ORDER BY code",
        ))
        .await
        .unwrap();
    let got: Vec<(i32, i64, String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "width").unwrap(),
                r.try_get("", "start").unwrap(),
                r.try_get("", "code").unwrap(),
                r.try_get("", "count").unwrap(),
            )
        })
        .collect();
    let t = minute.timestamp();
    assert_eq!(
        got,
        [
            (60, t, "RATE_LIMITED".to_owned(), 2),
            (60, t, "VALID".to_owned(), 7)
        ]
    );
}

#[tokio::test]
async fn sqlite_usage_minutes_survive_the_rollup_migration() {
    let db = Database::connect("sqlite::memory:").await.unwrap();
    usage_minutes_survive_the_rollup_migration(&db).await;
}

#[tokio::test]
async fn postgres_usage_minutes_survive_the_rollup_migration() {
    let Some(t) = TestDb::postgres_empty().await else {
        return;
    };
    usage_minutes_survive_the_rollup_migration(&t.db).await;
    t.cleanup().await;
}

/// Upgrading marks the recovery codes that exist as legacy (to be rewrapped as argon2id), and
/// PostgreSQL's column then holds a PHC string.
async fn recovery_codes_are_marked_legacy_by_the_upgrade(db: &Database) {
    use migrations::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Statement};
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let run = |sql: String| async move {
        conn.execute_raw(Statement::from_string(backend, sql))
            .await
            .unwrap()
    };
    Migrator::up(conn, Some(7)).await.unwrap();
    let sha = "a".repeat(64);
    run(
        "INSERT INTO users (id, email, password_hash, role, status, created_at) \
         VALUES ('usr_a', 'a@example.com', 'x', 'developer', 'active', '2026-11-28T00:00:00Z')"
            .into(),
    )
    .await;
    run(format!("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ('usr_a', '{sha}', '2026-11-28T00:00:00Z')")).await;
    Migrator::up(conn, None).await.unwrap();
    assert_fully_migrated(db).await;
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT code_hash FROM recovery_codes",
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: String = row.try_get("", "code_hash").unwrap();
    assert_eq!(stored, format!("legacy:{sha}"));
    let phc = format!(
        "$argon2id$v=19$m=19456,t=2,p=1${}${}",
        "s".repeat(22),
        "h".repeat(43)
    );
    run(format!("UPDATE recovery_codes SET code_hash = '{phc}'")).await;
}

#[tokio::test]
async fn sqlite_recovery_codes_are_marked_legacy_by_the_upgrade() {
    let db = Database::connect("sqlite::memory:").await.unwrap();
    recovery_codes_are_marked_legacy_by_the_upgrade(&db).await;
}

#[tokio::test]
async fn postgres_recovery_codes_are_marked_legacy_by_the_upgrade() {
    let Some(t) = TestDb::postgres_empty().await else {
        return;
    };
    recovery_codes_are_marked_legacy_by_the_upgrade(&t.db).await;
    t.cleanup().await;
}

/// Several instances started at the same moment on one empty PostgreSQL database each apply the
/// migrations: they take turns under an advisory lock, and every one ends fully migrated.
#[tokio::test]
async fn postgres_instances_migrating_at_once_do_not_race() {
    let t = TestDb::postgres_empty()
        .await
        .expect("KEYPORT_TEST_POSTGRES_URL must be set for PostgreSQL tests");
    let starts = (0..4).map(|_| {
        let url = t.url.clone();
        tokio::spawn(async move { Database::connect_and_migrate(&url).await })
    });
    for started in starts.collect::<Vec<_>>() {
        let db = started.await.unwrap().expect("every instance starts");
        assert_fully_migrated(&db).await;
        db.close().await.unwrap();
    }
    t.cleanup().await;
}
