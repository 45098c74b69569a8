//! Termination messages: each container instance gets an empty host file
//! mounted at its `terminationMessagePath` (`/dev/termination-log`); after
//! it exits, the file's first 4 KiB become `state.terminated.message`, or,
//! with `terminationMessagePolicy: FallbackToLogsOnError` and an empty file
//! after a failure, the last 80 lines (at most 2 KiB) of its log.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_cri::v1::ContainerStatus as CriStatus;
use k8s_openapi::api::core::v1::Container;

use super::projected;
use super::status::EXITED;

const MAX_MESSAGE: u64 = 4096;
const MAX_LOG_LINES: usize = 80;
const MAX_LOG_BYTES: usize = 2048;
const DEFAULT_PATH: &str = "/dev/termination-log";

/// Creates the (empty) termination-message file of one container instance.
pub fn prepare(
    agent_dir: &Path,
    uid: &str,
    container: &str,
    restart_count: u32,
) -> Option<PathBuf> {
    let dir = projected::pod_dir(agent_dir, uid)
        .join("containers")
        .join(container);
    std::fs::create_dir_all(&dir).ok()?;
    let file = dir.join(restart_count.to_string());
    std::fs::write(&file, b"").ok()?;
    // Writable by whatever user the container runs as.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).ok()?;
    Some(file)
}

/// The termination message of an exited container instance.
pub fn message(c: &Container, status: &CriStatus) -> Option<String> {
    if status.state != EXITED {
        return None;
    }
    let path = c
        .termination_message_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.to_string());
    let written = status
        .mounts
        .iter()
        .find(|m| m.container_path == path)
        .and_then(|m| std::fs::File::open(&m.host_path).ok())
        .and_then(|f| {
            let mut text = String::new();
            f.take(MAX_MESSAGE).read_to_string(&mut text).ok()?;
            Some(text)
        })
        .filter(|t| !t.is_empty());
    if written.is_some() {
        return written;
    }
    let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
    if fallback && status.exit_code != 0 {
        let log = std::fs::read_to_string(&status.log_path).ok()?;
        let tail = log_tail(&log);
        return (!tail.is_empty()).then_some(tail);
    }
    None
}

/// The last lines of a CRI log file's text, without their timestamp,
/// stream and tag fields.
fn log_tail(log: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut partial = String::new();
    for line in log.lines() {
        let mut fields = line.splitn(4, ' ');
        let (_time, _stream, tag) = (fields.next(), fields.next(), fields.next());
        let text = fields.next().unwrap_or_default();
        partial.push_str(text);
        if tag != Some("P") {
            lines.push(std::mem::take(&mut partial));
        }
    }
    let start = lines.len().saturating_sub(MAX_LOG_LINES);
    let mut tail = lines[start..].join("\n");
    if tail.len() > MAX_LOG_BYTES {
        let mut cut = tail.len() - MAX_LOG_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = tail[cut..].to_string();
    }
    tail
}

#[cfg(test)]
mod tests {
    use k8s_cri::v1::Mount;

    use super::*;

    #[test]
    fn the_file_wins_and_logs_are_the_fallback() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = prepare(dir.path(), "u", "main", 0).expect("file");
        let log = dir.path().join("0.log");
        std::fs::write(
            &log,
            "2026-01-01T00:00:00Z stdout F one\n2026-01-01T00:00:00Z stderr P tw\n2026-01-01T00:00:00Z stderr F o\n",
        )
        .expect("log");
        let status = CriStatus {
            state: EXITED,
            exit_code: 1,
            log_path: log.display().to_string(),
            mounts: vec![Mount {
                container_path: DEFAULT_PATH.into(),
                host_path: file.display().to_string(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut c = Container::default();
        assert_eq!(message(&c, &status), None);
        c.termination_message_policy = Some("FallbackToLogsOnError".into());
        assert_eq!(message(&c, &status).as_deref(), Some("one\ntwo"));
        std::fs::write(&file, "bye").expect("write");
        assert_eq!(message(&c, &status).as_deref(), Some("bye"));
    }
}
