//! Validation of the containers of a PodSpec (regular, init and ephemeral
//! alike): names, images, pull and termination policies, ports, env,
//! volume mounts, resource quantities with requests ≤ limits, probes and
//! lifecycle handlers; and the quantity and protocol checks other kinds
//! share.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::Cause;
use super::quantity::Quantity;
use super::validation::{
    arr_at, config_key, dns1123_label, duplicate, env_var_name, forbidden, int_at, invalid,
    invalid_each, not_supported, obj_at, port_name, port_number, qualified_name, required,
    required_because, str_at, type_invalid,
};

/// Upstream's `SetDefaults_ResourceList` plus its serialisation: every
/// quantity of the map at `key` of `holder` rounded up to milli-units and
/// written in canonical form (`cpu: 0.5` reads back as `500m`). Values that
/// do not parse are left for validation to report.
pub fn canonicalize_resource_list(holder: &mut Value, key: &str) {
    let Some(list) = holder.get_mut(key).and_then(Value::as_object_mut) else {
        return;
    };
    for v in list.values_mut() {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if let Ok(q) = Quantity::parse(&text) {
            *v = Value::String(q.round_up_to_milli().canonical());
        }
    }
}

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

pub fn validate_container(
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
    validate_role_restrictions(c, cp, list, errs);
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

/// What init containers (unless sidecars) and ephemeral containers may not
/// have.
fn validate_role_restrictions(c: &Value, cp: &str, list: &str, errs: &mut Vec<Cause>) {
    let set = |k: &str| {
        c.get(k)
            .is_some_and(|v| !v.is_null() && v != &Value::Object(Default::default()))
    };
    match list {
        "initContainers" if str_at(c, "restartPolicy") != Some("Always") => {
            for key in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if set(key) {
                    errs.push(forbidden(
                        &format!("{cp}.{key}"),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
        "ephemeralContainers" => {
            for key in [
                "ports",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
                "lifecycle",
                "resources",
                "resizePolicy",
            ] {
                let non_empty = match c.get(key) {
                    Some(Value::Array(a)) => !a.is_empty(),
                    _ => set(key),
                };
                if non_empty {
                    errs.push(forbidden(
                        &format!("{cp}.{key}"),
                        "cannot be set for an Ephemeral Container",
                    ));
                }
            }
        }
        _ => {}
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
                env_var_name(name),
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
                            config_key(k),
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
                env_var_name(prefix),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::podspec::{default_pod_spec, validate_pod_spec};
    use serde_json::json;

    fn spec_with(container: Value) -> Value {
        let mut spec = json!({"containers": [container]});
        default_pod_spec(&mut spec);
        spec
    }

    fn fields(errs: &[Cause]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn resource_lists_are_rounded_and_canonical() {
        let mut res = json!({"limits": {"cpu": 0.5, "memory": "1024Mi", "odd": "x"}});
        canonicalize_resource_list(&mut res, "limits");
        assert_eq!(
            res["limits"],
            json!({"cpu": "500m", "memory": "1Gi", "odd": "x"})
        );
    }

    #[test]
    fn init_and_ephemeral_container_restrictions() {
        let mut spec = json!({"containers": [{"name": "a", "image": "x"}],
            "initContainers": [{"name": "i", "image": "x", "readinessProbe": {"exec": {"command": ["true"]}}},
                {"name": "s", "image": "x", "restartPolicy": "Always", "readinessProbe": {"exec": {"command": ["true"]}}}],
            "ephemeralContainers": [{"name": "e", "image": "x", "ports": [{"containerPort": 80}]}]});
        default_pod_spec(&mut spec);
        let errs = validate_pod_spec(&spec, "spec");
        assert_eq!(
            fields(&errs),
            vec![
                "spec.initContainers[0].readinessProbe",
                "spec.ephemeralContainers[0].ports"
            ]
        );
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
}
