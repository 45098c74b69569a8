//! Authorization of every request the router serves: a middleware in front
//! of all routes (health, version, metrics, OpenAPI, discovery and every
//! resource path) that asks the RBAC authorizer and answers a denial with
//! upstream's 403 `Forbidden` Status.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::handlers::Core;
use crate::api::request::Query;
use crate::api::status::ApiStatus;
use crate::api::watch_cache::WatchCache;
use crate::api::{ApiError, registry};
use crate::auth::UserInfo;
use crate::auth::authn::anonymous;
use crate::auth::rbac::request_info::RequestInfo;
use crate::auth::rbac::rules::go_quoted;
use crate::auth::rbac::{Attributes, Authorizer, Sources};

/// The authorizer over the RBAC kinds' watch caches.
pub fn authorizer(caches: &HashMap<&'static str, Arc<WatchCache>>) -> Result<Authorizer, ApiError> {
    let cache = |plural: &str| {
        registry::lookup("rbac.authorization.k8s.io", "v1", plural)
            .and_then(|k| caches.get(k.storage))
            .cloned()
            .ok_or_else(|| {
                ApiError::Bootstrap(ApiStatus::internal(format!("no cache for {plural}")))
            })
    };
    Ok(Authorizer::new(Sources {
        roles: cache("roles")?,
        role_bindings: cache("rolebindings")?,
        cluster_roles: cache("clusterroles")?,
        cluster_bindings: cache("clusterrolebindings")?,
    }))
}

/// Upstream's `forbiddenMessage` plus the authorizer's reason, as a 403.
pub fn forbidden(attrs: &Attributes<'_>, reason: &str) -> ApiStatus {
    let user = go_quoted(&attrs.user.username);
    let (mut message, group_resource, name, group) = match &attrs.resource {
        None => (
            format!(
                "User {user} cannot {} path {}",
                attrs.verb,
                go_quoted(attrs.path)
            ),
            String::new(),
            "",
            "",
        ),
        Some(r) => {
            let resource = if r.subresource.is_empty() {
                r.resource.to_string()
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            let scope = if r.namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace {}", go_quoted(r.namespace))
            };
            let gr = if r.group.is_empty() {
                r.resource.to_string()
            } else {
                format!("{}.{}", r.resource, r.group)
            };
            (
                format!(
                    "User {user} cannot {} resource {} in API group {} {scope}",
                    attrs.verb,
                    go_quoted(&resource),
                    go_quoted(r.group)
                ),
                gr,
                r.name,
                r.group,
            )
        }
    };
    if !reason.is_empty() {
        message = format!("{message}: {reason}");
    }
    let full = match (group_resource.is_empty(), name.is_empty()) {
        (true, _) => format!("forbidden: {message}"),
        (false, true) => format!("{group_resource} is forbidden: {message}"),
        (false, false) => format!(
            "{group_resource} {} is forbidden: {message}",
            go_quoted(name)
        ),
    };
    let mut status = ApiStatus::new(403, "Forbidden", full);
    let mut details = json!({});
    if !name.is_empty() {
        details["name"] = json!(name);
    }
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    if let Some(r) = &attrs.resource {
        details["kind"] = json!(r.resource);
    }
    status.details = Some(details);
    status
}

/// The middleware: anonymous when no user came with the request, then
/// allowed or 403.
pub async fn authorize(State(core): State<Arc<Core>>, mut req: Request, next: Next) -> Response {
    let user = match req.extensions().get::<UserInfo>() {
        Some(u) => u.clone(),
        None => {
            let anon = anonymous();
            req.extensions_mut().insert(anon.clone());
            anon
        }
    };
    // A malformed query is refused later by the handler; for authorization
    // it is read as no query, as upstream does.
    let query: Vec<(String, String)> = Query::parse(req.uri().query())
        .map(|q| q.0.into_iter().collect())
        .unwrap_or_default();
    let info = RequestInfo::new(req.method(), req.uri().path(), &query);
    let attrs = info.attributes(&user);
    let decision = core.authz.authorize(&attrs);
    if decision.allowed {
        return next.run(req).await;
    }
    tracing::debug!(
        user = %user.username,
        verb = %info.verb,
        path = %info.path,
        reason = %decision.reason,
        "forbidden"
    );
    forbidden(&attrs, &decision.reason).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::rbac::ResourceAttributes;

    #[test]
    fn messages_read_as_upstream_words_them() {
        let alice = UserInfo {
            username: "alice".into(),
            ..UserInfo::default()
        };
        let list = Attributes {
            user: &alice,
            verb: "list",
            path: "/api/v1/namespaces/default/pods",
            resource: Some(ResourceAttributes {
                resource: "pods",
                namespace: "default",
                version: "v1",
                ..ResourceAttributes::default()
            }),
        };
        let s = forbidden(&list, "");
        assert_eq!(s.code, 403);
        assert_eq!(
            s.message,
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        let get = Attributes {
            user: &alice,
            verb: "get",
            path: "",
            resource: Some(ResourceAttributes {
                group: "apps",
                resource: "deployments",
                subresource: "scale",
                name: "web",
                version: "v1",
                ..ResourceAttributes::default()
            }),
        };
        assert_eq!(
            forbidden(&get, "").message,
            r#"deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments/scale" in API group "apps" at the cluster scope"#
        );
        let path = Attributes {
            user: &alice,
            verb: "get",
            path: "/metrics",
            resource: None,
        };
        assert_eq!(
            forbidden(&path, "").message,
            r#"forbidden: User "alice" cannot get path "/metrics""#
        );
    }
}
