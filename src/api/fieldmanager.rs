//! Field management: `metadata.managedFields` on every write, and
//! server-side apply (`PATCH` with `application/apply-patch+yaml`).
//!
//! Each manager (the `fieldManager` parameter, else the client's
//! User-Agent up to the first `/`) owns a set of fields per operation
//! (`Update` or `Apply`), API version and subresource, computed from the
//! object through its schema (`api::schema`): associative lists are owned
//! item by item (`k:{"name":"web"}`), sets value by value, atomic lists and
//! maps whole.
//!
//! - An update (create, PUT, non-apply PATCH) gives its manager the fields
//!   it added or changed, takes them from the others, and drops removed
//!   fields from everyone.
//! - An apply merges the applied configuration into the object (maps and
//!   associative lists merged, atomic values replaced), refuses with 409 to
//!   change a field another manager owns unless `force=true` (which takes
//!   it), removes fields the manager applied before and no longer does
//!   (unless someone else also owns them), and makes the applied fields the
//!   manager's `Apply` set.

pub mod fieldpath;

use serde_json::{Map, Value, json};

use self::fieldpath::{FieldSet, Path, field, get, item_key, key, pretty, set_value};
use crate::api::handlers::Ctx;
use crate::api::handlers::write::Mode;
use crate::api::object;
use crate::api::registry::KindInfo;
use crate::api::schema::{self, Catalog, Shape};
use crate::api::status::ApiStatus;

/// The longest manager name upstream accepts.
const MAX_MANAGER: usize = 128;

/// Metadata fields nobody owns.
const UNOWNED_META: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "generation",
    "managedFields",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The manager of a request, or 422 for an unusable `fieldManager`.
pub fn manager(ctx: &Ctx) -> Result<String, ApiStatus> {
    if let Some(m) = ctx.query.get("fieldManager") {
        if m.chars().count() > MAX_MANAGER || m.chars().any(|c| c.is_control()) {
            return Err(ApiStatus::new(
                422,
                "Invalid",
                format!(
                    "fieldManager: Invalid value: \"{m}\": must be at most {MAX_MANAGER} printable characters"
                ),
            ));
        }
        return Ok(m.to_string());
    }
    let agent = ctx
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let prefix = agent.split('/').next().unwrap_or("").trim();
    Ok(if prefix.is_empty() {
        "unknown".to_string()
    } else {
        prefix.chars().take(MAX_MANAGER).collect()
    })
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    fn same_slot(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
    }

    fn to_json(&self) -> Value {
        let mut e = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if !self.subresource.is_empty() {
            e["subresource"] = json!(self.subresource);
        }
        e
    }
}

/// The entries stored on an object.
pub fn entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(Entry {
                manager: e["manager"].as_str().unwrap_or("").to_string(),
                operation: e["operation"].as_str()?.to_string(),
                api_version: e["apiVersion"].as_str().unwrap_or("").to_string(),
                time: e["time"].as_str().unwrap_or("").to_string(),
                subresource: e["subresource"].as_str().unwrap_or("").to_string(),
                fields: FieldSet::from_fields_v1(&e["fieldsV1"]),
            })
        })
        .collect()
}

/// Stores `list` as the object's `managedFields` (none when empty).
pub fn set_entries(obj: &mut Value, list: &[Entry]) {
    let meta = object::meta_mut(obj);
    let kept: Vec<Value> = list
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::to_json)
        .collect();
    if kept.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(kept));
    }
}

/// The schema of the kind's storage form (objects are managed as stored).
fn root(kind: &'static KindInfo) -> Option<&'static Value> {
    let storage = crate::api::convert::storage_row(kind);
    schema::catalog().root(storage.group, storage.version, storage.kind)
}

/// The fields of `obj` as a field set, without the ones nobody owns (and,
/// per `mode`, without status or with status only).
pub fn field_set(kind: &'static KindInfo, mode: Mode, obj: &Value) -> FieldSet {
    let catalog = schema::catalog();
    let mut set = FieldSet::new();
    walk(catalog, obj, root(kind), None, &mut Vec::new(), &mut set);
    set.remove_subtree(&[field("apiVersion")]);
    set.remove_subtree(&[field("kind")]);
    for m in UNOWNED_META {
        set.remove_subtree(&[field("metadata"), field(m)]);
    }
    match mode {
        Mode::Status => {
            let mut only = FieldSet::new();
            only.union(&prefixed(&set, &[field("status")]));
            for m in ["labels", "annotations"] {
                only.union(&prefixed(&set, &[field("metadata"), field(m)]));
            }
            only
        }
        _ => {
            if kind.has(crate::api::registry::Subresource::Status) {
                set.remove_subtree(&[field("status")]);
            }
            set
        }
    }
}

/// The members of `set` at or below `path`, still rooted at the top.
fn prefixed(set: &FieldSet, path: &[String]) -> FieldSet {
    let mut out = FieldSet::new();
    for member in set.at(path).members() {
        let mut full: Path = path.to_vec();
        full.extend(member);
        out.insert(&full);
    }
    out
}

/// The property schema (raw, with its markers) of `name` in `schema`.
fn property<'a>(catalog: &'a Catalog, schema: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    catalog
        .resolve(schema?)
        .get("properties")
        .and_then(|p| p.get(name))
}

/// The schema of a child of an object: its declared property, or the map's
/// value schema; whether it is declared; its merge marker.
fn child<'a>(
    catalog: &'a Catalog,
    schema: Option<&'a Value>,
    name: &str,
) -> (Option<&'a Value>, bool, Option<Shape>) {
    match property(catalog, schema, name) {
        Some(p) => (Some(catalog.resolve(p)), true, schema::shape_of(p)),
        None => (schema.and_then(|s| catalog.values(s)), false, None),
    }
}

/// The key element of an associative-list item, if it has every key.
fn item_element(item: &Value, keys: &[&str]) -> Option<String> {
    let mut values = std::collections::BTreeMap::new();
    for k in keys {
        let v = item_key(item, k);
        if v.is_null() {
            return None;
        }
        values.insert((*k).to_string(), v);
    }
    Some(key(&values))
}

fn walk(
    catalog: &Catalog,
    v: &Value,
    schema: Option<&Value>,
    shape: Option<Shape>,
    path: &mut Path,
    set: &mut FieldSet,
) {
    match v {
        Value::Object(m) => {
            if shape == Some(Shape::AtomicMap) {
                set.insert(path);
                return;
            }
            for (k, c) in m {
                let (cs, declared, cshape) = child(catalog, schema, k);
                path.push(field(k));
                walk(catalog, c, cs, cshape, path, set);
                let empty = c.is_null() || c.as_object().is_some_and(Map::is_empty);
                if empty || !declared {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) => match shape {
            Some(Shape::Map(keys)) => {
                let elements: Option<Vec<String>> =
                    items.iter().map(|i| item_element(i, keys)).collect();
                let Some(elements) = elements else {
                    set.insert(path);
                    return;
                };
                let item_schema = schema.and_then(|s| catalog.items(s));
                for (item, el) in items.iter().zip(elements) {
                    path.push(el);
                    walk(catalog, item, item_schema, None, path, set);
                    set.insert(path);
                    path.pop();
                }
            }
            Some(Shape::Set) => {
                for item in items {
                    path.push(set_value(item));
                    set.insert(path);
                    path.pop();
                }
            }
            _ => set.insert(path),
        },
        _ => set.insert(path),
    }
}

/// The entries after an update of `current` to `new` by `manager`.
pub fn update(
    kind: &'static KindInfo,
    mode: Mode,
    current: &Value,
    new: &Value,
    manager: &str,
    api_version: &str,
) -> Vec<Entry> {
    let mut list = entries(current);
    let old_set = field_set(kind, mode, current);
    let new_set = field_set(kind, mode, new);
    let mut changed = new_set.difference(&old_set);
    let removed = old_set.difference(&new_set);
    for leaf in new_set.intersection(&old_set).leaves() {
        if get(current, &leaf) != get(new, &leaf) {
            changed.insert(&leaf);
        }
    }
    if changed.is_empty() && removed.is_empty() {
        return list;
    }
    let subresource = if mode == Mode::Status { "status" } else { "" };
    let mine = Entry {
        manager: manager.to_string(),
        operation: "Update".to_string(),
        api_version: api_version.to_string(),
        time: object::now(),
        subresource: subresource.to_string(),
        fields: FieldSet::new(),
    };
    if !list.iter().any(|e| e.same_slot(&mine)) {
        list.push(mine.clone());
    }
    for e in &mut list {
        if e.same_slot(&mine) {
            e.fields.union(&changed);
            e.fields = e.fields.difference(&removed);
            e.time = mine.time.clone();
            e.api_version = mine.api_version.clone();
        } else {
            e.fields = e.fields.difference(&changed).difference(&removed);
        }
    }
    list.retain(|e| !e.fields.is_empty());
    list
}

/// The entries of a newly created object.
pub fn created(
    kind: &'static KindInfo,
    obj: &Value,
    manager: &str,
    api_version: &str,
) -> Vec<Entry> {
    let fields = field_set(kind, Mode::Main, obj);
    vec![Entry {
        manager: manager.to_string(),
        operation: "Update".to_string(),
        api_version: api_version.to_string(),
        time: object::now(),
        subresource: String::new(),
        fields,
    }]
}

/// Merges an applied configuration into the live object.
fn merge(
    catalog: &Catalog,
    live: &Value,
    config: &Value,
    schema: Option<&Value>,
    shape: Option<Shape>,
) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if shape != Some(Shape::AtomicMap) => {
            let mut out = l.clone();
            for (k, cv) in c {
                let (cs, _, cshape) = child(catalog, schema, k);
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match l.get(k) {
                    Some(lv) => merge(catalog, lv, cv, cs, cshape),
                    None => cv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => match shape {
            Some(Shape::Map(keys)) => {
                let item_schema = schema.and_then(|s| catalog.items(s));
                let lk: Option<Vec<String>> = l.iter().map(|i| item_element(i, keys)).collect();
                let ck: Option<Vec<String>> = c.iter().map(|i| item_element(i, keys)).collect();
                let (Some(lk), Some(ck)) = (lk, ck) else {
                    return config.clone();
                };
                let mut out: Vec<Value> = l
                    .iter()
                    .zip(&lk)
                    .map(|(li, lkey)| match ck.iter().position(|k| k == lkey) {
                        Some(i) => merge(catalog, li, &c[i], item_schema, None),
                        None => li.clone(),
                    })
                    .collect();
                for (ci, ckey) in c.iter().zip(&ck) {
                    if !lk.contains(ckey) {
                        out.push(ci.clone());
                    }
                }
                Value::Array(out)
            }
            Some(Shape::Set) => {
                let mut out = l.clone();
                for ci in c {
                    if !out.contains(ci) {
                        out.push(ci.clone());
                    }
                }
                Value::Array(out)
            }
            _ => config.clone(),
        },
        _ => config.clone(),
    }
}

/// One field another manager owns that an apply would change.
struct Conflict {
    manager: String,
    api_version: String,
    path: Path,
}

fn conflict_status(kind: &KindInfo, name: &str, conflicts: &[Conflict]) -> ApiStatus {
    let n = conflicts.len();
    // Grouped by manager, in order of appearance, as upstream words it.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for c in conflicts {
        let who = format!("\"{}\" using {}", c.manager, c.api_version);
        match groups.iter_mut().find(|(w, _)| *w == who) {
            Some((_, paths)) => paths.push(pretty(&c.path)),
            None => groups.push((who, vec![pretty(&c.path)])),
        }
    }
    let detail = if n == 1 {
        format!("conflict with {}: {}", groups[0].0, groups[0].1[0])
    } else {
        let mut d = "conflicts with".to_string();
        for (who, paths) in &groups {
            if let [one] = paths.as_slice() {
                d.push_str(&format!(" {who}: {one}"));
            } else {
                d.push_str(&format!(" {who}:"));
                for p in paths {
                    d.push_str(&format!("\n- {p}"));
                }
            }
        }
        d
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({"reason": "FieldManagerConflict",
                   "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version),
                   "field": pretty(&c.path)})
        })
        .collect();
    let mut status = ApiStatus::new(
        409,
        "Conflict",
        format!(
            "Apply failed with {n} conflict{}: {detail}",
            if n == 1 { "" } else { "s" }
        ),
    );
    status.details = Some(json!({
        "name": name,
        "group": kind.group,
        "kind": kind.plural,
        "causes": causes,
    }));
    status
}

/// Server-side apply of `config` (storage form, identity checked) onto
/// `live` (`None` when the object does not exist yet): the object to store,
/// with its new `managedFields`.
pub fn apply(
    kind: &'static KindInfo,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
) -> Result<Value, ApiStatus> {
    let catalog = schema::catalog();
    let schema = root(kind);
    let config_set = field_set(kind, Mode::Main, config);
    let me = Entry {
        manager: manager.to_string(),
        operation: "Apply".to_string(),
        api_version: api_version.to_string(),
        time: object::now(),
        subresource: String::new(),
        fields: config_set.clone(),
    };
    let Some(live) = live else {
        let mut obj = config.clone();
        set_entries(&mut obj, &[me]);
        return Ok(obj);
    };
    let mut list = entries(live);
    let previous = list
        .iter()
        .find(|e| e.same_slot(&me))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut bare = live.clone();
    object::meta_mut(&mut bare).remove("managedFields");
    let mut merged = merge(catalog, &bare, config, schema, None);

    // Fields others own whose value this apply changes.
    let mut conflicts = Vec::new();
    for leaf in config_set.leaves() {
        let before = get(&bare, &leaf);
        if before.is_none() || before == get(&merged, &leaf) {
            continue;
        }
        for e in list.iter().filter(|e| !e.same_slot(&me)) {
            if e.fields.contains(&leaf) {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    api_version: e.api_version.clone(),
                    path: leaf.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflict_status(kind, object::name(live), &conflicts));
        }
        for c in &conflicts {
            for e in list.iter_mut().filter(|e| !e.same_slot(&me)) {
                if e.manager == c.manager && e.api_version == c.api_version {
                    e.fields.remove(&c.path);
                }
            }
        }
    }

    // What this manager applied before and no longer applies goes, unless
    // someone else owns it too. Deeper paths first.
    let mut gone = previous.difference(&config_set).members();
    gone.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in gone {
        let shared = list
            .iter()
            .filter(|e| !e.same_slot(&me))
            .any(|e| e.fields.has_prefix(&path));
        if !shared && !config_set.has_prefix(&path) {
            fieldpath::remove(&mut merged, &path);
        }
    }

    match list.iter_mut().find(|e| e.same_slot(&me)) {
        Some(e) => *e = me,
        None => list.push(me),
    }
    list.retain(|e| !e.fields.is_empty());
    set_entries(&mut merged, &list);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployments() -> &'static KindInfo {
        crate::api::registry::lookup("apps", "v1", "deployments").expect("deployments")
    }

    fn deploy(image: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image,
                        "ports": [{"containerPort": 80}]}]}}}})
    }

    #[test]
    fn field_sets_follow_the_schema() {
        let set = field_set(deployments(), Mode::Main, &deploy("a", 1));
        let v1 = set.to_fields_v1();
        let container =
            &v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(container["."], json!({}));
        assert_eq!(container["f:image"], json!({}));
        assert!(container["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"].is_object());
        assert_eq!(v1["f:metadata"]["f:labels"]["f:app"], json!({}));
        assert!(v1["f:metadata"].get("f:name").is_none());
        assert!(v1.get("f:apiVersion").is_none());
    }

    #[test]
    fn updates_move_ownership_of_changed_fields() {
        let k = deployments();
        let a = deploy("a", 1);
        let mut created_obj = a.clone();
        set_entries(&mut created_obj, &created(k, &a, "creator", "apps/v1"));
        let mut b = deploy("a", 3);
        b["metadata"]["managedFields"] = created_obj["metadata"]["managedFields"].clone();
        let list = update(k, Mode::Main, &created_obj, &b, "scaler", "apps/v1");
        let scaler = list.iter().find(|e| e.manager == "scaler").expect("scaler");
        assert_eq!(
            scaler.fields.members(),
            vec![vec![field("spec"), field("replicas")]]
        );
        let creator = list
            .iter()
            .find(|e| e.manager == "creator")
            .expect("creator");
        assert!(!creator.fields.contains(&[field("spec"), field("replicas")]));
    }

    #[test]
    fn apply_conflicts_then_forces_and_removes_what_it_stopped_applying() {
        let k = deployments();
        let first = apply(k, None, &deploy("a", 1), "alice", "apps/v1", false).expect("create");
        // bob applies a different image: conflict with alice.
        let err =
            apply(k, Some(&first), &deploy("b", 1), "bob", "apps/v1", false).expect_err("conflict");
        assert_eq!(err.code, 409);
        assert!(
            err.message.contains(
                "conflict with \"alice\" using apps/v1: .spec.template.spec.containers[name=\"web\"].image"
            ),
            "{}",
            err.message
        );
        let forced =
            apply(k, Some(&first), &deploy("b", 1), "bob", "apps/v1", true).expect("forced");
        assert_eq!(
            forced["spec"]["template"]["spec"]["containers"][0]["image"],
            "b"
        );
        let list = entries(&forced);
        let image = [
            field("spec"),
            field("template"),
            field("spec"),
            field("containers"),
            "k:{\"name\":\"web\"}".to_string(),
            field("image"),
        ];
        assert!(
            list.iter()
                .any(|e| e.manager == "bob" && e.fields.contains(&image))
        );
        assert!(
            !list
                .iter()
                .any(|e| e.manager == "alice" && e.fields.contains(&image))
        );
        // alice stops applying the label: it is removed... unless bob owns it
        // too, which he does (same value, shared).
        let mut less = deploy("b", 1);
        less["metadata"]["labels"] = json!({});
        let after = apply(k, Some(&forced), &less, "alice", "apps/v1", false).expect("apply");
        assert_eq!(after["metadata"]["labels"]["app"], "web");
        // Once no one else owns a field, dropping it from the config removes it.
        let mut more = deploy("b", 1);
        more["metadata"]["annotations"] = json!({"note": "x"});
        let with = apply(k, Some(&after), &more, "alice", "apps/v1", false).expect("apply");
        assert_eq!(with["metadata"]["annotations"]["note"], "x");
        let without =
            apply(k, Some(&with), &deploy("b", 1), "alice", "apps/v1", false).expect("apply");
        assert!(without["metadata"]["annotations"].get("note").is_none());
    }
}
