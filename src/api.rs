//! The generic Kubernetes API server machinery: one router serving every
//! kind in the kind table over the store.
//!
//! A request is routed by [`request::route`] to discovery or to a resource
//! handler in [`handlers`]; handlers read through the store (consistent
//! reads) or the per-kind [`watch_cache`], call the kind's
//! [`kinds::Strategy`] on every write and answer failures as `v1 Status`
//! objects ([`status`]).

pub mod admission;
pub mod allocator;
pub mod authz;
pub mod bootstrap;
pub mod convert;
pub mod crd;
pub mod discovery;
pub mod fieldmanager;
pub mod handlers;
pub mod kinds;
pub mod lookup;
pub mod metrics;
pub mod object;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod request;
pub mod response;
#[cfg(test)]
mod router_tests;
pub mod schema;
pub mod selectors;
pub mod status;
pub mod tables;
pub mod warning;
pub mod watch_cache;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use ipnet::IpNet;

use crate::api::handlers::Core;
use crate::api::watch_cache::WatchCache;
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
    #[error("creating the bootstrap objects: {0}")]
    Bootstrap(#[from] status::ApiStatus),
}

/// `/openapi/v3/<gv>`: one group version's document, or 404.
async fn openapi_document(
    axum::extract::Path(gv): axum::extract::Path<String>,
    uri: http::Uri,
    headers: http::HeaderMap,
) -> axum::response::Response {
    openapi::serve_v3(&gv, uri.query(), &headers)
}

/// A read-only view of the API server's watch caches, for in-process
/// controllers that follow every kind (the garbage collector): the same
/// objects an informer would hold, without a second copy.
#[derive(Clone)]
pub struct Caches {
    core: Arc<Core>,
}

impl Caches {
    /// The kinds with a cache of their own (one row per storage prefix;
    /// objects are in that row's version).
    pub fn kinds(&self) -> Vec<&'static registry::KindInfo> {
        let mut seen = std::collections::BTreeSet::new();
        registry::KINDS
            .iter()
            .map(convert::storage_row)
            .filter(|k| seen.insert(k.storage))
            .collect()
    }

    /// Every object of `kind` and the cache's revision.
    pub fn list(&self, kind: &registry::KindInfo) -> Vec<Arc<serde_json::Value>> {
        match self.core.cache(kind) {
            Ok(cache) => cache.list(&kind.prefix(None)).0,
            Err(_) => Vec::new(),
        }
    }

    /// The changes to `kind` from now on.
    pub fn subscribe(
        &self,
        kind: &registry::KindInfo,
    ) -> Option<tokio::sync::broadcast::Receiver<Arc<watch_cache::CachedEvent>>> {
        let cache = self.core.cache(kind).ok()?;
        cache.subscribe(Some(cache.revision())).ok().map(|s| s.live)
    }
}

/// A running API server: its caches, and the router that serves it.
pub struct ApiServer {
    core: Arc<Core>,
}

impl ApiServer {
    /// Starts the API server over `store`: starts the watch caches, creates
    /// the bootstrap objects (namespaces default, kube-system, kube-public,
    /// kube-node-lease and the `kubernetes` Service) if missing.
    pub async fn new(store: Arc<dyn Backend>, config: ApiConfig) -> Result<Self, ApiError> {
        let mut caches = HashMap::new();
        for kind in registry::KINDS {
            if !kind.is_review() && !caches.contains_key(kind.storage) {
                let cache = WatchCache::start(Arc::clone(&store), kind.prefix(None)).await?;
                caches.insert(kind.storage, cache);
            }
        }
        let authz = Arc::new(authz::authorizer(&caches)?);
        let core = Arc::new(Core {
            store,
            caches: std::sync::RwLock::new(caches),
            config: config.clone(),
            metrics: metrics::Metrics::default(),
            token_issuer: std::sync::OnceLock::new(),
            authz,
            services: allocator::ServiceAllocator::new(&config),
            kubelet: std::sync::OnceLock::new(),
        });
        bootstrap::run(&core).await?;
        crate::auth::rbac::reconcile::run(&core).await?;
        admission::quota::start(Arc::clone(&core));
        crd::controller::start(Arc::clone(&core)).await;
        Ok(ApiServer { core })
    }

    /// A view of the watch caches for in-process controllers.
    pub fn caches(&self) -> Caches {
        Caches {
            core: Arc::clone(&self.core),
        }
    }

    /// Serves `serviceaccounts/token` with `issuer` (without one, as
    /// upstream without a signing key, the subresource is not served).
    pub fn enable_token_requests(&self, issuer: Arc<crate::auth::serviceaccount::TokenIssuer>) {
        if self.core.token_issuer.set(issuer).is_err() {
            tracing::warn!("the service-account token issuer was already set");
        }
    }

    /// Proxies `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward`
    /// and `nodes/proxy` to kubelets with `client` (without one they answer
    /// 503).
    pub fn enable_kubelet_proxy(&self, client: handlers::proxy::KubeletClient) {
        if self.core.kubelet.set(Arc::new(client)).is_err() {
            tracing::warn!("the kubelet client was already set");
        }
    }

    /// Lookups of core objects (cache first, then the store) for the
    /// service-account token authenticator.
    pub fn objects(&self) -> Arc<dyn crate::auth::serviceaccount::ObjectLookup> {
        Arc::new(lookup::CoreObjects {
            core: Arc::clone(&self.core),
        })
    }

    /// The router serving every API path. It reads the
    /// [`crate::auth::UserInfo`] that the listener puts into each request's
    /// extensions (a request without one is anonymous) and authorizes every
    /// request with RBAC before serving it.
    pub fn router(&self) -> Router {
        let ok = || async { (StatusCode::OK, "ok") };
        let metrics_core = Arc::clone(&self.core);
        Router::new()
            .route("/healthz", get(ok))
            .route("/livez", get(ok))
            .route("/readyz", get(ok))
            .route(
                "/version",
                get(|| async { response::json(StatusCode::OK, &discovery::version()) }),
            )
            .route(
                "/metrics",
                get(move || {
                    let core = Arc::clone(&metrics_core);
                    async move { core.metrics.render() }
                }),
            )
            .route(
                "/openapi/v3",
                get(|headers: http::HeaderMap| async move { openapi::serve_index(&headers) }),
            )
            .route("/openapi/v3/{*gv}", get(openapi_document))
            .route(
                "/openapi/v2",
                get(|headers: http::HeaderMap| async move { openapi::serve_v2(&headers) }),
            )
            .fallback(handlers::dispatch)
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&self.core),
                authz::authorize,
            ))
            .with_state(Arc::clone(&self.core))
    }
}
