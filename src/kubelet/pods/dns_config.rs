//! A pod's resolv.conf (the CRI sandbox's DNS config) per its dnsPolicy,
//! as upstream's kubelet forms it (`pkg/kubelet/network/dns`):
//!
//! - ClusterFirst (the default), and ClusterFirstWithHostNet: the cluster
//!   DNS, the search list `<ns>.svc.<domain> svc.<domain> <domain>` plus the
//!   node's search domains, `options ndots:5`. A hostNetwork pod with
//!   ClusterFirst gets Default instead.
//! - Default: the node's resolver file (`--resolv-conf`).
//! - None: only what `dnsConfig` says.
//!
//! `dnsConfig` is then merged in (nameservers and searches appended without
//! duplicates, options by name with the pod's winning) and the result cut
//! to the resolver's limits: 3 nameservers, 32 search domains and 2048
//! characters of search line; each cut is reported as a warning for a
//! `DNSConfigForming` event.

use k8s_cri::v1::DnsConfig;
use k8s_openapi::api::core::v1::Pod;

use crate::dns::DnsSettings;
use crate::dns::resolv::ResolvConf;

const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

/// The pod's DNS config and the warnings its forming gave.
pub fn pod_dns(pod: &Pod, settings: &DnsSettings, host: &ResolvConf) -> (DnsConfig, Vec<String>) {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let domain = settings.cluster_domain.trim_end_matches('.');
    let cluster = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    };
    let mut config = if policy == "None" {
        DnsConfig::default()
    } else if cluster {
        let mut searches = vec![
            format!("{namespace}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.to_string(),
        ];
        searches.extend(host.searches.iter().cloned());
        DnsConfig {
            servers: vec![settings.cluster_dns.to_string()],
            searches,
            options: vec!["ndots:5".to_string()],
        }
    } else {
        DnsConfig {
            servers: host.nameservers.iter().map(ToString::to_string).collect(),
            searches: host.searches.clone(),
            options: host.options.clone(),
        }
    };
    if let Some(extra) = &spec.dns_config {
        config
            .servers
            .extend(extra.nameservers.iter().flatten().cloned());
        config.servers = without_duplicates(config.servers);
        config
            .searches
            .extend(extra.searches.iter().flatten().cloned());
        config.searches = without_duplicates(config.searches);
        for option in extra.options.iter().flatten() {
            let text = match &option.value {
                Some(value) => format!("{}:{value}", option.name.clone().unwrap_or_default()),
                None => option.name.clone().unwrap_or_default(),
            };
            let name = text.split(':').next().unwrap_or_default().to_string();
            config
                .options
                .retain(|o| o.split(':').next().unwrap_or_default() != name);
            config.options.push(text);
        }
    }
    let mut warnings = Vec::new();
    if config.servers.len() > MAX_NAMESERVERS {
        config.servers.truncate(MAX_NAMESERVERS);
        warnings.push(format!(
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: {}",
            config.servers.join(" ")
        ));
    }
    let mut cut = false;
    if config.searches.len() > MAX_SEARCHES {
        config.searches.truncate(MAX_SEARCHES);
        cut = true;
    }
    while config.searches.join(" ").len() > MAX_SEARCH_CHARS {
        config.searches.pop();
        cut = true;
    }
    if cut {
        warnings.push(format!(
            "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
            config.searches.join(" ")
        ));
    }
    (config, warnings)
}

fn without_duplicates(items: Vec<String>) -> Vec<String> {
    let mut seen = Vec::with_capacity(items.len());
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DnsSettings {
        DnsSettings {
            cluster_dns: "10.43.0.10".parse().expect("ip"),
            cluster_domain: "cluster.local".to_string(),
            resolv_conf: "/etc/resolv.conf".into(),
        }
    }

    fn host() -> ResolvConf {
        ResolvConf::parse("nameserver 127.0.0.9\nsearch corp.example\noptions edns0\n")
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "team", "name": "p"}, "spec": spec
        }))
        .expect("pod")
    }

    #[test]
    fn cluster_first_uses_the_cluster_dns_and_search_list() {
        let (config, warnings) = pod_dns(
            &pod(serde_json::json!({"containers": []})),
            &settings(),
            &host(),
        );
        assert_eq!(config.servers, ["10.43.0.10"]);
        assert_eq!(
            config.searches,
            [
                "team.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(config.options, ["ndots:5"]);
        assert!(warnings.is_empty());
    }

    #[test]
    fn host_network_pods_get_the_node_resolver_unless_with_host_net() {
        let host_net = pod(serde_json::json!({"containers": [], "hostNetwork": true}));
        let (config, _) = pod_dns(&host_net, &settings(), &host());
        assert_eq!(config.servers, ["127.0.0.9"]);
        assert_eq!(config.options, ["edns0"]);
        let with = pod(serde_json::json!({"containers": [], "hostNetwork": true,
            "dnsPolicy": "ClusterFirstWithHostNet"}));
        assert_eq!(
            pod_dns(&with, &settings(), &host()).0.servers,
            ["10.43.0.10"]
        );
        let default = pod(serde_json::json!({"containers": [], "dnsPolicy": "Default"}));
        assert_eq!(
            pod_dns(&default, &settings(), &host()).0.searches,
            ["corp.example"]
        );
    }

    #[test]
    fn none_takes_dns_config_and_options_merge_by_name() {
        let none = pod(serde_json::json!({"containers": [], "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["192.0.2.1"], "searches": ["a.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}));
        let (config, _) = pod_dns(&none, &settings(), &host());
        assert_eq!(config.servers, ["192.0.2.1"]);
        assert_eq!(config.searches, ["a.example"]);
        assert_eq!(config.options, ["ndots:2", "edns0"]);
        let merged = pod(serde_json::json!({"containers": [],
            "dnsConfig": {"nameservers": ["10.43.0.10", "192.0.2.1"], "options": [{"name": "ndots", "value": "1"}]}}));
        let (config, _) = pod_dns(&merged, &settings(), &host());
        assert_eq!(config.servers, ["10.43.0.10", "192.0.2.1"]);
        assert_eq!(config.options, ["ndots:1"]);
    }

    #[test]
    fn limits_cut_nameservers_and_searches_with_warnings() {
        let searches: Vec<String> = (0..40).map(|i| format!("s{i}.example")).collect();
        let many = pod(serde_json::json!({"containers": [], "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"],
                "searches": searches}}));
        let (config, warnings) = pod_dns(&many, &settings(), &host());
        assert_eq!(config.servers.len(), 3);
        assert_eq!(config.searches.len(), 32);
        assert_eq!(warnings.len(), 2);
        assert!(
            warnings[0].starts_with("Nameserver limits were exceeded"),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[1].starts_with("Search Line limits were exceeded"),
            "{}",
            warnings[1]
        );
    }
}
