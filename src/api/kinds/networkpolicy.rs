//! NetworkPolicies (networking.k8s.io/v1): the policy types default, port
//! protocols, peers (selectors or an IP block whose exceptions lie inside
//! it) and port ranges.

use serde_json::{Value, json};

use super::container::{invalid_each_int, validate_protocol};
use super::labelselector::validate_selector;
use super::validation::{
    arr_at, cidr, default_field, each_obj_mut, forbidden, int_at, invalid, invalid_each,
    not_supported, obj_entry, port_name, port_number, required, required_because, str_at,
    validate_meta,
};
use super::{Cause, Strategy};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
