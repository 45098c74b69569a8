//! Router-level tests: real requests through [`ApiServer::router`] over a
//! store, asserting what a client sees (status codes, bodies, watch events).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{ApiConfig, ApiServer};
use crate::store::Backend;

/// The requests of these tests come from a cluster admin (the admin
/// kubeconfig's identity), so authorization never stands in their way.
fn admin() -> crate::auth::UserInfo {
    crate::auth::UserInfo {
        username: "system:admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        ..Default::default()
    }
}

struct Harness {
    router: Router,
    store: Arc<dyn Backend>,
    _dir: tempfile::TempDir,
}

fn config() -> ApiConfig {
    ApiConfig {
        cluster_cidr: "10.42.0.0/16".parse().unwrap_or_else(|_| unreachable!()),
        service_cidr: "10.43.0.0/16".parse().unwrap_or_else(|_| unreachable!()),
        cluster_dns: "10.43.0.10".parse().unwrap_or_else(|_| unreachable!()),
        cluster_domain: "cluster.local".into(),
        service_node_port_range: (30000, 32767),
        advertise_address: "192.0.2.10".parse().unwrap_or_else(|_| unreachable!()),
        https_port: 6443,
    }
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let store = crate::store::open(None, dir.path())
        .await
        .unwrap_or_else(|e| panic!("store opens: {e}"));
    let api = match ApiServer::new(Arc::clone(&store), config()).await {
        Ok(api) => api,
        Err(e) => panic!("api server starts: {e}"),
    };
    Harness {
        router: api.router(),
        store,
        _dir: dir,
    }
}

impl Harness {
    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .extension(admin())
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap_or_else(|e| panic!("request: {e}"));
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        let status = resp.status();
        let bytes = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => panic!("body: {e}"),
        };
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.send(method, path, "application/json", bytes).await
    }

    /// Opens a watch and returns its event lines as they come.
    async fn watch(&self, path: &str) -> tokio::sync::mpsc::Receiver<Value> {
        self.watch_accepting(path, "application/json").await
    }

    /// Opens a watch asking for `accept` (a Table, say).
    async fn watch_accepting(
        &self,
        path: &str,
        accept: &str,
    ) -> tokio::sync::mpsc::Receiver<Value> {
        let req = Request::get(path)
            .header(header::ACCEPT, accept)
            .extension(admin())
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("request: {e}"));
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        assert_eq!(resp.status(), StatusCode::OK);
        let (tx, rx) = tokio::sync::mpsc::channel(100);
        let mut body = resp.into_body();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                        if tx.send(v).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        rx
    }
}

async fn next_event(rx: &mut tokio::sync::mpsc::Receiver<Value>) -> Value {
    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(v)) => v,
        other => panic!("no watch event: {other:?}"),
    }
}

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn bootstrap_objects_exist_and_restart_is_idempotent() {
    let h = harness().await;
    let (s, list) = h.call("GET", "/api/v1/namespaces", None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = list["items"]
        .as_array()
        .map(|i| {
            i.iter()
                .filter_map(|n| n["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        names,
        vec!["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    assert!(
        list["items"][0].get("kind").is_none(),
        "list items carry no kind"
    );
    let (_, svc) = h
        .call(
            "GET",
            "/api/v1/namespaces/default/services/kubernetes",
            None,
        )
        .await;
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.1");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 6443);
    let (_, ep) = h
        .call(
            "GET",
            "/api/v1/namespaces/default/endpoints/kubernetes",
            None,
        )
        .await;
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "192.0.2.10");
    assert!(ApiServer::new(Arc::clone(&h.store), config()).await.is_ok());
}

#[tokio::test]
async fn a_loopback_advertise_address_starts_without_kubernetes_endpoints() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let store = crate::store::open(None, dir.path())
        .await
        .unwrap_or_else(|e| panic!("store opens: {e}"));
    let mut loopback = config();
    loopback.advertise_address = "127.0.0.1".parse().unwrap_or_else(|_| unreachable!());
    let api = match ApiServer::new(Arc::clone(&store), loopback).await {
        Ok(api) => api,
        Err(e) => panic!("a loopback advertise address must not stop the server: {e}"),
    };
    let h = Harness {
        router: api.router(),
        store,
        _dir: dir,
    };
    let (s, _) = h
        .call(
            "GET",
            "/api/v1/namespaces/default/services/kubernetes",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h
        .call(
            "GET",
            "/api/v1/namespaces/default/endpoints/kubernetes",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn configmap_lifecycle_with_upstream_errors() {
    let h = harness().await;
    let (s, created) = h.call("POST", CMS, Some(cm("a"))).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert!(created["metadata"]["uid"].is_string());
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(rv.parse::<i64>().is_ok());
    let (s, err) = h.call("POST", CMS, Some(cm("a"))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(err["reason"], "AlreadyExists");
    assert_eq!(err["message"], "configmaps \"a\" already exists");
    let mut update = created.clone();
    update["data"]["k"] = json!("w");
    let (s, _) = h
        .call("PUT", &format!("{CMS}/a"), Some(update.clone()))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, err) = h.call("PUT", &format!("{CMS}/a"), Some(update)).await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a second PUT from the same resourceVersion conflicts"
    );
    assert_eq!(
        err["message"],
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let (s, del) = h.call("DELETE", &format!("{CMS}/a"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(del["status"], "Success");
    let (s, err) = h.call("GET", &format!("{CMS}/a"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(err["message"], "configmaps \"a\" not found");
}

#[tokio::test]
async fn create_checks_names_namespaces_and_types() {
    let h = harness().await;
    let (s, err) = h
        .call("POST", "/api/v1/namespaces/nope/configmaps", Some(cm("a")))
        .await;
    assert_eq!(
        (s, err["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("namespaces \"nope\" not found"))
    );
    let (s, err) = h.call("POST", CMS, Some(cm("Bad_Name"))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["details"]["causes"][0]["field"], "metadata.name");
    let mut wrong = cm("a");
    wrong["apiVersion"] = json!("apps/v1");
    assert_eq!(
        h.call("POST", CMS, Some(wrong)).await.0,
        StatusCode::BAD_REQUEST
    );
    let mut other_ns = cm("a");
    other_ns["metadata"]["namespace"] = json!("kube-system");
    assert_eq!(
        h.call("POST", CMS, Some(other_ns)).await.0,
        StatusCode::BAD_REQUEST
    );
    let generated = json!({"metadata": {"generateName": "web-"}});
    let (s, obj) = h.call("POST", CMS, Some(generated)).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(
        obj["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.len() == 9 && n.starts_with("web-"))
    );
    let (s, _) = h
        .send(
            "POST",
            CMS,
            "application/yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\n".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        h.send("POST", CMS, "application/json", b"{nope".to_vec())
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let huge = vec![b' '; 4 * 1024 * 1024];
    assert_eq!(
        h.send("POST", CMS, "application/json", huge).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let (s, _) = h
        .call("POST", &format!("{CMS}?dryRun=All"), Some(cm("dry")))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        h.call("GET", &format!("{CMS}/dry"), None).await.0,
        StatusCode::NOT_FOUND
    );
    let mut strict = cm("strict");
    strict["bogus"] = json!(1);
    let (s, err) = h
        .call(
            "POST",
            &format!("{CMS}?fieldValidation=Strict"),
            Some(strict),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        err["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"bogus\""
    );
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let h = harness().await;
    assert_eq!(
        h.call("GET", "/api/v1/frobs", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.call("GET", "/apis/nope/v1", None).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, err) = h.call("PATCH", CMS, None).await;
    assert_eq!(
        (s, err["reason"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("MethodNotAllowed"))
    );
    let (s, body) = h.call("GET", "/version", None).await;
    assert_eq!((s, body["minor"].as_str()), (StatusCode::OK, Some("33")));
    assert_eq!(h.call("GET", "/readyz", None).await.1, "ok");
}

#[tokio::test]
async fn patches_merge_json_and_strategic() {
    let h = harness().await;
    h.call("POST", CMS, Some(cm("p"))).await;
    let path = format!("{CMS}/p");
    let (s, obj) = h
        .send(
            "PATCH",
            &path,
            "application/merge-patch+json",
            br#"{"metadata":{"labels":{"a":"b"}}}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (s, &obj["metadata"]["labels"]["a"]),
        (StatusCode::OK, &json!("b"))
    );
    let (s, obj) = h
        .send(
            "PATCH",
            &path,
            "application/json-patch+json",
            br#"[{"op":"add","path":"/data/x","value":"y"}]"#.to_vec(),
        )
        .await;
    assert_eq!((s, &obj["data"]["x"]), (StatusCode::OK, &json!("y")));
    let (s, obj) = h
        .send(
            "PATCH",
            &path,
            "application/strategic-merge-patch+json",
            br#"{"metadata":{"labels":{"a":null,"c":"d"}}}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (s, &obj["metadata"]["labels"]),
        (StatusCode::OK, &json!({"c": "d"}))
    );
    let (s, _) = h
        .send(
            "PATCH",
            &path,
            "application/x-unknown-patch",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _) = h
        .send(
            "PATCH",
            &path,
            "application/merge-patch+json",
            br#"{"metadata":{"resourceVersion":"1"}}"#.to_vec(),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a patch pinning an old resourceVersion conflicts"
    );
}

#[tokio::test]
async fn lists_page_with_continue_tokens_and_selectors() {
    let h = harness().await;
    for i in 0..5 {
        let mut obj = cm(&format!("c{i}"));
        obj["metadata"]["labels"] = json!({"parity": if i % 2 == 0 { "even" } else { "odd" }});
        h.call("POST", CMS, Some(obj)).await;
    }
    let (_, page) = h.call("GET", &format!("{CMS}?limit=2"), None).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["metadata"]["remainingItemCount"], 3);
    let token = page["metadata"]["continue"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let (_, next) = h
        .call("GET", &format!("{CMS}?limit=2&continue={token}"), None)
        .await;
    assert_eq!(next["items"][0]["metadata"]["name"], "c2");
    let (_, even) = h
        .call("GET", &format!("{CMS}?labelSelector=parity%3Deven"), None)
        .await;
    assert_eq!(even["items"].as_array().map(Vec::len), Some(3));
    // resourceVersion=0 reads the watch cache, which may lag a moment.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, named) = h
        .call(
            "GET",
            &format!("{CMS}?fieldSelector=metadata.name%3Dc1&resourceVersion=0"),
            None,
        )
        .await;
    assert_eq!(named["items"].as_array().map(Vec::len), Some(1));
    let (s, _) = h
        .call("GET", &format!("{CMS}?labelSelector=a%20b"), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, all) = h.call("GET", "/api/v1/configmaps", None).await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(5));
    h.call("POST", CMS, Some(cm("later"))).await;
    let current = h.store.current_revision().await.unwrap_or(0);
    let _ = h.store.compact(current).await;
    let (s, err) = h
        .call("GET", &format!("{CMS}?limit=2&continue={token}"), None)
        .await;
    assert_eq!(
        (s, err["reason"].as_str()),
        (StatusCode::GONE, Some("Expired"))
    );
}

#[tokio::test]
async fn watch_sees_changes_and_selector_transitions() {
    let h = harness().await;
    let (_, list) = h.call("GET", CMS, None).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let mut all = h
        .watch(&format!("{CMS}?watch=true&resourceVersion={rv}"))
        .await;
    let mut labelled = h
        .watch(&format!(
            "{CMS}?watch=true&resourceVersion={rv}&labelSelector=app%3Dweb"
        ))
        .await;
    h.call("POST", CMS, Some(cm("w"))).await;
    h.send(
        "PATCH",
        &format!("{CMS}/w"),
        "application/merge-patch+json",
        br#"{"metadata":{"labels":{"app":"web"}}}"#.to_vec(),
    )
    .await;
    h.send(
        "PATCH",
        &format!("{CMS}/w"),
        "application/merge-patch+json",
        br#"{"metadata":{"labels":{"app":null}}}"#.to_vec(),
    )
    .await;
    h.call("DELETE", &format!("{CMS}/w"), None).await;
    let mut types = Vec::new();
    for _ in 0..4 {
        let e = next_event(&mut all).await;
        assert_eq!(e["object"]["kind"], "ConfigMap");
        types.push(e["type"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(types, ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]);
    assert_eq!(next_event(&mut labelled).await["type"], "ADDED");
    assert_eq!(next_event(&mut labelled).await["type"], "DELETED");
    let mut initial = h
        .watch(&format!("{CMS}?watch=true&resourceVersion=0"))
        .await;
    h.call("POST", CMS, Some(cm("x"))).await;
    let e = next_event(&mut initial).await;
    assert_eq!(
        (e["type"].as_str(), e["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("x"))
    );
}

#[tokio::test]
async fn status_and_scale_subresources() {
    let h = harness().await;
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}, "status": {"replicas": 7}});
    let (s, created) = h.call("POST", deploys, Some(d)).await;
    assert_eq!(s, StatusCode::CREATED);
    let mut status = created.clone();
    status["status"] = json!({"replicas": 1});
    status["spec"]["replicas"] = json!(5);
    let (s, after) = h
        .call("PUT", &format!("{deploys}/d/status"), Some(status))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            after["status"]["replicas"].as_i64(),
            after["spec"]["replicas"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let (s, scale) = h
        .send(
            "PATCH",
            &format!("{deploys}/d/scale"),
            "application/merge-patch+json",
            br#"{"spec":{"replicas":3}}"#.to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{scale}");
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(3))
    );
    assert_eq!(scale["status"]["selector"], "app=d");
    let (_, got) = h.call("GET", &format!("{deploys}/d"), None).await;
    assert_eq!(
        (
            got["spec"]["replicas"].as_i64(),
            got["status"]["replicas"].as_i64()
        ),
        (Some(3), Some(1))
    );
}

#[tokio::test]
async fn binding_eviction_and_finalizers() {
    let h = harness().await;
    // Pods need their service account (the controller's job in a server).
    let sa = json!({"metadata": {"name": "default"}});
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts",
            Some(sa),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let pods = "/api/v1/namespaces/default/pods";
    let pod = json!({"metadata": {"name": "p", "labels": {"app": "p"}, "finalizers": ["example.com/hold"]}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    let (s, created) = h.call("POST", pods, Some(pod)).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
    let (s, bound) = h
        .call("POST", &format!("{pods}/p/binding"), Some(binding.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bound}");
    let (_, bound) = h.call("GET", &format!("{pods}/p"), None).await;
    assert_eq!(bound["spec"]["nodeName"], "n1");
    assert_eq!(
        h.call("POST", &format!("{pods}/p/binding"), Some(binding))
            .await
            .0,
        StatusCode::CONFLICT
    );
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b"}, "spec": {"selector": {"matchLabels": {"app": "p"}}}});
    h.call(
        "POST",
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        Some(pdb),
    )
    .await;
    // Pending pods are evicted regardless of budgets; a running one is
    // guarded, here by a budget whose status is not yet computed.
    h.send(
        "PATCH",
        &format!("{pods}/p/status"),
        "application/merge-patch+json",
        br#"{"status":{"phase":"Running"}}"#.to_vec(),
    )
    .await;
    let eviction =
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"}});
    assert_eq!(
        h.call("POST", &format!("{pods}/p/eviction"), Some(eviction))
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let (s, marked) = h
        .call("DELETE", &format!("{pods}/p?gracePeriodSeconds=0"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "finalizers hold the pod: {marked}"
    );
    assert_eq!(
        h.call("GET", &format!("{pods}/p"), None).await.0,
        StatusCode::OK
    );
    h.send(
        "PATCH",
        &format!("{pods}/p"),
        "application/merge-patch+json",
        br#"{"metadata":{"finalizers":null}}"#.to_vec(),
    )
    .await;
    assert_eq!(
        h.call("GET", &format!("{pods}/p"), None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn namespaces_terminate_and_go_once_finalized() {
    let h = harness().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}});
    assert_eq!(
        h.call("POST", "/api/v1/namespaces", Some(ns)).await.0,
        StatusCode::CREATED
    );
    let (s, ns) = h.call("DELETE", "/api/v1/namespaces/t", None).await;
    assert_eq!(
        (s, ns["status"]["phase"].as_str()),
        (StatusCode::OK, Some("Terminating"))
    );
    let (s, again) = h.call("DELETE", "/api/v1/namespaces/t", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{again}");
    // A status write leaves a namespace still holding `kubernetes` alone.
    let mut status = ns.clone();
    status["status"]["conditions"] =
        json!([{"type": "NamespaceContentRemaining", "status": "False"}]);
    let (s, _) = h
        .call("PUT", "/api/v1/namespaces/t/status", Some(status))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        h.call("GET", "/api/v1/namespaces/t", None).await.0,
        StatusCode::OK
    );
    let mut bad = ns.clone();
    bad["spec"]["finalizers"] = json!(["not qualified"]);
    let (s, _) = h
        .call("PUT", "/api/v1/namespaces/t/finalize", Some(bad))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let mut done = ns.clone();
    done["spec"]["finalizers"] = json!([]);
    if let Some(m) = done["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    let (s, body) = h
        .call("PUT", "/api/v1/namespaces/t/finalize", Some(done))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        h.call("GET", "/api/v1/namespaces/t", None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn put_creates_leases_but_not_configmaps() {
    let h = harness().await;
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}});
    let leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
    let (s, body) = h.call("PUT", &format!("{leases}/l"), Some(lease)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, _) = h
        .call("PUT", &format!("{CMS}/nope"), Some(cm("nope")))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn system_namespaces_cannot_be_deleted() {
    let h = harness().await;
    let (s, err) = h
        .call("DELETE", "/api/v1/namespaces/kube-system", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        err["message"],
        "namespaces \"kube-system\" is forbidden: this namespace may not be deleted"
    );
}

#[tokio::test]
async fn a_watch_from_before_a_restart_is_expired() {
    let h = harness().await;
    h.call("POST", CMS, Some(cm("old"))).await;
    let restarted = match ApiServer::new(Arc::clone(&h.store), config()).await {
        Ok(api) => api.router(),
        Err(e) => panic!("restart: {e}"),
    };
    let h2 = Harness {
        router: restarted,
        store: Arc::clone(&h.store),
        _dir: tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}")),
    };
    let mut events = h2
        .watch(&format!("{CMS}?watch=true&resourceVersion=1"))
        .await;
    let e = next_event(&mut events).await;
    assert_eq!(e["type"], "ERROR");
    assert_eq!(
        (e["object"]["code"].as_i64(), e["object"]["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
    assert!(
        events.recv().await.is_none(),
        "the watch ends after the error"
    );
}

#[tokio::test]
async fn creating_in_a_terminating_namespace_is_forbidden() {
    let h = harness().await;
    h.call(
        "POST",
        "/api/v1/namespaces",
        Some(json!({"metadata": {"name": "f"}})),
    )
    .await;
    h.call(
        "POST",
        "/api/v1/namespaces/f/configmaps",
        Some(json!({"metadata": {"name": "held", "finalizers": ["x/y"]}})),
    )
    .await;
    h.call("DELETE", "/api/v1/namespaces/f", None).await;
    let (s, err) = h
        .call("POST", "/api/v1/namespaces/f/configmaps", Some(cm("b")))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        err["message"],
        "configmaps \"b\" is forbidden: unable to create new content in namespace f because it is being terminated"
    );
}

#[tokio::test]
async fn discovery_legacy_and_aggregated() {
    let h = harness().await;
    let req = Request::get("/apis")
        .extension(admin())
        .header(
            header::ACCEPT,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("request: {e}"));
    let resp = match h.router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(
        ct,
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let (_, groups) = h.call("GET", "/apis", None).await;
    assert_eq!(groups["kind"], "APIGroupList");
    let (_, core) = h.call("GET", "/api/v1", None).await;
    assert_eq!(core["groupVersion"], "v1");
    let (_, events) = h.call("GET", "/apis/events.k8s.io/v1", None).await;
    assert_eq!(events["resources"][0]["name"], "events");
}

#[tokio::test]
async fn events_are_served_in_both_groups_from_one_store() {
    let h = harness().await;
    let ev = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hello", "reason": "R"});
    assert_eq!(
        h.call("POST", "/api/v1/namespaces/default/events", Some(ev))
            .await
            .0,
        StatusCode::CREATED
    );
    let (s, new) = h
        .call(
            "GET",
            "/apis/events.k8s.io/v1/namespaces/default/events/e",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (new["note"].as_str(), new["regarding"]["name"].as_str()),
        (Some("hello"), Some("p"))
    );
}

#[tokio::test]
async fn metrics_expose_the_sli_histogram() {
    let h = harness().await;
    h.call("GET", "/api/v1/namespaces/default/configmaps", None)
        .await;
    let (_, text) = h.call("GET", "/metrics", None).await;
    let text = text.as_str().unwrap_or("");
    assert!(text.contains("apiserver_request_sli_duration_seconds_bucket{component=\"apiserver\",group=\"\",resource=\"configmaps\",scope=\"namespace\",subresource=\"\",verb=\"LIST\",version=\"v1\",le=\"0.05\"}"), "{text}");
    assert!(text.contains("apiserver_request_total{code=\"200\""));
    assert!(text.contains("process_resident_memory_bytes"));
}

/// Malformed objects of every kind get a Status, never a panic or a 500.
#[tokio::test]
async fn malformed_bodies_never_panic() {
    let h = harness().await;
    let bodies = [
        json!({"metadata": "x"}),
        json!({"metadata": {"name": "m", "labels": "x", "finalizers": "y"}, "spec": "s", "status": 3}),
        json!({"metadata": {"name": "m"}, "spec": [1, 2], "status": {"phase": []}}),
        json!({"metadata": {"name": "m", "namespace": 7}, "data": [], "subsets": "x", "rules": 1}),
    ];
    for kind in crate::api::registry::KINDS {
        let base = if kind.group.is_empty() {
            format!("/api/{}", kind.version)
        } else {
            format!("/apis/{}/{}", kind.group, kind.version)
        };
        let collection = if kind.namespaced {
            format!("{base}/namespaces/default/{}", kind.plural)
        } else {
            format!("{base}/{}", kind.plural)
        };
        for body in &bodies {
            let (s, _) = h.call("POST", &collection, Some(body.clone())).await;
            assert!(s.as_u16() < 500, "POST {collection} {body}: {s}");
            let named = format!("{collection}/m");
            let (s, _) = h.call("PUT", &named, Some(body.clone())).await;
            assert!(s.as_u16() < 500, "PUT {named} {body}: {s}");
            let patch = body.to_string().into_bytes();
            let (s, _) = h
                .send("PATCH", &named, "application/merge-patch+json", patch)
                .await;
            assert!(s.as_u16() < 500, "PATCH {named} {body}: {s}");
            for sub in kind.subresources {
                let path = format!("{named}/{}", sub.name());
                let method = if sub.verbs().contains(&"create") {
                    "POST"
                } else {
                    "PUT"
                };
                let (s, _) = h.call(method, &path, Some(body.clone())).await;
                assert!(s.as_u16() < 500, "{method} {path} {body}: {s}");
            }
            let (s, _) = h.call("DELETE", &named, None).await;
            assert!(s.as_u16() < 500, "DELETE {named}: {s}");
        }
    }
}

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

#[tokio::test]
async fn tables_for_get_list_and_watch() {
    let h = harness().await;
    let get = |path: String| {
        let req = Request::get(path)
            .header(header::ACCEPT, TABLE)
            .extension(admin())
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("request: {e}"));
        let router = h.router.clone();
        async move {
            let resp = match router.oneshot(req).await {
                Ok(r) => r,
                Err(e) => match e {},
            };
            let status = resp.status();
            let bytes = match resp.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => panic!("body: {e}"),
            };
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    h.call("POST", CMS, Some(cm("a"))).await;
    h.call("POST", CMS, Some(cm("b"))).await;

    let (s, t) = get(format!("{CMS}?limit=1")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (t["kind"].clone(), t["apiVersion"].clone()),
        (json!("Table"), json!("meta.k8s.io/v1"))
    );
    assert_eq!(t["columnDefinitions"][1]["name"], "Data");
    assert_eq!(
        (
            t["rows"][0]["cells"][0].clone(),
            t["rows"][0]["cells"][1].clone()
        ),
        (json!("a"), json!(1))
    );
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert!(t["metadata"]["continue"].is_string(), "{t}");
    assert_eq!(t["metadata"]["remainingItemCount"], 1);

    let (_, t) = get(format!("{CMS}/b?includeObject=Object")).await;
    assert_eq!(t["rows"][0]["object"]["kind"], "ConfigMap");
    assert_eq!(t["rows"][0]["object"]["data"]["k"], "v");
    assert!(t["metadata"]["resourceVersion"].is_string());

    let (s, t) = get(format!("{CMS}?includeObject=Everything")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(t["reason"], "BadRequest");

    let mut rx = h
        .watch_accepting(&format!("{CMS}?watch=true&includeObject=None"), TABLE)
        .await;
    let first = next_event(&mut rx).await;
    let second = next_event(&mut rx).await;
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["kind"], "Table");
    assert_eq!(first["object"]["columnDefinitions"][0]["name"], "Name");
    assert_eq!(first["object"]["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(first["object"]["rows"][0]["object"], Value::Null);
    assert_eq!(second["object"]["columnDefinitions"], json!([]));
    h.call("DELETE", &format!("{CMS}/a"), None).await;
    let deleted = next_event(&mut rx).await;
    assert_eq!(deleted["type"], "DELETED");
    assert_eq!(deleted["object"]["rows"][0]["cells"][0], "a");
    assert_eq!(deleted["object"]["columnDefinitions"], json!([]));
}
