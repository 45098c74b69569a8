//! DaemonSets (apps/v1): the rolling update defaults (one unavailable,
//! no surge), the pod template rules shared with other workloads, and the
//! immutable selector.

use serde_json::Value;

use super::podspec::default_template;
use super::validation::{
    default_field, invalid, not_supported, obj_entry, required, str_at, validate_meta,
};
use super::workloads::{
    int_or_percent, nonnegative, reset_status, selector_immutable, spec_of,
    validate_selector_and_template,
};
use super::{Cause, Strategy};

/// DaemonSets (apps/v1).
pub struct DaemonSetStrategy;

impl Strategy for DaemonSetStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_entry(obj, "spec") else {
            return;
        };
        default_template(spec.get_mut("template"));
        if let Some(us) = obj_entry(spec, "updateStrategy") {
            default_field(us, "type", "RollingUpdate");
            if str_at(us, "type") == Some("RollingUpdate") {
                if let Some(ru) = obj_entry(us, "rollingUpdate") {
                    default_field(ru, "maxUnavailable", 1);
                    if ru.get("maxSurge").is_none_or(Value::is_null) {
                        if let Some(m) = ru.as_object_mut() {
                            m.insert("maxSurge".into(), 0.into());
                        }
                    }
                }
            }
        }
        default_field(spec, "revisionHistoryLimit", 10);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj);
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = spec_of(obj);
        nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", &mut errs);
        nonnegative(
            spec,
            "revisionHistoryLimit",
            "spec.revisionHistoryLimit",
            &mut errs,
        );
        validate_selector_and_template(
            spec,
            "daemonset",
            "activeDeadlineSeconds must be nil for daemonset",
            &mut errs,
        );
        let us = spec.get("updateStrategy").unwrap_or(&Value::Null);
        match str_at(us, "type").unwrap_or("") {
            "RollingUpdate" => {
                if let Some(ru) = us.get("rollingUpdate").filter(|r| !r.is_null()) {
                    let rp = "spec.updateStrategy.rollingUpdate";
                    let u = int_or_percent(
                        ru.get("maxUnavailable").unwrap_or(&Value::Null),
                        &format!("{rp}.maxUnavailable"),
                        &mut errs,
                    );
                    let s = int_or_percent(
                        ru.get("maxSurge").unwrap_or(&Value::Null),
                        &format!("{rp}.maxSurge"),
                        &mut errs,
                    );
                    if u == Some(0) && s == Some(0) {
                        errs.push(invalid(
                            &format!("{rp}.maxUnavailable"),
                            ru.get("maxUnavailable").cloned().unwrap_or(Value::Null),
                            "may not be 0 when `maxSurge` is 0",
                        ));
                    }
                }
            }
            "OnDelete" => {}
            "" => errs.push(required("spec.updateStrategy.type")),
            other => errs.push(not_supported(
                "spec.updateStrategy.type",
                other,
                &["OnDelete", "RollingUpdate"],
            )),
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        selector_immutable(new, old, &mut errs);
        errs
    }

    fn tracks_generation(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What `kubectl create deployment web --image=busybox` sends, reused
    /// as a StatefulSet / DaemonSet body.
    fn workload() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "busybox", "image": "busybox", "resources": {}}]}}}
        })
    }

    #[test]
    fn daemonset_defaults_and_rules() {
        let mut d = workload();
        DaemonSetStrategy.default(&mut d);
        assert_eq!(
            d["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert!(DaemonSetStrategy.validate_create(&d).is_empty());
        d["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = json!(0);
        assert_eq!(
            DaemonSetStrategy.validate_create(&d)[0].field,
            "spec.updateStrategy.rollingUpdate.maxUnavailable"
        );
    }
}
