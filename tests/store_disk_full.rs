//! A full disk is a typed `DiskFull` error naming the file, not a panic, and
//! the store still serves reads afterwards.
//!
//! The test runs itself again inside a private mount namespace
//! (`unshare -m`) where a 512 KiB tmpfs holds the database, so nothing is
//! mounted on the host. It needs root, as the node tests do.

use std::process::{Command, Stdio};

use bytes::Bytes;
use skiff::store::sqlite::{Config, SqliteStore};
use skiff::store::{Backend, StoreError};

const CHILD_ENV: &str = "SKIFF_STORE_DISK_FULL_DIR";

/// The child: only does something when started by the parent.
#[test]
fn disk_full_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs", &dir])
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        println!("SKIP cannot mount a tmpfs");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let path = std::path::Path::new(&dir).join("state.db");
        let s = SqliteStore::open(Config::new(&path)).await.expect("open");
        let mut written = 0;
        let err = loop {
            match s
                .create(
                    &format!("/full/{written:05}"),
                    Bytes::from(vec![b'x'; 4096]),
                    None,
                )
                .await
            {
                Ok(_) => written += 1,
                Err(e) => break e,
            }
            assert!(written < 10_000, "512 KiB never filled up");
        };
        match err {
            StoreError::DiskFull { path } => assert!(path.ends_with("state.db"), "{path}"),
            other => panic!("expected DiskFull, got {other:?}"),
        }
        assert!(written > 0, "nothing fit at all");
        let first = s.get("/full/00000", None).await.expect("reads still work");
        assert!(first.is_some());
        assert_eq!(s.current_revision().await.expect("revision"), written);
        println!("DISKFULL-OK {written}");
    });
}

#[test]
fn a_full_disk_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(exe)
        .args([
            "disk_full_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => panic!("this test needs `unshare` (util-linux) and root: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() || stdout.contains("running 1 test"),
        "this test needs root and a private mount namespace (unshare -m): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("SKIP"),
        "this test needs root to mount a tmpfs: {stdout}"
    );
    assert!(
        out.status.success() && stdout.contains("DISKFULL-OK"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
