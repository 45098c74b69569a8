//! Authenticating one HTTP request, as upstream's authentication filter.
//!
//! Credentials are tried in upstream's order: the connection's client
//! certificate, then the bearer token. Credentials that are presented but
//! fail are a 401 on every path. A request with no credentials at all is
//! anonymous, which only the health, version and `/cacerts` paths accept;
//! everything else answers 401 with a Kubernetes `Status`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::UserInfo;
use super::token::TokenAuthenticator;

/// What the TLS handshake learned about the client.
#[derive(Debug, Clone)]
pub enum PeerIdentity {
    /// The client sent no certificate.
    None,
    /// The client's certificate chains to the cluster CA.
    Certificate(UserInfo),
    /// The client's certificate does not verify (the reason is logged).
    Rejected(String),
}

/// Authenticates requests with the connection's identity and the token
/// authenticators.
#[derive(Clone, Default)]
pub struct Authenticator {
    tokens: Vec<Arc<dyn TokenAuthenticator>>,
}

impl Authenticator {
    pub fn new(tokens: Vec<Arc<dyn TokenAuthenticator>>) -> Self {
        Authenticator { tokens }
    }

    /// The user of a request, or [`Unauthorized`]. Removes the
    /// `Authorization` header once it has been used, as upstream does.
    pub async fn authenticate(
        &self,
        path: &str,
        headers: &mut HeaderMap,
        peer: &PeerIdentity,
    ) -> Result<UserInfo, Unauthorized> {
        match peer {
            PeerIdentity::Certificate(user) => return Ok(user.clone()),
            PeerIdentity::Rejected(reason) => {
                tracing::debug!(reason, path, "client certificate rejected");
                return Err(Unauthorized);
            }
            PeerIdentity::None => {}
        }
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = bearer_token(value).ok_or(Unauthorized)?;
            for auth in &self.tokens {
                if let Some(user) = auth.authenticate(token).await {
                    headers.remove(header::AUTHORIZATION);
                    return Ok(user);
                }
            }
            tracing::debug!(path, "bearer token rejected");
            return Err(Unauthorized);
        }
        if is_public(path) {
            Ok(anonymous())
        } else {
            Err(Unauthorized)
        }
    }
}

fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Paths served to anonymous clients: health and version (what load
/// balancers and `kubectl version` probe) and `/cacerts`, which a joining
/// node fetches before it has credentials (it pins the CA by the token's
/// hash).
pub fn is_public(path: &str) -> bool {
    ["/healthz", "/livez", "/readyz", "/version", "/cacerts"]
        .iter()
        .any(|p| {
            path == *p
                || path
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// The identity of an unauthenticated request on a public path.
pub fn anonymous() -> UserInfo {
    UserInfo {
        username: "system:anonymous".to_string(),
        uid: String::new(),
        groups: vec!["system:unauthenticated".to_string()],
        extra: BTreeMap::new(),
    }
}

/// A request that failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

impl Unauthorized {
    /// The 401 every failed authentication gets: a `Status` JSON.
    pub fn response(self) -> Response {
        let body = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_paths_include_sub_paths_only() {
        assert!(is_public("/livez"));
        assert!(is_public("/livez/ping"));
        assert!(is_public("/version"));
        assert!(is_public("/cacerts"));
        assert!(!is_public("/versions"));
        assert!(!is_public("/api"));
        assert!(!is_public("/"));
    }

    #[tokio::test]
    async fn anonymous_requests_only_reach_public_paths() {
        let auth = Authenticator::default();
        let mut headers = HeaderMap::new();
        let user = auth
            .authenticate("/healthz", &mut headers, &PeerIdentity::None)
            .await
            .expect("public");
        assert_eq!(user.username, "system:anonymous");
        let denied = auth
            .authenticate("/api", &mut headers, &PeerIdentity::None)
            .await
            .expect_err("private");
        assert_eq!(denied.response().status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn a_wrong_token_is_refused_even_on_public_paths() {
        let auth = Authenticator::default();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert!(
            auth.authenticate("/healthz", &mut headers, &PeerIdentity::None)
                .await
                .is_err()
        );
    }
}
