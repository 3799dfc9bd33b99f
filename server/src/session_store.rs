//! tower-sessions storage in Keyport's own database (SQLite or PostgreSQL), through the domain's
//! sessions service. Rows are keyed by the SHA-256 of the session id. The user's id is copied
//! into its own column from the first sign-in step (password checked, code pending), so ending
//! a user's sessions ends the half-signed-in ones too.
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    Database,
    sessions::{self, StoredSession},
};
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store::{Error, Result},
};

/// Key in the session data holding the signed-in user's id.
pub const USER_ID_KEY: &str = "user_id";
/// Key in the session data holding the id of a user who passed the password step only.
pub const PENDING_USER_KEY: &str = "pending_user_id";

#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: Database,
}

impl DbSessionStore {
    pub fn new(db: Database) -> Self {
        DbSessionStore { db }
    }
}

fn backend(e: domain::DomainError) -> Error {
    Error::Backend(e.to_string())
}

fn to_stored(record: &Record) -> Result<StoredSession> {
    let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
    let expires_at = DateTime::<Utc>::from_timestamp(record.expiry_date.unix_timestamp(), 0)
        .ok_or_else(|| Error::Encode("session expiry out of range".into()))?;
    Ok(StoredSession {
        id: sessions::digest(&record.id.to_string()),
        data,
        expires_at,
        user_id: record
            .data
            .get(USER_ID_KEY)
            .or_else(|| record.data.get(PENDING_USER_KEY))
            .and_then(|v| v.as_str())
            .map(str::to_owned),
    })
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // Ids are 128 random bits; on the astronomically unlikely collision, draw another.
        loop {
            if sessions::create(&self.db, &to_stored(record)?)
                .await
                .map_err(backend)?
            {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        sessions::save(&self.db, &to_stored(record)?)
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let Some(stored) = sessions::load(&self.db, &sessions::digest(&id.to_string()), Utc::now())
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_str(&stored.data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(stored.expires_at.timestamp())
            .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        sessions::delete(&self.db, &sessions::digest(&id.to_string()))
            .await
            .map_err(backend)
    }
}
