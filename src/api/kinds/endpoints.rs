//! EndpointSlices (discovery.k8s.io/v1) and the legacy Endpoints: address
//! types and formats, the limits on endpoints, addresses and ports, port
//! names, and the addresses Endpoints may not point at.

use std::collections::HashSet;

use serde_json::Value;

use super::container::{invalid_each_int, validate_protocol};
use super::validation::{
    arr_at, default_field, dns1123_label, dns1123_subdomain, duplicate, each_obj_mut, immutable,
    int_at, invalid, invalid_each, not_supported, parse_ip, port_number, qualified_name, required,
    required_because, service_port_name, str_at, too_many, validate_meta,
};
use super::{Cause, Strategy};

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

    /// Upstream bumps an EndpointSlice's generation on any change outside
    /// `metadata` (it has no `spec`) and on label changes.
    fn tracks_generation(&self) -> bool {
        true
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
                service_port_name(p, &pp, ports.len(), &mut names, &mut errs);
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
    use serde_json::json;

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
