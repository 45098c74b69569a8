//! Relaying one request to a backend over a fresh HTTP/1.1 connection, as
//! upstream's `UpgradeAwareHandler`: a streaming answer (container logs)
//! is passed on as it arrives, and when the backend switches protocols
//! (exec, attach and port-forward over SPDY or WebSocket) the two upgraded
//! connections are spliced byte for byte, so neither skiff hop needs to
//! understand the streaming protocol. The API server uses it towards the
//! kubelet, the kubelet towards the runtime's streaming server.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Why a request could not be relayed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    Request(String),
    #[error("{0}")]
    Backend(#[from] hyper::Error),
}

/// Headers that belong to one connection (RFC 9110 section 7.6.1), and
/// credentials meant for this hop only; `Connection` and `Upgrade` go on
/// only with an upgrade request.
const NOT_FORWARDED: &[&str] = &[
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "proxy-authorization",
    "proxy-authenticate",
    "authorization",
    "host",
    "content-length",
];

/// True when the request asks to switch protocols (`Connection: Upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// The decoded pairs of a query string, repeated keys kept in order
/// (`command=sh&command=-c`).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// A request to relay.
pub struct Outgoing {
    pub method: Method,
    /// The path and query on the backend.
    pub path_and_query: String,
    /// The backend's `Host`.
    pub host: String,
    /// The client's headers; [`NOT_FORWARDED`] ones are dropped.
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The client connection's upgrade, for requests that may upgrade.
    pub on_upgrade: Option<OnUpgrade>,
}

/// Sends `out` over `stream` and answers with the backend's response; on a
/// `101 Switching Protocols` the client and backend connections are joined
/// in a background task until either side closes.
pub async fn forward<S>(stream: S, out: Outgoing) -> Result<Response, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let upgrading = out.on_upgrade.is_some() && is_upgrade(&out.headers);
    let mut builder = Request::builder()
        .method(out.method)
        .uri(&out.path_and_query);
    for (name, value) in &out.headers {
        let n = name.as_str();
        let hop = n == "connection" || n == "upgrade";
        if NOT_FORWARDED.contains(&n) || n.starts_with("impersonate-") || (hop && !upgrading) {
            continue;
        }
        builder = builder.header(name, value);
    }
    let host = HeaderValue::from_str(&out.host).map_err(|e| ProxyError::Request(e.to_string()))?;
    let request = builder
        .header(header::HOST, host)
        .body(http_body_util::Full::new(out.body))
        .map_err(|e| ProxyError::Request(e.to_string()))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "relayed connection ended with an error");
        }
    });
    let mut response = sender.send_request(request).await?;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client) = out.on_upgrade.filter(|_| upgrading)
    {
        let backend = hyper::upgrade::on(&mut response);
        let mut answer = Response::new(Body::empty());
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *answer.headers_mut() = response.headers().clone();
        tokio::spawn(async move {
            match tokio::try_join!(client, backend) {
                Ok((client, backend)) => {
                    let mut client = TokioIo::new(client);
                    let mut backend = TokioIo::new(backend);
                    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
                        tracing::debug!(error = %e, "a relayed stream ended with an error");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "a relayed upgrade failed"),
            }
        });
        return Ok(answer);
    }
    let (mut parts, body) = response.into_parts();
    for name in ["connection", "upgrade", "keep-alive", "transfer-encoding"] {
        parts.headers.remove(name);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn upgrade_requests_are_recognised_by_their_connection_header() {
        let mut headers = HeaderMap::new();
        assert!(!is_upgrade(&headers));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(is_upgrade(&headers));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        assert!(!is_upgrade(&headers));
    }

    /// A backend that checks what it received and answers with a body.
    #[tokio::test]
    async fn a_plain_answer_is_streamed_back_without_the_clients_credentials() {
        let (client_side, mut backend_side) = tokio::io::duplex(64 * 1024);
        let backend = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = backend_side.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            backend_side
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
                .await
                .expect("write");
            String::from_utf8_lossy(&seen).to_string()
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer secret"),
        );
        headers.insert(
            "x-stream-protocol-version",
            HeaderValue::from_static("v4.channel.k8s.io"),
        );
        let response = forward(
            client_side,
            Outgoing {
                method: Method::GET,
                path_and_query: "/containerLogs/default/p/c?follow=true".into(),
                host: "192.0.2.1:10250".into(),
                headers,
                body: Bytes::new(),
                on_upgrade: None,
            },
        )
        .await
        .expect("relayed");
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(&body[..], b"hello");
        let request = backend.await.expect("backend").to_ascii_lowercase();
        assert!(
            request.starts_with("get /containerlogs/default/p/c?follow=true http/1.1"),
            "{request}"
        );
        assert!(request.contains("host: 192.0.2.1:10250"), "{request}");
        assert!(request.contains("x-stream-protocol-version"), "{request}");
        assert!(!request.contains("secret"), "{request}");
    }
}
