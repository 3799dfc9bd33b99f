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
