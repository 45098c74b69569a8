//! The listener end to end in-process: an HTTP/1.1 upgrade (as exec and
//! port-forward use) passes through authentication to the router with the
//! client certificate's user, and the upgraded connection carries raw bytes
//! both ways.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use http::{Request, StatusCode, header};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::auth::authn::Authenticator;
use crate::pki::{self, PkiParams};

/// Answers `GET /echo` with `Upgrade: echo` by echoing the upgraded stream,
/// for the admin user only.
fn echo_router() -> Router {
    Router::new().route(
        "/echo",
        get(|mut req: Request<Body>| async move {
            let user = req.extensions().get::<crate::auth::UserInfo>().cloned();
            if user.is_none_or(|u| u.username != "system:admin") {
                let mut denied = Response::new(Body::empty());
                *denied.status_mut() = StatusCode::FORBIDDEN;
                return denied;
            }
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let mut io = TokioIo::new(upgraded);
                    let mut buf = [0u8; 5];
                    if io.read_exact(&mut buf).await.is_ok() {
                        let _ = io.write_all(&buf).await;
                    }
                }
            });
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            response
                .headers_mut()
                .insert(header::UPGRADE, http::HeaderValue::from_static("echo"));
            response.headers_mut().insert(
                header::CONNECTION,
                http::HeaderValue::from_static("upgrade"),
            );
            response
        }),
    )
}

/// A TLS client config trusting `ca_pem` that presents the admin cert.
fn admin_client(dir: &std::path::Path, ca_pem: &str) -> rustls::ClientConfig {
    let tls_dir = dir.join("server").join("tls");
    let cert = std::fs::read(tls_dir.join("client-admin.crt")).expect("admin cert");
    let key = std::fs::read(tls_dir.join("client-admin.key")).expect("admin key");
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.expect("CA PEM")).expect("CA");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(
            CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .expect("chain"),
            PrivateKeyDer::from_pem_slice(&key).expect("key"),
        )
        .expect("client config")
}

#[tokio::test]
async fn an_upgrade_reaches_the_router_and_carries_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki::ensure(&PkiParams {
        data_dir: dir.path().to_path_buf(),
        hostname: "test".into(),
        node_ips: vec![],
        service_cidr: "10.43.0.0/16".parse().expect("cidr"),
        cluster_domain: "cluster.local".into(),
        tls_sans: vec![],
        token: None,
        kubeconfig_server: "https://127.0.0.1:1".into(),
        kubeconfig_path: dir.path().join("kubeconfig"),
        kubeconfig_mode: 0o600,
    })
    .expect("pki");
    let clients = CertAuthenticator::new(&pki.ca_pem).expect("verifier");
    let tls = tls_config(&pki.serving_cert_pem, &pki.serving_key_pem, &clients).expect("tls");
    let gate = Gate::new(Authenticator::default(), echo_router(), pki.ca_pem.clone());
    let socket = bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(socket, tls, clients, gate, async {
        let _ = stopped.await;
    }));

    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(admin_client(dir.path(), &pki.ca_pem)))
        .connect(name, tcp)
        .await
        .expect("handshake");
    tls.write_all(
        b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await
    .expect("send request");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.expect("read response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tls.write_all(b"hello").await.expect("send upgraded bytes");
    let mut echoed = [0u8; 5];
    tls.read_exact(&mut echoed).await.expect("read echo");
    assert_eq!(&echoed, b"hello");

    let _ = stop.send(());
    server.await.expect("server task");
}
