//! OpenAPI and field validation as the stock `kubectl` uses them:
//! `kubectl explain` (OpenAPI v3, and v2 protobuf), the hashed, immutable
//! v3 documents, and `fieldValidation` Strict / Warn / Ignore with unknown
//! and duplicate fields, against the real `skiff server`.

mod common;

use std::path::{Path, PathBuf};

use common::{TestServer, ok, text};

fn manifest(server: &TestServer, name: &str, body: &str) -> PathBuf {
    let path = server.dir.path().join(name);
    std::fs::write(&path, body).expect("write manifest");
    path
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A Deployment with one unknown field in its spec and a misspelled one in
/// its container.
const MISSPELLED: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  foo: bar
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: nginx
        imagePullPolcy: Always
";

#[test]
fn explain_prints_upstream_documentation() {
    let server = TestServer::start();

    let template = ok(&server, &["explain", "deployment.spec.template"]);
    assert!(template.contains("KIND:       Deployment"), "{template}");
    assert!(
        template.contains("FIELD: template <PodTemplateSpec>"),
        "{template}"
    );
    assert!(
        template.contains("Template describes the pods that will be created."),
        "{template}"
    );
    assert!(template.contains("FIELDS:"), "{template}");
    assert!(template.contains("  metadata\t<ObjectMeta>"), "{template}");
    assert!(template.contains("  spec\t<PodSpec>"), "{template}");

    let image = ok(&server, &["explain", "pod.spec.containers.image"]);
    assert!(image.contains("FIELD: image <string>"), "{image}");
    assert!(image.contains("Container image name."), "{image}");

    let ports = ok(&server, &["explain", "svc.spec.ports"]);
    assert!(ports.contains("FIELD: ports <[]ServicePort>"), "{ports}");
    assert!(ports.contains("  port\t<integer> -required-"), "{ports}");
    assert!(ports.contains("  targetPort\t<IntOrString>"), "{ports}");

    let recursive = ok(&server, &["explain", "pods", "--recursive"]);
    assert!(recursive.contains("KIND:       Pod"), "{recursive}");
    for field in [
        "containers\t<[]Container> -required-",
        "imagePullPolicy\t<string>",
        "nodeSelector\t<map[string]string>",
    ] {
        assert!(recursive.contains(field), "{field} missing:\n{recursive}");
    }
    // metadata is optional on kinds, as upstream's schemas say.
    assert!(
        recursive.contains("  metadata\t<ObjectMeta>\n"),
        "{recursive}"
    );
}

#[test]
fn explain_reads_the_v2_protobuf_document() {
    let server = TestServer::start();
    let out = server.kubectl(&[
        "explain",
        "--output=plaintext-openapiv2",
        "deployments.spec.strategy",
        "-v=8",
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
        "{all}"
    );
    assert!(
        all.contains("Content-Type: application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
        "{all}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("RESOURCE: strategy <Object>"), "{stdout}");
    assert!(stdout.contains("rollingUpdate\t<Object>"), "{stdout}");
    assert!(
        stdout.contains("Type of deployment. Can be \"Recreate\" or \"RollingUpdate\"."),
        "{stdout}"
    );
}

#[test]
fn v3_documents_are_hashed_and_immutable() {
    let server = TestServer::start();
    let index: serde_json::Value =
        serde_json::from_str(&ok(&server, &["get", "--raw", "/openapi/v3"])).expect("index json");
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 url")
        .to_string();
    assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");

    let out = server.kubectl(&["get", "--raw", &url, "-v=8"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("Cache-Control: public, immutable"), "{all}");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("apps/v1 document json");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"][0]["kind"],
        "Deployment"
    );
    assert!(schemas["io.k8s.api.apps.v1.DeploymentList"].is_object());
    assert!(schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"].is_object());
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert!(
        patch["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "fieldValidation")),
        "{patch}"
    );

    // A stale hash is sent to the current document.
    let stale = server.kubectl(&["get", "--raw", "/openapi/v3/apis/apps/v1?hash=0123", "-v=8"]);
    let all = text(&stale);
    assert!(all.contains("301 Moved Permanently"), "{all}");
    assert!(stale.status.success(), "{all}");
}

#[test]
fn strict_validation_rejects_unknown_fields_with_their_paths() {
    let server = TestServer::start();
    let file = manifest(&server, "web.yaml", MISSPELLED);
    let out = server.kubectl(&["create", "-f", path_str(&file)]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.foo", unknown field "spec.template.spec.containers[0].imagePullPolcy""#
        ),
        "{}",
        text(&out)
    );
    let missing = server.kubectl(&["get", "deployment", "web"]);
    assert!(!missing.status.success(), "{}", text(&missing));
}

#[test]
fn warn_validation_prints_warnings_and_prunes() {
    let server = TestServer::start();
    let file = manifest(&server, "web.yaml", MISSPELLED);
    let out = server.kubectl(&["apply", "--validate=warn", "-f", path_str(&file)]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"Warning: unknown field "spec.foo""#),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            r#"Warning: unknown field "spec.template.spec.containers[0].imagePullPolcy""#
        ),
        "{stderr}"
    );
    let stored = ok(&server, &["get", "deployment", "web", "-o", "json"]);
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("json");
    assert!(stored["spec"].get("foo").is_none(), "{stored}");
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    assert!(
        stored["spec"]["template"]["spec"]["containers"][0]
            .get("imagePullPolcy")
            .is_none(),
        "{stored}"
    );
}

#[test]
fn ignore_validation_stores_without_the_unknown_field() {
    let server = TestServer::start();
    let file = manifest(
        &server,
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: quiet\ndata:\n  a: b\nbogus: 1\n",
    );
    let out = server.kubectl(&["create", "--validate=false", "-f", path_str(&file)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("Warning"), "{}", text(&out));
    let stored = ok(&server, &["get", "configmap", "quiet", "-o", "json"]);
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("json");
    assert_eq!(stored["data"]["a"], "b");
    assert!(stored.get("bogus").is_none(), "{stored}");
}

#[test]
fn duplicate_keys_are_rejected_when_strict_and_warned_otherwise() {
    let server = TestServer::start();
    // kubectl collapses repeated keys of a manifest itself; `create --raw`
    // sends the file as written.
    let file = manifest(
        &server,
        "dup.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"first","name":"second"},"data":{"a":"1","a":"2"}}"#,
    );
    let strict = server.kubectl(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
        "-f",
        path_str(&file),
    ]);
    assert!(!strict.status.success(), "{}", text(&strict));
    assert!(
        text(&strict).contains(
            r#"strict decoding error: duplicate field "metadata.name", duplicate field "data.a""#
        ),
        "{}",
        text(&strict)
    );
    let warned = server.kubectl(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        path_str(&file),
    ]);
    assert!(warned.status.success(), "{}", text(&warned));
    assert!(
        text(&warned).contains(r#"Warning: duplicate field "metadata.name""#),
        "{}",
        text(&warned)
    );
    // The last value wins, as with upstream's decoder.
    assert_eq!(
        ok(
            &server,
            &["get", "cm", "second", "-o", "jsonpath={.data.a}"]
        ),
        "2"
    );
}
