//! Services and many nodes, end to end (root, real containerd, iptables,
//! network namespaces): a `skiff server` and two `skiff agent`s, each agent
//! on its own test "host" (a network namespace on a bridge the test makes,
//! `tests/common/cluster.rs`). Pods on different nodes reach each other over
//! the VXLAN overlay; a ClusterIP Service balances across both nodes; a
//! NodePort answers on each node's address; names resolve through the
//! in-process cluster DNS (service, FQDN, headless, ExternalName); a pod
//! lists pods through `https://kubernetes.default.svc` with its service
//! account token; a node's credentials cannot touch another node's objects.
//! Then one agent stops: its node goes NotReady, its pods are replaced on
//! the other node, endpoints follow and traffic keeps flowing; restarted, it
//! is the same Node again.
//!
//! No traffic leaves the machine: the hosts have no default route, the
//! agents' DNS forwards to 127.0.0.9 inside their namespace (nothing
//! listens), and every address the test talks to is on its bridge or in its
//! namespaces. Run under `flock /tmp/skiff-node-e2e.lock`.

mod common;

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use common::cluster::Cluster;
use common::node::BUSYBOX;

const A: &str = "skt-node-a";
const B: &str = "skt-node-b";
const MINUTE: Duration = Duration::from_secs(60);

fn web_deployment() -> serde_json::Value {
    // Each pod serves its own name; tolerations make a lost node's pods go
    // after 5 s instead of 300.
    let toleration = |key: &str| serde_json::json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5});
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "tolerations": [
                        toleration("node.kubernetes.io/not-ready"),
                        toleration("node.kubernetes.io/unreachable"),
                    ],
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": {"app": "web"}},
                    }],
                    "containers": [{
                        "name": "web",
                        "image": BUSYBOX,
                        "imagePullPolicy": "Never",
                        "command": ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                    }],
                },
            },
        },
    })
}

fn services() -> Vec<serde_json::Value> {
    let port = serde_json::json!([{"name": "http", "port": 80, "targetPort": "http"}]);
    vec![
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": port}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-np", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": port}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-headless", "namespace": "default"},
            "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": port}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "alias", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}}),
    ]
}

/// The RBAC a client pod's service account gets: list pods in default.
fn lister() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "lister", "namespace": "default"}}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "pod-lister", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "lister", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-lister"},
            "subjects": [{"kind": "ServiceAccount", "name": "lister", "namespace": "default"}]}),
    ]
}

fn client_pod() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client", "namespace": "default"},
        "spec": {
            "nodeName": A,
            "serviceAccountName": "lister",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": BUSYBOX, "imagePullPolicy": "Never",
                            "command": ["sleep", "3600"]}],
        },
    })
}

/// Runs `script` in the client pod; its stdout when it succeeds.
fn in_client(cluster: &Cluster, script: &str) -> Option<String> {
    cluster.kubectl_ok(&["exec", "client", "--", "sh", "-c", script])
}

/// (name, node, IP) of the ready web pods.
fn web_pods(cluster: &Cluster) -> Vec<(String, String, String)> {
    let out = cluster
        .kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "--field-selector=status.phase=Running",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}{"\n"}{end}"#,
        ])
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[3] == "True")
                .then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// The names `count` requests to `url` from the client pod were answered
/// by (failed requests leave no name).
fn answered_by(cluster: &Cluster, url: &str, count: u32) -> Vec<String> {
    let script =
        format!("for i in $(seq {count}); do timeout 3 wget -qO- {url} || echo FAILED; done");
    in_client(cluster, &script)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The CNI network namespace (under /run/netns) whose eth0 holds `ip`.
fn pod_netns(ip: &str) -> Option<String> {
    let entries = std::fs::read_dir("/run/netns").ok()?;
    entries.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        let out = std::process::Command::new("ip")
            .args(["-n", &name, "-4", "-o", "addr", "show"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("inet {ip}/"))
            .then_some(name)
    })
}

/// An HTTP GET from the test process (the server's host) to `addr`.
fn http_get(addr: std::net::SocketAddr) -> Option<String> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    body.starts_with("HTTP/1.").then(|| {
        body.rsplit("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    })
}

#[test]
fn services_dns_and_the_overlay_span_nodes_and_survive_a_lost_node() {
    let mut cluster = Cluster::start_with(&["--node-monitor-grace-period=10s"]);
    let token = cluster.token();
    // The agents' DNS forwards outside names to 127.0.0.9 in their own
    // namespace, where nothing listens: nothing leaves the machine.
    let resolv = cluster.dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.9\n").expect("write resolv.conf");
    let resolv_flag = format!("--resolv-conf={}", resolv.display());
    cluster.add_agent_with(1, A, &token, &[&resolv_flag]);
    cluster.add_agent_with(2, B, &token, &[&resolv_flag]);
    for node in [A, B] {
        cluster.wait_for(
            &format!("{node} to be Ready"),
            Duration::from_secs(120),
            || cluster.node_ready(node).then_some(()),
        );
    }
    let uid_b = cluster
        .kubectl_ok(&["get", "node", B, "-o=jsonpath={.metadata.uid}"])
        .expect("node B's uid");

    for obj in lister().into_iter().chain(services()) {
        cluster.apply(&obj.to_string());
    }
    cluster.apply(&web_deployment().to_string());
    cluster.apply(&client_pod().to_string());
    let pods = cluster.wait_for(
        "4 ready web pods on both nodes",
        Duration::from_secs(180),
        || {
            let pods = web_pods(&cluster);
            let nodes: BTreeSet<&str> = pods.iter().map(|(_, n, _)| n.as_str()).collect();
            (pods.len() == 4 && nodes.len() == 2).then_some(pods)
        },
    );
    cluster.wait_for("the client pod to run", Duration::from_secs(120), || {
        cluster
            .kubectl_ok(&["get", "pod", "client", "-o=jsonpath={.status.phase}"])
            .filter(|p| p == "Running")
    });

    // Pod to pod across nodes, by pod IP over the overlay.
    let (far_name, _, far_ip) = pods.iter().find(|(_, n, _)| n == B).expect("a pod on B");
    let got = cluster.wait_for(
        "the client to reach a pod on the other node",
        MINUTE,
        || {
            in_client(
                &cluster,
                &format!("timeout 3 wget -qO- http://{far_ip}:8080"),
            )
        },
    );
    assert_eq!(&got, far_name);

    // A ClusterIP Service balances across the pods on both nodes, by its
    // short name and by its FQDN.
    let names = cluster.wait_for("the Service to answer", MINUTE, || {
        let names = answered_by(&cluster, "http://web", 40);
        (!names.iter().any(|n| n == "FAILED")).then_some(names)
    });
    let distinct: BTreeSet<&String> = names.iter().collect();
    let nodes: BTreeSet<&str> = pods
        .iter()
        .filter(|(name, _, _)| distinct.contains(name))
        .map(|(_, node, _)| node.as_str())
        .collect();
    assert!(
        distinct.len() >= 2 && nodes.len() == 2,
        "answered by {distinct:?} of {pods:?}"
    );
    let fqdn = answered_by(&cluster, "http://web.default.svc.cluster.local", 3);
    assert!(
        fqdn.iter().all(|n| pods.iter().any(|(p, _, _)| p == n)),
        "{fqdn:?}"
    );

    // A NodePort answers on each node's address.
    let node_port: u16 = cluster
        .kubectl_ok(&[
            "get",
            "svc",
            "web-np",
            "-o=jsonpath={.spec.ports[0].nodePort}",
        ])
        .and_then(|p| p.parse().ok())
        .expect("a nodePort");
    for agent in &cluster.agents {
        let addr = std::net::SocketAddr::from((agent.ip, node_port));
        let body = cluster.wait_for(&format!("NodePort on {addr}"), MINUTE, || http_get(addr));
        assert!(
            pods.iter().any(|(p, _, _)| *p == body),
            "{addr} answered {body:?}"
        );
    }

    // DNS: a headless Service has every ready pod's IP; an ExternalName is
    // its CNAME.
    let headless =
        in_client(&cluster, "nslookup web-headless.default.svc.cluster.local").unwrap_or_default();
    for (_, _, ip) in &pods {
        assert!(
            headless.contains(ip.as_str()),
            "{ip} missing from:\n{headless}"
        );
    }
    let alias =
        in_client(&cluster, "nslookup alias.default.svc.cluster.local || true").unwrap_or_default();
    assert!(
        alias.contains("canonical name = web.default.svc.cluster.local"),
        "{alias}"
    );

    // The pod's service-account token lists pods through the kubernetes
    // Service (its RBAC allows it): the name resolves in the pod, and from
    // the pod's network namespace a client with the pod's token and CA
    // reaches the API at that address. (The image's busybox wget cannot
    // negotiate TLS with the API server, so the test's kubectl is the
    // client, inside the pod's namespace.)
    let resolved =
        in_client(&cluster, "nslookup kubernetes.default.svc.cluster.local").unwrap_or_default();
    let service_ip = cluster
        .kubectl_ok(&["get", "svc", "kubernetes", "-o=jsonpath={.spec.clusterIP}"])
        .expect("the kubernetes Service's IP");
    assert!(
        resolved.contains(&format!("Address: {service_ip}")),
        "{resolved}"
    );
    let secrets = "/var/run/secrets/kubernetes.io/serviceaccount";
    let token = in_client(&cluster, &format!("cat {secrets}/token")).expect("the pod's token");
    let ca = cluster.dir.path().join("pod-ca.crt");
    std::fs::write(
        &ca,
        in_client(&cluster, &format!("cat {secrets}/ca.crt")).expect("ca.crt"),
    )
    .expect("write the pod's CA");
    let client_ip = cluster
        .kubectl_ok(&["get", "pod", "client", "-o=jsonpath={.status.podIP}"])
        .expect("the client's IP");
    let netns = pod_netns(&client_ip).expect("the client pod's network namespace");
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .arg("kubectl")
        .arg(format!("--server=https://{service_ip}:443"))
        .arg(format!("--certificate-authority={}", ca.display()))
        .arg("--tls-server-name=kubernetes.default.svc")
        .arg(format!("--token={}", token.trim()))
        .args([
            "--request-timeout=10s",
            "get",
            "pods",
            "-n",
            "default",
            "-o",
            "name",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl in the pod's network namespace");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listed.contains("pod/client"),
        "{listed} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Node credentials: agent A may not touch node B or B's pods.
    let a_kubeconfig = cluster.agents[0].data_dir.join("agent/kubelet.kubeconfig");
    let as_a = |args: &[&str]| {
        let mut cmd = std::process::Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&a_kubeconfig)
            .arg("--request-timeout=20s")
            .args(args);
        cmd.output().expect("run kubectl as node A")
    };
    let out = as_a(&["label", "node", B, "stolen=yes"]);
    assert!(!out.status.success(), "A labelled node B");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Forbidden")
            || String::from_utf8_lossy(&out.stderr).contains("forbidden"),
        "{out:?}"
    );
    let out = as_a(&["delete", "pod", far_name, "--wait=false"]);
    assert!(!out.status.success(), "A deleted a pod on B");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("forbidden"),
        "{out:?}"
    );

    // Node B goes away: NotReady, its pods replaced on A, endpoints follow,
    // and the Service keeps answering.
    cluster.agents[1].stop();
    cluster.wait_for("node B to turn NotReady", Duration::from_secs(90), || {
        (!cluster.node_ready(B)).then_some(())
    });
    let moved = cluster.wait_for(
        "4 ready web pods, all on A",
        Duration::from_secs(120),
        || {
            let pods = web_pods(&cluster);
            (pods.len() == 4 && pods.iter().all(|(_, n, _)| n == A)).then_some(pods)
        },
    );
    cluster.wait_for("the Service's endpoints to follow", MINUTE, || {
        let ips = cluster.kubectl_ok(&[
            "get",
            "endpoints",
            "web",
            "-o=jsonpath={.subsets[*].addresses[*].ip}",
        ])?;
        let ips: BTreeSet<&str> = ips.split_whitespace().collect();
        let want: BTreeSet<&str> = moved.iter().map(|(_, _, ip)| ip.as_str()).collect();
        (ips == want).then_some(())
    });
    let names = cluster.wait_for("the Service to answer from A only", MINUTE, || {
        let names = answered_by(&cluster, "http://web", 10);
        names
            .iter()
            .all(|n| moved.iter().any(|(p, _, _)| p == n))
            .then_some(names)
    });
    assert_eq!(names.len(), 10);

    // Back again: the same Node object turns Ready.
    cluster.agents[1].launch();
    cluster.wait_for("node B to be Ready again", Duration::from_secs(120), || {
        cluster.node_ready(B).then_some(())
    });
    let uid_again = cluster
        .kubectl_ok(&["get", "node", B, "-o=jsonpath={.metadata.uid}"])
        .expect("node B's uid");
    assert_eq!(uid_b, uid_again, "B rejoined as the same Node");
}
