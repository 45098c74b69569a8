//! Who is making a request.
//!
//! The TLS listener authenticates every request (x509 client certificate or
//! bearer token) and puts a [`UserInfo`] into the request's extensions before
//! the API router sees it. In-process clients (scheduler, controllers, the
//! local kubelet) call the router directly with their own `UserInfo` already
//! set, so they pass the same authorization as remote clients.

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
