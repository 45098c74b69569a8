//! Server-side apply and managed fields as the stock kubectl drives them:
//! `kubectl apply --server-side` creates and merges, two managers conflict
//! over a field, `--force-conflicts` takes it, fields a manager stops
//! applying are removed, and ordinary writes record `Update` ownership.

mod common;

use std::process::Output;

use common::{TestServer, ok, text};
use serde_json::Value;

fn deployment(replicas: u32, annotation: Option<&str>) -> String {
    let annotations = match annotation {
        Some(a) => format!("\n  annotations:\n    note: {a}"),
        None => String::new(),
    };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web{annotations}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: docker.io/skiff/pause:3.10
"
    )
}

fn apply(server: &TestServer, file: &str, body: &str, extra: &[&str]) -> Output {
    let path = server.dir.path().join(file);
    std::fs::write(&path, body).expect("write manifest");
    let mut args = vec![
        "apply",
        "--server-side",
        "-f",
        path.to_str().expect("utf-8 path"),
    ];
    args.extend(extra);
    server.kubectl(&args)
}

fn managed(server: &TestServer) -> Vec<Value> {
    let out = ok(
        server,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    );
    let obj: Value = serde_json::from_str(&out).expect("json");
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn two_managers_conflict_and_force_takes_the_field() {
    let server = TestServer::start();
    let out = apply(&server, "a.yaml", &deployment(1, Some("first")), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("deployment.apps/web serverside-applied"),
        "{}",
        text(&out)
    );
    let entries = managed(&server);
    let kubectl = entries
        .iter()
        .find(|e| e["manager"] == "kubectl" && e["operation"] == "Apply")
        .expect("an Apply entry for kubectl");
    assert_eq!(kubectl["apiVersion"], "apps/v1");
    assert_eq!(kubectl["fieldsType"], "FieldsV1");
    assert!(kubectl["fieldsV1"]["f:spec"]["f:replicas"].is_object());
    assert!(
        kubectl["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:image"]
            .is_object()
    );

    // Another manager wants a different replica count: a conflict.
    let out = apply(
        &server,
        "b.yaml",
        &deployment(3, Some("first")),
        &["--field-manager=other"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains(
            "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
        ),
        "{}",
        text(&out)
    );
    assert_eq!(
        ok(
            &server,
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]
        ),
        "1"
    );

    // Forced, it takes the field.
    let out = apply(
        &server,
        "b.yaml",
        &deployment(3, Some("first")),
        &["--field-manager=other", "--force-conflicts"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        ok(
            &server,
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]
        ),
        "3"
    );
    let entries = managed(&server);
    let owns_replicas = |manager: &str| {
        entries
            .iter()
            .any(|e| e["manager"] == manager && e["fieldsV1"]["f:spec"]["f:replicas"].is_object())
    };
    assert!(owns_replicas("other"));
    assert!(!owns_replicas("kubectl"));

    // The annotation is shared (both applied the same value): changing it
    // conflicts too. A forced dry run changes nothing.
    let out = apply(&server, "c.yaml", &deployment(3, Some("dry")), &[]);
    assert!(
        text(&out).contains("conflict with \"other\" using apps/v1: .metadata.annotations.note"),
        "{}",
        text(&out)
    );
    let out = apply(
        &server,
        "c.yaml",
        &deployment(3, Some("dry")),
        &["--dry-run=server", "--force-conflicts"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        ok(
            &server,
            &[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.metadata.annotations.note}"
            ]
        ),
        "first"
    );
}

#[test]
fn fields_a_manager_stops_applying_are_removed() {
    let server = TestServer::start();
    let out = apply(&server, "a.yaml", &deployment(2, Some("keep-me")), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = apply(&server, "a.yaml", &deployment(2, None), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let note = ok(
        &server,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.annotations}",
        ],
    );
    assert!(!note.contains("keep-me"), "the annotation is gone: {note}");
    // Fields set by other writers survive a re-apply that does not name them.
    ok(&server, &["label", "deployment", "web", "team=blue"]);
    let out = apply(&server, "a.yaml", &deployment(2, None), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        ok(
            &server,
            &[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.metadata.labels.team}"
            ]
        ),
        "blue"
    );
    let entries = managed(&server);
    assert!(
        entries
            .iter()
            .any(|e| e["manager"] == "kubectl-label" && e["operation"] == "Update"),
        "{entries:?}"
    );
}

#[test]
fn creates_record_update_ownership_and_apply_needs_a_manager() {
    let server = TestServer::start();
    ok(
        &server,
        &["create", "configmap", "plain", "--from-literal=a=1"],
    );
    let out = ok(
        &server,
        &["get", "cm", "plain", "-o", "json", "--show-managed-fields"],
    );
    let obj: Value = serde_json::from_str(&out).expect("json");
    let entry = &obj["metadata"]["managedFields"][0];
    assert_eq!(entry["manager"], "kubectl-create");
    assert_eq!(entry["operation"], "Update");
    assert!(entry["fieldsV1"]["f:data"]["f:a"].is_object());
    // kubectl hides managed fields unless asked.
    let out = ok(&server, &["get", "cm", "plain", "-o", "json"]);
    assert!(!out.contains("managedFields"));
}
