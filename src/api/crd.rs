//! Custom resources: the kinds CustomResourceDefinitions add at run time.
//!
//! The generic machinery works on `&'static KindInfo`, so each distinct
//! definition (group, version, names, scope, subresources) is interned once
//! as a leaked row; the set is bounded by the definitions ever seen, not by
//! requests. [`served`] is the current set that `registry::lookup`,
//! discovery and routing consult after the built-in table; each served row
//! keeps its CRD for what a row cannot carry: the schema, printer columns
//! and scale paths. Objects are stored under
//! `/registry/<group>/<plural>/` as upstream; conversion is `None`
//! (only `apiVersion` differs between versions).
//!
//! The table is process-wide, as the kind table is; one server runs per
//! process.

pub mod controller;
pub mod schema;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Value, json};

use crate::api::kinds::{Cause, Strategy};
use crate::api::registry::{KindInfo, Subresource};
use crate::api::tables::custom::CustomColumn;

/// The finalizer that keeps a CRD until its objects are deleted.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// What makes two rows the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RowKey {
    group: String,
    version: String,
    kind: String,
    plural: String,
    singular: String,
    namespaced: bool,
    short_names: Vec<String>,
    categories: Vec<String>,
    status: bool,
    scale: bool,
}

/// One served custom kind: its row and its CRD.
#[derive(Clone)]
struct Served {
    kind: &'static KindInfo,
    crd: Arc<Value>,
}

#[derive(Default)]
struct Table {
    /// CRD name → the rows it serves, in version priority order.
    served: HashMap<String, Vec<Served>>,
}

static INTERNED: Mutex<Option<HashMap<RowKey, &'static KindInfo>>> = Mutex::new(None);
static TABLE: RwLock<Option<Table>> = RwLock::new(None);

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_list(list: &[String]) -> &'static [&'static str] {
    Box::leak(
        list.iter()
            .map(|s| leak(s.clone()))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

/// The one row for `key`, made on first sight.
fn intern(key: RowKey) -> &'static KindInfo {
    let mut guard = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(row) = map.get(&key) {
        return row;
    }
    let mut subs = Vec::new();
    if key.status {
        subs.push(Subresource::Status);
    }
    if key.scale {
        subs.push(Subresource::Scale);
    }
    let row: &'static KindInfo = Box::leak(Box::new(KindInfo {
        group: leak(key.group.clone()),
        version: leak(key.version.clone()),
        kind: leak(key.kind.clone()),
        plural: leak(key.plural.clone()),
        singular: leak(key.singular.clone()),
        namespaced: key.namespaced,
        short_names: leak_list(&key.short_names),
        categories: leak_list(&key.categories),
        subresources: Box::leak(subs.into_boxed_slice()),
        storage: leak(format!("{}/{}", key.group, key.plural)),
    }));
    map.insert(key, row);
    row
}

pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

/// Kubernetes version priority: GA before beta before alpha, higher
/// numbers first, then non-matching names alphabetically.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        let (level, n) = match tail {
            "" => (2, 0),
            t if t.starts_with("beta") => (1, t[4..].parse().ok()?),
            t if t.starts_with("alpha") => (0, t[5..].parse().ok()?),
            _ => return None,
        };
        Some((major, level, n))
    }
    match (parse(a), parse(b)) {
        (Some((ma, la, na)), Some((mb, lb, nb))) => (lb, mb, nb).cmp(&(la, ma, na)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The rows a CRD serves: one per served version, in priority order.
pub fn rows_of(crd: &Value) -> Vec<&'static KindInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let (group, kind, plural) = (s(&spec["group"]), s(&names["kind"]), s(&names["plural"]));
    if group.is_empty() || kind.is_empty() || plural.is_empty() {
        return Vec::new();
    }
    let singular = match s(&names["singular"]) {
        x if x.is_empty() => kind.to_lowercase(),
        x => x,
    };
    let mut versions: Vec<&Value> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool() == Some(true))
        .collect();
    versions.sort_by(|a, b| {
        version_order(
            a["name"].as_str().unwrap_or(""),
            b["name"].as_str().unwrap_or(""),
        )
    });
    versions
        .into_iter()
        .filter_map(|v| {
            let version = v["name"].as_str().filter(|n| !n.is_empty())?;
            Some(intern(RowKey {
                group: group.clone(),
                version: version.to_string(),
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced: spec["scope"] == "Namespaced",
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                status: v
                    .pointer("/subresources/status")
                    .is_some_and(Value::is_object),
                scale: v
                    .pointer("/subresources/scale")
                    .is_some_and(Value::is_object),
            }))
        })
        .collect()
}

/// Serves `crd`'s versions (replacing what it served before).
pub fn register(crd: &Value) {
    let name = crd["metadata"]["name"].as_str().unwrap_or("").to_string();
    let crd = Arc::new(crd.clone());
    let served: Vec<Served> = rows_of(&crd)
        .into_iter()
        .map(|kind| Served {
            kind,
            crd: Arc::clone(&crd),
        })
        .collect();
    let mut guard = TABLE.write().unwrap_or_else(|e| e.into_inner());
    guard
        .get_or_insert_with(Table::default)
        .served
        .insert(name, served);
}

/// Whether the CRD named `name` is served now.
pub fn is_registered(name: &str) -> bool {
    let guard = TABLE.read().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().is_some_and(|t| t.served.contains_key(name))
}

/// A create of a custom object whose CRD is being deleted: `405`, as
/// upstream refuses it.
pub fn refuse_create(kind: &KindInfo) -> Option<crate::api::status::ApiStatus> {
    let terminating = all_served().into_iter().any(|s| {
        std::ptr::eq(s.kind, kind) && s.crd["metadata"].get("deletionTimestamp").is_some()
    });
    terminating.then(|| {
        crate::api::status::ApiStatus::new(
            405,
            "MethodNotAllowed",
            "create not allowed while custom resource definition is terminating",
        )
    })
}

/// Stops serving the CRD named `name`.
pub fn unregister(name: &str) {
    let mut guard = TABLE.write().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = guard.as_mut() {
        t.served.remove(name);
    }
}

fn all_served() -> Vec<Served> {
    let guard = TABLE.read().unwrap_or_else(|e| e.into_inner());
    let Some(t) = guard.as_ref() else {
        return Vec::new();
    };
    let mut names: Vec<&String> = t.served.keys().collect();
    names.sort();
    names
        .into_iter()
        .flat_map(|n| t.served[n].iter().cloned())
        .collect()
}

/// Every custom kind served now, by CRD name, versions in priority order.
pub fn served() -> Vec<&'static KindInfo> {
    all_served().into_iter().map(|s| s.kind).collect()
}

/// Whether `(group, kind)` is a custom kind served now.
pub fn is_custom(group: &str, kind: &str) -> bool {
    !group.is_empty() && served().iter().any(|k| k.group == group && k.kind == kind)
}

/// The CRD version entry serving `group`/`version` `kind`.
fn version_of(group: &str, version: &str, kind: &str) -> Option<Value> {
    let s = all_served()
        .into_iter()
        .find(|s| s.kind.group == group && s.kind.version == version && s.kind.kind == kind)?;
    s.crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == version)
        .cloned()
}

fn version_for(kind: &KindInfo) -> Option<Value> {
    version_of(kind.group, kind.version, kind.kind)
}

/// The printer columns of a custom kind: its `additionalPrinterColumns`,
/// else upstream's default Age column. `None` for built-in kinds.
pub fn printer_columns(kind: &KindInfo) -> Option<Vec<CustomColumn>> {
    let v = version_for(kind)?;
    let listed = v["additionalPrinterColumns"]
        .as_array()
        .filter(|c| !c.is_empty());
    Some(match listed {
        Some(cols) => cols.iter().filter_map(CustomColumn::from_crd).collect(),
        None => vec![CustomColumn {
            name: "Age".into(),
            ty: "date".into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        }],
    })
}

/// The `subresources.scale` paths of a custom kind:
/// (specReplicasPath, statusReplicasPath, labelSelectorPath).
pub fn scale_paths(kind: &KindInfo) -> Option<(String, String, Option<String>)> {
    let v = version_for(kind)?;
    let scale = v.pointer("/subresources/scale")?;
    let s = |k: &str| scale.get(k).and_then(Value::as_str).map(String::from);
    Some((
        s("specReplicasPath")?,
        s("statusReplicasPath")?,
        s("labelSelectorPath"),
    ))
}

/// The segments of a `.spec.replicas`-style path.
pub fn path_segments(path: &str) -> Vec<String> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The value at a `.a.b` path.
pub fn at_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path_segments(path)
        .iter()
        .try_fold(obj, |v, seg| v.get(seg.as_str()))
}

/// The `autoscaling/v1` Scale of a custom object.
pub fn scale_of(kind: &KindInfo, obj: &Value) -> Option<Value> {
    let (spec_path, status_path, selector_path) = scale_paths(kind)?;
    let meta = &obj["metadata"];
    let selector = selector_path
        .and_then(|p| at_path(obj, &p).and_then(Value::as_str).map(String::from))
        .unwrap_or_default();
    Some(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": at_path(obj, &spec_path).and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": at_path(obj, &status_path).and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    }))
}

/// The strategy of every custom kind: schema pruning, defaulting and
/// validation by the object's own `apiVersion` and `kind`.
pub struct CustomStrategy;

/// The CRD version entry an object (with its `apiVersion` and `kind`)
/// belongs to.
fn version_of_object(obj: &Value) -> Option<Value> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let kind = obj.get("kind")?.as_str()?;
    let (group, version) = api_version.split_once('/')?;
    version_of(group, version, kind)
}

fn schema_for(obj: &Value) -> Option<Value> {
    version_of_object(obj)?
        .pointer("/schema/openAPIV3Schema")
        .cloned()
}

fn has_status_subresource(obj: &Value) -> bool {
    version_of_object(obj).is_some_and(|v| {
        v.pointer("/subresources/status")
            .is_some_and(Value::is_object)
    })
}

/// The part of an object whose changes bump `metadata.generation`:
/// everything but metadata, and but status when it is a subresource.
fn generation_content(obj: &Value, status_apart: bool) -> Value {
    let mut content = obj.clone();
    if let Some(m) = content.as_object_mut() {
        for key in ["metadata", "apiVersion", "kind"] {
            m.remove(key);
        }
        if status_apart {
            m.remove("status");
        }
    }
    content
}

/// Generations are the strategy's own (not the generic spec comparison):
/// upstream bumps them on any change outside metadata (and status, when it
/// is a subresource).
impl Strategy for CustomStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(schema) = schema_for(obj) {
            schema::prune(&schema, obj);
            schema::default(&schema, obj);
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if has_status_subresource(obj) {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        crate::api::object::meta_mut(obj).insert("generation".into(), json!(1));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let status_apart = has_status_subresource(new);
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let changed =
            generation_content(new, status_apart) != generation_content(old, status_apart);
        let next = if changed { generation + 1 } else { generation };
        crate::api::object::meta_mut(new).insert("generation".into(), json!(next));
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = crate::api::kinds::validation::validate_meta(obj);
        if let Some(schema) = schema_for(obj) {
            errs.extend(schema::validate(&schema, obj));
        }
        errs
    }
}

/// The OpenAPI v3 component of a custom kind (for `kubectl explain`): its
/// version's schema with `apiVersion`, `kind` and `metadata` declared.
pub fn openapi_schema(kind: &KindInfo) -> Option<Value> {
    let v = version_for(kind)?;
    let mut schema = v
        .pointer("/schema/openAPIV3Schema")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object"}));
    let obj = schema.as_object_mut()?;
    let props = obj
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()?;
    props.entry("apiVersion").or_insert_with(|| {
        json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."})
    });
    props.entry("kind").or_insert_with(|| {
        json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."})
    });
    props.insert(
        "metadata".into(),
        json!({
            "allOf": [{"$ref": format!("{}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", crate::api::schema::REF_PREFIX)}],
            "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        }),
    );
    obj.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([{"group": kind.group, "version": kind.version, "kind": kind.kind}]),
    );
    Some(schema)
}

/// `sent` as the schema of a custom kind prunes it, for strict field
/// validation to name what went; `None` for built-in kinds.
pub fn pruned(kind: &KindInfo, sent: &Value) -> Option<Value> {
    let v = version_for(kind)?;
    let schema = v.pointer("/schema/openAPIV3Schema")?;
    let mut kept = sent.clone();
    schema::prune(schema, &mut kept);
    Some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_follows_upstreams_rule() {
        let crd = |status: bool| {
            let subresources = if status {
                json!({"status": {}})
            } else {
                json!({})
            };
            json!({"metadata": {"name": format!("things.gen{status}.example.com")}, "spec": {
                "group": format!("gen{status}.example.com"), "scope": "Namespaced",
                "names": {"plural": "things", "kind": "Thing"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": subresources,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}})
        };
        for status in [true, false] {
            register(&crd(status));
            let api_version = format!("gen{status}.example.com/v1");
            let mut obj = json!({"apiVersion": api_version, "kind": "Thing",
                "metadata": {"name": "t"}, "spec": {"a": 1}, "status": {"b": 1}});
            CustomStrategy.prepare_for_create(&mut obj);
            assert_eq!(obj["metadata"]["generation"], 1);
            assert_eq!(obj.get("status").is_none(), status);
            let mut new = obj.clone();
            new["status"] = json!({"b": 2});
            CustomStrategy.prepare_for_update(&mut new, &obj);
            let bumped = if status { 1 } else { 2 };
            assert_eq!(
                new["metadata"]["generation"], bumped,
                "status subresource: {status}"
            );
            let mut new = obj.clone();
            new["spec"]["a"] = json!(2);
            new["metadata"]["labels"] = json!({"x": "y"});
            CustomStrategy.prepare_for_update(&mut new, &obj);
            assert_eq!(new["metadata"]["generation"], 2);
            unregister(&format!("things.gen{status}.example.com"));
        }
    }

    #[test]
    fn versions_sort_by_kubernetes_priority() {
        let mut v = vec!["v1alpha1", "v2", "v1beta2", "v1", "v1beta1", "foo", "v10"];
        v.sort_by(|a, b| version_order(a, b));
        assert_eq!(
            v,
            vec!["v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]
        );
    }

    #[test]
    fn rows_are_interned_per_definition() {
        let crd = json!({"metadata": {"name": "gizmos.rows.example.com"}, "spec": {
            "group": "rows.example.com", "scope": "Cluster",
            "names": {"plural": "gizmos", "kind": "Gizmo", "shortNames": ["gz"]},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false},
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                {"name": "v1alpha1", "served": false, "storage": false}]}});
        let a = rows_of(&crd);
        let b = rows_of(&crd);
        assert_eq!(a.len(), 2);
        assert!(a.iter().zip(&b).all(|(x, y)| std::ptr::eq(*x, *y)));
        assert_eq!((a[0].version, a[1].version), ("v1", "v1beta1"));
        assert!(a[0].has(Subresource::Status) && !a[1].has(Subresource::Status));
        assert_eq!(a[0].key(None, "g"), "/registry/rows.example.com/gizmos/g");
        assert_eq!(a[0].singular, "gizmo");
        assert!(!a[0].namespaced);
    }
}
