//! StatefulSets (apps/v1): their defaults (ordered pod management, a
//! partitioned rolling update, the PVC retention policy, claim template
//! defaults), upstream's light template validation (labels and annotations,
//! since mounts may name claim templates) and the short list of spec fields
//! an update may change.

use serde_json::Value;

use super::validation::{
    default_field, forbidden, invalid, not_supported, obj_entry, required, str_at, validate_meta,
};
use super::workloads::{
    default_replicas, nonnegative, reset_status, spec_of, validate_selector_and_template,
};
use super::{Cause, Strategy};

/// StatefulSets (apps/v1).
pub struct StatefulSetStrategy;

/// The spec fields a StatefulSet update may change.
const STATEFULSET_MUTABLE: [&str; 7] = [
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
    "revisionHistoryLimit",
];

impl Strategy for StatefulSetStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = default_replicas(obj) else {
            return;
        };
        default_field(spec, "podManagementPolicy", "OrderedReady");
        if let Some(us) = obj_entry(spec, "updateStrategy") {
            default_field(us, "type", "RollingUpdate");
            if str_at(us, "type") == Some("RollingUpdate") {
                if let Some(ru) = obj_entry(us, "rollingUpdate") {
                    default_field(ru, "partition", 0);
                }
            }
        }
        default_field(spec, "revisionHistoryLimit", 10);
        if let Some(policy) = obj_entry(spec, "persistentVolumeClaimRetentionPolicy") {
            default_field(policy, "whenDeleted", "Retain");
            default_field(policy, "whenScaled", "Retain");
        }
        if let Some(claims) = spec
            .get_mut("volumeClaimTemplates")
            .and_then(Value::as_array_mut)
        {
            for claim in claims.iter_mut().filter(|c| c.is_object()) {
                if let Some(cs) = obj_entry(claim, "spec") {
                    default_field(cs, "volumeMode", "Filesystem");
                }
                if let Some(st) = obj_entry(claim, "status") {
                    default_field(st, "phase", "Pending");
                }
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj);
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = spec_of(obj);
        for key in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
            nonnegative(spec, key, &format!("spec.{key}"), &mut errs);
        }
        match str_at(spec, "podManagementPolicy").unwrap_or("") {
            "" => errs.push(required("spec.podManagementPolicy")),
            "OrderedReady" | "Parallel" => {}
            other => errs.push(not_supported(
                "spec.podManagementPolicy",
                other,
                &["OrderedReady", "Parallel"],
            )),
        }
        let us = spec.get("updateStrategy").unwrap_or(&Value::Null);
        match str_at(us, "type").unwrap_or("") {
            "" => errs.push(required("spec.updateStrategy")),
            "RollingUpdate" => {
                if let Some(ru) = us.get("rollingUpdate") {
                    nonnegative(
                        ru,
                        "partition",
                        "spec.updateStrategy.rollingUpdate.partition",
                        &mut errs,
                    );
                }
            }
            "OnDelete" => {
                if us.get("rollingUpdate").is_some_and(|r| !r.is_null()) {
                    errs.push(invalid(
                        "spec.updateStrategy.rollingUpdate",
                        us["rollingUpdate"].clone(),
                        "only allowed for updateStrategy 'RollingUpdate'",
                    ));
                }
            }
            other => errs.push(not_supported(
                "spec.updateStrategy.type",
                other,
                &["OnDelete", "RollingUpdate"],
            )),
        }
        if let Some(policy) = spec.get("persistentVolumeClaimRetentionPolicy") {
            for key in ["whenDeleted", "whenScaled"] {
                if let Some(v) = str_at(policy, key).filter(|v| !matches!(*v, "Retain" | "Delete"))
                {
                    errs.push(not_supported(
                        &format!("spec.persistentVolumeClaimRetentionPolicy.{key}"),
                        v,
                        &["Retain", "Delete"],
                    ));
                }
            }
        }
        if let Some(name) = str_at(spec, "serviceName").filter(|n| !n.is_empty()) {
            errs.extend(super::validation::invalid_each(
                "spec.serviceName",
                name,
                super::validation::dns1123_label(name),
            ));
        }
        validate_selector_and_template(
            spec,
            "statefulset",
            "activeDeadlineSeconds in StatefulSet is not Supported",
            &mut errs,
        );
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        let strip = |v: &Value| {
            let mut s = spec_of(v).clone();
            if let Some(m) = s.as_object_mut() {
                for key in STATEFULSET_MUTABLE {
                    m.remove(key);
                }
            }
            s
        };
        if strip(new) != strip(old) {
            errs.push(forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
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
    fn statefulset_defaults() {
        let mut s = workload();
        StatefulSetStrategy.default(&mut s);
        assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            s["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(s["spec"]["replicas"], 1);
        assert_eq!(s["spec"]["revisionHistoryLimit"], 10);
    }

    #[test]
    fn statefulset_template_spec_is_not_validated_but_deadlines_are_forbidden() {
        let mut s = workload();
        s["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "data", "mountPath": "/data"}]);
        s["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
        StatefulSetStrategy.default(&mut s);
        assert!(
            StatefulSetStrategy.validate_create(&s).is_empty(),
            "{:?}",
            StatefulSetStrategy.validate_create(&s)
        );
        s["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        assert_eq!(
            StatefulSetStrategy.validate_create(&s),
            vec![forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in StatefulSet is not Supported"
            )]
        );
    }

    #[test]
    fn statefulset_spec_is_mostly_immutable() {
        let mut old = workload();
        old["spec"]["serviceName"] = json!("web");
        StatefulSetStrategy.default(&mut old);
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        assert!(StatefulSetStrategy.validate_update(&new, &old).is_empty());
        new["spec"]["serviceName"] = json!("other");
        assert_eq!(
            StatefulSetStrategy.validate_update(&new, &old)[0].field,
            "spec"
        );
    }
}
