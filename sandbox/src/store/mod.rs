//! The sandbox's embedded database: every message received (deduplicated by messageId), the
//! identities that resolve to profiles (merged when a message links them), and the traits
//! identify calls set. Computed traits are derived from the stored events when read.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot prepare the database file {path}: {problem}")]
    File { path: String, problem: String },
}

/// One stored event of a profile.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub message_id: String,
    pub kind: String,
    pub event: Option<String>,
    pub timestamp_ms: i64,
    pub message: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub kind: String,
    pub value: String,
    pub created_at_ms: i64,
    pub first_message_id: String,
}

#[derive(Debug, Clone)]
pub struct ProfileMeta {
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub first_message_id: Option<String>,
    pub last_message_id: Option<String>,
}

/// What became of an ingested message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    Stored {
        profile: String,
    },
    /// A messageId seen before: nothing changes (Segment's deduplication).
    Duplicate,
    /// No identifier to attach it to.
    NoIdentity,
}

pub struct Store {
    connection: Mutex<Connection>,
    /// Held while the store is open: a second sandbox on the same file is refused, not left to
    /// write into the first one's data.
    _in_use: Option<std::fs::File>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS profiles (
    id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    kind TEXT NOT NULL, value TEXT NOT NULL, profile TEXT NOT NULL,
    created_at INTEGER NOT NULL, first_message_id TEXT NOT NULL, PRIMARY KEY (kind, value));
CREATE INDEX IF NOT EXISTS identities_profile ON identities (profile);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY, profile TEXT NOT NULL, kind TEXT NOT NULL, event TEXT,
    timestamp_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_profile ON messages (profile, timestamp_ms);
CREATE TABLE IF NOT EXISTS traits (
    profile TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (profile, key));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

impl Store {
    /// Opens (or creates) the database file; `reset` starts it empty.
    pub fn open(path: &Path, reset: bool) -> Result<Self, StoreError> {
        let file_error = |problem: String| StoreError::File {
            path: path.display().to_string(),
            problem,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| file_error(e.to_string()))?;
        }
        let in_use = Self::claim(path).map_err(file_error)?;
        if reset {
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{}{suffix}", path.display());
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(file_error(e.to_string())),
                }
            }
        }
        Self::with(Connection::open(path)?, Some(in_use))
    }

    pub fn in_memory() -> Result<Self, StoreError> {
        Self::with(Connection::open_in_memory()?, None)
    }

    /// An exclusive lock on `<path>.lock`, released when the process ends however it ends.
    fn claim(path: &Path) -> Result<std::fs::File, String> {
        let lock_path = format!("{}.lock", path.display());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("{lock_path}: {e}"))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(
                "another sandbox is using it; stop that one, or start this one with --data OTHER_FILE or --in-memory".to_owned(),
            ),
            Err(std::fs::TryLockError::Error(e)) => Err(format!("{lock_path}: {e}")),
        }
    }

    fn with(connection: Connection, in_use: Option<std::fs::File>) -> Result<Self, StoreError> {
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute_batch(SCHEMA)?;
        Ok(Self {
            connection: Mutex::new(connection),
            _in_use: in_use,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back), so a poisoned lock is still usable.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            [key, value],
        )?;
        Ok(())
    }

    /// Stores a message for the profile its identifiers resolve to, merging the profiles it
    /// links. `identifiers` are (type, value) pairs; `links` are values (an alias's
    /// previousId) that name a profile by user or anonymous id without becoming identifiers.
    pub fn ingest(
        &self,
        message_id: &str,
        message: &Value,
        identifiers: &[(String, String)],
        links: &[String],
        timestamp_ms: i64,
        received_ms: i64,
    ) -> Result<Ingested, StoreError> {
        let mut connection = self.lock();
        let tx = connection.transaction()?;
        if already_stored(&tx, message_id)? {
            return Ok(Ingested::Duplicate);
        }
        if identifiers.is_empty() && links.is_empty() {
            return Ok(Ingested::NoIdentity);
        }
        let candidates = profiles_of(&tx, identifiers, links)?;
        let message_user = identifiers
            .iter()
            .find(|(k, _)| k == "user_id")
            .map(|(_, v)| v.clone());
        let (compatible, user) = mergeable(&tx, &candidates, message_user)?;
        let profile = match compatible.first() {
            Some(winner) => winner.clone(),
            None => new_profile(&tx, received_ms)?,
        };
        for loser in compatible.iter().skip(1) {
            merge(&tx, &profile, loser)?;
        }
        attach(
            &tx,
            &profile,
            identifiers,
            user.as_deref(),
            message_id,
            received_ms,
        )?;
        record(
            &tx,
            &profile,
            message_id,
            message,
            timestamp_ms,
            received_ms,
        )?;
        tx.commit()?;
        Ok(Ingested::Stored { profile })
    }

    pub fn resolve(&self, kind: &str, value: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT profile FROM identities WHERE kind = ?1 AND value = ?2",
                [kind, value],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// The profile's events, oldest first.
    pub fn events(&self, profile: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT message_id, kind, event, timestamp_ms, body FROM messages WHERE profile = ?1 ORDER BY timestamp_ms, received_ms, message_id",
        )?;
        let rows = statement.query_map([profile], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, String>(4)?,
            ))
        })?;
        let mut events = Vec::new();
        for row in rows {
            let (message_id, kind, event, timestamp_ms, body) = row?;
            events.push(StoredEvent {
                message_id,
                kind,
                event,
                timestamp_ms,
                message: serde_json::from_str(&body)?,
            });
        }
        Ok(events)
    }

    /// Traits set by identify calls: (key, value, updated_at).
    pub fn custom_traits(&self, profile: &str) -> Result<Vec<(String, Value, i64)>, StoreError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT key, value, updated_at FROM traits WHERE profile = ?1 ORDER BY key")?;
        let rows = statement.query_map([profile], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        let mut traits = Vec::new();
        for row in rows {
            let (key, value, updated) = row?;
            traits.push((key, serde_json::from_str(&value)?, updated));
        }
        Ok(traits)
    }

    pub fn identities(&self, profile: &str) -> Result<Vec<Identity>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT kind, value, created_at, first_message_id FROM identities WHERE profile = ?1 ORDER BY created_at, kind, value",
        )?;
        let rows = statement.query_map([profile], |row| {
            Ok(Identity {
                kind: row.get(0)?,
                value: row.get(1)?,
                created_at_ms: row.get(2)?,
                first_message_id: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn profile_meta(&self, profile: &str) -> Result<Option<ProfileMeta>, StoreError> {
        let connection = self.lock();
        let times: Option<(i64, i64)> = connection
            .query_row(
                "SELECT created_at, updated_at FROM profiles WHERE id = ?1",
                [profile],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((created_at_ms, updated_at_ms)) = times else {
            return Ok(None);
        };
        let edge = |order: &str| -> Result<Option<String>, rusqlite::Error> {
            connection
                .query_row(
                    &format!("SELECT message_id FROM messages WHERE profile = ?1 ORDER BY received_ms {order}, message_id {order} LIMIT 1"),
                    [profile],
                    |row| row.get(0),
                )
                .optional()
        };
        Ok(Some(ProfileMeta {
            created_at_ms,
            updated_at_ms,
            first_message_id: edge("ASC")?,
            last_message_id: edge("DESC")?,
        }))
    }

    /// Every profile id, oldest first.
    pub fn profiles(&self) -> Result<Vec<String>, StoreError> {
        let connection = self.lock();
        let mut statement =
            connection.prepare("SELECT id FROM profiles ORDER BY created_at, id")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many profiles there are (for tests and the welcome summary).
    pub fn profile_count(&self) -> Result<i64, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT COUNT(*) FROM profiles", [], |row| row.get(0))?)
    }
}

// The steps of [`Store::ingest`], each over the one transaction.

type Tx<'a> = rusqlite::Transaction<'a>;

mod resolution;
use resolution::{attach, merge, mergeable, new_profile, profiles_of};

fn already_stored(tx: &Tx<'_>, message_id: &str) -> Result<bool, StoreError> {
    let seen: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM messages WHERE message_id = ?1",
            [message_id],
            |row| row.get(0),
        )
        .optional()?;
    Ok(seen.is_some())
}

/// The message itself, an identify's traits, and the profile's last update.
fn record(
    tx: &Tx<'_>,
    profile: &str,
    message_id: &str,
    message: &Value,
    timestamp_ms: i64,
    received_ms: i64,
) -> Result<(), StoreError> {
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("track");
    let event = message.get("event").and_then(Value::as_str);
    tx.execute(
        "INSERT INTO messages (message_id, profile, kind, event, timestamp_ms, received_ms, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![message_id, profile, kind, event, timestamp_ms, received_ms, serde_json::to_string(message)?],
    )?;
    if kind == "identify"
        && let Some(Value::Object(traits)) = message.get("traits")
    {
        for (key, value) in traits {
            tx.execute(
                "INSERT OR REPLACE INTO traits (profile, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)",
                params![profile, key, serde_json::to_string(value)?, received_ms],
            )?;
        }
    }
    tx.execute(
        "UPDATE profiles SET updated_at = MAX(updated_at, ?2) WHERE id = ?1",
        params![profile, received_ms],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ids(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_profile_id_is_never_handed_out_twice_after_a_merge() {
        // GIVEN two profiles merged within one millisecond (so creation time cannot order them)
        let store = Store::in_memory().unwrap();
        let t = 1_000;
        let message = json!({"type": "track", "event": "e"});
        store
            .ingest("m1", &message, &ids(&[("anonymous_id", "a")]), &[], t, t)
            .unwrap();
        store
            .ingest("m2", &message, &ids(&[("user_id", "u")]), &[], t, t)
            .unwrap();
        store
            .ingest(
                "m3",
                &message,
                &ids(&[("anonymous_id", "a"), ("user_id", "u")]),
                &[],
                t,
                t,
            )
            .unwrap();
        assert_eq!(store.profile_count().unwrap(), 1);
        // WHEN a new customer arrives in the same millisecond
        let stored = store
            .ingest("m4", &message, &ids(&[("anonymous_id", "b")]), &[], t, t)
            .unwrap();
        // THEN they get a profile of their own, and nothing is lost
        assert!(matches!(stored, Ingested::Stored { .. }), "{stored:?}");
        assert_eq!(store.profile_count().unwrap(), 2);
        assert_ne!(
            store.resolve("anonymous_id", "a").unwrap(),
            store.resolve("anonymous_id", "b").unwrap()
        );
        assert_eq!(
            store
                .ingest("m4", &message, &ids(&[("anonymous_id", "b")]), &[], t, t)
                .unwrap(),
            Ingested::Duplicate
        );
    }
}
