//! Crash safety: a child process writes as fast as it can and prints every
//! write the store acknowledged; the parent kills it with SIGKILL at a random
//! moment, reopens the database and checks that every acknowledged write is
//! there, that the log has no gap, that revisions go on from where they were
//! and that SQLite's integrity check passes.
//!
//! The child is this test binary run again with `CHILD_ENV` set, running only
//! `crash_child`, so the product needs no test-only subcommand.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use skiff::store::sqlite::{Config, SqliteStore};
use skiff::store::{Backend, Revision, StoreError};

const CHILD_ENV: &str = "SKIFF_STORE_CRASH_CHILD_DB";
const WRITERS: usize = 8;

/// Kills and reaps the child however the test ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child: only does something when started by the parent.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let s = Arc::new(SqliteStore::open(Config::new(path)).await.expect("open"));
        let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for t in 0..WRITERS {
            let (s, out) = (s.clone(), out.clone());
            tasks.push(tokio::spawn(async move {
                let counter = format!("/crash/counter/{t}");
                // Earlier rounds' children left their counters behind.
                let mut cur = match s.get(&counter, None).await.expect("get counter") {
                    Some(kv) => kv,
                    None => s
                        .create(&counter, Bytes::from("0"), None)
                        .await
                        .expect("create counter"),
                };
                ack(&out, cur.mod_revision, &counter);
                let pid = std::process::id();
                for i in 0u64.. {
                    let key = format!("/crash/own/{pid}/{t}/{i}");
                    let kv = s
                        .create(&key, Bytes::from(format!("{t}-{i}")), None)
                        .await
                        .expect("create");
                    ack(&out, kv.mod_revision, &key);
                    let (kv, _) = s
                        .update(&counter, Bytes::from(i.to_string()), cur.mod_revision, None)
                        .await
                        .expect("update counter");
                    ack(&out, kv.mod_revision, &counter);
                    cur = kv;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

fn ack(out: &std::sync::Mutex<std::io::Stdout>, revision: Revision, key: &str) {
    let out = out.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = out.lock();
    let _ = writeln!(out, "ACK {revision} {key}");
    let _ = out.flush();
}

fn random_below(n: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(7, |d| d.subsec_nanos() as u64);
    // splitmix64 of the clock: good enough to pick a moment.
    let mut z = nanos.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % n
}

/// Runs the child against `db` until `kill_after` acknowledgements have been
/// read, kills it and returns every acknowledgement it printed.
fn run_and_kill(db: &Path, kill_after: usize) -> Vec<(Revision, String)> {
    let exe = std::env::current_exe().expect("test binary path");
    let child = Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start child");
    let mut child = Reaped(child);
    let stdout = child.0.stdout.take().expect("child stdout");
    let mut acks = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    let mut killed = false;
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (rev, key) = rest.split_once(' ').expect("ACK rev key");
            acks.push((rev.parse().expect("revision"), key.to_string()));
        }
        if !killed && acks.len() >= kill_after {
            // SIGKILL: no destructors, no final checkpoint.
            child.0.kill().expect("kill child");
            killed = true;
        }
    }
    let status = child.0.wait().expect("reap child");
    assert!(killed, "the child stopped by itself: {status}");
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let mut all_acks: Vec<(Revision, String)> = Vec::new();
    for round in 0..3 {
        let kill_after = 200 + random_below(3000) as usize;
        let acks = tokio::task::block_in_place(|| run_and_kill(&db, kill_after));
        assert!(acks.len() >= kill_after, "round {round}");
        all_acks.extend(acks);

        let s = SqliteStore::open(Config::new(&db))
            .await
            .expect("reopen after kill");
        let head = s.current_revision().await.expect("revision");
        let max_acked = all_acks.iter().map(|(r, _)| *r).max().unwrap_or(0);
        assert!(
            head >= max_acked,
            "round {round}: head {head} < acknowledged {max_acked}"
        );
        for (rev, key) in &all_acks {
            let kv =
                s.get(key, None).await.expect("get").unwrap_or_else(|| {
                    panic!("round {round}: acknowledged {key}@{rev} is missing")
                });
            if key.starts_with("/crash/own/") {
                assert_eq!(kv.mod_revision, *rev, "{key}");
            } else {
                assert!(kv.mod_revision >= *rev, "{key} went back in time");
            }
            let at = s
                .get(key, Some(*rev))
                .await
                .expect("get at revision")
                .expect("present");
            assert_eq!(at.mod_revision, *rev, "{key} at its acknowledged revision");
        }
        // The log is gap-free up to the head.
        let mut w = s.watch("/", 0).await.expect("watch");
        for expected in 1..=head {
            let e = w.next().await.expect("open").expect("event");
            assert_eq!(e.revision, expected, "round {round}: the log has a gap");
        }
        drop(w);
        // Revisions go on from the head.
        let next = s
            .create(&format!("/after/{round}"), Bytes::from("x"), None)
            .await
            .expect("write");
        assert_eq!(next.mod_revision, head + 1);
        all_acks.push((next.mod_revision, format!("/after/{round}")));
        drop(s);
        // Let the writer thread close its connection before the next child.
        tokio::time::sleep(Duration::from_millis(200)).await;

        let conn = rusqlite::Connection::open(&db).expect("open for integrity check");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity check");
        assert_eq!(check, "ok", "round {round}");
    }
    assert!(!matches!(
        SqliteStore::open(Config::new(&db)).await.err(),
        Some(StoreError::Corrupt { .. })
    ));
}
