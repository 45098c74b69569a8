//! Bytes written per update by two SQLite schemas through one identical
//! harness: the same pragmas (WAL, `synchronous = FULL`), the same groups of
//! updates per transaction, the same keys and values. One is kine's layout
//! (every row carries the new value and the old value, with kine's five
//! indexes); the other is skiff's (`history` holds each value once and
//! `current` points at it).

use std::path::Path;

use rusqlite::{Connection, params};

use crate::engine::{Error, proc_write_bytes};

const KINE: &str = "
CREATE TABLE kine (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, created INTEGER, deleted INTEGER,
    create_revision INTEGER, prev_revision INTEGER, lease INTEGER, value BLOB, old_value BLOB);
CREATE INDEX kine_name_index ON kine (name);
CREATE INDEX kine_name_id_index ON kine (name, id);
CREATE INDEX kine_id_deleted_index ON kine (id, deleted);
CREATE INDEX kine_prev_revision_index ON kine (prev_revision);
CREATE UNIQUE INDEX kine_name_prev_revision_uindex ON kine (name, prev_revision);";

const SKIFF: &str = "
CREATE TABLE history (revision INTEGER PRIMARY KEY, key BLOB NOT NULL, op INTEGER NOT NULL,
    create_revision INTEGER NOT NULL, prev_revision INTEGER, value BLOB);
CREATE TABLE current (key BLOB PRIMARY KEY, create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL, expires_at INTEGER) WITHOUT ROWID;
CREATE INDEX current_expiry ON current (expires_at) WHERE expires_at IS NOT NULL;";

#[derive(Clone, Copy)]
pub enum Schema {
    Kine,
    Skiff,
}

fn open(path: &Path, schema: Schema) -> Result<Connection, Error> {
    let conn = Connection::open(path)?;
    if let Schema::Skiff = schema {
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")?;
    }
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous = FULL")?;
    conn.execute_batch(match schema {
        Schema::Kine => KINE,
        Schema::Skiff => SKIFF,
    })?;
    Ok(conn)
}

/// Creates `keys` keys, then applies `updates` updates of `value_len` bytes
/// round-robin in transactions of `group`; returns bytes written per update
/// (including a final checkpoint into the database file).
pub fn bytes_per_update(
    dir: &Path,
    schema: Schema,
    keys: usize,
    updates: usize,
    group: usize,
    value_len: usize,
) -> Result<f64, Error> {
    let path = dir.join(match schema {
        Schema::Kine => "kine.db",
        Schema::Skiff => "skiff-raw.db",
    });
    let conn = open(&path, schema)?;
    let mut revs = vec![0i64; keys];
    let mut rev = 0i64;
    conn.execute_batch("BEGIN")?;
    for (k, slot) in revs.iter_mut().enumerate() {
        rev += 1;
        write(
            &conn,
            schema,
            &format!("/bench/raw/{k:05}"),
            rev,
            None,
            &vec![b'c'; value_len],
        )?;
        *slot = rev;
    }
    conn.execute_batch("COMMIT")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;

    let before = proc_write_bytes("self");
    let mut done = 0;
    while done < updates {
        conn.execute_batch("BEGIN")?;
        for _ in 0..group.min(updates - done) {
            let k = done % keys;
            rev += 1;
            let value = vec![(done % 251) as u8; value_len];
            write(
                &conn,
                schema,
                &format!("/bench/raw/{k:05}"),
                rev,
                Some(revs[k]),
                &value,
            )?;
            revs[k] = rev;
            done += 1;
        }
        conn.execute_batch("COMMIT")?;
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok((proc_write_bytes("self") - before) as f64 / updates as f64)
}

/// One write as each schema's engine issues it (kine reads the previous row
/// for `old_value`; skiff inserts history and repoints `current`).
fn write(
    conn: &Connection,
    schema: Schema,
    key: &str,
    rev: i64,
    prev: Option<i64>,
    value: &[u8],
) -> Result<(), Error> {
    match schema {
        Schema::Kine => {
            let old: Option<Vec<u8>> = match prev {
                Some(p) => conn
                    .prepare_cached("SELECT value FROM kine WHERE id = ?1")?
                    .query_row([p], |r| r.get(0))?,
                None => None,
            };
            conn.prepare_cached(
                "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, lease, value, old_value)
                 VALUES (?1, ?2, ?3, 0, ?4, ?5, 0, ?6, ?7)",
            )?
            .execute(params![rev, key, i64::from(prev.is_none()), rev, prev.unwrap_or(0), value, old])?;
        }
        Schema::Skiff => {
            conn.prepare_cached(
                "INSERT INTO history (revision, key, op, create_revision, prev_revision, value)
                 VALUES (?1, ?2, ?3, ?1, ?4, ?5)",
            )?
            .execute(params![
                rev,
                key.as_bytes(),
                i64::from(prev.is_some()),
                prev,
                value
            ])?;
            conn.prepare_cached(
                "INSERT INTO current (key, create_revision, mod_revision) VALUES (?1, ?2, ?2)
                 ON CONFLICT (key) DO UPDATE SET mod_revision = excluded.mod_revision",
            )?
            .execute(params![key.as_bytes(), rev])?;
        }
    }
    Ok(())
}
