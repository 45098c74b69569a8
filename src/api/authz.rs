//! Authorization of every request the router serves: a middleware in front
//! of all routes (health, version, metrics, OpenAPI, discovery and every
//! resource path) that asks the authorizer chain (upstream's `Node,RBAC`:
//! the node authorizer for kubelets, then RBAC) and answers a denial with
//! upstream's 403 `Forbidden` Status.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::handlers::Core;
use crate::api::metrics::RequestLabels;
use crate::api::request::Query;
use crate::api::status::ApiStatus;
use crate::api::watch_cache::WatchCache;
use crate::api::{ApiError, registry};
use crate::auth::UserInfo;
use crate::auth::authn::anonymous;
use crate::auth::node::{NodeAuthorizer, NodeSources};
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
    let core_cache = |plural: &str| {
        registry::lookup("", "v1", plural)
            .and_then(|k| caches.get(k.storage))
            .cloned()
            .ok_or_else(|| {
                ApiError::Bootstrap(ApiStatus::internal(format!("no cache for {plural}")))
            })
    };
    let node = NodeAuthorizer::new(
        NodeSources {
            pods: core_cache("pods")?,
            claims: core_cache("persistentvolumeclaims")?,
        },
        crate::auth::rbac::policy::node_rules(),
    );
    Ok(Authorizer::new(Sources {
        roles: cache("roles")?,
        role_bindings: cache("rolebindings")?,
        cluster_roles: cache("clusterroles")?,
        cluster_bindings: cache("clusterrolebindings")?,
    })
    .with_node_authorizer(node))
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
    let started = std::time::Instant::now();
    let user = match req.extensions().get::<UserInfo>() {
        Some(u) => u.clone(),
        None => {
            let anon = anonymous();
            req.extensions_mut().insert(anon.clone());
            anon
        }
    };
    let user = match impersonate(&core, &user, req.headers()) {
        Ok(None) => user,
        Ok(Some(as_user)) => {
            for name in impersonation_headers(req.headers()) {
                req.headers_mut().remove(&name);
            }
            req.extensions_mut().insert(as_user.clone());
            as_user
        }
        Err(status) => return status.into_response(),
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
    if let Some(labels) = metric_labels(&info) {
        core.metrics.observe(&labels, 403, started.elapsed());
    }
    forbidden(&attrs, &decision.reason).into_response()
}

const IMPERSONATE_USER: &str = "impersonate-user";
const IMPERSONATE_UID: &str = "impersonate-uid";
const IMPERSONATE_GROUP: &str = "impersonate-group";
const IMPERSONATE_EXTRA: &str = "impersonate-extra-";

/// The impersonation headers a request carries.
fn impersonation_headers(headers: &http::HeaderMap) -> Vec<http::HeaderName> {
    headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            k == IMPERSONATE_USER
                || k == IMPERSONATE_UID
                || k == IMPERSONATE_GROUP
                || k.starts_with(IMPERSONATE_EXTRA)
        })
        .cloned()
        .collect()
}

fn header_values(headers: &http::HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(String::from)
        .collect()
}

/// Percent-decoding of an `Impersonate-Extra-` key, as upstream unescapes it.
fn unescape(key: &str) -> String {
    percent_encoding::percent_decode_str(key)
        .decode_utf8_lossy()
        .into_owned()
}

/// The user a request impersonates (`kubectl --as`, `--as-group`,
/// `--as-uid`), after checking that `user` may `impersonate` each part, as
/// upstream's impersonation filter: `None` without impersonation headers.
fn impersonate(
    core: &Core,
    user: &UserInfo,
    headers: &http::HeaderMap,
) -> Result<Option<UserInfo>, ApiStatus> {
    let names = impersonation_headers(headers);
    if names.is_empty() {
        return Ok(None);
    }
    let username = header_values(headers, IMPERSONATE_USER).into_iter().next();
    let groups = header_values(headers, IMPERSONATE_GROUP);
    let uid = header_values(headers, IMPERSONATE_UID).into_iter().next();
    let mut extra: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for name in names
        .iter()
        .filter(|n| n.as_str().starts_with(IMPERSONATE_EXTRA))
    {
        let key = unescape(&name.as_str()[IMPERSONATE_EXTRA.len()..]);
        extra.insert(key, header_values(headers, name.as_str()));
    }
    let Some(username) = username.filter(|u| !u.is_empty()) else {
        return Err(ApiStatus::bad_request(
            "requested impersonation of groups, uid or extra without impersonating a user",
        ));
    };
    let check = |resource: &str, group: &str, namespace: &str, name: &str| {
        let attrs = Attributes {
            user,
            verb: "impersonate",
            path: "",
            resource: Some(crate::auth::rbac::ResourceAttributes {
                group,
                version: "",
                resource,
                subresource: "",
                namespace,
                name,
            }),
        };
        let decision = core.authz.authorize(&attrs);
        if decision.allowed {
            Ok(())
        } else {
            Err(forbidden(&attrs, &decision.reason))
        }
    };
    let mut as_user = UserInfo {
        username: username.clone(),
        uid: String::new(),
        groups: Vec::new(),
        extra: Default::default(),
    };
    match username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((ns, name)) => {
            check("serviceaccounts", "", ns, name)?;
            if groups.is_empty() {
                as_user.groups = UserInfo::service_account(ns, name).groups;
                as_user.groups.retain(|g| g != "system:authenticated");
            }
        }
        None => check("users", "", "", &username)?,
    }
    for g in &groups {
        check("groups", "", "", g)?;
        as_user.groups.push(g.clone());
    }
    for (key, values) in &extra {
        let resource = format!("userextras/{key}");
        for v in values {
            check(&resource, "authentication.k8s.io", "", v)?;
        }
    }
    if let Some(uid) = uid {
        check("uids", "authentication.k8s.io", "", &uid)?;
        as_user.uid = uid;
    }
    as_user.extra = extra;
    if username == "system:anonymous" {
        if groups.is_empty() {
            as_user.groups.push("system:unauthenticated".to_string());
        }
    } else if !as_user.groups.iter().any(|g| g == "system:authenticated") {
        as_user.groups.push("system:authenticated".to_string());
    }
    tracing::debug!(user = %user.username, as_user = %as_user.username, "impersonating");
    Ok(Some(as_user))
}

/// The request-metric labels of a denied request to a served resource
/// (denials of other paths are not counted, as they are not for allowed
/// ones).
fn metric_labels(info: &RequestInfo) -> Option<RequestLabels> {
    let r = info.resource.as_ref()?;
    let kind = registry::lookup(&r.group, &r.version, &r.resource)?;
    let verb = match info.verb.as_str() {
        "get" => "GET",
        "list" => "LIST",
        "watch" => "WATCH",
        "create" => "POST",
        "update" => "PUT",
        "patch" => "PATCH",
        "delete" => "DELETE",
        "deletecollection" => "DELETECOLLECTION",
        _ => "UNKNOWN",
    };
    let scope = match (r.namespace.is_empty(), kind.namespaced, r.name.is_empty()) {
        (false, _, _) => "namespace",
        (true, true, true) => "cluster",
        _ => "resource",
    };
    Some(RequestLabels {
        group: kind.group,
        version: kind.version,
        resource: kind.plural,
        subresource: r.subresource.clone(),
        verb,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_keys_are_percent_decoded() {
        assert_eq!(unescape("scopes"), "scopes");
        assert_eq!(unescape("example.com%2fteam"), "example.com/team");
        assert_eq!(unescape("bad%2"), "bad%2");
        assert_eq!(unescape("%zz"), "%zz");
    }
    use crate::api::{ApiConfig, ApiServer};
    use crate::auth::rbac::ResourceAttributes;
    use axum::body::Body;
    use http::StatusCode;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    async fn call(
        router: &axum::Router,
        user: Option<UserInfo>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(u) = user {
            req = req.extension(u);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = req.body(Body::from(body)).unwrap_or_else(|e| panic!("{e}"));
        let resp = match router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        let status = resp.status();
        let bytes = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => panic!("{e}"),
        };
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }

    #[tokio::test]
    async fn every_route_is_authorized_and_reviews_answer_from_the_authorizer() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = crate::store::open(None, dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let config = ApiConfig {
            cluster_cidr: "10.42.0.0/16".parse().unwrap_or_else(|_| unreachable!()),
            service_cidr: "10.43.0.0/16".parse().unwrap_or_else(|_| unreachable!()),
            cluster_dns: "10.43.0.10".parse().unwrap_or_else(|_| unreachable!()),
            cluster_domain: "cluster.local".into(),
            service_node_port_range: (30000, 32767),
            advertise_address: "192.0.2.10".parse().unwrap_or_else(|_| unreachable!()),
            https_port: 6443,
        };
        let api = ApiServer::new(store, config)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let router = api.router();

        // Anonymous: health and version only.
        assert_eq!(
            call(&router, None, "GET", "/healthz", None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(&router, None, "GET", "/version", None).await.0,
            StatusCode::OK
        );
        let (s, v) = call(&router, None, "GET", "/metrics", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(
            v["message"],
            r#"forbidden: User "system:anonymous" cannot get path "/metrics""#
        );
        let (s, v) = call(
            &router,
            None,
            "GET",
            "/api/v1/namespaces/default/pods",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(v["reason"], "Forbidden");
        assert_eq!(v["details"]["kind"], "pods");
        let admin = UserInfo {
            username: "system:admin".into(),
            groups: vec!["system:masters".into()],
            ..UserInfo::default()
        };
        let (_, metrics) = call(&router, Some(admin), "GET", "/metrics", None).await;
        let metrics = metrics.as_str().unwrap_or_default().to_string();
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("apiserver_request_total{")
                    && l.contains("code=\"403\"")
                    && l.contains("resource=\"pods\"")
                    && l.contains("verb=\"LIST\"")),
            "{metrics}"
        );

        // An authenticated user without bindings: discovery and reviews.
        let bob = UserInfo::component("bob");
        assert_eq!(
            call(&router, Some(bob.clone()), "GET", "/apis", None)
                .await
                .0,
            StatusCode::OK
        );
        let review = serde_json::json!({"spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "default"}}});
        let (s, v) = call(
            &router,
            Some(bob.clone()),
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            Some(review),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(v["status"]["allowed"], false);
        assert_eq!(v["kind"], "SelfSubjectAccessReview");
        let (s, v) = call(
            &router,
            Some(bob.clone()),
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            Some(serde_json::json!({"spec": {}})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        // SubjectAccessReview is for delegators, not for bob.
        let (s, _) = call(
            &router,
            Some(bob),
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            Some(serde_json::json!({"spec": {"user": "x", "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}})),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // The kubelet may not delete namespaces; it may ask about others.
        let (s, _) = call(
            &router,
            Some(UserInfo::node("n1")),
            "DELETE",
            "/api/v1/namespaces/default",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, v) = call(
            &router,
            Some(UserInfo::node("n1")),
            "POST",
            "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews",
            Some(serde_json::json!({"spec": {"user": "system:kube-scheduler", "resourceAttributes": {"verb": "create", "resource": "pods", "subresource": "binding", "namespace": "other"}}})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = call(
            &router,
            Some(UserInfo::node("n1")),
            "POST",
            "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews",
            Some(serde_json::json!({"spec": {"user": "system:kube-scheduler", "resourceAttributes": {"verb": "create", "resource": "pods", "subresource": "binding"}}})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["status"]["allowed"], true);
        assert_eq!(
            v["status"]["reason"],
            r#"RBAC: allowed by ClusterRoleBinding "system:kube-scheduler" of ClusterRole "system:kube-scheduler" to User "system:kube-scheduler""#
        );
    }

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
