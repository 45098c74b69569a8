//! Who is making a request.
//!
//! The TLS listener authenticates every request (x509 client certificate or
//! bearer token) and puts a [`UserInfo`] into the request's extensions before
//! the API router sees it. In-process clients (scheduler, controllers, the
//! local kubelet) call the router directly with their own `UserInfo` already
//! set, so they pass the same authorization as remote clients.
//!
//! `x509` checks client certificates against the cluster CA, `token` maps
//! bearer tokens to users (`serviceaccount` issues and checks
//! service-account JWTs, `jwt` signs them, `bootstrap` checks bootstrap
//! join tokens), and `authn` combines both per request. `node` (for
//! kubelets) and then `rbac` authorize what the user asks for.

pub mod authn;
pub mod bootstrap;
pub mod jwt;
pub mod node;
pub mod rbac;
pub mod serviceaccount;
pub mod token;
pub mod x509;

use std::collections::BTreeMap;

/// The authenticated identity of a request, as upstream's `user.Info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// An in-process component's identity, e.g. `system:kube-scheduler`.
    pub fn component(username: &str) -> Self {
        UserInfo {
            username: username.to_string(),
            uid: String::new(),
            groups: vec!["system:authenticated".to_string()],
            extra: BTreeMap::new(),
        }
    }
}

impl UserInfo {
    /// A node's kubelet: `system:node:<name>` in `system:nodes`.
    pub fn node(name: &str) -> Self {
        let mut user = Self::component(&format!("system:node:{name}"));
        user.groups.insert(0, "system:nodes".to_string());
        user
    }

    /// A service account, as its token authenticates:
    /// `system:serviceaccount:<ns>:<name>` in `system:serviceaccounts` and
    /// `system:serviceaccounts:<ns>`.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        UserInfo {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            uid: String::new(),
            groups: vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".to_string(),
            ],
            extra: BTreeMap::new(),
        }
    }
}

/// Errors setting up or applying authentication.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the cluster CA cannot be used to verify clients: {0}")]
    Ca(String),
    #[error("no client certificate was presented")]
    NoCertificate,
    #[error("client certificate rejected: {0}")]
    BadCertificate(String),
}
