//! The request dispatcher and what every handler shares: the server's state,
//! reading one object, and presenting stored objects in the requested form.

pub mod delete;
pub mod eviction;
pub mod fields;
pub mod proxy;
pub mod read;
pub mod review;
pub mod subresource;
pub mod token;
pub mod watch;
pub mod write;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::Method;
use serde_json::Value;

use crate::api::ApiConfig;
use crate::api::convert;
use crate::api::discovery;
use crate::api::kinds::strategy_for;
use crate::api::metrics::{Metrics, RequestLabels};
use crate::api::object;
use crate::api::registry::KindInfo;
use crate::api::request::{Query, Route, Target, route};
use crate::api::response::MAX_BODY;
use crate::api::selectors::{FieldSelector, LabelSelector};
use crate::api::status::ApiStatus;
use crate::api::watch_cache::WatchCache;
use crate::store::{Backend, KeyValue, StoreError};

/// Everything the handlers share.
pub struct Core {
    pub store: Arc<dyn Backend>,
    /// One watch cache per storage prefix; custom kinds' come and go with
    /// their CustomResourceDefinitions.
    pub caches: std::sync::RwLock<HashMap<&'static str, Arc<WatchCache>>>,
    pub config: ApiConfig,
    pub metrics: Metrics,
    /// Signs `serviceaccounts/token` tokens, once the server has set it.
    pub token_issuer: std::sync::OnceLock<Arc<crate::auth::serviceaccount::TokenIssuer>>,
    pub authz: Arc<crate::auth::rbac::Authorizer>,
    /// Service ClusterIPs and NodePorts.
    pub services: crate::api::allocator::ServiceAllocator,
    /// The TLS client for kubelets (`pods/log`, `pods/exec`, ...), once set.
    pub kubelet: std::sync::OnceLock<Arc<proxy::KubeletClient>>,
}

impl Core {
    pub fn cache(&self, kind: &KindInfo) -> Result<Arc<WatchCache>, ApiStatus> {
        self.caches
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kind.storage)
            .cloned()
            .ok_or_else(|| ApiStatus::internal(format!("no watch cache for {}", kind.plural)))
    }
}

/// A store failure the request cannot recover from.
pub fn store_error(e: StoreError) -> ApiStatus {
    match e {
        StoreError::Compacted {
            requested,
            compacted,
        } => ApiStatus::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StoreError::FutureRevision { requested, current } => ApiStatus::new(
            504,
            "Timeout",
            format!("Too large resource version: {requested}, current: {current}"),
        ),
        other => ApiStatus::internal(other),
    }
}

/// A resource request with its parsed query.
pub struct Ctx {
    pub target: Target,
    pub query: Query,
    pub headers: http::HeaderMap,
    /// Who asks; the server's own internal writes act as an anonymous
    /// default user and skip the checks that need one.
    pub user: Option<crate::auth::UserInfo>,
}

impl Ctx {
    /// The context of a server-internal request on one object (no user,
    /// no query, no headers).
    pub fn internal(kind: &'static KindInfo, namespace: Option<&str>, name: &str) -> Ctx {
        Ctx {
            target: Target {
                kind,
                namespace: namespace.map(String::from),
                name: Some(name.to_string()),
                subresource: None,
                legacy_watch: false,
            },
            query: Query::default(),
            headers: http::HeaderMap::new(),
            user: None,
        }
    }

    pub fn kind(&self) -> &'static KindInfo {
        self.target.kind
    }

    pub fn name(&self) -> &str {
        self.target.name.as_deref().unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.target.namespace.as_deref()
    }

    pub fn key(&self) -> String {
        self.kind().key(self.namespace(), self.name())
    }

    pub fn label_selector(&self) -> Result<LabelSelector, ApiStatus> {
        LabelSelector::parse(self.query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiStatus::bad_request(e.0))
    }

    pub fn field_selector(&self) -> Result<FieldSelector, ApiStatus> {
        FieldSelector::parse(self.query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiStatus::bad_request(e.0))
    }
}

/// The field-selector attributes of a stored object.
pub fn field_attributes(kind: &'static KindInfo, obj: &Value) -> BTreeMap<String, String> {
    let storage = convert::storage_row(kind);
    let mut attrs: BTreeMap<String, String> = strategy_for(storage.group, storage.kind)
        .field_attributes(obj)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    attrs.insert("metadata.name".into(), object::name(obj).to_string());
    if kind.namespaced {
        let ns = object::meta_str(obj, "namespace").unwrap_or("");
        attrs.insert("metadata.namespace".into(), ns.to_string());
    }
    attrs
}

/// Reads one object (storage form) from the store.
pub async fn load(core: &Core, ctx: &Ctx) -> Result<(KeyValue, Value), ApiStatus> {
    let kv = core
        .store
        .get(&ctx.key(), None)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiStatus::not_found(ctx.kind(), ctx.name()))?;
    let obj = object::decode(&kv).map_err(ApiStatus::internal)?;
    Ok((kv, obj))
}

/// The verb of a request as upstream's metrics name it.
fn verb(method: &Method, target: &Target, query: &Query) -> &'static str {
    match *method {
        Method::GET if target.name.is_none() && (query.flag("watch") || target.legacy_watch) => {
            "WATCH"
        }
        Method::GET if target.name.is_none() => "LIST",
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE if target.name.is_none() => "DELETECOLLECTION",
        Method::DELETE => "DELETE",
        _ => "UNKNOWN",
    }
}

/// The router's fallback: every API path goes through here.
pub async fn dispatch(State(core): State<Arc<Core>>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let user_info = parts.extensions.get::<crate::auth::UserInfo>().cloned();
    let user = user_info.as_ref().map(|u| u.username.clone());
    let path = parts.uri.path().to_string();
    let target = match route(&path) {
        Route::Discovery(d) => {
            return if parts.method == Method::GET {
                discovery::serve(d, &parts.headers)
            } else {
                ApiStatus::method_not_allowed(&parts.method, &path).into_response()
            };
        }
        Route::NotFound => return ApiStatus::path_not_found().into_response(),
        Route::Resource(t) => t,
    };
    let query = match Query::parse(parts.uri.query()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let labels = RequestLabels {
        group: target.kind.group,
        version: target.kind.version,
        resource: target.kind.plural,
        subresource: target.subresource.clone().unwrap_or_default(),
        verb: verb(&parts.method, &target, &query),
        scope: match (&target.namespace, target.kind.namespaced) {
            (Some(_), _) => "namespace",
            (None, true) if target.name.is_none() => "cluster",
            _ => "resource",
        },
    };
    if proxy::serves(&target) {
        let ctx = Ctx {
            target,
            query,
            headers: parts.headers.clone(),
            user: user_info,
        };
        let resp = proxy::serve(&core, parts, ctx, body).await;
        core.metrics
            .observe(&labels, resp.status().as_u16(), started.elapsed());
        return resp;
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return ApiStatus::too_large().into_response(),
    };
    let ctx = Ctx {
        target,
        query,
        headers: parts.headers,
        user: user_info,
    };
    let (resp, warnings) =
        crate::api::warning::collect(serve(&core, &parts.method, ctx, body)).await;
    let mut resp = resp.unwrap_or_else(IntoResponse::into_response);
    crate::api::warning::apply(&mut resp, &warnings);
    let status = resp.status().as_u16();
    let took = started.elapsed();
    core.metrics.observe(&labels, status, took);
    tracing::debug!(
        user = user.as_deref().unwrap_or("-"),
        verb = labels.verb,
        path = %path,
        code = status,
        ms = took.as_millis() as u64,
        "request"
    );
    resp
}

async fn serve(
    core: &Arc<Core>,
    method: &Method,
    ctx: Ctx,
    body: Bytes,
) -> Result<Response, ApiStatus> {
    if ctx.kind().is_review() {
        return review::serve(core, method, ctx, body).await;
    }
    let has_name = ctx.target.name.is_some();
    let sub = ctx.target.subresource.clone();
    let watching = ctx.query.flag("watch") || ctx.target.legacy_watch;
    match (method, has_name, sub.as_deref()) {
        (&Method::GET, false, None) if watching => watch::watch(core, ctx).await,
        (_, _, _) if ctx.target.legacy_watch => Err(ApiStatus::method_not_allowed(method, "watch")),
        (&Method::GET, false, None) => read::list(core, ctx).await,
        (&Method::GET, true, None) => read::get(core, ctx).await,
        (&Method::POST, false, None) => write::create(core, ctx, body).await,
        (&Method::PUT, true, None) => write::update(core, ctx, body).await,
        (&Method::PATCH, true, None) => write::patch(core, ctx, body).await,
        (&Method::DELETE, true, None) => write::delete(core, ctx, body).await,
        (&Method::DELETE, false, None) => write::delete_collection(core, ctx, body).await,
        (_, true, Some(s)) => subresource::serve(core, method, ctx, s.to_string(), body).await,
        _ => Err(ApiStatus::method_not_allowed(method, ctx.kind().plural)),
    }
}
