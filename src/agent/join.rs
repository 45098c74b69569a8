//! How `skiff agent` joins a server, as k3s's agent does: fetch the CA from
//! `/cacerts` (the one request made without verifying the server), check it
//! against the hash in the join token, then, trusting only that CA, ask
//! `POST /v1-skiff/node-credentials` for the node's certificates with the
//! token as bearer and the node password as proof of identity.
//!
//! The node password (`<data-dir>/agent/node-password`) is made on the
//! first join and reused, so a restarted agent is the same node to the
//! server. What the server hands out is kept under `<data-dir>/agent/`
//! (keys 0600) with a kubeconfig for the node's client certificate.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::pki::{self, files};
use crate::server::join::{CredentialsRequest, NODE_CREDENTIALS_PATH, NodeCredentials};

/// How long one request to the server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The first retry delay and the cap of the doubling.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Why a join attempt failed; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(
        "cannot reach the server at {url}: {detail}; check --server and that skiff server runs there and is reachable from this machine"
    )]
    Unreachable { url: String, detail: String },
    #[error(
        "the CA served by {url} (hash {served}) does not match the hash in the token ({pinned}); the token belongs to another server or the server's CA changed: use the token in <data-dir>/server/token on the server"
    )]
    CaMismatch {
        url: String,
        served: String,
        pinned: String,
    },
    #[error(
        "the server at {url} refused the token (401 Unauthorized); check --token against <data-dir>/server/token on the server, or create a join token there with `skiff token create`"
    )]
    BadToken { url: String },
    #[error("the server at {url} refused this node: {message}")]
    Refused { url: String, message: String },
    #[error("the server at {url} answered {code}: {message}")]
    Server {
        url: String,
        code: u16,
        message: String,
    },
    #[error("keeping the node's credentials: {0}")]
    Local(#[from] pki::PkiError),
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// As given, without a trailing slash (`https://10.0.0.1:6443`).
    pub url: String,
    pub host: String,
    pub port: u16,
}

impl ServerUrl {
    /// Parses `https://HOST[:PORT]` (port 443 when absent).
    pub fn parse(text: &str) -> Result<Self, String> {
        let uri: http::Uri = text
            .trim()
            .parse()
            .map_err(|_| "not a URL; use a form such as https://10.0.0.1:6443".to_string())?;
        if uri.scheme_str() != Some("https") {
            return Err("the server URL must start with https://".to_string());
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| "the URL has no host; use https://HOST:6443".to_string())?;
        if !uri.path().trim_end_matches('/').is_empty() || uri.query().is_some() {
            return Err("give the server's address only, without a path".to_string());
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let shown = if host.contains(':') {
            format!("https://[{host}]:{port}")
        } else {
            format!("https://{host}:{port}")
        };
        Ok(ServerUrl {
            url: shown,
            host,
            port,
        })
    }

    fn server_name(&self) -> Result<ServerName<'static>, String> {
        match self.host.parse::<IpAddr>() {
            Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
            Err(_) => ServerName::try_from(self.host.clone()).map_err(|e| e.to_string()),
        }
    }
}

/// What a node joins with.
#[derive(Debug, Clone)]
pub struct JoinSettings {
    pub server: ServerUrl,
    /// The token as given.
    pub token: String,
    /// The CA hash the token pins, if it is a `K10` token.
    pub ca_hash: Option<String>,
    pub agent_dir: PathBuf,
    pub node_name: String,
    pub node_ips: Vec<IpAddr>,
    pub hostname: String,
}

/// The node's credentials, as kept on disk.
#[derive(Debug, Clone)]
pub struct Joined {
    pub credentials: NodeCredentials,
    /// `<agent-dir>/kubelet.kubeconfig`: the node's client certificate
    /// against `--server`.
    pub kubeconfig: String,
}

/// One join attempt.
pub async fn join(settings: &JoinSettings) -> Result<Joined, JoinError> {
    let url = settings.server.url.clone();
    let ca_pem = fetch_ca(&settings.server).await?;
    let served = pki::token::ca_hash(&ca_pem);
    match &settings.ca_hash {
        Some(pinned) if !pinned.eq_ignore_ascii_case(&served) => {
            return Err(JoinError::CaMismatch {
                url,
                served,
                pinned: pinned.clone(),
            });
        }
        Some(_) => {}
        None => tracing::warn!(
            ca_hash = %served,
            "the token carries no CA hash: trusting the CA the server sent without checking it; use the full K10... token to pin it"
        ),
    }
    let password = node_password(&settings.agent_dir)?;
    let ask = CredentialsRequest {
        node_name: settings.node_name.clone(),
        node_password: password,
        node_ips: settings.node_ips.clone(),
        hostname: settings.hostname.clone(),
    };
    let body = serde_json::to_vec(&ask).unwrap_or_default();
    let tls = trusting(&ca_pem).map_err(|detail| JoinError::CaMismatch {
        url: url.clone(),
        served: served.clone(),
        pinned: detail,
    })?;
    let (status, reply) = request(
        &settings.server,
        tls,
        Method::POST,
        NODE_CREDENTIALS_PATH,
        Some(&settings.token),
        Some(body),
    )
    .await?;
    let message = || status_message(&reply);
    let credentials: NodeCredentials = match status {
        StatusCode::OK => serde_json::from_slice(&reply).map_err(|e| JoinError::Server {
            url: url.clone(),
            code: status.as_u16(),
            message: format!("an answer that is not node credentials: {e}"),
        })?,
        StatusCode::UNAUTHORIZED => return Err(JoinError::BadToken { url }),
        StatusCode::FORBIDDEN => {
            return Err(JoinError::Refused {
                url,
                message: message(),
            });
        }
        other => {
            return Err(JoinError::Server {
                url,
                code: other.as_u16(),
                message: message(),
            });
        }
    };
    let kubeconfig = store(&settings.agent_dir, &settings.server.url, &credentials)?;
    Ok(Joined {
        credentials,
        kubeconfig,
    })
}

/// The `message` of a `Status` answer, or the body's text.
fn status_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

/// `GET /cacerts` without verifying the server: the CA is checked against
/// the token's hash afterwards.
async fn fetch_ca(server: &ServerUrl) -> Result<String, JoinError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| unreachable_err(server, e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)))
        .with_no_client_auth();
    let (status, body) = request(
        server,
        Arc::new(config),
        Method::GET,
        "/cacerts",
        None,
        None,
    )
    .await?;
    if status != StatusCode::OK {
        return Err(JoinError::Server {
            url: server.url.clone(),
            code: status.as_u16(),
            message: format!(
                "no CA at /cacerts ({}); is this a skiff server?",
                status_message(&body)
            ),
        });
    }
    let pem = String::from_utf8_lossy(&body).into_owned();
    if CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .is_none()
    {
        return Err(JoinError::Server {
            url: server.url.clone(),
            code: status.as_u16(),
            message: "/cacerts did not answer a PEM certificate; is this a skiff server?"
                .to_string(),
        });
    }
    Ok(pem)
}

fn unreachable_err(server: &ServerUrl, detail: impl std::fmt::Display) -> JoinError {
    JoinError::Unreachable {
        url: server.url.clone(),
        detail: detail.to_string(),
    }
}

/// A TLS client trusting only `ca_pem`.
fn trusting(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| e.to_string())?;
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One HTTP/1.1 request over its own TLS connection.
async fn request(
    server: &ServerUrl,
    tls: Arc<rustls::ClientConfig>,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), JoinError> {
    let exchange = async {
        let name = server.server_name()?;
        let tcp = tokio::net::TcpStream::connect((server.host.as_str(), server.port))
            .await
            .map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(
                http::header::HOST,
                format!("{}:{}", server.host, server.port),
            )
            .header(http::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, bytes))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(detail)) => Err(unreachable_err(server, detail)),
        Err(_) => Err(unreachable_err(
            server,
            format!("no answer within {REQUEST_TIMEOUT:?}"),
        )),
    }
}

/// The node password: made once, then read back.
fn node_password(agent_dir: &Path) -> Result<String, pki::PkiError> {
    let path = agent_dir.join("node-password");
    if let Some(stored) = files::read_optional(&path)? {
        let stored = stored.trim().to_string();
        if !stored.is_empty() {
            return Ok(stored);
        }
    }
    files::ensure_dir(agent_dir, true)?;
    let password = hex::encode(rand::random::<[u8; 16]>());
    files::write(&path, format!("{password}\n").as_bytes(), files::PRIVATE)?;
    Ok(password)
}

/// Writes the credentials under `<agent-dir>/tls/` and the kubeconfig;
/// returns the kubeconfig's text.
fn store(agent_dir: &Path, server: &str, creds: &NodeCredentials) -> Result<String, pki::PkiError> {
    let tls = agent_dir.join("tls");
    files::ensure_dir(&tls, true)?;
    let (serving_cert, serving_key) = pki::kubelet::serving_paths(agent_dir);
    for (path, text, mode) in [
        (tls.join("server-ca.crt"), &creds.ca_cert, files::PUBLIC),
        (
            tls.join("client-kubelet.crt"),
            &creds.client_cert,
            files::PUBLIC,
        ),
        (
            tls.join("client-kubelet.key"),
            &creds.client_key,
            files::PRIVATE,
        ),
        (serving_cert, &creds.serving_cert, files::PUBLIC),
        (serving_key, &creds.serving_key, files::PRIVATE),
    ] {
        files::write(&path, text.as_bytes(), mode)?;
    }
    let kubeconfig = pki::kubeconfig::render(
        server,
        &creds.ca_cert,
        &creds.client_cert,
        &creds.client_key,
    )?;
    files::write(
        &agent_dir.join("kubelet.kubeconfig"),
        kubeconfig.as_bytes(),
        files::PRIVATE,
    )?;
    Ok(kubeconfig)
}

/// Capped exponential backoff between join attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(start: Duration, cap: Duration) -> Self {
        Backoff { next: start, cap }
    }

    /// The delay before the next attempt; each call doubles it up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next.min(self.cap);
        self.next = (self.next * 2).min(self.cap);
        delay
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(BACKOFF_START, BACKOFF_CAP)
    }
}

/// Accepts whatever certificate the server shows (signatures still checked),
/// for the single `/cacerts` fetch whose answer is pinned by hash.
#[derive(Debug)]
struct AcceptAnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let delays: Vec<u64> = (0..6).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn server_urls_parse() {
        let url = ServerUrl::parse("https://10.0.0.1:6443/").expect("url");
        assert_eq!((url.host.as_str(), url.port), ("10.0.0.1", 6443));
        assert_eq!(url.url, "https://10.0.0.1:6443");
        let named = ServerUrl::parse("https://skiff.example").expect("url");
        assert_eq!(named.port, 443);
        let v6 = ServerUrl::parse("https://[fd00::1]:6443").expect("url");
        assert_eq!(v6.host, "fd00::1");
        assert_eq!(v6.url, "https://[fd00::1]:6443");
        for bad in [
            "http://10.0.0.1:6443",
            "10.0.0.1:6443",
            "https://h:6443/api",
            "",
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_node_password_is_made_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent = dir.path().join("agent");
        let first = node_password(&agent).expect("create");
        assert_eq!(first.len(), 32);
        assert_eq!(node_password(&agent).expect("reuse"), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(agent.join("node-password"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn status_messages_are_read_from_status_bodies() {
        assert_eq!(
            status_message(br#"{"kind":"Status","message":"node password rejected"}"#),
            "node password rejected"
        );
        assert_eq!(status_message(b"plain text\n"), "plain text");
    }
}
