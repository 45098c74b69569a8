//! Defaulting and validation of a PodSpec, shared by Pods and by every pod
//! template (Deployments, ReplicaSets, Jobs, ...): upstream's
//! `SetDefaults_PodSpec`/`SetDefaults_Container` and `ValidatePodSpec`,
//! reporting causes under a caller-given path prefix such as `spec` or
//! `spec.template.spec`.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::Cause;
use super::quantity::Quantity;
use super::validation::{
    arr_at, default_field, dns1123_label, dns1123_subdomain, duplicate, each_obj_mut, forbidden,
    int_at, invalid, invalid_each, label_value, not_supported, obj_at, obj_entry, port_name,
    port_number, qualified_name, required, required_because, str_at, type_invalid, validate_labels,
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
    for list in CONTAINER_LISTS {
        each_obj_mut(spec, list, default_container);
    }
    each_obj_mut(spec, "volumes", default_volume);
}

fn default_container(c: &mut Value) {
    if str_at(c, "imagePullPolicy").is_none_or(str::is_empty) {
        let policy = default_pull_policy(str_at(c, "image").unwrap_or(""));
        default_field(c, "imagePullPolicy", policy);
    }
    default_field(c, "terminationMessagePath", "/dev/termination-log");
    default_field(c, "terminationMessagePolicy", "File");
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

/// Checks an optional integer field is ≥ 0.
fn nonnegative(obj: &Value, key: &str, field: &str, errs: &mut Vec<Cause>) {
    match obj.get(key) {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_i64() {
            Some(n) if n < 0 => errs.push(invalid(field, n, "must be greater than or equal to 0")),
            Some(_) => {}
            None => errs.push(type_invalid(field, v, "must be an integer")),
        },
    }
}

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
    errs
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

/// Validates a quantity-valued JSON field and returns its value.
pub fn validate_quantity(q: &Value, field: &str, errs: &mut Vec<Cause>) -> Option<Quantity> {
    let parsed = match q {
        Value::String(s) => {
            Quantity::parse(s).map_err(|e| invalid(field, s.as_str(), &e.to_string()))
        }
        Value::Number(n) => {
            Quantity::parse(&n.to_string()).map_err(|e| invalid(field, q.clone(), &e.to_string()))
        }
        other => Err(type_invalid(field, other, "must be a quantity")),
    };
    match parsed {
        Ok(v) if v.is_negative() => {
            errs.push(invalid(
                field,
                q.clone(),
                "must be greater than or equal to 0",
            ));
            None
        }
        Ok(v) => Some(v),
        Err(e) => {
            errs.push(e);
            None
        }
    }
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// Validates `resources` of a container: names, quantities, requests ≤ limits.
pub fn validate_resources(res: &Value, rp: &str, errs: &mut Vec<Cause>) {
    let mut parsed: [BTreeMap<String, (Quantity, String)>; 2] = Default::default();
    for (slot, key) in ["limits", "requests"].iter().enumerate() {
        let Some(map) = obj_at(res, key) else {
            continue;
        };
        for (name, q) in map {
            let field = format!("{rp}.{key}[{name}]");
            errs.extend(invalid_each(&field, name, qualified_name(name)));
            if !name.contains('/') && !is_standard_container_resource(name) {
                errs.push(invalid(
                    &field,
                    name.as_str(),
                    "must be a standard resource for containers",
                ));
            }
            if let Some(v) = validate_quantity(q, &field, errs) {
                let shown = q.as_str().map_or_else(|| q.to_string(), str::to_string);
                parsed[slot].insert(name.clone(), (v, shown));
            }
        }
    }
    let [limits, requests] = &parsed;
    for (name, (req, req_str)) in requests {
        if let Some((lim, lim_str)) = limits.get(name) {
            if req > lim {
                errs.push(invalid(
                    &format!("{rp}.requests[{name}]"),
                    req_str.as_str(),
                    &format!("must be less than or equal to {name} limit of {lim_str}"),
                ));
            }
        }
    }
}

fn validate_container(
    c: &Value,
    cp: &str,
    list: &str,
    volumes: &HashSet<String>,
    host_network: bool,
    names: &mut HashSet<String>,
    errs: &mut Vec<Cause>,
) {
    if !c.is_object() {
        errs.push(type_invalid(cp, c, "must be an object"));
        return;
    }
    match str_at(c, "name").unwrap_or("") {
        "" => errs.push(required(&format!("{cp}.name"))),
        name => {
            errs.extend(invalid_each(
                &format!("{cp}.name"),
                name,
                dns1123_label(name),
            ));
            if !names.insert(name.to_string()) {
                errs.push(duplicate(&format!("{cp}.name"), name));
            }
        }
    }
    match str_at(c, "image").unwrap_or("") {
        "" => errs.push(required(&format!("{cp}.image"))),
        image if image.trim() != image => errs.push(invalid(
            &format!("{cp}.image"),
            image,
            "must not have leading or trailing whitespace",
        )),
        _ => {}
    }
    match str_at(c, "imagePullPolicy") {
        None | Some("") => errs.push(required(&format!("{cp}.imagePullPolicy"))),
        Some("Always" | "IfNotPresent" | "Never") => {}
        Some(other) => errs.push(not_supported(
            &format!("{cp}.imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    match str_at(c, "terminationMessagePolicy") {
        None | Some("") => errs.push(required(&format!("{cp}.terminationMessagePolicy"))),
        Some("File" | "FallbackToLogsOnError") => {}
        Some(other) => errs.push(not_supported(
            &format!("{cp}.terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    match (list, str_at(c, "restartPolicy")) {
        (_, None) => {}
        ("initContainers", Some("Always")) => {}
        ("initContainers", Some(other)) => errs.push(not_supported(
            &format!("{cp}.restartPolicy"),
            other,
            &["Always"],
        )),
        (_, Some(_)) => errs.push(forbidden(
            &format!("{cp}.restartPolicy"),
            "may not be set for non-init containers",
        )),
    }
    validate_ports(c, cp, host_network, errs);
    validate_env(c, cp, errs);
    let mut mount_paths = HashSet::new();
    for (i, m) in arr_at(c, "volumeMounts").iter().enumerate() {
        let mp = format!("{cp}.volumeMounts[{i}]");
        match str_at(m, "name").unwrap_or("") {
            "" => errs.push(required(&format!("{mp}.name"))),
            n if !volumes.contains(n) => errs.push(Cause {
                reason: "FieldValueNotFound",
                message: format!("Not found: {}", Value::from(n)),
                field: format!("{mp}.name"),
            }),
            _ => {}
        }
        match str_at(m, "mountPath").unwrap_or("") {
            "" => errs.push(required(&format!("{mp}.mountPath"))),
            path if !mount_paths.insert(path.to_string()) => {
                errs.push(invalid(&format!("{mp}.mountPath"), path, "must be unique"))
            }
            _ => {}
        }
    }
    if let Some(res) = c.get("resources").filter(|r| !r.is_null()) {
        validate_resources(res, &format!("{cp}.resources"), errs);
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(pr) = c.get(probe).filter(|p| !p.is_null()) {
            validate_probe(
                pr,
                &format!("{cp}.{probe}"),
                probe != "readinessProbe",
                errs,
            );
        }
    }
    if let Some(lc) = c.get("lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get(hook).filter(|h| !h.is_null()) {
                validate_handler(
                    h,
                    &format!("{cp}.lifecycle.{hook}"),
                    &["exec", "httpGet", "tcpSocket", "sleep"],
                    errs,
                );
            }
        }
    }
}

fn validate_ports(c: &Value, cp: &str, host_network: bool, errs: &mut Vec<Cause>) {
    let mut port_names = HashSet::new();
    for (i, port) in arr_at(c, "ports").iter().enumerate() {
        let pp = format!("{cp}.ports[{i}]");
        if let Some(name) = str_at(port, "name").filter(|n| !n.is_empty()) {
            errs.extend(invalid_each(&format!("{pp}.name"), name, port_name(name)));
            if !port_names.insert(name.to_string()) {
                errs.push(duplicate(&format!("{pp}.name"), name));
            }
        }
        let container_port = int_at(port, "containerPort");
        match port.get("containerPort") {
            None | Some(Value::Null) => errs.push(required(&format!("{pp}.containerPort"))),
            Some(v) => match v.as_i64() {
                Some(0) => errs.push(required(&format!("{pp}.containerPort"))),
                Some(n) => errs.extend(invalid_each_int(
                    &format!("{pp}.containerPort"),
                    n,
                    port_number(n),
                )),
                None => errs.push(type_invalid(
                    &format!("{pp}.containerPort"),
                    v,
                    "must be an integer",
                )),
            },
        }
        if let Some(host) = int_at(port, "hostPort").filter(|h| *h != 0) {
            errs.extend(invalid_each_int(
                &format!("{pp}.hostPort"),
                host,
                port_number(host),
            ));
            if host_network && Some(host) != container_port {
                errs.push(invalid(
                    &format!("{pp}.hostPort"),
                    host,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
        validate_protocol(port, &format!("{pp}.protocol"), errs);
    }
}

/// Checks a port's `protocol` is one of SCTP, TCP, UDP.
pub fn validate_protocol(port: &Value, field: &str, errs: &mut Vec<Cause>) {
    match str_at(port, "protocol") {
        None | Some("") => errs.push(required(field)),
        Some("TCP" | "UDP" | "SCTP") => {}
        Some(other) => errs.push(not_supported(field, other, &["SCTP", "TCP", "UDP"])),
    }
}

/// One `Invalid value` cause per message, for an integer value.
pub fn invalid_each_int(field: &str, value: i64, messages: Vec<String>) -> Vec<Cause> {
    messages
        .into_iter()
        .map(|m| invalid(field, value, &m))
        .collect()
}

fn validate_env(c: &Value, cp: &str, errs: &mut Vec<Cause>) {
    for (i, e) in arr_at(c, "env").iter().enumerate() {
        let ep = format!("{cp}.env[{i}]");
        match str_at(e, "name").unwrap_or("") {
            "" => errs.push(required(&format!("{ep}.name"))),
            name => errs.extend(invalid_each(
                &format!("{ep}.name"),
                name,
                super::validation::env_var_name(name),
            )),
        }
        if let Some(from) = e.get("valueFrom").filter(|v| !v.is_null()) {
            let fp = format!("{ep}.valueFrom");
            let sources = [
                "fieldRef",
                "resourceFieldRef",
                "configMapKeyRef",
                "secretKeyRef",
            ]
            .iter()
            .filter(|k| from.get(**k).is_some_and(|x| !x.is_null()))
            .count();
            if str_at(e, "value").is_some_and(|v| !v.is_empty()) {
                errs.push(invalid(
                    &fp,
                    "",
                    "may not be specified when `value` is not empty",
                ));
            } else if sources == 0 {
                errs.push(invalid(
                    &fp,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                ));
            } else if sources > 1 {
                errs.push(invalid(
                    &fp,
                    "",
                    "may not have more than one field specified at a time",
                ));
            }
            for key_ref in ["configMapKeyRef", "secretKeyRef"] {
                if let Some(r) = from.get(key_ref).filter(|r| !r.is_null()) {
                    match str_at(r, "key").unwrap_or("") {
                        "" => errs.push(required(&format!("{fp}.{key_ref}.key"))),
                        k => errs.extend(invalid_each(
                            &format!("{fp}.{key_ref}.key"),
                            k,
                            super::validation::config_key(k),
                        )),
                    }
                }
            }
            if let Some(r) = from.get("fieldRef").filter(|r| !r.is_null()) {
                if str_at(r, "fieldPath").is_none_or(str::is_empty) {
                    errs.push(required(&format!("{fp}.fieldRef.fieldPath")));
                }
            }
        }
    }
    for (i, e) in arr_at(c, "envFrom").iter().enumerate() {
        if let Some(prefix) = str_at(e, "prefix").filter(|p| !p.is_empty()) {
            errs.extend(invalid_each(
                &format!("{cp}.envFrom[{i}].prefix"),
                prefix,
                super::validation::env_var_name(prefix),
            ));
        }
    }
}

fn validate_probe(pr: &Value, pp: &str, must_succeed_once: bool, errs: &mut Vec<Cause>) {
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        nonnegative(pr, key, &format!("{pp}.{key}"), errs);
    }
    if must_succeed_once {
        if let Some(n) = int_at(pr, "successThreshold").filter(|n| *n != 1) {
            errs.push(invalid(&format!("{pp}.successThreshold"), n, "must be 1"));
        }
    }
    validate_handler(pr, pp, &["exec", "httpGet", "tcpSocket", "grpc"], errs);
}

fn validate_handler(h: &Value, hp: &str, kinds: &[&str], errs: &mut Vec<Cause>) {
    let present: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| h.get(*k).is_some_and(|x| !x.is_null()))
        .collect();
    match present.as_slice() {
        [] => errs.push(required_because(hp, "must specify a handler type")),
        [_, rest @ ..] => {
            for extra in rest {
                errs.push(forbidden(
                    &format!("{hp}.{extra}"),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
    for key in ["httpGet", "tcpSocket"] {
        if let Some(a) = h.get(key).filter(|a| !a.is_null()) {
            let field = format!("{hp}.{key}.port");
            match a.get("port") {
                Some(Value::Number(n)) => {
                    let n = n.as_i64().unwrap_or(0);
                    errs.extend(invalid_each_int(&field, n, port_number(n)));
                }
                Some(Value::String(s)) => errs.extend(invalid_each(&field, s, port_name(s))),
                _ => errs.push(required(&field)),
            }
        }
    }
    if let Some(scheme) = h.pointer("/httpGet/scheme").and_then(Value::as_str) {
        if !matches!(scheme, "HTTP" | "HTTPS") {
            errs.push(not_supported(
                &format!("{hp}.httpGet.scheme"),
                scheme,
                &["HTTP", "HTTPS"],
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
        assert!(validate_pod_spec(&spec, "spec").is_empty());
    }

    fn spec_with(container: Value) -> Value {
        let mut spec = json!({"containers": [container]});
        default_pod_spec(&mut spec);
        spec
    }

    fn fields(errs: &[Cause]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn container_rules() {
        let spec = spec_with(json!({"name": "Web", "image": "",
            "ports": [{"containerPort": 70000, "protocol": "HTTP"}]}));
        let errs = validate_pod_spec(&spec, "spec");
        assert_eq!(
            fields(&errs),
            vec![
                "spec.containers[0].name",
                "spec.containers[0].image",
                "spec.containers[0].ports[0].containerPort",
                "spec.containers[0].ports[0].protocol"
            ]
        );
        assert_eq!(
            errs[3].message,
            "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
        );
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
    fn resources_parse_and_requests_fit_limits() {
        let spec = spec_with(json!({"name": "a", "image": "x", "resources": {
            "limits": {"cpu": "500m", "memory": "1.2.3"},
            "requests": {"cpu": "1", "gpu": "1"}}}));
        let errs = validate_pod_spec(&spec, "spec");
        let f = fields(&errs);
        assert!(f.contains(&"spec.containers[0].resources.limits[memory]"));
        assert!(f.contains(&"spec.containers[0].resources.requests[gpu]"));
        let cpu = errs
            .iter()
            .find(|e| e.field == "spec.containers[0].resources.requests[cpu]")
            .expect("cpu");
        assert_eq!(
            cpu.message,
            "Invalid value: \"1\": must be less than or equal to cpu limit of 500m"
        );
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
    fn no_containers_is_required() {
        let errs = validate_pod_spec(
            &json!({"restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}),
            "spec",
        );
        assert_eq!(errs, vec![required("spec.containers")]);
    }
}
