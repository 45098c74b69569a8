//! The HTTPS listener: TLS 1.2/1.3 with ALPN h2 and http/1.1, one hyper
//! connection per client (HTTP/1.1 upgrades pass through for exec and
//! port-forward), and graceful shutdown.
//!
//! The client certificate is checked once per connection, after the
//! handshake; every request on the connection carries the result.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use super::gate::Gate;
use crate::auth::authn::PeerIdentity;
use crate::auth::x509::CertAuthenticator;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an HTTP/1 client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often idle HTTP/2 connections (long watches) are pinged, so dead
/// peers are noticed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long open connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Errors setting up the listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error(
        "cannot listen on {addr}: {source}; is another server using the port? pick another with --https-listen-port"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the serving certificate or key cannot be used: {0}")]
    Tls(String),
}

/// The TLS settings: the serving certificate, client certificates requested.
pub fn tls_config(
    cert_pem: &str,
    key_pem: &str,
    clients: &CertAuthenticator,
) -> Result<Arc<rustls::ServerConfig>, ListenerError> {
    let tls = |e: &dyn std::fmt::Display| ListenerError::Tls(e.to_string());
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(&e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| tls(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(clients.tls_verifier())
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Binds the listening socket.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ListenerError::Bind { addr, source })
}

/// Serves connections until `shutdown` completes, then lets open
/// connections finish for a short grace period.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    clients: CertAuthenticator,
    gate: Gate,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; when all are gone, recv ends.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (tcp, remote) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let conn = Connection {
                    acceptor: acceptor.clone(),
                    clients: clients.clone(),
                    gate: gate.clone(),
                    stop: stop_rx.clone(),
                    _alive: alive_tx.clone(),
                };
                tokio::spawn(conn.run(tcp, remote));
            }
        }
    }
    tracing::info!("shutting down: no new connections, finishing open ones");
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_tx);
    if tokio::time::timeout(SHUTDOWN_GRACE, alive_rx.recv())
        .await
        .is_err()
    {
        tracing::info!("closing connections still open after the grace period");
    }
}

/// One client connection.
struct Connection {
    acceptor: TlsAcceptor,
    clients: CertAuthenticator,
    gate: Gate,
    stop: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl Connection {
    async fn run(mut self, tcp: TcpStream, remote: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake timed out");
                return;
            }
        };
        let peer = match tls.get_ref().1.peer_certificates() {
            Some(chain) if !chain.is_empty() => match self.clients.authenticate(chain) {
                Ok(user) => PeerIdentity::Certificate(user),
                Err(e) => PeerIdentity::Rejected(e.to_string()),
            },
            _ => PeerIdentity::None,
        };
        let gate = self.gate.clone();
        let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let gate = gate.clone();
            let peer = peer.clone();
            async move { Ok::<_, Infallible>(gate.handle(req.map(Body::new), &peer).await) }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(KEEPALIVE_INTERVAL);
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
        tokio::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
            }
            _ = async { self.stop.wait_for(|stop| *stop).await.is_ok() } => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
