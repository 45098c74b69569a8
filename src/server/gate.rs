//! The front of every HTTPS request: authentication, the endpoints a
//! joining node needs before it has credentials, then the API router.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Method, Request, StatusCode, header};
use tower::ServiceExt;

use crate::auth::authn::{Authenticator, PeerIdentity};

/// Hands authenticated requests to the API router.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    authenticator: Authenticator,
    router: Router,
    ca_pem: String,
    /// Serves node credentials to joining nodes (absent: 404 as any path).
    join: Option<super::join::Supervisor>,
}

impl Gate {
    pub fn new(authenticator: Authenticator, router: Router, ca_pem: String) -> Self {
        Gate {
            inner: Arc::new(Inner {
                authenticator,
                router,
                ca_pem,
                join: None,
            }),
        }
    }

    /// Serves `POST /v1-skiff/node-credentials` with `join`.
    /// Call it before the gate is cloned.
    pub fn with_join(mut self, join: super::join::Supervisor) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.join = Some(join),
            None => tracing::error!("the gate is already shared: nodes cannot join"),
        }
        self
    }

    /// Serves one request from a client whose connection showed `peer`.
    pub async fn handle(&self, mut req: Request<Body>, peer: &PeerIdentity) -> Response {
        let path = req.uri().path().to_string();
        let user = match self
            .inner
            .authenticator
            .authenticate(&path, req.headers_mut(), peer)
            .await
        {
            Ok(user) => user,
            Err(denied) => return denied.response(),
        };
        if path == "/cacerts" && (req.method() == Method::GET || req.method() == Method::HEAD) {
            return self.ca_certs();
        }
        if path == super::join::NODE_CREDENTIALS_PATH
            && let Some(join) = &self.inner.join
        {
            return join.handle(req, &user).await;
        }
        req.extensions_mut().insert(user);
        match self.inner.router.clone().oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    /// The cluster CA in PEM, which a joining node checks against the hash in
    /// its token before trusting this server.
    fn ca_certs(&self) -> Response {
        let mut response = Response::new(Body::from(self.inner.ca_pem.clone()));
        *response.status_mut() = StatusCode::OK;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        response
    }
}
