//! The scheduler's placement rules end to end: `skiff server` with
//! `skiff sim-nodes`, driven by stock kubectl — inter-pod affinity and
//! anti-affinity, topology spread constraints, and preemption.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{SimNodes, TestServer, eventually, ok};

const DEADLINE: Duration = Duration::from_secs(30);

/// `kubectl apply -f` of a manifest written into the server's directory.
fn apply(server: &TestServer, name: &str, yaml: &str) {
    let path = server.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("write the manifest");
    ok(server, &["apply", "-f", &path.display().to_string()]);
}

/// (name, node, phase) of the pods matching `selector`.
fn pods(server: &TestServer, selector: &str) -> Vec<(String, String, String)> {
    let out = ok(
        server,
        &[
            "get",
            "pods",
            "-l",
            selector,
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name},{.spec.nodeName},{.status.phase}{"\n"}{end}"#,
        ],
    );
    out.lines()
        .filter_map(|l| {
            let mut parts = l.split(',');
            Some((
                parts.next()?.to_string(),
                parts.next()?.to_string(),
                parts.next()?.to_string(),
            ))
        })
        .collect()
}

/// Waits until `running` pods match `selector` and run, and `pending` more
/// stay unbound; the running ones.
fn wait_placed(
    server: &TestServer,
    selector: &str,
    running: usize,
    pending: usize,
) -> Vec<(String, String, String)> {
    eventually(
        DEADLINE,
        &format!("{running} running and {pending} pending pods for {selector}"),
        || {
            let all = pods(server, selector);
            let up: Vec<_> = all
                .iter()
                .filter(|(_, node, phase)| !node.is_empty() && phase == "Running")
                .cloned()
                .collect();
            let waiting = all.iter().filter(|(_, node, _)| node.is_empty()).count();
            (up.len() == running && waiting == pending && all.len() == running + pending)
                .then_some(up)
        },
    )
}

/// The messages of the events with `reason` about the pod `name`.
fn events(server: &TestServer, reason: &str, name: &str) -> String {
    ok(
        server,
        &[
            "get",
            "events",
            "--field-selector",
            &format!("reason={reason},involvedObject.name={name}"),
            "-o",
            "jsonpath={.items[*].message}",
        ],
    )
}

fn wait_event(server: &TestServer, reason: &str, name: &str) -> String {
    eventually(DEADLINE, &format!("a {reason} event for {name}"), || {
        let out = events(server, reason, name);
        (!out.trim().is_empty()).then_some(out)
    })
}

fn deployment(name: &str, replicas: u32, spec_extra: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: c
        image: busybox
{spec_extra}"#
    )
}

#[test]
fn required_anti_affinity_puts_one_replica_per_node_and_the_fourth_waits() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 3);
    let affinity = r#"      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: web}}
            topologyKey: kubernetes.io/hostname
"#;
    apply(&server, "web", &deployment("web", 4, affinity));
    let running = wait_placed(&server, "app=web", 3, 1);
    let mut nodes: Vec<&str> = running.iter().map(|(_, n, _)| n.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["sim-0", "sim-1", "sim-2"]);

    let waiting = pods(&server, "app=web")
        .into_iter()
        .find(|(_, node, _)| node.is_empty())
        .expect("a pending replica");
    let message = wait_event(&server, "FailedScheduling", &waiting.0);
    assert!(
        message.contains(
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
             preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
        ),
        "{message}"
    );
    // Upstream's reason shows in `kubectl describe` through the condition.
    let condition = ok(
        &server,
        &[
            "get",
            "pod",
            &waiting.0,
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="PodScheduled")].reason}"#,
        ],
    );
    assert_eq!(condition.trim(), "Unschedulable");

    // A fourth node takes the waiting replica.
    let _more = SimNodes::start_named(&server, "extra-", 1);
    let running = wait_placed(&server, "app=web", 4, 0);
    assert!(
        running.iter().any(|(_, n, _)| n == "extra-0"),
        "{running:?}"
    );
}

#[test]
fn required_affinity_co_locates_pods_with_their_peer() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 3);
    ok(
        &server,
        &[
            "run",
            "cache",
            "--image=busybox",
            "--labels=app=cache",
            r#"--overrides={"spec":{"nodeSelector":{"kubernetes.io/hostname":"sim-2"}}}"#,
        ],
    );
    wait_placed(&server, "app=cache", 1, 0);
    let affinity = r#"      affinity:
        podAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: cache}}
            topologyKey: kubernetes.io/hostname
"#;
    apply(&server, "web", &deployment("web", 3, affinity));
    let running = wait_placed(&server, "app=web", 3, 0);
    assert!(
        running.iter().all(|(_, node, _)| node == "sim-2"),
        "{running:?}"
    );

    // Without a peer anywhere, the pod waits with upstream's reason.
    let lonely = r#"      affinity:
        podAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: nothing-like-it}}
            topologyKey: kubernetes.io/hostname
"#;
    apply(&server, "lonely", &deployment("lonely", 1, lonely));
    wait_placed(&server, "app=lonely", 0, 1);
    let name = pods(&server, "app=lonely")[0].0.clone();
    let message = wait_event(&server, "FailedScheduling", &name);
    assert!(
        message.contains(
            "0/3 nodes are available: 3 node(s) didn't match pod affinity rules. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        ),
        "{message}"
    );
}

#[test]
fn a_do_not_schedule_spread_over_zones_keeps_the_skew_at_one() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 3);
    for (node, zone) in [("sim-0", "a"), ("sim-1", "a"), ("sim-2", "b")] {
        ok(
            &server,
            &[
                "label",
                "node",
                node,
                &format!("topology.kubernetes.io/zone={zone}"),
            ],
        );
    }
    let spread = r#"      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: DoNotSchedule
        labelSelector: {matchLabels: {app: web}}
"#;
    apply(&server, "web", &deployment("web", 6, spread));
    let running = wait_placed(&server, "app=web", 6, 0);
    let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, node, _) in &running {
        *per_zone
            .entry(if node == "sim-2" { "b" } else { "a" })
            .or_default() += 1;
    }
    // Without the constraint the two zone-a nodes would take four of six.
    assert_eq!(per_zone, BTreeMap::from([("a", 3), ("b", 3)]));

    // Zone b cordoned: one more pod in zone a is fine (skew 1), a second is not.
    ok(&server, &["cordon", "sim-2"]);
    ok(&server, &["scale", "deployment", "web", "--replicas=8"]);
    wait_placed(&server, "app=web", 7, 1);
    let waiting = pods(&server, "app=web")
        .into_iter()
        .find(|(_, node, _)| node.is_empty())
        .expect("a pending replica");
    let message = wait_event(&server, "FailedScheduling", &waiting.0);
    assert!(
        message.contains(
            "0/3 nodes are available: 1 node(s) were unschedulable, \
             2 node(s) didn't match pod topology spread constraints."
        ),
        "{message}"
    );
}

#[test]
fn a_high_priority_pod_preempts_a_low_priority_one_on_a_full_node() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);
    apply(
        &server,
        "classes",
        r#"apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 100
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high-polite}
value: 1000
preemptionPolicy: Never
"#,
    );
    let pod = |name: &str, class: &str, cpu: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{role: {name}}}
spec:
  priorityClassName: {class}
  containers:
  - name: c
    image: busybox
    resources:
      requests: {{cpu: "{cpu}"}}
"#
        )
    };
    apply(&server, "victim", &pod("victim", "low", "3"));
    wait_placed(&server, "role=victim", 1, 0);

    // preemptionPolicy: Never waits instead.
    apply(&server, "polite", &pod("polite", "high-polite", "2"));
    let message = wait_event(&server, "FailedScheduling", "polite");
    assert!(
        message.contains(
            "0/1 nodes are available: 1 Insufficient cpu. \
             preemption: not eligible due to preemptionPolicy=Never."
        ),
        "{message}"
    );
    ok(&server, &["delete", "pod", "polite", "--wait=false"]);

    apply(&server, "vip", &pod("vip", "high", "2"));
    let uid = ok(
        &server,
        &["get", "pod", "vip", "-o", "jsonpath={.metadata.uid}"],
    );
    let preempted = wait_event(&server, "Preempted", "victim");
    assert_eq!(
        preempted.trim(),
        format!("Preempted by pod {} on node sim-0", uid.trim())
    );
    eventually(DEADLINE, "the victim to be gone", || {
        let out = server.kubectl(&["get", "pod", "victim"]);
        (!out.status.success()).then_some(())
    });
    let running = wait_placed(&server, "role=vip", 1, 0);
    assert_eq!(running[0].1, "sim-0");
    let nominated = ok(
        &server,
        &[
            "get",
            "pod",
            "vip",
            "-o",
            "jsonpath={.status.nominatedNodeName}",
        ],
    );
    assert_eq!(nominated.trim(), "sim-0");
    // The FailedScheduling that led to preemption no longer claims none was possible.
    let failed = events(&server, "FailedScheduling", "vip");
    assert!(
        failed.contains("0/1 nodes are available: 1 Insufficient cpu.")
            && !failed.contains("preemption:"),
        "{failed}"
    );
}
