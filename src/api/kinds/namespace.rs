//! Namespaces: the `kubernetes.io/metadata.name` label, the `kubernetes`
//! finalizer and `Active` phase of a new namespace, finalizers that only
//! the `finalize` subresource may change, and the `status.phase` selector.

use serde_json::{Value, json};

use super::validation::{
    arr_at, dns1123_label, invalid, invalid_each, obj_entry, qualified_name, stricter_name,
    validate_meta,
};
use super::{Cause, Strategy};

/// The label every namespace carries with its own name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Namespaces (core/v1).
pub struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(name) = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            return;
        };
        let name = name.to_string();
        if let Some(labels) = obj_entry(obj, "metadata").and_then(|m| obj_entry(m, "labels")) {
            if let Some(m) = labels.as_object_mut() {
                m.insert(NAME_LABEL.into(), name.into());
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(spec) = obj_entry(obj, "spec") {
            let has_kube = arr_at(spec, "finalizers").iter().any(|f| f == "kubernetes");
            if !has_kube {
                let mut finalizers = arr_at(spec, "finalizers").to_vec();
                finalizers.push("kubernetes".into());
                if let Some(m) = spec.as_object_mut() {
                    m.insert("finalizers".into(), Value::Array(finalizers));
                }
            }
        }
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Active"}));
        }
    }

    /// `spec.finalizers` change only through the `finalize` subresource.
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let old_finalizers = old.pointer("/spec/finalizers").cloned();
        if let Some(spec) = obj_entry(new, "spec").and_then(Value::as_object_mut) {
            match old_finalizers {
                Some(f) => spec.insert("finalizers".into(), f),
                None => spec.remove("finalizers"),
            };
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        errs.extend(stricter_name(obj, dns1123_label));
        errs.extend(validate_finalizers(
            obj.pointer("/spec/finalizers").unwrap_or(&Value::Null),
        ));
        errs
    }

    /// `name` is an upstream bug kept for compatibility.
    fn field_attributes(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        vec![
            ("status.phase", phase.to_string()),
            ("name", name.to_string()),
        ]
    }
}

/// Checks `spec.finalizers`: each a qualified name, either the standard
/// `kubernetes` or fully qualified (`example.com/name`).
pub fn validate_finalizers(finalizers: &Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    if !finalizers.is_null() && !finalizers.is_array() {
        errs.push(invalid("spec.finalizers", "", "must be a list"));
        return errs;
    }
    for (i, f) in finalizers.as_array().into_iter().flatten().enumerate() {
        let field = format!("spec.finalizers[{i}]");
        let s = f.as_str().unwrap_or("");
        let problems = qualified_name(s);
        if !problems.is_empty() {
            errs.extend(invalid_each(&field, s, problems));
        } else if !s.contains('/') && s != "kubernetes" {
            errs.push(invalid(
                &field,
                s,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_sets_label_finalizer_and_phase() {
        let mut ns = json!({"metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "spoof"}}});
        NamespaceStrategy.default(&mut ns);
        NamespaceStrategy.prepare_for_create(&mut ns);
        assert_eq!(
            ns,
            json!({"metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        );
        assert!(NamespaceStrategy.validate_create(&ns).is_empty());
        assert_eq!(
            NamespaceStrategy.field_attributes(&ns),
            vec![
                ("status.phase", "Active".to_string()),
                ("name", "team-a".to_string())
            ]
        );
    }

    #[test]
    fn finalizers_survive_updates_and_are_checked() {
        let old = json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["kubernetes"]}});
        let mut new = json!({"metadata": {"name": "a"}, "spec": {"finalizers": []}});
        NamespaceStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(new["spec"]["finalizers"], json!(["kubernetes"]));
        let dotted = json!({"metadata": {"name": "a.b"}});
        assert_eq!(
            NamespaceStrategy.validate_create(&dotted)[0].field,
            "metadata.name"
        );
        let bad = json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["custom"]}});
        assert_eq!(
            NamespaceStrategy.validate_create(&bad)[0].field,
            "spec.finalizers[0]"
        );
    }
}
