//! Streaming to and from pods end to end, with real containerd: the stock
//! kubectl reads logs (`--tail`, `--timestamps`, `--since`, `--limit-bytes`,
//! `-f`, `--previous`), runs commands with `exec` (stdin, exit codes, a
//! fetch of another pod's page by its IP), copies files both ways with
//! `cp`, follows a container with `attach` and reaches a pod's port with
//! `port-forward`, all through the API server and the node's kubelet
//! server. Users without the subresource's permission are refused, and the
//! kubelet server itself authenticates and authorizes its callers. Container
//! logs are rotated by size.
//!
//! The node advertises 127.0.0.1, so the API server reaches its kubelet on
//! loopback; pods only talk to each other over the node's bridge. The
//! harness and its cleanup are in `tests/common/node.rs`; run under
//! `flock /tmp/skiff-node-e2e.lock`.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::https::{self, Credential};
use common::node::{BUSYBOX, Node};

/// A pod bound to `node` with one container `main` running `command`.
fn pod(node: &Node, name: &str, command: &[&str]) {
    let manifest = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node.name,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": BUSYBOX,
                "imagePullPolicy": "Never",
                "command": command,
            }],
        },
    });
    let path = node.dir.path().join(format!("{name}.json"));
    std::fs::write(&path, manifest.to_string()).expect("write the pod");
    let out = node.kubectl(&["create", "-f", &path.display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Collects a child's stdout in the background.
fn collect(child: &mut Child) -> Arc<Mutex<String>> {
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let sink = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = sink.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    seen
}

/// Collects a child's stderr in the background.
fn collect_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let sink = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = sink.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    seen
}

fn text(seen: &Arc<Mutex<String>>) -> String {
    seen.lock().map(|s| s.clone()).unwrap_or_default()
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The highest `line-N` in `output`.
fn last_line_number(output: &str) -> Option<u64> {
    output
        .lines()
        .filter_map(|l| l.rsplit("line-").next()?.trim().parse().ok())
        .max()
}

/// The log directory of container `main` of pod `name`.
fn log_dir(node: &Node, name: &str) -> Option<PathBuf> {
    let prefix = format!("default_{name}_");
    std::fs::read_dir(node.data_dir.join("agent/pod-logs"))
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path().join("main"))
}

#[test]
fn logs_exec_cp_attach_and_port_forward_reach_the_pods() {
    let node = Node::start_with(&[
        "--advertise-address=127.0.0.1",
        "--container-log-max-size=2Ki",
        "--container-log-max-files=2",
    ]);
    let ready = r#"-o=jsonpath={.status.conditions[?(@.type=="Ready")].status}"#;
    node.wait_for("the node to be Ready", Duration::from_secs(90), || {
        node.kubectl_ok(&["get", "node", &node.name, ready])
            .filter(|s| s == "True")
    });
    let port = node.kubectl_ok(&[
        "get",
        "node",
        &node.name,
        "-o=jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
    ]);
    assert_eq!(port, Some(node.kubelet_port.to_string()));

    pod(
        &node,
        "web",
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo web-page > /www/index.html && httpd -p 8080 -h /www && \
             echo to-stderr >&2 && i=0; while true; do echo line-$i; i=$((i+1)); sleep 1; done",
        ],
    );
    pod(&node, "shell", &["sleep", "3600"]);
    pod(
        &node,
        "chatty",
        &[
            "sh",
            "-c",
            "while true; do echo 0123456789012345678901234567890123456789; sleep 0.02; done",
        ],
    );
    // Two containers; kubectl picks the one the annotation names.
    let containers = ["a", "b"].map(|c| {
        serde_json::json!({
            "name": c,
            "image": BUSYBOX,
            "imagePullPolicy": "Never",
            "command": ["sh", "-c", format!("echo from-{c}; exec sleep 3600")],
            "env": [{"name": "WHO", "value": c}],
        })
    });
    let duo = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "duo",
            "namespace": "default",
            "annotations": {"kubectl.kubernetes.io/default-container": "b"},
        },
        "spec": {
            "nodeName": node.name,
            "terminationGracePeriodSeconds": 1,
            "containers": containers,
        },
    });
    let path = node.dir.path().join("duo.json");
    std::fs::write(&path, duo.to_string()).expect("write the pod");
    let out = node.kubectl(&["create", "-f", &path.display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["web", "shell", "chatty", "duo"] {
        node.wait_for(
            &format!("pod {name} to run"),
            Duration::from_secs(60),
            || {
                node.kubectl_ok(&["get", "pod", name, "-o=jsonpath={.status.phase}"])
                    .filter(|p| p == "Running")
            },
        );
    }
    let web_ip = node
        .kubectl_ok(&["get", "pod", "web", "-o=jsonpath={.status.podIP}"])
        .expect("web has an IP");

    // Logs: stdout and stderr, whole and in parts.
    let logs = node.wait_for("web's first lines", Duration::from_secs(30), || {
        node.kubectl_ok(&["logs", "web"])
            .filter(|l| l.contains("line-2"))
    });
    // stderr and stdout are separate pipes: their order is not fixed.
    let lines: Vec<&str> = logs.lines().collect();
    assert!(lines.contains(&"to-stderr"), "{logs}");
    let numbered: Vec<&str> = lines.into_iter().filter(|l| *l != "to-stderr").collect();
    assert_eq!(numbered[..3], ["line-0", "line-1", "line-2"], "{logs}");
    let tail = node
        .kubectl_ok(&["logs", "web", "--tail=1"])
        .unwrap_or_default();
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.starts_with("line-"), "{tail}");
    let stamped = node
        .kubectl_ok(&["logs", "web", "--timestamps", "--tail=2"])
        .unwrap_or_default();
    assert_eq!(stamped.lines().count(), 2, "{stamped}");
    for line in stamped.lines() {
        let (time, rest) = line.split_once(' ').expect("a timestamp and text");
        assert_eq!(time.len(), "2026-11-23T10:00:00.000000000Z".len(), "{line}");
        assert!(time.parse::<jiff::Timestamp>().is_ok(), "{line}");
        assert!(rest.starts_with("line-"), "{line}");
    }
    let since = node
        .kubectl_ok(&["logs", "web", "--since=1h"])
        .unwrap_or_default();
    assert!(since.contains("line-0"), "{since}");
    let limited = node
        .kubectl_ok(&["logs", "web", "--limit-bytes=6"])
        .unwrap_or_default();
    assert_eq!(limited.len(), 6, "{limited:?}");
    assert!(
        logs.starts_with(&limited),
        "{limited:?} does not start {logs:?}"
    );
    let previous = node.kubectl(&["logs", "web", "--previous"]);
    assert!(!previous.status.success());
    assert!(
        String::from_utf8_lossy(&previous.stderr)
            .contains(r#"previous terminated container "main" in pod "web" not found"#),
        "{}",
        String::from_utf8_lossy(&previous.stderr)
    );
    let wrong = node.kubectl(&["logs", "web", "-c", "nope"]);
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("container nope is not valid for pod web"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    assert_eq!(node.kubectl_ok(&["logs", "duo"]).as_deref(), Some("from-b"));
    assert_eq!(
        node.kubectl_ok(&["logs", "duo", "-c", "a"]).as_deref(),
        Some("from-a")
    );
    assert_eq!(
        node.kubectl_ok(&["exec", "duo", "--", "sh", "-c", "echo $WHO"])
            .as_deref(),
        Some("b")
    );
    assert_eq!(
        node.kubectl_ok(&["exec", "duo", "-c", "a", "--", "sh", "-c", "echo $WHO"])
            .as_deref(),
        Some("a")
    );

    // logs -f streams lines written after it started.
    let before = last_line_number(&node.kubectl_ok(&["logs", "web"]).unwrap_or_default())
        .expect("numbered lines");
    let mut follow = node
        .kubectl_command(&["logs", "-f", "web"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl logs -f");
    let followed = collect(&mut follow);
    let deadline = Instant::now() + Duration::from_secs(20);
    while last_line_number(&text(&followed)).is_none_or(|n| n < before + 3)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    stop(&mut follow);
    let followed = text(&followed);
    assert!(
        last_line_number(&followed).is_some_and(|n| n >= before + 3),
        "logs -f stopped at {followed:?} (before: {before})"
    );

    // exec: output, stdin, exit codes and the pod network.
    assert_eq!(
        node.kubectl_ok(&["exec", "shell", "--", "cat", "/etc/hostname"])
            .as_deref(),
        Some("shell")
    );
    let mut cat = node
        .kubectl_command(&["exec", "-i", "shell", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl exec -i");
    cat.stdin
        .take()
        .expect("stdin")
        .write_all(b"ping over stdin\n")
        .expect("write stdin");
    let echoed = cat.wait_with_output().expect("kubectl exec -i ends at EOF");
    assert!(
        echoed.status.success(),
        "{}",
        String::from_utf8_lossy(&echoed.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&echoed.stdout), "ping over stdin\n");
    let exit = node.kubectl(&["exec", "shell", "--", "sh", "-c", "exit 3"]);
    assert_eq!(
        exit.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&exit.stderr)
    );
    let page = node.kubectl_ok(&[
        "exec",
        "shell",
        "--",
        "wget",
        "-qO-",
        &format!("http://{web_ip}:8080/"),
    ]);
    assert_eq!(page.as_deref(), Some("web-page"));

    // cp, both ways (tar in the pod).
    let local = node.dir.path().join("to-pod.txt");
    std::fs::write(&local, "copied into the pod\n").expect("write");
    let out = node.kubectl(&[
        "cp",
        &local.display().to_string(),
        "default/shell:/tmp/copied.txt",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        node.kubectl_ok(&["exec", "shell", "--", "cat", "/tmp/copied.txt"])
            .as_deref(),
        Some("copied into the pod")
    );
    let back = node.dir.path().join("from-pod.txt");
    let out = node.kubectl(&[
        "cp",
        "default/shell:/tmp/copied.txt",
        &back.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&back).expect("copied back"),
        "copied into the pod\n"
    );

    // attach follows the container's output.
    let mut attach = node
        .kubectl_command(&["attach", "web"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl attach");
    let attached = collect(&mut attach);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text(&attached).contains("line-") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    stop(&mut attach);
    assert!(text(&attached).contains("line-"), "{:?}", text(&attached));

    // port-forward answers on 127.0.0.1.
    let local_port = common::free_port();
    let mut forward = node
        .kubectl_command(&["port-forward", "pod/web", &format!("{local_port}:8080")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl port-forward");
    let forwarding = collect(&mut forward);
    let complaints = collect_stderr(&mut forward);
    let fetch = || -> Result<String, String> {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", local_port))
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        tcp.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .map_err(|e| format!("write: {e}"))?;
        let mut reply = String::new();
        tcp.read_to_string(&mut reply)
            .map_err(|e| format!("read: {e} after {reply:?}"))?;
        Ok(reply)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempts = Vec::new();
    let answer = loop {
        if text(&forwarding).contains("Forwarding from") {
            match fetch() {
                Ok(reply) if reply.contains("web-page") => break reply,
                Ok(reply) => attempts.push(format!("answered {reply:?}")),
                Err(e) => attempts.push(e),
            }
        }
        assert!(
            Instant::now() < deadline,
            "port-forward did not answer: {attempts:?}; kubectl said {:?} {:?}; log:\n{}",
            text(&forwarding),
            text(&complaints),
            node.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    stop(&mut forward);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");

    // nodes/proxy reaches the kubelet's own endpoints.
    let summary: serde_json::Value = serde_json::from_str(
        &node
            .kubectl_ok(&[
                "get",
                "--raw",
                &format!("/api/v1/nodes/{}/proxy/stats/summary", node.name),
            ])
            .expect("stats summary"),
    )
    .expect("JSON");
    assert_eq!(summary["node"]["nodeName"], node.name.as_str());
    assert!(
        summary["node"]["memory"]["workingSetBytes"]
            .as_u64()
            .is_some(),
        "{summary}"
    );
    assert!(
        summary["pods"]
            .as_array()
            .is_some_and(|pods| pods.iter().any(|p| p["podRef"]["name"] == "web")),
        "{summary}"
    );
    let pods = node
        .kubectl_ok(&[
            "get",
            "--raw",
            &format!("/api/v1/nodes/{}/proxy/pods", node.name),
        ])
        .unwrap_or_default();
    assert!(pods.contains(r#""name":"shell""#), "{pods}");

    // Without the subresource's permission: Forbidden. `getter` may only
    // read pods; `viewer` has the `view` role, which includes pods/log.
    for args in [
        &[
            "create",
            "role",
            "pod-getter",
            "--verb=get",
            "--resource=pods",
        ][..],
        &[
            "create",
            "rolebinding",
            "getter",
            "--role=pod-getter",
            "--user=getter",
        ],
        &[
            "create",
            "rolebinding",
            "viewer",
            "--clusterrole=view",
            "--user=viewer",
        ],
    ] {
        let out = node.kubectl(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let denied = node.kubectl(&["--as=getter", "exec", "shell", "--", "true"]);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains(r#"cannot create resource "pods/exec""#),
        "{stderr}"
    );
    let denied = node.kubectl(&["--as=getter", "logs", "web"]);
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains(r#"cannot get resource "pods/log""#),
        "{stderr}"
    );
    let viewed = node.wait_for(
        "the view role to cover pods/log",
        Duration::from_secs(20),
        || node.kubectl_ok(&["--as=viewer", "logs", "web", "--tail=1"]),
    );
    assert!(viewed.starts_with("line-"), "{viewed}");
    let denied = node.kubectl(&["--as=viewer", "exec", "shell", "--", "true"]);
    assert!(!denied.status.success(), "view does not allow exec");

    // The kubelet server: no credentials, 401; a service account token is
    // reviewed and denied; the admin certificate is allowed.
    let ca = std::fs::read_to_string(node.data_dir.join("server/tls/server-ca.crt")).expect("CA");
    let reply =
        https::get(node.kubelet_port, &ca, "/pods", Credential::Anonymous).expect("kubelet");
    assert_eq!(reply.status, 401, "{}", reply.body);
    let token = node
        .kubectl_ok(&["create", "token", "default"])
        .expect("a token");
    let reply =
        https::get(node.kubelet_port, &ca, "/pods", Credential::Bearer(&token)).expect("kubelet");
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        reply.body.contains("user=system:serviceaccount:default:default, verb=get, resource=nodes, subresource(s)=[proxy]"),
        "{}",
        reply.body
    );
    let cert =
        std::fs::read_to_string(node.data_dir.join("server/tls/client-admin.crt")).expect("cert");
    let key =
        std::fs::read_to_string(node.data_dir.join("server/tls/client-admin.key")).expect("key");
    let reply = https::get(
        node.kubelet_port,
        &ca,
        "/healthz",
        Credential::Certificate {
            cert_pem: &cert,
            key_pem: &key,
        },
    )
    .expect("kubelet");
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));

    // Log rotation: chatty's log passes 2Ki between checks; at most one
    // rotated file is kept beside the live one, and logs still read.
    let dir = node.wait_for("chatty's log dir", Duration::from_secs(10), || {
        log_dir(&node, "chatty")
    });
    let rotated = |dir: &PathBuf| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("0.log."))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 2 && Instant::now() < deadline {
        let now = rotated(&dir);
        assert!(
            now.len() <= 1,
            "more than max-files - 1 rotated logs: {now:?}"
        );
        seen.extend(now);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(seen.len() >= 2, "the log was not rotated twice: {seen:?}");
    let live = std::fs::metadata(dir.join("0.log"))
        .expect("the live log")
        .len();
    assert!(live < 64 * 1024, "the live log keeps growing: {live} bytes");
    let last = node
        .kubectl_ok(&["logs", "chatty", "--tail=1"])
        .unwrap_or_default();
    assert_eq!(last, "0123456789012345678901234567890123456789");
}
