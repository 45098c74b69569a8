//! Bounded growth: 200,000 updates to 1,000 keys of 1 KiB with automatic
//! compaction keep the database file plus its WAL under a small multiple of
//! the live data, during the run and at its end.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use skiff::store::sqlite::{Config, SqliteStore};
use skiff::store::{Backend, ListOptions};

const KEYS: usize = 1_000;
const UPDATES: usize = 200_000;
const VALUE: usize = 1024;
const WRITERS: usize = 64;
/// Live data is KEYS × VALUE = 1 MiB; the bound is 16 MiB (see docs/store.md:
/// live rows, the retained window of 1,000 revisions, a free list of at most
/// a quarter of the file, and a WAL checkpointed every 1,000 pages and
/// truncated past 4 MiB). Measured peaks are about 9-10 MiB.
const BOUND: u64 = 16 * (KEYS * VALUE) as u64;

fn on_disk(db: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    size(db) + size(Path::new(&wal))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_churn_keeps_the_file_and_wal_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let mut config = Config::new(&db);
    config.compaction.retain_revisions = 1_000;
    config.compaction.retain_for = Duration::ZERO;
    config.compaction.interval = Duration::from_millis(100);
    let s = Arc::new(SqliteStore::open(config).await.expect("open"));

    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for k in (t..KEYS).step_by(WRITERS) {
                let kv = s
                    .create(&format!("/g/{k:04}"), Bytes::from(vec![b'x'; VALUE]), None)
                    .await;
                revs.push((k, kv.expect("create").mod_revision));
            }
            for i in 0..UPDATES / WRITERS {
                let slot = i % revs.len();
                let (k, rev) = revs[slot];
                let value = Bytes::from(vec![(i % 251) as u8; VALUE]);
                let (kv, _) = s
                    .update(&format!("/g/{k:04}"), value, rev, None)
                    .await
                    .expect("update");
                revs[slot].1 = kv.mod_revision;
            }
        }));
    }
    // Readers run all along, as the API server's would: checkpoints must
    // keep the WAL bounded without ever waiting for them.
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..2 {
        let (s, done) = (s.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while !done.load(Ordering::Relaxed) {
                let key = format!("/g/{:04}", (reads * 7 + r) % KEYS as u64);
                s.get(&key, None).await.expect("get");
                let opts = ListOptions {
                    start_after: Some(key),
                    limit: Some(50),
                    ..Default::default()
                };
                s.list("/g/", opts).await.expect("list");
                reads += 1;
            }
            reads
        }));
    }
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (peak, done, db) = (peak.clone(), done.clone(), db.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(on_disk(&db), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    for t in tasks {
        t.await.expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    sampler.await.expect("sampler");
    let mut reads = 0;
    for r in readers {
        reads += r.await.expect("reader");
    }
    assert!(reads > 0);
    let elapsed = started.elapsed();

    let head = s.current_revision().await.expect("revision");
    assert_eq!(head as usize, KEYS + UPDATES / WRITERS * WRITERS);
    let list = s.list("/g/", ListOptions::default()).await.expect("list");
    assert_eq!(list.kvs.len(), KEYS);
    // Compaction kept up: at most the window plus a few batches behind.
    let compacted = s.compacted_revision();
    assert!(head - compacted < 10_000, "compacted {compacted} of {head}");

    let peak = peak.load(Ordering::Relaxed).max(on_disk(&db));
    eprintln!(
        "growth: {UPDATES} updates in {elapsed:?} ({:.0}/s) beside {reads} reads; peak file+WAL {} KiB, end {} KiB, bound {} KiB",
        UPDATES as f64 / elapsed.as_secs_f64(),
        peak / 1024,
        on_disk(&db) / 1024,
        BOUND / 1024
    );
    assert!(
        peak <= BOUND,
        "file + WAL peaked at {peak} bytes, over the bound {BOUND}"
    );
}
