//! Discovery, derived from the kind table: the legacy documents (`/api`,
//! `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`), the
//! aggregated `apidiscovery.k8s.io/v2` lists for `/api` and `/apis`, and
//! `/version`.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::api::registry::{self, KindInfo, group_version};
use crate::api::request::Discovery;
use crate::api::response::json;
use crate::api::status::ApiStatus;

/// The media type of aggregated discovery.
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the client prefers aggregated discovery: its first acceptable
/// type is the v2 `APIGroupDiscoveryList`.
fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split(',').next())
        .is_some_and(|first| {
            first.contains("g=apidiscovery.k8s.io")
                && first.contains("v=v2")
                && first.contains("as=APIGroupDiscoveryList")
        })
}

pub fn serve(d: Discovery, headers: &HeaderMap) -> Response {
    match d {
        Discovery::Versions if wants_aggregated(headers) => aggregated(aggregated_list(true)),
        Discovery::Groups if wants_aggregated(headers) => aggregated(aggregated_list(false)),
        Discovery::Versions => json(
            StatusCode::OK,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}),
        ),
        Discovery::Groups => json(
            StatusCode::OK,
            &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": registry::groups().iter().map(|(g, v)| api_group(g, v)).collect::<Vec<_>>()}),
        ),
        Discovery::Group(g) => match registry::groups().iter().find(|(name, _)| *name == g) {
            Some((g, v)) => {
                let mut group = api_group(g, v);
                group["kind"] = json!("APIGroup");
                group["apiVersion"] = json!("v1");
                json(StatusCode::OK, &group)
            }
            None => ApiStatus::path_not_found().into_response(),
        },
        Discovery::Resources(g, v) => json(StatusCode::OK, &resource_list(&g, &v)),
    }
}

fn aggregated(body: Value) -> Response {
    let mut resp = json(StatusCode::OK, &body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(AGGREGATED));
    resp
}

fn api_group(group: &str, versions: &[&str]) -> Value {
    let gv = |v: &str| json!({"groupVersion": group_version(group, v), "version": v});
    json!({
        "name": group,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(versions.first().copied().unwrap_or("v1")),
    })
}

/// The legacy `APIResourceList` of one group version.
pub fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for k in registry::kinds_in(group, version) {
        let mut r = json!({
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": k.verbs(),
        });
        if !k.short_names.is_empty() {
            r["shortNames"] = json!(k.short_names);
        }
        if !k.categories.is_empty() {
            r["categories"] = json!(k.categories);
        }
        resources.push(r);
        for sub in k.subresources {
            let mut s = json!({
                "name": format!("{}/{}", k.plural, sub.name()),
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": sub.response_kind().map_or(k.kind, |(_, _, kind)| kind),
                "verbs": sub.verbs(),
            });
            if let Some((g, v, _)) = sub.response_kind() {
                s["group"] = json!(g);
                s["version"] = json!(v);
            }
            resources.push(s);
        }
    }
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    })
}

fn resource_discovery(k: &KindInfo) -> Value {
    let mut r = json!({
        "resource": k.plural,
        "responseKind": {"group": "", "version": "", "kind": k.kind},
        "scope": if k.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": k.singular,
        "verbs": k.verbs(),
    });
    if !k.short_names.is_empty() {
        r["shortNames"] = json!(k.short_names);
    }
    if !k.categories.is_empty() {
        r["categories"] = json!(k.categories);
    }
    if !k.subresources.is_empty() {
        r["subresources"] = k
            .subresources
            .iter()
            .map(|s| {
                let (g, v, kind) = s.response_kind().unwrap_or(("", "", k.kind));
                json!({"subresource": s.name(), "responseKind": {"group": g, "version": v, "kind": kind}, "verbs": s.verbs()})
            })
            .collect();
    }
    r
}

/// The aggregated `APIGroupDiscoveryList` of `/api` (core) or `/apis`.
pub fn aggregated_list(core: bool) -> Value {
    let groups: Vec<(&str, Vec<&str>)> = if core {
        vec![("", vec!["v1"])]
    } else {
        registry::groups()
    };
    let items: Vec<Value> = groups
        .iter()
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    json!({
                        "version": v,
                        "resources": registry::kinds_in(g, v).map(resource_discovery).collect::<Vec<_>>(),
                        "freshness": "Current",
                    })
                })
                .collect();
            let mut meta = json!({"creationTimestamp": null});
            if !g.is_empty() {
                meta["name"] = json!(g);
            }
            json!({"metadata": meta, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0+skiff",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": format!("rust (skiff {})", env!("CARGO_PKG_VERSION")),
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_discovery_shape() {
        let core = aggregated_list(true);
        assert_eq!(core["items"][0]["metadata"].get("name"), None);
        let pods = &core["items"][0]["versions"][0]["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["resource"] == "pods").cloned());
        let Some(pods) = pods else {
            panic!("pods listed")
        };
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["categories"], json!(["all"]));
        let subs: Vec<&str> = pods["subresources"]
            .as_array()
            .map(|s| s.iter().filter_map(|s| s["subresource"].as_str()).collect())
            .unwrap_or_default();
        assert!(subs.contains(&"eviction") && subs.contains(&"binding"));
        let groups = aggregated_list(false);
        let names: Vec<&str> = groups["items"]
            .as_array()
            .map(|i| {
                i.iter()
                    .filter_map(|g| g["metadata"]["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert!(names.contains(&"apps") && names.contains(&"apiextensions.k8s.io"));
    }

    #[test]
    fn legacy_resource_list_has_subresources() {
        let apps = resource_list("apps", "v1");
        let names: Vec<&str> = apps["resources"]
            .as_array()
            .map(|r| r.iter().filter_map(|r| r["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(names.contains(&"deployments/scale"));
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"));
        assert!(wants_aggregated(&h));
    }
}
