//! Services end to end with the stock kubectl: ClusterIP and NodePort
//! allocation (requested values, refusals with upstream's messages, release
//! on delete, exhaustion), and the Endpoints and EndpointSlices the
//! controllers keep for the pods `skiff sim-nodes` runs.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{SimNodes, TestServer, eventually};

const DEADLINE: Duration = Duration::from_secs(30);

fn kubectl_ok(server: &TestServer, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs kubectl expecting a failure; returns its stderr.
fn kubectl_err(server: &TestServer, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(
        !out.status.success(),
        "kubectl {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn jsonpath(server: &TestServer, args: &[&str], path: &str) -> String {
    let mut all = args.to_vec();
    let expr = format!("jsonpath={path}");
    all.extend(["-o", expr.as_str()]);
    kubectl_ok(server, &all).trim().to_string()
}

fn in_cidr(ip: &str, network: Ipv4Addr, prefix: u32) -> bool {
    let Ok(ip) = ip.parse::<Ipv4Addr>() else {
        return false;
    };
    let mask = u32::MAX << (32 - prefix);
    u32::from(ip) & mask == u32::from(network) & mask
}

#[test]
fn cluster_ips_and_node_ports_are_allocated_refused_and_freed() {
    let server = TestServer::start();
    kubectl_ok(
        &server,
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
    );
    let ip = jsonpath(&server, &["get", "service", "web"], "{.spec.clusterIP}");
    assert!(
        in_cidr(&ip, Ipv4Addr::new(10, 43, 0, 0), 16),
        "clusterIP {ip:?} outside the service CIDR"
    );
    assert_ne!(
        ip, "10.43.0.1",
        "the kubernetes Service's IP was handed out"
    );
    assert_eq!(
        jsonpath(
            &server,
            &["get", "service", "web"],
            "{.spec.clusterIPs[0]} {.spec.ipFamilies[0]} {.spec.ipFamilyPolicy}"
        ),
        format!("{ip} IPv4 SingleStack")
    );

    // a taken IP is refused with upstream's message
    let err = kubectl_err(
        &server,
        &[
            "create",
            "service",
            "clusterip",
            "copy",
            "--tcp=80",
            &format!("--clusterip={ip}"),
        ],
    );
    assert!(
        err.contains(&format!(
            "spec.clusterIPs: Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
        )),
        "{err}"
    );
    let err = kubectl_err(
        &server,
        &[
            "create",
            "service",
            "clusterip",
            "outside",
            "--tcp=80",
            "--clusterip=10.0.0.1",
        ],
    );
    assert!(
        err.contains("failed to allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.43.0.0/16"),
        "{err}"
    );

    // node ports: requested honoured when free, refused when taken
    kubectl_ok(
        &server,
        &[
            "create",
            "service",
            "nodeport",
            "np",
            "--tcp=80:8080",
            "--node-port=30080",
        ],
    );
    assert_eq!(
        jsonpath(
            &server,
            &["get", "service", "np"],
            "{.spec.ports[0].nodePort}"
        ),
        "30080"
    );
    let err = kubectl_err(
        &server,
        &[
            "create",
            "service",
            "nodeport",
            "np2",
            "--tcp=81",
            "--node-port=30080",
        ],
    );
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        ),
        "{err}"
    );

    // kubectl expose gets a ClusterIP and a NodePort in range
    kubectl_ok(
        &server,
        &[
            "create",
            "deployment",
            "app",
            "--image=registry.invalid/app",
            "--port=8080",
        ],
    );
    kubectl_ok(
        &server,
        &[
            "expose",
            "deployment",
            "app",
            "--port=80",
            "--target-port=8080",
            "--type=NodePort",
        ],
    );
    let (app_ip, app_port) = {
        let out = jsonpath(
            &server,
            &["get", "service", "app"],
            "{.spec.clusterIP} {.spec.ports[0].nodePort}",
        );
        let mut parts = out.split_whitespace();
        (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().parse::<u16>().unwrap_or(0),
        )
    };
    assert!(
        in_cidr(&app_ip, Ipv4Addr::new(10, 43, 0, 0), 16),
        "{app_ip}"
    );
    assert_ne!(app_ip, ip);
    assert!((30000..=32767).contains(&app_port), "nodePort {app_port}");
    assert_ne!(app_port, 30080);

    // a type change to ClusterIP gives the node port back
    kubectl_ok(
        &server,
        &[
            "patch",
            "service",
            "app",
            "-p",
            r#"{"spec":{"type":"ClusterIP"}}"#,
        ],
    );
    assert_eq!(
        jsonpath(
            &server,
            &["get", "service", "app"],
            "{.spec.ports[0].nodePort}"
        ),
        ""
    );
    kubectl_ok(
        &server,
        &[
            "create",
            "service",
            "nodeport",
            "reuse",
            "--tcp=82",
            &format!("--node-port={app_port}"),
        ],
    );

    // deleting frees the IP and the port
    kubectl_ok(&server, &["delete", "service", "web", "np"]);
    kubectl_ok(
        &server,
        &[
            "create",
            "service",
            "clusterip",
            "copy",
            "--tcp=80",
            &format!("--clusterip={ip}"),
        ],
    );
    kubectl_ok(
        &server,
        &[
            "create",
            "service",
            "nodeport",
            "np2",
            "--tcp=81",
            "--node-port=30080",
        ],
    );

    // headless and ExternalName services get no IP
    kubectl_ok(
        &server,
        &[
            "create",
            "service",
            "clusterip",
            "headless",
            "--clusterip=None",
        ],
    );
    assert_eq!(
        jsonpath(
            &server,
            &["get", "service", "headless"],
            "{.spec.clusterIP}"
        ),
        "None"
    );
    kubectl_ok(
        &server,
        &[
            "create",
            "service",
            "externalname",
            "ext",
            "--external-name=db.example.com",
        ],
    );
    assert_eq!(
        jsonpath(&server, &["get", "service", "ext"], "{.spec.clusterIP}"),
        ""
    );
    // ExternalName → ClusterIP: the type change allocates an IP
    kubectl_ok(
        &server,
        &[
            "patch",
            "service",
            "ext",
            "-p",
            r#"{"spec":{"type":"ClusterIP","externalName":null,"ports":[{"port":80}]}}"#,
        ],
    );
    let ext_ip = jsonpath(&server, &["get", "service", "ext"], "{.spec.clusterIP}");
    assert!(
        in_cidr(&ext_ip, Ipv4Addr::new(10, 43, 0, 0), 16),
        "{ext_ip:?}"
    );

    // a LoadBalancer with local traffic gets a health-check node port
    kubectl_ok(
        &server,
        &["create", "service", "loadbalancer", "lb", "--tcp=80"],
    );
    kubectl_ok(
        &server,
        &[
            "patch",
            "service",
            "lb",
            "-p",
            r#"{"spec":{"externalTrafficPolicy":"Local"}}"#,
        ],
    );
    let ports = jsonpath(
        &server,
        &["get", "service", "lb"],
        "{.spec.ports[0].nodePort} {.spec.healthCheckNodePort}",
    );
    let ports: Vec<u16> = ports
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert!(
        ports.iter().all(|p| (30000..=32767).contains(p)) && ports[0] != ports[1],
        "{ports:?}"
    );
    // back to cluster traffic: the health-check port is released
    kubectl_ok(
        &server,
        &[
            "patch",
            "service",
            "lb",
            "-p",
            r#"{"spec":{"externalTrafficPolicy":"Cluster"}}"#,
        ],
    );
    assert_eq!(
        jsonpath(
            &server,
            &["get", "service", "lb"],
            "{.spec.healthCheckNodePort}"
        ),
        ""
    );
    kubectl_ok(
        &server,
        &[
            "create",
            "service",
            "nodeport",
            "hc",
            "--tcp=83",
            &format!("--node-port={}", ports[1]),
        ],
    );
}

#[test]
fn small_ranges_fill_up_and_survive_a_restart() {
    let flags = [
        "--service-cidr=10.0.0.0/29",
        "--cluster-dns=10.0.0.6",
        "--service-node-port-range=30000-30001",
    ];
    let mut server = TestServer::start_with(&flags);
    // 10.0.0.1 is the kubernetes Service's and 10.0.0.6 kube-dns's: four
    // addresses are left
    let mut ips = Vec::new();
    for i in 0..3 {
        let name = format!("s{i}");
        kubectl_ok(
            &server,
            &["create", "service", "clusterip", &name, "--tcp=80"],
        );
        ips.push(jsonpath(
            &server,
            &["get", "service", &name],
            "{.spec.clusterIP}",
        ));
    }
    kubectl_ok(
        &server,
        &["create", "service", "nodeport", "n0", "--tcp=80"],
    );
    ips.push(jsonpath(
        &server,
        &["get", "service", "n0"],
        "{.spec.clusterIP}",
    ));
    let mut sorted = ips.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4, "an IP was handed out twice: {ips:?}");
    assert!(
        ips.iter()
            .all(|ip| in_cidr(ip, Ipv4Addr::new(10, 0, 0, 0), 29)
                && ip != "10.0.0.1"
                && ip != "10.0.0.6")
    );
    let err = kubectl_err(
        &server,
        &["create", "service", "clusterip", "full", "--tcp=80"],
    );
    assert!(
        err.contains("failed to allocate a serviceIP: range is full"),
        "{err}"
    );

    kubectl_ok(&server, &["delete", "service", "s0"]);
    kubectl_ok(
        &server,
        &["create", "service", "nodeport", "n1", "--tcp=80"],
    );
    kubectl_ok(&server, &["delete", "service", "s1"]);
    let err = kubectl_err(
        &server,
        &["create", "service", "nodeport", "n2", "--tcp=80"],
    );
    assert!(
        err.contains("failed to allocate a nodePort: range is full"),
        "{err}"
    );

    // after a restart the stored Services still hold their values: one IP
    // (s1's) and no node port is free
    server.stop();
    server.launch(&flags);
    server.wait_ready();
    let err = kubectl_err(
        &server,
        &[
            "create",
            "service",
            "nodeport",
            "again",
            "--tcp=80",
            "--node-port=30000",
        ],
    );
    assert!(err.contains("provided port is already allocated"), "{err}");
    kubectl_ok(
        &server,
        &["create", "service", "clusterip", "again", "--tcp=80"],
    );
    let err = kubectl_err(
        &server,
        &["create", "service", "clusterip", "more", "--tcp=80"],
    );
    assert!(err.contains("range is full"), "{err}");
}

/// (IPs, ports) listed by the Endpoints of `name`.
fn endpoints_of(server: &TestServer, name: &str) -> (Vec<String>, Vec<String>) {
    let out = server.kubectl(&[
        "get",
        "endpoints",
        name,
        "-o",
        "jsonpath={.subsets[*].addresses[*].ip}|{.subsets[*].ports[*].port}",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (ips, ports) = text.split_once('|').unwrap_or(("", ""));
    let mut ips: Vec<String> = ips.split_whitespace().map(String::from).collect();
    ips.sort();
    (ips, ports.split_whitespace().map(String::from).collect())
}

/// (ready IPs, ports) listed by the EndpointSlices of `name`.
fn slices_of(server: &TestServer, name: &str) -> (Vec<String>, Vec<String>) {
    let selector = format!("kubernetes.io/service-name={name}");
    let out = server.kubectl(&[
        "get",
        "endpointslices",
        "-l",
        &selector,
        "-o",
        r#"jsonpath={range .items[*].endpoints[*]}{.addresses[0]}={.conditions.ready}{" "}{end}|{.items[*].ports[*].port}"#,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (eps, ports) = text.split_once('|').unwrap_or(("", ""));
    let mut ips: Vec<String> = eps
        .split_whitespace()
        .filter_map(|e| e.strip_suffix("=true"))
        .map(String::from)
        .collect();
    ips.sort();
    (ips, ports.split_whitespace().map(String::from).collect())
}

fn pod_ips(server: &TestServer, selector: &str) -> Vec<String> {
    let out = server.kubectl(&[
        "get",
        "pods",
        "-l",
        selector,
        "--field-selector=status.phase=Running",
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ]);
    let mut ips: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    ips.sort();
    ips
}

fn wait_backends(server: &TestServer, n: usize) -> Vec<String> {
    eventually(DEADLINE, &format!("{n} endpoints for web"), || {
        let pods = pod_ips(server, "app=web");
        let (ep_ips, ep_ports) = endpoints_of(server, "web");
        let (slice_ips, slice_ports) = slices_of(server, "web");
        (pods.len() == n
            && ep_ips == pods
            && slice_ips == pods
            && ep_ports.iter().all(|p| p == "8080")
            && slice_ports.iter().all(|p| p == "8080")
            && !ep_ports.is_empty()
            && !slice_ports.is_empty())
        .then_some(pods)
    })
}

#[test]
fn endpoints_and_slices_follow_a_deployment() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 2);
    kubectl_ok(
        &server,
        &[
            "create",
            "deployment",
            "web",
            "--image=registry.invalid/web",
            "--port=8080",
            "--replicas=2",
        ],
    );
    // a named targetPort, resolved on each pod
    kubectl_ok(
        &server,
        &[
            "patch",
            "deployment",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/spec/template/spec/containers/0/ports/0/name","value":"http"}]"#,
        ],
    );
    kubectl_ok(
        &server,
        &[
            "expose",
            "deployment",
            "web",
            "--port=80",
            "--target-port=http",
        ],
    );
    let two = wait_backends(&server, 2);

    // the table columns show them too
    let table = kubectl_ok(&server, &["get", "endpoints", "web"]);
    assert!(table.contains(&format!("{}:8080", two[0])), "{table}");
    let table = kubectl_ok(
        &server,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ],
    );
    assert!(table.contains("IPv4") && table.contains("8080"), "{table}");
    assert!(table.contains(&two[0]), "{table}");

    // labels, annotation and owner as upstream's
    let meta = jsonpath(
        &server,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ],
        "{.items[0].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by} {.items[0].metadata.ownerReferences[0].kind}/{.items[0].metadata.ownerReferences[0].name}",
    );
    assert_eq!(meta, "endpointslice-controller.k8s.io Service/web");
    let trigger = jsonpath(
        &server,
        &["get", "endpoints", "web"],
        "{.metadata.annotations.endpoints\\.kubernetes\\.io/last-change-trigger-time}",
    );
    assert!(
        trigger.ends_with('Z') && trigger.contains('T'),
        "{trigger:?}"
    );

    kubectl_ok(&server, &["scale", "deployment", "web", "--replicas=4"]);
    wait_backends(&server, 4);
    kubectl_ok(&server, &["scale", "deployment", "web", "--replicas=1"]);
    wait_backends(&server, 1);
    // one slice: a fast series of pod changes never made a second one
    eventually(DEADLINE, "a single slice for web", || {
        let names = kubectl_ok(
            &server,
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
                "-o",
                "name",
            ],
        );
        (names.lines().count() == 1).then_some(())
    });

    // Endpoints and slices deleted by hand come back
    kubectl_ok(&server, &["delete", "endpoints", "web"]);
    kubectl_ok(
        &server,
        &[
            "delete",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ],
    );
    wait_backends(&server, 1);

    // the kubernetes Service's endpoints stay the API server's
    let owner = jsonpath(
        &server,
        &["get", "endpointslices", "kubernetes"],
        "{.metadata.labels.endpointslice\\.kubernetes\\.io/managed-by}",
    );
    assert_eq!(owner, "endpointslicemirroring-controller.k8s.io");

    // deleting the Service takes its endpoints and slices with it
    kubectl_ok(&server, &["delete", "service", "web"]);
    eventually(DEADLINE, "endpoints and slices of web gone", || {
        let eps = server.kubectl(&["get", "endpoints", "web"]);
        let slices = kubectl_ok(
            &server,
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
                "-o",
                "name",
            ],
        );
        (!eps.status.success() && slices.trim().is_empty()).then_some(())
    });
}

#[test]
fn headless_services_get_endpoints() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);
    kubectl_ok(
        &server,
        &[
            "create",
            "deployment",
            "db",
            "--image=registry.invalid/db",
            "--port=5432",
            "--replicas=2",
        ],
    );
    kubectl_ok(
        &server,
        &[
            "create",
            "service",
            "clusterip",
            "db",
            "--clusterip=None",
            "--tcp=5432",
        ],
    );
    // `create service` selects app=db, as the deployment labels its pods
    let ips = eventually(DEADLINE, "headless endpoints", || {
        let pods = pod_ips(&server, "app=db");
        let (ep, _) = endpoints_of(&server, "db");
        (pods.len() == 2 && ep == pods).then_some(pods)
    });
    let labels = kubectl_ok(&server, &["get", "endpoints", "db", "--show-labels"]);
    assert!(
        labels.contains("service.kubernetes.io/headless"),
        "{labels}"
    );
    assert_eq!(ips.len(), 2);
}
