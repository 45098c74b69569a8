//! The three ways the kubelet reaches into a container, shared by probes
//! and lifecycle hooks: exec (CRI ExecSync with a timeout), httpGet (an
//! HTTP/1.1 GET to the pod IP, success for a status in 200..400, as
//! upstream's prober; HTTPS without certificate checks, as upstream) and
//! tcpSocket (a connection that opens).

use std::sync::Arc;
use std::time::Duration;

use k8s_cri::v1::ExecSyncRequest;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::runtime::cri::Cri;

/// The User-Agent upstream's prober sends.
const USER_AGENT: &str = "kube-probe/1.33";
/// How much of an answer is kept for a message.
const MAX_OUTPUT: usize = 10 * 1024;

/// Runs `command` in the container; `Err` carries the output (or why it
/// could not run).
pub async fn exec(
    cri: &mut Cri,
    container_id: &str,
    command: &[String],
    timeout: Duration,
) -> Result<String, String> {
    let request = ExecSyncRequest {
        container_id: container_id.to_string(),
        cmd: command.to_vec(),
        timeout: timeout.as_secs().max(1) as i64,
    };
    let call = cri.runtime.exec_sync(request);
    let reply = match tokio::time::timeout(timeout + Duration::from_secs(1), call).await {
        Err(_) => return Err(format!("command {command:?} timed out")),
        Ok(Err(e)) => return Err(e.message().to_string()),
        Ok(Ok(reply)) => reply.into_inner(),
    };
    let mut output = String::from_utf8_lossy(&reply.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&reply.stderr));
    output.truncate(MAX_OUTPUT);
    if reply.exit_code == 0 {
        Ok(output)
    } else if output.is_empty() {
        Err(format!(
            "command {command:?} exited with {}",
            reply.exit_code
        ))
    } else {
        Err(output)
    }
}

/// A named or numbered port of `container`.
pub fn port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port number: {n}")),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("couldn't find port: {name} in {}", container.name))
        }
    }
}

/// An httpGet to `action.host` (or `pod_ip`).
pub async fn http_get(
    action: &HTTPGetAction,
    container: &Container,
    pod_ip: &str,
    timeout: Duration,
) -> Result<String, String> {
    let port = port(&action.port, container)?;
    let host = action
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod_ip.to_string());
    let https = action.scheme.as_deref() == Some("HTTPS");
    let scheme = if https { "https" } else { "http" };
    let path = action
        .path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let mut request = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    let mut has_host = false;
    let mut has_agent = false;
    for h in action.http_headers.iter().flatten() {
        has_host |= h.name.eq_ignore_ascii_case("host");
        has_agent |= h.name.eq_ignore_ascii_case("user-agent");
        request.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    if !has_host {
        request.push_str(&format!("Host: {}\r\n", host_port(&host, port)));
    }
    if !has_agent {
        request.push_str(&format!("User-Agent: {USER_AGENT}\r\n"));
    }
    request.push_str("Accept: */*\r\n\r\n");
    let address = host_port(&host, port);
    let url = format!("{scheme}://{address}{path}");
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        if https {
            let name =
                ServerName::try_from(host.clone()).map_err(|e| format!("Get \"{url}\": {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(insecure_tls()?)
                .connect(name, stream)
                .await
                .map_err(|e| format!("Get \"{url}\": {e}"))?;
            send(tls, &request).await
        } else {
            send(stream, &request).await
        }
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| {
            format!(
                "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )
        })??;
    let code: u16 = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "malformed HTTP response".to_string())?;
    if (200..400).contains(&code) {
        Ok(answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

/// Writes `request` and reads the answer (up to [`MAX_OUTPUT`]).
async fn send<S>(mut stream: S, request: &str) -> Result<String, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = (&mut stream)
        .take(MAX_OUTPUT as u64)
        .read_to_end(&mut answer)
        .await;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// A TLS client that accepts any certificate: upstream's prober skips
/// verification too (a probe checks health, not identity).
fn insecure_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A tcpSocket check: the connection opens within `timeout`.
pub async fn tcp(
    action: &TCPSocketAction,
    container: &Container,
    pod_ip: &str,
    timeout: Duration,
) -> Result<String, String> {
    let port = port(&action.port, container)?;
    let host = action
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod_ip.to_string());
    let address = host_port(&host, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_)) => Ok(String::new()),
        Ok(Err(e)) => Err(format!("dial tcp {address}: connect: {e}")),
        Err(_) => Err(format!("dial tcp {address}: i/o timeout")),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerPort, HTTPHeader};

    use super::*;

    fn container() -> Container {
        Container {
            name: "web".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn ports_resolve_by_name_or_number() {
        let c = container();
        assert_eq!(port(&IntOrString::String("http".into()), &c), Ok(8080));
        assert_eq!(port(&IntOrString::Int(81), &c), Ok(81));
        assert!(port(&IntOrString::String("nope".into()), &c).is_err());
    }

    async fn serve_once(status: &'static str) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0; 4096];
            let n = s.read(&mut buf).await.expect("read");
            let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok");
            s.write_all(reply.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (port, task)
    }

    #[tokio::test]
    async fn http_get_succeeds_below_400_and_sends_headers() {
        let (p, task) = serve_once("200 OK").await;
        let action = HTTPGetAction {
            port: IntOrString::Int(p.into()),
            path: Some("/healthz".into()),
            http_headers: Some(vec![HTTPHeader {
                name: "X-Check".into(),
                value: "yes".into(),
            }]),
            ..Default::default()
        };
        let ok = http_get(&action, &container(), "127.0.0.1", Duration::from_secs(2)).await;
        assert_eq!(ok.as_deref(), Ok("ok"));
        let request = task.await.expect("request");
        assert!(
            request.starts_with("GET /healthz HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("X-Check: yes\r\n"), "{request}");
        assert!(
            request.contains("User-Agent: kube-probe/1.33\r\n"),
            "{request}"
        );

        let (p, _task) = serve_once("503 Service Unavailable").await;
        let action = HTTPGetAction {
            port: IntOrString::Int(p.into()),
            ..Default::default()
        };
        let failed = http_get(&action, &container(), "127.0.0.1", Duration::from_secs(2)).await;
        assert_eq!(
            failed,
            Err("HTTP probe failed with statuscode: 503".to_string())
        );
    }

    #[tokio::test]
    async fn https_probes_skip_certificate_checks() {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["elsewhere.example".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("self-signed");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
            )
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let p = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accept");
            let mut tls = acceptor.accept(s).await.expect("handshake");
            let mut buf = vec![0; 4096];
            let _ = tls.read(&mut buf).await;
            let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            let _ = tls.shutdown().await;
        });
        let action = HTTPGetAction {
            port: IntOrString::Int(p.into()),
            scheme: Some("HTTPS".into()),
            ..Default::default()
        };
        let ok = http_get(&action, &container(), "127.0.0.1", Duration::from_secs(5)).await;
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[tokio::test]
    async fn tcp_checks_that_the_port_opens() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let p = listener.local_addr().expect("addr").port();
        let action = TCPSocketAction {
            port: IntOrString::Int(p.into()),
            host: None,
        };
        assert!(
            tcp(&action, &container(), "127.0.0.1", Duration::from_secs(2))
                .await
                .is_ok()
        );
        drop(listener);
        let closed = tcp(&action, &container(), "127.0.0.1", Duration::from_secs(2)).await;
        assert!(closed.is_err_and(|e| e.starts_with("dial tcp 127.0.0.1:")));
    }
}
