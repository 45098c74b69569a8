//! Turning a request path and query into what it addresses: the kind, the
//! namespace, the name and the subresource, and the common query options.

use std::collections::BTreeMap;

use crate::api::registry::{self, KindInfo};
use crate::api::status::ApiStatus;

/// A resource path: `/api/v1/namespaces/ns/configmaps/x/status` and friends.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: &'static KindInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Reached through the legacy `/watch/` path prefix.
    pub legacy_watch: bool,
}

/// What a path names.
#[derive(Debug)]
pub enum Route {
    Resource(Target),
    /// `/api`, `/apis`, `/api/v1`, `/apis/<group>`, `/apis/<group>/<version>`.
    Discovery(Discovery),
    NotFound,
}

#[derive(Debug)]
pub enum Discovery {
    Versions,
    Groups,
    Group(String),
    Resources(String, String),
}

/// Parses an API path; `None`-like outcomes become [`Route::NotFound`].
pub fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api"] => return Route::Discovery(Discovery::Versions),
        ["apis"] => return Route::Discovery(Discovery::Groups),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => {
            return if registry::groups().iter().any(|(name, _)| name == g) {
                Route::Discovery(Discovery::Group(g.to_string()))
            } else {
                Route::NotFound
            };
        }
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::NotFound,
    };
    if registry::kinds_in(group, version).next().is_none() {
        return Route::NotFound;
    }
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    let resource =
        |plural: &str, namespace: Option<&str>, name: Option<&&str>, sub: Option<&&str>| {
            match registry::lookup(group, version, plural) {
                Some(kind) if kind.namespaced || namespace.is_none() => Route::Resource(Target {
                    kind,
                    namespace: namespace.map(String::from),
                    name: name.map(|n| n.to_string()),
                    subresource: sub.map(|s| s.to_string()),
                    legacy_watch,
                }),
                _ => Route::NotFound,
            }
        };
    match rest {
        [] if !legacy_watch => Route::Discovery(Discovery::Resources(group.into(), version.into())),
        ["namespaces", ns, plural, tail @ ..]
            if tail.len() <= 2
                && registry::lookup(group, version, plural).is_some_and(|k| k.namespaced) =>
        {
            resource(plural, Some(ns), tail.first(), tail.get(1))
        }
        [plural, tail @ ..] if tail.len() <= 2 => resource(plural, None, tail.first(), tail.get(1)),
        // `nodes/<name>/proxy/<path...>`: the path goes to the kubelet.
        [plural, name, "proxy", ..] => resource(plural, None, Some(name), Some(&"proxy")),
        _ => Route::NotFound,
    }
}

/// The query parameters, decoded.
#[derive(Debug, Default, Clone)]
pub struct Query(pub BTreeMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Result<Self, ApiStatus> {
        let pairs = query.unwrap_or("");
        let uri: http::Uri = format!("/?{pairs}")
            .parse()
            .map_err(|_| ApiStatus::bad_request("malformed query string"))?;
        axum::extract::Query::<BTreeMap<String, String>>::try_from_uri(&uri)
            .map(|q| Query(q.0))
            .map_err(|e| ApiStatus::bad_request(format!("malformed query string: {e}")))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }

    /// An integer parameter; a malformed one is a 400 naming it.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiStatus> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiStatus::bad_request(format!("invalid value for {key}: {v:?}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        match route(path) {
            Route::Resource(t) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let t = target("/api/v1/namespaces/default/configmaps/x");
        assert_eq!(
            (t.kind.plural, t.namespace.as_deref(), t.name.as_deref()),
            ("configmaps", Some("default"), Some("x"))
        );
        let t = target("/api/v1/namespaces/default");
        assert_eq!(
            (t.kind.plural, t.namespace, t.name.as_deref()),
            ("namespaces", None, Some("default"))
        );
        let t = target("/api/v1/namespaces/kube-system/status");
        assert_eq!(
            (t.name.as_deref(), t.subresource.as_deref()),
            (Some("kube-system"), Some("status"))
        );
        let t = target("/apis/apps/v1/namespaces/a/deployments/web/scale");
        assert_eq!(t.subresource.as_deref(), Some("scale"));
        let t = target("/api/v1/pods");
        assert_eq!((t.kind.plural, t.namespace), ("pods", None));
        let t = target("/api/v1/watch/namespaces/a/pods");
        assert!(t.legacy_watch);
        assert!(matches!(
            route("/api/v1/namespaces/a/nodes/x"),
            Route::NotFound
        ));
        assert!(matches!(route("/apis/nope/v1/things"), Route::NotFound));
        assert!(matches!(
            route("/api/v1"),
            Route::Discovery(Discovery::Resources(..))
        ));
        assert!(matches!(
            route("/apis/apps"),
            Route::Discovery(Discovery::Group(_))
        ));
    }

    #[test]
    fn query_parameters() {
        let Ok(q) = Query::parse(Some("limit=5&labelSelector=app%3Dweb&dryRun=All")) else {
            panic!("parses")
        };
        assert_eq!(q.get("labelSelector"), Some("app=web"));
        assert!(q.dry_run());
        assert!(matches!(q.int("limit"), Ok(Some(5))));
        let Ok(q) = Query::parse(Some("limit=x")) else {
            panic!("parses")
        };
        assert!(q.int("limit").is_err());
    }
}
