//! Cluster DNS end to end: a busybox pod on the server's node resolves
//! Services through the in-process DNS at the cluster DNS address (full
//! and short names, headless, ExternalName, NXDOMAIN) and outside names
//! through a fake upstream on 127.0.0.77 that the test binds (the node's
//! `--resolv-conf` names only it, so nothing leaves the machine); pods get
//! resolv.conf per dnsPolicy. Without a node: the `kubernetes` Service's
//! endpoints follow the API server identity leases.
//!
//! The node test needs root, containerd, runc and the CNI plugins; run it
//! under the node e2e lock (`flock /tmp/skiff-node-e2e.lock`).

mod common;

use std::net::UdpSocket;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::node::{BUSYBOX, CLUSTER_DNS, Node};
use common::{TestServer, eventually, text};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

const UPSTREAM: &str = "127.0.0.77";

/// A fake upstream resolver on 127.0.0.77:53 answering `*.outside.test.`
/// A queries with 192.0.2.10 and NXDOMAIN for anything else; stops on drop.
struct FakeUpstream {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeUpstream {
    fn start() -> Self {
        let socket =
            UdpSocket::bind((UPSTREAM, 53)).expect("bind the fake upstream on 127.0.0.77:53");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stopped.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(request) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(query) = request.query().cloned() else {
                    continue;
                };
                let mut response = Message::new();
                response
                    .set_id(request.id())
                    .set_message_type(MessageType::Response)
                    .set_recursion_desired(true)
                    .set_recursion_available(true)
                    .add_query(query.clone());
                let outside = Name::from_str("outside.test.").expect("name");
                if outside.zone_of(query.name()) {
                    if query.query_type() == RecordType::A {
                        response.add_answer(Record::from_rdata(
                            query.name().clone(),
                            30,
                            RData::A(A::new(192, 0, 2, 10)),
                        ));
                    }
                } else {
                    response.set_response_code(ResponseCode::NXDomain);
                }
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, from);
                }
            }
        });
        FakeUpstream {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const MANIFEST: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec:
  type: ExternalName
  externalName: www.outside.test
"#;

fn pod(name: &str, node: &str, app: &str, extra_spec: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default, labels: {{app: {app}}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  {extra_spec}
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: Never
    command: ["sleep", "3600"]
"#
    )
}

fn wait_ready(node: &Node) {
    let ready = r#"-o=jsonpath={.status.conditions[?(@.type=="Ready")].status}"#;
    node.wait_for("the node to be Ready", Duration::from_secs(90), || {
        node.kubectl_ok(&["get", "node", &node.name, ready])
            .filter(|s| s == "True")
    });
}

/// `nslookup <name>` in the client pod: (succeeded, output).
fn nslookup(node: &Node, name: &str) -> (bool, String) {
    let out = node.kubectl(&["exec", "client", "--", "nslookup", "-type=a", name]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn pods_resolve_services_and_outside_names_through_the_cluster_dns() {
    let upstream = FakeUpstream::start();
    let dir = tempfile::tempdir().expect("dir");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {UPSTREAM}\nsearch corp.test\n"),
    )
    .expect("write");
    let node = Node::start_with(&[&format!("--resolv-conf={}", resolv.display())]);
    wait_ready(&node);

    // The kube-dns Service carries the cluster DNS address.
    let dns_ip = node.kubectl_ok(&[
        "-n",
        "kube-system",
        "get",
        "service",
        "kube-dns",
        "-o=jsonpath={.spec.clusterIP}",
    ]);
    assert_eq!(dns_ip.as_deref(), Some(CLUSTER_DNS));

    node.apply(MANIFEST);
    let pods = [
        pod("client", &node.name, "client", ""),
        pod("web-1", &node.name, "web", ""),
        pod("db-1", &node.name, "db", ""),
        pod("db-2", &node.name, "db", ""),
        pod(
            "custom",
            &node.name,
            "custom",
            "dnsPolicy: None\n  dnsConfig: {nameservers: [192.0.2.53], searches: [a.example], options: [{name: ndots, value: \"2\"}]}",
        ),
    ];
    node.apply(&pods.join("\n---\n"));
    let mut db_ips = Vec::new();
    for name in ["client", "web-1", "db-1", "db-2", "custom"] {
        node.wait_pod_field(name, "{.status.phase}", Duration::from_secs(90), |p| {
            p == "Running"
        });
        if name.starts_with("db-") {
            db_ips.push(node.wait_pod_field(
                name,
                "{.status.podIP}",
                Duration::from_secs(30),
                |ip| !ip.is_empty(),
            ));
        }
    }
    let web_ip = node
        .kubectl_ok(&["get", "service", "web", "-o=jsonpath={.spec.clusterIP}"])
        .expect("web's ClusterIP");

    // resolv.conf per dnsPolicy.
    let resolv_conf = node
        .kubectl_ok(&["exec", "client", "--", "cat", "/etc/resolv.conf"])
        .unwrap_or_default();
    assert!(
        resolv_conf.contains(&format!("nameserver {CLUSTER_DNS}")),
        "{resolv_conf}"
    );
    assert!(
        resolv_conf
            .contains("search default.svc.cluster.local svc.cluster.local cluster.local corp.test"),
        "{resolv_conf}"
    );
    assert!(resolv_conf.contains("ndots:5"), "{resolv_conf}");
    let custom = node
        .kubectl_ok(&["exec", "custom", "--", "cat", "/etc/resolv.conf"])
        .unwrap_or_default();
    assert!(custom.contains("nameserver 192.0.2.53"), "{custom}");
    assert!(custom.contains("search a.example"), "{custom}");
    assert!(custom.contains("ndots:2"), "{custom}");
    assert!(!custom.contains(CLUSTER_DNS), "{custom}");

    // A ClusterIP Service by its full name and by its short name.
    node.wait_for(
        "web's full name to resolve",
        Duration::from_secs(30),
        || {
            let (ok, out) = nslookup(&node, "web.default.svc.cluster.local");
            (ok && out.contains(&web_ip)).then_some(())
        },
    );
    // busybox tries every search domain and fails if any did: look for
    // the answer through `default.svc.cluster.local`, the first one.
    let (_, out) = nslookup(&node, "web");
    assert!(
        out.contains("Name:\tweb.default.svc.cluster.local") && out.contains(&web_ip),
        "{out}"
    );

    // A headless Service: every ready pod.
    node.wait_for("db to list both pods", Duration::from_secs(30), || {
        let (ok, out) = nslookup(&node, "db.default.svc.cluster.local");
        (ok && db_ips.iter().all(|ip| out.contains(ip.as_str()))).then_some(())
    });

    // ExternalName: the CNAME, and its target's address from the upstream.
    let (ok, out) = nslookup(&node, "ext.default.svc.cluster.local.");
    assert!(ok, "{out}");
    assert!(out.contains("www.outside.test"), "{out}");
    assert!(out.contains("192.0.2.10"), "{out}");

    // An unknown cluster name is NXDOMAIN.
    let (ok, out) = nslookup(&node, "nope.default.svc.cluster.local.");
    assert!(!ok, "{out}");
    assert!(out.contains("NXDOMAIN"), "{out}");

    // An outside name is forwarded to the fake upstream.
    let (ok, out) = nslookup(&node, "api.outside.test.");
    assert!(ok && out.contains("192.0.2.10"), "{out}");
    drop(upstream);
}

/// The `kubernetes` Service's endpoints follow the live API servers' leases:
/// another server's live lease adds its address, and once the lease has
/// expired the address leaves and the lease is deleted.
#[test]
fn kubernetes_endpoints_follow_the_api_server_leases() {
    let server = TestServer::start_with(&["--advertise-address=192.0.2.1"]);
    let endpoints = || {
        text(&server.kubectl(&[
            "get",
            "endpoints",
            "kubernetes",
            "-o=jsonpath={.subsets[*].addresses[*].ip}",
        ]))
    };
    let slice = || {
        text(&server.kubectl(&[
            "get",
            "endpointslice",
            "kubernetes",
            "-o=jsonpath={.endpoints[*].addresses[*]}",
        ]))
    };
    eventually(Duration::from_secs(30), "this server's address", || {
        (endpoints() == "192.0.2.1").then_some(())
    });
    let own = text(&server.kubectl(&[
        "-n",
        "kube-system",
        "get",
        "leases",
        "-l",
        "apiserver.kubernetes.io/identity=kube-apiserver",
        "-o=jsonpath={.items[*].metadata.annotations.skiff\\.io/advertise-address}",
    ]));
    assert_eq!(own, "192.0.2.1");

    let lease = |renew: &str| {
        format!(
            r#"{{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{{"name":"apiserver-other","namespace":"kube-system",
"labels":{{"apiserver.kubernetes.io/identity":"kube-apiserver"}},
"annotations":{{"skiff.io/advertise-address":"192.0.2.2","skiff.io/advertise-port":"6443"}}}},
"spec":{{"holderIdentity":"kube-apiserver-other","leaseDurationSeconds":15,"renewTime":"{renew}"}}}}"#
        )
    };
    let write = |manifest: String| {
        let path = std::env::temp_dir().join(format!("skiff-lease-{}.json", std::process::id()));
        std::fs::write(&path, manifest).expect("write the lease");
        let out = server.kubectl(&["apply", "-f", &path.display().to_string()]);
        let _ = std::fs::remove_file(&path);
        assert!(out.status.success(), "{}", text(&out));
    };
    // A live second server: its address joins.
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
    write(lease(
        &soon.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string(),
    ));
    eventually(Duration::from_secs(30), "both addresses", || {
        (endpoints() == "192.0.2.1 192.0.2.2" && slice() == "192.0.2.1 192.0.2.2").then_some(())
    });
    // Its lease expired: the address leaves and the lease is deleted.
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600);
    write(lease(
        &past.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string(),
    ));
    eventually(
        Duration::from_secs(30),
        "the stale address to leave",
        || (endpoints() == "192.0.2.1" && slice() == "192.0.2.1").then_some(()),
    );
    let gone = server.kubectl(&["-n", "kube-system", "get", "lease", "apiserver-other"]);
    assert!(!gone.status.success(), "{}", text(&gone));
}

/// The DNS benchmark (`scripts/bench-dns.sh`): A queries for a Service name
/// from a pod's network namespace to the cluster DNS at a bounded rate
/// (`SKIFF_BENCH_DNS_RATE`, `SKIFF_BENCH_DNS_SECONDS`); prints the client's
/// JSON line. Ignored in normal runs.
#[test]
#[ignore = "benchmark: scripts/bench-dns.sh"]
fn dns_benchmark() {
    let rate = std::env::var("SKIFF_BENCH_DNS_RATE").unwrap_or_else(|_| "1000".into());
    let seconds = std::env::var("SKIFF_BENCH_DNS_SECONDS").unwrap_or_else(|_| "10".into());
    let dir = tempfile::tempdir().expect("dir");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {UPSTREAM}\n")).expect("write");
    let node = Node::start_with(&[&format!("--resolv-conf={}", resolv.display())]);
    let before: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    wait_ready(&node);
    node.apply(MANIFEST);
    node.apply(&pod("client", &node.name, "client", ""));
    node.wait_pod_field("client", "{.status.phase}", Duration::from_secs(120), |p| {
        p == "Running"
    });
    let netns = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| !before.contains(n))
        .expect("the client pod's network namespace");
    node.wait_for("the cluster DNS", Duration::from_secs(30), || {
        let (ok, out) = nslookup(&node, "web.default.svc.cluster.local");
        (ok && out.contains("Address: 10.")).then_some(())
    });
    let client = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_dns_client.py");
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .args([
            "python3",
            client,
            CLUSTER_DNS,
            "web.default.svc.cluster.local",
        ])
        .args(["--rate", &rate, "--seconds", &seconds])
        .output()
        .expect("run the benchmark client");
    assert!(out.status.success(), "{}", text(&out));
    println!("BENCH {}", String::from_utf8_lossy(&out.stdout).trim());
}
