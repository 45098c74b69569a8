//! The server's own node, end to end with real containerd, runc and CNI
//! plugins, driven by the stock kubectl: the node becomes Ready with a
//! podCIDR, a busybox pod bound to it runs with an IP from that range, and
//! deleting the pod removes its sandbox from the runtime. The harness and
//! what it cleans up are in `tests/common/node.rs`; pods only run `sleep`.

mod common;

use std::time::Duration;

use common::node::{BUSYBOX, CLUSTER_CIDR, Node};

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
    // The server labels its own node (NodeRestriction keeps the kubelet
    // from giving itself a role), a moment after it registers.
    node.wait_for("the control-plane label", Duration::from_secs(30), || {
        node.kubectl_ok(&["get", "node", &node.name, "--show-labels"])
            .filter(|labels| labels.contains("node-role.kubernetes.io/control-plane=true"))
    });
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
