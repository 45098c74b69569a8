//! The kubelet's HTTPS server on `--kubelet-port` (10250): container logs,
//! exec, attach, port-forward, the node's pods and resource stats, for the
//! API server (which proxies `pods/log`, `pods/exec`, ... here) and for
//! anyone else the cluster lets in.
//!
//! As upstream's kubelet with webhook authentication and authorization:
//! a client certificate signed by the cluster CA, or a bearer token the API
//! server accepts in a TokenReview, says who asks; a SubjectAccessReview on
//! the Node's `nodes/proxy` subresource (`nodes/stats`, `nodes/log`,
//! `nodes/metrics`, `nodes/spec` for those paths) with the method's verb
//! says whether they may. Both reviews go through the kubelet's own API
//! client, so the API server's RBAC is the single source of truth.

mod auth;
pub mod logs;
mod stats;
mod streams;

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio_rustls::TlsAcceptor;

use crate::auth::x509::CertAuthenticator;
use crate::runtime::cri::Cri;
use crate::upgrade_proxy::query_pairs;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The kubelet server's certificates (PEM), and how it checks tokens.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// Client certificates signed by this CA authenticate.
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// The API server's own token authenticators, on a server's node: the
    /// in-process equivalent of a TokenReview. Without them tokens are
    /// sent to the API server in a TokenReview.
    pub tokens: Option<InProcessTokens>,
}

/// The API server's token authenticators, shared with its own node.
#[derive(Clone)]
pub struct InProcessTokens(pub crate::auth::authn::Authenticator);

impl std::fmt::Debug for InProcessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcessTokens")
    }
}

/// What every handler shares.
#[derive(Clone)]
struct Shared {
    cri: Cri,
    client: kube::Client,
    node_name: String,
}

/// A failed kubelet request: a status and a plain-text message, as
/// upstream's kubelet answers.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    fn runtime(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.message));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/pods", get(stats::pods))
        .route("/stats/summary", get(stats::summary))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(logs::container_logs),
        )
        .route("/exec/{namespace}/{pod}/{container}", any(streams::exec))
        .route(
            "/exec/{namespace}/{pod}/{uid}/{container}",
            any(streams::exec_with_uid),
        )
        .route(
            "/attach/{namespace}/{pod}/{container}",
            any(streams::attach),
        )
        .route(
            "/attach/{namespace}/{pod}/{uid}/{container}",
            any(streams::attach_with_uid),
        )
        .route("/portForward/{namespace}/{pod}", any(streams::port_forward))
        .route(
            "/portForward/{namespace}/{pod}/{uid}",
            any(streams::port_forward_with_uid),
        )
        .fallback(|| async { Failure::not_found("404 page not found") })
        .with_state(shared)
}

/// Serves the kubelet API on `0.0.0.0:<port>` until the process ends; a
/// port that cannot be bound is logged and the node runs without it.
pub async fn run(client: kube::Client, cri: Cri, node_name: String, port: u16, tls: ServerTls) {
    let clients = match CertAuthenticator::new(&tls.ca_pem) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the kubelet server cannot trust the cluster CA; it does not start");
            return;
        }
    };
    let config = match crate::server::listener::tls_config(&tls.cert_pem, &tls.key_pem, &clients) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the kubelet server does not start");
            return;
        }
    };
    let addr = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "the kubelet server cannot listen; logs, exec and port-forward to this node will fail (pick another --kubelet-port)");
            return;
        }
    };
    tracing::info!(%addr, "kubelet server is listening");
    let gate = Arc::new(auth::Gate::new(
        clients,
        tls.tokens.map(|t| t.0),
        client.clone(),
        node_name.clone(),
        router(Shared {
            cri,
            client,
            node_name,
        }),
    ));
    let acceptor = TlsAcceptor::from(config);
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "kubelet server: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(serve_connection(
            acceptor.clone(),
            Arc::clone(&gate),
            tcp,
            remote,
        ));
    }
}

async fn serve_connection(
    acceptor: TlsAcceptor,
    gate: Arc<auth::Gate>,
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "kubelet server: TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let peer = gate.peer(tls.get_ref().1.peer_certificates());
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let gate = Arc::clone(&gate);
        let peer = peer.clone();
        async move { Ok::<_, Infallible>(gate.handle(req.map(Body::new), &peer).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    if let Err(e) = builder
        .serve_connection_with_upgrades(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!(%remote, error = %e, "kubelet server: connection ended with an error");
    }
}

/// The values of `key` in `pairs`.
fn values<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A boolean query parameter as upstream parses them (`1`, `true`, ...).
fn flag(pairs: &[(String, String)], key: &str) -> bool {
    values(pairs, key)
        .last()
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "t" | "true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_keep_repeated_keys_and_decode_them() {
        let pairs = query_pairs(Some("command=sh&command=-c&command=echo+a%26b&input=1&tty"));
        assert_eq!(values(&pairs, "command"), vec!["sh", "-c", "echo a&b"]);
        assert!(flag(&pairs, "input"));
        assert!(!flag(&pairs, "tty"));
        assert!(!flag(&pairs, "output"));
        assert!(query_pairs(None).is_empty());
    }
}
