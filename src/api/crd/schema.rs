//! A CRD version's structural `openAPIV3Schema` applied to custom objects,
//! in upstream's order: unknown fields are pruned, `default`s filled in, and
//! the result validated with upstream's field errors (types, `required`,
//! `enum`, bounds, `pattern`, lengths, item counts, simple formats,
//! `nullable`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-preserve-unknown-fields`,
//! `x-kubernetes-embedded-resource`).

use serde_json::{Map, Value, json};

use crate::api::kinds::Cause;
use crate::api::kinds::validation::{invalid, required, too_long, too_many, type_invalid};

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// The schema of the values of a map (`additionalProperties` as a schema).
fn additional(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|a| a.is_object())
}

/// Removes the fields the schema does not declare, at every level, except
/// under `x-kubernetes-preserve-unknown-fields`. At the root (and in
/// embedded resources) `apiVersion`, `kind` and `metadata` always stay.
pub fn prune(schema: &Value, obj: &mut Value) {
    prune_at(schema, obj, true);
}

fn prune_at(schema: &Value, value: &mut Value, resource: bool) {
    match value {
        Value::Object(map) => {
            let props = properties(schema);
            let extra = additional(schema);
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields")
                || schema.get("additionalProperties") == Some(&Value::Bool(true));
            let embedded = resource || flag(schema, "x-kubernetes-embedded-resource");
            map.retain(|k, _| {
                preserve
                    || extra.is_some()
                    || props.is_some_and(|p| p.contains_key(k))
                    || (embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
            });
            for (k, v) in map.iter_mut() {
                if embedded && k == "metadata" && props.is_none_or(|p| !p.contains_key(k)) {
                    continue;
                }
                let sub = props.and_then(|p| p.get(k)).or(extra);
                if let Some(sub) = sub {
                    prune_at(sub, v, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for v in items {
                    prune_at(item, v, false);
                }
            }
        }
        _ => {}
    }
}

/// Fills in the schema's `default`s for absent fields (and for nulls where
/// the field is not `nullable`), at every level.
pub fn default(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = properties(schema) {
                for (k, sub) in props {
                    let Some(def) = sub.get("default") else {
                        continue;
                    };
                    let missing = match map.get(k) {
                        None => true,
                        Some(Value::Null) => !flag(sub, "nullable"),
                        Some(_) => false,
                    };
                    if missing {
                        map.insert(k.clone(), def.clone());
                    }
                }
            }
            let extra = additional(schema);
            for (k, v) in map.iter_mut() {
                if let Some(sub) = properties(schema).and_then(|p| p.get(k)).or(extra) {
                    default(sub, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                items.iter_mut().for_each(|v| default(item, v));
            }
        }
        _ => {}
    }
}

/// The errors of `obj` against its schema, with upstream's messages
/// (`spec.replicas: Invalid value: "string": spec.replicas in body must be
/// of type integer: "string"`). `metadata` is the generic code's.
pub fn validate(schema: &Value, obj: &Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    let Some(map) = obj.as_object() else {
        return errs;
    };
    check_object(schema, map, "", true, &mut errs);
    errs
}

/// The JSON type of a value as upstream's validator names it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check_object(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    root: bool,
    errs: &mut Vec<Cause>,
) {
    for req in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(req) {
            errs.push(required(&join(path, req)));
        }
    }
    let props = properties(schema);
    let extra = additional(schema);
    for (k, v) in map {
        if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(sub) = props.and_then(|p| p.get(k)).or(extra) {
            check(sub, v, &join(path, k), errs);
        }
    }
    let count = map.len() as u64;
    let bound = |key: &str| schema.get(key).and_then(Value::as_u64);
    if let Some(max) = bound("maxProperties").filter(|m| count > *m) {
        errs.push(too_many(path, count as usize, max as usize));
    }
    if let Some(min) = bound("minProperties").filter(|m| count < *m) {
        errs.push(invalid(
            path,
            count,
            &format!("{path} in body should have at least {min} properties"),
        ));
    }
}

/// Validates one value (not the root) against its schema.
fn check(schema: &Value, v: &Value, path: &str, errs: &mut Vec<Cause>) {
    if v.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() {
            let ty = schema["type"].as_str().unwrap_or("");
            errs.push(type_invalid(
                path,
                &json!("null"),
                &format!("{path} in body must be of type {ty}: \"null\""),
            ));
        }
        return;
    }
    let actual = type_name(v);
    if flag(schema, "x-kubernetes-int-or-string") {
        if !matches!(actual, "integer" | "string") {
            errs.push(type_invalid(
                path,
                &json!(actual),
                &format!("{path} in body must be of type integer,string: \"{actual}\""),
            ));
            return;
        }
    } else if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let fits = ty == actual || (ty == "number" && actual == "integer");
        if !fits {
            errs.push(type_invalid(
                path,
                &json!(actual),
                &format!("{path} in body must be of type {ty}: \"{actual}\""),
            ));
            return;
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        if !values.contains(v) {
            let supported: Vec<String> = values.iter().map(Value::to_string).collect();
            errs.push(Cause {
                reason: "FieldValueNotSupported",
                message: format!(
                    "Unsupported value: {v}: supported values: {}",
                    supported.join(", ")
                ),
                field: path.to_string(),
            });
        }
    }
    match v {
        Value::Number(n) => check_number(schema, n.as_f64().unwrap_or(0.0), v, path, errs),
        Value::String(s) => check_string(schema, s, path, errs),
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if n > max {
                    errs.push(too_many(path, n as usize, max as usize));
                }
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if n < min {
                    errs.push(invalid(
                        path,
                        n,
                        &format!("{path} in body should have at least {min} items"),
                    ));
                }
            }
            if let Some(item) = schema.get("items") {
                for (i, x) in items.iter().enumerate() {
                    check(item, x, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(map) => {
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            if embedded {
                for key in ["apiVersion", "kind"] {
                    if map
                        .get(key)
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        errs.push(required(&join(path, key)));
                    }
                }
            }
            check_object(schema, map, path, embedded, errs);
        }
        _ => {}
    }
}

fn check_number(schema: &Value, n: f64, shown: &Value, path: &str, errs: &mut Vec<Cause>) {
    let num = |key: &str| schema.get(key).and_then(Value::as_f64);
    let show = |x: f64| {
        json!(x).as_f64().map_or(x.to_string(), |f| {
            if f.fract() == 0.0 {
                format!("{}", f as i64)
            } else {
                f.to_string()
            }
        })
    };
    if let Some(max) = num("maximum") {
        let exclusive = flag(schema, "exclusiveMaximum");
        if (exclusive && n >= max) || n > max {
            let rel = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            errs.push(invalid(
                path,
                shown.clone(),
                &format!("{path} in body should be {rel} {}", show(max)),
            ));
        }
    }
    if let Some(min) = num("minimum") {
        let exclusive = flag(schema, "exclusiveMinimum");
        if (exclusive && n <= min) || n < min {
            let rel = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errs.push(invalid(
                path,
                shown.clone(),
                &format!("{path} in body should be {rel} {}", show(min)),
            ));
        }
    }
    if let Some(m) = num("multipleOf").filter(|m| *m > 0.0) {
        if (n / m).fract() != 0.0 {
            errs.push(invalid(
                path,
                shown.clone(),
                &format!("{path} in body should be a multiple of {}", show(m)),
            ));
        }
    }
}

fn check_string(schema: &Value, s: &str, path: &str, errs: &mut Vec<Cause>) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        if len > max {
            errs.push(too_long(path, max as usize));
        }
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        if len < min {
            errs.push(invalid(
                path,
                s,
                &format!("{path} in body should be at least {min} chars long"),
            ));
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        if regex::Regex::new(pattern).is_ok_and(|re| !re.is_match(s)) {
            errs.push(invalid(
                path,
                s,
                &format!("{path} in body should match '{pattern}'"),
            ));
        }
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        if !format_ok(format, s) {
            errs.push(invalid(
                path,
                s,
                &format!("{path} in body must be of type {format}: {}", json!(s)),
            ));
        }
    }
}

/// The string formats checked; others are accepted as upstream's
/// unknown formats are.
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => s.parse::<jiff::Timestamp>().is_ok(),
        "date" => s.parse::<jiff::civil::Date>().is_ok(),
        "uuid" => {
            let parts: Vec<&str> = s.split('-').collect();
            parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
                && parts
                    .iter()
                    .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
        }
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "byte" => base64_ok(s),
        _ => true,
    }
}

fn base64_ok(s: &str) -> bool {
    s.len() % 4 == 0
        && s.trim_end_matches('=').len() + 2 >= s.len()
        && s.trim_end_matches('=')
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["image"], "properties": {
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                "image": {"type": "string", "minLength": 2, "maxLength": 20, "pattern": "^[a-z:0-9.]+$"},
                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
                "port": {"x-kubernetes-int-or-string": true},
                "tags": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string"}},
                "note": {"type": "string", "nullable": true},
                "when": {"type": "string", "format": "date-time"},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "properties": {"spec": {"type": "object"}}}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }})
    }

    fn messages(obj: Value) -> Vec<String> {
        validate(&schema(), &obj)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn types_are_upstreams_messages() {
        assert_eq!(
            messages(json!({"spec": {"image": "nginx", "replicas": "three"}})),
            vec![
                "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
            ]
        );
        assert_eq!(
            messages(json!({"spec": {"image": "nginx", "port": true}})),
            vec![
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""
            ]
        );
        assert!(
            messages(json!({"spec": {"image": "nginx", "port": "http", "note": null}})).is_empty()
        );
        assert!(messages(json!({"spec": {"image": "nginx", "port": 80}})).is_empty());
    }

    #[test]
    fn bounds_lengths_patterns_and_enums() {
        let got = messages(
            json!({"spec": {"replicas": 11, "image": "N", "mode": "warp",
            "tags": ["a", "b", "c"], "when": "yesterday"}}),
        );
        assert_eq!(
            got,
            vec![
                "spec.image: Invalid value: \"N\": spec.image in body should be at least 2 chars long",
                "spec.image: Invalid value: \"N\": spec.image in body should match '^[a-z:0-9.]+$'",
                "spec.mode: Unsupported value: \"warp\": supported values: \"fast\", \"slow\"",
                "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
                "spec.tags: Too many: 3: must have at most 2 items",
                "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"",
            ]
        );
        assert_eq!(
            messages(json!({"spec": {"tags": []}})),
            vec![
                "spec.image: Required value",
                "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"
            ]
        );
        assert_eq!(
            messages(json!({"spec": {"image": "nginx", "template": {"spec": {}}}})),
            vec![
                "spec.template.apiVersion: Required value",
                "spec.template.kind: Required value"
            ]
        );
    }

    #[test]
    fn pruning_keeps_declared_preserved_and_embedded_fields() {
        let mut obj = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w"}, "junk": 1,
            "spec": {"image": "nginx", "colour": "red",
                "extra": {"anything": {"deep": 1}},
                "labels": {"a": "b"},
                "tags": ["x"],
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                    "spec": {"x": 1}, "other": 2}},
            "status": {"ready": true, "phase": "Up"}});
        prune(&schema(), &mut obj);
        assert_eq!(
            obj,
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                "spec": {"image": "nginx", "extra": {"anything": {"deep": 1}},
                    "labels": {"a": "b"}, "tags": ["x"],
                    "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                        "spec": {}}},
                "status": {"ready": true}})
        );
    }

    #[test]
    fn defaults_fill_absent_fields_only() {
        let mut obj = json!({"spec": {"image": "nginx", "mode": "slow"}});
        default(&schema(), &mut obj);
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(obj["spec"]["mode"], "slow");
        let mut obj = json!({"spec": {"image": "nginx", "replicas": null}});
        default(&schema(), &mut obj);
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(obj["spec"]["mode"], "fast");
    }
}
