//! Golden-ish checks of the rendered restore input, one service shape each.
//! Chain names are upstream's (the hashes match kube-proxy's own tests).

use std::collections::BTreeSet;

use super::*;

fn cidr() -> IpNet {
    "10.42.0.0/16".parse().expect("cidr")
}

fn endpoint(ip: &str, local: bool) -> Endpoint {
    Endpoint {
        ip: ip.parse().expect("ip"),
        port: 80,
        ready: true,
        serving: true,
        terminating: false,
        local,
    }
}

fn port(endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        name: "ns1/svc1:p80".to_string(),
        protocol: "tcp".to_string(),
        cluster_ip: "172.30.0.41".parse().expect("ip"),
        port: 80,
        node_port: None,
        external_ips: Vec::new(),
        load_balancer_ips: Vec::new(),
        source_ranges: Vec::new(),
        affinity_seconds: None,
        external_local: false,
        internal_local: false,
        endpoints,
    }
}

fn render_one(port: &ServicePort) -> String {
    render(
        std::slice::from_ref(port),
        cidr(),
        &BTreeSet::new(),
        &|_| false,
    )
    .text
}

/// The lines of one table's section.
fn table<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let start = text.find(&format!("*{name}\n")).expect("the table");
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| *l != "COMMIT")
        .collect()
}

#[test]
fn chain_names_match_upstream_hashes() {
    let p = port(vec![endpoint("10.180.0.1", false)]);
    assert_eq!(svc_chain(&p), "KUBE-SVC-XPGD46QRK7WJZT7O");
    assert_eq!(sep_chain(&p, &p.endpoints[0]), "KUBE-SEP-SXIVWICOYRO3J4NJ");
    assert!(ext_chain(&p).starts_with("KUBE-EXT-") && ext_chain(&p).len() == 25);
    assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
}

#[test]
fn cluster_ip_balances_randomly_and_masquerades_off_cluster_sources() {
    let p = port(vec![
        endpoint("10.180.0.1", false),
        endpoint("10.180.0.2", false),
        endpoint("10.180.0.3", false),
    ]);
    let text = render_one(&p);
    let nat = table(&text, "nat");
    let svc = "KUBE-SVC-XPGD46QRK7WJZT7O";
    assert!(nat.contains(&format!(":{svc} - [0:0]").as_str()));
    assert!(nat.contains(
        &format!(r#"-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j {svc}"#).as_str()
    ));
    assert!(nat.contains(
        &format!(r#"-A {svc} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.42.0.0/16 -j KUBE-MARK-MASQ"#).as_str()
    ));
    let jumps: Vec<&&str> = nat
        .iter()
        .filter(|l| l.starts_with(&format!("-A {svc} -m comment --comment \"ns1/svc1:p80 ->")))
        .collect();
    assert_eq!(jumps.len(), 3);
    assert!(
        jumps[0].contains("--probability 0.3333333333"),
        "{}",
        jumps[0]
    );
    assert!(
        jumps[1].contains("--probability 0.5000000000"),
        "{}",
        jumps[1]
    );
    assert!(!jumps[2].contains("statistic"), "{}", jumps[2]);
    let sep = "KUBE-SEP-SXIVWICOYRO3J4NJ";
    assert!(
        nat.contains(
            &format!("-A {sep} -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ")
                .as_str()
        )
    );
    assert!(nat.contains(
        &format!("-A {sep} -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80").as_str()
    ));
    // The NodePort jump is the last rule of KUBE-SERVICES.
    let last = nat
        .iter()
        .rev()
        .find(|l| l.starts_with("-A KUBE-SERVICES"))
        .expect("a rule");
    assert!(last.ends_with("-j KUBE-NODEPORTS"), "{last}");
    // Nothing in filter for a service with endpoints.
    assert!(
        !table(&text, "filter")
            .iter()
            .any(|l| l.contains("ns1/svc1"))
    );
}

#[test]
fn a_service_without_endpoints_is_rejected_in_filter() {
    let mut p = port(Vec::new());
    p.node_port = Some(30080);
    p.external_ips = vec!["192.168.9.9".parse().expect("ip")];
    let text = render_one(&p);
    let filter = table(&text, "filter");
    assert!(filter.contains(
        &r#"-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT"#
    ));
    assert!(filter.contains(
        &r#"-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT"#
    ));
    assert!(filter.contains(
        &r#"-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 192.168.9.9 --dport 80 -j REJECT"#
    ));
    assert!(
        !table(&text, "nat")
            .iter()
            .any(|l| l.contains("KUBE-SVC-") || l.contains("KUBE-EXT-"))
    );
}

#[test]
fn node_port_external_ip_and_load_balancer_go_through_the_ext_chain() {
    let mut p = port(vec![endpoint("10.180.0.1", false)]);
    p.node_port = Some(30080);
    p.external_ips = vec!["192.168.9.9".parse().expect("ip")];
    p.load_balancer_ips = vec!["192.168.5.1".parse().expect("ip")];
    let ext = ext_chain(&p);
    let svc = svc_chain(&p);
    let text = render_one(&p);
    let nat = table(&text, "nat");
    assert!(nat.contains(&format!("-A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 30080 -j {ext}").as_str()));
    assert!(nat.contains(
        &format!(r#"-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 external IP" -m tcp -p tcp -d 192.168.9.9 --dport 80 -j {ext}"#).as_str()
    ));
    assert!(nat.contains(
        &format!(r#"-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp -p tcp -d 192.168.5.1 --dport 80 -j {ext}"#).as_str()
    ));
    let ext_rules: Vec<&&str> = nat
        .iter()
        .filter(|l| l.starts_with(&format!("-A {ext} ")))
        .collect();
    assert_eq!(ext_rules.len(), 2, "{ext_rules:?}");
    assert!(ext_rules[0].ends_with("-j KUBE-MARK-MASQ"));
    assert!(ext_rules[1].ends_with(&format!("-j {svc}")));
}

#[test]
fn external_traffic_policy_local_uses_only_local_endpoints_without_masquerade() {
    let mut p = port(vec![
        endpoint("10.180.0.1", true),
        endpoint("10.180.0.2", false),
    ]);
    p.node_port = Some(30080);
    p.external_local = true;
    let (ext, svc, svl) = (ext_chain(&p), svc_chain(&p), svl_chain(&p));
    let text = render_one(&p);
    let nat = table(&text, "nat");
    let ext_rules: Vec<&&str> = nat
        .iter()
        .filter(|l| l.starts_with(&format!("-A {ext} ")))
        .collect();
    assert_eq!(ext_rules.len(), 4, "{ext_rules:?}");
    assert!(
        ext_rules[0].contains("-s 10.42.0.0/16") && ext_rules[0].ends_with(&format!("-j {svc}"))
    );
    assert!(ext_rules[1].contains("--src-type LOCAL -j KUBE-MARK-MASQ"));
    assert!(
        ext_rules[2].contains("--src-type LOCAL") && ext_rules[2].ends_with(&format!("-j {svc}"))
    );
    assert_eq!(*ext_rules[3], format!("-A {ext} -j {svl}"));
    let svl_rules: Vec<&&str> = nat
        .iter()
        .filter(|l| l.starts_with(&format!("-A {svl} ")))
        .collect();
    assert_eq!(
        svl_rules.len(),
        1,
        "only the local endpoint, no masquerade: {svl_rules:?}"
    );
    assert!(svl_rules[0].contains("10.180.0.1:80"));
}

#[test]
fn external_traffic_policy_local_without_local_endpoints_drops_external_traffic() {
    let mut p = port(vec![endpoint("10.180.0.2", false)]);
    p.node_port = Some(30080);
    p.external_local = true;
    let text = render_one(&p);
    let filter = table(&text, "filter");
    assert!(filter.contains(
        &r#"-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP"#
    ));
    // Cluster traffic still goes to the remote endpoint.
    assert!(
        table(&text, "nat")
            .iter()
            .any(|l| l.contains("cluster IP") && l.ends_with(&svc_chain(&p)))
    );
}

#[test]
fn internal_traffic_policy_local_sends_cluster_ip_traffic_to_the_svl_chain() {
    let mut p = port(vec![
        endpoint("10.180.0.1", true),
        endpoint("10.180.0.2", false),
    ]);
    p.internal_local = true;
    let svl = svl_chain(&p);
    let text = render_one(&p);
    let nat = table(&text, "nat");
    assert!(
        nat.iter()
            .any(|l| l.starts_with("-A KUBE-SERVICES") && l.ends_with(&format!("-j {svl}")))
    );
    assert!(
        !nat.iter().any(|l| l.contains(&svc_chain(&p))),
        "no SVC chain: {nat:?}"
    );
    assert!(
        !nat.iter().any(|l| l.contains("10.180.0.2")),
        "no remote endpoint: {nat:?}"
    );
    // With no local endpoint, cluster IP traffic is dropped (others exist).
    p.endpoints.retain(|e| !e.local);
    let text = render_one(&p);
    assert!(
        table(&text, "filter")
            .iter()
            .any(|l| l.contains("has no local endpoints") && l.ends_with("-j DROP"))
    );
}

#[test]
fn session_affinity_checks_recent_before_the_random_choice() {
    let mut p = port(vec![
        endpoint("10.180.0.1", false),
        endpoint("10.180.0.2", false),
    ]);
    p.affinity_seconds = Some(600);
    let (svc, sep) = (svc_chain(&p), sep_chain(&p, &p.endpoints[0]));
    let text = render_one(&p);
    let nat = table(&text, "nat");
    let svc_rules: Vec<&&str> = nat
        .iter()
        .filter(|l| l.starts_with(&format!("-A {svc} ")))
        .collect();
    assert_eq!(
        *svc_rules[1],
        format!(
            "-A {svc} -m comment --comment ns1/svc1:p80 -m recent --name {sep} --rcheck --seconds 600 --reap --rsource -j {sep}"
        )
    );
    assert!(svc_rules[3].contains("statistic"));
    assert!(nat.contains(
        &format!("-A {sep} -m comment --comment ns1/svc1:p80 -m recent --name {sep} --set --rsource -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80").as_str()
    ));
}

#[test]
fn load_balancer_source_ranges_go_through_the_firewall_chain() {
    let mut p = port(vec![endpoint("10.180.0.1", false)]);
    p.load_balancer_ips = vec!["192.168.5.1".parse().expect("ip")];
    p.source_ranges = vec!["203.0.113.0/24".parse().expect("cidr")];
    let (fw, ext) = (fw_chain(&p), ext_chain(&p));
    let text = render_one(&p);
    let nat = table(&text, "nat");
    assert!(nat.iter().any(|l| l.contains("loadbalancer IP")
        && l.starts_with("-A KUBE-SERVICES")
        && l.ends_with(&format!("-j {fw}"))));
    assert!(nat.contains(&format!(r#"-A {fw} -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 203.0.113.0/24 -j {ext}"#).as_str()));
    assert!(
        table(&text, "filter")
            .iter()
            .any(|l| l.starts_with("-A KUBE-PROXY-FIREWALL")
                && l.contains("-d 192.168.5.1")
                && l.ends_with("-j DROP"))
    );
}

#[test]
fn stale_chains_are_flushed_and_deleted() {
    let p = port(vec![endpoint("10.180.0.1", false)]);
    let first = render(std::slice::from_ref(&p), cidr(), &BTreeSet::new(), &|_| {
        false
    });
    assert_eq!(first.service_chains.len(), 2, "{:?}", first.service_chains);
    let second = render(&[], cidr(), &first.service_chains, &|_| false);
    assert!(second.service_chains.is_empty());
    let nat = table(&second.text, "nat");
    for chain in &first.service_chains {
        assert!(nat.contains(&format!(":{chain} - [0:0]").as_str()));
        assert!(nat.contains(&format!("-X {chain}").as_str()));
    }
    // A chain that is still used is not deleted.
    let again = render(
        std::slice::from_ref(&p),
        cidr(),
        &first.service_chains,
        &|_| false,
    );
    assert!(!again.text.contains("-X "));
}

#[test]
fn the_base_chains_are_always_there() {
    let text = render(&[], cidr(), &BTreeSet::new(), &|_| false).text;
    for chain in FILTER_CHAINS {
        assert!(table(&text, "filter").contains(&format!(":{chain} - [0:0]").as_str()));
    }
    let nat = table(&text, "nat");
    assert!(nat.contains(&"-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"));
    assert!(nat.contains(&"-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"));
    assert!(text.starts_with("*filter\n") && text.ends_with("COMMIT\n"));
}

#[test]
fn unchanged_services_keep_their_chains_untouched() {
    let a = port(vec![endpoint("10.180.0.1", false)]);
    let mut b = port(vec![endpoint("10.180.0.2", false)]);
    b.name = "ns1/svc2:p80".to_string();
    b.cluster_ip = "172.30.0.42".parse().expect("ip");
    let full = render(&[a.clone(), b.clone()], cidr(), &BTreeSet::new(), &|_| {
        false
    });
    let partial = render(
        &[a.clone(), b.clone()],
        cidr(),
        &full.service_chains,
        &|p| p.name == a.name,
    );
    assert_eq!(
        partial.service_chains, full.service_chains,
        "nothing is stale"
    );
    let nat = table(&partial.text, "nat");
    // a's chains are neither declared (flushed) nor deleted, but still jumped to.
    assert!(
        !nat.iter()
            .any(|l| l.starts_with(&format!(":{}", svc_chain(&a)))
                || l.starts_with(&format!("-A {}", svc_chain(&a))))
    );
    assert!(
        nat.iter()
            .any(|l| l.starts_with("-A KUBE-SERVICES") && l.ends_with(&svc_chain(&a)))
    );
    assert!(!partial.text.contains("-X "));
    assert!(
        nat.iter()
            .any(|l| l.starts_with(&format!(":{}", svc_chain(&b))))
    );
}
