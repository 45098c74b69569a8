//! Networking kinds: Ingresses (rules, `pathType`, backends), IngressClasses,
//! NetworkPolicies (peers, ports, policy types with their default),
//! EndpointSlices (address types, endpoint and port limits) and the legacy
//! Endpoints.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::labelselector::validate_selector;
use super::podspec::{invalid_each_int, validate_protocol};
use super::validation::{
    arr_at, cidr, default_field, dns1035_label, dns1123_label, dns1123_subdomain, duplicate,
    each_obj_mut, forbidden, immutable, int_at, invalid, invalid_each, not_supported, obj_entry,
    parse_ip, port_name, port_number, qualified_name, required, required_because, str_at, too_many,
    validate_meta,
};
use super::{Cause, Strategy};

// ---- Ingress -----------------------------------------------------------------------

/// Ingresses (networking.k8s.io/v1).
pub struct IngressStrategy;

fn validate_backend(b: &Value, bp: &str, errs: &mut Vec<Cause>) {
    let has_resource = b.get("resource").is_some_and(|r| !r.is_null());
    let service = b.get("service").filter(|s| !s.is_null());
    match (has_resource, service) {
        (true, Some(_)) => errs.push(invalid(
            bp,
            "",
            "cannot set both resource and service backends",
        )),
        (true, None) => {
            let r = &b["resource"];
            if str_at(r, "kind").is_none_or(str::is_empty) {
                errs.push(required(&format!("{bp}.resource.kind")));
            }
            if str_at(r, "name").is_none_or(str::is_empty) {
                errs.push(required(&format!("{bp}.resource.name")));
            }
        }
        (false, Some(svc)) => {
            match str_at(svc, "name").unwrap_or("") {
                "" => errs.push(required(&format!("{bp}.service.name"))),
                name => errs.extend(invalid_each(
                    &format!("{bp}.service.name"),
                    name,
                    dns1035_label(name),
                )),
            }
            let port = svc.get("port").unwrap_or(&Value::Null);
            let name = str_at(port, "name").unwrap_or("");
            let number = int_at(port, "number").unwrap_or(0);
            let pp = format!("{bp}.service.port");
            match (name.is_empty(), number) {
                (false, n) if n != 0 => {
                    errs.push(invalid(&pp, "", "cannot set both port name & port number"))
                }
                (false, _) => {
                    errs.extend(invalid_each(&format!("{pp}.name"), name, port_name(name)))
                }
                (true, 0) => errs.push(required_because(&pp, "port name or number is required")),
                (true, n) => {
                    errs.extend(invalid_each_int(&format!("{pp}.number"), n, port_number(n)))
                }
            }
        }
        (false, None) => errs.push(invalid(bp, "", "resource or service backend is required")),
    }
}

fn validate_host(host: &str, field: &str, errs: &mut Vec<Cause>) {
    if parse_ip(host).is_some() {
        errs.push(invalid(
            field,
            host,
            "must be a DNS name, not an IP address",
        ));
        return;
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    errs.extend(invalid_each(field, host, dns1123_subdomain(name)));
}

impl Strategy for IngressStrategy {
    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"loadBalancer": {}}));
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let rules = arr_at(spec, "rules");
        let default_backend = spec.get("defaultBackend").filter(|b| !b.is_null());
        if rules.is_empty() && default_backend.is_none() {
            errs.push(invalid(
                "spec",
                Value::Array(vec![]),
                "either `defaultBackend` or `rules` must be specified",
            ));
        }
        if let Some(b) = default_backend {
            validate_backend(b, "spec.defaultBackend", &mut errs);
        }
        if let Some(class) = str_at(spec, "ingressClassName") {
            errs.extend(invalid_each(
                "spec.ingressClassName",
                class,
                dns1123_subdomain(class),
            ));
        }
        for (i, rule) in rules.iter().enumerate() {
            let rp = format!("spec.rules[{i}]");
            if let Some(host) = str_at(rule, "host").filter(|h| !h.is_empty()) {
                validate_host(host, &format!("{rp}.host"), &mut errs);
            }
            let Some(http) = rule.get("http").filter(|h| !h.is_null()) else {
                continue;
            };
            let paths = arr_at(http, "paths");
            if paths.is_empty() {
                errs.push(required(&format!("{rp}.http.paths")));
            }
            for (j, p) in paths.iter().enumerate() {
                let pp = format!("{rp}.http.paths[{j}]");
                let path = str_at(p, "path").unwrap_or("");
                match str_at(p, "pathType").unwrap_or("") {
                    "" => errs.push(required_because(
                        &format!("{pp}.pathType"),
                        "pathType must be specified",
                    )),
                    "Exact" | "Prefix" => {
                        if !path.starts_with('/') {
                            errs.push(invalid(
                                &format!("{pp}.path"),
                                path,
                                "must be an absolute path",
                            ));
                        }
                        if path.contains("//") {
                            errs.push(invalid(
                                &format!("{pp}.path"),
                                path,
                                "must not contain '//'",
                            ));
                        }
                    }
                    "ImplementationSpecific" => {
                        if !path.is_empty() && !path.starts_with('/') {
                            errs.push(invalid(
                                &format!("{pp}.path"),
                                path,
                                "must be an absolute path",
                            ));
                        }
                    }
                    other => errs.push(not_supported(
                        &format!("{pp}.pathType"),
                        other,
                        &["Exact", "ImplementationSpecific", "Prefix"],
                    )),
                }
                validate_backend(
                    p.get("backend").unwrap_or(&Value::Null),
                    &format!("{pp}.backend"),
                    &mut errs,
                );
            }
        }
        for (i, tls) in arr_at(spec, "tls").iter().enumerate() {
            for (j, h) in arr_at(tls, "hosts").iter().enumerate() {
                validate_host(
                    h.as_str().unwrap_or(""),
                    &format!("spec.tls[{i}].hosts[{j}]"),
                    &mut errs,
                );
            }
        }
        errs
    }

    fn tracks_generation(&self) -> bool {
        true
    }
}

/// IngressClasses (networking.k8s.io/v1).
pub struct IngressClassStrategy;

impl Strategy for IngressClassStrategy {
    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        match str_at(spec, "controller").unwrap_or("") {
            "" => errs.push(required("spec.controller")),
            c if c.len() > 250 => errs.push(super::validation::too_long("spec.controller", 250)),
            c => {
                let (domain, path) = c.split_once('/').unwrap_or((c, ""));
                errs.extend(invalid_each(
                    "spec.controller",
                    c,
                    dns1123_subdomain(domain),
                ));
                if path.is_empty() {
                    errs.push(invalid(
                        "spec.controller",
                        c,
                        "must be a domain-prefixed path (such as \"acme.io/foo\")",
                    ));
                }
            }
        }
        if let Some(params) = spec.get("parameters").filter(|p| !p.is_null()) {
            let pp = "spec.parameters";
            for key in ["kind", "name"] {
                if str_at(params, key).is_none_or(str::is_empty) {
                    errs.push(required(&format!("{pp}.{key}")));
                }
            }
            match (str_at(params, "scope"), str_at(params, "namespace")) {
                (Some("Namespace"), None | Some("")) => errs.push(required_because(
                    &format!("{pp}.namespace"),
                    "`parameters.scope` is set to 'Namespace'",
                )),
                (Some("Cluster") | None, Some(ns)) if !ns.is_empty() => errs.push(forbidden(
                    &format!("{pp}.namespace"),
                    "`parameters.scope` is set to 'Cluster'",
                )),
                (None | Some("Cluster" | "Namespace"), _) => {}
                (Some(other), _) => errs.push(not_supported(
                    &format!("{pp}.scope"),
                    other,
                    &["Cluster", "Namespace"],
                )),
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        errs.extend(super::validation::check_immutable(
            new,
            old,
            "/spec/controller",
            "spec.controller",
        ));
        errs
    }
}

// ---- NetworkPolicy -------------------------------------------------------------

/// NetworkPolicies (networking.k8s.io/v1).
pub struct NetworkPolicyStrategy;

fn validate_peer(peer: &Value, pp: &str, errs: &mut Vec<Cause>) {
    let has = |k: &str| peer.get(k).is_some_and(|v| !v.is_null());
    let selectors = has("podSelector") || has("namespaceSelector");
    match (selectors, has("ipBlock")) {
        (false, false) => errs.push(required_because(pp, "must specify a peer")),
        (true, true) => errs.push(forbidden(
            pp,
            "may not specify both ipBlock and another peer",
        )),
        _ => {}
    }
    for key in ["podSelector", "namespaceSelector"] {
        if let Some(sel) = peer.get(key).filter(|s| !s.is_null()) {
            errs.extend(validate_selector(sel, &format!("{pp}.{key}")));
        }
    }
    if let Some(block) = peer.get("ipBlock").filter(|b| !b.is_null()) {
        let c = str_at(block, "cidr").unwrap_or("");
        if c.is_empty() {
            errs.push(required(&format!("{pp}.ipBlock.cidr")));
            return;
        }
        let problems = cidr(c);
        if !problems.is_empty() {
            errs.extend(invalid_each(&format!("{pp}.ipBlock.cidr"), c, problems));
            return;
        }
        let outer: Option<ipnet::IpNet> = c.parse().ok();
        for (i, e) in arr_at(block, "except").iter().enumerate() {
            let es = e.as_str().unwrap_or("");
            let field = format!("{pp}.ipBlock.except[{i}]");
            match (es.parse::<ipnet::IpNet>(), outer) {
                (Ok(inner), Some(outer))
                    if !(outer.contains(&inner) && inner.prefix_len() > outer.prefix_len()) =>
                {
                    errs.push(invalid(&field, es, "must be a strict subset of `cidr`"))
                }
                (Ok(_), _) => {}
                (Err(_), _) => errs.extend(invalid_each(&field, es, cidr(es))),
            }
        }
    }
}

fn validate_np_ports(rule: &Value, rp: &str, errs: &mut Vec<Cause>) {
    for (i, port) in arr_at(rule, "ports").iter().enumerate() {
        let pp = format!("{rp}.ports[{i}]");
        if port.get("protocol").is_some() {
            validate_protocol(port, &format!("{pp}.protocol"), errs);
        }
        match port.get("port") {
            Some(Value::Number(n)) => {
                let n = n.as_i64().unwrap_or(0);
                errs.extend(invalid_each_int(&format!("{pp}.port"), n, port_number(n)));
                if let Some(end) = int_at(port, "endPort") {
                    if end < n {
                        errs.push(invalid(
                            &format!("{pp}.endPort"),
                            end,
                            "must be greater than or equal to `port`",
                        ));
                    }
                }
            }
            Some(Value::String(s)) => {
                errs.extend(invalid_each(&format!("{pp}.port"), s, port_name(s)));
                if port.get("endPort").is_some_and(|e| !e.is_null()) {
                    errs.push(invalid(
                        &format!("{pp}.endPort"),
                        port["endPort"].clone(),
                        "may not be specified when `port` is non-numeric",
                    ));
                }
            }
            _ => {
                if port.get("endPort").is_some_and(|e| !e.is_null()) {
                    errs.push(required_because(
                        &format!("{pp}.port"),
                        "must be specified when `endPort` is specified",
                    ));
                }
            }
        }
    }
}

impl Strategy for NetworkPolicyStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_entry(obj, "spec") else {
            return;
        };
        for direction in ["ingress", "egress"] {
            each_obj_mut(spec, direction, |rule| {
                each_obj_mut(rule, "ports", |p| default_field(p, "protocol", "TCP"))
            });
        }
        if arr_at(spec, "policyTypes").is_empty() {
            let mut types = vec!["Ingress"];
            if !arr_at(spec, "egress").is_empty() {
                types.push("Egress");
            }
            if let Some(m) = spec.as_object_mut() {
                m.insert("policyTypes".into(), json!(types));
            }
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        match spec.get("podSelector") {
            Some(sel) if !sel.is_null() => errs.extend(validate_selector(sel, "spec.podSelector")),
            _ => {}
        }
        for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
            for (i, rule) in arr_at(spec, direction).iter().enumerate() {
                let rp = format!("spec.{direction}[{i}]");
                validate_np_ports(rule, &rp, &mut errs);
                for (j, peer) in arr_at(rule, peers).iter().enumerate() {
                    validate_peer(peer, &format!("{rp}.{peers}[{j}]"), &mut errs);
                }
            }
        }
        let types = arr_at(spec, "policyTypes");
        for (i, t) in types.iter().enumerate() {
            if !matches!(t.as_str(), Some("Ingress" | "Egress")) {
                errs.push(not_supported(
                    &format!("spec.policyTypes[{i}]"),
                    t.clone(),
                    &["Ingress", "Egress"],
                ));
            }
        }
        if types.len() > 2 {
            errs.push(invalid(
                "spec.policyTypes",
                Value::from(types.to_vec()),
                "may not specify more than two policyTypes",
            ));
        }
        errs
    }

    fn tracks_generation(&self) -> bool {
        true
    }
}

// ---- EndpointSlice and Endpoints --------------------------------------------------

/// EndpointSlices (discovery.k8s.io/v1).
pub struct EndpointSliceStrategy;

const MAX_ENDPOINTS: usize = 1000;
const MAX_PORTS: usize = 100;
const MAX_ADDRESSES: usize = 100;

impl Strategy for EndpointSliceStrategy {
    fn default(&self, obj: &mut Value) {
        each_obj_mut(obj, "ports", |p| {
            default_field(p, "protocol", "TCP");
            if p.get("name").is_none_or(Value::is_null) {
                if let Some(m) = p.as_object_mut() {
                    m.insert("name".into(), "".into());
                }
            }
        });
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let address_type = str_at(obj, "addressType").unwrap_or("");
        match address_type {
            "" => errs.push(required("addressType")),
            "IPv4" | "IPv6" | "FQDN" => {}
            other => errs.push(not_supported(
                "addressType",
                other,
                &["FQDN", "IPv4", "IPv6"],
            )),
        }
        let endpoints = arr_at(obj, "endpoints");
        if endpoints.len() > MAX_ENDPOINTS {
            errs.push(too_many("endpoints", endpoints.len(), MAX_ENDPOINTS));
        }
        for (i, ep) in endpoints.iter().enumerate().take(MAX_ENDPOINTS) {
            let ep_path = format!("endpoints[{i}]");
            let addresses = arr_at(ep, "addresses");
            if addresses.is_empty() {
                errs.push(required_because(
                    &format!("{ep_path}.addresses"),
                    "must contain at least 1 address",
                ));
            } else if addresses.len() > MAX_ADDRESSES {
                errs.push(too_many(
                    &format!("{ep_path}.addresses"),
                    addresses.len(),
                    MAX_ADDRESSES,
                ));
            }
            for (j, a) in addresses.iter().enumerate().take(MAX_ADDRESSES) {
                let field = format!("{ep_path}.addresses[{j}]");
                let s = a.as_str().unwrap_or("");
                match address_type {
                    "IPv4" if !parse_ip(s).is_some_and(|ip| ip.is_ipv4()) => {
                        errs.push(invalid(&field, s, "must be a valid IPv4 address"))
                    }
                    "IPv6" if !parse_ip(s).is_some_and(|ip| ip.is_ipv6()) => {
                        errs.push(invalid(&field, s, "must be a valid IPv6 address"))
                    }
                    "FQDN" => errs.extend(invalid_each(&field, s, dns1123_subdomain(s))),
                    _ => {}
                }
            }
            if let Some(h) = str_at(ep, "hostname") {
                errs.extend(invalid_each(
                    &format!("{ep_path}.hostname"),
                    h,
                    dns1123_label(h),
                ));
            }
            if let Some(n) = str_at(ep, "nodeName") {
                errs.extend(invalid_each(
                    &format!("{ep_path}.nodeName"),
                    n,
                    dns1123_subdomain(n),
                ));
            }
        }
        let ports = arr_at(obj, "ports");
        if ports.len() > MAX_PORTS {
            errs.push(too_many("ports", ports.len(), MAX_PORTS));
        }
        let mut names = HashSet::new();
        for (i, p) in ports.iter().enumerate().take(MAX_PORTS) {
            let pp = format!("ports[{i}]");
            let name = str_at(p, "name").unwrap_or("");
            if !name.is_empty() {
                errs.extend(invalid_each(
                    &format!("{pp}.name"),
                    name,
                    dns1123_label(name),
                ));
            }
            if !names.insert(name.to_string()) {
                errs.push(duplicate(&format!("{pp}.name"), name));
            }
            if let Some(n) = int_at(p, "port") {
                errs.extend(invalid_each_int(&format!("{pp}.port"), n, port_number(n)));
            }
            validate_protocol(p, &format!("{pp}.protocol"), &mut errs);
            if let Some(ap) = str_at(p, "appProtocol") {
                errs.extend(invalid_each(
                    &format!("{pp}.appProtocol"),
                    ap,
                    qualified_name(ap),
                ));
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        if new.get("addressType") != old.get("addressType") {
            errs.push(immutable(
                "addressType",
                new.get("addressType").unwrap_or(&Value::Null),
            ));
        }
        errs
    }
}

/// Endpoints (core/v1).
pub struct EndpointsStrategy;

fn endpoint_ip(ip: &str, field: &str, errs: &mut Vec<Cause>) {
    match parse_ip(ip) {
        None => errs.push(invalid(field, ip, "must be a valid IP address")),
        Some(addr) if addr.is_loopback() => errs.push(invalid(
            field,
            ip,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        )),
        Some(addr) if addr.is_unspecified() => {
            errs.push(invalid(field, ip, "may not be unspecified (0.0.0.0)"))
        }
        Some(std::net::IpAddr::V4(v4)) if v4.is_link_local() => errs.push(invalid(
            field,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        )),
        Some(std::net::IpAddr::V6(v6)) if (v6.segments()[0] & 0xffc0) == 0xfe80 => {
            errs.push(invalid(
                field,
                ip,
                "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
            ))
        }
        Some(_) => {}
    }
}

impl Strategy for EndpointsStrategy {
    fn default(&self, obj: &mut Value) {
        each_obj_mut(obj, "subsets", |s| {
            each_obj_mut(s, "ports", |p| default_field(p, "protocol", "TCP"))
        });
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        for (i, subset) in arr_at(obj, "subsets").iter().enumerate() {
            let sp = format!("subsets[{i}]");
            for key in ["addresses", "notReadyAddresses"] {
                for (j, a) in arr_at(subset, key).iter().enumerate() {
                    endpoint_ip(
                        str_at(a, "ip").unwrap_or(""),
                        &format!("{sp}.{key}[{j}].ip"),
                        &mut errs,
                    );
                    if let Some(h) = str_at(a, "hostname").filter(|h| !h.is_empty()) {
                        errs.extend(invalid_each(
                            &format!("{sp}.{key}[{j}].hostname"),
                            h,
                            dns1123_label(h),
                        ));
                    }
                }
            }
            let ports = arr_at(subset, "ports");
            let mut names = HashSet::new();
            for (j, p) in ports.iter().enumerate() {
                let pp = format!("{sp}.ports[{j}]");
                match str_at(p, "name").unwrap_or("") {
                    "" if ports.len() > 1 => errs.push(required(&format!("{pp}.name"))),
                    "" => {}
                    name => {
                        errs.extend(invalid_each(
                            &format!("{pp}.name"),
                            name,
                            dns1123_label(name),
                        ));
                        if !names.insert(name.to_string()) {
                            errs.push(duplicate(&format!("{pp}.name"), name));
                        }
                    }
                }
                let n = int_at(p, "port").unwrap_or(0);
                errs.extend(invalid_each_int(&format!("{pp}.port"), n, port_number(n)));
                validate_protocol(p, &format!("{pp}.protocol"), &mut errs);
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_paths_need_path_type_and_backend() {
        let ing = json!({"metadata": {"name": "i"}, "spec": {"rules": [{"host": "example.com", "http": {"paths": [
            {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
            {"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "web"}}}]}}]}});
        let errs = IngressStrategy.validate_create(&ing);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.rules[0].http.paths[0].pathType",
                "spec.rules[0].http.paths[1].path",
                "spec.rules[0].http.paths[1].backend.service.port"
            ]
        );
        assert_eq!(
            errs[0].message,
            "Required value: pathType must be specified"
        );
        let empty = json!({"metadata": {"name": "i"}, "spec": {}});
        assert_eq!(IngressStrategy.validate_create(&empty)[0].field, "spec");
    }

    #[test]
    fn network_policy_defaults_and_peers() {
        let mut np = json!({"metadata": {"name": "n"}, "spec": {"podSelector": {},
            "egress": [{"to": [{}], "ports": [{"port": 53}]}]}});
        NetworkPolicyStrategy.default(&mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        let errs = NetworkPolicyStrategy.validate_create(&np);
        assert_eq!(errs[0].field, "spec.egress[0].to[0]");
        np["spec"]["egress"][0]["to"] =
            json!([{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]);
        assert_eq!(
            NetworkPolicyStrategy.validate_create(&np)[0].field,
            "spec.egress[0].to[0].ipBlock.except[0]"
        );
    }

    #[test]
    fn endpoint_slices() {
        let mut s = json!({"metadata": {"name": "s"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.42.0.5"]}, {"addresses": ["fe80::1"]}, {"addresses": []}],
            "ports": [{"name": "http", "port": 80}]});
        EndpointSliceStrategy.default(&mut s);
        let errs = EndpointSliceStrategy.validate_create(&s);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["endpoints[1].addresses[0]", "endpoints[2].addresses"]
        );
        let many: Vec<Value> = (0..1001)
            .map(|_| json!({"addresses": ["10.0.0.1"]}))
            .collect();
        let big = json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": many});
        assert_eq!(
            EndpointSliceStrategy.validate_create(&big)[0].reason,
            "FieldValueTooMany"
        );
        let mut changed = s.clone();
        changed["addressType"] = json!("IPv6");
        assert!(
            EndpointSliceStrategy
                .validate_update(&changed, &s)
                .iter()
                .any(|e| e.field == "addressType")
        );
    }

    #[test]
    fn endpoints_reject_loopback() {
        let mut e = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}, {"ip": "10.42.0.9"}],
            "ports": [{"port": 80}]}]});
        EndpointsStrategy.default(&mut e);
        let errs = EndpointsStrategy.validate_create(&e);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "subsets[0].addresses[0].ip");
    }
}
