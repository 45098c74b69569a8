//! Events, stored in the core/v1 shape for both the core and the
//! events.k8s.io API: the involved object's namespace rule and the field
//! selectors `kubectl get events --field-selector` and `kubectl describe`
//! rely on.

use serde_json::Value;

use super::validation::{invalid, str_at, validate_meta};
use super::{Cause, Strategy};

/// Events (core/v1 shape).
pub struct EventStrategy;

impl Strategy for EventStrategy {
    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let involved = obj.get("involvedObject").unwrap_or(&Value::Null);
        let involved_ns = str_at(involved, "namespace").unwrap_or("");
        let ok = if involved_ns.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            involved_ns == ns
        };
        if !ok {
            errs.push(invalid(
                "involvedObject.namespace",
                involved_ns,
                "does not match event.namespace",
            ));
        }
        errs
    }

    fn field_attributes(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let io = obj.get("involvedObject").unwrap_or(&Value::Null);
        let s = |v: &Value, k: &str| str_at(v, k).unwrap_or("").to_string();
        let source = obj
            .pointer("/source/component")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .or_else(|| str_at(obj, "reportingComponent"))
            .unwrap_or("");
        vec![
            ("involvedObject.kind", s(io, "kind")),
            ("involvedObject.namespace", s(io, "namespace")),
            ("involvedObject.name", s(io, "name")),
            ("involvedObject.uid", s(io, "uid")),
            ("involvedObject.apiVersion", s(io, "apiVersion")),
            ("involvedObject.resourceVersion", s(io, "resourceVersion")),
            ("involvedObject.fieldPath", s(io, "fieldPath")),
            ("reason", s(obj, "reason")),
            ("reportingComponent", s(obj, "reportingComponent")),
            ("source", source.to_string()),
            ("type", s(obj, "type")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_and_namespace_rule() {
        let e = json!({"metadata": {"name": "web.1", "namespace": "default"}, "reason": "Scheduled", "type": "Normal",
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u1"},
            "source": {"component": "default-scheduler"}});
        assert!(EventStrategy.validate_create(&e).is_empty());
        let attrs = EventStrategy.field_attributes(&e);
        assert!(attrs.contains(&("involvedObject.name", "web".to_string())));
        assert!(attrs.contains(&("source", "default-scheduler".to_string())));
        assert!(attrs.contains(&("reason", "Scheduled".to_string())));
        let mut other = e.clone();
        other["involvedObject"]["namespace"] = json!("kube-system");
        assert_eq!(
            EventStrategy.validate_create(&other)[0].field,
            "involvedObject.namespace"
        );
    }
}
