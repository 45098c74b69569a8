//! The server's own node, end to end with real containerd, runc and CNI
//! plugins, driven by the stock kubectl: the node becomes Ready with a
//! podCIDR, a busybox pod bound to it runs with an IP from that range, and
//! deleting the pod removes its sandbox from the runtime.
//!
//! Host state the test creates, and how [`Node`]'s Drop removes it, pass or
//! fail: skiff (killed), containerd and its shims (found by the test's data
//! dir on their command lines; their containers killed first through `ctr`),
//! mounts under the data dir and the network namespaces the CNI created
//! (unmounted, removed), the `skiff0` bridge, skiff's iptables chains and its
//! unreachable routes (`skiff::net::cleanup`). Pods only run `sleep`: no
//! traffic leaves the machine.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, skiff};

const CLUSTER_CIDR: &str = "10.242.0.0/16";
const SERVICE_CIDR: &str = "10.243.0.0/16";
const CLUSTER_DNS: &str = "10.243.0.10";
const BUSYBOX: &str = "docker.io/skiff/busybox:1.35.0";

/// The image tarballs, built once per target dir.
fn images() -> PathBuf {
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

/// A `skiff server` with its node, and everything it put on the host.
struct Node {
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    kubeconfig: PathBuf,
    log: PathBuf,
    name: String,
    port: u16,
    child: std::sync::Mutex<Option<Child>>,
    netns_before: BTreeSet<String>,
}

impl Node {
    fn start() -> Self {
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
        let images = images();
        // Under /tmp: a short path keeps containerd's socket in the data dir.
        let dir = tempfile::Builder::new()
            .prefix("skiff-node-")
            .tempdir_in("/tmp")
            .expect("create a temp dir");
        let data_dir = dir.path().join("data");
        let image_dir = data_dir.join("agent").join("images");
        std::fs::create_dir_all(&image_dir).expect("create the image dir");
        for name in ["pause.tar", "busybox.tar"] {
            std::fs::copy(images.join(name), image_dir.join(name)).expect("copy an image");
        }
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
            child: std::sync::Mutex::new(None),
            netns_before: netns(),
            dir,
        };
        node.launch();
        node
    }

    /// Starts `skiff server` with the node (appending to its log).
    fn launch(&self) {
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
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log"))
            .stderr(log_file)
            .spawn()
            .expect("start skiff server");
        *self.child.lock().expect("the child slot") = Some(child);
    }

    /// Stops skiff with SIGTERM and starts it again on the same data dir.
    fn restart(&self) {
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

    fn kubectl(&self, args: &[&str]) -> std::process::Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--request-timeout=20s")
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }

    /// kubectl's stdout when it succeeds.
    fn kubectl_ok(&self, args: &[&str]) -> Option<String> {
        let out = self.kubectl(args);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn socket(&self) -> PathBuf {
        self.data_dir.join("agent/containerd/containerd.sock")
    }

    /// `ctr -n k8s.io <args>` against this node's containerd.
    fn ctr(&self, args: &[&str]) -> String {
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
    fn wait_for<T>(
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
    fn child_exited(&self) -> Option<String> {
        let mut child = self.child.lock().ok()?;
        match child.as_mut()?.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The names in /run/netns.
fn netns() -> BTreeSet<String> {
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

fn umount_lazy(path: &str) {
    let _ = Command::new("umount").arg("-l").arg(path).status();
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.get_mut().ok().and_then(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Containers first (their shims must still be alive to kill them).
        for task in self.ctr(&["tasks", "ls", "-q"]).lines() {
            let _ = Command::new("ctr")
                .arg("--address")
                .arg(self.socket())
                .args([
                    "-n",
                    "k8s.io",
                    "tasks",
                    "kill",
                    "-a",
                    "-s",
                    "SIGKILL",
                    task.trim(),
                ])
                .status();
        }
        std::thread::sleep(Duration::from_millis(500));
        let needle = self.data_dir.display().to_string();
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
        let root = self.dir.path().display().to_string();
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
        for name in netns().difference(&self.netns_before) {
            let path = format!("/run/netns/{name}");
            umount_lazy(&path);
            let _ = std::fs::remove_file(&path);
        }
        skiff::net::cleanup(
            CLUSTER_CIDR.parse().expect("cidr"),
            SERVICE_CIDR.parse().expect("cidr"),
        );
    }
}

/// A pod bound to `node` running `command` in `image` (pull policy Never).
fn pod_manifest(name: &str, node: &str, image: &str, command: &str, restart: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"default"}},
"spec":{{"nodeName":"{node}","restartPolicy":"{restart}","containers":[{{"name":"main","image":"{image}",
"imagePullPolicy":"Never","command":{command}}}]}}}}"#
    )
}

impl Node {
    fn create_pod(&self, name: &str, image: &str, command: &str, restart: &str) {
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

#[test]
fn the_server_node_becomes_ready_and_runs_a_pod() {
    let node = Node::start();
    let jsonpath = |path: &str| format!("-o=jsonpath={path}");

    // The node registers and turns Ready, with a podCIDR from node IPAM.
    let ready = jsonpath(r#"{.status.conditions[?(@.type=="Ready")].status}"#);
    node.wait_for("the node to be Ready", Duration::from_secs(90), || {
        node.kubectl_ok(&["get", "node", &node.name, &ready])
            .filter(|s| s == "True")
    });
    let listed = node.kubectl_ok(&["get", "nodes"]).unwrap_or_default();
    assert!(listed.contains(&node.name), "{listed}");
    let pod_cidr: ipnet::IpNet = node
        .kubectl_ok(&["get", "node", &node.name, &jsonpath("{.spec.podCIDR}")])
        .and_then(|s| s.parse().ok())
        .expect("the node has a podCIDR");
    let cluster: ipnet::IpNet = CLUSTER_CIDR.parse().expect("cidr");
    assert!(cluster.contains(&pod_cidr), "{pod_cidr} outside {cluster}");
    let labels = node
        .kubectl_ok(&["get", "node", &node.name, "--show-labels"])
        .unwrap_or_default();
    assert!(
        labels.contains("node-role.kubernetes.io/control-plane=true"),
        "{labels}"
    );
    let lease = node.wait_for("the node lease", Duration::from_secs(30), || {
        node.kubectl_ok(&[
            "-n",
            "kube-node-lease",
            "get",
            "lease",
            &node.name,
            &jsonpath("{.spec.holderIdentity}"),
        ])
    });
    assert_eq!(lease, node.name);

    // A pod bound to the node runs with an IP from the node's range.
    node.create_pod("sleeper", BUSYBOX, r#"["sleep","3600"]"#, "Always");
    node.wait_for("the pod to run", Duration::from_secs(60), || {
        node.kubectl_ok(&["get", "pod", "sleeper", &jsonpath("{.status.phase}")])
            .filter(|p| p == "Running")
    });
    let pod_ip: std::net::IpAddr = node
        .kubectl_ok(&["get", "pod", "sleeper", &jsonpath("{.status.podIP}")])
        .and_then(|s| s.parse().ok())
        .expect("the pod has an IP");
    assert!(pod_cidr.contains(&pod_ip), "{pod_ip} outside {pod_cidr}");
    let ready = node
        .kubectl_ok(&[
            "get",
            "pod",
            "sleeper",
            &jsonpath("{.status.containerStatuses[0].ready}"),
        ])
        .unwrap_or_default();
    assert_eq!(ready, "true");
    let sandboxes = node.ctr(&["containers", "ls", "-q"]);
    assert_eq!(sandboxes.lines().count(), 2, "pause + main: {sandboxes}");
    let container_id = jsonpath("{.status.containerStatuses[0].containerID}");
    let running_id = node.kubectl_ok(&["get", "pod", "sleeper", &container_id]);

    // The service-account token volume admission added is materialised and
    // mounted read-only where in-cluster clients look for it.
    let id = running_id
        .as_deref()
        .and_then(|id| id.strip_prefix("containerd://"))
        .expect("a containerd container id")
        .to_string();
    let in_pod = |file: &str| {
        node.ctr(&[
            "tasks",
            "exec",
            "--exec-id",
            &format!("sa-{file}"),
            &id,
            "cat",
            &format!("/var/run/secrets/kubernetes.io/serviceaccount/{file}"),
        ])
    };
    assert_eq!(in_pod("namespace"), "default");
    let ca = std::fs::read_to_string(node.data_dir.join("server/tls/server-ca.crt"))
        .expect("the cluster CA");
    assert_eq!(in_pod("ca.crt"), ca);
    let token = in_pod("token");
    let payload = token.split('.').nth(1).expect("the token is a JWT");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "sleeper");
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    let info = node.ctr(&["containers", "info", &id]);
    assert!(
        info.contains("/var/run/secrets/kubernetes.io/serviceaccount"),
        "no token mount: {info}"
    );

    // A restarted skiff reuses the running containerd; the pod keeps running.
    let pid_file = node.data_dir.join("agent/containerd/containerd.pid");
    let containerd_pid = std::fs::read_to_string(&pid_file).expect("containerd's pid file");
    node.restart();
    node.wait_for(
        "the log to say containerd is reused",
        Duration::from_secs(60),
        || {
            node.log()
                .contains("reusing the running containerd")
                .then_some(())
        },
    );
    let after = std::fs::read_to_string(&pid_file).expect("containerd's pid file");
    assert_eq!(containerd_pid, after, "containerd was not relaunched");
    node.wait_for("the API after the restart", Duration::from_secs(30), || {
        node.kubectl_ok(&["get", "pod", "sleeper", &container_id])
    });
    assert_eq!(
        node.kubectl_ok(&["get", "pod", "sleeper", &container_id]),
        running_id
    );
    assert_eq!(
        node.ctr(&["containers", "ls", "-q"]),
        sandboxes,
        "the same containers run"
    );

    // containerd killed: the supervisor brings it back, the pod keeps running.
    let pid: i32 = containerd_pid.trim().parse().expect("a pid");
    // SAFETY: kill(2) on the containerd this test's skiff launched.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    node.wait_for(
        "containerd to be relaunched",
        Duration::from_secs(60),
        || {
            node.log()
                .contains("containerd is ready again")
                .then_some(())
        },
    );
    assert_eq!(
        node.ctr(&["containers", "ls", "-q"]),
        sandboxes,
        "the same containers run"
    );

    // restartPolicy Never: the exit code decides the phase.
    node.create_pod("fails", BUSYBOX, r#"["sh","-c","exit 3"]"#, "Never");
    node.create_pod("succeeds", BUSYBOX, r#"["true"]"#, "Never");
    for (pod, phase) in [("fails", "Failed"), ("succeeds", "Succeeded")] {
        node.wait_for(
            &format!("pod {pod} to be {phase}"),
            Duration::from_secs(60),
            || {
                node.kubectl_ok(&["get", "pod", pod, &jsonpath("{.status.phase}")])
                    .filter(|p| p == phase)
            },
        );
    }
    let exit_code = jsonpath("{.status.containerStatuses[0].state.terminated.exitCode}");
    assert_eq!(
        node.kubectl_ok(&["get", "pod", "fails", &exit_code])
            .as_deref(),
        Some("3")
    );

    // A missing image with pull policy Never is not pulled.
    node.create_pod(
        "missing",
        "docker.io/skiff/absent:1",
        r#"["true"]"#,
        "Never",
    );
    let reason = jsonpath("{.status.containerStatuses[0].state.waiting.reason}");
    node.wait_for("ErrImageNeverPull", Duration::from_secs(60), || {
        node.kubectl_ok(&["get", "pod", "missing", &reason])
            .filter(|r| r == "ErrImageNeverPull")
    });
    for pod in ["fails", "succeeds", "missing"] {
        let deleted = node.kubectl(&["delete", "pod", pod, "--grace-period=1", "--wait=true"]);
        assert!(
            deleted.status.success(),
            "{}",
            String::from_utf8_lossy(&deleted.stderr)
        );
    }

    // Deleting it stops the containers and removes the sandbox.
    let deleted = node.kubectl(&[
        "delete",
        "pod",
        "sleeper",
        "--grace-period=1",
        "--wait=true",
    ]);
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    node.wait_for("the sandbox to go", Duration::from_secs(30), || {
        node.ctr(&["containers", "ls", "-q"])
            .trim()
            .is_empty()
            .then_some(())
    });
}
