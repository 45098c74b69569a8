//! Strategies of the replicated workloads Deployments and ReplicaSets
//! (apps/v1) and ReplicationControllers, of the pod-template holders
//! PodTemplate and ControllerRevision, and the rules all workloads share
//! (StatefulSets and DaemonSets, in their own files, use them too): the
//! selector must select the template, the template is a valid pod template
//! with `restartPolicy: Always`, and a new object starts with empty status.

use serde_json::{Value, json};

use super::labelselector::{self, go_selector};
use super::podspec::{default_template, validate_template};
use super::validation::{
    check_immutable, default_field, forbidden, go_string_map, int_at, invalid, invalid_shown,
    not_supported, obj_entry, required, str_at, type_invalid, validate_labels, validate_meta,
};
use super::{Cause, Strategy};

const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";
const RS_DEADLINE: &str = "activeDeadlineSeconds in ReplicaSet is not Supported";

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
/// valid with `restartPolicy: Always` and no `activeDeadlineSeconds`.
/// StatefulSets, as upstream, check only the template's labels and
/// annotations, not its pod spec (whose mounts may name claim templates).
pub(super) fn validate_selector_and_template(
    spec: &Value,
    kind: &str,
    deadline_msg: &str,
    errs: &mut Vec<Cause>,
) {
    let template = spec.get("template").unwrap_or(&Value::Null);
    let selector = spec.get("selector").filter(|s| !s.is_null());
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
    let deadline = template
        .pointer("/spec/activeDeadlineSeconds")
        .filter(|d| !d.is_null());
    if kind == "statefulset" {
        let meta = template.get("metadata");
        if template.is_null() {
            errs.push(required("spec.template"));
        }
        errs.extend(validate_labels(
            meta.and_then(|m| m.get("labels")),
            "spec.template.labels",
        ));
        errs.extend(super::validation::validate_annotations(
            meta.and_then(|m| m.get("annotations")),
            "spec.template.annotations",
        ));
        check_restart_policy(template, &["Always"], errs);
        if deadline.is_some() {
            errs.push(forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                deadline_msg,
            ));
        }
        return;
    }
    errs.extend(validate_template(template, "spec.template"));
    check_restart_policy(template, &["Always"], errs);
    if let Some(d) = deadline {
        errs.push(invalid(
            "spec.template.spec.activeDeadlineSeconds",
            d.clone(),
            deadline_msg,
        ));
    }
}

pub(super) fn check_restart_policy(template: &Value, allowed: &[&str], errs: &mut Vec<Cause>) {
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
pub(super) fn int_or_percent(v: &Value, field: &str, errs: &mut Vec<Cause>) -> Option<i64> {
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
pub(super) fn selector_immutable(new: &Value, old: &Value, errs: &mut Vec<Cause>) {
    let n = new.pointer("/spec/selector").unwrap_or(&Value::Null);
    if n != old.pointer("/spec/selector").unwrap_or(&Value::Null) {
        errs.push(invalid_shown(
            "spec.selector",
            &go_selector(n),
            "field is immutable",
        ));
    }
}

pub(super) fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&Value::Null)
}

pub(super) fn default_replicas(obj: &mut Value) -> Option<&mut Value> {
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
        validate_selector_and_template(spec, "deployment", RS_DEADLINE, &mut errs);
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
        validate_selector_and_template(spec, "deployment", RS_DEADLINE, &mut errs);
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
        if let Some(d) = template
            .pointer("/spec/activeDeadlineSeconds")
            .filter(|d| !d.is_null())
        {
            errs.push(invalid(
                "spec.template.spec.activeDeadlineSeconds",
                d.clone(),
                RS_DEADLINE,
            ));
        }
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
    fn deployment_templates_may_not_set_a_deadline() {
        let mut d = kubectl_deployment();
        d["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        DeploymentStrategy.default(&mut d);
        assert_eq!(
            DeploymentStrategy.validate_create(&d)[0].message,
            "Invalid value: 5: activeDeadlineSeconds in ReplicaSet is not Supported"
        );
    }

    /// The objects the deployment and replicaset controllers write, built
    /// from a defaulted Deployment, pass their own strategies unchanged.
    #[test]
    fn controller_written_replica_set_and_pod_validate() {
        let mut d = kubectl_deployment();
        DeploymentStrategy.default(&mut d);
        let mut template = d["spec"]["template"].clone();
        template["metadata"]["labels"]["pod-template-hash"] = json!("5d4f8c9b7");
        let owner = |kind: &str, name: &str| {
            json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u-1",
                "controller": true, "blockOwnerDeletion": true}])
        };
        let mut rs = json!({"metadata": {"name": "web-5d4f8c9b7", "namespace": "default",
                "labels": {"app": "web", "pod-template-hash": "5d4f8c9b7"},
                "ownerReferences": owner("Deployment", "web")},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f8c9b7"}},
                "template": template.clone()}});
        ReplicaSetStrategy.default(&mut rs);
        ReplicaSetStrategy.prepare_for_create(&mut rs);
        assert!(ReplicaSetStrategy.validate_create(&rs).is_empty());
        let pod_strategy = crate::api::kinds::strategy_for("", "Pod");
        let mut pod = json!({"metadata": {"generateName": "web-5d4f8c9b7-", "namespace": "default",
                "labels": template["metadata"]["labels"].clone(), "ownerReferences": owner("ReplicaSet", "web-5d4f8c9b7")},
            "spec": template["spec"].clone()});
        pod_strategy.default(&mut pod);
        pod_strategy.prepare_for_create(&mut pod);
        assert!(
            pod_strategy.validate_create(&pod).is_empty(),
            "{:?}",
            pod_strategy.validate_create(&pod)
        );
        assert_eq!(pod["spec"]["enableServiceLinks"], true);
        assert_eq!(pod["status"]["phase"], "Pending");
        let mut bound = pod.clone();
        bound["status"] = json!({"phase": "Running", "podIP": "10.42.0.7"});
        assert!(pod_strategy.validate_update(&bound, &pod).is_empty());
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
