//! The Service strategy: upstream's defaults (type, session affinity, port
//! protocols and target ports, traffic policies), the clusterIP/clusterIPs
//! pairing and IP-family fields of a Service whose IP is known (allocation is
//! done elsewhere), the carry-over of allocated values on update, and
//! `ValidateService` / `ValidateServiceUpdate`.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::container::{invalid_each_int, validate_protocol};
use super::validation::{
    arr_at, cidr, default_field, dns1123_subdomain, duplicate, forbidden, int_at, invalid,
    invalid_each, invalid_shown, ip_address, not_supported, obj_entry, parse_ip, port_name,
    port_number, required, service_port_name, str_at, validate_labels, validate_meta,
};
use super::{Cause, Strategy};

/// Services (core/v1).
pub struct ServiceStrategy;

fn svc_type(spec: &Value) -> &str {
    str_at(spec, "type").unwrap_or("ClusterIP")
}

fn externally_accessible(spec: &Value) -> bool {
    matches!(svc_type(spec), "NodePort" | "LoadBalancer") || !arr_at(spec, "externalIPs").is_empty()
}

fn is_headless(spec: &Value) -> bool {
    str_at(spec, "clusterIP") == Some("None")
}

fn family_of(ip: &str) -> Option<&'static str> {
    parse_ip(ip).map(|ip| if ip.is_ipv4() { "IPv4" } else { "IPv6" })
}

/// Keeps `clusterIP` and `clusterIPs[0]` in step, as upstream's strategy does.
fn normalize_cluster_ips(spec: &mut Value) {
    let ip = str_at(spec, "clusterIP").unwrap_or("").to_string();
    let first = spec
        .pointer("/clusterIPs/0")
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    match (ip.is_empty(), first) {
        (false, None) => {
            m.insert("clusterIPs".into(), json!([ip]));
        }
        (true, Some(first)) => {
            m.insert("clusterIP".into(), first.into());
        }
        _ => {}
    }
}

/// The IP-family fields of a Service whose cluster IP is known.
fn default_ip_families(spec: &mut Value) {
    if svc_type(spec) == "ExternalName" {
        return;
    }
    let ip = str_at(spec, "clusterIP").unwrap_or("").to_string();
    if ip.is_empty() {
        return;
    }
    let has_selector = spec
        .get("selector")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty());
    let (policy, families) = if ip == "None" {
        // upstream gives a selectorless headless Service PreferDualStack
        // (its endpoints may be of either family); on this single-stack
        // IPv4 cluster the families stay [IPv4]
        let policy = if has_selector {
            "SingleStack"
        } else {
            "PreferDualStack"
        };
        (policy, vec!["IPv4"])
    } else {
        let fams: Vec<&str> = arr_at(spec, "clusterIPs")
            .iter()
            .filter_map(|v| v.as_str().and_then(family_of))
            .collect();
        let policy = if fams.len() > 1 {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        (policy, fams)
    };
    default_field(spec, "ipFamilyPolicy", policy);
    if arr_at(spec, "ipFamilies").is_empty() && !families.is_empty() {
        if let Some(m) = spec.as_object_mut() {
            m.insert("ipFamilies".into(), json!(families));
        }
    }
}

impl Strategy for ServiceStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_entry(obj, "spec") else {
            return;
        };
        default_field(spec, "sessionAffinity", "None");
        match str_at(spec, "sessionAffinity") {
            Some("None") => {
                if let Some(m) = spec.as_object_mut() {
                    m.remove("sessionAffinityConfig");
                }
            }
            Some("ClientIP") => {
                let timeout = spec.pointer("/sessionAffinityConfig/clientIP/timeoutSeconds");
                if timeout.is_none_or(Value::is_null) {
                    if let Some(m) = spec.as_object_mut() {
                        m.insert(
                            "sessionAffinityConfig".into(),
                            json!({"clientIP": {"timeoutSeconds": 10800}}),
                        );
                    }
                }
            }
            _ => {}
        }
        default_field(spec, "type", "ClusterIP");
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter(|p| p.is_object()) {
                default_field(p, "protocol", "TCP");
                let unset = match p.get("targetPort") {
                    None | Some(Value::Null) => true,
                    Some(Value::String(s)) => s.is_empty(),
                    Some(Value::Number(n)) => n.as_i64() == Some(0),
                    _ => false,
                };
                if unset {
                    if let (Some(port), Some(m)) = (p.get("port").cloned(), p.as_object_mut()) {
                        m.insert("targetPort".into(), port);
                    }
                }
            }
        }
        if externally_accessible(spec) {
            default_field(spec, "externalTrafficPolicy", "Cluster");
        }
        if matches!(svc_type(spec), "ClusterIP" | "NodePort" | "LoadBalancer") {
            default_field(spec, "internalTrafficPolicy", "Cluster");
        }
        if svc_type(spec) == "LoadBalancer" {
            default_field(spec, "allocateLoadBalancerNodePorts", true);
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
            normalize_cluster_ips(spec);
            default_ip_families(spec);
        }
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"loadBalancer": {}}));
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let old_spec = old.get("spec").unwrap_or(&Value::Null);
        let Some(spec) = new.get_mut("spec").filter(|s| s.is_object()) else {
            return;
        };
        drop_type_dependent_fields(spec, old_spec);
        let needs_ip = |s: &Value| svc_type(s) != "ExternalName";
        if needs_ip(spec) && needs_ip(old_spec) {
            // a PUT without the allocated IPs keeps them, as upstream's REST does
            for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                let unset = match spec.get(key) {
                    None | Some(Value::Null) => true,
                    Some(Value::String(s)) => s.is_empty(),
                    Some(Value::Array(a)) => a.is_empty(),
                    _ => false,
                };
                if let (true, Some(v), Some(m)) = (unset, old_spec.get(key), spec.as_object_mut()) {
                    m.insert(key.into(), v.clone());
                }
            }
        }
        let needs_node_ports = |s: &Value| matches!(svc_type(s), "NodePort" | "LoadBalancer");
        if needs_node_ports(spec) && needs_node_ports(old_spec) {
            let old_ports = arr_at(old_spec, "ports").to_vec();
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut() {
                    if int_at(p, "nodePort").unwrap_or(0) != 0 {
                        continue;
                    }
                    let same = old_ports.iter().find(|o| {
                        o.get("port") == p.get("port") && o.get("protocol") == p.get("protocol")
                    });
                    if let (Some(np), Some(m)) = (
                        same.and_then(|o| o.get("nodePort")).cloned(),
                        p.as_object_mut(),
                    ) {
                        m.insert("nodePort".into(), np);
                    }
                }
            }
        }
        normalize_cluster_ips(spec);
        default_ip_families(spec);
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        errs.extend(super::validation::stricter_name(
            obj,
            super::validation::dns1035_label,
        ));
        errs.extend(validate_spec(obj.get("spec").unwrap_or(&Value::Null)));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        let null = Value::Null;
        let (n, o) = (
            new.get("spec").unwrap_or(&null),
            old.get("spec").unwrap_or(&null),
        );
        if svc_type(n) == "ExternalName"
            || svc_type(o) == "ExternalName"
            || (is_headless(n) && is_headless(o))
        {
            return errs;
        }
        let (new_ips, old_ips) = (arr_at(n, "clusterIPs"), arr_at(o, "clusterIPs"));
        let shown = format!(
            "[]string{{{}}}",
            new_ips
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        if new_ips.len() == old_ips.len() {
            for (i, (a, b)) in new_ips.iter().zip(old_ips).enumerate() {
                if a != b {
                    errs.push(invalid_shown(
                        &format!("spec.clusterIPs[{i}]"),
                        &shown,
                        "may not change once set",
                    ));
                }
            }
        } else if new_ips.is_empty() {
            errs.push(super::validation::required_because(
                "spec.clusterIPs[0]",
                "primary clusterIP can not be unset",
            ));
        } else if new_ips.first() != old_ips.first() && !old_ips.is_empty() {
            errs.push(invalid_shown(
                "spec.clusterIPs[0]",
                &shown,
                "may not change once set",
            ));
        }
        errs
    }

    fn field_attributes(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        vec![
            (
                "spec.clusterIP",
                str_at(spec, "clusterIP").unwrap_or("").to_string(),
            ),
            ("spec.type", str_at(spec, "type").unwrap_or("").to_string()),
        ]
    }
}

/// Upstream's `dropTypeDependentFields`: when the type changes, values the
/// old type needed and the client left untouched are cleared, so that e.g.
/// NodePort → ClusterIP or ClusterIP → ExternalName validates.
fn drop_type_dependent_fields(spec: &mut Value, old: &Value) {
    let (new_type, old_type) = (svc_type(spec).to_string(), svc_type(old));
    if new_type == old_type {
        return;
    }
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    let unchanged = |m: &serde_json::Map<String, Value>, k: &str| m.get(k) == old.get(k);
    if new_type == "ExternalName" && unchanged(m, "clusterIP") {
        for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            m.remove(key);
        }
    }
    if !matches!(new_type.as_str(), "NodePort" | "LoadBalancer") {
        let old_ports = arr_at(old, "ports");
        if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                let node_port = p.get("nodePort").cloned();
                let was_old = node_port
                    .as_ref()
                    .is_some_and(|np| old_ports.iter().any(|o| o.get("nodePort") == Some(np)));
                if let (true, Some(pm)) = (was_old, p.as_object_mut()) {
                    pm.remove("nodePort");
                }
            }
        }
        if unchanged(m, "externalTrafficPolicy")
            && m.get("externalIPs")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        {
            m.remove("externalTrafficPolicy");
        }
    }
    if new_type != "LoadBalancer" {
        for key in [
            "healthCheckNodePort",
            "allocateLoadBalancerNodePorts",
            "loadBalancerClass",
        ] {
            if unchanged(m, key) {
                m.remove(key);
            }
        }
    }
}

/// Upstream's `ValidateService` on the spec.
fn validate_spec(spec: &Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    let ty = str_at(spec, "type").unwrap_or("");
    match ty {
        "" => errs.push(required("spec.type")),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => errs.push(not_supported(
            "spec.type",
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    let ports = arr_at(spec, "ports");
    if ports.is_empty() && !is_headless(spec) && ty != "ExternalName" {
        errs.push(required("spec.ports"));
    }
    if ty == "ExternalName" {
        if !arr_at(spec, "clusterIPs").is_empty()
            || str_at(spec, "clusterIP").is_some_and(|s| !s.is_empty())
        {
            errs.push(forbidden(
                "spec.clusterIPs",
                "may not be set for ExternalName services",
            ));
        }
        match str_at(spec, "externalName").unwrap_or("") {
            "" => errs.push(required("spec.externalName")),
            name => {
                let clean = name.strip_suffix('.').unwrap_or(name);
                errs.extend(invalid_each(
                    "spec.externalName",
                    name,
                    dns1123_subdomain(clean),
                ));
            }
        }
    }
    validate_ports(ports, ty, &mut errs);
    validate_cluster_ips(spec, ty, &mut errs);
    errs.extend(validate_labels(spec.get("selector"), "spec.selector"));
    match str_at(spec, "sessionAffinity").unwrap_or("") {
        "" => errs.push(required("spec.sessionAffinity")),
        "None" => {}
        "ClientIP" => {
            let t = spec
                .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
                .and_then(Value::as_i64);
            if let Some(t) = t.filter(|t| !(1..=86400).contains(t)) {
                errs.push(invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    t,
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
        other => errs.push(not_supported(
            "spec.sessionAffinity",
            other,
            &["ClientIP", "None"],
        )),
    }
    match str_at(spec, "externalTrafficPolicy").unwrap_or("") {
        "" if externally_accessible(spec) => errs.push(required("spec.externalTrafficPolicy")),
        "" => {}
        p if !externally_accessible(spec) => errs.push(invalid(
            "spec.externalTrafficPolicy",
            p,
            "may only be set for externally-accessible services",
        )),
        "Cluster" | "Local" => {}
        other => errs.push(not_supported(
            "spec.externalTrafficPolicy",
            other,
            &["Cluster", "Local"],
        )),
    }
    match str_at(spec, "internalTrafficPolicy") {
        None | Some("") if ty != "ExternalName" => {
            errs.push(required("spec.internalTrafficPolicy"))
        }
        None | Some("" | "Cluster" | "Local") => {}
        Some(other) => errs.push(not_supported(
            "spec.internalTrafficPolicy",
            other,
            &["Cluster", "Local"],
        )),
    }
    if let Some(p) = str_at(spec, "ipFamilyPolicy") {
        if !matches!(p, "SingleStack" | "PreferDualStack" | "RequireDualStack") {
            errs.push(not_supported(
                "spec.ipFamilyPolicy",
                p,
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            ));
        }
    }
    let mut families = HashSet::new();
    for (i, f) in arr_at(spec, "ipFamilies").iter().enumerate() {
        let field = format!("spec.ipFamilies[{i}]");
        match f.as_str() {
            Some("IPv4" | "IPv6") if !families.insert(f.to_string()) => {
                errs.push(duplicate(&field, f.clone()))
            }
            Some("IPv4" | "IPv6") => {}
            _ => errs.push(not_supported(&field, f.clone(), &["IPv4", "IPv6"])),
        }
    }
    for (i, ip) in arr_at(spec, "externalIPs").iter().enumerate() {
        let s = ip.as_str().unwrap_or("");
        errs.extend(invalid_each(
            &format!("spec.externalIPs[{i}]"),
            s,
            ip_address(s),
        ));
    }
    for (i, r) in arr_at(spec, "loadBalancerSourceRanges").iter().enumerate() {
        let s = r.as_str().unwrap_or("").trim();
        errs.extend(invalid_each(
            &format!("spec.loadBalancerSourceRanges[{i}]"),
            s,
            cidr(s),
        ));
    }
    errs
}

fn validate_ports(ports: &[Value], ty: &str, errs: &mut Vec<Cause>) {
    let mut names = HashSet::new();
    let mut seen = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("spec.ports[{i}]");
        service_port_name(p, &pp, ports.len(), &mut names, errs);
        let port = int_at(p, "port").unwrap_or(0);
        errs.extend(invalid_each_int(
            &format!("{pp}.port"),
            port,
            port_number(port),
        ));
        validate_protocol(p, &format!("{pp}.protocol"), errs);
        if let Some(ap) = str_at(p, "appProtocol") {
            errs.extend(invalid_each(
                &format!("{pp}.appProtocol"),
                ap,
                super::validation::qualified_name(ap),
            ));
        }
        match p.get("targetPort") {
            Some(Value::Number(n)) => {
                let n = n.as_i64().unwrap_or(0);
                errs.extend(invalid_each_int(
                    &format!("{pp}.targetPort"),
                    n,
                    port_number(n),
                ));
            }
            Some(Value::String(s)) => {
                errs.extend(invalid_each(&format!("{pp}.targetPort"), s, port_name(s)))
            }
            _ => {}
        }
        if let Some(np) = int_at(p, "nodePort").filter(|n| *n != 0) {
            if ty == "ClusterIP" {
                errs.push(forbidden(
                    &format!("{pp}.nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else {
                errs.extend(invalid_each_int(
                    &format!("{pp}.nodePort"),
                    np,
                    port_number(np),
                ));
            }
        }
        let protocol = str_at(p, "protocol").unwrap_or("");
        if !seen.insert((port, protocol.to_string())) {
            errs.push(invalid_shown_dup(&pp, port, protocol));
        }
    }
}

fn invalid_shown_dup(pp: &str, port: i64, protocol: &str) -> Cause {
    Cause {
        reason: "FieldValueDuplicate",
        message: format!(
            "Duplicate value: core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
            Value::from(protocol)
        ),
        field: pp.into(),
    }
}

fn validate_cluster_ips(spec: &Value, ty: &str, errs: &mut Vec<Cause>) {
    if ty == "ExternalName" {
        return;
    }
    let ips = arr_at(spec, "clusterIPs");
    if let (Some(ip), Some(first)) = (
        str_at(spec, "clusterIP"),
        ips.first().and_then(Value::as_str),
    ) {
        if !ip.is_empty() && ip != first {
            errs.push(invalid(
                "spec.clusterIPs",
                first,
                "first value must match `clusterIP`",
            ));
        }
    }
    for (i, ip) in ips.iter().enumerate() {
        let field = format!("spec.clusterIPs[{i}]");
        let s = ip.as_str().unwrap_or("");
        if s == "None" {
            if i > 0 || ips.len() > 1 {
                errs.push(invalid(
                    &field,
                    s,
                    "must not be 'None' when more than one value is specified",
                ));
            } else if matches!(ty, "NodePort" | "LoadBalancer") {
                errs.push(invalid(
                    &field,
                    s,
                    &format!("may not be set to 'None' for {ty} services"),
                ));
            }
        } else if parse_ip(s).is_none() {
            errs.push(invalid(
                &field,
                s,
                "must be empty, 'None', or a valid IP address",
            ));
        }
    }
    if ips.len() > 2 {
        errs.push(invalid(
            "spec.clusterIPs",
            Value::from(ips.to_vec()),
            "may only hold up to 2 values",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(mut svc: Value) -> Value {
        ServiceStrategy.default(&mut svc);
        ServiceStrategy.prepare_for_create(&mut svc);
        svc
    }

    fn svc() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    }

    #[test]
    fn defaults_match_upstream() {
        let s = create(svc());
        assert_eq!(
            s["spec"],
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"})
        );
        assert_eq!(s["status"], json!({"loadBalancer": {}}));
        assert!(ServiceStrategy.validate_create(&s).is_empty());
        let mut np = svc();
        np["spec"]["type"] = json!("LoadBalancer");
        let np = create(np);
        assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(np["spec"]["allocateLoadBalancerNodePorts"], true);
    }

    #[test]
    fn ip_families_follow_a_given_cluster_ip() {
        let mut s = svc();
        s["spec"]["clusterIP"] = json!("10.43.0.10");
        let s = create(s);
        assert_eq!(s["spec"]["clusterIPs"], json!(["10.43.0.10"]));
        assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));
        assert_eq!(s["spec"]["ipFamilyPolicy"], "SingleStack");
        let unallocated = create(svc());
        assert!(unallocated["spec"].get("ipFamilies").is_none());
    }

    #[test]
    fn port_rules() {
        let mut s = svc();
        s["spec"]["ports"] = json!([{"port": 80}, {"port": 70000, "name": "b", "protocol": "ICMP"}, {"port": 80, "name": "b"}]);
        let s = create(s);
        let errs = ServiceStrategy.validate_create(&s);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.ports[0].name",
                "spec.ports[1].port",
                "spec.ports[1].protocol",
                "spec.ports[1].targetPort",
                "spec.ports[2].name",
                "spec.ports[2]"
            ]
        );
        assert_eq!(errs[4].message, "Duplicate value: \"b\"");
    }

    #[test]
    fn headless_external_name_and_bad_ips() {
        let s = create(json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}}));
        assert!(ServiceStrategy.validate_create(&s).is_empty());
        assert_eq!(s["spec"]["ipFamilyPolicy"], "PreferDualStack");
        let e = create(json!({"metadata": {"name": "e"}, "spec": {"type": "ExternalName"}}));
        let errs = ServiceStrategy.validate_create(&e);
        assert_eq!(errs[0].field, "spec.externalName");
        let mut bad = svc();
        bad["spec"]["clusterIP"] = json!("10.0.0.300");
        let errs = ServiceStrategy.validate_create(&create(bad));
        assert_eq!(
            errs[0].message,
            "Invalid value: \"10.0.0.300\": must be empty, 'None', or a valid IP address"
        );
        let numeric = create(json!({"metadata": {"name": "1web"}, "spec": {"clusterIP": "None"}}));
        assert_eq!(
            ServiceStrategy.validate_create(&numeric)[0].field,
            "metadata.name"
        );
        let mut t = svc();
        t["spec"]["type"] = json!("Foo");
        assert_eq!(
            ServiceStrategy.validate_create(&create(t))[0].message,
            "Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        );
    }

    #[test]
    fn cluster_ip_is_kept_and_immutable_on_update() {
        let mut s = svc();
        s["spec"]["clusterIP"] = json!("10.43.0.10");
        let old = create(s);
        let mut put = svc();
        ServiceStrategy.default(&mut put);
        ServiceStrategy.prepare_for_update(&mut put, &old);
        assert_eq!(put["spec"]["clusterIP"], "10.43.0.10");
        assert!(ServiceStrategy.validate_update(&put, &old).is_empty());
        let mut changed = old.clone();
        changed["spec"]["clusterIP"] = json!("10.43.0.11");
        changed["spec"]["clusterIPs"] = json!(["10.43.0.11"]);
        let errs = ServiceStrategy.validate_update(&changed, &old);
        assert_eq!(errs[0].field, "spec.clusterIPs[0]");
        assert_eq!(
            errs[0].message,
            "Invalid value: []string{\"10.43.0.11\"}: may not change once set"
        );
    }

    #[test]
    fn changing_type_drops_what_the_old_type_needed() {
        let mut np = svc();
        np["spec"]["type"] = json!("NodePort");
        np["spec"]["clusterIP"] = json!("10.43.0.7");
        np["spec"]["ports"][0]["nodePort"] = json!(30080);
        let old = create(np);
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        ServiceStrategy.default(&mut new);
        ServiceStrategy.prepare_for_update(&mut new, &old);
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
        assert!(new["spec"].get("externalTrafficPolicy").is_none());
        assert!(ServiceStrategy.validate_update(&new, &old).is_empty());
        let mut ext = old.clone();
        ext["spec"]["type"] = json!("ExternalName");
        ext["spec"]["externalName"] = json!("db.example.com");
        ServiceStrategy.default(&mut ext);
        ServiceStrategy.prepare_for_update(&mut ext, &old);
        assert!(ext["spec"].get("clusterIP").is_none());
        assert!(
            ServiceStrategy.validate_update(&ext, &old).is_empty(),
            "{:?}",
            ServiceStrategy.validate_update(&ext, &old)
        );
    }

    #[test]
    fn field_attributes() {
        let s = create(svc());
        assert_eq!(
            ServiceStrategy.field_attributes(&s),
            vec![
                ("spec.clusterIP", String::new()),
                ("spec.type", "ClusterIP".to_string())
            ]
        );
    }
}
