//! What an HTTP request asks for, as upstream's `RequestInfoFactory` reads
//! it from the method, path and query alone (before routing, so unknown
//! paths are authorized like any other).
//!
//! `/api/v1/...` and `/apis/<group>/<version>/...` with a resource are
//! resource requests: the verb comes from the method (`get` without a name
//! is `list`, or `watch` with `watch=true`; `delete` without a name is
//! `deletecollection`), `/watch/` and `/proxy/` prefixes set the verb,
//! `namespaces/<ns>/<resource>/...` gives the namespace, and a
//! `fieldSelector=metadata.name=<x>` on a list names the object. Anything
//! else (discovery, `/healthz`, `/version`, ...) is a non-resource request
//! whose verb is the lower-case method.

use super::{Attributes, ResourceAttributes};
use crate::auth::UserInfo;

/// The authorization-relevant parts of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub verb: String,
    pub path: String,
    pub resource: Option<ResourceInfo>,
}

/// The resource a resource request addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

fn query_value<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A name as a path segment may carry it (upstream's `IsValidPathSegmentName`).
fn valid_segment(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}

/// The name a field selector pins with `metadata.name=x` (or `==`).
fn selected_name(selector: &str) -> Option<String> {
    let terms: Vec<&str> = selector.split(',').collect();
    let mut name = None;
    for term in &terms {
        if let Some((k, v)) = term.split_once("==").or_else(|| {
            if term.contains("!=") {
                None
            } else {
                term.split_once('=')
            }
        }) && k.trim() == "metadata.name"
        {
            name = Some(v.trim().to_string());
        }
    }
    name
}

impl RequestInfo {
    /// Reads a request. `query` is the decoded query string.
    pub fn new(method: &http::Method, path: &str, query: &[(String, String)]) -> Self {
        let lower = method.as_str().to_ascii_lowercase();
        let non_resource = || RequestInfo {
            verb: lower.clone(),
            path: path.to_string(),
            resource: None,
        };
        let trimmed = path.trim_matches('/');
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        if parts.len() < 3 {
            return non_resource();
        }
        let (group, rest) = match parts[0] {
            "api" => ("", &parts[1..]),
            "apis" if parts.len() >= 4 => (parts[1], &parts[2..]),
            _ => return non_resource(),
        };
        let version = rest[0];
        let mut rest = &rest[1..];
        let verb = match rest.first() {
            Some(&special @ ("watch" | "proxy")) => {
                if rest.len() < 2 {
                    return non_resource();
                }
                rest = &rest[1..];
                special.to_string()
            }
            _ => match *method {
                http::Method::POST => "create".to_string(),
                http::Method::GET | http::Method::HEAD => "get".to_string(),
                http::Method::PUT => "update".to_string(),
                http::Method::PATCH => "patch".to_string(),
                http::Method::DELETE => "delete".to_string(),
                _ => String::new(),
            },
        };
        let mut info = ResourceInfo {
            group: group.to_string(),
            version: version.to_string(),
            ..ResourceInfo::default()
        };
        if rest.first() == Some(&"namespaces") && rest.len() > 1 {
            info.namespace = rest[1].to_string();
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        if let Some(r) = rest.first() {
            info.resource = r.to_string();
        }
        if let Some(n) = rest.get(1) {
            info.name = n.to_string();
        }
        if verb != "proxy"
            && let Some(s) = rest.get(2)
        {
            info.subresource = s.to_string();
        }
        let mut verb = verb;
        if info.name.is_empty() && verb == "get" {
            let watching = query_value(query, "watch").is_some_and(|w| {
                !matches!(w.to_ascii_lowercase().as_str(), "false" | "0" | "f" | "")
            });
            verb = if watching { "watch" } else { "list" }.to_string();
            if let Some(name) = query_value(query, "fieldSelector").and_then(selected_name)
                && valid_segment(&name)
            {
                info.name = name;
            }
        }
        if info.name.is_empty() && verb == "delete" {
            verb = "deletecollection".to_string();
        }
        RequestInfo {
            verb,
            path: path.to_string(),
            resource: Some(info),
        }
    }

    /// The attributes to authorize for `user`.
    pub fn attributes<'a>(&'a self, user: &'a UserInfo) -> Attributes<'a> {
        Attributes {
            user,
            verb: &self.verb,
            path: &self.path,
            resource: self.resource.as_ref().map(|r| ResourceAttributes {
                group: &r.group,
                version: &r.version,
                resource: &r.resource,
                subresource: &r.subresource,
                namespace: &r.namespace,
                name: &r.name,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn info(method: Method, path: &str, query: &[(&str, &str)]) -> RequestInfo {
        let q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RequestInfo::new(&method, path, &q)
    }

    fn res(i: &RequestInfo) -> (&str, &str, &str, &str, &str, &str) {
        let r = i
            .resource
            .as_ref()
            .unwrap_or_else(|| panic!("not a resource request: {i:?}"));
        (
            i.verb.as_str(),
            r.group.as_str(),
            r.resource.as_str(),
            r.subresource.as_str(),
            r.namespace.as_str(),
            r.name.as_str(),
        )
    }

    #[test]
    fn verbs_follow_method_name_and_watch() {
        let i = info(Method::GET, "/api/v1/namespaces/default/pods", &[]);
        assert_eq!(res(&i), ("list", "", "pods", "", "default", ""));
        let i = info(
            Method::GET,
            "/api/v1/namespaces/default/pods",
            &[("watch", "true")],
        );
        assert_eq!(i.verb, "watch");
        let i = info(Method::GET, "/api/v1/pods", &[("watch", "1")]);
        assert_eq!(res(&i), ("watch", "", "pods", "", "", ""));
        let i = info(Method::GET, "/api/v1/watch/namespaces/a/pods/p", &[]);
        assert_eq!(res(&i), ("watch", "", "pods", "", "a", "p"));
        let i = info(
            Method::DELETE,
            "/apis/apps/v1/namespaces/a/deployments",
            &[],
        );
        assert_eq!(
            res(&i),
            ("deletecollection", "apps", "deployments", "", "a", "")
        );
        let i = info(
            Method::PATCH,
            "/apis/apps/v1/namespaces/a/deployments/d/scale",
            &[],
        );
        assert_eq!(res(&i), ("patch", "apps", "deployments", "scale", "a", "d"));
        let i = info(Method::POST, "/api/v1/namespaces/a/pods/p/eviction", &[]);
        assert_eq!(res(&i), ("create", "", "pods", "eviction", "a", "p"));
    }

    #[test]
    fn a_field_selector_on_the_name_names_the_object() {
        let i = info(
            Method::GET,
            "/api/v1/namespaces/a/configmaps",
            &[("fieldSelector", "metadata.name=one"), ("watch", "true")],
        );
        assert_eq!(res(&i), ("watch", "", "configmaps", "", "a", "one"));
        let i = info(
            Method::GET,
            "/api/v1/namespaces/a/configmaps",
            &[("fieldSelector", "metadata.name!=one")],
        );
        assert_eq!(res(&i).5, "");
    }

    #[test]
    fn namespaces_are_their_own_namespace() {
        let i = info(Method::GET, "/api/v1/namespaces/team", &[]);
        assert_eq!(res(&i), ("get", "", "namespaces", "", "team", "team"));
        let i = info(Method::PUT, "/api/v1/namespaces/team/finalize", &[]);
        assert_eq!(
            res(&i),
            ("update", "", "namespaces", "finalize", "team", "team")
        );
        let i = info(Method::GET, "/api/v1/namespaces", &[]);
        assert_eq!(res(&i), ("list", "", "namespaces", "", "", ""));
    }

    #[test]
    fn discovery_and_health_are_non_resource_requests() {
        for path in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/healthz",
            "/version",
            "/openapi/v3",
            "/",
        ] {
            let i = info(Method::GET, path, &[]);
            assert!(i.resource.is_none(), "{path}");
            assert_eq!(i.verb, "get");
            assert_eq!(i.path, path);
        }
        assert_eq!(info(Method::POST, "/healthz", &[]).verb, "post");
        // Unknown groups and resources are still resource requests.
        let i = info(Method::GET, "/apis/nope.io/v1/things", &[]);
        assert_eq!(res(&i), ("list", "nope.io", "things", "", "", ""));
    }
}
