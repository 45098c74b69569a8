//! Storage kinds: PersistentVolumes (capacity, access modes, exactly one
//! source), PersistentVolumeClaims (access modes and a storage request,
//! spec frozen after creation but for the binding and expansion fields) and
//! StorageClasses (provisioner required, parameters immutable).

use serde_json::{Value, json};

use super::container::{canonicalize_resource_list, validate_quantity};
use super::validation::{
    arr_at, default_field, dns1123_subdomain, forbidden, immutable, invalid, invalid_each,
    not_supported, obj_at, obj_entry, qualified_name, required, required_because, str_at, too_long,
    too_many, validate_meta,
};
use super::{Cause, Strategy};

const ACCESS_MODES: [&str; 4] = [
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

const PV_SOURCES: [&str; 22] = [
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "nfs",
    "rbd",
    "quobyte",
    "cinder",
    "cephfs",
    "iscsi",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

fn validate_access_modes(spec: &Value, field: &str, errs: &mut Vec<Cause>) {
    let modes = arr_at(spec, "accessModes");
    if modes.is_empty() {
        errs.push(required_because(
            field,
            "at least 1 access mode is required",
        ));
    }
    for m in modes {
        let s = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&s) {
            errs.push(not_supported(field, m.clone(), &ACCESS_MODES));
        }
    }
    if modes.iter().any(|m| m == "ReadWriteOncePod") && modes.len() > 1 {
        errs.push(forbidden(
            field,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn validate_volume_mode(spec: &Value, field: &str, errs: &mut Vec<Cause>) {
    if let Some(mode) = str_at(spec, "volumeMode").filter(|m| !matches!(*m, "Block" | "Filesystem"))
    {
        errs.push(not_supported(field, mode, &["Block", "Filesystem"]));
    }
}

/// PersistentVolumes (core/v1).
pub struct PersistentVolumeStrategy;

/// The `name` field selector PVs and PVCs keep for compatibility.
fn name_attribute(obj: &Value) -> Vec<(&'static str, String)> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    vec![("name", name.to_string())]
}

impl Strategy for PersistentVolumeStrategy {
    fn field_attributes(&self, obj: &Value) -> Vec<(&'static str, String)> {
        name_attribute(obj)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_entry(obj, "spec") {
            default_field(spec, "persistentVolumeReclaimPolicy", "Retain");
            default_field(spec, "volumeMode", "Filesystem");
            canonicalize_resource_list(spec, "capacity");
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Pending"}));
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        validate_access_modes(spec, "spec.accessModes", &mut errs);
        match obj_at(spec, "capacity") {
            None => errs.push(required("spec.capacity")),
            Some(cap) => {
                if !cap.contains_key("storage") || cap.len() > 1 {
                    errs.push(not_supported(
                        "spec.capacity",
                        Value::Object(cap.clone()),
                        &["storage"],
                    ));
                }
                for (k, q) in cap {
                    validate_quantity(q, &format!("spec.capacity[{k}]"), &mut errs);
                }
            }
        }
        match str_at(spec, "persistentVolumeReclaimPolicy").unwrap_or("") {
            "Retain" | "Recycle" | "Delete" => {}
            other => errs.push(not_supported(
                "spec.persistentVolumeReclaimPolicy",
                other,
                &["Delete", "Recycle", "Retain"],
            )),
        }
        validate_volume_mode(spec, "spec.volumeMode", &mut errs);
        let present: Vec<&str> = PV_SOURCES
            .iter()
            .copied()
            .filter(|s| spec.get(*s).is_some_and(|v| !v.is_null()))
            .collect();
        match present.as_slice() {
            [] => errs.push(required_because("spec", "must specify a volume type")),
            [first, rest @ ..] => {
                for extra in rest {
                    errs.push(forbidden(
                        &format!("spec.{extra}"),
                        "may not specify more than 1 volume type",
                    ));
                }
                let src = spec.get(*first).unwrap_or(&Value::Null);
                let need = |key: &str, errs: &mut Vec<Cause>| {
                    if str_at(src, key).is_none_or(str::is_empty) {
                        errs.push(required(&format!("spec.{first}.{key}")));
                    }
                };
                match *first {
                    "hostPath" | "local" => need("path", &mut errs),
                    "nfs" => {
                        need("server", &mut errs);
                        need("path", &mut errs);
                    }
                    "csi" => {
                        need("driver", &mut errs);
                        need("volumeHandle", &mut errs);
                    }
                    _ => {}
                }
                if *first == "local" && spec.get("nodeAffinity").is_none_or(Value::is_null) {
                    errs.push(required_because(
                        "spec.nodeAffinity",
                        "Local volume requires node affinity",
                    ));
                }
            }
        }
        if let Some(sc) = str_at(spec, "storageClassName").filter(|s| !s.is_empty()) {
            errs.extend(invalid_each(
                "spec.storageClassName",
                sc,
                dns1123_subdomain(sc),
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        let (n, o) = (
            new.get("spec").unwrap_or(&Value::Null),
            old.get("spec").unwrap_or(&Value::Null),
        );
        let source = |s: &Value| -> Vec<Value> {
            PV_SOURCES
                .iter()
                .map(|k| s.get(*k).cloned().unwrap_or(Value::Null))
                .collect()
        };
        if source(n) != source(o) {
            errs.push(forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation",
            ));
        }
        if n.get("volumeMode") != o.get("volumeMode") {
            errs.push(immutable(
                "spec.volumeMode",
                n.get("volumeMode").unwrap_or(&Value::Null),
            ));
        }
        if o.get("nodeAffinity").is_some_and(|a| !a.is_null())
            && n.get("nodeAffinity") != o.get("nodeAffinity")
        {
            errs.push(immutable(
                "spec.nodeAffinity",
                n.get("nodeAffinity").unwrap_or(&Value::Null),
            ));
        }
        errs
    }
}

/// PersistentVolumeClaims (core/v1).
pub struct PersistentVolumeClaimStrategy;

/// Validates a claim spec (also used for StatefulSet claim templates).
pub fn validate_claim_spec(spec: &Value, p: &str, errs: &mut Vec<Cause>) {
    validate_access_modes(spec, &format!("{p}.accessModes"), errs);
    let storage = spec.pointer("/resources/requests/storage");
    match storage {
        None | Some(Value::Null) => errs.push(required(&format!("{p}.resources[storage]"))),
        Some(q) => {
            let field = format!("{p}.resources[storage]");
            if let Some(v) = validate_quantity(q, &field, errs) {
                if v.nanos() == 0 {
                    errs.push(invalid(&field, q.clone(), "must be greater than zero"));
                }
            }
        }
    }
    if let Some(sc) = str_at(spec, "storageClassName").filter(|s| !s.is_empty()) {
        errs.extend(invalid_each(
            &format!("{p}.storageClassName"),
            sc,
            dns1123_subdomain(sc),
        ));
    }
    validate_volume_mode(spec, &format!("{p}.volumeMode"), errs);
}

impl Strategy for PersistentVolumeClaimStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_entry(obj, "spec") {
            default_field(spec, "volumeMode", "Filesystem");
            if let Some(res) = spec.get_mut("resources") {
                canonicalize_resource_list(res, "requests");
                canonicalize_resource_list(res, "limits");
            }
        }
    }

    fn field_attributes(&self, obj: &Value) -> Vec<(&'static str, String)> {
        name_attribute(obj)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Pending"}));
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        validate_claim_spec(obj.get("spec").unwrap_or(&Value::Null), "spec", &mut errs);
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        let (n, o) = (
            new.get("spec").cloned().unwrap_or(Value::Null),
            old.get("spec").unwrap_or(&Value::Null),
        );
        let mut munged = n.clone();
        let bound = old.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
        if let Some(m) = munged.as_object_mut() {
            let mut carry = |key: &str, allowed: bool| {
                if allowed {
                    match o.get(key) {
                        Some(v) => m.insert(key.into(), v.clone()),
                        None => m.remove(key),
                    };
                }
            };
            carry(
                "volumeName",
                str_at(o, "volumeName").is_none_or(str::is_empty),
            );
            carry(
                "storageClassName",
                o.get("storageClassName").is_none_or(Value::is_null),
            );
            carry("volumeAttributesClassName", true);
            carry("resources", bound);
        }
        if bound {
            let shrunk = |v: &Value| v.pointer("/resources/requests/storage").cloned();
            if let (Some(Value::String(ns)), Some(Value::String(os))) = (shrunk(&n), shrunk(o)) {
                let q = |s: &str| super::quantity::Quantity::parse(s).ok();
                if let (Some(a), Some(b)) = (q(&ns), q(&os)) {
                    if a < b {
                        errs.push(forbidden(
                            "spec.resources.requests.storage",
                            "field can not be less than previous value",
                        ));
                    }
                }
            }
        }
        if &munged != o {
            errs.push(forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
        errs
    }
}

/// StorageClasses (storage.k8s.io/v1).
pub struct StorageClassStrategy;

const MAX_PARAMETERS: usize = 512;
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;

impl Strategy for StorageClassStrategy {
    fn default(&self, obj: &mut Value) {
        default_field(obj, "reclaimPolicy", "Delete");
        default_field(obj, "volumeBindingMode", "Immediate");
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        match str_at(obj, "provisioner").unwrap_or("") {
            "" => errs.push(required("provisioner")),
            p => errs.extend(invalid_each(
                "provisioner",
                p,
                qualified_name(&p.to_lowercase()),
            )),
        }
        if let Some(params) = obj_at(obj, "parameters") {
            if params.len() > MAX_PARAMETERS {
                errs.push(too_many("parameters", params.len(), MAX_PARAMETERS));
            }
            let mut size = 0;
            for (k, v) in params {
                if k.is_empty() {
                    errs.push(required("parameters"));
                }
                size += k.len() + v.as_str().map_or(0, str::len);
            }
            if size > MAX_PARAMETERS_SIZE {
                errs.push(too_long("parameters", MAX_PARAMETERS_SIZE));
            }
        }
        match str_at(obj, "reclaimPolicy") {
            None | Some("Delete" | "Retain") => {}
            Some(other) => errs.push(not_supported("reclaimPolicy", other, &["Delete", "Retain"])),
        }
        match str_at(obj, "volumeBindingMode") {
            None | Some("Immediate" | "WaitForFirstConsumer") => {}
            Some(other) => errs.push(not_supported(
                "volumeBindingMode",
                other,
                &["Immediate", "WaitForFirstConsumer"],
            )),
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        for (key, detail) in [
            ("parameters", "updates to parameters are forbidden."),
            ("provisioner", "updates to provisioner are forbidden."),
            ("reclaimPolicy", "updates to reclaimPolicy are forbidden."),
        ] {
            if new.get(key) != old.get(key) {
                errs.push(forbidden(key, detail));
            }
        }
        if new.get("volumeBindingMode") != old.get("volumeBindingMode") {
            errs.push(immutable(
                "volumeBindingMode",
                new.get("volumeBindingMode").unwrap_or(&Value::Null),
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvc_requires_modes_and_storage_and_freezes_spec() {
        let pvc = json!({"metadata": {"name": "c"}, "spec": {}});
        let errs = PersistentVolumeClaimStrategy.validate_create(&pvc);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.accessModes", "spec.resources[storage]"]);
        let mut ok = json!({"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        PersistentVolumeClaimStrategy.default(&mut ok);
        PersistentVolumeClaimStrategy.prepare_for_create(&mut ok);
        assert_eq!(ok["status"], json!({"phase": "Pending"}));
        assert!(
            PersistentVolumeClaimStrategy
                .validate_create(&ok)
                .is_empty()
        );
        let mut bind = ok.clone();
        bind["spec"]["volumeName"] = json!("pv1");
        assert!(
            PersistentVolumeClaimStrategy
                .validate_update(&bind, &ok)
                .is_empty()
        );
        let mut grow = ok.clone();
        grow["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert_eq!(
            PersistentVolumeClaimStrategy.validate_update(&grow, &ok)[0].field,
            "spec"
        );
        let mut bound = ok.clone();
        bound["status"]["phase"] = json!("Bound");
        assert!(
            PersistentVolumeClaimStrategy
                .validate_update(&grow, &bound)
                .is_empty()
        );
    }

    #[test]
    fn pv_needs_capacity_modes_and_one_source() {
        let mut pv = json!({"metadata": {"name": "pv"}, "spec": {"capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}}});
        PersistentVolumeStrategy.default(&mut pv);
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert!(PersistentVolumeStrategy.validate_create(&pv).is_empty());
        pv["spec"]["nfs"] = json!({"server": "s", "path": "/"});
        assert_eq!(
            PersistentVolumeStrategy.validate_create(&pv)[0].field,
            "spec.nfs"
        );
        let bare = json!({"metadata": {"name": "pv"}, "spec": {"accessModes": ["Sometimes"]}});
        let fields: Vec<String> = PersistentVolumeStrategy
            .validate_create(&bare)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "spec.accessModes",
                "spec.capacity",
                "spec.persistentVolumeReclaimPolicy",
                "spec"
            ]
        );
    }

    #[test]
    fn storage_class_rules() {
        let mut sc = json!({"metadata": {"name": "local"}, "provisioner": "rancher.io/local-path", "parameters": {"a": "b"}});
        StorageClassStrategy.default(&mut sc);
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");
        assert!(StorageClassStrategy.validate_create(&sc).is_empty());
        let mut changed = sc.clone();
        changed["parameters"]["a"] = json!("c");
        assert_eq!(
            StorageClassStrategy.validate_update(&changed, &sc),
            vec![forbidden(
                "parameters",
                "updates to parameters are forbidden."
            )]
        );
        assert_eq!(
            StorageClassStrategy.validate_create(&json!({"metadata": {"name": "x"}}))[0].field,
            "provisioner"
        );
    }
}
