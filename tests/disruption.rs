//! PodDisruptionBudgets end to end: the disruption controller keeps their
//! status, the eviction subresource spends them (429 when blocked), and
//! `kubectl drain` respects them. `skiff server --disable-agent` with
//! simulated nodes, stock kubectl.

mod common;

use std::time::Duration;

use common::{SimNodes, TestServer, eventually, ok, text};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

fn json_of(server: &TestServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ok(server, &all)).expect("kubectl printed JSON")
}

/// Names of the Running pods matching `selector`, once there are `n`.
fn running(server: &TestServer, selector: &str, n: usize) -> Vec<String> {
    eventually(DEADLINE, &format!("{n} ready pods for {selector}"), || {
        let list = json_of(server, &["get", "pods", "-l", selector]);
        let items = list["items"].as_array()?.clone();
        let ready: Vec<String> = items
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
            .collect();
        (ready.len() == n && items.len() == n).then_some(ready)
    })
}

/// The budget's status once `check` holds.
fn budget_when(server: &TestServer, name: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(DEADLINE, &format!("status of budget {name}"), || {
        let pdb = json_of(server, &["get", "pdb", name]);
        check(&pdb["status"]).then(|| pdb["status"].clone())
    })
}

/// POSTs an Eviction for `pod`; kubectl's output either way.
fn evict(server: &TestServer, pod: &str) -> std::process::Output {
    let body = format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"default"}}}}"#
    );
    let file = server.dir.path().join(format!("evict-{pod}.json"));
    std::fs::write(&file, body).expect("write the eviction");
    server.kubectl(&[
        "create",
        "--raw",
        &format!("/api/v1/namespaces/default/pods/{pod}/eviction"),
        "-f",
        &file.to_string_lossy(),
    ])
}

#[test]
fn budgets_are_kept_current_and_guard_evictions_and_drains() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 2);

    ok(
        &server,
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=3",
        ],
    );
    running(&server, "app=web", 3);
    ok(
        &server,
        &[
            "create",
            "pdb",
            "web",
            "--selector=app=web",
            "--min-available=2",
        ],
    );
    let status = budget_when(&server, "web", |s| s["currentHealthy"] == 3);
    assert_eq!(status["expectedPods"], 3, "{status}");
    assert_eq!(status["desiredHealthy"], 2, "{status}");
    assert_eq!(status["disruptionsAllowed"], 1, "{status}");
    assert_eq!(status["conditions"][0]["type"], "DisruptionAllowed");
    assert_eq!(status["conditions"][0]["reason"], "SufficientPods");
    let table = ok(&server, &["get", "pdb", "web"]);
    assert!(
        table.contains("MIN AVAILABLE") && table.contains("ALLOWED DISRUPTIONS"),
        "{table}"
    );

    // A percentage of a Deployment's replicas, with maxUnavailable.
    ok(
        &server,
        &[
            "create",
            "pdb",
            "web-pct",
            "--selector=app=web",
            "--max-unavailable=34%",
        ],
    );
    let status = budget_when(&server, "web-pct", |s| s["expectedPods"] == 3);
    assert_eq!(
        status["desiredHealthy"], 1,
        "34% of 3 rounds up to 2 unavailable: {status}"
    );
    ok(&server, &["delete", "pdb", "web-pct"]);

    // Nothing may go from a budget with no room: 429 naming it.
    ok(
        &server,
        &[
            "create",
            "deployment",
            "db",
            "--image=busybox",
            "--replicas=1",
        ],
    );
    let db = running(&server, "app=db", 1);
    ok(
        &server,
        &[
            "create",
            "pdb",
            "db",
            "--selector=app=db",
            "--max-unavailable=0",
        ],
    );
    budget_when(&server, "db", |s| {
        s["expectedPods"] == 1 && s["currentHealthy"] == 1
    });
    let out = evict(&server, &db[0]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("TooManyRequests")
            && said.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{said}"
    );
    assert_eq!(running(&server, "app=db", 1), db, "the pod stays");

    // A budget with room allows one eviction; the pod is marked and goes,
    // and the budget records it.
    let web = running(&server, "app=web", 3);
    let out = evict(&server, &web[0]);
    assert!(out.status.success(), "{}", text(&out));
    eventually(DEADLINE, "the evicted pod gone", || {
        let out = server.kubectl(&["get", "pod", &web[0]]);
        (!out.status.success()).then_some(())
    });
    running(&server, "app=web", 3);
    budget_when(&server, "web", |s| {
        s["currentHealthy"] == 3 && s["disruptionsAllowed"] == 1
    });

    // Draining a node evicts its pods within the budget, waiting for
    // replacements when it must.
    let node = json_of(&server, &["get", "pods", "-l", "app=web"])["items"][0]["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let drained = server.kubectl(&["drain", &node, "--pod-selector=app=web", "--timeout=60s"]);
    assert!(drained.status.success(), "{}", text(&drained));
    let after = json_of(&server, &["get", "pods", "-l", "app=web"]);
    assert!(
        after["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|p| p["spec"]["nodeName"] != node.as_str())),
        "{after}"
    );

    // A drain blocked by a budget fails with the budget's message.
    let db_node = json_of(&server, &["get", "pod", &db[0]])["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let blocked = server.kubectl(&["drain", &db_node, "--pod-selector=app=db", "--timeout=8s"]);
    assert!(!blocked.status.success(), "{}", text(&blocked));
    assert!(
        text(&blocked).contains("disruption budget"),
        "{}",
        text(&blocked)
    );
}
