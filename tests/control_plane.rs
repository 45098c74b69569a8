//! The control plane end to end: `skiff server` (scheduler, ReplicaSet and
//! Deployment controllers) with `skiff sim-nodes`, driven by stock kubectl.

mod common;

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

/// (name, node, phase) of the pods matching `selector`.
fn pods(server: &TestServer, selector: &str) -> Vec<(String, String, String)> {
    let out = kubectl_ok(
        server,
        &[
            "get",
            "pods",
            "-l",
            selector,
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase}{"\n"}{end}"#,
        ],
    );
    out.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next()?.to_string();
            let (node, phase) = match (parts.next(), parts.next()) {
                (Some(n), Some(p)) => (n.to_string(), p.to_string()),
                (Some(p), None) => (String::new(), p.to_string()),
                _ => (String::new(), String::new()),
            };
            Some((name, node, phase))
        })
        .collect()
}

fn wait_running(server: &TestServer, selector: &str, n: usize) -> Vec<(String, String, String)> {
    eventually(
        DEADLINE,
        &format!("{n} running pods for {selector}"),
        || {
            let p = pods(server, selector);
            (p.len() == n
                && p.iter()
                    .all(|(_, node, phase)| !node.is_empty() && phase == "Running"))
            .then_some(p)
        },
    )
}

#[test]
fn a_deployment_runs_spreads_and_scales_on_simulated_nodes() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 2);
    kubectl_ok(
        &server,
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=3",
        ],
    );
    let running = wait_running(&server, "app=web", 3);
    assert!(running.iter().all(|(name, _, _)| name.starts_with("web-")));

    kubectl_ok(&server, &["scale", "deployment", "web", "--replicas=5"]);
    let running = wait_running(&server, "app=web", 5);
    let on_first = running
        .iter()
        .filter(|(_, node, _)| node == "sim-0")
        .count();
    assert!(
        (1..5).contains(&on_first),
        "pods should spread over both nodes: {running:?}"
    );

    let status = kubectl_ok(
        &server,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.metadata.annotations}",
        ],
    );
    assert!(
        status.contains(r#""deployment.kubernetes.io/revision":"1""#),
        "{status}"
    );
    let out = server.kubectl(&["rollout", "status", "deployment/web", "--timeout=20s"]);
    assert!(
        out.status.success(),
        "rollout status: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Scaling down deletes pods; the simulated kubelet finalizes them.
    kubectl_ok(&server, &["scale", "deployment", "web", "--replicas=2"]);
    wait_running(&server, "app=web", 2);
}

#[test]
fn simulated_nodes_renew_leases_and_finish_job_pods() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);
    let leases = kubectl_ok(
        &server,
        &[
            "get",
            "leases",
            "-n",
            "kube-node-lease",
            "-o",
            "jsonpath={.items[*].spec.holderIdentity}",
        ],
    );
    assert_eq!(leases.trim(), "sim-0");
    let ready = kubectl_ok(
        &server,
        &[
            "get",
            "node",
            "sim-0",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
        ],
    );
    assert_eq!(ready.trim(), "True");

    // The Job controller's pod runs, then succeeds.
    kubectl_ok(&server, &["create", "job", "once", "--image=busybox"]);
    let selector = "batch.kubernetes.io/job-name=once";
    let name = eventually(DEADLINE, "the job pod to succeed", || {
        let p = pods(&server, selector);
        (p.len() == 1 && p[0].2 == "Succeeded").then(|| p[0].0.clone())
    });
    let ip = kubectl_ok(
        &server,
        &[
            "get",
            "pod",
            &name,
            "-o",
            "jsonpath={.status.podIP} {.status.hostIP}",
        ],
    );
    assert_eq!(ip.trim(), "10.244.0.2 10.244.0.1");
}

#[test]
fn an_unsatisfiable_pod_gets_a_failed_scheduling_event() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 2);
    kubectl_ok(
        &server,
        &[
            "run",
            "nowhere",
            "--image=busybox",
            "--labels=app=nowhere",
            r#"--overrides={"spec":{"nodeSelector":{"disk":"ssd"}}}"#,
        ],
    );
    let message = eventually(DEADLINE, "a FailedScheduling event", || {
        let out = kubectl_ok(
            &server,
            &[
                "get",
                "events",
                "--field-selector",
                "reason=FailedScheduling,involvedObject.name=nowhere",
                "-o",
                "jsonpath={.items[*].message}",
            ],
        );
        (!out.trim().is_empty()).then_some(out)
    });
    assert!(
        message.contains(
            "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
        ),
        "{message}"
    );
    assert_eq!(
        pods(&server, "app=nowhere")[0].1,
        "",
        "the pod stays unbound"
    );

    eventually(DEADLINE, "PodScheduled=False/Unschedulable", || {
        let reason = kubectl_ok(
            &server,
            &[
                "get",
                "pod",
                "nowhere",
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="PodScheduled")].reason}"#,
            ],
        );
        (reason.trim() == "Unschedulable").then_some(())
    });

    // Once a node matches, the waiting pod is retried and bound.
    kubectl_ok(&server, &["label", "node", "sim-1", "disk=ssd"]);
    let running = wait_running(&server, "app=nowhere", 1);
    assert_eq!(running[0].1, "sim-1");
}

#[test]
fn a_tainted_node_gets_only_pods_that_tolerate_it() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 2);
    kubectl_ok(
        &server,
        &[
            "patch",
            "node",
            "sim-0",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"taints":[{"key":"dedicated","value":"db","effect":"NoSchedule"}]}}"#,
        ],
    );
    kubectl_ok(
        &server,
        &[
            "create",
            "deployment",
            "plain",
            "--image=busybox",
            "--replicas=4",
        ],
    );
    let running = wait_running(&server, "app=plain", 4);
    assert!(
        running.iter().all(|(_, node, _)| node == "sim-1"),
        "{running:?}"
    );

    let tolerant = r#"{"spec":{"nodeSelector":{"kubernetes.io/hostname":"sim-0"},"tolerations":[{"key":"dedicated","operator":"Equal","value":"db","effect":"NoSchedule"}]}}"#;
    kubectl_ok(
        &server,
        &[
            "run",
            "db",
            "--image=busybox",
            "--labels=app=db",
            &format!("--overrides={tolerant}"),
        ],
    );
    let running = wait_running(&server, "app=db", 1);
    assert_eq!(running[0].1, "sim-0");
}

#[test]
fn a_rolling_update_keeps_the_minimum_available() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 2);
    kubectl_ok(
        &server,
        &[
            "create",
            "deployment",
            "roll",
            "--image=busybox",
            "--replicas=4",
        ],
    );
    wait_running(&server, "app=roll", 4);
    eventually(DEADLINE, "4 available", || {
        let a = kubectl_ok(
            &server,
            &[
                "get",
                "deployment",
                "roll",
                "-o",
                "jsonpath={.status.availableReplicas}",
            ],
        );
        (a.trim() == "4").then_some(())
    });
    kubectl_ok(
        &server,
        &[
            "patch",
            "deployment",
            "roll",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"busybox","image":"busybox:1.36"}]}}}}"#,
        ],
    );
    // Default strategy with 4 replicas: maxSurge 1, maxUnavailable 1.
    let mut samples = Vec::new();
    eventually(DEADLINE, "the rollout to finish", || {
        let out = kubectl_ok(
            &server,
            &[
                "get",
                "deployment",
                "roll",
                "-o",
                "jsonpath={.metadata.generation} {.status.observedGeneration} {.status.replicas} {.status.updatedReplicas} {.status.availableReplicas}",
            ],
        );
        let v: Vec<i64> = out
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        samples.push(out.clone());
        let [generation, observed, replicas, updated, available] = v[..] else {
            return None;
        };
        assert!(available >= 3, "availability dropped below 3: {samples:?}");
        assert!(
            replicas <= 5,
            "more than replicas + maxSurge pods: {samples:?}"
        );
        (observed >= generation && replicas == 4 && updated == 4 && available == 4).then_some(())
    });
    let running = wait_running(&server, "app=roll", 4);
    let images = kubectl_ok(
        &server,
        &[
            "get",
            "pods",
            "-l",
            "app=roll",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ],
    );
    assert!(
        images.split_whitespace().all(|i| i == "busybox:1.36"),
        "{images} {running:?}"
    );
    let rs = kubectl_ok(
        &server,
        &[
            "get",
            "rs",
            "-l",
            "app=roll",
            "-o",
            "jsonpath={.items[*].metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ],
    );
    let mut revisions: Vec<&str> = rs.split_whitespace().collect();
    revisions.sort();
    assert_eq!(revisions, ["1", "2"]);
}

/// The sizes of the deployment's ReplicaSets, newest revision first.
fn rs_sizes(server: &TestServer, selector: &str) -> Vec<(i64, i64)> {
    let out = kubectl_ok(
        server,
        &[
            "get",
            "rs",
            "-l",
            selector,
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.annotations.deployment\.kubernetes\.io/revision} {.spec.replicas}{"\n"}{end}"#,
        ],
    );
    let mut sizes: Vec<(i64, i64)> = out
        .lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace().map(|v| v.parse::<i64>().ok());
            Some((p.next()??, p.next()??))
        })
        .collect();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.0));
    sizes
}

#[test]
fn scaling_during_a_stuck_rollout_is_proportional_and_the_rollout_then_finishes() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 2);
    kubectl_ok(
        &server,
        &[
            "create",
            "deployment",
            "grow",
            "--image=busybox",
            "--replicas=4",
        ],
    );
    wait_running(&server, "app=grow", 4);
    // The new template fits no node yet: the rollout stops once the new
    // pods use up the surge and the unavailability budget (as upstream's).
    kubectl_ok(
        &server,
        &[
            "patch",
            "deployment",
            "grow",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"template":{"spec":{"nodeSelector":{"disk":"ssd"}}}}}"#,
        ],
    );
    eventually(DEADLINE, "new 2 + old 3", || {
        (rs_sizes(&server, "app=grow") == [(2, 2), (1, 3)]).then_some(())
    });

    // 8 replicas, surge 2: 10 in all, shared in proportion (new 2 → 4, old 3 → 6).
    kubectl_ok(&server, &["scale", "deployment", "grow", "--replicas=8"]);
    eventually(DEADLINE, "proportional sizes", || {
        let sizes = rs_sizes(&server, "app=grow");
        (sizes == [(2, 4), (1, 6)]).then_some(())
    });

    kubectl_ok(&server, &["label", "node", "sim-0", "disk=ssd"]);
    eventually(DEADLINE, "the rollout to finish", || {
        let sizes = rs_sizes(&server, "app=grow");
        (sizes == [(2, 8), (1, 0)]).then_some(())
    });
    let running = wait_running(&server, "app=grow", 8);
    assert!(
        running.iter().all(|(_, node, _)| node == "sim-0"),
        "{running:?}"
    );
}

#[test]
fn a_rollout_that_stalls_past_its_deadline_says_so() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);
    kubectl_ok(
        &server,
        &[
            "create",
            "deployment",
            "stuck",
            "--image=busybox",
            "--replicas=2",
        ],
    );
    wait_running(&server, "app=stuck", 2);
    kubectl_ok(
        &server,
        &[
            "patch",
            "deployment",
            "stuck",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"progressDeadlineSeconds":2,"template":{"spec":{"nodeSelector":{"disk":"none"}}}}}"#,
        ],
    );
    let out = server.kubectl(&["rollout", "status", "deployment/stuck", "--timeout=25s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("exceeded its progress deadline"),
        "{stderr}"
    );
    let reason = kubectl_ok(
        &server,
        &[
            "get",
            "deployment",
            "stuck",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Progressing")].reason}"#,
        ],
    );
    assert_eq!(reason.trim(), "ProgressDeadlineExceeded");
}

#[test]
fn a_recreate_rollout_stops_old_pods_before_starting_new_ones() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 2);
    kubectl_ok(
        &server,
        &[
            "create",
            "deployment",
            "redo",
            "--image=busybox",
            "--replicas=3",
        ],
    );
    kubectl_ok(
        &server,
        &[
            "patch",
            "deployment",
            "redo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}"#,
        ],
    );
    let strategy = kubectl_ok(
        &server,
        &[
            "get",
            "deployment",
            "redo",
            "-o",
            "jsonpath={.spec.strategy.type}",
        ],
    );
    assert_eq!(strategy.trim(), "Recreate");
    wait_running(&server, "app=redo", 3);
    kubectl_ok(
        &server,
        &[
            "patch",
            "deployment",
            "redo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"busybox","image":"busybox:1.36"}]}}}}"#,
        ],
    );
    eventually(DEADLINE, "the recreate rollout to finish", || {
        let images = kubectl_ok(
            &server,
            &[
                "get",
                "pods",
                "-l",
                "app=redo",
                "-o",
                "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}",
            ],
        );
        let kinds: std::collections::BTreeSet<&str> = images.lines().collect();
        assert!(kinds.len() <= 1, "old and new pods at once: {images}");
        (images.lines().count() == 3 && kinds.contains("busybox:1.36")).then_some(())
    });
    wait_running(&server, "app=redo", 3);
}

/// A node whose heartbeats stop is marked Unknown and tainted after the
/// grace period; pods that do not tolerate that long are evicted.
#[test]
fn a_silent_node_turns_unknown_and_its_pods_are_evicted() {
    // The simulated nodes renew their Leases every 10 s: the grace period
    // must be longer.
    let server = TestServer::start_with(&["--node-monitor-grace-period=15s"]);
    let nodes = SimNodes::start(&server, 1);
    let pod = |name: &str, tolerate: Option<u32>| {
        let toleration = match tolerate {
            Some(s) => format!(
                "\n  tolerations:\n  - key: node.kubernetes.io/unreachable\n    operator: Exists\n    effect: NoExecute\n    tolerationSeconds: {s}"
            ),
            None => String::new(),
        };
        let path = server.dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: main\n    image: busybox{toleration}\n"
            ),
        )
        .expect("write manifest");
        kubectl_ok(
            &server,
            &["create", "-f", path.to_str().expect("utf-8 path")],
        );
    };
    pod("brief", Some(1));
    pod("patient", None);
    eventually(DEADLINE, "both pods running", || {
        let running = kubectl_ok(
            &server,
            &["get", "pods", "-o", "jsonpath={.items[*].status.phase}"],
        );
        (running.trim() == "Running Running").then_some(())
    });

    drop(nodes);
    eventually(DEADLINE * 2, "the node Unknown and tainted", || {
        let out = kubectl_ok(
            &server,
            &[
                "get",
                "node",
                "sim-0",
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason} {.spec.taints[*].key}"#,
            ],
        );
        (out.starts_with("Unknown NodeStatusUnknown")
            && out.contains("node.kubernetes.io/unreachable"))
        .then_some(out)
    });
    // The pod that tolerates a second is evicted (it stays Terminating: its
    // node cannot confirm); the one with the default 300 s stays.
    eventually(DEADLINE, "the brief pod evicted", || {
        let out = kubectl_ok(
            &server,
            &[
                "get",
                "pod",
                "brief",
                "-o",
                "jsonpath={.metadata.deletionTimestamp}",
            ],
        );
        (!out.trim().is_empty()).then_some(())
    });
    let patient = kubectl_ok(
        &server,
        &[
            "get",
            "pod",
            "patient",
            "-o",
            r#"jsonpath={.metadata.deletionTimestamp}|{.status.conditions[?(@.type=="Ready")].status}"#,
        ],
    );
    assert_eq!(patient, "|False", "kept, but no longer ready");
}

#[test]
fn a_replication_controller_keeps_its_replicas_adopts_and_scales() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);
    let rc = r#"{"apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 3, "selector": {"app": "legacy"},
                 "template": {"metadata": {"labels": {"app": "legacy"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}"#;
    let file = server.dir.path().join("rc.json");
    std::fs::write(&file, rc).expect("write rc.json");
    kubectl_ok(&server, &["create", "-f", file.to_str().expect("path")]);
    let running = wait_running(&server, "app=legacy", 3);
    assert!(
        running
            .iter()
            .all(|(name, _, _)| name.starts_with("legacy-"))
    );
    let owners = kubectl_ok(
        &server,
        &[
            "get",
            "pods",
            "-l",
            "app=legacy",
            "-o",
            "jsonpath={.items[*].metadata.ownerReferences[0].kind}",
        ],
    );
    assert_eq!(
        owners.split_whitespace().collect::<Vec<_>>(),
        ["ReplicationController"; 3]
    );
    eventually(DEADLINE, "the RC to report 3 ready replicas", || {
        let out = kubectl_ok(
            &server,
            &[
                "get",
                "rc",
                "legacy",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ],
        );
        (out.trim() == "3").then_some(())
    });

    kubectl_ok(&server, &["scale", "rc", "legacy", "--replicas=1"]);
    wait_running(&server, "app=legacy", 1);

    // An orphan that matches is adopted, and being one too many, one of
    // the two goes.
    kubectl_ok(
        &server,
        &[
            "run",
            "stray",
            "--image=busybox",
            "--labels=app=legacy",
            "--restart=Always",
        ],
    );
    let left = eventually(DEADLINE, "the RC to settle on one adopted pod", || {
        let out = kubectl_ok(
            &server,
            &[
                "get",
                "pods",
                "-l",
                "app=legacy",
                "-o",
                r#"jsonpath={range .items[*]}{.metadata.name} {.metadata.ownerReferences[0].kind} {.metadata.deletionTimestamp}{"\n"}{end}"#,
            ],
        );
        let live: Vec<String> = out
            .lines()
            .filter(|l| l.split_whitespace().count() == 2)
            .map(|l| l.trim().to_string())
            .collect();
        (live.len() == 1 && live[0].ends_with(" ReplicationController")).then_some(live)
    });
    assert!(left[0].starts_with("legacy-"), "{left:?}");
    let events = kubectl_ok(
        &server,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=ReplicationController",
            "-o",
            "jsonpath={.items[*].message}",
        ],
    );
    assert!(events.contains("Deleted pod: stray"), "{events}");

    kubectl_ok(&server, &["delete", "rc", "legacy"]);
    eventually(DEADLINE, "the RC's pods to go with it", || {
        pods(&server, "app=legacy").is_empty().then_some(())
    });
}
