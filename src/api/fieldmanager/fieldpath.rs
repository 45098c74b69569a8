//! Field sets: which fields of an object a manager owns, in the `FieldsV1`
//! form of `metadata.managedFields`.
//!
//! A path is a list of elements written as upstream writes them: `f:<name>`
//! for a field or map entry, `k:{"name":"web"}` for the item of an
//! associative list (its keys, sorted), `v:<json>` for the item of a set.
//! A set is a tree; a node is a *member* when the path to it is owned
//! itself (a leaf, or a list item, written `".": {}` beside its children).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One path: its elements from the root.
pub type Path = Vec<String>;

/// A set of paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub fn new() -> Self {
        FieldSet::default()
    }

    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    pub fn insert(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = true,
            Some((first, rest)) => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn contains(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Whether any member lies at or below `path`.
    pub fn has_prefix(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => !self.is_empty(),
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.has_prefix(rest)),
        }
    }

    /// The subtree at `path` (empty when there is none).
    pub fn at(&self, path: &[String]) -> FieldSet {
        match path.split_first() {
            None => self.clone(),
            Some((first, rest)) => self
                .children
                .get(first)
                .map(|c| c.at(rest))
                .unwrap_or_default(),
        }
    }

    pub fn remove(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = false,
            Some((first, rest)) => {
                if let Some(c) = self.children.get_mut(first) {
                    c.remove(rest);
                    if c.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    /// Removes `path` and everything below it.
    pub fn remove_subtree(&mut self, path: &[String]) {
        match path.split_first() {
            None => *self = FieldSet::default(),
            Some((first, [])) => {
                self.children.remove(first);
            }
            Some((first, rest)) => {
                if let Some(c) = self.children.get_mut(first) {
                    c.remove_subtree(rest);
                    if c.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, v) in &other.children {
            self.children.entry(k.clone()).or_default().union(v);
        }
    }

    /// The members of `self` not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => v.difference(o),
                None => v.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// The members in both.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = v.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Every member path, parents before their children.
    pub fn members(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, v) in &self.children {
            prefix.push(k.clone());
            v.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Member paths without member children: the leaves.
    pub fn leaves(&self) -> Vec<Path> {
        self.members()
            .into_iter()
            .filter(|p| !self.at(p).children.values().any(|c| !c.is_empty()))
            .collect()
    }

    /// The `fieldsV1` JSON.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, v) in &self.children {
            m.insert(k.clone(), v.to_fields_v1());
        }
        Value::Object(m)
    }

    /// Reads `fieldsV1` JSON (the root is never a member itself).
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::read(v);
        set.member = false;
        set
    }

    fn read(v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        let Some(m) = v.as_object() else {
            set.member = true;
            return set;
        };
        if m.is_empty() {
            set.member = true;
        }
        for (k, child) in m {
            if k == "." {
                set.member = true;
            } else {
                set.children.insert(k.clone(), FieldSet::read(child));
            }
        }
        set
    }
}

/// The element of a field or map entry.
pub fn field(name: &str) -> String {
    format!("f:{name}")
}

/// The element of an associative-list item with these key values.
pub fn key(keys: &BTreeMap<String, Value>) -> String {
    let inner: Vec<String> = keys
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v))
        .collect();
    format!("k:{{{}}}", inner.join(","))
}

/// The element of a set item.
pub fn set_value(v: &Value) -> String {
    format!("v:{v}")
}

/// A path as upstream prints it in conflicts:
/// `.spec.template.spec.containers[name="web"].image`.
pub fn pretty(path: &[String]) -> String {
    let mut out = String::new();
    for e in path {
        if let Some(name) = e.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(keys) = e.strip_prefix("k:") {
            let parsed: BTreeMap<String, Value> = serde_json::from_str(keys).unwrap_or_default();
            let inner: Vec<String> = parsed.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", inner.join(",")));
        } else if let Some(v) = e.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = e.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}

/// The value at `path` in `obj`, if there is one.
pub fn get<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(obj);
    };
    let next = if let Some(name) = first.strip_prefix("f:") {
        obj.as_object()?.get(name)?
    } else if let Some(keys) = first.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(keys).ok()?;
        obj.as_array()?
            .iter()
            .find(|item| keys.iter().all(|(k, v)| item_key(item, k) == *v))?
    } else if let Some(v) = first.strip_prefix("v:") {
        let v: Value = serde_json::from_str(v).ok()?;
        obj.as_array()?.iter().find(|item| **item == v)?
    } else {
        return None;
    };
    get(next, rest)
}

/// Removes the value at `path` from `obj` (a field, map entry or list
/// item); nothing when it is not there.
pub fn remove(obj: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let Some(container) = get_mut(obj, parent) else {
        return;
    };
    if let Some(name) = last.strip_prefix("f:") {
        if let Some(m) = container.as_object_mut() {
            m.remove(name);
        }
    } else if let Some(keys) = last.strip_prefix("k:") {
        let Ok(keys) = serde_json::from_str::<Map<String, Value>>(keys) else {
            return;
        };
        if let Some(list) = container.as_array_mut() {
            list.retain(|item| !keys.iter().all(|(k, v)| item_key(item, k) == *v));
        }
    } else if let Some(v) = last.strip_prefix("v:") {
        let Ok(v) = serde_json::from_str::<Value>(v) else {
            return;
        };
        if let Some(list) = container.as_array_mut() {
            list.retain(|item| *item != v);
        }
    }
}

fn get_mut<'a>(obj: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(obj);
    };
    let next = if let Some(name) = first.strip_prefix("f:") {
        obj.as_object_mut()?.get_mut(name)?
    } else if let Some(keys) = first.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(keys).ok()?;
        obj.as_array_mut()?
            .iter_mut()
            .find(|item| keys.iter().all(|(k, v)| item_key(item, k) == *v))?
    } else if let Some(v) = first.strip_prefix("v:") {
        let v: Value = serde_json::from_str(v).ok()?;
        obj.as_array_mut()?.iter_mut().find(|item| **item == v)?
    } else {
        return None;
    };
    get_mut(next, rest)
}

/// A key field of a list item, with upstream's schema default for the one
/// key that has one (`protocol` of ports is `TCP`).
pub fn item_key(item: &Value, key: &str) -> Value {
    match item.get(key) {
        Some(v) if !v.is_null() => v.clone(),
        _ if key == "protocol" => Value::String("TCP".into()),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(elements: &[&str]) -> Path {
        elements.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn round_trips_fields_v1() {
        let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                       "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}});
        let set = FieldSet::from_fields_v1(&v);
        assert!(set.contains(&p(&["f:metadata", "f:labels"])));
        assert!(set.contains(&p(&[
            "f:spec",
            "f:containers",
            "k:{\"name\":\"web\"}",
            "f:image"
        ])));
        assert!(!set.contains(&p(&["f:spec"])));
        assert_eq!(set.to_fields_v1(), v);
        assert_eq!(
            set.leaves(),
            vec![
                p(&["f:metadata", "f:labels", "f:app"]),
                p(&["f:spec", "f:containers", "k:{\"name\":\"web\"}", "f:image"])
            ]
        );
    }

    #[test]
    fn set_algebra() {
        let mut a = FieldSet::new();
        a.insert(&p(&["f:a", "f:b"]));
        a.insert(&p(&["f:a", "f:c"]));
        let mut b = FieldSet::new();
        b.insert(&p(&["f:a", "f:c"]));
        assert_eq!(a.difference(&b).members(), vec![p(&["f:a", "f:b"])]);
        assert_eq!(a.intersection(&b).members(), vec![p(&["f:a", "f:c"])]);
        a.remove(&p(&["f:a", "f:b"]));
        assert_eq!(a.members(), vec![p(&["f:a", "f:c"])]);
    }

    #[test]
    fn paths_reach_into_objects() {
        let mut obj = json!({"spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}});
        let keys: BTreeMap<String, Value> = [
            ("port".to_string(), json!(80)),
            ("protocol".to_string(), json!("TCP")),
        ]
        .into();
        let item = p(&["f:spec", "f:ports", &key(&keys)]);
        assert_eq!(get(&obj, &item), Some(&json!({"port": 80})));
        assert_eq!(pretty(&item), ".spec.ports[port=80,protocol=\"TCP\"]");
        remove(&mut obj, &item);
        assert_eq!(
            obj,
            json!({"spec": {"ports": [{"port": 53, "protocol": "UDP"}]}})
        );
    }
}
