//! Inter-pod affinity with upstream's semantics, through whole decisions.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::scheduler::algorithm::Context;
use crate::scheduler::testing::{cache, decide, node, on, pod};

fn term(labels: Value, key: &str) -> Value {
    json!({"labelSelector": {"matchLabels": labels}, "topologyKey": key})
}

fn anti(labels: Value, key: &str) -> Value {
    json!({"spec": {"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term(labels, key)]}}}})
}

fn affinity(labels: Value, key: &str) -> Value {
    json!({"spec": {"affinity": {"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term(labels, key)]}}}})
}

const HOST: &str = "kubernetes.io/hostname";
const ZONE: &str = "zone";

fn nodes() -> Vec<k8s_openapi::api::core::v1::Node> {
    vec![
        node("n0", json!({"zone": "a"})),
        node("n1", json!({"zone": "a"})),
        node("n2", json!({"zone": "b"})),
    ]
}

#[test]
fn required_anti_affinity_spreads_replicas_one_per_node() {
    let web = |name: &str| {
        pod(
            name,
            json!({"app": "web"}),
            anti(json!({"app": "web"}), HOST),
        )
    };
    let c = cache(&nodes(), &[on(web("w0"), "n0"), on(web("w1"), "n2")]);
    assert_eq!(decide(&web("w2"), &c, &Context::default()), Ok("n1".into()));
    let full = cache(
        &nodes(),
        &[
            on(web("w0"), "n0"),
            on(web("w1"), "n1"),
            on(web("w2"), "n2"),
        ],
    );
    assert_eq!(
        decide(&web("w3"), &full, &Context::default()),
        Err("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.".into())
    );
}

#[test]
fn existing_pods_anti_affinity_keeps_matching_pods_away() {
    let loner = pod(
        "loner",
        json!({"app": "loner"}),
        anti(json!({"app": "db"}), ZONE),
    );
    let c = cache(&nodes(), &[on(loner, "n0")]);
    let db = pod("db", json!({"app": "db"}), json!({}));
    assert_eq!(decide(&db, &c, &Context::default()), Ok("n2".into()));
    let tied = pod(
        "db",
        json!({"app": "db"}),
        json!({"spec": {"nodeSelector": {"zone": "a"}}}),
    );
    assert_eq!(
        decide(&tied, &c, &Context::default()),
        Err(
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
             2 node(s) didn't satisfy existing pods anti-affinity rules."
                .into()
        )
    );
    // Another namespace is not affected (the term names the pod's own):
    // zone a is allowed again, and n1 is the emptier node there.
    let mut other = db.clone();
    other.metadata.namespace = Some("other".into());
    assert_eq!(decide(&other, &c, &Context::default()), Ok("n1".into()));
}

#[test]
fn required_affinity_co_locates_and_the_first_pod_of_a_group_may_go_anywhere() {
    let cache_pod = on(pod("cache", json!({"app": "cache"}), json!({})), "n2");
    let c = cache(&nodes(), &[cache_pod]);
    let web = pod(
        "web",
        json!({"app": "web"}),
        affinity(json!({"app": "cache"}), ZONE),
    );
    assert_eq!(decide(&web, &c, &Context::default()), Ok("n2".into()));
    let none = cache(&nodes(), &[]);
    assert_eq!(
        decide(&web, &none, &Context::default()),
        Err("0/3 nodes are available: 3 node(s) didn't match pod affinity rules.".into())
    );
    // A pod with affinity to its own kind starts the group anywhere.
    let first = pod(
        "c0",
        json!({"app": "cache"}),
        affinity(json!({"app": "cache"}), ZONE),
    );
    assert!(decide(&first, &none, &Context::default()).is_ok());
}

#[test]
fn a_namespace_selector_widens_the_term_to_the_namespaces_it_selects() {
    let mut other = on(pod("db", json!({"app": "db"}), json!({})), "n0");
    other.metadata.namespace = Some("team-a".into());
    let c = cache(&nodes(), &[other]);
    let term = json!({"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": HOST,
                      "namespaceSelector": {"matchLabels": {"team": "a"}}});
    let p = pod(
        "web",
        json!({}),
        json!({"spec": {"affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term]}}}}),
    );
    let ctx = Context {
        namespaces: BTreeMap::from([
            ("default".to_string(), BTreeMap::new()),
            (
                "team-a".to_string(),
                BTreeMap::from([("team".to_string(), "a".to_string())]),
            ),
        ]),
        default_selector: None,
    };
    assert_eq!(decide(&p, &c, &ctx), Ok("n0".into()));
    // Without the namespace's labels nothing matches.
    assert!(decide(&p, &c, &Context::default()).is_err());
}

#[test]
fn match_label_keys_narrow_the_term_to_the_pods_own_values() {
    let v1 = on(
        pod("old", json!({"app": "web", "rev": "1"}), json!({})),
        "n0",
    );
    let c = cache(&nodes(), &[v1]);
    let term = json!({"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": HOST,
                      "matchLabelKeys": ["rev"]});
    let p = pod(
        "new",
        json!({"app": "web", "rev": "2"}),
        json!({"spec": {"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term]}},
            "nodeSelector": {"kubernetes.io/hostname": "n0"}}}),
    );
    // Only pods of the same revision repel it.
    assert_eq!(decide(&p, &c, &Context::default()), Ok("n0".into()));
}

#[test]
fn preferred_terms_score_nodes_in_matching_domains_higher() {
    let cache_pod = on(pod("cache", json!({"app": "cache"}), json!({})), "n1");
    let c = cache(&nodes(), &[cache_pod]);
    let weighted = |kind: &str| {
        json!({"spec": {"affinity": {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": term(json!({"app": "cache"}), ZONE)}]}}}})
    };
    // n1 holds a pod already (less free), yet affinity to zone a wins.
    let near = pod("near", json!({}), weighted("podAffinity"));
    let placed = decide(&near, &c, &Context::default()).expect("fits");
    assert!(placed == "n0" || placed == "n1", "{placed}");
    let far = pod("far", json!({}), weighted("podAntiAffinity"));
    assert_eq!(decide(&far, &c, &Context::default()), Ok("n2".into()));
}
