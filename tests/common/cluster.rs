//! The multi-node harness (root only): a `skiff server --disable-agent` on
//! the host, listening on a bridge the test creates (`sktbr0`,
//! 10.199.0.1/24), and `skiff agent`s each in its own network namespace
//! (a "host" `skt-hN` joined to the bridge by a veth, address 10.199.0.1N,
//! no default route) with its own data dir and containerd. Agents are
//! started with `nsenter --net=...`, which changes only the network
//! namespace (`ip netns exec` would remount /sys and hide the cgroups).
//!
//! Drop removes everything, pass or fail: the agents and the server, each
//! agent's containers, containerd and shims and their mounts, the pods'
//! network namespaces, the hosts' namespaces (their iptables state and
//! veths die with them) and the bridge. Take the node e2e lock
//! (`flock /tmp/skiff-node-e2e.lock`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::node::{self, CLUSTER_CIDR, CLUSTER_DNS, SERVICE_CIDR};
use super::{free_port, skiff};

/// The bridge the test hosts hang off, and its address (the server's).
pub const BRIDGE: &str = "sktbr0";
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 1);

/// Runs `cmd`, returning whether it succeeded (output kept for messages).
fn run(cmd: &[&str]) -> Output {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn must(cmd: &[&str]) {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A child process with its log file.
struct Proc {
    child: Mutex<Option<Child>>,
    log: PathBuf,
}

impl Proc {
    fn new(log: PathBuf) -> Self {
        Proc {
            child: Mutex::new(None),
            log,
        }
    }

    fn spawn(&self, mut cmd: Command) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log"))
            .stderr(log)
            .spawn()
            .expect("start a process");
        *self.child.lock().expect("child slot") = Some(child);
    }

    /// SIGTERM, then wait (SIGKILL after 20 s).
    fn stop(&self) {
        let Some(mut child) = self.child.lock().ok().and_then(|mut c| c.take()) else {
            return;
        };
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn kill(&self) {
        if let Some(mut child) = self.child.lock().ok().and_then(|mut c| c.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// How the process exited, if it did.
    fn exited(&self) -> Option<String> {
        let mut child = self.child.lock().ok()?;
        match child.as_mut()?.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    fn running(&self) -> bool {
        self.child.lock().map(|c| c.is_some()).unwrap_or(false) && self.exited().is_none()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// One `skiff agent` in its own network namespace.
pub struct Agent {
    pub name: String,
    pub netns: String,
    pub ip: Ipv4Addr,
    pub data_dir: PathBuf,
    root: PathBuf,
    server_url: String,
    /// The token and more flags given at every launch.
    token: Mutex<String>,
    extra: Vec<String>,
    proc: Proc,
}

impl Agent {
    /// Starts (or restarts) the agent process.
    pub fn launch(&self) {
        let mut cmd = Command::new("nsenter");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SKIFF_") {
                cmd.env_remove(name);
            }
        }
        cmd.arg(format!("--net=/run/netns/{}", self.netns))
            .arg(skiff().get_program())
            .arg("agent")
            .arg(format!("--server={}", self.server_url))
            .arg(format!("--token={}", self.token.lock().expect("token")))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--config")
            .arg(self.root.join("config.yaml"))
            .arg(format!("--node-name={}", self.name))
            .arg(format!("--node-ip={}", self.ip))
            .arg("--log-level=info,skiff=debug")
            .args(&self.extra);
        self.proc.spawn(cmd);
    }

    /// Stops the agent (SIGTERM) and starts it again with `token`.
    pub fn relaunch_with_token(&self, token: &str) {
        self.proc.stop();
        *self.token.lock().expect("token") = token.to_string();
        self.launch();
    }

    pub fn restart(&self) {
        self.proc.stop();
        self.launch();
    }

    pub fn stop(&self) {
        self.proc.stop();
    }

    pub fn running(&self) -> bool {
        self.proc.running()
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    fn socket(&self) -> PathBuf {
        self.data_dir.join("agent/containerd/containerd.sock")
    }

    /// Stops the agent, its containers and containerd; unmounts its mounts.
    fn tear_down(&self) {
        self.proc.kill();
        node::stop_runtime(&self.socket(), &self.data_dir, &self.root);
    }
}

/// A server and its agents on a test network.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub data_dir: PathBuf,
    pub kubeconfig: PathBuf,
    server: Proc,
    /// More `skiff server` flags, given at every launch.
    server_extra: Vec<String>,
    pub agents: Vec<Agent>,
    netns_before: BTreeSet<String>,
}

impl Cluster {
    /// Creates the network, starts the server and waits until it serves;
    /// starts no agent.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`Self::start`] with more `skiff server` flags.
    pub fn start_with(server_extra: &[&str]) -> Self {
        node::require_runtime();
        for binary in ["ip", "nsenter"] {
            assert!(
                skiff::runtime::find_in_path(binary).is_some(),
                "{binary} is missing: run scripts/install-test-deps.sh"
            );
        }
        // What an earlier run that was killed may have left.
        remove_network(&["skt-h1", "skt-h2", "skt-h3"]);
        let netns_before = node::netns();
        must(&["ip", "link", "add", BRIDGE, "type", "bridge"]);
        must(&[
            "ip",
            "addr",
            "add",
            &format!("{SERVER_IP}/24"),
            "dev",
            BRIDGE,
        ]);
        must(&["ip", "link", "set", BRIDGE, "up"]);
        let dir = tempfile::Builder::new()
            .prefix("skiff-cl-")
            .tempdir_in("/tmp")
            .expect("create a temp dir");
        std::fs::write(dir.path().join("config.yaml"), "").expect("write the config file");
        let cluster = Cluster {
            port: free_port(),
            data_dir: dir.path().join("server"),
            kubeconfig: dir.path().join("kubeconfig"),
            server: Proc::new(dir.path().join("server.log")),
            server_extra: server_extra.iter().map(|s| s.to_string()).collect(),
            agents: Vec::new(),
            netns_before,
            dir,
        };
        cluster.launch_server();
        cluster.wait_ready();
        cluster
    }

    fn launch_server(&self) {
        let mut cmd = skiff();
        cmd.arg("server")
            .arg("--disable-agent")
            .arg(format!("--bind-address={SERVER_IP}"))
            .arg(format!("--advertise-address={SERVER_IP}"))
            .arg(format!("--https-listen-port={}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--write-kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--config")
            .arg(self.dir.path().join("config.yaml"))
            .arg(format!("--cluster-cidr={CLUSTER_CIDR}"))
            .arg(format!("--service-cidr={SERVICE_CIDR}"))
            .arg(format!("--cluster-dns={CLUSTER_DNS}"))
            .arg("--log-level=info,skiff=debug")
            .args(&self.server_extra);
        self.server.spawn(cmd);
    }

    fn wait_ready(&self) {
        self.wait_for("the server to serve", Duration::from_secs(60), || {
            self.kubectl_ok(&["get", "--raw", "/readyz"])
        });
    }

    /// Stops the server (SIGTERM) and starts it again on the same data dir.
    pub fn restart_server(&self) {
        self.server.stop();
        self.launch_server();
        self.wait_ready();
    }

    pub fn server_url(&self) -> String {
        format!("https://{SERVER_IP}:{}", self.port)
    }

    /// The server's join token.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server/token"))
            .expect("read the server token")
            .trim()
            .to_string()
    }

    /// Creates host `skt-h<index>` (10.199.0.1<index>) and starts an agent
    /// named `name` there with `token`.
    pub fn add_agent(&mut self, index: u8, name: &str, token: &str) -> &Agent {
        self.add_agent_with(index, name, token, &[])
    }

    /// [`Self::add_agent`] with more `skiff agent` flags.
    pub fn add_agent_with(&mut self, index: u8, name: &str, token: &str, extra: &[&str]) -> &Agent {
        let netns = format!("skt-h{index}");
        let ip = Ipv4Addr::new(10, 199, 0, 10 + index);
        let veth = format!("skt-h{index}-v");
        must(&["ip", "netns", "add", &netns]);
        must(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ]);
        must(&["ip", "link", "set", &veth, "master", BRIDGE, "up"]);
        must(&[
            "ip",
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            "eth0",
        ]);
        must(&["ip", "-n", &netns, "link", "set", "eth0", "up"]);
        must(&["ip", "-n", &netns, "link", "set", "lo", "up"]);
        let root = self.dir.path().join(format!("h{index}"));
        std::fs::create_dir_all(&root).expect("create the host dir");
        std::fs::write(root.join("config.yaml"), "").expect("write the config file");
        let data_dir = root.join("data");
        node::stage_images(&data_dir);
        let agent = Agent {
            name: name.to_string(),
            netns,
            ip,
            data_dir,
            proc: Proc::new(root.join("agent.log")),
            root,
            server_url: self.server_url(),
            token: Mutex::new(token.to_string()),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        agent.launch();
        self.agents.push(agent);
        self.agents.last().expect("just added")
    }

    /// Another agent process on host `skt-h<index>`'s network but with its
    /// own data dir (a second machine claiming `name`); it is torn down
    /// with the cluster.
    pub fn add_impostor(&mut self, index: u8, name: &str, token: &str) -> &Agent {
        let host = &self.agents[usize::from(index) - 1];
        let root = self.dir.path().join(format!("impostor{index}"));
        std::fs::create_dir_all(&root).expect("create the impostor dir");
        std::fs::write(root.join("config.yaml"), "").expect("write the config file");
        let agent = Agent {
            name: name.to_string(),
            netns: host.netns.clone(),
            ip: host.ip,
            data_dir: root.join("data"),
            proc: Proc::new(root.join("agent.log")),
            root,
            server_url: self.server_url(),
            token: Mutex::new(token.to_string()),
            extra: Vec::new(),
        };
        agent.launch();
        self.agents.push(agent);
        self.agents.last().expect("just added")
    }

    /// A kubectl command as the cluster's admin.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--request-timeout=20s")
            .args(args)
            .env_remove("KUBECONFIG");
        cmd
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }

    /// kubectl's stdout when it succeeds.
    pub fn kubectl_ok(&self, args: &[&str]) -> Option<String> {
        let out = self.kubectl(args);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `kubectl apply -f <manifest>`; panics on failure.
    pub fn apply(&self, manifest: &str) {
        let path = self.dir.path().join("manifest.json");
        std::fs::write(&path, manifest).expect("write the manifest");
        let out = self.kubectl(&["apply", "-f", &path.display().to_string()]);
        assert!(
            out.status.success(),
            "kubectl apply failed: {}\n{manifest}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Whether node `name` reports Ready=True.
    pub fn node_ready(&self, name: &str) -> bool {
        self.kubectl_ok(&[
            "get",
            "node",
            name,
            "-o=jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])
        .is_some_and(|s| s == "True")
    }

    /// Polls `check` every 500 ms until it gives a value or `timeout`
    /// passes; fails with the logs when the server exits or time runs out.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if let Some(status) = self.server.exited() {
                panic!(
                    "skiff server exited ({status}) while waiting for {what}; logs:\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The server's and the agents' logs (their last lines).
    pub fn logs(&self) -> String {
        let tail = |text: String| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(60)..].join("\n")
        };
        let mut out = format!("--- server\n{}\n", tail(self.server.log()));
        for agent in &self.agents {
            out.push_str(&format!(
                "--- agent {}\n{}\n",
                agent.name,
                tail(agent.log())
            ));
        }
        out
    }
}

/// Deletes the test hosts' namespaces, their veths and the bridge.
fn remove_network(hosts: &[&str]) {
    for host in hosts {
        if Path::new("/run/netns").join(host).exists() {
            let _ = run(&["ip", "netns", "del", host]);
        }
        let veth = format!("{host}-v");
        if Path::new("/sys/class/net").join(&veth).exists() {
            let _ = run(&["ip", "link", "del", &veth]);
        }
    }
    if Path::new("/sys/class/net").join(BRIDGE).exists() {
        let _ = run(&["ip", "link", "del", BRIDGE]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for agent in &self.agents {
            agent.tear_down();
        }
        self.server.kill();
        let hosts: Vec<String> = self.agents.iter().map(|a| a.netns.clone()).collect();
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        remove_network(&hosts);
        node::remove_netns_since(&self.netns_before);
    }
}
