//! `/exec`, `/attach` and `/portForward`: the runtime opens the session
//! (CRI Exec, Attach, PortForward answer with a URL on containerd's
//! streaming server) and the request is relayed there unchanged, upgrade
//! and all, as upstream's kubelet proxies to its runtime.
//!
//! Also the lookups every kubelet endpoint shares: a pod's newest sandbox
//! and a container's instances in it, from the labels skiff gives runtime
//! objects.

use std::collections::HashMap;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use k8s_cri::v1::{
    AttachRequest, Container, ContainerFilter, ExecRequest, ListContainersRequest,
    ListPodSandboxRequest, PodSandbox, PodSandboxFilter, PortForwardRequest,
};

use super::{Failure, Shared, flag, query_pairs, values};
use crate::kubelet::pods::POD_UID_LABEL;
use crate::upgrade_proxy::{self, Outgoing};

const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";
/// CRI `PodSandboxState::SandboxReady`.
const SANDBOX_READY: i32 = 0;
/// CRI `ContainerState::ContainerRunning`.
pub const CONTAINER_RUNNING: i32 = 1;

/// The newest sandbox of pod `namespace/name` (of pod `uid` when given),
/// preferring a ready one.
pub(super) async fn sandbox(
    shared: &Shared,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
) -> Result<PodSandbox, Failure> {
    let mut labels = HashMap::from([
        (POD_NAMESPACE_LABEL.to_string(), namespace.to_string()),
        (POD_NAME_LABEL.to_string(), name.to_string()),
    ]);
    if let Some(uid) = uid {
        labels.insert(POD_UID_LABEL.to_string(), uid.to_string());
    }
    let mut sandboxes = shared
        .cri
        .clone()
        .runtime
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: labels,
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| Failure::runtime(e.message()))?
        .into_inner()
        .items;
    sandboxes.sort_by_key(|s| (s.state == SANDBOX_READY, s.created_at));
    sandboxes
        .pop()
        .ok_or_else(|| Failure::not_found(format!("pod \"{name}_{namespace}\" not found")))
}

/// The instances of container `container` in the pod of `sandbox`, newest
/// first (a restarted container leaves its previous instance behind).
pub(super) async fn instances(
    shared: &Shared,
    sandbox: &PodSandbox,
    container: &str,
) -> Result<Vec<Container>, Failure> {
    let uid = sandbox
        .labels
        .get(POD_UID_LABEL)
        .cloned()
        .unwrap_or_default();
    let mut containers = shared
        .cri
        .clone()
        .runtime
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                label_selector: HashMap::from([
                    (POD_UID_LABEL.to_string(), uid),
                    (CONTAINER_NAME_LABEL.to_string(), container.to_string()),
                ]),
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| Failure::runtime(e.message()))?
        .into_inner()
        .containers;
    containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    Ok(containers)
}

/// The running instance of a container, for exec and attach.
async fn running(
    shared: &Shared,
    namespace: &str,
    pod: &str,
    uid: Option<&str>,
    container: &str,
) -> Result<String, Failure> {
    let sandbox = sandbox(shared, namespace, pod, uid).await?;
    instances(shared, &sandbox, container)
        .await?
        .into_iter()
        .find(|c| c.state == CONTAINER_RUNNING)
        .map(|c| c.id)
        .ok_or_else(|| Failure::not_found(format!("container not found (\"{container}\")")))
}

pub(super) async fn exec(
    State(shared): State<Shared>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    exec_in(shared, namespace, pod, None, container, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn exec_with_uid(
    State(shared): State<Shared>,
    Path((namespace, pod, uid, container)): Path<(String, String, String, String)>,
    req: Request,
) -> Response {
    exec_in(shared, namespace, pod, Some(uid), container, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn attach(
    State(shared): State<Shared>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    attach_to(shared, namespace, pod, None, container, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn attach_with_uid(
    State(shared): State<Shared>,
    Path((namespace, pod, uid, container)): Path<(String, String, String, String)>,
    req: Request,
) -> Response {
    attach_to(shared, namespace, pod, Some(uid), container, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn port_forward(
    State(shared): State<Shared>,
    Path((namespace, pod)): Path<(String, String)>,
    req: Request,
) -> Response {
    forward_ports(shared, namespace, pod, None, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn port_forward_with_uid(
    State(shared): State<Shared>,
    Path((namespace, pod, uid)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    forward_ports(shared, namespace, pod, Some(uid), req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Which standard streams a session wants (`input`, `output`, `error`,
/// `tty`), as upstream's kubelet reads them.
struct Streams {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

impl Streams {
    fn of(pairs: &[(String, String)]) -> Result<Self, Failure> {
        let streams = Streams {
            stdin: flag(pairs, "input"),
            stdout: flag(pairs, "output"),
            stderr: flag(pairs, "error"),
            tty: flag(pairs, "tty"),
        };
        if !streams.stdin && !streams.stdout && !streams.stderr {
            return Err(Failure::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        Ok(streams)
    }
}

async fn exec_in(
    shared: Shared,
    namespace: String,
    pod: String,
    uid: Option<String>,
    container: String,
    req: Request,
) -> Result<Response, Failure> {
    let pairs = query_pairs(req.uri().query());
    let streams = Streams::of(&pairs)?;
    let cmd: Vec<String> = values(&pairs, "command")
        .into_iter()
        .map(String::from)
        .collect();
    if cmd.is_empty() {
        return Err(Failure::bad_request("you must specify a command"));
    }
    let container_id = running(&shared, &namespace, &pod, uid.as_deref(), &container).await?;
    let url = shared
        .cri
        .clone()
        .runtime
        .exec(ExecRequest {
            container_id,
            cmd,
            tty: streams.tty,
            stdin: streams.stdin,
            stdout: streams.stdout,
            stderr: streams.stderr && !streams.tty,
        })
        .await
        .map_err(|e| Failure::runtime(e.message()))?
        .into_inner()
        .url;
    relay(&url, req).await
}

async fn attach_to(
    shared: Shared,
    namespace: String,
    pod: String,
    uid: Option<String>,
    container: String,
    req: Request,
) -> Result<Response, Failure> {
    let pairs = query_pairs(req.uri().query());
    let streams = Streams::of(&pairs)?;
    let container_id = running(&shared, &namespace, &pod, uid.as_deref(), &container).await?;
    let url = shared
        .cri
        .clone()
        .runtime
        .attach(AttachRequest {
            container_id,
            stdin: streams.stdin,
            tty: streams.tty,
            stdout: streams.stdout,
            stderr: streams.stderr && !streams.tty,
        })
        .await
        .map_err(|e| Failure::runtime(e.message()))?
        .into_inner()
        .url;
    relay(&url, req).await
}

async fn forward_ports(
    shared: Shared,
    namespace: String,
    pod: String,
    uid: Option<String>,
    req: Request,
) -> Result<Response, Failure> {
    let pairs = query_pairs(req.uri().query());
    let mut ports = Vec::new();
    for port in values(&pairs, "port") {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => ports.push(i32::from(p)),
            _ => {
                return Err(Failure::bad_request(format!(
                    "invalid port {port:?}: must be a number from 1 to 65535"
                )));
            }
        }
    }
    let sandbox = sandbox(&shared, &namespace, &pod, uid.as_deref()).await?;
    if sandbox.state != SANDBOX_READY {
        return Err(Failure::not_found(format!(
            "pod \"{pod}_{namespace}\" is not running"
        )));
    }
    let url = shared
        .cri
        .clone()
        .runtime
        .port_forward(PortForwardRequest {
            pod_sandbox_id: sandbox.id,
            port: ports,
        })
        .await
        .map_err(|e| Failure::runtime(e.message()))?
        .into_inner()
        .url;
    relay(&url, req).await
}

/// Relays `req` to the runtime's streaming server at `url`.
async fn relay(url: &str, mut req: Request) -> Result<Response, Failure> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| Failure::runtime(format!("the runtime gave a bad streaming URL {url:?}")))?;
    let authority = uri
        .authority()
        .ok_or_else(|| {
            Failure::runtime(format!("the runtime's streaming URL {url:?} has no host"))
        })?
        .to_string();
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|e| {
            Failure::runtime(format!(
                "cannot reach the runtime's streaming server at {authority}: {e}"
            ))
        })?;
    let _ = stream.set_nodelay(true);
    let on_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .map_err(|e| Failure::bad_request(e.to_string()))?;
    upgrade_proxy::forward(
        stream,
        Outgoing {
            method: parts.method,
            path_and_query,
            host: authority,
            headers: parts.headers,
            body,
            on_upgrade,
        },
    )
    .await
    .map_err(|e| {
        Failure::new(
            StatusCode::BAD_GATEWAY,
            format!("the runtime's streaming server failed: {e}"),
        )
    })
}
