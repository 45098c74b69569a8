//! The single writer: owns the revision counter and commits in groups.
//!
//! Requests queue on a channel. The writer thread takes every request that is
//! waiting (up to a bound), applies them in one transaction (each successful
//! write gets the next revision; a write that fails its precondition takes no
//! revision and changes nothing), commits with one fsync, publishes the
//! group's events to the watch hub and only then acknowledges each request.
//! Between groups it expires TTL keys (one sweeper driven by the earliest
//! expiry, no timer per key) and runs compaction and file maintenance.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::compact::Compactor;
use super::schema::{self, OP_CREATE, OP_DELETE, OP_MODIFY};
use super::{Config, Shared};
use crate::store::watch::Hub;
use crate::store::{Event, EventKind, KeyValue, Result, Revision, StoreError};

/// The most requests committed in one transaction.
const MAX_GROUP: usize = 1024;
/// The most expired keys deleted per group.
const MAX_EXPIRE: i64 = 512;
/// The longest a group waits for the rest of the previous group's writers.
const GATHER_WAIT: Duration = Duration::from_micros(300);

/// A write as the API asked for it.
pub enum WriteOp {
    Create {
        key: String,
        value: Bytes,
        ttl: Option<Duration>,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

pub enum Request {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<Event>>,
    },
    /// Compact up to `revision`; answered once it is done.
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
}

pub struct Writer {
    conn: Connection,
    path: PathBuf,
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    revision: Revision,
    /// Unix milliseconds of the earliest TTL expiry, if any key has one.
    next_expiry: Option<i64>,
    compactor: Compactor,
    /// Size of the previous group, to keep groups whole (see `gather`).
    last_group: usize,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn expiry(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|t| now_ms().saturating_add(t.as_millis().min(i64::MAX as u128) as i64))
}

impl Writer {
    pub fn new(
        conn: Connection,
        path: PathBuf,
        shared: Arc<Shared>,
        hub: Arc<Hub>,
        config: &Config,
    ) -> Result<Self> {
        let e = |err| schema::map_err(&path, err);
        let revision = schema::current_revision(&conn).map_err(e)?;
        let compacted = schema::meta(&conn, "compacted").map_err(e)?;
        let next_expiry: Option<i64> = conn
            .query_row("SELECT min(expires_at) FROM current", [], |r| r.get(0))
            .map_err(e)?;
        shared.revision.store(revision, Ordering::Release);
        shared.compacted.store(compacted, Ordering::Release);
        Ok(Self {
            conn,
            shared,
            hub,
            revision,
            next_expiry,
            compactor: Compactor::new(config.compaction.clone(), compacted, revision),
            last_group: 0,
            path,
        })
    }

    /// Runs until every sender is gone, then closes the watch hub.
    pub fn run(mut self, rx: mpsc::Receiver<Request>) {
        let mut batch = Vec::new();
        let mut compact_waiters: Vec<(Revision, oneshot::Sender<Result<()>>)> = Vec::new();
        loop {
            let timeout = self.timeout();
            match rx.recv_timeout(timeout) {
                Ok(req) => batch.push(req),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            self.gather(&rx, &mut batch);
            self.last_group = batch.len();
            let mut writes = Vec::with_capacity(batch.len());
            for req in batch.drain(..) {
                match req {
                    Request::Write { op, reply } => writes.push((op, reply)),
                    Request::Compact { revision, reply } => {
                        if revision > self.revision {
                            let _ = reply.send(Err(StoreError::FutureRevision {
                                requested: revision,
                                current: self.revision,
                            }));
                        } else {
                            self.compactor.request(revision);
                            compact_waiters.push((revision, reply));
                        }
                    }
                }
            }
            let expired = self.expired_due();
            if !writes.is_empty() || !expired.is_empty() {
                self.commit_group(writes, expired);
            }
            self.maintain(&mut compact_waiters);
        }
        for (_, reply) in compact_waiters {
            let _ = reply.send(Err(StoreError::Closed));
        }
        self.hub.close();
    }

    /// Takes every queued request. When the previous group was larger than
    /// what is queued now, its writers are probably about to send their next
    /// request (they were just acknowledged): wait a few microseconds for
    /// them, so groups stay whole instead of alternating big and small. A
    /// lone writer never waits.
    fn gather(&self, rx: &mpsc::Receiver<Request>, batch: &mut Vec<Request>) {
        let deadline = Instant::now() + GATHER_WAIT;
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(mpsc::TryRecvError::Empty)
                    if !batch.is_empty()
                        && batch.len() < self.last_group
                        && Instant::now() < deadline =>
                {
                    std::thread::yield_now();
                }
                Err(_) => break,
            }
        }
    }

    /// How long to wait for a request before there is housekeeping to do.
    fn timeout(&self) -> Duration {
        let mut wait = self.compactor.until_due();
        if let Some(at) = self.next_expiry {
            let ms = (at - now_ms()).max(0) as u64;
            wait = wait.min(Duration::from_millis(ms));
        }
        wait
    }

    /// Keys whose TTL has passed, as unconditional deletes (bounded per group).
    fn expired_due(&mut self) -> Vec<String> {
        let now = now_ms();
        match self.next_expiry {
            Some(at) if at <= now => {}
            _ => return Vec::new(),
        }
        let found = self
            .conn
            .prepare_cached(
                "SELECT key FROM current WHERE expires_at IS NOT NULL AND expires_at <= ?1
                 ORDER BY expires_at LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![now, MAX_EXPIRE], |r| r.get::<_, Vec<u8>>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            });
        match found {
            Ok(keys) => keys
                .into_iter()
                .filter_map(|k| String::from_utf8(k).ok())
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "reading expired keys failed; retrying later");
                self.next_expiry = Some(now + 1000);
                Vec::new()
            }
        }
    }

    fn commit_group(
        &mut self,
        writes: Vec<(WriteOp, oneshot::Sender<Result<Event>>)>,
        expired: Vec<String>,
    ) {
        let start_revision = self.revision;
        let mut outcomes: Vec<Result<Event>> = Vec::with_capacity(writes.len());
        let mut expiry_events = Vec::new();
        let started = Instant::now();
        let applied = (|| -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            for (op, _) in &writes {
                let outcome = self.apply(op)?;
                outcomes.push(outcome);
            }
            for key in &expired {
                let delete = WriteOp::Delete {
                    key: key.clone(),
                    expected: None,
                };
                if let Ok(event) = self.apply(&delete)? {
                    expiry_events.push(event);
                }
            }
            self.conn.execute_batch("COMMIT")
        })();
        if let Err(err) = applied {
            let err = schema::map_err(&self.path, err);
            tracing::error!(error = %err, "write transaction failed; rolled back");
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.revision = start_revision;
            if !expired.is_empty() {
                // Do not spin on expiries that cannot be written.
                self.next_expiry = Some(now_ms() + 1000);
            }
            for (_, reply) in writes {
                let _ = reply.send(Err(clone_err(&err)));
            }
            return;
        }
        if !expired.is_empty() {
            self.next_expiry = self
                .conn
                .query_row("SELECT min(expires_at) FROM current", [], |r| r.get(0))
                .unwrap_or(Some(now_ms() + 1000));
        }
        tracing::trace!(writes = writes.len(), elapsed = ?started.elapsed(), "group committed");
        self.shared.revision.store(self.revision, Ordering::Release);
        let mut events: Vec<Event> = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok().cloned())
            .collect();
        events.append(&mut expiry_events);
        events.sort_by_key(|e| e.revision);
        self.hub.publish(events);
        for ((_, reply), outcome) in writes.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }

    /// Applies one write inside the open transaction. The outer error aborts
    /// the whole group; the inner one is this write's failed precondition.
    fn apply(&mut self, op: &WriteOp) -> rusqlite::Result<Result<Event>> {
        let key = match op {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key,
        };
        let current = self.read_current(key)?;
        let revision = self.revision + 1;
        let event = match (op, current) {
            (WriteOp::Create { .. }, Some(_)) => {
                return Ok(Err(StoreError::KeyExists(key.clone())));
            }
            (WriteOp::Create { value, ttl, .. }, None) => {
                let expires = expiry(*ttl);
                self.insert_history(revision, key, OP_CREATE, revision, None, Some(value))?;
                self.conn
                    .prepare_cached(
                        "INSERT INTO current (key, create_revision, mod_revision, expires_at)
                         VALUES (?1, ?2, ?2, ?3)",
                    )?
                    .execute(params![key.as_bytes(), revision, expires])?;
                self.note_expiry(expires);
                Event {
                    kind: EventKind::Created,
                    revision,
                    kv: KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: revision,
                        mod_revision: revision,
                    },
                    prev: None,
                }
            }
            (WriteOp::Update { .. }, None) => {
                return Ok(Err(StoreError::Conflict {
                    key: key.clone(),
                    current: None,
                }));
            }
            (WriteOp::Delete { .. }, None) => return Ok(Err(StoreError::NotFound(key.clone()))),
            (WriteOp::Update { expected, .. }, Some(cur))
            | (
                WriteOp::Delete {
                    expected: Some(expected),
                    ..
                },
                Some(cur),
            ) if cur.mod_revision != *expected => {
                return Ok(Err(StoreError::Conflict {
                    key: key.clone(),
                    current: Some(Box::new(cur)),
                }));
            }
            (WriteOp::Update { value, ttl, .. }, Some(prev)) => {
                let expires = expiry(*ttl);
                self.insert_history(
                    revision,
                    key,
                    OP_MODIFY,
                    prev.create_revision,
                    Some(prev.mod_revision),
                    Some(value),
                )?;
                self.conn
                    .prepare_cached(
                        "UPDATE current SET mod_revision = ?2, expires_at = ?3 WHERE key = ?1",
                    )?
                    .execute(params![key.as_bytes(), revision, expires])?;
                self.note_expiry(expires);
                Event {
                    kind: EventKind::Modified,
                    revision,
                    kv: KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: prev.create_revision,
                        mod_revision: revision,
                    },
                    prev: Some(prev),
                }
            }
            (WriteOp::Delete { .. }, Some(prev)) => {
                self.insert_history(
                    revision,
                    key,
                    OP_DELETE,
                    prev.create_revision,
                    Some(prev.mod_revision),
                    None,
                )?;
                self.conn
                    .prepare_cached("DELETE FROM current WHERE key = ?1")?
                    .execute([key.as_bytes()])?;
                Event {
                    kind: EventKind::Deleted,
                    revision,
                    kv: KeyValue {
                        key: key.clone(),
                        value: prev.value.clone(),
                        create_revision: prev.create_revision,
                        mod_revision: revision,
                    },
                    prev: Some(prev),
                }
            }
        };
        self.revision = revision;
        Ok(Ok(event))
    }

    fn note_expiry(&mut self, expires: Option<i64>) {
        if let Some(at) = expires {
            self.next_expiry = Some(self.next_expiry.map_or(at, |n| n.min(at)));
        }
    }

    fn read_current(&self, key: &str) -> rusqlite::Result<Option<KeyValue>> {
        self.conn
            .prepare_cached(
                "SELECT c.create_revision, c.mod_revision, h.value
                 FROM current c JOIN history h ON h.revision = c.mod_revision
                 WHERE c.key = ?1",
            )?
            .query_row([key.as_bytes()], |r| {
                Ok(KeyValue {
                    key: key.to_string(),
                    create_revision: r.get(0)?,
                    mod_revision: r.get(1)?,
                    value: Bytes::from(r.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default()),
                })
            })
            .optional()
    }

    fn insert_history(
        &self,
        revision: Revision,
        key: &str,
        op: i64,
        create_revision: Revision,
        prev_revision: Option<Revision>,
        value: Option<&Bytes>,
    ) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO history (revision, key, op, create_revision, prev_revision, value)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                revision,
                key.as_bytes(),
                op,
                create_revision,
                prev_revision,
                value.map(|v| v.as_ref())
            ])?;
        Ok(())
    }

    fn maintain(&mut self, waiters: &mut Vec<(Revision, oneshot::Sender<Result<()>>)>) {
        match self.compactor.step(&self.conn, &self.path, self.revision) {
            Ok(Some(compacted)) => {
                self.shared.compacted.store(compacted, Ordering::Release);
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, "compaction step failed; will retry");
                for (_, reply) in waiters.drain(..) {
                    let _ = reply.send(Err(clone_err(&err)));
                }
                return;
            }
        }
        let compacted = self.shared.compacted.load(Ordering::Acquire);
        let mut i = 0;
        while i < waiters.len() {
            if waiters[i].0 <= compacted {
                let (_, reply) = waiters.swap_remove(i);
                let _ = reply.send(Ok(()));
            } else {
                i += 1;
            }
        }
    }
}

/// A copy of an engine error for every request of a failed group.
fn clone_err(err: &StoreError) -> StoreError {
    match err {
        StoreError::DiskFull { path } => StoreError::DiskFull { path: path.clone() },
        StoreError::Corrupt { path, detail } => StoreError::Corrupt {
            path: path.clone(),
            detail: detail.clone(),
        },
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Database {
            path: String::new(),
            detail: other.to_string(),
        },
    }
}
