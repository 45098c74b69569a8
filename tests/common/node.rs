//! The node harness for end-to-end tests with real containerd, runc and
//! CNI plugins (root only): [`Node`] runs `skiff server` with its node on a
//! private data dir and drives it with the stock kubectl.
//!
//! Host state a test creates, and how [`Node`]'s Drop removes it, pass or
//! fail: skiff (killed), containerd and its shims (found by the test's data
//! dir on their command lines; their containers killed first through `ctr`),
//! mounts under the data dir (volumes, tmpfs emptyDirs) and the network
//! namespaces the CNI created (unmounted, removed), the `skiff0` bridge,
//! skiff's iptables chains and its unreachable routes
//! (`skiff::net::cleanup`). No test traffic leaves the machine. Run these
//! tests under the host-wide lock (`flock /tmp/skiff-node-e2e.lock`): node
//! tests share the bridge and the SKIFF-* chains.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, skiff};

pub const CLUSTER_CIDR: &str = "10.242.0.0/16";
pub const SERVICE_CIDR: &str = "10.243.0.0/16";
pub const CLUSTER_DNS: &str = "10.243.0.10";
pub const BUSYBOX: &str = "docker.io/skiff/busybox:1.35.0";

/// The image tarballs, built once per target dir.
pub fn images() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skiff-images");
    if dir.join("pause.tar").exists() && dir.join("busybox.tar").exists() {
        return dir;
    }
    let staging =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("skiff-images-{}", std::process::id()));
    let status =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-images.sh"))
            .arg(&staging)
            .status()
            .expect("run scripts/build-images.sh");
    assert!(
        status.success(),
        "scripts/build-images.sh failed (run scripts/install-test-deps.sh)"
    );
    let _ = std::fs::rename(&staging, &dir);
    let _ = std::fs::remove_dir_all(&staging);
    dir
}

/// Asserts that the runtime binaries a node needs are installed.
pub fn require_runtime() {
    for (binary, package) in [
        ("containerd", "containerd"),
        ("runc", "runc"),
        ("ctr", "containerd"),
        ("iptables", "iptables"),
    ] {
        assert!(
            skiff::runtime::find_in_path(binary).is_some(),
            "{binary} is missing: run scripts/install-test-deps.sh (Debian package {package})"
        );
    }
}

/// Puts the test images where a node started on `data_dir` imports them.
pub fn stage_images(data_dir: &Path) {
    let images = images();
    let image_dir = data_dir.join("agent").join("images");
    std::fs::create_dir_all(&image_dir).expect("create the image dir");
    for name in ["pause.tar", "busybox.tar"] {
        std::fs::copy(images.join(name), image_dir.join(name)).expect("copy an image");
    }
}

/// A `skiff server` with its node, and everything it put on the host.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub log: PathBuf,
    pub name: String,
    pub port: u16,
    /// The kubelet server's port (a free one, so node tests can share the
    /// host).
    pub kubelet_port: u16,
    /// More `skiff server` flags, given at every launch.
    extra: Vec<String>,
    pub child: std::sync::Mutex<Option<Child>>,
    pub netns_before: BTreeSet<String>,
}

impl Node {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a node with more `skiff server` flags.
    pub fn start_with(extra: &[&str]) -> Self {
        require_runtime();
        // Under /tmp: a short path keeps containerd's socket in the data dir.
        let dir = tempfile::Builder::new()
            .prefix("skiff-node-")
            .tempdir_in("/tmp")
            .expect("create a temp dir");
        let data_dir = dir.path().join("data");
        stage_images(&data_dir);
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, "").expect("write the config file");
        let log = dir.path().join("server.log");
        let name = format!("skiff-test-{}", std::process::id());
        let node = Node {
            kubeconfig: dir.path().join("kubeconfig"),
            data_dir,
            log,
            name,
            port: free_port(),
            kubelet_port: free_port(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: std::sync::Mutex::new(None),
            netns_before: netns(),
            dir,
        };
        node.launch();
        node
    }

    /// Starts `skiff server` with the node (appending to its log).
    pub fn launch(&self) {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("create the log");
        let child = skiff()
            .arg("server")
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--https-listen-port={}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--write-kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--config")
            .arg(self.dir.path().join("config.yaml"))
            .arg(format!("--node-name={}", self.name))
            .arg(format!("--cluster-cidr={CLUSTER_CIDR}"))
            .arg(format!("--service-cidr={SERVICE_CIDR}"))
            .arg(format!("--cluster-dns={CLUSTER_DNS}"))
            .arg("--log-level=info,skiff=debug")
            .arg(format!("--kubelet-port={}", self.kubelet_port))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log"))
            .stderr(log_file)
            .spawn()
            .expect("start skiff server");
        *self.child.lock().expect("the child slot") = Some(child);
    }

    /// Stops skiff with SIGTERM and starts it again on the same data dir.
    pub fn restart(&self) {
        if let Some(mut child) = self.child.lock().ok().and_then(|mut c| c.take()) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().expect("wait for skiff");
            assert!(
                status.success(),
                "skiff stopped with {status}; log:\n{}",
                self.log()
            );
        }
        self.launch();
    }

    /// A kubectl command for this node's cluster (stdin, stdout and stderr
    /// left to the caller).
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--request-timeout=20s")
            .args(args)
            .env_remove("KUBECONFIG");
        cmd
    }

    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
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

    pub fn socket(&self) -> PathBuf {
        self.data_dir.join("agent/containerd/containerd.sock")
    }

    /// `ctr -n k8s.io <args>` against this node's containerd.
    pub fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .expect("run ctr");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Polls `check` every 500 ms until it gives a value or `timeout` passes.
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
            if let Some(child) = self.child_exited() {
                panic!(
                    "skiff exited ({child}) while waiting for {what}; log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// How skiff exited, if it did.
    pub fn child_exited(&self) -> Option<String> {
        let mut child = self.child.lock().ok()?;
        match child.as_mut()?.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The names in /run/netns.
pub fn netns() -> BTreeSet<String> {
    std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// PIDs whose command line mentions `needle`.
fn pids_mentioning(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Deletes the nat rules whose text names one of `ids` (a CNI plugin's
/// comment carries the sandbox id), then the per-sandbox chains they jumped
/// to.
fn remove_nat_rules_naming(ids: Vec<&str>) {
    if ids.is_empty() {
        return;
    }
    let Ok(out) = Command::new("iptables-save").args(["-t", "nat"]).output() else {
        return;
    };
    let rules = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut chains = Vec::new();
    for rule in rules.lines().filter_map(|l| l.strip_prefix("-A ")) {
        if !ids.iter().any(|id| rule.contains(id)) {
            continue;
        }
        if let Some(target) = rule.rsplit(" -j ").next()
            && target.starts_with("CNI-")
            && !target.starts_with("CNI-HOSTPORT-")
        {
            chains.push(target.to_string());
        }
        // iptables-save quotes as a shell would, so sh splits it back.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("iptables -t nat -D {rule}"))
            .status();
    }
    for chain in chains {
        let _ = Command::new("iptables")
            .args(["-t", "nat", "-F", &chain])
            .status();
        let _ = Command::new("iptables")
            .args(["-t", "nat", "-X", &chain])
            .status();
    }
}

fn umount_lazy(path: &str) {
    let _ = Command::new("umount").arg("-l").arg(path).status();
}

/// Kills the containers of the containerd at `socket` (their shims must
/// still be alive for that), then every process whose command line names
/// `data_dir` (containerd, shims), then lazily unmounts what is mounted
/// under `root`.
pub fn stop_runtime(socket: &Path, data_dir: &Path, root: &Path) {
    let ctr = |args: &[&str]| {
        Command::new("ctr")
            .arg("--address")
            .arg(socket)
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    for task in ctr(&["tasks", "ls", "-q"]).lines() {
        ctr(&["tasks", "kill", "-a", "-s", "SIGKILL", task.trim()]);
    }
    std::thread::sleep(Duration::from_millis(500));
    let needle = data_dir.display().to_string();
    for _ in 0..20 {
        let pids = pids_mentioning(&needle);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: kill(2) with a pid read from /proc; no memory involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let root = root.display().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&root) || m.starts_with("/run/skiff-"))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for mount in mounts {
        umount_lazy(mount);
    }
}

/// Removes the network namespaces created since `before` was taken (the
/// pods' namespaces, which the CNI never saw go).
pub fn remove_netns_since(before: &BTreeSet<String>) {
    for name in netns().difference(before) {
        let path = format!("/run/netns/{name}");
        umount_lazy(&path);
        let _ = std::fs::remove_file(&path);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.get_mut().ok().and_then(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The CNI never sees these sandboxes go: drop the portmap rules that
        // name them (the chains they jump to are the sandboxes' own).
        let ids = self.ctr(&["containers", "ls", "-q"]);
        remove_nat_rules_naming(ids.split_whitespace().collect());
        stop_runtime(&self.socket(), &self.data_dir, self.dir.path());
        remove_netns_since(&self.netns_before);
        skiff::net::cleanup(
            CLUSTER_CIDR.parse().expect("cidr"),
            SERVICE_CIDR.parse().expect("cidr"),
        );
    }
}

/// A pod bound to `node` running `command` in `image` (pull policy Never).
pub fn pod_manifest(name: &str, node: &str, image: &str, command: &str, restart: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"default"}},
"spec":{{"nodeName":"{node}","restartPolicy":"{restart}","containers":[{{"name":"main","image":"{image}",
"imagePullPolicy":"Never","command":{command}}}]}}}}"#
    )
}

impl Node {
    pub fn create_pod(&self, name: &str, image: &str, command: &str, restart: &str) {
        let manifest = self.dir.path().join(format!("{name}.json"));
        std::fs::write(
            &manifest,
            pod_manifest(name, &self.name, image, command, restart),
        )
        .expect("write the pod");
        let created = self.kubectl(&["create", "-f", &manifest.display().to_string()]);
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
    }
}

impl Node {
    /// `kubectl apply -f -` of `manifest` (YAML or JSON); panics on failure.
    pub fn apply(&self, manifest: &str) {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--request-timeout=20s", "apply", "-f", "-"])
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("kubectl's stdin");
            stdin
                .write_all(manifest.as_bytes())
                .expect("write the manifest");
        }
        let out = child.wait_with_output().expect("wait for kubectl");
        assert!(
            out.status.success(),
            "kubectl apply failed: {}\n{manifest}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A pod's field by JSONPath (`{.status.phase}`), if kubectl answers.
    pub fn pod_field(&self, pod: &str, path: &str) -> Option<String> {
        self.kubectl_ok(&["get", "pod", pod, &format!("-o=jsonpath={path}")])
    }

    /// Waits until a pod's field satisfies `accept`; returns its value.
    pub fn wait_pod_field(
        &self,
        pod: &str,
        path: &str,
        timeout: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> String {
        self.wait_for(&format!("{pod} {path}"), timeout, || {
            self.pod_field(pod, path).filter(|v| accept(v))
        })
    }

    /// The CRI log of a container instance, without the CRI line prefixes.
    pub fn container_log(&self, pod: &str, container: &str, restart: u32) -> String {
        let uid = self.pod_field(pod, "{.metadata.uid}").unwrap_or_default();
        let path = self
            .data_dir
            .join("agent/pod-logs")
            .join(format!("default_{pod}_{uid}"))
            .join(container)
            .join(format!("{restart}.log"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| l.splitn(4, ' ').nth(3).unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The messages of the events about `pod` with `reason`.
    pub fn events(&self, pod: &str, reason: &str) -> Vec<String> {
        let selector = format!("involvedObject.name={pod},reason={reason}");
        self.kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            &selector,
            "-o=jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ])
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
    }
}
