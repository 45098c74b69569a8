//! RBAC (rbac.authorization.k8s.io/v1): rules of Roles and ClusterRoles,
//! the `roleRef` and subjects of bindings with their defaults, and the
//! `cannot change roleRef` rule on update.

use serde_json::Value;

use super::labelselector::validate_selector;
use super::validation::{
    arr_at, default_field, dns1123_subdomain, invalid, invalid_each, invalid_shown, not_supported,
    obj_entry, path_segment_name, required, required_because, str_at, validate_meta,
};
use super::{Cause, Strategy};

/// The RBAC API group, the only `roleRef.apiGroup` allowed.
pub const GROUP: &str = "rbac.authorization.k8s.io";

fn validate_rules(obj: &Value, namespaced: bool, errs: &mut Vec<Cause>) {
    for (i, rule) in arr_at(obj, "rules").iter().enumerate() {
        let rp = format!("rules[{i}]");
        if arr_at(rule, "verbs").is_empty() {
            errs.push(required_because(
                &format!("{rp}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = arr_at(rule, "nonResourceURLs");
        if !urls.is_empty() {
            let value = Value::from(urls.to_vec());
            if namespaced {
                errs.push(invalid(
                    &format!("{rp}.nonResourceURLs"),
                    value.clone(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            let mixed = ["apiGroups", "resources", "resourceNames"]
                .iter()
                .any(|k| !arr_at(rule, k).is_empty());
            if mixed {
                errs.push(invalid(
                    &format!("{rp}.nonResourceURLs"),
                    value,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if arr_at(rule, "apiGroups").is_empty() {
            errs.push(required_because(
                &format!("{rp}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if arr_at(rule, "resources").is_empty() {
            errs.push(required_because(
                &format!("{rp}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

/// Roles (namespaced rules).
pub struct RoleStrategy;

impl Strategy for RoleStrategy {
    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        validate_rules(obj, true, &mut errs);
        errs
    }
}

/// ClusterRoles (cluster rules, optionally aggregated).
pub struct ClusterRoleStrategy;

impl Strategy for ClusterRoleStrategy {
    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        validate_rules(obj, false, &mut errs);
        if let Some(agg) = obj.get("aggregationRule").filter(|a| !a.is_null()) {
            let selectors = arr_at(agg, "clusterRoleSelectors");
            if selectors.is_empty() {
                errs.push(required_because(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            for (i, s) in selectors.iter().enumerate() {
                errs.extend(validate_selector(
                    s,
                    &format!("aggregationRule.clusterRoleSelectors[{i}]"),
                ));
            }
        }
        errs
    }
}

/// Fills `roleRef.apiGroup` and the subjects' `apiGroup` as upstream does.
fn default_binding(obj: &mut Value) {
    if let Some(role_ref) = obj_entry(obj, "roleRef") {
        default_field(role_ref, "apiGroup", GROUP);
    }
    if let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) {
        for s in subjects.iter_mut().filter(|s| s.is_object()) {
            match str_at(s, "kind") {
                Some("ServiceAccount") => default_field(s, "apiGroup", ""),
                Some("User" | "Group") => default_field(s, "apiGroup", GROUP),
                _ => {}
            }
        }
    }
}

fn validate_binding(obj: &Value, role_kinds: &[&str], namespaced: bool) -> Vec<Cause> {
    let mut errs = validate_meta(obj);
    let role_ref = obj.get("roleRef").unwrap_or(&Value::Null);
    let group = str_at(role_ref, "apiGroup").unwrap_or("");
    if group != GROUP {
        errs.push(not_supported("roleRef.apiGroup", group, &[GROUP]));
    }
    let kind = str_at(role_ref, "kind").unwrap_or("");
    if !role_kinds.contains(&kind) {
        errs.push(not_supported("roleRef.kind", kind, role_kinds));
    }
    match str_at(role_ref, "name").unwrap_or("") {
        "" => errs.push(required("roleRef.name")),
        name => errs.extend(invalid_each("roleRef.name", name, path_segment_name(name))),
    }
    for (i, s) in arr_at(obj, "subjects").iter().enumerate() {
        let sp = format!("subjects[{i}]");
        let name = str_at(s, "name").unwrap_or("");
        if name.is_empty() {
            errs.push(required(&format!("{sp}.name")));
        }
        let api_group = str_at(s, "apiGroup").unwrap_or("");
        match str_at(s, "kind").unwrap_or("") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    errs.extend(invalid_each(
                        &format!("{sp}.name"),
                        name,
                        dns1123_subdomain(name),
                    ));
                }
                if !api_group.is_empty() {
                    errs.push(not_supported(&format!("{sp}.apiGroup"), api_group, &[""]));
                }
                if !namespaced && str_at(s, "namespace").is_none_or(str::is_empty) {
                    errs.push(required(&format!("{sp}.namespace")));
                }
            }
            "User" | "Group" => {
                if api_group != GROUP {
                    errs.push(not_supported(
                        &format!("{sp}.apiGroup"),
                        api_group,
                        &[GROUP],
                    ));
                }
            }
            other => errs.push(not_supported(
                &format!("{sp}.kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errs
}

fn role_ref_unchanged(new: &Value, old: &Value, errs: &mut Vec<Cause>) {
    let n = new.get("roleRef").unwrap_or(&Value::Null);
    if n != old.get("roleRef").unwrap_or(&Value::Null) {
        let shown = format!(
            "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
            Value::from(str_at(n, "apiGroup").unwrap_or("")),
            Value::from(str_at(n, "kind").unwrap_or("")),
            Value::from(str_at(n, "name").unwrap_or(""))
        );
        errs.push(invalid_shown("roleRef", &shown, "cannot change roleRef"));
    }
}

/// RoleBindings (refer to a Role or a ClusterRole).
pub struct RoleBindingStrategy;

impl Strategy for RoleBindingStrategy {
    fn default(&self, obj: &mut Value) {
        default_binding(obj);
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        validate_binding(obj, &["Role", "ClusterRole"], true)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        role_ref_unchanged(new, old, &mut errs);
        errs
    }
}

/// ClusterRoleBindings (refer to a ClusterRole).
pub struct ClusterRoleBindingStrategy;

impl Strategy for ClusterRoleBindingStrategy {
    fn default(&self, obj: &mut Value) {
        default_binding(obj);
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        validate_binding(obj, &["ClusterRole"], false)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        role_ref_unchanged(new, old, &mut errs);
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_need_verbs_groups_and_resources() {
        let role = json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"]}, {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        let errs = RoleStrategy.validate_create(&role);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "rules[0].verbs",
                "rules[1].apiGroups",
                "rules[1].resources",
                "rules[2].nonResourceURLs"
            ]
        );
        assert_eq!(
            errs[0].message,
            "Required value: verbs must contain at least one value"
        );
        let cr = json!({"metadata": {"name": "system:x"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        assert!(ClusterRoleStrategy.validate_create(&cr).is_empty());
    }

    #[test]
    fn bindings_default_validate_and_freeze_role_ref() {
        let mut b = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "default"}, {"kind": "User", "name": "alice"}]});
        RoleBindingStrategy.default(&mut b);
        assert_eq!(b["roleRef"]["apiGroup"], GROUP);
        assert_eq!(b["subjects"][1]["apiGroup"], GROUP);
        assert!(RoleBindingStrategy.validate_create(&b).is_empty());
        let mut crb = b.clone();
        ClusterRoleBindingStrategy.default(&mut crb);
        let errs = ClusterRoleBindingStrategy.validate_create(&crb);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["roleRef.kind", "subjects[0].namespace"]);
        let mut changed = b.clone();
        changed["roleRef"]["name"] = json!("other");
        let errs = RoleBindingStrategy.validate_update(&changed, &b);
        assert_eq!(
            errs[0].message,
            "Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef"
        );
    }
}
