//! The Swagger 2.0 document (`/openapi/v2`): the same paths and schemas as
//! the v3 documents of every group version, in v2 form — references to
//! `#/definitions/`, a property's reference written directly next to its
//! description (no `allOf` wrapper), parameters typed inline, request bodies
//! as `in: body` parameters, and `x-kubernetes-*` extensions kept.

use serde_json::{Map, Value, json};

use super::v3;
use crate::api::schema::{self, REF_PREFIX};

const V2_PREFIX: &str = "#/definitions/";

/// One schema in v2 form.
pub fn convert_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "$ref" => {
                let r = value.as_str().unwrap_or("");
                let name = r.strip_prefix(REF_PREFIX).unwrap_or(r);
                out.insert("$ref".into(), json!(format!("{V2_PREFIX}{name}")));
            }
            "allOf" => match value.as_array().map(Vec::as_slice) {
                Some([only]) if only.get("$ref").is_some() => {
                    if let Value::Object(inner) = convert_schema(only) {
                        out.extend(inner);
                    }
                }
                _ => {
                    out.insert(key.clone(), convert_value(value));
                }
            },
            // v2 has no oneOf: the alternatives (JSONSchemaPropsOr*) are
            // left untyped, as upstream's v2 leaves them.
            "oneOf" | "x-kubernetes-int-or-string" => {}
            // A default next to a reference is not allowed in v2.
            "default" if map.contains_key("allOf") => {}
            "properties" => {
                let props = value
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), convert_schema(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" | "not" => {
                out.insert(key.clone(), convert_schema(value));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if map.contains_key("x-kubernetes-int-or-string") && !out.contains_key("type") {
        out.insert("type".into(), json!("string"));
    }
    Value::Object(out)
}

fn convert_value(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(convert_schema).collect()),
        other => convert_schema(other),
    }
}

/// A v3 parameter in v2 form: its schema's type written inline.
fn convert_parameter(param: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(map) = param {
        for (k, v) in map {
            if k == "schema" {
                if let Value::Object(s) = v {
                    out.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            } else {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn content_types(content: &Value) -> Vec<Value> {
    content
        .as_object()
        .map(|c| c.keys().map(|k| json!(k)).collect())
        .unwrap_or_default()
}

fn first_schema(content: &Value) -> Option<Value> {
    content
        .as_object()?
        .values()
        .next()?
        .get("schema")
        .map(convert_schema)
}

fn convert_operation(op: &Value) -> Value {
    let mut out = Map::new();
    let Value::Object(map) = op else {
        return op.clone();
    };
    let mut params: Vec<Value> = map
        .get("parameters")
        .and_then(Value::as_array)
        .map(|p| p.iter().map(convert_parameter).collect())
        .unwrap_or_default();
    for (k, v) in map {
        match k.as_str() {
            "parameters" => {}
            "requestBody" => {
                let content = &v["content"];
                out.insert("consumes".into(), Value::Array(content_types(content)));
                if let Some(schema) = first_schema(content) {
                    params.insert(
                        0,
                        json!({"name": "body", "in": "body", "required": true, "schema": schema}),
                    );
                }
            }
            "responses" => {
                let mut responses = Map::new();
                if let Value::Object(codes) = v {
                    for (code, resp) in codes {
                        let mut r = json!({"description": resp["description"]});
                        if let Some(schema) = first_schema(&resp["content"]) {
                            r["schema"] = schema;
                            if !out.contains_key("produces") {
                                out.insert(
                                    "produces".into(),
                                    Value::Array(content_types(&resp["content"])),
                                );
                            }
                        }
                        responses.insert(code.clone(), r);
                    }
                }
                out.insert(k.clone(), Value::Object(responses));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out.insert("schemes".into(), json!(["https"]));
    out.insert("parameters".into(), Value::Array(params));
    Value::Object(out)
}

fn convert_path(item: &Value) -> Value {
    let Value::Object(map) = item else {
        return item.clone();
    };
    let out = map
        .iter()
        .map(|(k, v)| {
            let converted = if k == "parameters" {
                Value::Array(
                    v.as_array()
                        .map(|p| p.iter().map(convert_parameter).collect())
                        .unwrap_or_default(),
                )
            } else {
                convert_operation(v)
            };
            (k.clone(), converted)
        })
        .collect();
    Value::Object(out)
}

/// The v2 document of `group_versions`.
pub fn document(group_versions: &[(&str, &str)]) -> Value {
    let mut paths = Map::new();
    let mut definitions: Map<String, Value> = schema::catalog()
        .definitions()
        .iter()
        .map(|(name, def)| (name.clone(), convert_schema(&super::published(name, def))))
        .collect();
    for &(group, version) in group_versions {
        let (gv_paths, extra) = v3::paths_and_lists(group, version);
        for (path, item) in gv_paths {
            paths.insert(path, convert_path(&item));
        }
        for (name, def) in extra {
            definitions.insert(name, convert_schema(&def));
        }
    }
    if let Some(Value::Object(def)) =
        definitions.get_mut("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
    {
        def.insert("format".into(), json!("int-or-string"));
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": super::VERSION},
        "paths": paths,
        "definitions": definitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_take_the_v2_form() {
        let doc = document(&crate::api::openapi::built_in_group_versions());
        let deployment = &doc["definitions"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(deployment["properties"]["metadata"]["description"].is_string());
        assert!(deployment["properties"]["metadata"].get("allOf").is_none());
        let int_or_string = &doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
        assert_eq!(int_or_string["type"], "string");
        assert_eq!(int_or_string["format"], "int-or-string");
        assert_eq!(
            doc["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["x-kubernetes-list-type"],
            "map"
        );
        let text = doc.to_string();
        assert!(!text.contains("#/components/schemas/"));
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        let params = patch["parameters"].as_array().expect("parameters");
        assert_eq!(params[0]["in"], "body");
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["type"] == "string")
        );
        assert_eq!(
            patch["responses"]["200"]["schema"]["$ref"],
            "#/definitions/io.k8s.api.apps.v1.Deployment"
        );
        assert!(doc["definitions"]["io.k8s.api.core.v1.PodList"].is_object());
    }
}
