//! The store's etcd-like semantics through the `Backend` trait: create, get,
//! CAS update and delete, paged lists at a revision, watch with replay,
//! compaction, TTL expiry, endpoints and schema checks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use skiff::store::sqlite::{Config, SqliteStore};
use skiff::store::{Backend, EventKind, ListOptions, StoreError, WatchStream};

async fn store(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let mut config = Config::new(dir.path().join("state.db"));
    config.compaction.enabled = false;
    Arc::new(SqliteStore::open(config).await.expect("open store"))
}

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

async fn next(w: &mut WatchStream) -> skiff::store::Event {
    tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("watch event in time")
        .expect("stream open")
        .expect("event, not error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_update_delete_follow_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    assert_eq!(s.current_revision().await.unwrap(), 0);

    let a = s.create("/a", b("1"), None).await.unwrap();
    assert_eq!((a.create_revision, a.mod_revision), (1, 1));
    assert!(
        matches!(s.create("/a", b("x"), None).await, Err(StoreError::KeyExists(k)) if k == "/a")
    );
    // A failed write takes no revision.
    assert_eq!(s.current_revision().await.unwrap(), 1);

    let (kv, res) = s.update("/a", b("2"), 1, None).await.unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, res.revision),
        (1, 2, 2)
    );
    assert_eq!(res.prev.value, b("1"));

    match s.update("/a", b("3"), 1, None).await {
        Err(StoreError::Conflict {
            current: Some(cur), ..
        }) => {
            assert_eq!((cur.mod_revision, cur.value.clone()), (2, b("2")))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        s.update("/missing", b("3"), 1, None).await,
        Err(StoreError::Conflict { current: None, .. })
    ));

    assert_eq!(s.get("/a", None).await.unwrap().unwrap().value, b("2"));
    assert_eq!(s.get("/a", Some(1)).await.unwrap().unwrap().value, b("1"));
    assert!(matches!(
        s.get("/a", Some(9)).await,
        Err(StoreError::FutureRevision {
            requested: 9,
            current: 2
        })
    ));

    assert!(matches!(
        s.delete("/a", Some(1)).await,
        Err(StoreError::Conflict { .. })
    ));
    let del = s.delete("/a", Some(2)).await.unwrap();
    assert_eq!((del.revision, del.prev.value.clone()), (3, b("2")));
    assert!(s.get("/a", None).await.unwrap().is_none());
    assert_eq!(s.get("/a", Some(2)).await.unwrap().unwrap().value, b("2"));
    assert!(matches!(
        s.delete("/a", None).await,
        Err(StoreError::NotFound(_))
    ));

    // Recreating starts a new incarnation.
    let again = s.create("/a", b("new"), None).await.unwrap();
    assert_eq!((again.create_revision, again.mod_revision), (4, 4));
    assert!(s.get("/a", Some(3)).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_at_one_revision_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    for i in 0..50 {
        s.create(&format!("/p/{i:03}"), b(&format!("v{i}")), None)
            .await
            .unwrap();
    }
    s.create("/q/other", b("x"), None).await.unwrap();
    assert_eq!(s.count("/p/").await.unwrap(), 50);

    let first = s
        .list(
            "/p/",
            ListOptions {
                limit: Some(20),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.kvs.len(), 20);
    assert!(first.more);
    assert_eq!(first.remaining, 30);
    let at = first.revision;

    // Change the world between pages: delete, modify, create, recreate.
    let k25 = s.get("/p/025", None).await.unwrap().unwrap();
    s.delete("/p/025", None).await.unwrap();
    let k30 = s.get("/p/030", None).await.unwrap().unwrap();
    s.update("/p/030", b("changed"), k30.mod_revision, None)
        .await
        .unwrap();
    s.create("/p/0255", b("late"), None).await.unwrap();
    s.delete("/p/040", None).await.unwrap();
    s.create("/p/040", b("reborn"), None).await.unwrap();

    let mut all = first.kvs.clone();
    let mut after = first.kvs.last().map(|kv| kv.key.clone());
    loop {
        let page = s
            .list(
                "/p/",
                ListOptions {
                    revision: Some(at),
                    start_after: after.clone(),
                    limit: Some(20),
                },
            )
            .await
            .unwrap();
        assert_eq!(page.revision, at);
        all.extend(page.kvs.iter().cloned());
        if !page.more {
            assert_eq!(page.remaining, 0);
            break;
        }
        assert_eq!(page.remaining as usize, 50 - all.len());
        after = page.kvs.last().map(|kv| kv.key.clone());
    }
    let keys: Vec<String> = all.iter().map(|kv| kv.key.clone()).collect();
    let expected: Vec<String> = (0..50).map(|i| format!("/p/{i:03}")).collect();
    assert_eq!(
        keys, expected,
        "the paged list is the state at its revision"
    );
    assert_eq!(all[25], k25);
    assert_eq!(all[30], k30);
    assert_eq!(all[40].value, b("v40"));

    let latest = s.list("/p/", ListOptions::default()).await.unwrap();
    assert_eq!(latest.kvs.len(), 50);
    assert!(latest.kvs.iter().any(|kv| kv.key == "/p/0255"));
    assert_eq!(latest.revision, s.current_revision().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_replays_then_follows_live_with_prev_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    s.create("/w/a", b("1"), None).await.unwrap(); // 1
    s.create("/other", b("x"), None).await.unwrap(); // 2
    s.update("/w/a", b("2"), 1, None).await.unwrap(); // 3

    let mut w = s.watch("/w/", 1).await.unwrap();
    let e = next(&mut w).await;
    assert_eq!((e.kind, e.revision), (EventKind::Modified, 3));
    assert_eq!(e.prev.as_ref().unwrap().value, b("1"));

    s.delete("/w/a", None).await.unwrap(); // 4
    s.create("/w/b", b("b"), None).await.unwrap(); // 5
    let e = next(&mut w).await;
    assert_eq!(
        (e.kind, e.revision, e.kv.value.clone()),
        (EventKind::Deleted, 4, b("2"))
    );
    assert_eq!(e.prev.as_ref().unwrap().mod_revision, 3);
    let e = next(&mut w).await;
    assert_eq!(
        (e.kind, e.revision, e.prev.clone()),
        (EventKind::Created, 5, None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_older_than_the_ring_replays_from_history_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("state.db"));
    config.compaction.enabled = false;
    config.ring_capacity = 16;
    let s = Arc::new(SqliteStore::open(config).await.unwrap());
    // More than two replay chunks of history, written by 8 writers at once.
    let mut fill = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        fill.push(tokio::spawn(async move {
            for i in 0..625 {
                s.create(&format!("/h/{t}/{i}"), b("v"), None)
                    .await
                    .unwrap();
            }
        }));
    }
    for f in fill {
        f.await.unwrap();
    }
    let mut w = s.watch("/h/", 10).await.unwrap();
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 5000..5200 {
                s.create(&format!("/h/{i}"), b("v"), None).await.unwrap();
            }
        })
    };
    for rev in 11..=5200 {
        assert_eq!(next(&mut w).await.revision, rev);
    }
    writer.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_makes_old_revisions_unreadable_but_keeps_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    s.create("/c/a", b("1"), None).await.unwrap(); // 1
    s.update("/c/a", b("2"), 1, None).await.unwrap(); // 2
    s.create("/c/b", b("b"), None).await.unwrap(); // 3
    s.delete("/c/b", None).await.unwrap(); // 4
    s.update("/c/a", b("3"), 2, None).await.unwrap(); // 5

    s.compact(4).await.unwrap();
    assert_eq!(s.compacted_revision(), 4);
    assert!(matches!(
        s.get("/c/a", Some(3)).await,
        Err(StoreError::Compacted {
            requested: 3,
            compacted: 4
        })
    ));
    assert!(matches!(
        s.watch("/c/", 2).await,
        Err(StoreError::Compacted { .. })
    ));
    assert_eq!(s.get("/c/a", Some(4)).await.unwrap().unwrap().value, b("2"));
    assert!(s.get("/c/b", Some(4)).await.unwrap().is_none());
    let at4 = s
        .list(
            "/c/",
            ListOptions {
                revision: Some(4),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(at4.kvs.len(), 1);
    let mut w = s.watch("/c/", 4).await.unwrap();
    let e = next(&mut w).await;
    assert_eq!((e.revision, e.prev.unwrap().value), (5, b("2")));
    assert!(matches!(
        s.compact(99).await,
        Err(StoreError::FutureRevision { .. })
    ));

    // The compacted revision survives a restart.
    drop(w);
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s = store(&dir).await;
    assert_eq!(s.compacted_revision(), 4);
    assert_eq!(s.current_revision().await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_keys_expire_with_a_deleted_event() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    s.create("/e/keep", b("k"), None).await.unwrap();
    let kv = s
        .create("/e/short", b("s"), Some(Duration::from_millis(300)))
        .await
        .unwrap();
    let mut w = s.watch("/e/", kv.mod_revision).await.unwrap();
    let e = next(&mut w).await;
    assert_eq!(
        (e.kind, e.kv.key.as_str(), e.kv.value.clone()),
        (EventKind::Deleted, "/e/short", b("s"))
    );
    assert!(s.get("/e/short", None).await.unwrap().is_none());
    assert!(s.get("/e/keep", None).await.unwrap().is_some());
    // Updating without a TTL clears it.
    let kv = s
        .create("/e/x", b("1"), Some(Duration::from_millis(200)))
        .await
        .unwrap();
    s.update("/e/x", b("2"), kv.mod_revision, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.get("/e/x", None).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_is_dropped_with_lagged() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("state.db"));
    config.watch_queue = 8;
    let s = Arc::new(SqliteStore::open(config).await.unwrap());
    let mut w = s.watch("/", 0).await.unwrap();
    for i in 0..50 {
        s.create(&format!("/l/{i}"), b("v"), None).await.unwrap();
    }
    let mut got = 0;
    loop {
        match w.next().await {
            Some(Ok(_)) => got += 1,
            Some(Err(StoreError::WatcherLagged)) => break,
            other => panic!("expected lagged, got {other:?}"),
        }
    }
    assert!(got <= 8, "only the queued events arrive before the error");
    assert!(w.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_rejects_foreign_engines_newer_schemas_and_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let s = skiff::store::open(None, dir.path()).await.unwrap();
    s.create("/x", b("1"), None).await.unwrap();
    drop(s);
    assert!(dir.path().join("server/db/state.db").exists());

    assert!(matches!(
        skiff::store::open(Some("postgres://db/skiff"), dir.path()).await,
        Err(StoreError::Database { .. })
    ));

    let newer = dir.path().join("newer.db");
    {
        let c = rusqlite::Connection::open(&newer).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    let err = skiff::store::open(Some(newer.to_str().unwrap()), dir.path())
        .await
        .err();
    assert!(
        matches!(err, Some(StoreError::NewerSchema { found: 99, .. })),
        "{err:?}"
    );

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let uri = format!("sqlite://{}", garbage.display());
    match skiff::store::open(Some(&uri), dir.path()).await.err() {
        Some(StoreError::Corrupt { path, .. }) => assert!(path.contains("garbage.db")),
        other => panic!("expected corrupt, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    s.create("/t/a", b("a"), Some(Duration::from_millis(400)))
        .await
        .unwrap();
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s = store(&dir).await;
    let mut w = s.watch("/t/", 1).await.unwrap();
    let e = next(&mut w).await;
    assert_eq!(
        (e.kind, e.revision, e.kv.key.as_str()),
        (EventKind::Deleted, 2, "/t/a")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_pages_are_reported_as_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = store(&dir).await;
    for i in 0..200 {
        s.create(&format!("/d/{i:03}"), Bytes::from(vec![b'v'; 1024]), None)
            .await
            .unwrap();
    }
    drop(s);
    tokio::time::sleep(Duration::from_millis(200)).await;
    {
        // Fold the WAL into the file, then scribble over everything after
        // the first pages (the header and schema stay readable).
        let c = rusqlite::Connection::open(&path).unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for byte in &mut bytes[4 * 4096..len] {
        *byte = 0xA5;
    }
    std::fs::write(&path, bytes).unwrap();
    let err = match SqliteStore::open(Config::new(&path)).await {
        Err(e) => e,
        Ok(s) => s
            .list("/d/", ListOptions::default())
            .await
            .expect_err("reading damaged pages"),
    };
    match err {
        StoreError::Corrupt { path: p, .. } => assert!(p.ends_with("state.db")),
        other => panic!("expected corrupt, got {other:?}"),
    }
}
