//! Keeps containerd running: reuses one that already answers on the socket,
//! otherwise launches `containerd --config ...` in its own process group, and
//! relaunches it with backoff whenever it dies. skiff never stops it: on
//! shutdown containerd and its containers keep running (k3s semantics).

use std::os::unix::process::CommandExt as _;
use std::process::Stdio;
use std::time::Duration;

use super::RuntimeError;
use super::config::Layout;
use super::cri::Cri;

/// How long a freshly launched containerd gets to open its socket.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a containerd skiff did not launch itself is checked for life.
const ADOPTED_CHECK: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Makes sure containerd answers on `layout.socket`, then keeps it running
/// from a background task.
pub async fn ensure_running(layout: Layout, config_changed: bool) -> Result<(), RuntimeError> {
    if answers(&layout).await && (!config_changed || !stop_for_new_config(&layout).await) {
        tracing::info!(socket = %layout.socket.display(), "reusing the running containerd");
        tokio::spawn(supervise(layout, None));
        return Ok(());
    }
    let child = launch(&layout)?;
    wait_ready(&layout).await?;
    tracing::info!(socket = %layout.socket.display(), "containerd is ready");
    tokio::spawn(supervise(layout, Some(child)));
    Ok(())
}

/// Stops the running containerd skiff launched before (its pid file names
/// it, and its command line names this layout's config) so that a changed
/// config takes effect; running containers and their shims are unaffected.
/// False when it is not ours or does not stop.
async fn stop_for_new_config(layout: &Layout) -> bool {
    let Some(pid) = std::fs::read_to_string(&layout.pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return false;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let config = layout.config.as_os_str().as_encoded_bytes();
    if !cmdline.split(|b| *b == 0).any(|arg| arg == config) {
        return false;
    }
    tracing::info!(pid, "containerd's config changed: restarting it");
    // SAFETY: kill only sends a signal to the process named by pid.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return false;
    }
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn answers(layout: &Layout) -> bool {
    match Cri::connect(&layout.socket).await {
        Ok(mut cri) => cri.version().await.is_ok(),
        Err(_) => false,
    }
}

fn launch(layout: &Layout) -> Result<tokio::process::Child, RuntimeError> {
    if layout.socket.exists() {
        // A stale socket from a dead containerd would make it refuse to start.
        let _ = std::fs::remove_file(&layout.socket);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&layout.log)
        .map_err(|source| RuntimeError::Write {
            path: layout.log.clone(),
            source,
        })?;
    let log_err = log.try_clone().map_err(RuntimeError::Spawn)?;
    let mut command = std::process::Command::new("containerd");
    command
        .arg("--config")
        .arg(&layout.config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group: a Ctrl-C meant for skiff must not stop it.
        .process_group(0);
    let child = tokio::process::Command::from(command)
        .kill_on_drop(false)
        .spawn()
        .map_err(RuntimeError::Spawn)?;
    if let Some(pid) = child.id() {
        std::fs::write(&layout.pid_file, format!("{pid}\n")).map_err(|source| {
            RuntimeError::Write {
                path: layout.pid_file.clone(),
                source,
            }
        })?;
        tracing::info!(pid, config = %layout.config.display(), "launched containerd");
    }
    Ok(child)
}

async fn wait_ready(layout: &Layout) -> Result<(), RuntimeError> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if answers(layout).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(RuntimeError::NotReady(
        layout.socket.clone(),
        layout.log.clone(),
    ))
}

/// Waits for containerd to die and relaunches it, with backoff.
async fn supervise(layout: Layout, mut child: Option<tokio::process::Child>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match child.take() {
            Some(mut running) => match running.wait().await {
                Ok(status) => {
                    tracing::error!(%status, log = %layout.log.display(), "containerd exited")
                }
                Err(e) => tracing::error!(error = %e, "cannot wait for containerd"),
            },
            None => {
                while answers(&layout).await {
                    tokio::time::sleep(ADOPTED_CHECK).await;
                }
                tracing::error!(socket = %layout.socket.display(), "containerd stopped answering");
            }
        }
        tokio::time::sleep(backoff).await;
        match launch(&layout) {
            Ok(relaunched) => {
                child = Some(relaunched);
                match wait_ready(&layout).await {
                    Ok(()) => {
                        tracing::info!("containerd is ready again");
                        backoff = Duration::from_secs(1);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "relaunched containerd is not ready");
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot relaunch containerd");
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
