//! Crash safety at the API level: `skiff server` is killed with SIGKILL in the
//! middle of a stream of `kubectl create`s. After a restart every object whose
//! create kubectl saw acknowledged is readable, and a watch from the last
//! acknowledged resourceVersion resumes (or answers 410 Gone), never replaying
//! what came before it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestServer;

/// How many kubectl processes create objects at once.
const WRITERS: usize = 4;
/// Bound on the creates of one writer, so the loop ends even if the kill does not come.
const MAX_CREATES_PER_WRITER: usize = 400;
/// Acknowledged creates to wait for before the kill can come.
const MIN_ACKNOWLEDGED: usize = 8;

fn kubectl(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=10s")
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl")
}

/// Creates ConfigMaps `crash-<writer>-<n>` until told to stop; returns the
/// acknowledged ones with their resourceVersions.
fn writer(
    kubeconfig: PathBuf,
    id: usize,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
) -> Vec<(String, u64)> {
    let mut acknowledged = Vec::new();
    for n in 0..MAX_CREATES_PER_WRITER {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let name = format!("crash-{id}-{n}");
        let out = kubectl(
            &kubeconfig,
            &[
                "create",
                "configmap",
                &name,
                "--from-literal=payload=acknowledged",
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ],
        );
        if out.status.success() {
            let rv = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u64>()
                .expect("a created object has a numeric resourceVersion");
            acknowledged.push((name, rv));
            count.fetch_add(1, Ordering::Relaxed);
        }
    }
    acknowledged
}

fn configmap_names(server: &TestServer) -> BTreeSet<String> {
    let out = server.kubectl(&[
        "get",
        "configmaps",
        "-n",
        "default",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert!(
        out.status.success(),
        "listing configmaps after the restart failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn acknowledged_creates_survive_kill_9_and_watches_resume() {
    let mut server = TestServer::start();
    let stop = Arc::new(AtomicBool::new(false));
    let results = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));

    let handles: Vec<_> = (0..WRITERS)
        .map(|id| {
            let (kubeconfig, stop, results, count) = (
                server.kubeconfig.clone(),
                stop.clone(),
                results.clone(),
                count.clone(),
            );
            std::thread::spawn(move || {
                let acknowledged = writer(kubeconfig, id, stop, count);
                results.lock().expect("results lock").extend(acknowledged);
            })
        })
        .collect();

    // Once some creates are acknowledged (kubectl's first call against a new
    // server does discovery, which takes a while on a busy machine), kill at
    // a moment that varies from run to run, while creates are in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::Relaxed) < MIN_ACKNOWLEDGED && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::thread::sleep(Duration::from_millis(u64::from(nanos % 1500)));
    server.kill_hard();
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.join().expect("writer thread");
    }
    let acknowledged = std::mem::take(&mut *results.lock().expect("results lock"));
    assert!(
        acknowledged.len() >= MIN_ACKNOWLEDGED,
        "too few creates were acknowledged before the kill ({}); log:\n{}",
        acknowledged.len(),
        server.log()
    );

    server.launch(&[]);
    server.wait_ready();

    let present = configmap_names(&server);
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|(name, _)| !present.contains(name))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates were lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    for (name, _) in acknowledged.iter().take(3) {
        let out = server.kubectl(&["get", "configmap", name, "-o", "jsonpath={.data.payload}"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "acknowledged");
    }

    // A watch from the newest acknowledged resourceVersion resumes after it.
    let last_rv = acknowledged.iter().map(|(_, rv)| *rv).max().unwrap_or(0);
    let watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .arg("get")
        .arg("--raw")
        .arg(format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={last_rv}&timeoutSeconds=4"
        ))
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the watch");
    std::thread::sleep(Duration::from_millis(500));
    let out = server.kubectl(&["create", "configmap", "after-restart"]);
    assert!(
        out.status.success(),
        "create after restart: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let watched = watch
        .wait_with_output()
        .expect("the watch ends at its timeout");
    let text = String::from_utf8_lossy(&watched.stdout);
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("each watch line is a JSON event"))
        .collect();

    let gone = events
        .iter()
        .any(|e| e["type"] == "ERROR" && e["object"]["code"] == serde_json::json!(410));
    if !gone {
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["type"] == "ADDED")
            .filter_map(|e| e["object"]["metadata"]["name"].as_str())
            .collect();
        assert!(
            names.contains(&"after-restart"),
            "the resumed watch did not see the new object; events: {text}"
        );
        for e in &events {
            if let Some(rv) = e["object"]["metadata"]["resourceVersion"].as_str() {
                let rv: u64 = rv.parse().expect("numeric resourceVersion");
                assert!(
                    rv > last_rv,
                    "the watch replayed an event at or before {last_rv}: {e}"
                );
            }
        }
    }
}
