//! The SQLite schema, connection settings and error mapping.
//!
//! `history` is the write log: one row per revision holding the key, the
//! operation, the key's create revision, the revision of the row it superseded
//! (`prev_revision`) and the new value (deletes store no value; the value a
//! delete removed is the row at `prev_revision`). `current` maps each live key
//! to its create revision and to the history row holding its value
//! (`mod_revision`), so an update writes its value exactly once. Keys are
//! BLOBs so that range bounds compare byte-wise.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::store::{Revision, StoreError};

/// The schema version this skiff writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for a lock held by another connection.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub const OP_CREATE: i64 = 0;
pub const OP_MODIFY: i64 = 1;
pub const OP_DELETE: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE history (
    revision        INTEGER PRIMARY KEY,
    key             BLOB NOT NULL,
    op              INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER,
    value           BLOB
);
CREATE TABLE current (
    key             BLOB PRIMARY KEY,
    create_revision INTEGER NOT NULL,
    mod_revision    INTEGER NOT NULL,
    expires_at      INTEGER
) WITHOUT ROWID;
CREATE INDEX current_expiry ON current (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('compacted', 0), ('revision', 0);
";

/// Maps an SQLite error on the database at `path` to a store error.
pub fn map_err(path: &Path, err: rusqlite::Error) -> StoreError {
    let path = path.display().to_string();
    match err.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
        Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => StoreError::Corrupt {
            path,
            detail: err.to_string(),
        },
        _ => StoreError::Database {
            path,
            detail: err.to_string(),
        },
    }
}

/// Opens the writer's connection, creating and migrating the schema.
pub fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let e = |err| map_err(path, err);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(e)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(e)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(e)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(e)?;
        if tables != 0 {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                detail: "the file holds tables but no skiff schema version".to_string(),
            });
        }
        // auto_vacuum must be chosen before the first table exists.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
            .map_err(e)?;
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(e)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database {
            path: path.display().to_string(),
            detail: format!("cannot switch to WAL journal mode (got {mode})"),
        });
    }
    // FULL: in WAL mode every commit fsyncs the WAL, so an acknowledged write
    // survives power loss, not just a crash of the process.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = 4194304;
         PRAGMA wal_autocheckpoint = 1000;
         PRAGMA cache_size = -16384;",
    )
    .map_err(e)?;
    if version == 0 {
        let tx = conn.unchecked_transaction().map_err(e)?;
        tx.execute_batch(SCHEMA).map_err(e)?;
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .map_err(e)?;
        tx.commit().map_err(e)?;
    }
    Ok(conn)
}

/// Opens a read-only connection for the read pool.
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let e = |err| map_err(path, err);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(e)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(e)?;
    conn.execute_batch("PRAGMA cache_size = -8192").map_err(e)?;
    Ok(conn)
}

/// Reads an integer from `meta`.
pub fn meta(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The latest committed revision as seen by `conn`'s snapshot. Compaction can
/// delete the newest history row (a delete), so it records the revision in
/// `meta` whenever it runs; the larger of the two is the current revision.
pub fn current_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    let newest: Option<i64> = conn
        .prepare_cached("SELECT max(revision) FROM history")?
        .query_row([], |r| r.get(0))?;
    Ok(newest.unwrap_or(0).max(meta(conn, "revision")?))
}

/// The half-open byte range `[start, end)` of keys starting with `prefix`.
/// UTF-8 never contains the byte 0xFF, so `[0xFF]` bounds every key when the
/// prefix has no successor.
pub fn key_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return (prefix.as_bytes().to_vec(), end);
        }
    }
    (prefix.as_bytes().to_vec(), vec![0xFF])
}

/// A key read back from the database.
pub fn key_string(path: &Path, key: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(key).map_err(|_| StoreError::Corrupt {
        path: path.display().to_string(),
        detail: "a key is not valid UTF-8".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::key_range;

    #[test]
    fn key_range_bounds_the_prefix() {
        assert_eq!(key_range("/a/"), (b"/a/".to_vec(), b"/a0".to_vec()));
        assert_eq!(key_range(""), (Vec::new(), vec![0xFF]));
        assert_eq!(
            key_range("é").1,
            "é".as_bytes()[..1]
                .iter()
                .chain(&[0xAA])
                .copied()
                .collect::<Vec<u8>>()
        );
    }
}
