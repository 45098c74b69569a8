//! Container log rotation, as upstream's `ContainerLogManager`: every
//! [`CHECK_EVERY`] each running container's CRI log file is checked, and
//! one larger than `--container-log-max-size` is renamed to
//! `<log>.<UTC timestamp>` and the runtime is asked to reopen the log
//! (CRI `ReopenContainerLog`), so output continues in a fresh file. Only
//! the newest `--container-log-max-files` files (the live one included)
//! are kept. Rotated files are not compressed (upstream gzips all but the
//! newest rotated file).

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_cri::v1::{
    ContainerFilter, ContainerStateValue, ContainerStatusRequest, ListContainersRequest,
    ReopenContainerLogRequest,
};

use crate::runtime::cri::Cri;

/// How often log sizes are checked (upstream's monitoring period).
pub const CHECK_EVERY: Duration = Duration::from_secs(10);
/// CRI `ContainerState::ContainerRunning`.
const RUNNING: i32 = 1;

/// Rotates logs until the process ends.
pub async fn run(cri: Cri, max_size: u64, max_files: u32) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        rotate_all(&cri, max_size, max_files).await;
    }
}

/// One pass over the running containers.
pub async fn rotate_all(cri: &Cri, max_size: u64, max_files: u32) {
    let mut runtime = cri.runtime.clone();
    let containers = match runtime
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                state: Some(ContainerStateValue { state: RUNNING }),
                ..Default::default()
            }),
        })
        .await
    {
        Ok(r) => r.into_inner().containers,
        Err(e) => {
            tracing::debug!(error = %e.message(), "log rotation: cannot list containers");
            return;
        }
    };
    for container in containers {
        let Ok(status) = runtime
            .container_status(ContainerStatusRequest {
                container_id: container.id.clone(),
                verbose: false,
            })
            .await
        else {
            continue;
        };
        let Some(status) = status.into_inner().status else {
            continue;
        };
        if status.log_path.is_empty() {
            continue;
        }
        let log = PathBuf::from(&status.log_path);
        remove_excess(&log, max_files);
        let Ok(meta) = std::fs::metadata(&log) else {
            continue;
        };
        if meta.len() < max_size {
            continue;
        }
        let rotated = rotated_name(&log, jiff::Timestamp::now());
        if let Err(e) = std::fs::rename(&log, &rotated) {
            tracing::warn!(path = %log.display(), error = %e, "log rotation: cannot rename the log");
            continue;
        }
        if let Err(e) = runtime
            .reopen_container_log(ReopenContainerLogRequest {
                container_id: container.id.clone(),
            })
            .await
        {
            // The runtime still writes to the renamed file: put it back.
            tracing::warn!(container = %container.id, error = %e.message(), "log rotation: the runtime cannot reopen the log");
            let _ = std::fs::rename(&rotated, &log);
            continue;
        }
        tracing::debug!(path = %log.display(), "rotated a container log");
        remove_excess(&log, max_files);
    }
}

/// `<log>.<YYYYMMDD-HHMMSS>`, upstream's rotated file name.
fn rotated_name(log: &Path, now: jiff::Timestamp) -> PathBuf {
    let mut name = log.as_os_str().to_os_string();
    name.push(format!(".{}", now.strftime("%Y%m%d-%H%M%S")));
    PathBuf::from(name)
}

/// The rotated files of `log`, oldest first.
fn rotated_files(log: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(base)) = (log.parent(), log.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", base.to_string_lossy());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    // The timestamp suffix sorts by time.
    files.sort();
    files
}

/// Deletes the oldest rotated files beyond `max_files - 1` (the live log
/// is the last of the `max_files`).
fn remove_excess(log: &Path, max_files: u32) {
    let files = rotated_files(log);
    let keep = max_files.saturating_sub(1) as usize;
    if files.len() > keep {
        for old in &files[..files.len() - keep] {
            if let Err(e) = std::fs::remove_file(old) {
                tracing::debug!(path = %old.display(), error = %e, "log rotation: cannot remove an old log");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_are_named_by_time_and_the_oldest_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("0.log");
        std::fs::write(&log, "live").expect("write");
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time");
        let names: Vec<PathBuf> = [
            "2026-11-23T10:00:00Z",
            "2026-11-23T10:00:10Z",
            "2026-11-23T10:00:20Z",
        ]
        .iter()
        .map(|t| rotated_name(&log, at(t)))
        .collect();
        assert!(
            names[0].ends_with("0.log.20261123-100000"),
            "{:?}",
            names[0]
        );
        for n in &names {
            std::fs::write(n, "old").expect("write");
        }
        std::fs::write(dir.path().join("1.log"), "other").expect("write");
        remove_excess(&log, 3);
        assert_eq!(rotated_files(&log), names[1..].to_vec());
        assert!(log.exists());
        assert!(dir.path().join("1.log").exists());
    }
}
