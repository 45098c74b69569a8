//! Strategies of the replicated workloads: Deployments, ReplicaSets,
//! StatefulSets and DaemonSets (apps/v1), ReplicationControllers, and the
//! pod-template holders PodTemplate and ControllerRevision. They share the
//! selector-must-select-the-template rule, the pod template validation and
//! the fresh status on create.

use serde_json::{Value, json};

use super::labelselector::{self, go_selector};
use super::podspec::{default_template, validate_template};
use super::validation::{
    check_immutable, default_field, forbidden, go_string_map, int_at, invalid, invalid_shown,
    not_supported, obj_entry, required, str_at, type_invalid, validate_labels, validate_meta,
};
use super::{Cause, Strategy};

const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

/// Checks an optional integer field at `key` of `spec` is ≥ 0.
pub fn nonnegative(spec: &Value, key: &str, field: &str, errs: &mut Vec<Cause>) {
    match spec.get(key) {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_i64() {
            Some(n) if n < 0 => errs.push(invalid(field, n, "must be greater than or equal to 0")),
            Some(_) => {}
            None => errs.push(type_invalid(field, v, "must be an integer")),
        },
    }
}

/// Resets `status` to an empty object (a new object has no observed state).
pub fn reset_status(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        m.insert("status".into(), json!({}));
    }
}

/// The apps/v1 rules on `spec.selector` and `spec.template`: selector
/// required, non-empty, valid and selecting the template's labels; template
/// valid with `restartPolicy: Always` unless `restart_policies` says otherwise.
fn validate_selector_and_template(
    spec: &Value,
    kind: &str,
    restart_policies: &[&str],
    errs: &mut Vec<Cause>,
) {
    let selector = spec.get("selector").filter(|s| !s.is_null());
    let template = spec.get("template").unwrap_or(&Value::Null);
    let template_labels = template.pointer("/metadata/labels");
    match selector {
        None => errs.push(required("spec.selector")),
        Some(sel) => {
            let sel_errs = labelselector::validate_selector(sel, "spec.selector");
            let valid = sel_errs.is_empty();
            errs.extend(sel_errs);
            if valid && labelselector::is_empty(sel) {
                errs.push(invalid_shown(
                    "spec.selector",
                    &go_selector(sel),
                    &format!("empty selector is invalid for {kind}"),
                ));
            } else if valid && !labelselector::matches(sel, template_labels) {
                errs.push(invalid_shown(
                    "spec.template.metadata.labels",
                    &go_string_map(template_labels),
                    SELECTOR_MISMATCH,
                ));
            }
        }
    }
    errs.extend(validate_template(template, "spec.template"));
    check_restart_policy(template, restart_policies, errs);
}

fn check_restart_policy(template: &Value, allowed: &[&str], errs: &mut Vec<Cause>) {
    if let Some(policy) = template
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
    {
        if !policy.is_empty() && !allowed.contains(&policy) {
            errs.push(not_supported(
                "spec.template.spec.restartPolicy",
                policy,
                allowed,
            ));
        }
    }
}

/// Upstream's int-or-percent checks for rolling update parameters.
fn int_or_percent(v: &Value, field: &str, errs: &mut Vec<Cause>) -> Option<i64> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) if i < 0 => {
                errs.push(invalid(field, i, "must be greater than or equal to 0"));
                None
            }
            Some(i) => Some(i),
            None => {
                errs.push(type_invalid(field, v, "must be an integer"));
                None
            }
        },
        Value::String(s) => match s.strip_suffix('%').and_then(|d| d.parse::<i64>().ok()) {
            Some(p) if s.starts_with(|c: char| c.is_ascii_digit()) => Some(p),
            _ => {
                errs.push(invalid(
                    field,
                    s.as_str(),
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ));
                None
            }
        },
        Value::Null => Some(0),
        other => {
            errs.push(type_invalid(
                field,
                other,
                "must be an integer or percentage",
            ));
            None
        }
    }
}

fn validate_rolling(ru: &Value, rp: &str, errs: &mut Vec<Cause>) {
    let null = Value::Null;
    let unavailable = ru.get("maxUnavailable").unwrap_or(&null);
    let surge = ru.get("maxSurge").unwrap_or(&null);
    let u = int_or_percent(unavailable, &format!("{rp}.maxUnavailable"), errs);
    let s = int_or_percent(surge, &format!("{rp}.maxSurge"), errs);
    if unavailable.as_str().is_some() && u.is_some_and(|p| p > 100) {
        errs.push(invalid(
            &format!("{rp}.maxUnavailable"),
            unavailable.clone(),
            "must not be greater than 100%",
        ));
    }
    if u == Some(0) && s == Some(0) && ru.get("maxSurge").is_some() {
        errs.push(invalid(
            &format!("{rp}.maxUnavailable"),
            unavailable.clone(),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
}

/// The apps/v1 immutable selector rule.
fn selector_immutable(new: &Value, old: &Value, errs: &mut Vec<Cause>) {
    let n = new.pointer("/spec/selector").unwrap_or(&Value::Null);
    if n != old.pointer("/spec/selector").unwrap_or(&Value::Null) {
        errs.push(invalid_shown(
            "spec.selector",
            &go_selector(n),
            "field is immutable",
        ));
    }
}

fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&Value::Null)
}

fn default_replicas(obj: &mut Value) -> Option<&mut Value> {
    let spec = obj_entry(obj, "spec")?;
    default_field(spec, "replicas", 1);
    default_template(spec.get_mut("template"));
    Some(spec)
}

/// Deployments (apps/v1).
pub struct DeploymentStrategy;

impl Strategy for DeploymentStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = default_replicas(obj) else {
            return;
        };
        if let Some(strategy) = obj_entry(spec, "strategy") {
            default_field(strategy, "type", "RollingUpdate");
            if str_at(strategy, "type") == Some("RollingUpdate") {
                if let Some(ru) = obj_entry(strategy, "rollingUpdate") {
                    default_field(ru, "maxUnavailable", "25%");
                    default_field(ru, "maxSurge", "25%");
                }
            }
        }
        default_field(spec, "revisionHistoryLimit", 10);
        default_field(spec, "progressDeadlineSeconds", 600);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj);
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = spec_of(obj);
        for key in [
            "replicas",
            "minReadySeconds",
            "revisionHistoryLimit",
            "progressDeadlineSeconds",
        ] {
            nonnegative(spec, key, &format!("spec.{key}"), &mut errs);
        }
        validate_selector_and_template(spec, "deployment", &["Always"], &mut errs);
        let strategy = spec.get("strategy").unwrap_or(&Value::Null);
        match str_at(strategy, "type").unwrap_or("") {
            "RollingUpdate" => {
                if let Some(ru) = strategy.get("rollingUpdate").filter(|r| !r.is_null()) {
                    validate_rolling(ru, "spec.strategy.rollingUpdate", &mut errs);
                }
            }
            "Recreate" => {
                if strategy.get("rollingUpdate").is_some_and(|r| !r.is_null()) {
                    errs.push(forbidden(
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            "" => errs.push(required("spec.strategy.type")),
            other => errs.push(not_supported(
                "spec.strategy.type",
                other,
                &["Recreate", "RollingUpdate"],
            )),
        }
        if let (Some(deadline), Some(min_ready)) = (
            int_at(spec, "progressDeadlineSeconds"),
            int_at(spec, "minReadySeconds"),
        ) {
            if deadline <= min_ready {
                errs.push(invalid(
                    "spec.progressDeadlineSeconds",
                    deadline,
                    "must be greater than minReadySeconds",
                ));
            }
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

/// ReplicaSets (apps/v1).
pub struct ReplicaSetStrategy;

impl Strategy for ReplicaSetStrategy {
    fn default(&self, obj: &mut Value) {
        default_replicas(obj);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj);
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = spec_of(obj);
        nonnegative(spec, "replicas", "spec.replicas", &mut errs);
        nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", &mut errs);
        validate_selector_and_template(spec, "deployment", &["Always"], &mut errs);
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        selector_immutable(new, old, &mut errs);
        errs
    }

    fn field_attributes(&self, obj: &Value) -> Vec<(&'static str, String)> {
        status_replicas(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }
}

fn status_replicas(obj: &Value) -> Vec<(&'static str, String)> {
    let n = obj
        .pointer("/status/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    vec![("status.replicas", n.to_string())]
}

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
        validate_selector_and_template(spec, "statefulset", &["Always"], &mut errs);
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
        validate_selector_and_template(spec, "daemonset", &["Always"], &mut errs);
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

/// ReplicationControllers (core/v1): a map selector, defaulted from the
/// template's labels, and mutable.
pub struct ReplicationControllerStrategy;

impl Strategy for ReplicationControllerStrategy {
    fn default(&self, obj: &mut Value) {
        let labels = obj
            .pointer("/spec/template/metadata/labels")
            .filter(|l| l.is_object())
            .cloned();
        if let Some(labels) = labels.filter(|l| l.as_object().is_some_and(|m| !m.is_empty())) {
            if let Some(spec) = obj_entry(obj, "spec") {
                if spec
                    .get("selector")
                    .and_then(Value::as_object)
                    .is_none_or(|m| m.is_empty())
                {
                    if let Some(m) = spec.as_object_mut() {
                        m.insert("selector".into(), labels.clone());
                    }
                }
            }
            if let Some(meta) = obj_entry(obj, "metadata") {
                if meta
                    .get("labels")
                    .and_then(Value::as_object)
                    .is_none_or(|m| m.is_empty())
                {
                    if let Some(m) = meta.as_object_mut() {
                        m.insert("labels".into(), labels);
                    }
                }
            }
        }
        default_replicas(obj);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj);
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = spec_of(obj);
        nonnegative(spec, "replicas", "spec.replicas", &mut errs);
        nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", &mut errs);
        let selector = spec
            .get("selector")
            .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()));
        match selector {
            None => errs.push(required("spec.selector")),
            Some(sel) => errs.extend(validate_labels(Some(sel), "spec.selector")),
        }
        let template = spec.get("template").unwrap_or(&Value::Null);
        if template.is_null() {
            errs.push(required("spec.template"));
            return errs;
        }
        let labels = template.pointer("/metadata/labels");
        if let Some(sel) = selector {
            let matches = labelselector::matches(&json!({"matchLabels": sel}), labels);
            if !matches {
                errs.push(invalid_shown(
                    "spec.template.metadata.labels",
                    &go_string_map(labels),
                    SELECTOR_MISMATCH,
                ));
            }
        }
        errs.extend(validate_template(template, "spec.template"));
        check_restart_policy(template, &["Always"], &mut errs);
        errs
    }

    fn field_attributes(&self, obj: &Value) -> Vec<(&'static str, String)> {
        status_replicas(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }
}

/// PodTemplates (core/v1): a template validated as a pod's.
pub struct PodTemplateStrategy;

impl Strategy for PodTemplateStrategy {
    fn default(&self, obj: &mut Value) {
        default_template(obj.get_mut("template"));
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        errs.extend(validate_template(
            obj.get("template").unwrap_or(&Value::Null),
            "template",
        ));
        errs
    }
}

/// ControllerRevisions (apps/v1): immutable `data`, non-negative `revision`.
pub struct ControllerRevisionStrategy;

impl Strategy for ControllerRevisionStrategy {
    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        nonnegative(obj, "revision", "revision", &mut errs);
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        errs.extend(check_immutable(new, old, "/data", "data"));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `kubectl create deployment web --image=busybox` sends.
    fn kubectl_deployment() -> Value {
        json!({
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "busybox", "image": "busybox", "resources": {}}]}},
                "strategy": {}},
            "status": {}
        })
    }

    #[test]
    fn deployment_defaults_match_upstream() {
        let mut d = kubectl_deployment();
        DeploymentStrategy.default(&mut d);
        DeploymentStrategy.prepare_for_create(&mut d);
        assert_eq!(
            d["spec"],
            json!({
                "progressDeadlineSeconds": 600, "replicas": 1, "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
                "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {"containers": [{"image": "busybox", "imagePullPolicy": "Always", "name": "busybox",
                        "resources": {}, "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"}],
                        "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                        "securityContext": {}, "terminationGracePeriodSeconds": 30}}
            })
        );
        assert!(DeploymentStrategy.validate_create(&d).is_empty());
        assert!(DeploymentStrategy.tracks_generation());
    }

    #[test]
    fn mismatched_selector_is_rejected_with_upstream_message() {
        let mut d = kubectl_deployment();
        d["spec"]["selector"]["matchLabels"]["app"] = json!("other");
        DeploymentStrategy.default(&mut d);
        let errs = DeploymentStrategy.validate_create(&d);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.template.metadata.labels");
        assert_eq!(
            errs[0].message,
            "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn selector_is_immutable_and_restart_policy_always() {
        let mut old = kubectl_deployment();
        DeploymentStrategy.default(&mut old);
        let mut new = old.clone();
        new["spec"]["selector"]["matchLabels"]["tier"] = json!("x");
        new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
        new["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        let errs = DeploymentStrategy.validate_update(&new, &old);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["spec.template.spec.restartPolicy", "spec.selector"]
        );
        assert!(errs[1].message.ends_with("field is immutable"));
    }

    #[test]
    fn missing_selector_and_negative_replicas() {
        let mut d = kubectl_deployment();
        d["spec"]["replicas"] = json!(-1);
        if let Some(m) = d["spec"].as_object_mut() {
            m.remove("selector");
        }
        DeploymentStrategy.default(&mut d);
        let errs = DeploymentStrategy.validate_create(&d);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.replicas", "spec.selector"]);
    }

    #[test]
    fn rolling_update_parameters() {
        let mut d = kubectl_deployment();
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%", "maxSurge": "x"}});
        DeploymentStrategy.default(&mut d);
        let errs = DeploymentStrategy.validate_create(&d);
        assert_eq!(errs.len(), 2);
        d["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}});
        assert_eq!(
            DeploymentStrategy.validate_create(&d)[0].message,
            "Invalid value: 0: may not be 0 when `maxSurge` is 0"
        );
    }

    #[test]
    fn statefulset_and_daemonset_defaults() {
        let mut s = kubectl_deployment();
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
        let mut d = kubectl_deployment();
        DaemonSetStrategy.default(&mut d);
        assert_eq!(
            d["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    }

    #[test]
    fn statefulset_spec_is_mostly_immutable() {
        let mut old = kubectl_deployment();
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

    #[test]
    fn replication_controller_selector_defaults_from_template() {
        let mut rc = json!({"metadata": {"name": "rc"}, "spec": {"template": {"metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        ReplicationControllerStrategy.default(&mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "a"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "a"}));
        assert_eq!(rc["spec"]["replicas"], 1);
        assert!(
            ReplicationControllerStrategy
                .validate_create(&rc)
                .is_empty()
        );
        rc["spec"]["selector"] = json!({"app": "b"});
        assert_eq!(
            ReplicationControllerStrategy.validate_create(&rc)[0].field,
            "spec.template.metadata.labels"
        );
        assert_eq!(
            ReplicationControllerStrategy.field_attributes(&rc),
            vec![("status.replicas", "0".to_string())]
        );
    }
}
