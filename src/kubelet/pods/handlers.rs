//! The three ways the kubelet reaches into a container, shared by probes
//! and lifecycle hooks: exec (CRI ExecSync with a timeout), httpGet (an
//! HTTP/1.1 GET to the pod IP, success for a status in 200..400, as
//! upstream's prober) and tcpSocket (a connection that opens).

use std::time::Duration;

use k8s_cri::v1::ExecSyncRequest;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
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
    if action.scheme.as_deref() == Some("HTTPS") {
        return Err("HTTPS probes are not supported by this kubelet".to_string());
    }
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
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(host_port(&host, port))
            .await
            .map_err(|e| format!("Get \"http://{}{path}\": {e}", host_port(&host, port)))?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        let _ = (&mut stream)
            .take(MAX_OUTPUT as u64)
            .read_to_end(&mut answer)
            .await;
        Ok::<_, String>(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| {
            format!(
                "Get \"http://{}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                host_port(&host, port)
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
