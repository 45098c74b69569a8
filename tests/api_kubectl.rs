//! The generic API server as the stock `kubectl` sees it: discovery, CRUD,
//! labels and annotations, multi-document manifests, patches, watches,
//! optimistic concurrency and server-side field validation, against the real
//! `skiff server`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TestServer, ok, text};

fn manifest(server: &TestServer, name: &str, body: &str) -> PathBuf {
    let path = server.dir.path().join(name);
    std::fs::write(&path, body).expect("write manifest");
    path
}

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
";

#[test]
fn get_namespaces_lists_the_system_namespaces() {
    let server = TestServer::start();
    let out = ok(&server, &["get", "ns", "-o", "name"]);
    let names: Vec<&str> = out.lines().collect();
    assert_eq!(
        names,
        [
            "namespace/default",
            "namespace/kube-node-lease",
            "namespace/kube-public",
            "namespace/kube-system"
        ]
    );
    let svc = ok(
        &server,
        &[
            "get",
            "svc",
            "kubernetes",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    );
    assert_eq!(svc, "10.43.0.1");
    let pods = server.kubectl(&["get", "pods", "-A"]);
    assert!(pods.status.success(), "{}", text(&pods));
    assert!(text(&pods).contains("No resources found"));
}

#[test]
fn configmap_create_label_annotate_patch_delete() {
    let server = TestServer::start();
    let file = manifest(&server, "cm.yaml", CONFIGMAP);
    let file = file.to_str().expect("utf-8 path");
    ok(&server, &["create", "-f", file]);
    let yaml = ok(&server, &["get", "cm", "settings", "-o", "yaml"]);
    assert!(
        yaml.contains("mode: fast") && yaml.contains("uid:"),
        "{yaml}"
    );
    ok(&server, &["label", "cm", "settings", "tier=web"]);
    ok(&server, &["annotate", "cm", "settings", "owner=ops"]);
    let selected = ok(
        &server,
        &["get", "cm", "-l", "tier in (web,db)", "-o", "name"],
    );
    assert_eq!(selected.trim(), "configmap/settings");
    ok(
        &server,
        &[
            "patch",
            "cm",
            "settings",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"size":"xl"}}"#,
        ],
    );
    ok(
        &server,
        &[
            "patch",
            "cm",
            "settings",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/data/mode"}]"#,
        ],
    );
    let data = ok(
        &server,
        &["get", "cm", "settings", "-o", "jsonpath={.data}"],
    );
    assert_eq!(data, r#"{"size":"xl"}"#);
    let meta = ok(
        &server,
        &[
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.metadata.labels.tier} {.metadata.annotations.owner}",
        ],
    );
    assert_eq!(meta, "web ops");
    ok(&server, &["delete", "cm", "settings"]);
    let gone = server.kubectl(&["get", "cm", "settings"]);
    assert!(!gone.status.success());
    assert!(
        text(&gone).contains(r#"configmaps "settings" not found"#),
        "{}",
        text(&gone)
    );
}

#[test]
fn multi_document_manifest_creates_every_object() {
    let server = TestServer::start();
    let file = manifest(
        &server,
        "app.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
---
apiVersion: v1
kind: Secret
metadata:
  name: web
stringData:
  password: hunter2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  k: v
",
    );
    let out = ok(
        &server,
        &["create", "-f", file.to_str().expect("utf-8 path")],
    );
    for created in [
        "deployment.apps/web created",
        "service/web created",
        "secret/web created",
        "configmap/web created",
    ] {
        assert!(out.contains(created), "{out}");
    }
    let all = ok(&server, &["get", "all", "-o", "name"]);
    assert!(
        all.contains("deployment.apps/web") && all.contains("service/web"),
        "{all}"
    );
    ok(&server, &["scale", "deployment", "web", "--replicas=4"]);
    let replicas = ok(
        &server,
        &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"],
    );
    assert_eq!(replicas, "4");
}

#[test]
fn api_resources_lists_every_kind_with_short_names() {
    let server = TestServer::start();
    let out = ok(&server, &["api-resources"]);
    for (resource, short) in [
        ("configmaps", "cm"),
        ("deployments", "deploy"),
        ("horizontalpodautoscalers", "hpa"),
        ("customresourcedefinitions", "crd,crds"),
        ("poddisruptionbudgets", "pdb"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(resource) && l.contains(short)),
            "{resource} {short} missing:\n{out}"
        );
    }
    assert!(out.lines().count() >= 37, "{out}");
}

#[test]
fn a_watch_sees_another_clients_changes() {
    use std::io::BufRead;
    let server = TestServer::start();
    // A sentinel object shows when the watch is up, however slow the
    // machine is.
    ok(&server, &["create", "configmap", "sentinel"]);
    let mut watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .args(["get", "cm", "-w", "--output-watch-events"])
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubectl get -w");
    let stdout = watch.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let next_line = |seen: &mut Vec<String>| -> Option<String> {
        let line = rx.recv_timeout(Duration::from_secs(30)).ok()?;
        seen.push(line.clone());
        Some(line)
    };
    while let Some(line) = next_line(&mut seen) {
        if line.contains("sentinel") {
            break;
        }
    }
    let file = manifest(&server, "cm.yaml", CONFIGMAP);
    ok(
        &server,
        &["create", "-f", file.to_str().expect("utf-8 path")],
    );
    ok(&server, &["label", "cm", "settings", "seen=yes"]);
    ok(&server, &["delete", "cm", "settings"]);
    let mut events = Vec::new();
    while let Some(line) = next_line(&mut seen) {
        let mut words = line.split_whitespace();
        let (event, name) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if name == "settings" {
            events.push(event.to_string());
            if event == "DELETED" {
                break;
            }
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(events, ["ADDED", "MODIFIED", "DELETED"], "{seen:?}");
}

#[test]
fn two_updates_from_one_resource_version_conflict_once() {
    let server = TestServer::start();
    let file = manifest(&server, "cm.yaml", CONFIGMAP);
    ok(
        &server,
        &["create", "-f", file.to_str().expect("utf-8 path")],
    );
    let current = ok(&server, &["get", "cm", "settings", "-o", "yaml"]);
    let stale = manifest(
        &server,
        "stale.yaml",
        &current.replace("mode: fast", "mode: slow"),
    );
    let stale = stale.to_str().expect("utf-8 path");
    ok(&server, &["replace", "-f", stale]);
    let second = server.kubectl(&["replace", "-f", stale]);
    assert!(!second.status.success());
    assert!(
        text(&second).contains("the object has been modified; please apply your changes to the latest version and try again"),
        "{}",
        text(&second)
    );
}

#[test]
fn strict_validation_names_unknown_fields() {
    let server = TestServer::start();
    let file = manifest(
        &server,
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata:\n  a: b\nbogus: 1\n",
    );
    let out = server.kubectl(&["create", "-f", file.to_str().expect("utf-8 path")]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(r#"unknown field "bogus""#),
        "{}",
        text(&out)
    );
    let ok_without = server.kubectl(&[
        "create",
        "--validate=false",
        "-f",
        file.to_str().expect("utf-8 path"),
    ]);
    assert!(ok_without.status.success(), "{}", text(&ok_without));
}

/// kubectl's typed commands send protobuf bodies.
#[test]
fn typed_create_commands_send_protobuf_and_work() {
    let server = TestServer::start();
    ok(&server, &["create", "configmap", "c", "--from-literal=x=1"]);
    assert_eq!(
        ok(&server, &["get", "cm", "c", "-o", "jsonpath={.data.x}"]),
        "1"
    );
    ok(
        &server,
        &[
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=p=hunter2",
        ],
    );
    assert_eq!(
        ok(&server, &["get", "secret", "s", "-o", "jsonpath={.data.p}"]),
        "aHVudGVyMg=="
    );
    ok(&server, &["create", "namespace", "team"]);
    ok(
        &server,
        &["-n", "team", "create", "serviceaccount", "robot"],
    );
    ok(
        &server,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=2",
            "--port=80",
        ],
    );
    let deploy = ok(
        &server,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].ports[0].containerPort}",
        ],
    );
    assert_eq!(deploy, "2 80");
    ok(
        &server,
        &[
            "expose",
            "deployment",
            "web",
            "--port=8080",
            "--target-port=80",
        ],
    );
    let svc = ok(
        &server,
        &[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.selector.app}",
        ],
    );
    assert_eq!(svc, "8080 80 web");
    ok(
        &server,
        &[
            "run",
            "box",
            "--image=busybox",
            "--restart=Never",
            "--env=A=b",
            "--",
            "sleep",
            "10",
        ],
    );
    let pod = ok(
        &server,
        &[
            "get",
            "pod",
            "box",
            "-o",
            "jsonpath={.spec.containers[0].args} {.spec.containers[0].env[0].value}",
        ],
    );
    assert_eq!(pod, r#"["sleep","10"] b"#);
    ok(
        &server,
        &["create", "job", "j", "--image=busybox", "--", "echo", "hi"],
    );
    ok(
        &server,
        &[
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=pods",
        ],
    );
    ok(
        &server,
        &["create", "rolebinding", "rb", "--role=reader", "--user=bob"],
    );
    ok(&server, &["create", "quota", "q", "--hard=pods=10,cpu=2"]);
    let quota = ok(
        &server,
        &["get", "quota", "q", "-o", "jsonpath={.spec.hard.cpu}"],
    );
    assert_eq!(quota, "2");
}

#[test]
fn create_ingress_and_autoscale_send_protobuf_and_work() {
    let server = TestServer::start();
    ok(
        &server,
        &[
            "create",
            "ingress",
            "simple",
            "--class=default",
            "--rule=foo.com/bar*=svc1:8080,tls=my-cert",
            "--rule=/path=svc2:http",
        ],
    );
    let ingress = ok(
        &server,
        &[
            "get",
            "ingress",
            "simple",
            "-o",
            "jsonpath={.spec.ingressClassName} {.spec.rules[0].host} {.spec.rules[0].http.paths[0].path} {.spec.rules[0].http.paths[0].pathType} {.spec.rules[0].http.paths[0].backend.service.name}:{.spec.rules[0].http.paths[0].backend.service.port.number} {.spec.tls[0].secretName} {.spec.rules[1].http.paths[0].backend.service.port.name}",
        ],
    );
    assert_eq!(
        ingress,
        "default foo.com /bar Prefix svc1:8080 my-cert http"
    );

    ok(&server, &["create", "deployment", "web", "--image=nginx"]);
    ok(
        &server,
        &[
            "autoscale",
            "deployment",
            "web",
            "--min=2",
            "--max=5",
            "--cpu-percent=60",
        ],
    );
    let hpa = ok(
        &server,
        &[
            "get",
            "hpa.v2.autoscaling",
            "web",
            "-o",
            "jsonpath={.spec.scaleTargetRef.kind}/{.spec.scaleTargetRef.name} {.spec.minReplicas}-{.spec.maxReplicas} {.spec.metrics[0].resource.name}={.spec.metrics[0].resource.target.averageUtilization}",
        ],
    );
    assert_eq!(hpa, "Deployment/web 2-5 cpu=60");
}
