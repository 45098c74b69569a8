//! Server-side tables with the stock kubectl: `kubectl get` shows upstream's
//! columns and values per kind (pods, deployments, services, nodes, events,
//! `get all`), `-o wide` adds the priority-1 columns, and `get -w` prints a
//! row each time an object changes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

/// The header's column names and each row's whitespace-separated cells.
fn table(text: &str) -> (String, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let rows = lines
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    (header, rows)
}

/// The row whose first cell is `name`.
fn row<'a>(rows: &'a [Vec<String>], name: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().is_some_and(|n| n == name))
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no row {name} in {rows:?}"))
}

/// Whether an AGE cell is a fresh human duration like `5s` or `1m3s`.
fn is_age(cell: &str) -> bool {
    !cell.is_empty()
        && cell.chars().any(|c| c.is_ascii_digit())
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || "smhdy".contains(c))
}

#[test]
fn kubectl_get_prints_upstream_columns() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);

    // Nodes.
    let (header, rows) = table(&kubectl_ok(&server, &["get", "nodes"]));
    assert_eq!(header, "NAME STATUS ROLES AGE VERSION");
    let node = row(&rows, "sim-0");
    assert_eq!(&node[1..3], ["Ready", "<none>"]);
    assert!(is_age(&node[3]), "{node:?}");
    assert!(
        node[4].starts_with('v') && node[4].ends_with("-sim"),
        "{node:?}"
    );
    let wide = kubectl_ok(&server, &["get", "nodes", "-o", "wide"]);
    let (header, _) = table(&wide);
    assert_eq!(
        header,
        "NAME STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME"
    );
    let line = wide.lines().find(|l| l.starts_with("sim-0")).unwrap_or("");
    for cell in [
        "10.244.0.1",
        "<none>",
        "skiff simulated node",
        "<unknown>",
        "sim://0",
    ] {
        assert!(line.contains(cell), "{cell} in {line}");
    }

    // A deployment whose pods run on the simulated node.
    kubectl_ok(
        &server,
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=2",
        ],
    );
    eventually(DEADLINE, "deployment web 2/2", || {
        let (_, rows) = table(&kubectl_ok(&server, &["get", "deploy"]));
        rows.iter()
            .any(|r| r.first().is_some_and(|n| n == "web") && r.get(1).is_some_and(|c| c == "2/2"))
            .then_some(())
    });
    let (header, rows) = table(&kubectl_ok(&server, &["get", "deploy"]));
    assert_eq!(header, "NAME READY UP-TO-DATE AVAILABLE AGE");
    let web = row(&rows, "web");
    assert_eq!(&web[1..4], ["2/2", "2", "2"]);
    assert!(is_age(&web[4]), "{web:?}");
    let (header, rows) = table(&kubectl_ok(&server, &["get", "deploy", "-o", "wide"]));
    assert_eq!(
        header,
        "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"
    );
    assert_eq!(&row(&rows, "web")[5..], ["busybox", "busybox", "app=web"]);

    // Its pods.
    let (header, rows) = table(&kubectl_ok(&server, &["get", "pods", "-l", "app=web"]));
    assert_eq!(header, "NAME READY STATUS RESTARTS AGE");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for pod in &rows {
        assert!(pod[0].starts_with("web-"), "{pod:?}");
        assert_eq!(&pod[1..4], ["1/1", "Running", "0"]);
        assert!(is_age(&pod[4]), "{pod:?}");
    }
    let (header, rows) = table(&kubectl_ok(
        &server,
        &["get", "pods", "-l", "app=web", "-o", "wide"],
    ));
    assert_eq!(
        header,
        "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"
    );
    for pod in &rows {
        assert!(pod[5].starts_with("10.244.0."), "{pod:?}");
        assert_eq!(&pod[6..], ["sim-0", "<none>", "<none>"]);
    }

    // A pod that fits no node stays Pending, with a FailedScheduling event.
    let manifest = server.dir.path().join("pending.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pending\nspec:\n  nodeSelector:\n    disk: none\n  containers:\n  - name: a\n    image: busybox\n  - name: b\n    image: busybox\n",
    )
    .expect("write the manifest");
    kubectl_ok(&server, &["create", "-f", &manifest.to_string_lossy()]);
    let (_, rows) = table(&kubectl_ok(
        &server,
        &["get", "pod", "pending", "-o", "wide"],
    ));
    assert_eq!(
        &row(&rows, "pending")[1..4],
        ["0/2", "Pending", "0"],
        "{rows:?}"
    );
    assert_eq!(
        &row(&rows, "pending")[5..],
        ["<none>", "<none>", "<none>", "<none>"]
    );
    let events = eventually(DEADLINE, "a FailedScheduling event", || {
        let out = kubectl_ok(&server, &["get", "events"]);
        out.contains("FailedScheduling").then_some(out)
    });
    let (header, _) = table(&events);
    assert_eq!(header, "LAST SEEN TYPE REASON OBJECT MESSAGE");
    let line = events
        .lines()
        .find(|l| l.contains("FailedScheduling"))
        .unwrap_or("");
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert!(is_age(cells[0]), "{line}");
    assert_eq!(
        &cells[1..4],
        ["Warning", "FailedScheduling", "pod/pending"],
        "{line}"
    );
    assert!(line.contains("0/1 nodes are available"), "{line}");
    // events.k8s.io Events use the same printer.
    let (header, _) = table(&kubectl_ok(&server, &["get", "events.v1.events.k8s.io"]));
    assert_eq!(header, "LAST SEEN TYPE REASON OBJECT MESSAGE");

    // A service.
    kubectl_ok(
        &server,
        &[
            "expose",
            "deployment",
            "web",
            "--port=80",
            "--target-port=8080",
        ],
    );
    let (header, rows) = table(&kubectl_ok(&server, &["get", "svc"]));
    assert_eq!(header, "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE");
    let svc = row(&rows, "web");
    assert_eq!(svc[1], "ClusterIP");
    // The cluster IP as allocated (Service IP allocation is another
    // component's job; without it the cell is `<none>`, as upstream's).
    let ip = kubectl_ok(
        &server,
        &["get", "svc", "web", "-o", "jsonpath={.spec.clusterIPs[0]}"],
    );
    assert_eq!(svc[2], if ip.is_empty() { "<none>" } else { ip.as_str() });
    assert_eq!(&svc[3..5], ["<none>", "80/TCP"]);
    assert_eq!(&row(&rows, "kubernetes")[3..5], ["<none>", "443/TCP"]);
    let (header, rows) = table(&kubectl_ok(&server, &["get", "svc", "-o", "wide"]));
    assert_eq!(
        header,
        "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR"
    );
    assert_eq!(row(&rows, "web")[6], "app=web");

    // Everything in the `all` category, each kind with its own table.
    let all = kubectl_ok(&server, &["get", "all"]);
    for needle in [
        "pod/pending",
        "pod/web-",
        "service/kubernetes",
        "service/web",
        "deployment.apps/web",
        "replicaset.apps/web-",
        "NAME READY STATUS RESTARTS AGE",
        "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE",
        "NAME READY UP-TO-DATE AVAILABLE AGE",
        "NAME DESIRED CURRENT READY AGE",
    ] {
        let squeezed: Vec<String> = all
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert!(
            squeezed.iter().any(|l| l.contains(needle)),
            "{needle} in:\n{all}"
        );
    }

    // Kinds without their own columns keep NAME and CREATED AT.
    kubectl_ok(
        &server,
        &[
            "create",
            "clusterrole",
            "reader",
            "--verb=get",
            "--resource=pods",
        ],
    );
    let (header, rows) = table(&kubectl_ok(&server, &["get", "clusterrole", "reader"]));
    assert_eq!(header, "NAME CREATED AT");
    assert!(row(&rows, "reader")[1].ends_with('Z'), "{rows:?}");
}

/// A child process killed and reaped on drop, pass or panic.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        common::kill(&mut self.0);
    }
}

#[test]
fn kubectl_get_watch_prints_rows_as_objects_change() {
    let server = TestServer::start();
    kubectl_ok(&server, &["create", "configmap", "first"]);
    let mut child = Reaped(
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .args(["get", "configmaps", "--watch"])
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubectl get --watch"),
    );
    let Some(stdout) = child.0.stdout.take() else {
        panic!("kubectl's stdout is piped")
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let mut wait_for = |what: &str, pred: &dyn Fn(&[&str]) -> bool| {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if seen
                .iter()
                .any(|l| pred(&l.split_whitespace().collect::<Vec<_>>()))
            {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!("timed out waiting for {what}; kubectl printed {seen:?}"),
            }
        }
    };
    wait_for("the header", &|c| c == ["NAME", "DATA", "AGE"]);
    wait_for("the existing configmap", &|c| {
        c.len() == 3 && c[..2] == ["first", "0"]
    });
    kubectl_ok(
        &server,
        &["create", "configmap", "second", "--from-literal=k=v"],
    );
    wait_for("the new configmap", &|c| {
        c.len() == 3 && c[..2] == ["second", "1"]
    });
    kubectl_ok(
        &server,
        &[
            "patch",
            "configmap",
            "first",
            "--type=merge",
            "-p",
            r#"{"data":{"a":"1","b":"2"}}"#,
        ],
    );
    wait_for("the changed configmap", &|c| {
        c.len() == 3 && c[..2] == ["first", "2"]
    });
    drop(child);
    let headers = seen.iter().filter(|l| l.starts_with("NAME")).count();
    assert_eq!(headers, 1, "the header is printed once: {seen:?}");
}
