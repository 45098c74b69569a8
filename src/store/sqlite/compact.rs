//! Compaction and file maintenance, run by the writer between groups.
//!
//! Compacting up to C keeps, for every key, its latest history row as of C
//! and everything after C, and needs no scan: for each history row r with a
//! revision in (old compacted, C], the row r superseded (`prev_revision`) is
//! deleted, and r itself too if it is a delete. Work is done in batches of a
//! bounded number of revisions, each its own short transaction, so writes are
//! never held up for long. Compaction commits need no fsync of their own (a
//! lost compaction is simply redone; the next durable commit syncs the WAL),
//! so they run with `synchronous = NORMAL`.
//!
//! The automatic target keeps both the last `retain_revisions` revisions and
//! the last `retain_for` of history. Freed pages are reused by new writes;
//! when the free list grows past a quarter of the file it is returned to the
//! file system with `incremental_vacuum`, and the WAL is truncated with a
//! checkpoint once it passes a few megabytes.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use super::schema;
use crate::store::{Result, Revision};

/// When and how much history the store keeps.
#[derive(Debug, Clone)]
pub struct CompactionConfig {
    /// Compact automatically (on by default).
    pub enabled: bool,
    /// Always keep at least this many of the latest revisions.
    pub retain_revisions: i64,
    /// Always keep the revisions written within this long.
    pub retain_for: Duration,
    /// How often the automatic target and the file size are looked at.
    pub interval: Duration,
    /// Revisions compacted per transaction.
    pub batch: i64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            retain_revisions: 1000,
            retain_for: Duration::from_secs(300),
            interval: Duration::from_secs(5),
            batch: 2000,
        }
    }
}

/// The WAL size past which a truncating checkpoint is run.
const WAL_TRUNCATE_BYTES: u64 = 4 << 20;

pub struct Compactor {
    config: CompactionConfig,
    compacted: Revision,
    goal: Revision,
    next_tick: Instant,
    /// (time, revision at that time), one entry per tick, for `retain_for`.
    timeline: VecDeque<(Instant, Revision)>,
    /// After a failed batch (a full disk, say), no retry before this.
    retry_at: Instant,
}

impl Compactor {
    pub fn new(config: CompactionConfig, compacted: Revision, revision: Revision) -> Self {
        let now = Instant::now();
        Self {
            next_tick: now + config.interval,
            timeline: VecDeque::from([(now, revision)]),
            config,
            compacted,
            goal: compacted,
            retry_at: now,
        }
    }

    /// Asks for compaction up to `revision`.
    pub fn request(&mut self, revision: Revision) {
        self.goal = self.goal.max(revision);
    }

    /// How long until there is work to do.
    pub fn until_due(&self) -> Duration {
        if self.goal > self.compacted && Instant::now() >= self.retry_at {
            Duration::ZERO
        } else {
            self.next_tick.saturating_duration_since(Instant::now())
        }
    }

    /// Does whatever is due: the periodic tick (automatic target, vacuum,
    /// checkpoint) and one compaction batch. Returns the new compacted
    /// revision when it moved.
    pub fn step(
        &mut self,
        conn: &Connection,
        path: &Path,
        revision: Revision,
    ) -> Result<Option<Revision>> {
        let e = |err| schema::map_err(path, err);
        let now = Instant::now();
        if now >= self.next_tick {
            self.next_tick = now + self.config.interval;
            if self.config.enabled {
                self.timeline.push_back((now, revision));
                let target = self.auto_target(now, revision);
                self.goal = self.goal.max(target);
            }
            maintain_file(conn, path).map_err(e)?;
        }
        if self.goal <= self.compacted || now < self.retry_at {
            return Ok(None);
        }
        let upto = self.goal.min(self.compacted + self.config.batch.max(1));
        if let Err(err) = compact_batch(conn, self.compacted, upto, revision) {
            self.retry_at = now + self.config.interval;
            return Err(e(err));
        }
        self.compacted = upto;
        Ok(Some(upto))
    }

    /// The newest revision that is both `retain_revisions` old and older
    /// than `retain_for`.
    fn auto_target(&mut self, now: Instant, revision: Revision) -> Revision {
        let by_count = revision - self.config.retain_revisions.max(0);
        let by_time = match now.checked_sub(self.config.retain_for) {
            None => 0,
            Some(cutoff) => {
                while self.timeline.len() > 1 && self.timeline[1].0 <= cutoff {
                    self.timeline.pop_front();
                }
                match self.timeline.front() {
                    Some(&(t, r)) if t <= cutoff => r,
                    _ => 0,
                }
            }
        };
        by_count.min(by_time).max(0)
    }
}

/// Compacts the history rows in `(from, to]` in one transaction.
fn compact_batch(
    conn: &Connection,
    from: Revision,
    to: Revision,
    revision: Revision,
) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE")?;
    let result = (|| {
        conn.prepare_cached(
            "DELETE FROM history WHERE revision IN (
                 SELECT prev_revision FROM history
                 WHERE revision > ?1 AND revision <= ?2 AND prev_revision IS NOT NULL)",
        )?
        .execute(params![from, to])?;
        conn.prepare_cached(
            "DELETE FROM history WHERE revision > ?1 AND revision <= ?2 AND op = ?3",
        )?
        .execute(params![from, to, schema::OP_DELETE])?;
        conn.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'compacted'")?
            .execute([to])?;
        conn.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?
            .execute([revision])?;
        conn.execute_batch("COMMIT")
    })();
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let restored = conn.execute_batch("PRAGMA synchronous = FULL");
    result.and(restored)
}

/// Returns free pages to the file system once they are a quarter of the
/// file, and truncates a WAL that has grown past a few megabytes.
fn maintain_file(conn: &Connection, path: &Path) -> rusqlite::Result<()> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    if free > 256 && free * 4 > pages {
        let release = free - pages / 8;
        // The pragma frees pages as it is stepped: step it to the end.
        let mut stmt = conn.prepare(&format!("PRAGMA incremental_vacuum({release})"))?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        tracing::debug!(release, pages, "returned free pages to the file system");
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
    if wal_bytes > WAL_TRUNCATE_BYTES {
        // A truncating checkpoint waits for readers through the busy
        // handler, and readers keep coming: never let it hold up the writer.
        // If readers are in the way it does what it can and the next tick
        // tries again.
        conn.busy_timeout(Duration::ZERO)?;
        let checkpoint = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        conn.busy_timeout(schema::BUSY_TIMEOUT)?;
        match checkpoint {
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
            other => other?,
        }
    }
    Ok(())
}
