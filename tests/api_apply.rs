//! Client-side `kubectl apply` and the other kubectl commands that send
//! strategic merge patches (`edit`, `set image|env`, `rollout
//! restart|pause|resume`, `taint`, `cordon`, the default `kubectl patch`),
//! plus `kubectl diff` (a dry-run PATCH), against a real `skiff server`.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{SimNodes, TestServer, eventually};
use serde_json::{Value, json};

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

fn get_json(server: &TestServer, args: &[&str]) -> Value {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    let text = kubectl_ok(server, &full);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("kubectl get {args:?}: {e}: {text}"))
}

fn write(server: &TestServer, name: &str, text: &str) -> String {
    let path: PathBuf = server.dir.path().join(name);
    std::fs::write(&path, text).expect("write a manifest");
    path.to_string_lossy().into_owned()
}

const V1: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: web:1
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
        - {name: C, value: "3"}
        ports:
        - containerPort: 80
      - name: side
        image: side:1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 80}
  - {name: https, port: 443, targetPort: 443}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  labels: {a: "1", b: "2"}
data: {x: "1", w: "2"}
"#;

/// V1 changed: an image, a removed env var, the service's ports reordered,
/// a label replaced on the deployment and one removed on the configmap.
const V2: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, owner: me}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: web:2
        env:
        - {name: A, value: "1"}
        - {name: C, value: "3"}
        ports:
        - containerPort: 80
      - name: side
        image: side:1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: https, port: 443, targetPort: 443}
  - {name: http, port: 80, targetPort: 80}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  labels: {a: "1"}
data: {x: "1", w: "2"}
"#;

fn last_applied(obj: &Value) -> Value {
    let text = obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap_or_else(|| panic!("no last-applied annotation on {obj}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("last-applied is JSON: {e}"))
}

#[test]
fn client_side_apply_diff_and_reapply() {
    let server = TestServer::start();
    let v1 = write(&server, "v1.yaml", V1);
    let v2 = write(&server, "v2.yaml", V2);
    let out = kubectl_ok(&server, &["apply", "-f", &v1]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    // Others change fields the manifest does not own.
    kubectl_ok(&server, &["label", "deployment", "web", "extra=kept"]);
    kubectl_ok(
        &server,
        &["patch", "configmap", "web", "-p", r#"{"data":{"z":"3"}}"#],
    );

    // kubectl diff: a dry-run PATCH shows the change and stores nothing.
    let out = server.kubectl(&["diff", "-f", &v2]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "diff finds changes: {shown}");
    for line in [
        "+        image: web:2",
        "-        image: web:1",
        "+    owner: me",
        "-    b: \"2\"",
    ] {
        assert!(shown.contains(line), "diff shows {line:?}:\n{shown}");
    }
    let live = get_json(&server, &["deployment", "web"]);
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "web:1"
    );
    assert_eq!(live["metadata"]["generation"], 1);

    let out = kubectl_ok(&server, &["apply", "-f", &v2]);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let deploy = get_json(&server, &["deployment", "web"]);
    assert_eq!(
        deploy["metadata"]["labels"],
        json!({"app": "web", "extra": "kept", "owner": "me"})
    );
    let web = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(web["image"], "web:2");
    assert_eq!(
        web["env"],
        json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(
        web["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][1]["image"],
        "side:1"
    );
    assert_eq!(deploy["metadata"]["generation"], 2);
    let applied = last_applied(&deploy);
    assert_eq!(
        applied["metadata"]["labels"],
        json!({"app": "web", "owner": "me"})
    );
    assert_eq!(
        applied["spec"]["template"]["spec"]["containers"][0]["image"],
        "web:2"
    );

    let service = get_json(&server, &["service", "web"]);
    let ports: Vec<&str> = service["spec"]["ports"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ports, ["https", "http"], "ports follow the new order");

    let configmap = get_json(&server, &["configmap", "web"]);
    assert_eq!(configmap["metadata"]["labels"], json!({"a": "1"}));
    assert_eq!(configmap["data"], json!({"w": "2", "x": "1", "z": "3"}));

    // Applied again, nothing changes and diff has nothing to show.
    let out = kubectl_ok(&server, &["apply", "-f", &v2]);
    assert!(out.contains("deployment.apps/web unchanged"), "{out}");
    let out = server.kubectl(&["diff", "-f", &v2]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "no diff: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn edit_set_patch_and_their_errors() {
    let server = TestServer::start();
    let v1 = write(&server, "v1.yaml", V1);
    kubectl_ok(&server, &["apply", "-f", &v1]);

    // kubectl edit with a scripted editor.
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .args(["edit", "deployment", "web"])
        .env("EDITOR", "sed -i s/side:1/side:9/")
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl edit");
    assert!(
        out.status.success(),
        "kubectl edit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let containers = |server: &TestServer| {
        get_json(server, &["deployment", "web"])["spec"]["template"]["spec"]["containers"].clone()
    };
    let c = containers(&server);
    assert_eq!(
        (c[0]["image"].clone(), c[1]["image"].clone()),
        (json!("web:1"), json!("side:9"))
    );

    kubectl_ok(&server, &["set", "image", "deployment/web", "web=web:3"]);
    kubectl_ok(
        &server,
        &["set", "env", "deployment/web", "-c", "web", "D=4", "A-"],
    );
    let c = containers(&server);
    assert_eq!(c[0]["image"], "web:3");
    assert_eq!(
        c[0]["env"],
        json!([{"name": "B", "value": "2"}, {"name": "C", "value": "3"}, {"name": "D", "value": "4"}])
    );

    kubectl_ok(
        &server,
        &["label", "deployment", "web", "tier=back", "--overwrite"],
    );
    kubectl_ok(
        &server,
        &["annotate", "deployment", "web", "note=x", "--overwrite"],
    );
    let meta = get_json(&server, &["deployment", "web"])["metadata"].clone();
    assert_eq!(
        (
            meta["labels"]["tier"].clone(),
            meta["annotations"]["note"].clone()
        ),
        (json!("back"), json!("x"))
    );

    // The default kubectl patch is a strategic merge patch.
    kubectl_ok(
        &server,
        &[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"side","$patch":"delete"}]}}}}"#,
        ],
    );
    assert_eq!(containers(&server).as_array().map(Vec::len), Some(1));
    let out = server.kubectl(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "Error from server: map: map[image:x] does not contain declared merge key: name"
        ),
        "{err}"
    );
    let out = server.kubectl(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"strategy":{"$retainKeys":"type"}}}"#,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid patch format of retainKeys"), "{err}");

    // A server-side dry run stores nothing; the scale subresource takes a
    // strategic merge patch too.
    kubectl_ok(
        &server,
        &[
            "patch",
            "deployment",
            "web",
            "--dry-run=server",
            "-p",
            r#"{"spec":{"replicas":7}}"#,
        ],
    );
    assert_eq!(
        get_json(&server, &["deployment", "web"])["spec"]["replicas"],
        2
    );
    kubectl_ok(
        &server,
        &[
            "patch",
            "deployment",
            "web",
            "--subresource=scale",
            "-p",
            r#"{"spec":{"replicas":4}}"#,
        ],
    );
    assert_eq!(
        get_json(&server, &["deployment", "web"])["spec"]["replicas"],
        4
    );
}

/// The ReplicaSets of `app=web`: (name, template image, template annotations).
fn replica_sets(server: &TestServer) -> Vec<(String, String, Value)> {
    let list = get_json(server, &["replicasets", "-l", "app=web"]);
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|rs| {
                    (
                        rs["metadata"]["name"].as_str().unwrap_or("").to_string(),
                        rs["spec"]["template"]["spec"]["containers"][0]["image"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        rs["spec"]["template"]["metadata"]["annotations"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn rolled_out(server: &TestServer) {
    let out = server.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    assert!(
        out.status.success(),
        "rollout status: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}

#[test]
fn set_image_and_rollouts_roll_out_new_replica_sets() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);
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
    rolled_out(&server);

    kubectl_ok(
        &server,
        &["set", "image", "deployment/web", "busybox=busybox:2"],
    );
    eventually(DEADLINE, "a ReplicaSet for busybox:2", || {
        replica_sets(&server)
            .iter()
            .any(|(_, image, _)| image == "busybox:2")
            .then_some(())
    });
    rolled_out(&server);

    kubectl_ok(&server, &["rollout", "restart", "deployment/web"]);
    let deploy = get_json(&server, &["deployment", "web"]);
    let restarted =
        deploy["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .clone();
    assert!(restarted.is_string(), "restartedAt set: {deploy}");
    eventually(DEADLINE, "a ReplicaSet for the restart", || {
        replica_sets(&server)
            .iter()
            .any(|(_, _, annotations)| {
                annotations["kubectl.kubernetes.io/restartedAt"] == restarted
            })
            .then_some(())
    });
    rolled_out(&server);
    assert_eq!(replica_sets(&server).len(), 3);

    kubectl_ok(&server, &["rollout", "pause", "deployment/web"]);
    assert_eq!(
        get_json(&server, &["deployment", "web"])["spec"]["paused"],
        true
    );
    kubectl_ok(
        &server,
        &["set", "image", "deployment/web", "busybox=busybox:3"],
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        replica_sets(&server)
            .iter()
            .all(|(_, image, _)| image != "busybox:3"),
        "a paused deployment does not roll out"
    );
    kubectl_ok(&server, &["rollout", "resume", "deployment/web"]);
    assert!(
        get_json(&server, &["deployment", "web"])["spec"]
            .get("paused")
            .is_none_or(|p| p == false)
    );
    eventually(DEADLINE, "a ReplicaSet for busybox:3 after resume", || {
        replica_sets(&server)
            .iter()
            .any(|(_, image, _)| image == "busybox:3")
            .then_some(())
    });
    rolled_out(&server);
}

#[test]
fn taint_and_cordon_patch_nodes() {
    let server = TestServer::start();
    let node = write(
        &server,
        "node.yaml",
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n",
    );
    kubectl_ok(&server, &["create", "-f", &node]);
    let taints = |server: &TestServer| get_json(server, &["node", "n1"])["spec"]["taints"].clone();

    kubectl_ok(&server, &["taint", "nodes", "n1", "k=v:NoSchedule"]);
    kubectl_ok(&server, &["taint", "nodes", "n1", "k2=v2:NoExecute"]);
    let t = taints(&server);
    assert_eq!(t.as_array().map(Vec::len), Some(2), "{t}");
    assert!(t.as_array().is_some_and(|t| t.contains(&json!({"key": "k", "value": "v", "effect": "NoSchedule"}))));
    kubectl_ok(&server, &["taint", "nodes", "n1", "k:NoSchedule-"]);
    assert_eq!(
        taints(&server),
        json!([{"key": "k2", "value": "v2", "effect": "NoExecute"}])
    );

    kubectl_ok(&server, &["cordon", "n1"]);
    assert_eq!(
        get_json(&server, &["node", "n1"])["spec"]["unschedulable"],
        true
    );
    kubectl_ok(&server, &["uncordon", "n1"]);
    assert!(
        get_json(&server, &["node", "n1"])["spec"]
            .get("unschedulable")
            .is_none()
    );
}
