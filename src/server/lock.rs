//! One skiff per data dir: `skiff server` holds an exclusive lock on
//! `<data-dir>/server/skiff.lock` for as long as it runs, so a second server
//! started on the same data dir (two revision counters writing one store)
//! stops with a clear message instead, and offline commands such as
//! `skiff certificate rotate` can tell that the server is still running.
//! The lock is an advisory `flock`: the kernel drops it when the process
//! ends, however it ends, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Why the data dir could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another skiff server is running on the data dir {data_dir} (it holds {path}); stop it first (e.g. `systemctl stop skiff`), or give this one another --data-dir"
    )]
    Held { data_dir: PathBuf, path: PathBuf },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Where the lock lives.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("server").join("skiff.lock")
}

/// Takes the data dir's lock without waiting.
pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
    let path = path(data_dir);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for
    // the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(DataDirLock { _file: file });
    }
    let err = std::io::Error::last_os_error();
    if err.kind() == std::io::ErrorKind::WouldBlock {
        Err(LockError::Held {
            data_dir: data_dir.to_path_buf(),
            path,
        })
    } else {
        Err(io(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = acquire(dir.path()).expect("first lock");
        let second = acquire(dir.path());
        assert!(matches!(second, Err(LockError::Held { .. })), "{second:?}");
        drop(first);
        acquire(dir.path()).expect("lock after release");
    }
}
