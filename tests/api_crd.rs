//! Custom resources served from CustomResourceDefinitions, driven by the
//! stock kubectl against a real `skiff server`: establishing, CRUD in both
//! scopes, schema validation, pruning and defaulting, the status and scale
//! subresources, printer columns, several versions, deleting the CRD and
//! serving again after a restart.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{TestServer, eventually, try_eventually};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

fn kubectl_ok(server: &TestServer, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}\nserver log tail:\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&server.log())
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl_err(server: &TestServer, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(
        !out.status.success(),
        "kubectl {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
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

const WIDGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.selector}
    additionalPrinterColumns:
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Image, type: string, jsonPath: .spec.image}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [image]
            properties:
              image: {type: string, minLength: 2}
              replicas: {type: integer, minimum: 0, default: 1}
              mode: {type: string, enum: [fast, slow]}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

const GADGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {plural: gadgets, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

const WIDGET: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {image: nginx, colour: red}
"#;

fn establish(server: &TestServer, file: &str, name: &str) {
    kubectl_ok(server, &["apply", "-f", file]);
    kubectl_ok(
        server,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=20s",
            &format!("crd/{name}"),
        ],
    );
}

#[test]
fn custom_resources_are_served_validated_and_cleaned_up() {
    let mut server = TestServer::start();
    let crd_file = write(&server, "widgets.yaml", WIDGETS);
    establish(&server, &crd_file, "widgets.example.com");

    let crd = get_json(&server, &["crd", "widgets.example.com"]);
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Widget");
    assert_eq!(crd["status"]["storedVersions"], serde_json::json!(["v1"]));
    let conditions = crd["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "NamesAccepted" && c["status"] == "True")
    );

    // Discovery lists the kind with its short name and subresources.
    let resources = kubectl_ok(&server, &["api-resources", "--api-group=example.com"]);
    assert!(
        resources.contains("widgets") && resources.contains("wd"),
        "{resources}"
    );

    // Strict field validation names the unknown field; without it the
    // field is pruned and the default filled in.
    let widget = write(&server, "w1.yaml", WIDGET);
    let err = kubectl_err(&server, &["create", "-f", &widget]);
    assert!(err.contains("unknown field \"spec.colour\""), "{err}");
    kubectl_ok(&server, &["create", "--validate=false", "-f", &widget]);
    let w = get_json(&server, &["widget", "w1"]);
    assert_eq!(w["spec"]["image"], "nginx");
    assert_eq!(w["spec"]["replicas"], 1);
    assert!(w["spec"].get("colour").is_none(), "{w}");
    assert_eq!(w["metadata"]["generation"], 1);

    // kubectl explain reads the schema from OpenAPI v3.
    let explained = kubectl_ok(&server, &["explain", "widgets.spec"]);
    assert!(
        explained.contains("replicas") && explained.contains("<integer>"),
        "{explained}"
    );
    // ... and from OpenAPI v2, where the custom kind joins the built-ins.
    let explained = kubectl_ok(
        &server,
        &["explain", "widgets.spec", "--output=plaintext-openapiv2"],
    );
    assert!(explained.contains("replicas"), "{explained}");
    let pods = kubectl_ok(&server, &["explain", "pods.spec.restartPolicy"]);
    assert!(pods.contains("restartPolicy"), "{pods}");
    // Warn keeps the object and reports the pruned field.
    let warned = write(&server, "w9.yaml", &WIDGET.replace("name: w1", "name: w9"));
    let out = server.kubectl(&["create", "--validate=warn", "-f", &warned]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field \"spec.colour\""), "{stderr}");
    kubectl_ok(&server, &["delete", "widget", "w9"]);
    // Repeated keys are named too (`create --raw` sends the body as
    // written; kubectl would collapse them).
    let dup = write(
        &server,
        "dup.json",
        r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"d1","name":"d2"},"spec":{"image":"a","image":"b"}}"#,
    );
    let err = kubectl_err(
        &server,
        &[
            "create",
            "--raw",
            "/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Strict",
            "-f",
            &dup,
        ],
    );
    assert!(
        err.contains(r#"duplicate field "metadata.name", duplicate field "spec.image""#),
        "{err}"
    );

    // Printer columns.
    let table = kubectl_ok(&server, &["get", "wd"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "REPLICAS", "IMAGE"], "{table}");
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(row, vec!["w1", "1", "nginx"], "{table}");

    // Schema violations are 422 with upstream's messages.
    let bad = write(
        &server,
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {image: nginx, replicas: three, mode: warp}\n",
    );
    let err = kubectl_err(&server, &["create", "-f", &bad]);
    assert!(
        err.contains("spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""),
        "{err}"
    );
    assert!(
        err.contains(
            "spec.mode: Unsupported value: \"warp\": supported values: \"fast\", \"slow\""
        ),
        "{err}"
    );
    let err = kubectl_err(
        &server,
        &[
            "patch",
            "widget",
            "w1",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":-1}}"#,
        ],
    );
    assert!(
        err.contains("spec.replicas in body should be greater than or equal to 0"),
        "{err}"
    );

    // Main writes ignore status; /status writes only status.
    kubectl_ok(
        &server,
        &[
            "patch",
            "widget",
            "w1",
            "--type=merge",
            "-p",
            r#"{"status":{"replicas":7}}"#,
        ],
    );
    assert!(get_json(&server, &["widget", "w1"])["status"]["replicas"].is_null());
    kubectl_ok(
        &server,
        &[
            "patch",
            "widget",
            "w1",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"spec":{"image":"other"},"status":{"replicas":2,"selector":"app=w"}}"#,
        ],
    );
    let w = get_json(&server, &["widget", "w1"]);
    assert_eq!(w["status"]["replicas"], 2);
    assert_eq!(w["spec"]["image"], "nginx");
    assert_eq!(w["metadata"]["generation"], 1);

    // Scale, and generation bumps on the spec change.
    kubectl_ok(&server, &["scale", "widget", "w1", "--replicas=3"]);
    let w = get_json(&server, &["widget", "w1"]);
    assert_eq!(w["spec"]["replicas"], 3);
    assert_eq!(w["metadata"]["generation"], 2);
    let scale: Value = serde_json::from_str(&kubectl_ok(
        &server,
        &[
            "get",
            "--raw",
            "/apis/example.com/v1/namespaces/default/widgets/w1/scale",
        ],
    ))
    .unwrap_or(Value::Null);
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=w");

    // Strategic merge patch is not for custom resources; JSON patch is.
    let err = kubectl_err(
        &server,
        &["patch", "widget", "w1", "-p", r#"{"spec":{"image":"x"}}"#],
    );
    assert!(err.contains("strategic-merge-patch"), "{err}");
    kubectl_ok(
        &server,
        &[
            "patch",
            "widget",
            "w1",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/image","value":"redis"}]"#,
        ],
    );

    // The other version serves the same objects under its apiVersion.
    let beta = get_json(&server, &["widgets.v1beta1.example.com", "w1"]);
    assert_eq!(beta["apiVersion"], "example.com/v1beta1");
    assert_eq!(beta["spec"]["image"], "redis");

    // Client-side apply and server-side apply; managed fields recorded.
    let applied = write(
        &server,
        "w2.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {image: busybox, replicas: 2}\n",
    );
    kubectl_ok(&server, &["apply", "-f", &applied]);
    std::fs::write(
        &applied,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {image: busybox, replicas: 4}\n",
    )
    .expect("rewrite a manifest");
    kubectl_ok(&server, &["apply", "-f", &applied]);
    assert_eq!(get_json(&server, &["widget", "w2"])["spec"]["replicas"], 4);
    kubectl_ok(
        &server,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &applied,
        ],
    );
    let w2 = get_json(&server, &["widget", "w2", "--show-managed-fields"]);
    let managers: Vec<&str> = w2["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"kubectl"), "{managers:?}");

    let listed = get_json(&server, &["widgets"]);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(2));

    // Watches see changes (kubectl wait watches the object).
    let mut wait = std::process::Command::new("kubectl");
    wait.arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .args([
            "wait",
            "--for=jsonpath={.spec.image}=watched",
            "--timeout=20s",
            "widget/w2",
        ])
        .env_remove("KUBECONFIG");
    let waiter = std::thread::spawn(move || wait.output());
    std::thread::sleep(Duration::from_secs(1));
    kubectl_ok(
        &server,
        &[
            "patch",
            "widget",
            "w2",
            "--type=merge",
            "-p",
            r#"{"spec":{"image":"watched"}}"#,
        ],
    );
    let waited = waiter
        .join()
        .ok()
        .and_then(Result::ok)
        .map(|o| o.status.success());
    assert_eq!(waited, Some(true));

    // Objects in a deleted namespace go with it.
    kubectl_ok(&server, &["create", "namespace", "team"]);
    kubectl_ok(&server, &["create", "-n", "team", "-f", &applied]);
    kubectl_ok(&server, &["delete", "namespace", "team", "--timeout=30s"]);
    let err = kubectl_err(&server, &["get", "-n", "team", "widget", "w2"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    // A cluster-scoped kind.
    let gadgets = write(&server, "gadgets.yaml", GADGETS);
    establish(&server, &gadgets, "gadgets.example.com");
    let gadget = write(
        &server,
        "g.yaml",
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {anything: [1, 2]}\n",
    );
    kubectl_ok(&server, &["create", "-f", &gadget]);
    let g = get_json(&server, &["gadget", "g1"]);
    assert!(g["metadata"].get("namespace").is_none());
    assert_eq!(g["spec"]["anything"], serde_json::json!([1, 2]));
    let table = kubectl_ok(&server, &["get", "gadgets"]);
    assert!(
        table.starts_with("NAME") && table.contains("AGE") && table.contains("g1"),
        "{table}"
    );

    // A CRD whose names another CRD of the group has is not established
    // (its singular, defaulted from the kind, is the first conflict).
    let clash = write(
        &server,
        "clash.yaml",
        &GADGETS
            .replace("gadgets", "doohickeys")
            .replace("kind: Gadget", "kind: Widget"),
    );
    kubectl_ok(&server, &["apply", "-f", &clash]);
    let names_accepted = eventually(DEADLINE, "the naming conflict is reported", || {
        let crd = get_json(&server, &["crd", "doohickeys.example.com"]);
        crd["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "NamesAccepted").cloned())
    });
    assert_eq!(names_accepted["status"], "False");
    assert_eq!(names_accepted["reason"], "SingularConflict");
    assert_eq!(names_accepted["message"], "\"widget\" is already in use");
    kubectl_err(&server, &["get", "doohickeys"]);
    kubectl_ok(&server, &["delete", "crd", "doohickeys.example.com"]);

    // After a restart the kinds are served at once.
    server.restart_with(&[]);
    assert_eq!(get_json(&server, &["widget", "w1"])["spec"]["replicas"], 3);
    kubectl_ok(&server, &["get", "gadget", "g1"]);

    // Deleting the CRD deletes its objects, then the CRD; an object's own
    // finalizer holds it, and creates are refused meanwhile.
    kubectl_ok(
        &server,
        &[
            "patch",
            "widget",
            "w1",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        ],
    );
    kubectl_ok(
        &server,
        &["delete", "crd", "widgets.example.com", "--wait=false"],
    );
    eventually(DEADLINE, "w2 is deleted with its CRD", || {
        let out = server.kubectl(&["get", "widget", "w2"]);
        (!out.status.success()).then_some(())
    });
    let w1 = get_json(&server, &["widget", "w1"]);
    assert!(w1["metadata"]["deletionTimestamp"].is_string(), "{w1}");
    let crd = get_json(&server, &["crd", "widgets.example.com"]);
    let terminating = crd["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Terminating").cloned())
        .unwrap_or_default();
    assert_eq!(terminating["reason"], "InstanceDeletionInProgress", "{crd}");
    let finalizers = crd["metadata"]["finalizers"].clone();
    assert_eq!(
        finalizers,
        serde_json::json!(["customresourcecleanup.apiextensions.k8s.io"])
    );
    let err = kubectl_err(&server, &["create", "-f", &applied]);
    assert!(
        err.contains("create not allowed while custom resource definition is terminating"),
        "{err}"
    );
    kubectl_ok(
        &server,
        &[
            "patch",
            "widget",
            "w1",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
    );
    eventually(DEADLINE, "the CRD is gone", || {
        let out = server.kubectl(&["get", "crd", "widgets.example.com"]);
        (!out.status.success()).then_some(())
    });
    let err = kubectl_err(&server, &["get", "widgets"]);
    // (kubectl may still have the kind in its discovery cache.)
    assert!(
        err.contains("the server doesn't have a resource type")
            || err.contains("the server could not find the requested resource"),
        "{err}"
    );
    establish(&server, &crd_file, "widgets.example.com");
    let listed = try_eventually(DEADLINE, || {
        let out = server.kubectl(&["get", "widgets", "-o", "json"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .expect("widgets are served again");
    let listed: Value = serde_json::from_str(&listed).unwrap_or(Value::Null);
    assert_eq!(
        listed["items"],
        serde_json::json!([]),
        "objects outlived their CRD"
    );
}
