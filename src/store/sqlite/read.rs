//! Reads, served by a small pool of read-only connections outside the writer.
//!
//! In WAL mode a read transaction sees one committed snapshot, so every read
//! here runs in one transaction and reports the revision of that snapshot.
//! Reads at an older revision R never aggregate over the history: they take
//! the live rows of `current` and correct them with the writes made after R
//! (found by a range scan of `history` by revision), so a page costs the page
//! plus the writes since R.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use super::schema::{self, OP_CREATE, OP_DELETE};
use crate::store::{
    Event, EventKind, KeyValue, ListOptions, ListResult, Result, Revision, StoreError,
};

/// How many idle read connections are kept.
const POOL_SIZE: usize = 4;
/// How many revisions one history replay chunk covers at most.
const REPLAY_CHUNK: i64 = 2000;

/// A pool of read-only connections to one database file.
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one read transaction on a pooled connection. Blocking:
    /// call it from `spawn_blocking`.
    pub fn with<T>(&self, f: impl FnOnce(&Snapshot<'_>) -> Result<T>) -> Result<T> {
        let conn = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match conn {
            Some(c) => c,
            None => schema::open_reader(&self.path)?,
        };
        let out = {
            let tx = conn
                .unchecked_transaction()
                .map_err(|e| schema::map_err(&self.path, e))?;
            let snap = Snapshot {
                conn: &tx,
                path: &self.path,
            };
            let out = f(&snap);
            // A read transaction has nothing to commit; ending it releases the
            // snapshot so checkpoints can progress.
            drop(tx);
            out
        };
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < POOL_SIZE {
            idle.push(conn);
        }
        out
    }
}

/// One consistent read view of the database.
pub struct Snapshot<'a> {
    conn: &'a Connection,
    path: &'a Path,
}

/// Keys written after a list's revision: key → (the history row holding
/// its version at that revision, if it was live then; whether it is live now).
type Changed = BTreeMap<Vec<u8>, (Option<Revision>, bool)>;

/// A history row.
struct Row {
    revision: Revision,
    key: Vec<u8>,
    op: i64,
    create_revision: Revision,
    prev_revision: Option<Revision>,
    value: Option<Vec<u8>>,
}

impl Snapshot<'_> {
    fn e(&self, err: rusqlite::Error) -> StoreError {
        schema::map_err(self.path, err)
    }

    pub fn revision(&self) -> Result<Revision> {
        schema::current_revision(self.conn).map_err(|e| self.e(e))
    }

    pub fn compacted(&self) -> Result<Revision> {
        schema::meta(self.conn, "compacted").map_err(|e| self.e(e))
    }

    /// Checks that `revision` is readable and returns the snapshot revision.
    fn check(&self, revision: Option<Revision>) -> Result<Revision> {
        let current = self.revision()?;
        if let Some(requested) = revision {
            if requested > current {
                return Err(StoreError::FutureRevision { requested, current });
            }
            let compacted = self.compacted()?;
            if requested < compacted {
                return Err(StoreError::Compacted {
                    requested,
                    compacted,
                });
            }
        }
        Ok(current)
    }

    /// The version of a key stored in history row `revision` (a create or
    /// modify row).
    fn version_at_row(&self, revision: Revision) -> Result<Option<KeyValue>> {
        let row = self.row(revision)?;
        row.map(|r| {
            Ok(KeyValue {
                key: schema::key_string(self.path, r.key)?,
                value: Bytes::from(r.value.unwrap_or_default()),
                create_revision: r.create_revision,
                mod_revision: r.revision,
            })
        })
        .transpose()
    }

    fn row(&self, revision: Revision) -> Result<Option<Row>> {
        self.conn
            .prepare_cached(
                "SELECT revision, key, op, create_revision, prev_revision, value
                 FROM history WHERE revision = ?1",
            )
            .and_then(|mut s| s.query_row([revision], read_row).optional())
            .map_err(|e| self.e(e))
    }

    /// For the keys in `[start, end)` written after `after`: the history row
    /// holding each key's version as of `after` (`None`: absent then), and
    /// whether the key is live now.
    fn changed_since(&self, after: Revision, start: &[u8], end: &[u8]) -> Result<Changed> {
        let mut changed = Changed::new();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, op, prev_revision FROM history
                 WHERE revision > ?1 AND key >= ?2 AND key < ?3 ORDER BY revision",
            )
            .map_err(|e| self.e(e))?;
        let mut rows = stmt
            .query(params![after, start, end])
            .map_err(|e| self.e(e))?;
        while let Some(row) = rows.next().map_err(|e| self.e(e))? {
            let key: Vec<u8> = row.get(0).map_err(|e| self.e(e))?;
            let op: i64 = row.get(1).map_err(|e| self.e(e))?;
            let prev: Option<Revision> = row.get(2).map_err(|e| self.e(e))?;
            let live_now = op != OP_DELETE;
            changed
                .entry(key)
                .and_modify(|(_, live)| *live = live_now)
                .or_insert((if op == OP_CREATE { None } else { prev }, live_now));
        }
        Ok(changed)
    }

    pub fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        self.check(revision)?;
        let live = self
            .conn
            .prepare_cached(
                "SELECT c.create_revision, c.mod_revision, h.value
                 FROM current c JOIN history h ON h.revision = c.mod_revision
                 WHERE c.key = ?1",
            )
            .and_then(|mut s| {
                s.query_row([key.as_bytes()], |r| {
                    Ok(KeyValue {
                        key: key.to_string(),
                        create_revision: r.get(0)?,
                        mod_revision: r.get(1)?,
                        value: Bytes::from(r.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default()),
                    })
                })
                .optional()
            })
            .map_err(|e| self.e(e))?;
        let Some(at) = revision else {
            return Ok(live);
        };
        if let Some(kv) = &live {
            if kv.mod_revision <= at {
                return Ok(live);
            }
        }
        let first_after = self
            .conn
            .prepare_cached(
                "SELECT op, prev_revision FROM history
                 WHERE revision > ?1 AND key = ?2 ORDER BY revision LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![at, key.as_bytes()], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Revision>>(1)?))
                })
                .optional()
            })
            .map_err(|e| self.e(e))?;
        match first_after {
            None => Ok(None),
            Some((OP_CREATE, _)) | Some((_, None)) => Ok(None),
            Some((_, Some(prev))) => self.version_at_row(prev),
        }
    }

    pub fn count(&self, prefix: &str) -> Result<u64> {
        let (start, end) = schema::key_range(prefix);
        self.conn
            .prepare_cached("SELECT count(*) FROM current WHERE key >= ?1 AND key < ?2")
            .and_then(|mut s| s.query_row(params![start, end], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.e(e))
    }

    pub fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListResult> {
        let current = self.check(opts.revision)?;
        let at = opts.revision.unwrap_or(current);
        let (prefix_start, end) = schema::key_range(prefix);
        let limit = opts.limit.filter(|&l| l > 0).unwrap_or(usize::MAX);
        let changed = if at < current {
            self.changed_since(at, &prefix_start, &end)?
        } else {
            BTreeMap::new()
        };
        // The lower bound is inclusive for the prefix and exclusive for a
        // continue key; an exclusive bound is the key followed by a 0 byte.
        let start = match &opts.start_after {
            Some(k) if k.as_bytes() >= prefix_start.as_slice() => {
                let mut s = k.as_bytes().to_vec();
                s.push(0);
                s
            }
            _ => prefix_start.clone(),
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.key, c.create_revision, c.mod_revision, h.value
                 FROM current c JOIN history h ON h.revision = c.mod_revision
                 WHERE c.key >= ?1 AND c.key < ?2 ORDER BY c.key",
            )
            .map_err(|e| self.e(e))?;
        let mut rows = stmt.query(params![start, end]).map_err(|e| self.e(e))?;
        // Versions as of `at` of changed keys, merged in key order.
        let mut older = changed
            .range(start.clone()..)
            .filter_map(|(k, (rev, _))| rev.map(|r| (k.clone(), r)))
            .peekable();
        let mut kvs = Vec::new();
        let mut more = false;
        let mut live_row: Option<KeyValue> = None;
        loop {
            if live_row.is_none() {
                while let Some(row) = rows.next().map_err(|e| self.e(e))? {
                    let key: Vec<u8> = row.get(0).map_err(|e| self.e(e))?;
                    if changed.contains_key(&key) {
                        continue;
                    }
                    live_row = Some(KeyValue {
                        key: schema::key_string(self.path, key)?,
                        create_revision: row.get(1).map_err(|e| self.e(e))?,
                        mod_revision: row.get(2).map_err(|e| self.e(e))?,
                        value: Bytes::from(
                            row.get::<_, Option<Vec<u8>>>(3)
                                .map_err(|e| self.e(e))?
                                .unwrap_or_default(),
                        ),
                    });
                    break;
                }
            }
            let take_older = match (&live_row, older.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(l), Some((k, _))) => k.as_slice() < l.key.as_bytes(),
            };
            if kvs.len() == limit {
                more = true;
                break;
            }
            if take_older {
                if let Some((_, rev)) = older.next() {
                    if let Some(kv) = self.version_at_row(rev)? {
                        kvs.push(kv);
                    }
                }
            } else if let Some(kv) = live_row.take() {
                kvs.push(kv);
            }
        }
        drop(rows);
        let remaining = if more {
            self.remaining_after(
                kvs.last().map(|kv| kv.key.as_bytes()),
                &prefix_start,
                &end,
                &changed,
            )?
        } else {
            0
        };
        Ok(ListResult {
            kvs,
            revision: at,
            more,
            remaining,
        })
    }

    /// How many keys of `[.., end)` after `last` were live at the list's
    /// revision: live now, minus changed keys live now, plus changed keys that
    /// were live then.
    fn remaining_after(
        &self,
        last: Option<&[u8]>,
        prefix_start: &[u8],
        end: &[u8],
        changed: &Changed,
    ) -> Result<u64> {
        let mut start = prefix_start.to_vec();
        if let Some(last) = last {
            start = last.to_vec();
            start.push(0);
        }
        let live_now: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM current WHERE key >= ?1 AND key < ?2")
            .and_then(|mut s| s.query_row(params![start, end], |r| r.get(0)))
            .map_err(|e| self.e(e))?;
        let mut n = live_now;
        for (then, now) in changed.range(start..).map(|(_, v)| v) {
            n += i64::from(then.is_some()) - i64::from(*now);
        }
        Ok(n.max(0) as u64)
    }

    /// Events under `prefix` in `(after, min(upto, after + chunk)]`.
    pub fn replay(
        &self,
        prefix: &str,
        after: Revision,
        upto: Revision,
    ) -> Result<(Vec<Event>, Revision)> {
        let compacted = self.compacted()?;
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        let upto = upto.min(after + REPLAY_CHUNK);
        let (start, end) = schema::key_range(prefix);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT revision, key, op, create_revision, prev_revision, value FROM history
                 WHERE revision > ?1 AND revision <= ?2 AND key >= ?3 AND key < ?4
                 ORDER BY revision",
            )
            .map_err(|e| self.e(e))?;
        let rows: Vec<Row> = stmt
            .query_map(params![after, upto, start, end], read_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.e(e))?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            events.push(self.event(row)?);
        }
        Ok((events, upto))
    }

    fn event(&self, row: Row) -> Result<Event> {
        let prev = match row.prev_revision {
            Some(p) => self.version_at_row(p)?,
            None => None,
        };
        let key = schema::key_string(self.path, row.key)?;
        let (kind, value) = match row.op {
            OP_CREATE => (EventKind::Created, row.value.map(Bytes::from)),
            OP_DELETE => (EventKind::Deleted, prev.as_ref().map(|p| p.value.clone())),
            _ => (EventKind::Modified, row.value.map(Bytes::from)),
        };
        Ok(Event {
            kind,
            revision: row.revision,
            kv: KeyValue {
                key,
                value: value.unwrap_or_default(),
                create_revision: row.create_revision,
                mod_revision: row.revision,
            },
            prev,
        })
    }
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        revision: r.get(0)?,
        key: r.get(1)?,
        op: r.get(2)?,
        create_revision: r.get(3)?,
        prev_revision: r.get(4)?,
        value: r.get(5)?,
    })
}
