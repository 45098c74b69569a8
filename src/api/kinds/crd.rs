//! CustomResourceDefinitions (apiextensions.k8s.io/v1): the name that must
//! be `<plural>.<group>`, the names and their defaults, scope, versions with
//! exactly one storage version and a schema each, and the status a new
//! definition starts with.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::validation::{
    arr_at, check_immutable, default_field, dns1035_label, dns1123_label, dns1123_subdomain,
    duplicate, invalid, invalid_each, not_supported, obj_entry, required, required_because, str_at,
    validate_meta,
};
use super::{Cause, Strategy};

/// CustomResourceDefinitions.
pub struct CustomResourceDefinitionStrategy;

impl Strategy for CustomResourceDefinitionStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_entry(obj, "spec") else {
            return;
        };
        if let Some(names) = spec.get_mut("names").filter(|n| n.is_object()) {
            if let Some(kind) = str_at(names, "kind")
                .filter(|k| !k.is_empty())
                .map(str::to_string)
            {
                default_field(names, "singular", kind.to_lowercase());
                default_field(names, "listKind", format!("{kind}List"));
            }
        }
        if let Some(conversion) = obj_entry(spec, "conversion") {
            default_field(conversion, "strategy", "None");
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let storage: Vec<Value> = arr_at(obj.get("spec").unwrap_or(&Value::Null), "versions")
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .filter_map(|v| v.get("name").cloned())
            .take(1)
            .collect();
        if let Some(m) = obj.as_object_mut() {
            m.insert(
                "status".into(),
                json!({"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": storage}),
            );
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let group = str_at(spec, "group").unwrap_or("");
        if group.is_empty() {
            errs.push(required("spec.group"));
        } else {
            errs.extend(invalid_each("spec.group", group, dns1123_subdomain(group)));
            if !group.contains('.') {
                errs.push(invalid(
                    "spec.group",
                    group,
                    "should be a domain with at least one dot",
                ));
            }
        }
        let names = spec.get("names").unwrap_or(&Value::Null);
        let plural = str_at(names, "plural").unwrap_or("");
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
            errs.push(invalid(
                "metadata.name",
                name,
                "must be spec.names.plural+\".\"+spec.group",
            ));
        }
        for key in ["plural", "singular"] {
            match str_at(names, key).unwrap_or("") {
                "" if key == "plural" => errs.push(required("spec.names.plural")),
                "" => {}
                v => errs.extend(invalid_each(
                    &format!("spec.names.{key}"),
                    v,
                    dns1123_label(v),
                )),
            }
        }
        for key in ["kind", "listKind"] {
            match str_at(names, key).unwrap_or("") {
                "" => errs.push(required(&format!("spec.names.{key}"))),
                v => {
                    let problems = dns1035_label(&v.to_lowercase());
                    if !problems.is_empty() {
                        let detail = format!(
                            "may have mixed case, but should otherwise match: {}",
                            problems.join(",")
                        );
                        errs.push(invalid(&format!("spec.names.{key}"), v, &detail));
                    }
                }
            }
        }
        match str_at(spec, "scope").unwrap_or("") {
            "" => errs.push(required("spec.scope")),
            "Cluster" | "Namespaced" => {}
            other => errs.push(not_supported(
                "spec.scope",
                other,
                &["Cluster", "Namespaced"],
            )),
        }
        let versions = arr_at(spec, "versions");
        if versions.is_empty() {
            errs.push(invalid(
                "spec.versions",
                Value::Array(vec![]),
                "must have exactly one version marked as storage version",
            ));
        }
        let mut seen = HashSet::new();
        let mut storage = 0;
        for (i, v) in versions.iter().enumerate() {
            let vp = format!("spec.versions[{i}]");
            match str_at(v, "name").unwrap_or("") {
                "" => errs.push(required(&format!("{vp}.name"))),
                n => {
                    errs.extend(invalid_each(&format!("{vp}.name"), n, dns1035_label(n)));
                    if !seen.insert(n.to_string()) {
                        errs.push(duplicate(&format!("{vp}.name"), n));
                    }
                }
            }
            if v.get("storage").and_then(Value::as_bool) == Some(true) {
                storage += 1;
            }
            if v.pointer("/schema/openAPIV3Schema")
                .is_none_or(Value::is_null)
            {
                errs.push(required_because(
                    &format!("{vp}.schema.openAPIV3Schema"),
                    "schemas are required",
                ));
            }
        }
        if !versions.is_empty() && storage != 1 {
            errs.push(invalid(
                "spec.versions",
                Value::from(
                    versions
                        .iter()
                        .filter_map(|v| v.get("name").cloned())
                        .collect::<Vec<_>>(),
                ),
                "must have exactly one version marked as storage version",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        errs.extend(check_immutable(new, old, "/spec/group", "spec.group"));
        errs.extend(check_immutable(
            new,
            old,
            "/spec/names/plural",
            "spec.names.plural",
        ));
        errs
    }

    fn tracks_generation(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn defaults_status_and_validation() {
        let mut c = crd();
        CustomResourceDefinitionStrategy.default(&mut c);
        CustomResourceDefinitionStrategy.prepare_for_create(&mut c);
        assert_eq!(c["spec"]["names"]["singular"], "widget");
        assert_eq!(c["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(c["status"]["storedVersions"], json!(["v1"]));
        assert!(
            CustomResourceDefinitionStrategy
                .validate_create(&c)
                .is_empty(),
            "{:?}",
            CustomResourceDefinitionStrategy.validate_create(&c)
        );
        c["metadata"]["name"] = json!("gadgets.example.com");
        c["spec"]["versions"][0]["storage"] = json!(false);
        let errs = CustomResourceDefinitionStrategy.validate_create(&c);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["metadata.name", "spec.versions"]);
    }
}
