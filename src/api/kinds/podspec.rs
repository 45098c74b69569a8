//! Defaulting and validation of a PodSpec, shared by Pods and by every pod
//! template (Deployments, ReplicaSets, Jobs, ...): upstream's
//! `SetDefaults_PodSpec`/`SetDefaults_Container` and `ValidatePodSpec`,
//! reporting causes under a caller-given path prefix such as `spec` or
//! `spec.template.spec`.

use std::collections::HashSet;

use serde_json::Value;

use super::Cause;
use super::container::{canonicalize_resource_list, validate_container, validate_quantity};
use super::validation::{
    arr_at, default_field, dns1123_label, dns1123_subdomain, duplicate, each_obj_mut, forbidden,
    invalid, invalid_each, ip_address, label_value, not_supported, obj_entry, qualified_name,
    required, required_because, str_at, type_invalid, validate_labels,
};

/// The container lists of a PodSpec, in upstream's order.
pub const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// Every volume source a Volume may name (exactly one is allowed).
const VOLUME_SOURCES: [&str; 30] = [
    "emptyDir",
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

// ---- defaulting ----------------------------------------------------------------

/// Upstream's image pull policy default: `Always` for `:latest` or an
/// untagged image without digest, `IfNotPresent` otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    let (name, has_digest) = match last.split_once('@') {
        Some((n, _)) => (n, true),
        None => (last, false),
    };
    match name.split_once(':') {
        Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
        None if has_digest => "IfNotPresent",
        None => "Always",
    }
}

/// Defaults of a PodSpec wherever it appears (`SetDefaults_PodSpec` and the
/// defaults of its nested types).
pub fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default_field(spec, "dnsPolicy", "ClusterFirst");
    default_field(spec, "restartPolicy", "Always");
    obj_entry(spec, "securityContext");
    default_field(spec, "terminationGracePeriodSeconds", 30);
    default_field(spec, "schedulerName", "default-scheduler");
    sync_service_account(spec);
    for list in CONTAINER_LISTS {
        each_obj_mut(spec, list, default_container);
    }
    each_obj_mut(spec, "volumes", default_volume);
}

/// Keeps the deprecated `serviceAccount` in step with `serviceAccountName`,
/// as upstream's v1 conversion does on every write (the old field fills the
/// new one when only it is set; otherwise the new one wins).
pub fn sync_service_account(spec: &mut Value) {
    let name = str_at(spec, "serviceAccountName").unwrap_or("").to_string();
    let old = str_at(spec, "serviceAccount").unwrap_or("").to_string();
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    if name.is_empty() && !old.is_empty() {
        m.insert("serviceAccountName".into(), old.into());
    } else if !name.is_empty() {
        m.insert("serviceAccount".into(), name.into());
    }
}

fn default_container(c: &mut Value) {
    if str_at(c, "imagePullPolicy").is_none_or(str::is_empty) {
        let policy = default_pull_policy(str_at(c, "image").unwrap_or(""));
        default_field(c, "imagePullPolicy", policy);
    }
    default_field(c, "terminationMessagePath", "/dev/termination-log");
    default_field(c, "terminationMessagePolicy", "File");
    if let Some(res) = c.get_mut("resources") {
        canonicalize_resource_list(res, "limits");
        canonicalize_resource_list(res, "requests");
    }
    each_obj_mut(c, "ports", |p| default_field(p, "protocol", "TCP"));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            default_field(p, "timeoutSeconds", 1);
            default_field(p, "periodSeconds", 10);
            default_field(p, "successThreshold", 1);
            default_field(p, "failureThreshold", 3);
            default_http_get(p);
        }
    }
    if let Some(lc) = c.get_mut("lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get_mut(hook) {
                default_http_get(h);
            }
        }
    }
    each_obj_mut(c, "env", |e| {
        if let Some(fr) = e.pointer_mut("/valueFrom/fieldRef") {
            default_field(fr, "apiVersion", "v1");
        }
    });
}

fn default_http_get(handler: &mut Value) {
    if let Some(h) = handler.get_mut("httpGet").filter(|h| h.is_object()) {
        default_field(h, "path", "/");
        default_field(h, "scheme", "HTTP");
    }
}

fn default_volume(v: &mut Value) {
    let has_source = VOLUME_SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()));
    if !has_source {
        obj_entry(v, "emptyDir");
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).filter(|s| s.is_object()) {
            default_field(s, "defaultMode", 420);
        }
    }
    if let Some(hp) = v.get_mut("hostPath").filter(|s| s.is_object()) {
        if hp.get("type").is_none_or(Value::is_null) {
            if let Some(m) = hp.as_object_mut() {
                m.insert("type".into(), "".into());
            }
        }
    }
    if let Some(sources) = v
        .pointer_mut("/projected/sources")
        .and_then(Value::as_array_mut)
    {
        for s in sources {
            if let Some(t) = s.get_mut("serviceAccountToken").filter(|t| t.is_object()) {
                default_field(t, "expirationSeconds", 3600);
            }
            if let Some(items) = s
                .pointer_mut("/downwardAPI/items")
                .and_then(Value::as_array_mut)
            {
                for item in items {
                    if let Some(fr) = item.get_mut("fieldRef").filter(|f| f.is_object()) {
                        default_field(fr, "apiVersion", "v1");
                    }
                }
            }
        }
    }
    if let Some(items) = v
        .pointer_mut("/downwardAPI/items")
        .and_then(Value::as_array_mut)
    {
        for item in items {
            if let Some(fr) = item.get_mut("fieldRef").filter(|f| f.is_object()) {
                default_field(fr, "apiVersion", "v1");
            }
        }
    }
}

// ---- validation ------------------------------------------------------------------

/// Validates a PodSpec at path `p` (e.g. `spec`).
pub fn validate_pod_spec(spec: &Value, p: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    if !spec.is_object() {
        errs.push(if spec.is_null() {
            required(p)
        } else {
            type_invalid(p, spec, "must be an object")
        });
        return errs;
    }
    let volumes = validate_volumes(spec, p, &mut errs);
    if arr_at(spec, "containers").is_empty() {
        errs.push(required(&format!("{p}.containers")));
    }
    let mut names = HashSet::new();
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    for list in CONTAINER_LISTS {
        for (i, c) in arr_at(spec, list).iter().enumerate() {
            let cp = format!("{p}.{list}[{i}]");
            validate_container(c, &cp, list, &volumes, host_network, &mut names, &mut errs);
        }
    }
    match str_at(spec, "restartPolicy") {
        None | Some("") => errs.push(required(&format!("{p}.restartPolicy"))),
        Some("Always" | "OnFailure" | "Never") => {}
        Some(other) => errs.push(not_supported(
            &format!("{p}.restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    match str_at(spec, "dnsPolicy") {
        None | Some("") => errs.push(required(&format!("{p}.dnsPolicy"))),
        Some("ClusterFirst" | "ClusterFirstWithHostNet" | "Default" | "None") => {}
        Some(other) => errs.push(not_supported(
            &format!("{p}.dnsPolicy"),
            other,
            &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        )),
    }
    if let Some(v) = spec.get("activeDeadlineSeconds").filter(|v| !v.is_null()) {
        if !v
            .as_i64()
            .is_some_and(|n| (1..=i64::from(i32::MAX)).contains(&n))
        {
            errs.push(invalid(
                &format!("{p}.activeDeadlineSeconds"),
                v.clone(),
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    for (key, check) in [
        ("nodeName", dns1123_subdomain as fn(&str) -> Vec<String>),
        ("serviceAccountName", dns1123_subdomain),
        ("hostname", dns1123_label),
        ("subdomain", dns1123_label),
        ("priorityClassName", dns1123_subdomain),
    ] {
        if let Some(s) = str_at(spec, key).filter(|s| !s.is_empty()) {
            errs.extend(invalid_each(&format!("{p}.{key}"), s, check(s)));
        }
    }
    errs.extend(validate_labels(
        spec.get("nodeSelector"),
        &format!("{p}.nodeSelector"),
    ));
    validate_tolerations(
        arr_at(spec, "tolerations"),
        &format!("{p}.tolerations"),
        &mut errs,
    );
    super::affinity::validate_placement(spec, p, &mut errs);
    validate_dns_and_hosts(spec, p, &mut errs);
    errs
}

/// `dnsConfig` (required with `dnsPolicy: None`), `hostAliases` and the
/// pod security context's ids.
fn validate_dns_and_hosts(spec: &Value, p: &str, errs: &mut Vec<Cause>) {
    let dns = spec.get("dnsConfig").filter(|d| !d.is_null());
    if str_at(spec, "dnsPolicy") == Some("None") {
        let nameservers = dns.map(|d| arr_at(d, "nameservers")).unwrap_or(&[]);
        if nameservers.is_empty() {
            errs.push(required_because(
                &format!("{p}.dnsConfig.nameservers"),
                "must provide at least one DNS nameserver when DNS policy is None",
            ));
        }
    }
    if let Some(dns) = dns {
        let nameservers = arr_at(dns, "nameservers");
        if nameservers.len() > 3 {
            errs.push(invalid(
                &format!("{p}.dnsConfig.nameservers"),
                Value::from(nameservers.to_vec()),
                "must not have more than 3 nameservers",
            ));
        }
        for (i, ns) in nameservers.iter().enumerate() {
            let s = ns.as_str().unwrap_or("");
            errs.extend(invalid_each(
                &format!("{p}.dnsConfig.nameservers[{i}]"),
                s,
                ip_address(s),
            ));
        }
        for (i, search) in arr_at(dns, "searches").iter().enumerate() {
            let s = search.as_str().unwrap_or("");
            let name = s.strip_suffix('.').unwrap_or(s);
            errs.extend(invalid_each(
                &format!("{p}.dnsConfig.searches[{i}]"),
                s,
                dns1123_subdomain(name),
            ));
        }
    }
    for (i, alias) in arr_at(spec, "hostAliases").iter().enumerate() {
        let ip = str_at(alias, "ip").unwrap_or("");
        errs.extend(invalid_each(
            &format!("{p}.hostAliases[{i}].ip"),
            ip,
            ip_address(ip),
        ));
        for (j, h) in arr_at(alias, "hostnames").iter().enumerate() {
            let s = h.as_str().unwrap_or("");
            errs.extend(invalid_each(
                &format!("{p}.hostAliases[{i}].hostnames[{j}]"),
                s,
                dns1123_subdomain(s),
            ));
        }
    }
    let sc = spec.get("securityContext").unwrap_or(&Value::Null);
    for key in ["runAsUser", "runAsGroup", "fsGroup"] {
        if let Some(id) = sc.get(key).filter(|v| !v.is_null()) {
            if !id
                .as_i64()
                .is_some_and(|n| (0..=i64::from(i32::MAX)).contains(&n))
            {
                errs.push(invalid(
                    &format!("{p}.securityContext.{key}"),
                    id.clone(),
                    "must be between 0 and 2147483647, inclusive",
                ));
            }
        }
    }
}

/// Validates the volumes and returns their names.
fn validate_volumes(spec: &Value, p: &str, errs: &mut Vec<Cause>) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in arr_at(spec, "volumes").iter().enumerate() {
        let vp = format!("{p}.volumes[{i}]");
        let name = str_at(v, "name").unwrap_or("");
        if name.is_empty() {
            errs.push(required(&format!("{vp}.name")));
        } else {
            errs.extend(invalid_each(
                &format!("{vp}.name"),
                name,
                dns1123_label(name),
            ));
            if !names.insert(name.to_string()) {
                errs.push(duplicate(&format!("{vp}.name"), name));
            }
        }
        let present: Vec<&str> = VOLUME_SOURCES
            .iter()
            .copied()
            .filter(|s| v.get(*s).is_some_and(|x| !x.is_null()))
            .collect();
        match present.as_slice() {
            [] => errs.push(required_because(&vp, "must specify a volume type")),
            [one, rest @ ..] => {
                for extra in rest {
                    errs.push(forbidden(
                        &format!("{vp}.{extra}"),
                        "may not specify more than 1 volume type",
                    ));
                }
                validate_volume_source(v, one, &format!("{vp}.{one}"), errs);
            }
        }
    }
    names
}

fn validate_volume_source(v: &Value, source: &str, sp: &str, errs: &mut Vec<Cause>) {
    let s = v.get(source).unwrap_or(&Value::Null);
    let need = |key: &str, errs: &mut Vec<Cause>| {
        if str_at(s, key).is_none_or(str::is_empty) {
            errs.push(required(&format!("{sp}.{key}")));
        }
    };
    match source {
        "hostPath" => need("path", errs),
        "secret" => need("secretName", errs),
        "configMap" => need("name", errs),
        "persistentVolumeClaim" => need("claimName", errs),
        "nfs" => {
            need("server", errs);
            need("path", errs);
        }
        "csi" => need("driver", errs),
        "emptyDir" => {
            if let Some(q) = s.get("sizeLimit") {
                validate_quantity(q, &format!("{sp}.sizeLimit"), errs);
            }
        }
        _ => {}
    }
    if let Some(mode) = s.get("defaultMode").filter(|m| !m.is_null()) {
        if !mode.as_i64().is_some_and(|m| (0..=0o777).contains(&m)) {
            errs.push(invalid(
                &format!("{sp}.defaultMode"),
                mode.clone(),
                "must be a number between 0 and 0777 (octal), both inclusive",
            ));
        }
    }
}

/// Validates tolerations (also used by Node-adjacent kinds).
pub fn validate_tolerations(tolerations: &[Value], tp: &str, errs: &mut Vec<Cause>) {
    for (i, t) in tolerations.iter().enumerate() {
        let ip = format!("{tp}[{i}]");
        let key = str_at(t, "key").unwrap_or("");
        if !key.is_empty() {
            errs.extend(invalid_each(&format!("{ip}.key"), key, qualified_name(key)));
        }
        let operator = str_at(t, "operator").unwrap_or("");
        if key.is_empty() && operator != "Exists" {
            errs.push(invalid(
                &format!("{ip}.operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = str_at(t, "effect").unwrap_or("");
        if t.get("tolerationSeconds").is_some_and(|s| !s.is_null()) && effect != "NoExecute" {
            errs.push(invalid(
                &format!("{ip}.effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = str_at(t, "value").unwrap_or("");
        match operator {
            "" | "Equal" => errs.extend(invalid_each(
                &format!("{ip}.value"),
                value,
                label_value(value),
            )),
            "Exists" if !value.is_empty() => errs.push(invalid(
                &format!("{ip}.operator"),
                value,
                "value must be empty when `operator` is 'Exists'",
            )),
            "Exists" => {}
            other => errs.push(not_supported(
                &format!("{ip}.operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            validate_taint_effect(effect, &format!("{ip}.effect"), errs);
        }
    }
}

/// Checks a taint or toleration effect.
pub fn validate_taint_effect(effect: &str, field: &str, errs: &mut Vec<Cause>) {
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        errs.push(not_supported(
            field,
            effect,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        ));
    }
}

/// Validates a pod template (`metadata` labels/annotations and its spec) at
/// path `tp` (e.g. `spec.template`).
pub fn validate_template(template: &Value, tp: &str) -> Vec<Cause> {
    if template.is_null() {
        return vec![required(tp)];
    }
    let meta = template.get("metadata");
    let mut errs = validate_labels(
        meta.and_then(|m| m.get("labels")),
        &format!("{tp}.metadata.labels"),
    );
    errs.extend(super::validation::validate_annotations(
        meta.and_then(|m| m.get("annotations")),
        &format!("{tp}.metadata.annotations"),
    ));
    errs.extend(validate_pod_spec(
        template.get("spec").unwrap_or(&Value::Null),
        &format!("{tp}.spec"),
    ));
    errs
}

/// Defaults a pod template's spec.
pub fn default_template(template: Option<&mut Value>) {
    if let Some(spec) = template.and_then(|t| t.get_mut("spec")) {
        default_pod_spec(spec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(default_pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn defaults_fill_container_probe_and_volume_fields() {
        let mut spec = json!({
            "containers": [{"name": "c", "image": "busybox",
                "ports": [{"containerPort": 80}],
                "livenessProbe": {"httpGet": {"port": 80}},
                "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
            "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]
        });
        default_pod_spec(&mut spec);
        let c = &spec["containers"][0];
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["livenessProbe"]["timeoutSeconds"], 1);
        assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/");
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
        assert_eq!(spec["securityContext"], json!({}));
        let mut sa = json!({"serviceAccount": "builder", "containers": []});
        default_pod_spec(&mut sa);
        assert_eq!(sa["serviceAccountName"], "builder");
        assert!(validate_pod_spec(&spec, "spec").is_empty());
    }

    fn fields(errs: &[Cause]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn duplicate_names_across_init_and_regular_containers() {
        let mut spec = json!({"initContainers": [{"name": "a", "image": "x"}],
            "containers": [{"name": "a", "image": "x"}]});
        default_pod_spec(&mut spec);
        let errs = validate_pod_spec(&spec, "spec");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.containers[0].name");
        assert_eq!(errs[0].message, "Duplicate value: \"a\"");
    }

    #[test]
    fn volumes_and_mounts() {
        let mut spec = json!({"containers": [{"name": "a", "image": "x",
            "volumeMounts": [{"name": "missing", "mountPath": "/m"}]}],
            "volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}, {"name": "v", "emptyDir": {}}]});
        default_pod_spec(&mut spec);
        let errs = validate_pod_spec(&spec, "spec");
        assert_eq!(
            fields(&errs),
            vec![
                "spec.volumes[0].hostPath",
                "spec.volumes[1].name",
                "spec.containers[0].volumeMounts[0].name"
            ]
        );
        assert_eq!(errs[2].reason, "FieldValueNotFound");
    }

    #[test]
    fn pod_level_enums_and_env() {
        let mut spec = json!({"containers": [{"name": "a", "image": "x",
            "env": [{"name": "A=B"}, {"name": ""}],
            "livenessProbe": {"successThreshold": 2, "exec": {"command": ["true"]}}}],
            "restartPolicy": "Sometimes",
            "tolerations": [{"operator": "Equal", "value": "x"}]});
        default_pod_spec(&mut spec);
        let errs = validate_pod_spec(&spec, "spec");
        let f = fields(&errs);
        assert!(f.contains(&"spec.containers[0].env[0].name"));
        assert!(f.contains(&"spec.containers[0].env[1].name"));
        assert!(f.contains(&"spec.containers[0].livenessProbe.successThreshold"));
        assert!(f.contains(&"spec.restartPolicy"));
        assert!(f.contains(&"spec.tolerations[0].operator"));
    }

    #[test]
    fn dns_host_aliases_and_security_context() {
        let mut spec = json!({"containers": [{"name": "a", "image": "x"}], "dnsPolicy": "None",
            "hostAliases": [{"ip": "not-an-ip", "hostnames": ["ok.example"]}],
            "securityContext": {"runAsUser": -1}});
        default_pod_spec(&mut spec);
        let errs = validate_pod_spec(&spec, "spec");
        assert_eq!(
            fields(&errs),
            vec![
                "spec.dnsConfig.nameservers",
                "spec.hostAliases[0].ip",
                "spec.securityContext.runAsUser"
            ]
        );
    }

    #[test]
    fn no_containers_is_required() {
        let errs = validate_pod_spec(
            &json!({"restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}),
            "spec",
        );
        assert_eq!(errs, vec![required("spec.containers")]);
    }
}
