//! Property tests of the store against a model: random operation sequences
//! leave a history that gets, paged lists and watches at every revision
//! report exactly; concurrent writers get gap-free, ordered revisions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use proptest::prelude::*;
use skiff::store::sqlite::{Config, SqliteStore};
use skiff::store::{Backend, EventKind, KeyValue, ListOptions, Revision, StoreError};

#[derive(Debug, Clone)]
enum Op {
    Create(u8, u8),
    Update(u8, u8, bool),
    Delete(u8, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..12, any::<u8>()).prop_map(|(k, v)| Op::Create(k, v)),
        (0u8..12, any::<u8>(), any::<bool>()).prop_map(|(k, v, stale)| Op::Update(k, v, stale)),
        (0u8..12, any::<bool>()).prop_map(|(k, stale)| Op::Delete(k, stale)),
    ]
}

fn key(k: u8) -> String {
    format!("/m/{k:02}")
}

type State = BTreeMap<String, KeyValue>;

/// Applies `ops` to the store and to a model; returns the model's state after
/// every revision (index = revision) and the expected event log.
async fn run(s: &SqliteStore, ops: &[Op]) -> (Vec<State>, Vec<(Revision, EventKind, String)>) {
    let mut states = vec![State::new()];
    let mut log = Vec::new();
    for op in ops {
        let mut state = states.last().cloned().unwrap_or_default();
        let rev = states.len() as Revision;
        match op {
            Op::Create(k, v) => {
                let r = s.create(&key(*k), Bytes::from(vec![*v]), None).await;
                if state.contains_key(&key(*k)) {
                    assert!(matches!(r, Err(StoreError::KeyExists(_))));
                    continue;
                }
                let kv = r.expect("create");
                assert_eq!(kv.mod_revision, rev);
                state.insert(key(*k), kv);
                log.push((rev, EventKind::Created, key(*k)));
            }
            Op::Update(k, v, stale) => {
                let cur = state.get(&key(*k)).cloned();
                let expected = cur.as_ref().map_or(1, |c| c.mod_revision) - i64::from(*stale);
                let r = s
                    .update(&key(*k), Bytes::from(vec![*v]), expected, None)
                    .await;
                match cur {
                    Some(c) if !*stale => {
                        let (kv, res) = r.expect("update");
                        assert_eq!((kv.mod_revision, res.prev), (rev, c));
                        state.insert(key(*k), kv);
                        log.push((rev, EventKind::Modified, key(*k)));
                    }
                    cur => {
                        match r {
                            Err(StoreError::Conflict { current, .. }) => {
                                assert_eq!(current.map(|c| *c), cur)
                            }
                            other => panic!("expected conflict, got {other:?}"),
                        }
                        continue;
                    }
                }
            }
            Op::Delete(k, stale) => {
                let cur = state.get(&key(*k)).cloned();
                let expected = cur.as_ref().map(|c| c.mod_revision - i64::from(*stale));
                let r = s.delete(&key(*k), expected).await;
                match cur {
                    None => {
                        assert!(matches!(r, Err(StoreError::NotFound(_))));
                        continue;
                    }
                    Some(_) if *stale => {
                        assert!(matches!(r, Err(StoreError::Conflict { .. })));
                        continue;
                    }
                    Some(c) => {
                        let res = r.expect("delete");
                        assert_eq!((res.revision, res.prev), (rev, c));
                        state.remove(&key(*k));
                        log.push((rev, EventKind::Deleted, key(*k)));
                    }
                }
            }
        }
        states.push(state);
    }
    (states, log)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn reads_and_watches_at_every_revision_match_the_model(
        ops in proptest::collection::vec(op(), 1..60),
        page in 1usize..5,
        ring in 1usize..8,
    ) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut config = Config::new(dir.path().join("state.db"));
            config.compaction.enabled = false;
            config.ring_capacity = ring;
            // Bytes bound the ring too (an event here is 6 or 12 bytes).
            config.ring_bytes = ring * 6;
            let s = SqliteStore::open(config).await.unwrap();
            let (states, log) = run(&s, &ops).await;
            let head = (states.len() - 1) as Revision;
            assert_eq!(s.current_revision().await.unwrap(), head);

            for (rev, state) in states.iter().enumerate() {
                let rev = rev as Revision;
                for k in 0..12 {
                    let got = s.get(&key(k), Some(rev)).await.unwrap();
                    assert_eq!(got.as_ref(), state.get(&key(k)), "get {} at {rev}", key(k));
                }
                let mut listed = Vec::new();
                let mut after = None;
                loop {
                    let opts = ListOptions { revision: Some(rev), start_after: after.clone(), limit: Some(page) };
                    let p = s.list("/m/", opts).await.unwrap();
                    listed.extend(p.kvs.iter().cloned());
                    assert_eq!(p.remaining as usize, state.len() - listed.len(), "remaining at {rev}");
                    if !p.more { break; }
                    after = p.kvs.last().map(|kv| kv.key.clone());
                }
                let expected: Vec<KeyValue> = state.values().cloned().collect();
                assert_eq!(listed, expected, "list at {rev}");

                let mut w = s.watch("/m/", rev).await.unwrap();
                for (r, kind, k) in log.iter().filter(|(r, ..)| *r > rev) {
                    let e = tokio::time::timeout(Duration::from_secs(5), w.next()).await
                        .expect("event in time").expect("open").expect("event");
                    assert_eq!((&e.revision, &e.kind, &e.kv.key), (r, kind, k));
                    let before = &states[(*r - 1) as usize];
                    assert_eq!(e.prev.as_ref(), before.get(k), "prev of {r}");
                }
            }
        });
    }

    #[test]
    fn compaction_keeps_every_readable_revision_intact(
        ops in proptest::collection::vec(op(), 1..60),
        cut in 0.0f64..1.0,
    ) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut config = Config::new(dir.path().join("state.db"));
            config.compaction.enabled = false;
            let s = SqliteStore::open(config).await.unwrap();
            let (states, _) = run(&s, &ops).await;
            let head = (states.len() - 1) as Revision;
            let c = (head as f64 * cut) as Revision;
            s.compact(c).await.unwrap();
            for (rev, state) in states.iter().enumerate() {
                let rev = rev as Revision;
                let r = s.list("/m/", ListOptions { revision: Some(rev), ..Default::default() }).await;
                if rev < c {
                    assert!(matches!(r, Err(StoreError::Compacted { .. })), "{rev} < {c}");
                } else {
                    let expected: Vec<KeyValue> = state.values().cloned().collect();
                    assert_eq!(r.unwrap().kvs, expected, "list at {rev} after compacting to {c}");
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_get_gap_free_ordered_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(
        SqliteStore::open(Config::new(dir.path().join("state.db")))
            .await
            .unwrap(),
    );
    let mut w = s.watch("/", 0).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let shared = "/shared".to_string();
            for i in 0..100 {
                let kv = s
                    .create(&format!("/own/{t}/{i}"), Bytes::from("v"), None)
                    .await
                    .unwrap();
                acked.push(kv.mod_revision);
                // Contend on one key with CAS; retry from the conflict's value.
                let mut cur = match s.create(&shared, Bytes::from("0"), None).await {
                    Ok(kv) => {
                        acked.push(kv.mod_revision);
                        continue;
                    }
                    Err(StoreError::KeyExists(_)) => s.get(&shared, None).await.unwrap().unwrap(),
                    Err(e) => panic!("{e}"),
                };
                loop {
                    match s
                        .update(
                            &shared,
                            Bytes::from(format!("{t}-{i}")),
                            cur.mod_revision,
                            None,
                        )
                        .await
                    {
                        Ok((kv, res)) => {
                            assert_eq!(res.prev.mod_revision, cur.mod_revision);
                            acked.push(kv.mod_revision);
                            break;
                        }
                        Err(StoreError::Conflict {
                            current: Some(c), ..
                        }) => cur = *c,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            acked
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    let n = all.len() as Revision;
    assert_eq!(
        all,
        (1..=n).collect::<Vec<_>>(),
        "every revision acknowledged exactly once"
    );
    for expected in 1..=n {
        let e = w.next().await.unwrap().unwrap();
        assert_eq!(
            e.revision, expected,
            "the watch sees every revision in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_at_a_revision_is_consistent_while_writers_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(
        SqliteStore::open(Config::new(dir.path().join("state.db")))
            .await
            .unwrap(),
    );
    for i in 0..300 {
        s.create(&format!("/p/{i:03}"), Bytes::from("0"), None)
            .await
            .unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for t in 0..4u64 {
        let (s, stop) = (s.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = t;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("/p/{:03}", (i * 37) % 300);
                match s.get(&key, None).await.unwrap() {
                    Some(kv) if i % 3 == 0 => {
                        let _ = s.delete(&key, Some(kv.mod_revision)).await;
                    }
                    Some(kv) => {
                        let _ = s
                            .update(&key, Bytes::from(i.to_string()), kv.mod_revision, None)
                            .await;
                    }
                    None => {
                        let _ = s.create(&key, Bytes::from("new"), None).await;
                    }
                }
                i += 4;
            }
        }));
    }
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let whole = s.list("/p/", ListOptions::default()).await.unwrap();
        // Page only once the store has moved past the revision read, so every
        // page is a read of the past (bounded wait: the machine may be busy).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while s.current_revision().await.unwrap() <= whole.revision {
            assert!(
                std::time::Instant::now() < deadline,
                "writers made no progress in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let opts = ListOptions {
                revision: Some(whole.revision),
                start_after: after.clone(),
                limit: Some(7),
            };
            let page = s.list("/p/", opts).await.unwrap();
            assert_eq!(page.revision, whole.revision);
            paged.extend(page.kvs.iter().cloned());
            assert_eq!(page.remaining as usize, whole.kvs.len() - paged.len());
            if !page.more {
                break;
            }
            after = page.kvs.last().map(|kv| kv.key.clone());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(
            paged, whole.kvs,
            "pages at {} differ from one read at it",
            whole.revision
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
}
