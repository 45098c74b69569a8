//! The service proxy end to end on the server's own node (real containerd,
//! runc, CNI and iptables; root, under `flock /tmp/skiff-node-e2e.lock`):
//! a Deployment of busybox httpd pods that each serve their own name,
//! reached from a client pod through a ClusterIP (more than one backend
//! answers), with ClientIP affinity (one backend answers), a Service
//! without endpoints (fails fast), a NodePort and a LoadBalancer answered
//! on the node's address, endpoints that follow a scale-down, and no
//! `KUBE-*` chain left once the node is gone and cleaned up.
//!
//! The node's address is on a veth the test creates, so all
//! traffic stays on this machine; the guard removes it.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::node::{BUSYBOX, Node};

/// A veth pair with one address on one end, removed on drop (this kernel
/// has no `dummy` device type; a veth is built in).
struct Dummy {
    name: String,
    ip: Ipv4Addr,
}

impl Dummy {
    fn create() -> Self {
        let id = std::process::id();
        let name = format!("skpx{}", id % 100_000);
        let ip = Ipv4Addr::new(10, 251, (id % 250) as u8 + 1, 1);
        let peer = format!("{name}p");
        let _ = Command::new("ip")
            .args(["link", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        for args in [
            vec!["link", "add", &name, "type", "veth", "peer", "name", &peer],
            vec!["addr", "add", &format!("{ip}/32"), "dev", &name],
            vec!["link", "set", &name, "up"],
            vec!["link", "set", &peer, "up"],
        ] {
            let status = Command::new("ip").args(&args).status().expect("run ip");
            assert!(status.success(), "ip {args:?}");
        }
        Dummy { name, ip }
    }
}

impl Drop for Dummy {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .status();
    }
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: IMAGE
        imagePullPolicy: Never
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody, namespace: default}
spec:
  selector: {app: nobody}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 8081, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: IMAGE
    imagePullPolicy: Never
    command: ["sleep", "3600"]
"#;

fn jsonpath(path: &str) -> String {
    format!("-o=jsonpath={path}")
}

/// The bodies of `count` GETs from the client pod (one line each; a
/// failed request gives an empty line). Not `wget -T`: busybox 1.35's
/// static wget crashes with it.
fn fetch_from_client(node: &Node, url: &str, count: u32) -> Vec<String> {
    let script = format!("for i in $(seq 1 {count}); do timeout 5 wget -qO- {url} || echo; done");
    let out = node.kubectl(&["exec", "client", "--", "sh", "-c", &script]);
    if !out.status.success() {
        eprintln!("kubectl exec: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// One GET from the host to `addr`; the body, if it answered.
fn fetch_from_host(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some(body.trim().to_string()).filter(|b| !b.is_empty())
}

fn web_pods(node: &Node) -> Vec<String> {
    node.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        &jsonpath("{.items[*].metadata.name}"),
    ])
    .unwrap_or_default()
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

fn kube_chains() -> usize {
    let out = Command::new("iptables-save")
        .output()
        .expect("iptables-save");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(":KUBE-") || l.contains("-j KUBE-"))
        .count()
}

#[test]
fn services_reach_their_pods_through_the_proxy() {
    let dummy = Dummy::create();
    let node = Node::start_with(&[&format!("--advertise-address={}", dummy.ip)]);
    let ready = jsonpath(r#"{.status.conditions[?(@.type=="Ready")].status}"#);
    node.wait_for("the node to be Ready", Duration::from_secs(90), || {
        node.kubectl_ok(&["get", "node", &node.name, &ready])
            .filter(|s| s == "True")
    });
    node.apply(&WEB.replace("IMAGE", BUSYBOX));
    node.wait_pod_field("client", "{.status.phase}", Duration::from_secs(90), |p| {
        p == "Running"
    });
    let ready_web = || {
        node.kubectl_ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            &jsonpath(r#"{.items[*].endpoints[?(@.conditions.ready==true)].addresses[0]}"#),
        ])
        .map(|s| s.split_whitespace().count())
        .unwrap_or(0)
    };
    node.wait_for("3 ready endpoints", Duration::from_secs(120), || {
        (ready_web() == 3).then_some(())
    });
    let ip_of = |service: &str| {
        node.kubectl_ok(&["get", "service", service, &jsonpath("{.spec.clusterIP}")])
            .expect("a cluster IP")
    };
    let pods = web_pods(&node);

    // ClusterIP: the requests are spread over more than one backend.
    let web_ip = ip_of("web");
    let bodies = node.wait_for("the ClusterIP to answer", Duration::from_secs(30), || {
        let bodies = fetch_from_client(&node, &format!("http://{web_ip}/"), 24);
        (bodies.len() == 24 && bodies.iter().all(|b| pods.contains(b))).then_some(bodies)
    });
    let distinct: std::collections::BTreeSet<&String> = bodies.iter().collect();
    assert!(
        distinct.len() > 1,
        "one backend answered every request: {bodies:?}"
    );

    // ClientIP affinity: one backend answers every request.
    let sticky = fetch_from_client(&node, &format!("http://{}/", ip_of("sticky")), 12);
    assert_eq!(sticky.len(), 12, "{sticky:?}");
    assert!(pods.contains(&sticky[0]), "{sticky:?}");
    assert!(
        sticky.iter().all(|b| *b == sticky[0]),
        "affinity did not stick: {sticky:?}"
    );

    // A Service without endpoints is refused at once, not timed out.
    let nobody = ip_of("nobody");
    let saved = String::from_utf8_lossy(
        &Command::new("iptables-save")
            .args(["-t", "filter"])
            .output()
            .expect("iptables-save")
            .stdout,
    )
    .to_string();
    assert!(
        saved
            .lines()
            .any(|l| l.contains("default/nobody has no endpoints")
                && l.contains(&nobody)
                && l.contains("REJECT")),
        "{saved}"
    );
    let started = Instant::now();
    let refused = node.kubectl(&[
        "exec",
        "client",
        "--",
        "timeout",
        "10",
        "wget",
        "-qO-",
        &format!("http://{nobody}/"),
    ]);
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(error.contains("can't connect to remote host"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}: {}",
        started.elapsed(),
        String::from_utf8_lossy(&refused.stderr)
    );

    // NodePort, on the node's address.
    let node_port: u16 = node
        .kubectl_ok(&[
            "get",
            "service",
            "web-np",
            &jsonpath("{.spec.ports[0].nodePort}"),
        ])
        .and_then(|p| p.parse().ok())
        .expect("a node port");
    let answer = node.wait_for("the NodePort to answer", Duration::from_secs(20), || {
        fetch_from_host(SocketAddr::from((dummy.ip, node_port)))
    });
    assert!(pods.contains(&answer), "{answer}");

    // LoadBalancer: ServiceLB sets the node's address, the proxy answers it.
    let ingress = node.wait_for("the load balancer ingress", Duration::from_secs(30), || {
        node.kubectl_ok(&[
            "get",
            "service",
            "web-lb",
            &jsonpath("{.status.loadBalancer.ingress[*].ip}"),
        ])
        .filter(|s| !s.is_empty())
    });
    assert_eq!(ingress, dummy.ip.to_string());
    let answer = node.wait_for(
        "the load balancer to answer",
        Duration::from_secs(20),
        || fetch_from_host(SocketAddr::from((dummy.ip, 8081))),
    );
    assert!(pods.contains(&answer), "{answer}");

    // Scaling down: the rules follow the endpoints.
    assert!(
        node.kubectl_ok(&["scale", "deployment", "web", "--replicas=1"])
            .is_some()
    );
    node.wait_for("1 ready endpoint", Duration::from_secs(90), || {
        (ready_web() == 1).then_some(())
    });
    node.wait_for("one backend left", Duration::from_secs(30), || {
        let bodies = fetch_from_client(&node, &format!("http://{web_ip}/"), 8);
        let left = web_pods(&node);
        (left.len() == 1 && bodies.len() == 8 && bodies.iter().all(|b| *b == left[0])).then_some(())
    });

    // Stopping the node and cleaning up removes every KUBE-* chain and jump.
    assert!(kube_chains() > 0);
    drop(node);
    assert_eq!(kube_chains(), 0, "KUBE-* rules left behind");
}
