//! The integration-test harness: runs the real `skiff` binary on 127.0.0.1
//! with a private data dir, port and kubeconfig, and drives it with the stock
//! `kubectl` on PATH.
//!
//! Everything a test starts is stopped and removed when its [`TestServer`]
//! drops, whether the test passed or panicked.

#![allow(dead_code)] // each test binary uses part of the harness

pub mod cluster;
pub mod https;
pub mod node;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use https::{Credential, Reply};

/// How long a server gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A `skiff` command with no `SKIFF_*` variables inherited from the caller.
pub fn skiff() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skiff"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SKIFF_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// Waits until `path` exists or `child` exits; true when the file appeared.
pub fn wait_for_file(path: &Path, child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return path.exists();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    path.exists()
}

/// Kills `child` and reaps it.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A running `skiff server` in its own temporary directory.
pub struct TestServer {
    pub dir: TempDir,
    pub port: u16,
    pub data_dir: PathBuf,
    pub kubeconfig: PathBuf,
    /// The config file passed with --config (empty unless a test writes it).
    pub config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl TestServer {
    /// Starts a server with the harness's flags and waits until it serves.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra flags and waits until it serves.
    pub fn start_with(extra: &[&str]) -> Self {
        let mut server = Self::new();
        server.launch(extra);
        server.wait_ready();
        server
    }

    /// Prepares the directory, port and an empty config file; starts nothing.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("skiff-test-")
            .tempdir()
            .expect("create a temp dir");
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, "").expect("write the config file");
        TestServer {
            port: free_port(),
            data_dir: dir.path().join("data"),
            kubeconfig: dir.path().join("kube").join("config.yaml"),
            log: dir.path().join("server.log"),
            config,
            dir,
            child: None,
        }
    }

    /// Starts `skiff server` (without waiting) with the harness's flags
    /// followed by `extra`.
    pub fn launch(&mut self, extra: &[&str]) {
        self.launch_with_env(extra, &[]);
    }

    /// [`Self::launch`] with extra environment variables for the server.
    pub fn launch_with_env(&mut self, extra: &[&str], env: &[(&str, &str)]) {
        assert!(self.child.is_none(), "the server is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let child = skiff()
            .arg("server")
            .arg("--disable-agent")
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--https-listen-port={}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--write-kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--config")
            .arg(&self.config)
            .arg("--log-level=debug")
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start skiff server");
        self.child = Some(child);
    }

    /// Waits until the server answers HTTPS on its port (any status for
    /// `/readyz` means the listener, and so everything before it, is up).
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!("skiff server exited early ({status}); log:\n{}", self.log());
            }
            if let Some(ca) = self.try_ca_pem()
                && https::get(self.port, &ca, "/readyz", Credential::Anonymous).is_ok()
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "skiff server not ready after {READY_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server with SIGTERM (SIGKILL after 10 s) and reaps it;
    /// returns how it exited (`None` if it had to be killed or was not
    /// running).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kill(&mut child);
        None
    }

    /// Waits (at most `timeout`) for a launched server to exit by itself, as
    /// one with a bad configuration does; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Kills the server with SIGKILL (no chance to flush or clean up), as a
    /// crash or power cut would, and reaps it.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
    }

    /// Stops the server and starts it again on the same directory and port.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.stop();
        self.launch(extra);
        self.wait_ready();
    }

    /// Runs the stock `kubectl` against this server with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with(&self.kubeconfig, args)
    }

    /// Runs the stock `kubectl` with another kubeconfig.
    pub fn kubectl_with(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--request-timeout=20s")
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl (is it on PATH?)")
    }

    /// GETs `path` over HTTPS, trusting the cluster CA.
    pub fn get(&self, path: &str, credential: Credential<'_>) -> Reply {
        https::get(self.port, &self.ca_pem(), path, credential)
            .unwrap_or_else(|e| panic!("GET {path}: {e}; log:\n{}", self.log()))
    }

    /// A file under `<data-dir>/server/tls/`.
    pub fn tls_file(&self, name: &str) -> PathBuf {
        self.data_dir.join("server").join("tls").join(name)
    }

    /// The cluster CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.try_ca_pem().expect("the CA certificate exists")
    }

    fn try_ca_pem(&self) -> Option<String> {
        std::fs::read_to_string(self.tls_file("server-ca.crt")).ok()
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
    }
}

/// A running `skiff sim-nodes` against a [`TestServer`]; killed and reaped
/// on drop.
pub struct SimNodes {
    child: Child,
}

impl SimNodes {
    /// Starts `count` simulated nodes (`sim-0`, `sim-1`, ...) and waits until
    /// they are all registered.
    pub fn start(server: &TestServer, count: u16) -> Self {
        Self::start_named(server, "sim-", count)
    }

    /// Starts `count` simulated nodes named `<prefix>0`, `<prefix>1`, ...
    /// and waits until they are all registered.
    pub fn start_named(server: &TestServer, prefix: &str, count: u16) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(server.dir.path().join("sim-nodes.log"))
            .expect("open the sim-nodes log");
        let child = skiff()
            .arg("sim-nodes")
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .arg(format!("--count={count}"))
            .arg(format!("--name-prefix={prefix}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start skiff sim-nodes");
        let sim = SimNodes { child };
        let names = (0..count)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>();
        eventually(READY_TIMEOUT, "simulated nodes registered", || {
            let out = server.kubectl(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            names
                .iter()
                .all(|n| text.split_whitespace().any(|t| t == n))
                .then_some(())
        });
        sim
    }
}

impl Drop for SimNodes {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Polls `check` every 200 ms until it returns `Some`, or panics naming
/// `what` after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    match try_eventually(timeout, check) {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for: {what}"),
    }
}

/// Polls `check` every 200 ms until it returns `Some`; `None` after
/// `timeout`.
#[allow(dead_code)]
pub fn try_eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Everything kubectl printed, stdout then stderr.
#[allow(dead_code)]
pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs kubectl as the admin and insists it succeeds; returns its stdout.
#[allow(dead_code)]
pub fn ok(server: &TestServer, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
