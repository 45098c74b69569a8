//! `fieldValidation`: what happens to fields a built-in kind does not have,
//! and to fields given twice.
//!
//! The object the client sent is walked against its schema from the catalog
//! ([`crate::api::schema`]), in the order the client wrote it and with its
//! repeated keys (serde_json would keep only the last), collecting upstream's
//! strict-decoding problems: `unknown field "spec.foo"`, `duplicate field
//! "spec.replicas"` (paths with `[i]` for list items). Then, as upstream's
//! typed decoding does, unknown fields are dropped from what is stored.
//!
//! * `Strict`: any problem is a 400 `BadRequest` (`<Kind> in version "<v>"
//!   cannot be handled as a <Kind>: strict decoding error: ...`); for a
//!   patch, a 422 `Invalid` on the field `patch`, as upstream's patcher.
//! * `Warn` (the default when the parameter is absent, as upstream's since
//!   1.27): each problem is a `Warning` header.
//! * `Ignore`: nothing is said.
//!
//! YAML bodies report a repeated key as YAML does (`line 5: key "name"
//! already set in map`); protobuf bodies cannot carry unknown or repeated
//! fields.

use std::collections::HashSet;
use std::fmt;

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use super::Ctx;
use crate::api::response::content_type;
use crate::api::schema::{self, Catalog};
use crate::api::status::ApiStatus;
use crate::api::warning;

/// The client's choice of `fieldValidation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    Ignore,
    Warn,
    Strict,
}

/// Which request options a directive came with, for the error wording.
#[derive(Debug, Clone, Copy)]
pub enum Options {
    Create,
    Update,
    Patch,
}

impl Options {
    fn kind(self) -> &'static str {
        match self {
            Options::Create => "CreateOptions",
            Options::Update => "UpdateOptions",
            Options::Patch => "PatchOptions",
        }
    }
}

/// The request's directive; an unknown value is 422 as upstream words it.
pub fn directive(ctx: &Ctx, options: Options) -> Result<Directive, ApiStatus> {
    match ctx.query.get("fieldValidation").unwrap_or("") {
        "" | "Warn" => Ok(Directive::Warn),
        "Ignore" => Ok(Directive::Ignore),
        "Strict" => Ok(Directive::Strict),
        other => {
            let message = format!(
                "Unsupported value: \"{other}\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
            );
            let mut status = ApiStatus::new(
                422,
                "Invalid",
                format!(
                    "{}.meta.k8s.io \"\" is invalid: fieldValidation: {message}",
                    options.kind()
                ),
            );
            status.details = Some(json!({
                "group": "meta.k8s.io",
                "kind": options.kind(),
                "causes": [{"reason": "FieldValueNotSupported", "message": message, "field": "fieldValidation"}],
            }));
            Err(status)
        }
    }
}

/// A JSON document as written: members in order, repeated keys kept.
#[derive(Debug)]
enum Raw {
    Object(Vec<(String, Raw)>),
    Array(Vec<Raw>),
    Scalar,
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Raw, E> {
                Ok(Raw::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Raw, E> {
                Ok(Raw::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Raw, E> {
                Ok(Raw::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Raw, E> {
                Ok(Raw::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Raw, E> {
                Ok(Raw::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Scalar)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Scalar)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
                Raw::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Raw::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Raw>()? {
                    members.push((k, v));
                }
                Ok(Raw::Object(members))
            }
        }
        d.deserialize_any(RawVisitor)
    }
}

impl Raw {
    /// The shape of a decoded value (no repeated keys; keys in sorted
    /// order, as upstream's YAML-to-JSON conversion leaves them).
    fn of(value: &Value) -> Raw {
        match value {
            Value::Object(map) => {
                Raw::Object(map.iter().map(|(k, v)| (k.clone(), Raw::of(v))).collect())
            }
            Value::Array(items) => Raw::Array(items.iter().map(Raw::of).collect()),
            _ => Raw::Scalar,
        }
    }
}

/// What a (resolved) schema says about the members of an object.
enum Shape<'a> {
    /// Named fields.
    Struct(&'a serde_json::Map<String, Value>),
    /// Any keys, values of one schema.
    Map(&'a Value),
    /// A list of one schema.
    List(&'a Value),
    /// Scalars and free-form values: not looked into.
    Opaque,
}

fn shape<'a>(catalog: &'a Catalog, schema: &'a Value) -> Shape<'a> {
    let schema = catalog.resolve(schema);
    if let Some(Value::Object(props)) = schema.get("properties") {
        return Shape::Struct(props);
    }
    if let Some(values) = catalog.values(schema) {
        return Shape::Map(values);
    }
    if let Some(items) = catalog.items(schema) {
        return Shape::List(items);
    }
    Shape::Opaque
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Collects strict-decoding problems, each once, in the order found.
struct Problems {
    list: Vec<String>,
    seen: HashSet<String>,
}

impl Problems {
    fn new() -> Self {
        Problems {
            list: Vec::new(),
            seen: HashSet::new(),
        }
    }

    fn push(&mut self, problem: String) {
        if self.seen.insert(problem.clone()) {
            self.list.push(problem);
        }
    }

    /// Walks `raw` against `schema`.
    fn walk(&mut self, catalog: &Catalog, raw: &Raw, schema: &Value, path: &str) {
        match (raw, shape(catalog, schema)) {
            (Raw::Object(members), Shape::Struct(props)) => {
                let mut keys = HashSet::new();
                for (key, value) in members {
                    let here = join(path, key);
                    match props.get(key) {
                        None => self.push(format!("unknown field \"{here}\"")),
                        Some(_) if !keys.insert(key.as_str()) => {
                            self.push(format!("duplicate field \"{here}\""));
                        }
                        Some(prop) => self.walk(catalog, value, prop, &here),
                    }
                }
            }
            (Raw::Object(members), Shape::Map(values)) => {
                let mut keys = HashSet::new();
                for (key, value) in members {
                    let here = join(path, key);
                    if !keys.insert(key.as_str()) {
                        self.push(format!("duplicate field \"{here}\""));
                    }
                    self.walk(catalog, value, values, &here);
                }
            }
            (Raw::Array(items), Shape::List(item)) => {
                for (i, value) in items.iter().enumerate() {
                    self.walk(catalog, value, item, &format!("{path}[{i}]"));
                }
            }
            _ => {}
        }
    }
}

/// Only repeated keys: for bodies without a schema (patches).
fn duplicates(raw: &Raw, path: &str, problems: &mut Problems) {
    match raw {
        Raw::Object(members) => {
            let mut keys = HashSet::new();
            for (key, value) in members {
                let here = join(path, key);
                if !keys.insert(key.as_str()) {
                    problems.push(format!("duplicate field \"{here}\""));
                }
                duplicates(value, &here, problems);
            }
        }
        Raw::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                duplicates(value, &format!("{path}[{i}]"), problems);
            }
        }
        Raw::Scalar => {}
    }
}

/// Drops the fields the schema does not have.
pub fn prune(catalog: &Catalog, value: &mut Value, schema: &Value) {
    match (value, shape(catalog, schema)) {
        (Value::Object(map), Shape::Struct(props)) => {
            map.retain(|k, _| props.contains_key(k));
            for (k, v) in map.iter_mut() {
                if let Some(prop) = props.get(k) {
                    prune(catalog, v, prop);
                }
            }
        }
        (Value::Object(map), Shape::Map(values)) => {
            for v in map.values_mut() {
                prune(catalog, v, values);
            }
        }
        (Value::Array(items), Shape::List(item)) => {
            for v in items.iter_mut() {
                prune(catalog, v, item);
            }
        }
        _ => {}
    }
}

fn is_yaml(ctx: &Ctx) -> bool {
    matches!(
        content_type(&ctx.headers).as_str(),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "application/apply-patch+yaml"
    )
}

/// The first repeated key of a YAML body, as YAML words it.
fn yaml_duplicate(body: &[u8]) -> Option<String> {
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    };
    let err = serde_saphyr::from_slice_with_options::<Value>(body, options).err()?;
    match err.without_snippet() {
        serde_saphyr::Error::DuplicateMappingKey { key, location } => Some(format!(
            "line {}: key \"{}\" already set in map",
            location.line(),
            key.as_deref().unwrap_or_default()
        )),
        _ => None,
    }
}

/// The problems of a create or update body, `obj` being its decoded form.
fn body_problems(ctx: &Ctx, body: &Bytes, obj: &Value, schema: &Value) -> Vec<String> {
    let catalog = schema::catalog();
    let mut problems = Problems::new();
    match content_type(&ctx.headers).as_str() {
        "application/vnd.kubernetes.protobuf" => {}
        _ if is_yaml(ctx) => {
            let mut unknown = Problems::new();
            unknown.walk(catalog, &Raw::of(obj), schema, "");
            if let Some(dup) = yaml_duplicate(body) {
                problems.push(format!("yaml: unmarshal errors:\n  {dup}"));
            }
            unknown.list.into_iter().for_each(|p| problems.push(p));
        }
        _ => match serde_json::from_slice::<Raw>(body) {
            Ok(raw) => problems.walk(catalog, &raw, schema, ""),
            Err(_) => problems.walk(catalog, &Raw::of(obj), schema, ""),
        },
    }
    problems.list
}

fn report(directive: Directive, problems: &[String]) {
    if directive == Directive::Warn {
        for p in problems {
            // A YAML report is one block of lines; warn line by line.
            match p.strip_prefix("yaml: unmarshal errors:\n") {
                Some(lines) => lines.lines().for_each(|l| warning::add(l.trim())),
                None => warning::add(p.as_str()),
            }
        }
    }
}

/// Checks a create or update body (`obj`, as sent, before conversion) and
/// drops its unknown fields: `Strict` problems fail the request, `Warn`
/// ones become warnings.
pub fn check_body(
    ctx: &Ctx,
    options: Options,
    body: &Bytes,
    obj: &mut Value,
) -> Result<(), ApiStatus> {
    let directive = directive(ctx, options)?;
    let kind = ctx.kind();
    let catalog = schema::catalog();
    let Some(schema) = catalog.root(kind.group, kind.version, kind.kind) else {
        return check_custom(ctx, directive, body, obj);
    };
    if directive != Directive::Ignore {
        let problems = body_problems(ctx, body, obj, schema);
        if directive == Directive::Strict && !problems.is_empty() {
            return Err(ApiStatus::bad_request(format!(
                "{k} in version \"{v}\" cannot be handled as a {k}: strict decoding error: {}",
                problems.join(", "),
                k = kind.kind,
                v = kind.version,
            )));
        }
        report(directive, &problems);
    }
    prune(catalog, obj, schema);
    Ok(())
}

/// Checks a patch: repeated keys in the patch body, unknown fields in the
/// patched object (which loses them).
pub fn check_patched(ctx: &Ctx, patch_body: &Bytes, patched: &mut Value) -> Result<(), ApiStatus> {
    let directive = directive(ctx, Options::Patch)?;
    let kind = ctx.kind();
    let catalog = schema::catalog();
    let Some(schema) = catalog.root(kind.group, kind.version, kind.kind) else {
        return check_custom(ctx, directive, patch_body, patched);
    };
    if directive != Directive::Ignore {
        let mut problems = Problems::new();
        if let Ok(raw) = serde_json::from_slice::<Raw>(patch_body) {
            duplicates(&raw, "", &mut problems);
        }
        problems.walk(catalog, &Raw::of(patched), schema, "");
        if directive == Directive::Strict && !problems.list.is_empty() {
            let detail = format!("strict decoding error: {}", problems.list.join(", "));
            let value =
                serde_json::to_string(&Value::String(patched.to_string())).unwrap_or_default();
            let message = format!("Invalid value: {value}: {detail}");
            let mut status = ApiStatus::new(
                422,
                "Invalid",
                format!(" \"\" is invalid: patch: {message}"),
            );
            status.details = Some(json!({
                "causes": [{"reason": "FieldValueInvalid", "message": message, "field": "patch"}],
            }));
            return Err(status);
        }
        report(directive, &problems.list);
    }
    prune(catalog, patched, schema);
    Ok(())
}

/// Custom kinds: the fields their CRD's structural schema would prune are
/// unknown (the custom resource strategy prunes them on write).
fn check_custom(
    ctx: &Ctx,
    directive: Directive,
    body: &Bytes,
    obj: &Value,
) -> Result<(), ApiStatus> {
    if directive == Directive::Ignore {
        return Ok(());
    }
    let kind = ctx.kind();
    let Some(kept) = crate::api::crd::pruned(kind, obj) else {
        return Ok(());
    };
    let mut problems = Vec::new();
    // Repeated keys: in a JSON body, or as YAML reports them.
    if is_yaml(ctx) {
        if let Some(dup) = yaml_duplicate(body) {
            problems.push(format!("yaml: unmarshal errors:\n  {dup}"));
        }
    } else if let Ok(raw) = serde_json::from_slice::<Raw>(body) {
        let mut repeated = Problems::new();
        duplicates(&raw, "", &mut repeated);
        problems.extend(repeated.list);
    }
    dropped(obj, &kept, "", &mut problems);
    if directive == Directive::Strict && !problems.is_empty() {
        return Err(ApiStatus::bad_request(format!(
            "{k} in version \"{v}\" cannot be handled as a {k}: strict decoding error: {}",
            problems.join(", "),
            k = kind.kind,
            v = kind.version,
        )));
    }
    report(directive, &problems);
    Ok(())
}

/// The fields of `sent` that `kept` lacks, as `unknown field` problems.
fn dropped(sent: &Value, kept: &Value, path: &str, out: &mut Vec<String>) {
    match (sent, kept) {
        (Value::Object(s), Value::Object(k)) => {
            for (key, value) in s {
                let here = join(path, key);
                match k.get(key) {
                    None => out.push(format!("unknown field \"{here}\"")),
                    Some(kv) => dropped(value, kv, &here, out),
                }
            }
        }
        (Value::Array(s), Value::Array(k)) => {
            for (i, (sv, kv)) in s.iter().zip(k).enumerate() {
                dropped(sv, kv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(group: &str, version: &str, kind: &str, body: &str) -> Vec<String> {
        let catalog = schema::catalog();
        let schema = catalog.root(group, version, kind).expect("schema");
        let raw: Raw = serde_json::from_str(body).expect("json");
        let mut problems = Problems::new();
        problems.walk(catalog, &raw, schema, "");
        problems.list
    }

    #[test]
    fn finds_unknown_and_duplicate_fields_in_document_order() {
        let body = r#"{
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "name": "b", "labels": {"app": "x"}, "unknownMeta": 1},
            "spec": {
                "unknown1": 1, "unknownDupe": 1, "unknownDupe": 2,
                "paused": true, "paused": false,
                "selector": {"matchLabels": {"app": "x"}},
                "template": {"spec": {"containers": [{
                    "name": "c", "image": "i", "unknownNested": 1,
                    "imagePullPolicy": "Always", "imagePullPolicy": "Never"
                }]}}
            }
        }"#;
        assert_eq!(
            problems_of("apps", "v1", "Deployment", body),
            vec![
                r#"duplicate field "metadata.name""#,
                r#"unknown field "metadata.unknownMeta""#,
                r#"unknown field "spec.unknown1""#,
                r#"unknown field "spec.unknownDupe""#,
                r#"duplicate field "spec.paused""#,
                r#"unknown field "spec.template.spec.containers[0].unknownNested""#,
                r#"duplicate field "spec.template.spec.containers[0].imagePullPolicy""#,
            ]
        );
    }

    #[test]
    fn maps_and_free_form_fields_are_not_unknown() {
        let body = r#"{"metadata": {"name": "a", "annotations": {"x/y": "1", "x/y": "2"},
            "managedFields": [{"fieldsV1": {"f:data": {"f:a": {}}}}]},
            "data": {"anything": "goes"}, "extra": null}"#;
        assert_eq!(
            problems_of("", "v1", "ConfigMap", body),
            vec![
                r#"duplicate field "metadata.annotations.x/y""#,
                r#"unknown field "extra""#,
            ]
        );
    }

    #[test]
    fn prune_drops_only_unknown_fields() {
        let catalog = schema::catalog();
        let schema = catalog.root("", "v1", "Pod").expect("pod");
        let mut pod = json!({"metadata": {"name": "p", "labels": {"a": "b"}, "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolcy": "Always"}],
                     "nodeSelector": {"k": "v"}},
            "top": true});
        prune(catalog, &mut pod, schema);
        assert_eq!(
            pod,
            json!({"metadata": {"name": "p", "labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}], "nodeSelector": {"k": "v"}}})
        );
    }

    #[test]
    fn yaml_duplicates_name_their_line() {
        let body = b"kind: ConfigMap\nmetadata:\n  name: a\n  name: b\n";
        assert_eq!(
            yaml_duplicate(body).as_deref(),
            Some(r#"line 4: key "name" already set in map"#)
        );
        assert_eq!(yaml_duplicate(b"a: 1\nb: 2\n"), None);
    }

    fn ctx(path: &str, query: &str, content_type: &'static str) -> Ctx {
        let crate::api::request::Route::Resource(target) = crate::api::request::route(path) else {
            panic!("{path} is a resource path")
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        Ctx {
            target,
            query: crate::api::request::Query::parse(Some(query)).expect("query"),
            headers,
            user: None,
        }
    }

    #[tokio::test]
    async fn directives_decide_between_failure_warnings_and_silence() {
        let body = Bytes::from_static(
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"},"bogus":1}"#,
        );
        let path = "/api/v1/namespaces/default/configmaps";
        let decoded = || serde_json::from_slice::<Value>(&body).expect("json");

        let strict = ctx(path, "fieldValidation=Strict", "application/json");
        let err = check_body(&strict, Options::Create, &body, &mut decoded()).expect_err("strict");
        assert_eq!((err.code, err.reason), (400, "BadRequest"));

        for query in ["fieldValidation=Warn", ""] {
            let warn = ctx(path, query, "application/json");
            let mut obj = decoded();
            let (result, warnings) =
                warning::collect(async { check_body(&warn, Options::Create, &body, &mut obj) })
                    .await;
            assert!(result.is_ok());
            assert_eq!(warnings, vec![r#"unknown field "bogus""#.to_string()]);
            assert!(obj.get("bogus").is_none());
        }

        let ignore = ctx(path, "fieldValidation=Ignore", "application/json");
        let mut obj = decoded();
        let (result, warnings) =
            warning::collect(async { check_body(&ignore, Options::Create, &body, &mut obj) }).await;
        assert!(result.is_ok() && warnings.is_empty());
        assert!(obj.get("bogus").is_none() && obj["data"]["k"] == "v");

        let bad = ctx(path, "fieldValidation=Loud", "application/json");
        let err = check_body(&bad, Options::Update, &body, &mut decoded()).expect_err("bad value");
        assert_eq!(err.code, 422);
        assert!(err.message.starts_with("UpdateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Loud\""), "{}", err.message);
    }

    #[test]
    fn strict_patches_fail_on_the_patch_field() {
        let strict = ctx(
            "/api/v1/namespaces/default/configmaps/a",
            "fieldValidation=Strict",
            "application/merge-patch+json",
        );
        let patch = Bytes::from_static(br#"{"data":{"x":"1","x":"2"}}"#);
        let mut patched = json!({"metadata": {"name": "a"}, "data": {"x": "2"}, "extra": true});
        let err = check_patched(&strict, &patch, &mut patched).expect_err("strict");
        assert_eq!((err.code, err.reason), (422, "Invalid"));
        assert!(
            err.message.ends_with(
                r#"strict decoding error: duplicate field "data.x", unknown field "extra""#
            ),
            "{}",
            err.message
        );
        assert_eq!(
            err.details.as_ref().map(|d| &d["causes"][0]["field"]),
            Some(&json!("patch"))
        );
    }

    #[test]
    fn yaml_bodies_report_lines_then_unknown_fields() {
        let yaml = ctx(
            "/api/v1/namespaces/default/configmaps",
            "fieldValidation=Strict",
            "application/yaml",
        );
        let body =
            Bytes::from_static(b"kind: ConfigMap\nmetadata:\n  name: a\n  name: b\nzzz: 1\n");
        let mut obj = json!({"kind": "ConfigMap", "metadata": {"name": "b"}, "zzz": 1});
        let err = check_body(&yaml, Options::Create, &body, &mut obj).expect_err("strict");
        assert!(
            err.message.ends_with("strict decoding error: yaml: unmarshal errors:\n  line 4: key \"name\" already set in map, unknown field \"zzz\""),
            "{}",
            err.message
        );
    }
}
