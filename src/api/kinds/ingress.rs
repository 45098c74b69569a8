//! Ingresses and IngressClasses (networking.k8s.io/v1): rules with their
//! required `pathType` and absolute paths, backends (a service by name and
//! port, or a resource), hosts, and the class controller.

use serde_json::{Value, json};

use super::container::invalid_each_int;
use super::validation::{
    arr_at, dns1035_label, dns1123_subdomain, forbidden, int_at, invalid, invalid_each,
    not_supported, parse_ip, port_name, port_number, required, required_because, str_at,
    validate_meta,
};
use super::{Cause, Strategy};

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

    fn tracks_generation(&self) -> bool {
        true
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
}
