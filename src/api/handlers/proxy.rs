//! The subresources served by a node's kubelet: `pods/log`, `pods/exec`,
//! `pods/attach`, `pods/portforward` and `nodes/proxy`.
//!
//! As upstream's API server, the pod is checked here (it has a node, the
//! container is one of its own, exec and attach need a pod that has not
//! completed), then the request goes to the kubelet at the node's
//! InternalIP and `daemonEndpoints.kubeletEndpoint.port` over TLS, with the
//! API server's kubelet-client certificate and the kubelet's serving
//! certificate verified against the cluster CA. Logs stream back as they
//! come; exec, attach and port-forward upgrade requests (SPDY or
//! WebSocket) are spliced through once the kubelet switches protocols.
//!
//! A WebSocket exec, attach or port-forward is a GET, which RBAC checks as
//! `get`; as upstream's `AuthorizePodWebsocketUpgradeCreatePermission`
//! (beta in 1.35), it must also be allowed to `create`, as SPDY's POST is.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Method, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio_rustls::TlsConnector;

use super::{Core, Ctx, load};
use crate::api::authz::forbidden;
use crate::api::registry::lookup;
use crate::api::request::Target;
use crate::api::status::ApiStatus;
use crate::auth::UserInfo;
use crate::auth::rbac::{Attributes, ResourceAttributes};
use crate::pki::kubelet::CertKey;
use crate::upgrade_proxy::{self, Outgoing, query_pairs};

/// Upstream's default kubelet port, used when a Node does not say.
const DEFAULT_KUBELET_PORT: u16 = 10250;
/// How long connecting to a kubelet may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The most of a kubelet's error answer that is read into a Status.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The API server's TLS client for kubelets.
pub struct KubeletClient {
    connector: TlsConnector,
}

impl KubeletClient {
    /// Trusts kubelet serving certificates signed by `ca_pem` and presents
    /// `client` to them.
    pub fn new(ca_pem: &str, client: &CertKey) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots
                .add(cert.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        let chain = CertificateDer::pem_slice_iter(client.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let key =
            PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).map_err(|e| e.to_string())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| e.to_string())?;
        // Upgrades need HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    async fn connect(
        &self,
        ip: IpAddr,
        port: u16,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        let addr = std::net::SocketAddr::new(ip, port);
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| format!("dial tcp {addr}: i/o timeout"))?
            .map_err(|e| format!("dial tcp {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        self.connector
            .connect(ServerName::IpAddress(ip.into()), tcp)
            .await
            .map_err(|e| format!("tls: {e}"))
    }
}

/// Whether `target` is served by proxying to a kubelet.
pub fn serves(target: &Target) -> bool {
    let kind = target.kind;
    if !kind.group.is_empty() || target.name.is_none() {
        return false;
    }
    matches!(
        (kind.plural, target.subresource.as_deref()),
        ("pods", Some("log" | "exec" | "attach" | "portforward")) | ("nodes", Some("proxy"))
    )
}

/// Serves a kubelet-backed subresource.
pub async fn serve(core: &Arc<Core>, parts: Parts, ctx: Ctx, body: Body) -> Response {
    match proxy(core, parts, ctx, body).await {
        Ok(response) => response,
        Err(status) => status.into_response(),
    }
}

async fn proxy(
    core: &Arc<Core>,
    mut parts: Parts,
    ctx: Ctx,
    body: Body,
) -> Result<Response, ApiStatus> {
    let sub = ctx.target.subresource.clone().unwrap_or_default();
    let allowed: &[Method] = match sub.as_str() {
        "log" => &[Method::GET],
        "exec" | "attach" | "portforward" => &[Method::GET, Method::POST],
        _ => &[
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ],
    };
    if !allowed.contains(&parts.method) {
        return Err(ApiStatus::method_not_allowed(
            &parts.method,
            &format!("{}/{sub}", ctx.kind().plural),
        ));
    }
    let upgrading = upgrade_proxy::is_upgrade(&parts.headers);
    if parts.method == Method::GET && upgrading && sub != "log" && ctx.kind().plural == "pods" {
        authorize_create(core, &parts, &ctx, &sub)?;
    }
    let pairs = query_pairs(parts.uri.query());
    let (node_name, path) = if ctx.kind().plural == "nodes" {
        let prefix = format!("/api/v1/nodes/{}/proxy", ctx.name());
        let rest = parts.uri.path().strip_prefix(&prefix).unwrap_or("");
        let rest = if rest.is_empty() { "/" } else { rest };
        let query = parts
            .uri
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        load(core, &ctx).await?;
        (ctx.name().to_string(), format!("{rest}{query}"))
    } else {
        let (_, pod) = load(core, &ctx).await?;
        pod_location(&pod, &ctx, &sub, &pairs)?
    };
    let (ip, port) = kubelet_address(core, &node_name).await?;
    let Some(client) = core.kubelet.get() else {
        return Err(ApiStatus::new(
            503,
            "ServiceUnavailable",
            "the API server has no kubelet client credentials",
        ));
    };
    let stream = client
        .connect(ip, port)
        .await
        .map_err(|e| ApiStatus::internal(format!("error dialing backend: {e}")))?;
    let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let body = axum::body::to_bytes(body, crate::api::response::MAX_BODY)
        .await
        .map_err(|_| ApiStatus::too_large())?;
    let host = match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    };
    let response = upgrade_proxy::forward(
        stream,
        Outgoing {
            method: parts.method.clone(),
            path_and_query: path,
            host,
            headers: parts.headers,
            body,
            on_upgrade,
        },
    )
    .await
    .map_err(|e| ApiStatus::internal(format!("error talking to the kubelet: {e}")))?;
    if sub == "log" && !response.status().is_success() {
        return Err(kubelet_error(response).await);
    }
    Ok(response)
}

/// A WebSocket upgrade (a GET) must also be allowed to `create` the
/// subresource.
fn authorize_create(core: &Core, parts: &Parts, ctx: &Ctx, sub: &str) -> Result<(), ApiStatus> {
    let anonymous = crate::auth::authn::anonymous();
    let user = parts.extensions.get::<UserInfo>().unwrap_or(&anonymous);
    let attrs = Attributes {
        user,
        verb: "create",
        path: parts.uri.path(),
        resource: Some(ResourceAttributes {
            group: "",
            version: "v1",
            resource: "pods",
            subresource: sub,
            namespace: ctx.namespace().unwrap_or(""),
            name: ctx.name(),
        }),
    };
    let decision = core.authz.authorize(&attrs);
    if decision.allowed {
        Ok(())
    } else {
        Err(forbidden(&attrs, &decision.reason))
    }
}

/// The names of a pod's containers of one list (`containers`,
/// `initContainers`, `ephemeralContainers`).
fn names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The node and kubelet path of a pod subresource request, after the
/// checks upstream's pod REST storage makes.
fn pod_location(
    pod: &Value,
    ctx: &Ctx,
    sub: &str,
    pairs: &[(String, String)],
) -> Result<(String, String), ApiStatus> {
    let name = ctx.name();
    let namespace = ctx.namespace().unwrap_or("default");
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let encode = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    if sub == "portforward" {
        if node.is_empty() {
            return Err(ApiStatus::bad_request(format!(
                "pod {name} does not have a host assigned"
            )));
        }
        let ports: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k == "ports")
            .flat_map(|(_, v)| v.split(','))
            .map(|p| format!("port={}", encode(p.trim())))
            .collect();
        let query = if ports.is_empty() {
            String::new()
        } else {
            format!("?{}", ports.join("&"))
        };
        return Ok((
            node.to_string(),
            format!("/portForward/{namespace}/{name}{query}"),
        ));
    }
    let containers = names(pod, "containers");
    let init = names(pod, "initContainers");
    let ephemeral = names(pod, "ephemeralContainers");
    let container = match get("container") {
        Some(c) => c.to_string(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            if !ephemeral.is_empty() {
                message.push_str(&format!(
                    " or one of the ephemeral containers: [{}]",
                    ephemeral.join(" ")
                ));
            }
            return Err(ApiStatus::bad_request(message));
        }
    };
    if ![&containers, &init, &ephemeral]
        .iter()
        .any(|list| list.contains(&container))
    {
        return Err(ApiStatus::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    if node.is_empty() {
        return Err(ApiStatus::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if matches!(phase, "Succeeded" | "Failed") && sub != "log" {
        let action = if sub == "exec" { "exec into" } else { "attach" };
        return Err(ApiStatus::bad_request(format!(
            "cannot {action} a container in a completed pod; current phase is {phase}"
        )));
    }
    let mut query: Vec<String> = Vec::new();
    match sub {
        "log" => {
            for key in [
                "follow",
                "previous",
                "timestamps",
                "tailLines",
                "limitBytes",
                "sinceSeconds",
                "sinceTime",
            ] {
                if let Some(v) = get(key) {
                    query.push(format!("{key}={}", encode(v)));
                }
            }
        }
        _ => {
            let on = |key: &str| matches!(get(key), Some("1" | "true" | "True" | "t"));
            for (from, to) in [
                ("stdin", "input"),
                ("stdout", "output"),
                ("stderr", "error"),
                ("tty", "tty"),
            ] {
                if on(from) {
                    query.push(format!("{to}=1"));
                }
            }
            if sub == "exec" {
                for (_, command) in pairs.iter().filter(|(k, _)| k == "command") {
                    query.push(format!("command={}", encode(command)));
                }
            }
        }
    }
    let endpoint = match sub {
        "log" => "containerLogs",
        other => other,
    };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    Ok((
        node.to_string(),
        format!(
            "/{endpoint}/{}/{}/{}{query}",
            encode(namespace),
            encode(name),
            encode(&container)
        ),
    ))
}

/// A node's InternalIP and kubelet port.
async fn kubelet_address(core: &Arc<Core>, node_name: &str) -> Result<(IpAddr, u16), ApiStatus> {
    let Some(nodes) = lookup("", "v1", "nodes") else {
        return Err(ApiStatus::internal("nodes missing from the kind table"));
    };
    let kv = core
        .store
        .get(&nodes.key(None, node_name), None)
        .await
        .map_err(super::store_error)?
        .ok_or_else(|| ApiStatus::not_found(nodes, node_name))?;
    let node = crate::api::object::decode(&kv).map_err(ApiStatus::internal)?;
    let addresses = node["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let address = ["InternalIP", "ExternalIP"].iter().find_map(|wanted| {
        addresses
            .iter()
            .filter(|a| a["type"] == *wanted)
            .find_map(|a| a["address"].as_str()?.parse::<IpAddr>().ok())
    });
    let Some(ip) = address else {
        return Err(ApiStatus::bad_request(format!(
            "node {node_name} has no InternalIP address to reach its kubelet at"
        )));
    };
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .or_else(|| node["status"]["daemonEndpoints"]["kubeletEndpoint"]["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok((ip, port))
}

/// A kubelet's error answer as a Status with its code, as upstream's
/// `GenericHttpResponseChecker` makes it.
async fn kubelet_error(response: Response) -> ApiStatus {
    let code = response.status();
    let body = axum::body::to_bytes(response.into_body(), ERROR_BODY_LIMIT)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let reason = match code {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "NotFound",
        _ => "InternalError",
    };
    let message = if text.is_empty() {
        format!("the kubelet answered {code}")
    } else {
        text
    };
    ApiStatus::new(code.as_u16(), reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApiConfig, ApiServer};
    use http_body_util::BodyExt;
    use serde_json::json;
    use tower::ServiceExt;

    fn admin() -> UserInfo {
        UserInfo {
            username: "system:admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..UserInfo::default()
        }
    }

    async fn call(
        router: &axum::Router,
        user: UserInfo,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .extension(user);
        if !headers.iter().any(|(k, _)| *k == "content-type") {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = req.body(Body::from(body)).unwrap_or_else(|e| panic!("{e}"));
        let resp = match router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    fn pod(name: &str, node: Option<&str>, containers: &[&str]) -> Value {
        let containers: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "image": "busybox"}))
            .collect();
        let mut spec = json!({"containers": containers});
        if let Some(node) = node {
            spec["nodeName"] = json!(node);
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    }

    #[tokio::test]
    async fn pod_subresources_are_checked_before_the_kubelet_is_dialed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = crate::store::open(None, dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let config = ApiConfig {
            cluster_cidr: "10.42.0.0/16".parse().unwrap_or_else(|_| unreachable!()),
            service_cidr: "10.43.0.0/16".parse().unwrap_or_else(|_| unreachable!()),
            cluster_dns: "10.43.0.10".parse().unwrap_or_else(|_| unreachable!()),
            cluster_domain: "cluster.local".into(),
            service_node_port_range: (30000, 32767),
            // Documentation address (RFC 5737): data only, never dialed.
            advertise_address: "192.0.2.10".parse().unwrap_or_else(|_| unreachable!()),
            https_port: 6443,
        };
        let api = ApiServer::new(store, config)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let router = api.router();
        let pods = "/api/v1/namespaces/default/pods";
        let sa =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
        let sas = "/api/v1/namespaces/default/serviceaccounts";
        call(&router, admin(), "POST", sas, &[], Some(sa)).await;
        for p in [
            pod("solo", None, &["main"]),
            pod("duo", Some("n1"), &["a", "b"]),
        ] {
            let (s, v) = call(&router, admin(), "POST", pods, &[], Some(p)).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}});
        let (s, v) = call(&router, admin(), "POST", "/api/v1/nodes", &[], Some(node)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");

        let get = |path: String| {
            let router = router.clone();
            async move { call(&router, admin(), "GET", &path, &[], None).await }
        };
        let (s, v) = get(format!("{pods}/solo/log")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["message"], "pod solo does not have a host assigned");
        let (s, v) = get(format!("{pods}/duo/log")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            v["message"],
            "a container name must be specified for pod duo, choose one of: [a b]"
        );
        let (s, v) = get(format!("{pods}/duo/log?container=c")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["message"], "container c is not valid for pod duo");
        let (s, v) = get(format!("{pods}/missing/log")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        // The node has no address yet: nothing to dial.
        let (s, v) = get(format!("{pods}/duo/log?container=a")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            v["message"],
            "node n1 has no InternalIP address to reach its kubelet at"
        );
        let status =
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.20"}]}});
        let patched = call(
            &router,
            admin(),
            "PATCH",
            "/api/v1/nodes/n1/status",
            &[("content-type", "application/merge-patch+json")],
            Some(status),
        )
        .await;
        assert_eq!(patched.0, StatusCode::OK, "{}", patched.1);
        // Without kubelet client credentials the API server cannot proxy.
        let (s, v) = get(format!("{pods}/duo/log?container=a")).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        let (s, _) = call(
            &router,
            admin(),
            "PUT",
            &format!("{pods}/duo/log"),
            &[],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);

        // A WebSocket exec (a GET) needs `create` as well as `get`.
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "exec-get"},
            "rules": [{"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get"]}]});
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "exec-get"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "exec-get"},
            "subjects": [{"kind": "User", "name": "getter"}]});
        let rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default";
        for (path, body) in [
            (format!("{rbac}/roles"), role),
            (format!("{rbac}/rolebindings"), binding),
        ] {
            let (s, v) = call(&router, admin(), "POST", &path, &[], Some(body)).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
        let getter = UserInfo::component("getter");
        let upgrade = [("connection", "Upgrade"), ("upgrade", "websocket")];
        let exec = format!("{pods}/duo/exec?container=a&command=true&stdout=true");
        let mut answer = (StatusCode::OK, Value::Null);
        for _ in 0..50 {
            answer = call(&router, getter.clone(), "GET", &exec, &upgrade, None).await;
            if answer.1["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot create resource"))
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(answer.0, StatusCode::FORBIDDEN, "{}", answer.1);
        assert_eq!(
            answer.1["message"],
            r#"pods "duo" is forbidden: User "getter" cannot create resource "pods/exec" in API group "" in the namespace "default""#
        );
        // A plain GET (no upgrade) passes authorization and reaches the
        // missing kubelet client.
        let (s, _) = call(&router, getter, "GET", &exec, &[], None).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    }

    fn ctx(name: &str) -> Ctx {
        let target = match crate::api::request::route(&format!(
            "/api/v1/namespaces/default/pods/{name}/exec"
        )) {
            crate::api::request::Route::Resource(t) => t,
            other => panic!("{other:?}"),
        };
        Ctx {
            target,
            query: crate::api::request::Query::default(),
            headers: http::HeaderMap::new(),
            user: None,
        }
    }

    #[test]
    fn kubelet_paths_translate_the_api_parameters() {
        let p = pod("duo", Some("n1"), &["a", "b"]);
        let pairs = query_pairs(Some(
            "container=a&command=sh&command=-c&command=echo+hi&stdin=true&stdout=1&stderr=false&tty=false",
        ));
        let (node, path) =
            pod_location(&p, &ctx("duo"), "exec", &pairs).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(node, "n1");
        assert_eq!(
            path,
            "/exec/default/duo/a?input=1&output=1&command=sh&command=%2Dc&command=echo%20hi"
        );
        let pairs = query_pairs(Some(
            "container=b&follow=true&tailLines=10&sinceTime=2026-11-23T10%3A00%3A00Z",
        ));
        let (_, path) =
            pod_location(&p, &ctx("duo"), "log", &pairs).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            path,
            "/containerLogs/default/duo/b?follow=true&tailLines=10&sinceTime=2026%2D11%2D23T10%3A00%3A00Z"
        );
        let (_, path) = pod_location(
            &p,
            &ctx("duo"),
            "portforward",
            &query_pairs(Some("ports=8080,9090")),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(path, "/portForward/default/duo?port=8080&port=9090");
        let mut done = p.clone();
        done["status"]["phase"] = json!("Succeeded");
        let err = pod_location(
            &done,
            &ctx("duo"),
            "exec",
            &query_pairs(Some("container=a")),
        )
        .err()
        .unwrap_or_else(|| panic!("exec into a completed pod"));
        assert_eq!(
            err.message,
            "cannot exec into a container in a completed pod; current phase is Succeeded"
        );
    }
}
