//! A minimal, honest OpenAPI v3: the `/openapi/v3` index and one document per
//! group version, generated from the kind table. Each document lists the
//! resource paths and operations with their `x-kubernetes-group-version-kind`
//! and declares the `fieldValidation` query parameter on POST, PUT and PATCH,
//! which is what kubectl looks for before it sends `fieldValidation=Strict`
//! and leaves validation to the server. Schemas are included only for
//! custom resources (their CRD's), which `kubectl explain` reads.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::api::registry::{self, KindInfo};

/// The `gv` path segment of a group version: `api/v1`, `apis/apps/v1`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn all_group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out = vec![("", "v1")];
    for (g, versions) in registry::groups() {
        out.extend(versions.into_iter().map(|v| (g, v)));
    }
    out
}

/// The group version served at `/openapi/v3/<path>`.
pub fn lookup(path: &str) -> Option<(&'static str, &'static str)> {
    all_group_versions()
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == path)
}

fn hash(doc: &Value) -> String {
    let digest = Sha256::digest(doc.to_string().as_bytes());
    digest.iter().take(32).map(|b| format!("{b:02X}")).collect()
}

/// The `/openapi/v3` index: the built-in group versions' entries are
/// computed once (the kind table does not change), those with custom
/// resources on every request (CRDs come and go).
pub fn index() -> Value {
    static BUILT_IN: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    let mut paths = BUILT_IN.get_or_init(build_built_in).clone();
    let mut custom: Vec<(&str, &str)> = crate::api::crd::served()
        .iter()
        .map(|k| (k.group, k.version))
        .collect();
    custom.sort_unstable();
    custom.dedup();
    for (g, v) in custom {
        paths.insert(gv_path(g, v), entry(g, v));
    }
    json!({"paths": paths})
}

fn entry(group: &str, version: &str) -> Value {
    let url = format!(
        "/openapi/v3/{}?hash={}",
        gv_path(group, version),
        hash(&document(group, version))
    );
    json!({"serverRelativeURL": url})
}

fn build_built_in() -> Map<String, Value> {
    let mut gvs = vec![("", "v1")];
    for k in registry::KINDS.iter().filter(|k| !k.group.is_empty()) {
        if !gvs.contains(&(k.group, k.version)) {
            gvs.push((k.group, k.version));
        }
    }
    gvs.into_iter()
        .map(|(g, v)| (gv_path(g, v), entry(g, v)))
        .collect()
}

fn param(name: &str, location: &str) -> Value {
    json!({"name": name, "in": location, "required": location == "path", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(
    kind: &KindInfo,
    action: &str,
    verb: &str,
    writes: bool,
    path_params: &[&str],
) -> Value {
    let mut params: Vec<Value> = path_params.iter().map(|p| param(p, "path")).collect();
    if writes {
        params.extend(
            ["dryRun", "fieldManager", "fieldValidation"]
                .iter()
                .map(|p| param(p, "query")),
        );
    }
    let group = if kind.group.is_empty() {
        "core".to_string()
    } else {
        kind.group.replace(['.', '-'], "_")
    };
    json!({
        "operationId": format!("{verb}{}{}{}", group, kind.version, kind.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
    })
}

/// The document of one group version.
pub fn document(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let base = format!("/{}", gv_path(group, version));
    for kind in registry::kinds_in(group, version) {
        let (collection, params): (String, &[&str]) = if kind.namespaced {
            (
                format!("{base}/namespaces/{{namespace}}/{}", kind.plural),
                &["namespace"],
            )
        } else {
            (format!("{base}/{}", kind.plural), &[])
        };
        let named: Vec<&str> = params.iter().copied().chain(["name"]).collect();
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(kind, "list", "list", false, params),
                "post": operation(kind, "post", "create", true, params),
                "delete": operation(kind, "deletecollection", "deleteCollection", false, params),
            }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(kind, "get", "read", false, &named),
                "put": operation(kind, "put", "replace", true, &named),
                "patch": operation(kind, "patch", "patch", true, &named),
                "delete": operation(kind, "delete", "delete", false, &named),
            }),
        );
    }
    let schemas: Map<String, Value> = registry::kinds_in(group, version)
        .filter_map(|kind| crate::api::crd::openapi_schema(kind).map(|s| (schema_name(kind), s)))
        .collect();
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0+skiff"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// Upstream's component name of a custom kind: the reversed group, the
/// version and the kind (`com.example.v1.Widget`).
fn schema_name(kind: &registry::KindInfo) -> String {
    let mut parts: Vec<&str> = kind.group.split('.').rev().collect();
    parts.extend([kind.version, kind.kind]);
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_declare_field_validation() {
        let doc = document("apps", "v1");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(names.contains(&"fieldValidation"));
        let index = index();
        assert!(
            index["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .is_some_and(|u| u.starts_with("/openapi/v3/api/v1?hash="))
        );
        assert_eq!(lookup("apis/apps/v1"), Some(("apps", "v1")));
    }
}
