//! `skiff agent` joining a server, end to end (root, real containerd): a
//! server on a test bridge and agents in their own network namespaces
//! (`tests/common/cluster.rs`), driven with the stock kubectl.
//!
//! One cluster serves the whole story, in order, since each start costs a
//! containerd on a 2-core machine: an agent joins and its Node turns Ready;
//! a pod pinned to it runs, and `kubectl logs`/`exec` reach it through the
//! server; a second machine claiming the node's name is refused; a wrong
//! token and a token for another CA are refused with their messages while
//! the agent keeps retrying; the server restarts and the agent carries on
//! (lease renewed, a new pod runs); the agent restarts and is the same Node.
//! Run under `flock /tmp/skiff-node-e2e.lock`.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::node::BUSYBOX;

const NODE: &str = "skt-node-1";

fn pod(cluster: &Cluster, name: &str, node: &str, command: &str) {
    let manifest = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": BUSYBOX,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", command],
            }],
        },
    });
    cluster.apply(&manifest.to_string());
}

fn wait_running(cluster: &Cluster, name: &str) {
    cluster.wait_for(
        &format!("pod {name} to run"),
        Duration::from_secs(120),
        || {
            cluster
                .kubectl_ok(&["get", "pod", name, "-o=jsonpath={.status.phase}"])
                .filter(|p| p == "Running")
        },
    );
}

fn node_uid(cluster: &Cluster) -> String {
    cluster
        .kubectl_ok(&["get", "node", NODE, "-o=jsonpath={.metadata.uid}"])
        .filter(|u| !u.is_empty())
        .expect("the node's uid")
}

fn lease_renewed(cluster: &Cluster) -> String {
    cluster
        .kubectl_ok(&[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            NODE,
            "-o=jsonpath={.spec.renewTime}",
        ])
        .unwrap_or_default()
}

/// How many times `needle` appears in an agent's log.
fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn an_agent_joins_runs_pods_and_survives_restarts() {
    let mut cluster = Cluster::start();
    let token = cluster.token();
    assert!(token.starts_with("K10"), "{token}");

    // Join: the node registers and turns Ready.
    cluster.add_agent(1, NODE, &token);
    cluster.wait_for(
        "the agent's node to be Ready",
        Duration::from_secs(180),
        || cluster.node_ready(NODE).then_some(()),
    );
    let uid = node_uid(&cluster);
    let secret_type = cluster.kubectl_ok(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        &format!("{NODE}.node-password.skiff"),
        "-o=jsonpath={.type}",
    ]);
    assert_eq!(secret_type.as_deref(), Some("skiff.io/node-password"));
    let agent_dir = cluster.agents[0].data_dir.join("agent");
    for key in [
        "node-password",
        "tls/client-kubelet.key",
        "kubelet.kubeconfig",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(agent_dir.join(key))
            .unwrap_or_else(|e| panic!("{key}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }

    // A pod pinned to the node runs; logs and exec go through the server
    // to the agent's kubelet.
    pod(
        &cluster,
        "joined",
        NODE,
        "echo hello-from-the-agent; sleep 3600",
    );
    wait_running(&cluster, "joined");
    cluster.wait_for("the pod's log", Duration::from_secs(30), || {
        cluster
            .kubectl_ok(&["logs", "joined"])
            .filter(|l| l.contains("hello-from-the-agent"))
    });
    let exec = cluster.kubectl(&["exec", "joined", "--", "sh", "-c", "echo exec-$((6*7))"]);
    assert!(
        exec.status.success(),
        "exec: {}",
        String::from_utf8_lossy(&exec.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&exec.stdout).trim(), "exec-42");

    // Another machine (its own node password) claiming the name: refused,
    // and it keeps retrying instead of exiting.
    cluster.add_impostor(1, NODE, &token);
    let impostor_index = cluster.agents.len() - 1;
    cluster.wait_for(
        "the impostor to be refused twice",
        Duration::from_secs(60),
        || {
            let log = cluster.agents[impostor_index].log();
            (count(&log, "node password rejected") >= 2).then_some(())
        },
    );
    assert!(
        cluster.agents[impostor_index].running(),
        "{}",
        cluster.logs()
    );
    assert!(
        cluster.agents[impostor_index]
            .log()
            .contains("give this machine a unique --node-name"),
        "{}",
        cluster.logs()
    );
    cluster.agents[impostor_index].stop();
    assert_eq!(
        node_uid(&cluster),
        uid,
        "the impostor must not replace the node"
    );

    // A wrong secret: 401 with what to fix, retried.
    let (pinned, _) = token.split_once("::").expect("a K10 token");
    let wrong = format!("{pinned}::server:not-the-secret");
    cluster.add_agent(2, "skt-node-2", &wrong);
    let second = cluster.agents.len() - 1;
    cluster.wait_for(
        "a wrong token to be refused twice",
        Duration::from_secs(60),
        || {
            let log = cluster.agents[second].log();
            (count(&log, "refused the token (401 Unauthorized)") >= 2).then_some(())
        },
    );
    assert!(cluster.agents[second].running(), "{}", cluster.logs());

    // A token for another CA: the fetched CA does not match its hash.
    let (_, credentials) = token.split_once("::").expect("a K10 token");
    let other_ca = format!("K10{}::{credentials}", "0".repeat(64));
    cluster.agents[second].relaunch_with_token(&other_ca);
    cluster.wait_for(
        "a foreign CA hash to be refused",
        Duration::from_secs(60),
        || {
            let log = cluster.agents[second].log();
            (count(&log, "does not match the hash in the token") >= 2).then_some(())
        },
    );
    assert!(cluster.agents[second].running(), "{}", cluster.logs());
    assert!(
        !cluster.agents[second].log().contains("joined the cluster"),
        "{}",
        cluster.logs()
    );
    cluster.agents[second].stop();

    // The server restarts: the agent's lease renewals and pod watch resume.
    let before = lease_renewed(&cluster);
    cluster.restart_server();
    cluster.wait_for(
        "the lease to be renewed after the restart",
        Duration::from_secs(60),
        || {
            let now = lease_renewed(&cluster);
            (!now.is_empty() && now > before).then_some(())
        },
    );
    pod(&cluster, "after-server-restart", NODE, "sleep 3600");
    wait_running(&cluster, "after-server-restart");
    assert!(cluster.node_ready(NODE), "{}", cluster.logs());

    // The agent restarts: it rejoins as the same Node.
    cluster.agents[0].restart();
    cluster.wait_for("the agent to rejoin", Duration::from_secs(60), || {
        (count(&cluster.agents[0].log(), "joined the cluster") >= 2).then_some(())
    });
    let renewed = lease_renewed(&cluster);
    cluster.wait_for(
        "the lease to be renewed after the rejoin",
        Duration::from_secs(60),
        || (lease_renewed(&cluster) > renewed).then_some(()),
    );
    assert_eq!(node_uid(&cluster), uid, "the same Node object");
    assert!(cluster.node_ready(NODE), "{}", cluster.logs());
    pod(&cluster, "after-agent-restart", NODE, "sleep 3600");
    wait_running(&cluster, "after-agent-restart");
}
