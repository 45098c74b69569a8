//! The overlay between nodes on real netlink (root): two test "hosts" are
//! network namespaces joined by a veth pair (10.199.1.1/24 and .2), each
//! with a "pod" in a third namespace behind a veth (10.244.1.5 and
//! 10.244.2.5, gateways .1, forwarding on). skiff's overlay programming runs
//! inside each host (a thread that `setns`es into the namespace and opens its
//! rtnetlink connection there) with synthetic Node objects; a pod pings the
//! other across the overlay; removing a Node removes its entries.
//!
//! Everything lives in namespaces the test creates and deletes on Drop,
//! pass or fail (the devices, routes and rules go with them); no traffic
//! leaves them. Run under the node e2e lock (`flock
//! /tmp/skiff-node-e2e.lock cargo test --test overlay`).
//!
//! The last test runs a real `skiff server` node (tests/common/node.rs) on
//! the host: it publishes its VTEP in its Node, creates `skiff.1` over the
//! uplink and gives pods the overlay's MTU; the harness's cleanup removes
//! the device again.

mod common;

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::api::core::v1::{Node, NodeSpec};
use skiff::net::link;
use skiff::net::overlay::{self, Backend, Dataplane};

const CLUSTER: &str = "10.244.0.0/16";

/// The tests of this file run one at a time: the node harness's Drop
/// deletes every network namespace created while its node ran, which would
/// include the other tests' "hosts".
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `command`; panics with its output when it fails.
fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two hosts (`<tag>a`, `<tag>b`) and their pods (`<tag>a-pod`, ...),
/// deleted on Drop.
struct Hosts {
    namespaces: Vec<String>,
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Hosts {
    fn new(tag: &str) -> Hosts {
        let tag = format!("skovl{}{tag}", std::process::id() % 100_000);
        let (a, b) = (format!("{tag}a"), format!("{tag}b"));
        let mut hosts = Hosts { namespaces: vec![] };
        for ns in [&a, &b, &format!("{a}-pod"), &format!("{b}-pod")] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            sh(&["ip", "netns", "add", ns]);
            hosts.namespaces.push(ns.clone());
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        // The L2 segment between the hosts.
        sh(&[
            "ip", "-n", &a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
            &b,
        ]);
        for (ns, n) in [(&a, 1), (&b, 2)] {
            let pod = format!("{ns}-pod");
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("10.199.1.{n}/24"),
                "dev",
                "eth0",
            ]);
            sh(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
            // The pod: a veth into its own namespace, as the CNI bridge
            // plugin would give it (gateway .1 on the host side).
            sh(&[
                "ip", "-n", ns, "link", "add", "vpod", "type", "veth", "peer", "name", "eth0",
                "netns", &pod,
            ]);
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("10.244.{n}.1/24"),
                "dev",
                "vpod",
            ]);
            sh(&["ip", "-n", ns, "link", "set", "vpod", "up"]);
            sh(&[
                "ip",
                "-n",
                &pod,
                "addr",
                "add",
                &format!("10.244.{n}.5/24"),
                "dev",
                "eth0",
            ]);
            sh(&["ip", "-n", &pod, "link", "set", "eth0", "up"]);
            sh(&[
                "ip",
                "-n",
                &pod,
                "route",
                "add",
                "default",
                "via",
                &format!("10.244.{n}.1"),
            ]);
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ]);
        }
        hosts
    }

    fn a(&self) -> &str {
        &self.namespaces[0]
    }

    fn b(&self) -> &str {
        &self.namespaces[1]
    }
}

/// Runs `f` on a thread inside the network namespace `ns`, with a tokio
/// runtime of its own (its rtnetlink socket is opened there).
fn in_netns<T: Send>(ns: &str, f: impl AsyncFnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("open the netns");
                // SAFETY: setns(2) on this thread with a namespace fd we own.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime")
                    .block_on(f())
            })
            .join()
            .expect("the netns thread")
    })
}

fn node(name: &str, cidr: &str, annotations: &BTreeMap<String, String>) -> Arc<Node> {
    let mut n = Node::default();
    n.metadata.name = Some(name.to_string());
    n.metadata.annotations = Some(annotations.clone());
    n.spec = Some(NodeSpec {
        pod_cidr: Some(cidr.to_string()),
        ..Default::default()
    });
    Arc::new(n)
}

/// Programs host `ns` (node `own`, podCIDR `cidr`) for `nodes`, as the
/// node's overlay loop does; answers the annotations it publishes.
fn program(
    ns: &str,
    backend: Backend,
    own: &str,
    cidr: &str,
    nodes: &[Arc<Node>],
) -> BTreeMap<String, String> {
    let cidr: Ipv4Net = cidr.parse().expect("cidr");
    let cluster: IpNet = CLUSTER.parse().expect("cidr");
    in_netns(ns, async move || {
        let uplink = link::find_uplink(Some("eth0"), None)
            .await
            .expect("the uplink");
        let mut dataplane = Dataplane::start(backend, uplink, cidr)
            .await
            .expect("the endpoint");
        let want = overlay::desired(backend, own, cidr, cluster, nodes);
        dataplane.apply(&want).await.expect("programmed");
        dataplane.annotations()
    })
}

fn ping(from_pod_ns: &str, to: &str) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            from_pod_ns,
            "busybox",
            "ping",
            "-c",
            "3",
            "-W",
            "2",
            to,
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `ip -j -s -d link show DEV` in `ns`, parsed.
fn link_json(ns: &str, dev: &str) -> serde_json::Value {
    let out = sh(&["ip", "-j", "-s", "-d", "-n", ns, "link", "show", dev]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("ip's JSON");
    list[0].clone()
}

fn has_link(ns: &str, dev: &str) -> bool {
    Command::new("ip")
        .args(["-n", ns, "link", "show", dev])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn vxlan_carries_pod_traffic_between_hosts_and_follows_nodes_leaving() {
    let _serial = serial();
    let hosts = Hosts::new("v");
    let (a, b) = (hosts.a().to_string(), hosts.b().to_string());

    // Each host sets up its endpoint and publishes it.
    let ann_a = program(&a, Backend::Vxlan, "a", "10.244.1.0/24", &[]);
    let ann_b = program(&b, Backend::Vxlan, "b", "10.244.2.0/24", &[]);
    assert_eq!(ann_a[overlay::BACKEND_TYPE], "vxlan");
    assert_eq!(ann_a[overlay::PUBLIC_IP], "10.199.1.1");
    assert_eq!(ann_b[overlay::PUBLIC_IP], "10.199.1.2");
    let data: serde_json::Value =
        serde_json::from_str(&ann_b[overlay::BACKEND_DATA]).expect("backend-data");
    let mac_b = data["VtepMAC"].as_str().expect("VtepMAC").to_string();
    assert_eq!(data["VNI"], 1);

    // The device is flannel's: VNI 1, UDP 8472, local = the node IP, no
    // learning, MTU = uplink - 50, address = the podCIDR network /32.
    let dev = link_json(&a, overlay::VXLAN_DEVICE);
    let info = &dev["linkinfo"]["info_data"];
    assert_eq!(dev["linkinfo"]["info_kind"], "vxlan", "{dev}");
    assert_eq!(info["id"], 1, "{dev}");
    assert_eq!(info["port"], 8472, "{dev}");
    assert_eq!(info["local"], "10.199.1.1", "{dev}");
    assert_eq!(info["learning"], false, "{dev}");
    assert_eq!(dev["mtu"], 1450, "{dev}");
    let addr = sh(&[
        "ip",
        "-n",
        &a,
        "-4",
        "addr",
        "show",
        "dev",
        overlay::VXLAN_DEVICE,
    ]);
    assert!(addr.contains("inet 10.244.1.0/32"), "{addr}");

    // Both hosts learn of both nodes.
    let nodes = vec![
        node("a", "10.244.1.0/24", &ann_a),
        node("b", "10.244.2.0/24", &ann_b),
    ];
    program(&a, Backend::Vxlan, "a", "10.244.1.0/24", &nodes);
    program(&b, Backend::Vxlan, "b", "10.244.2.0/24", &nodes);
    let route = sh(&["ip", "-n", &a, "route", "show", "10.244.2.0/24"]);
    assert!(
        route.contains("via 10.244.2.0 dev skiff.1") && route.contains("onlink"),
        "{route}"
    );
    let neigh = sh(&[
        "ip",
        "-n",
        &a,
        "neigh",
        "show",
        "dev",
        overlay::VXLAN_DEVICE,
    ]);
    assert!(
        neigh.contains(&format!("10.244.2.0 lladdr {mac_b} PERMANENT")),
        "{neigh}"
    );
    let fdb = sh(&[
        "bridge",
        "-n",
        &a,
        "fdb",
        "show",
        "dev",
        overlay::VXLAN_DEVICE,
    ]);
    assert!(fdb.contains(&format!("{mac_b} dst 10.199.1.2")), "{fdb}");
    // Programming again changes nothing (idempotent).
    program(&a, Backend::Vxlan, "a", "10.244.1.0/24", &nodes);
    let fdb_again = sh(&[
        "bridge",
        "-n",
        &a,
        "fdb",
        "show",
        "dev",
        overlay::VXLAN_DEVICE,
    ]);
    assert_eq!(fdb, fdb_again);

    // Pod to pod across the hosts, through skiff.1 and UDP 8472: count the
    // VXLAN packets arriving at b and b's device's received packets.
    sh(&[
        "ip",
        "netns",
        "exec",
        &b,
        "iptables",
        "-w",
        "-A",
        "INPUT",
        "-p",
        "udp",
        "--dport",
        "8472",
        "-s",
        "10.199.1.1",
    ]);
    let rx_before = link_json(&b, overlay::VXLAN_DEVICE)["stats64"]["rx"]["packets"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        ping(&format!("{a}-pod"), "10.244.2.5"),
        "pod a cannot reach pod b over the overlay"
    );
    let rx_after = link_json(&b, overlay::VXLAN_DEVICE)["stats64"]["rx"]["packets"]
        .as_u64()
        .unwrap_or(0);
    assert!(rx_after >= rx_before + 3, "{rx_before} -> {rx_after}");
    let counters = sh(&[
        "ip", "netns", "exec", &b, "iptables", "-w", "-nvxL", "INPUT",
    ]);
    let udp_packets: u64 = counters
        .lines()
        .find(|l| l.contains("dpt:8472"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(udp_packets >= 3, "{counters}");

    // Node b leaves: a drops its route, neighbour and FDB entry.
    program(&a, Backend::Vxlan, "a", "10.244.1.0/24", &nodes[..1]);
    let route = sh(&["ip", "-n", &a, "route", "show", "10.244.2.0/24"]);
    assert!(route.trim().is_empty(), "{route}");
    let neigh = sh(&[
        "ip",
        "-n",
        &a,
        "neigh",
        "show",
        "dev",
        overlay::VXLAN_DEVICE,
    ]);
    assert!(!neigh.contains("10.244.2.0"), "{neigh}");
    let fdb = sh(&[
        "bridge",
        "-n",
        &a,
        "fdb",
        "show",
        "dev",
        overlay::VXLAN_DEVICE,
    ]);
    assert!(!fdb.contains(&mac_b), "{fdb}");
    assert!(!ping(&format!("{a}-pod"), "10.244.2.5"));

    // The cleanup removes the device and skiff's routes.
    program(&b, Backend::Vxlan, "b", "10.244.2.0/24", &nodes);
    in_netns(&b, async || {
        link::remove_all(overlay::VXLAN_DEVICE)
            .await
            .expect("removed")
    });
    assert!(!has_link(&b, overlay::VXLAN_DEVICE));
    let routes = sh(&["ip", "-n", &b, "route", "show", "proto", "83"]);
    assert!(routes.trim().is_empty(), "{routes}");
}

#[test]
fn host_gw_routes_pod_traffic_via_the_peer_node() {
    let _serial = serial();
    let hosts = Hosts::new("h");
    let (a, b) = (hosts.a().to_string(), hosts.b().to_string());
    let ann_a = program(&a, Backend::HostGw, "a", "10.244.1.0/24", &[]);
    let ann_b = program(&b, Backend::HostGw, "b", "10.244.2.0/24", &[]);
    assert_eq!(ann_a[overlay::BACKEND_TYPE], "host-gw");
    assert_eq!(ann_b[overlay::BACKEND_DATA], "null");
    assert!(!has_link(&a, overlay::VXLAN_DEVICE));
    let nodes = vec![
        node("a", "10.244.1.0/24", &ann_a),
        node("b", "10.244.2.0/24", &ann_b),
    ];
    program(&a, Backend::HostGw, "a", "10.244.1.0/24", &nodes);
    program(&b, Backend::HostGw, "b", "10.244.2.0/24", &nodes);
    let route = sh(&["ip", "-n", &a, "route", "show", "10.244.2.0/24"]);
    assert!(
        route.contains("via 10.199.1.2 dev eth0") && route.contains("proto 83"),
        "{route}"
    );
    assert!(
        ping(&format!("{a}-pod"), "10.244.2.5"),
        "pod a cannot reach pod b via host-gw"
    );

    // b leaves: its route goes.
    program(&a, Backend::HostGw, "a", "10.244.1.0/24", &nodes[..1]);
    let route = sh(&["ip", "-n", &a, "route", "show", "10.244.2.0/24"]);
    assert!(route.trim().is_empty(), "{route}");
    assert!(!ping(&format!("{a}-pod"), "10.244.2.5"));
}

#[test]
fn a_server_node_publishes_its_vtep_and_sets_up_skiff_1() {
    let _serial = serial();
    let node = common::node::Node::start();
    let annotation = |key: &str| {
        node.kubectl_ok(&[
            "get",
            "node",
            &node.name,
            &format!(
                "-o=jsonpath={{.metadata.annotations.{}}}",
                key.replace('.', "\\.")
            ),
        ])
        .filter(|v| !v.is_empty())
    };
    let data = node.wait_for("the VTEP annotations", Duration::from_secs(90), || {
        annotation(overlay::BACKEND_DATA)
    });
    assert_eq!(annotation(overlay::BACKEND_TYPE).as_deref(), Some("vxlan"));
    assert_eq!(
        annotation(overlay::KUBE_SUBNET_MANAGER).as_deref(),
        Some("true")
    );
    let public_ip = annotation(overlay::PUBLIC_IP).expect("public-ip");
    let internal_ip = node
        .kubectl_ok(&[
            "get",
            "node",
            &node.name,
            r#"-o=jsonpath={.status.addresses[?(@.type=="InternalIP")].address}"#,
        ])
        .unwrap_or_default();
    assert_eq!(public_ip, internal_ip);
    let data: serde_json::Value = serde_json::from_str(&data).expect("backend-data");
    let mac = data["VtepMAC"].as_str().expect("VtepMAC").to_string();

    // The host's device matches what the Node says.
    let dev = link_json_host(overlay::VXLAN_DEVICE);
    assert_eq!(dev["address"], mac.as_str(), "{dev}");
    assert_eq!(
        dev["linkinfo"]["info_data"]["local"],
        public_ip.as_str(),
        "{dev}"
    );
    assert_eq!(dev["linkinfo"]["info_data"]["port"], 8472, "{dev}");
    let uplink = dev["linkinfo"]["info_data"]["link"]
        .as_str()
        .map(str::to_string)
        .expect("the uplink");
    let uplink_mtu = link_json_host(&uplink)["mtu"].as_u64().expect("mtu");
    assert_eq!(dev["mtu"].as_u64(), Some(uplink_mtu - 50), "{dev}");
    // Pods get the overlay's MTU through the CNI conflist.
    let conflist = node.data_dir.join("agent/etc/cni/net.d/10-skiff.conflist");
    let list: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&conflist).expect("the conflist"))
            .expect("JSON");
    assert_eq!(list["plugins"][0]["mtu"].as_u64(), Some(uplink_mtu - 50));

    drop(node);
    assert!(
        !Command::new("ip")
            .args(["link", "show", overlay::VXLAN_DEVICE])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(true),
        "skiff.1 is left on the host"
    );
}

/// `ip -j -d link show DEV` in the test's own namespace, parsed.
fn link_json_host(dev: &str) -> serde_json::Value {
    let out = sh(&["ip", "-j", "-d", "link", "show", dev]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("ip's JSON");
    list[0].clone()
}
