//! The database-backed tower-sessions store.
use std::collections::HashMap;

use server::session_store::{DbSessionStore, USER_ID_KEY};
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
};

use crate::helpers::TestApp;

#[tokio::test]
async fn records_round_trip_and_remember_their_user() {
    let app = TestApp::spawn().await;
    let store = DbSessionStore::new(app.state.db.clone());
    let mut data = HashMap::new();
    data.insert(USER_ID_KEY.to_owned(), serde_json::json!("usr_abc"));
    let mut record = Record {
        id: Id::default(),
        data,
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
    };
    store.create(&mut record).await.unwrap();
    let loaded = store.load(&record.id).await.unwrap().expect("stored");
    assert_eq!(loaded.data, record.data);
    assert_eq!(
        loaded.expiry_date.unix_timestamp(),
        record.expiry_date.unix_timestamp()
    );
    let listed = domain::sessions::list_for_user(&app.state.db, "usr_abc", chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    store.delete(&record.id).await.unwrap();
    assert!(store.load(&record.id).await.unwrap().is_none());

    // An expired record never loads.
    let mut expired = Record {
        id: Id::default(),
        data: HashMap::new(),
        expiry_date: time::OffsetDateTime::now_utc() - time::Duration::seconds(1),
    };
    store.create(&mut expired).await.unwrap();
    assert!(store.load(&expired.id).await.unwrap().is_none());
}
