//! Who may use the kubelet server: authentication by client certificate or
//! bearer token (TokenReview), authorization by SubjectAccessReview, both
//! as upstream's kubelet (`pkg/kubelet/server/auth.go`).

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{Method, Request, StatusCode};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use rustls::pki_types::CertificateDer;
use tower::ServiceExt;

use super::Failure;
use crate::auth::UserInfo;
use crate::auth::authn::{Authenticator, PeerIdentity};
use crate::auth::x509::CertAuthenticator;

/// What the connection's TLS handshake showed.
#[derive(Debug, Clone)]
pub enum Peer {
    Certificate(UserInfo),
    /// A certificate was sent but does not verify: the request is refused
    /// even if it also carries a token.
    Rejected,
    None,
}

/// Authenticates and authorizes each request before the router sees it.
pub struct Gate {
    certs: CertAuthenticator,
    tokens: Option<Authenticator>,
    client: kube::Client,
    node_name: String,
    router: Router,
}

impl Gate {
    pub fn new(
        certs: CertAuthenticator,
        tokens: Option<Authenticator>,
        client: kube::Client,
        node_name: String,
        router: Router,
    ) -> Self {
        Gate {
            certs,
            tokens,
            client,
            node_name,
            router,
        }
    }

    /// The identity of a connection's client certificate chain.
    pub fn peer(&self, chain: Option<&[CertificateDer<'_>]>) -> Peer {
        match chain {
            Some(chain) if !chain.is_empty() => match self.certs.authenticate(chain) {
                Ok(user) => Peer::Certificate(user),
                Err(e) => {
                    tracing::debug!(error = %e, "kubelet server: client certificate refused");
                    Peer::Rejected
                }
            },
            _ => Peer::None,
        }
    }

    pub async fn handle(&self, req: Request<Body>, peer: &Peer) -> Response {
        let user = match peer {
            Peer::Certificate(user) => user.clone(),
            Peer::Rejected => return unauthorized(),
            Peer::None => match bearer(req.headers()) {
                Some(token) => match self.review_token(token).await {
                    Ok(Some(user)) => user,
                    Ok(None) => return unauthorized(),
                    Err(failure) => return failure.into_response(),
                },
                None => return unauthorized(),
            },
        };
        let (verb, subresource) = attributes(req.method(), req.uri().path());
        match self.review_access(&user, verb, subresource).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(user = %user.username, verb, subresource, "kubelet server: forbidden");
                return Failure::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Forbidden (user={}, verb={verb}, resource=nodes, subresource(s)=[{subresource}])\n",
                        user.username
                    ),
                )
                .into_response();
            }
            Err(failure) => return failure.into_response(),
        }
        match self.router.clone().oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    /// The user a bearer token belongs to, if the API server accepts it.
    async fn review_token(&self, token: &str) -> Result<Option<UserInfo>, Failure> {
        if let Some(tokens) = &self.tokens {
            let mut headers = http::HeaderMap::new();
            let value = http::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| Failure::new(StatusCode::UNAUTHORIZED, "Unauthorized"))?;
            headers.insert(http::header::AUTHORIZATION, value);
            return Ok(tokens
                .authenticate("/", &mut headers, &PeerIdentity::None)
                .await
                .ok());
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let reviews: Api<TokenReview> = Api::all(self.client.clone());
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| Failure::runtime(format!("reviewing the token: {e}")))?;
        let Some(status) = answer.status.filter(|s| s.authenticated == Some(true)) else {
            return Ok(None);
        };
        let user = status.user.unwrap_or_default();
        Ok(Some(UserInfo {
            username: user.username.unwrap_or_default(),
            uid: user.uid.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default(),
        }))
    }

    /// Whether `user` may `verb` this node's `subresource`.
    async fn review_access(
        &self,
        user: &UserInfo,
        verb: &str,
        subresource: &str,
    ) -> Result<bool, Failure> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.username.clone()),
                uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
                groups: Some(user.groups.clone()),
                extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.to_string()),
                    version: Some("v1".to_string()),
                    resource: Some("nodes".to_string()),
                    subresource: Some(subresource.to_string()),
                    name: Some(self.node_name.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviews: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| Failure::runtime(format!("reviewing the access: {e}")))?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

fn unauthorized() -> Response {
    Failure::new(StatusCode::UNAUTHORIZED, "Unauthorized").into_response()
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The verb and `nodes` subresource a request is authorized as.
fn attributes(method: &Method, path: &str) -> (&'static str, &'static str) {
    let verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    };
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    let subresource = if under("/stats") {
        "stats"
    } else if under("/metrics") {
        "metrics"
    } else if under("/logs") {
        "log"
    } else if under("/spec") {
        "spec"
    } else if under("/checkpoint") {
        "checkpoint"
    } else {
        "proxy"
    };
    (verb, subresource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_node_subresources_as_upstream() {
        assert_eq!(attributes(&Method::GET, "/stats/summary"), ("get", "stats"));
        assert_eq!(attributes(&Method::GET, "/statsx"), ("get", "proxy"));
        assert_eq!(attributes(&Method::GET, "/logs/"), ("get", "log"));
        assert_eq!(
            attributes(&Method::POST, "/exec/default/p/c"),
            ("create", "proxy")
        );
        assert_eq!(
            attributes(&Method::GET, "/containerLogs/default/p/c"),
            ("get", "proxy")
        );
        assert_eq!(attributes(&Method::GET, "/metrics"), ("get", "metrics"));
    }

    #[test]
    fn only_bearer_tokens_are_read() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Basic abc"),
        );
        assert_eq!(bearer(&headers), None);
    }
}
