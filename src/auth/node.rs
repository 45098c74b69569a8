//! The node authorizer, as upstream's `Node` authorization mode: it decides
//! what a kubelet (user `system:node:<name>` in `system:nodes`) may do, and
//! has no opinion about anyone else (RBAC decides for them).
//!
//! Secrets, configmaps, persistentvolumeclaims, persistentvolumes and
//! serviceaccount tokens are readable only when a pod bound to the node
//! references them (upstream's graph `node <- pod <- secret`, `node <- pod
//! <- pvc <- pv`, ...). Upstream keeps that graph up to date from
//! informers; skiff answers the same question directly from the API
//! server's pod and PVC watch caches, scanning the pods of the object's
//! namespace (or, for persistent volumes, every pod) on each such request.
//! A node's Lease is its own only; everything else is allowed by the
//! static rules of the `system:node` ClusterRole, with NodeRestriction
//! admission (`api/admission/noderestriction.rs`) narrowing the writes.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::UserInfo;
use super::rbac::rules::Rule;
use super::rbac::{Attributes, ResourceAttributes};
use crate::api::registry;
use crate::api::watch_cache::WatchCache;

/// The group of node identities.
pub const NODES_GROUP: &str = "system:nodes";
/// The username prefix of node identities.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The namespace of node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The node a user is, as upstream's `NodeIdentity`: `Some(name)` for
/// `system:node:<name>` in `system:nodes` (the name may be empty), else
/// `None`.
pub fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.username.strip_prefix(NODE_USER_PREFIX)?;
    user.groups.iter().any(|g| g == NODES_GROUP).then_some(name)
}

/// What the node authorizer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// No opinion, with the reason (empty when there is nothing to say);
    /// the next authorizer decides.
    NoOpinion(String),
}

fn no(reason: impl Into<String>) -> Verdict {
    Verdict::NoOpinion(reason.into())
}

/// The objects of each kind a pod references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRefs {
    pub secrets: BTreeSet<String>,
    pub config_maps: BTreeSet<String>,
    pub claims: BTreeSet<String>,
    pub service_account: Option<String>,
}

fn names_at<'a>(items: &'a Value, path: &[&str]) -> impl Iterator<Item = String> + 'a {
    let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
    items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(move |item| {
            path.iter()
                .try_fold(item, |v, key| v.get(key.as_str()))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        })
}

/// What `pod` references, as upstream's `VisitPodSecretNames`,
/// `VisitPodConfigmapNames` and the graph's PVC edges (ephemeral volumes
/// name their claim `<pod>-<volume>`).
pub fn pod_refs(pod: &Value) -> PodRefs {
    let spec = &pod["spec"];
    let mut refs = PodRefs::default();
    refs.secrets
        .extend(names_at(&spec["imagePullSecrets"], &["name"]));
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            refs.secrets
                .extend(names_at(&c["envFrom"], &["secretRef", "name"]));
            refs.config_maps
                .extend(names_at(&c["envFrom"], &["configMapRef", "name"]));
            refs.secrets
                .extend(names_at(&c["env"], &["valueFrom", "secretKeyRef", "name"]));
            refs.config_maps.extend(names_at(
                &c["env"],
                &["valueFrom", "configMapKeyRef", "name"],
            ));
        }
    }
    let volumes = &spec["volumes"];
    refs.secrets
        .extend(names_at(volumes, &["secret", "secretName"]));
    refs.secrets
        .extend(names_at(volumes, &["azureFile", "secretName"]));
    for plugin in [
        "cephfs",
        "cinder",
        "flexVolume",
        "rbd",
        "scaleIO",
        "iscsi",
        "storageos",
    ] {
        refs.secrets
            .extend(names_at(volumes, &[plugin, "secretRef", "name"]));
    }
    refs.secrets
        .extend(names_at(volumes, &["csi", "nodePublishSecretRef", "name"]));
    refs.config_maps
        .extend(names_at(volumes, &["configMap", "name"]));
    for v in volumes.as_array().into_iter().flatten() {
        let sources = &v["projected"]["sources"];
        refs.secrets.extend(names_at(sources, &["secret", "name"]));
        refs.config_maps
            .extend(names_at(sources, &["configMap", "name"]));
    }
    refs.claims
        .extend(names_at(volumes, &["persistentVolumeClaim", "claimName"]));
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    for v in volumes.as_array().into_iter().flatten() {
        if v.get("ephemeral").is_some()
            && let Some(volume) = v["name"].as_str()
        {
            refs.claims.insert(format!("{pod_name}-{volume}"));
        }
    }
    refs.service_account = spec["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from);
    refs
}

/// The kinds whose objects a node may reach only through its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Related {
    Secret,
    ConfigMap,
    Claim,
    Volume,
    ServiceAccount,
    Pod,
}

/// The node authorizer over the pod and PVC watch caches.
pub struct NodeAuthorizer {
    pods: Arc<WatchCache>,
    claims: Arc<WatchCache>,
    rules: Vec<Rule>,
}

/// The pod and PVC watch caches the authorizer reads.
pub struct NodeSources {
    pub pods: Arc<WatchCache>,
    pub claims: Arc<WatchCache>,
}

fn prefix(plural: &str, namespace: Option<&str>) -> String {
    registry::lookup("", "v1", plural)
        .map(|k| k.prefix(namespace))
        .unwrap_or_else(|| "/nowhere/".to_string())
}

impl NodeAuthorizer {
    /// The authorizer; `rules` are the static node rules (upstream's
    /// `NodeRules`, the `system:node` ClusterRole).
    pub fn new(sources: NodeSources, rules: Vec<Rule>) -> Self {
        NodeAuthorizer {
            pods: sources.pods,
            claims: sources.claims,
            rules,
        }
    }

    /// The static node rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The verdict on `attrs`.
    pub fn authorize(&self, attrs: &Attributes<'_>) -> Verdict {
        let Some(node) = node_identity(attrs.user) else {
            return no("");
        };
        if node.is_empty() {
            return no(format!("unknown node for user {:?}", attrs.user.username));
        }
        if let Some(r) = &attrs.resource {
            let verb = attrs.verb;
            match (r.group, r.resource) {
                ("", "secrets") => return self.read_namespaced(node, Related::Secret, verb, r),
                ("", "configmaps") => {
                    return self.read_namespaced(node, Related::ConfigMap, verb, r);
                }
                ("", "persistentvolumeclaims") => {
                    if r.subresource == "status" {
                        return match verb {
                            "update" | "patch" => self.related(node, Related::Claim, r),
                            _ => no("can only get/update/patch this type"),
                        };
                    }
                    return self.get_only(node, Related::Claim, verb, r);
                }
                ("", "persistentvolumes") => return self.get_only(node, Related::Volume, verb, r),
                ("", "serviceaccounts") => {
                    if verb != "create" || r.name.is_empty() {
                        return no("can only create tokens for individual service accounts");
                    }
                    if r.subresource != "token" {
                        return no("can only create token subresource of serviceaccount");
                    }
                    return self.related(node, Related::ServiceAccount, r);
                }
                ("coordination.k8s.io", "leases") => return lease(node, verb, r),
                _ => {}
            }
        }
        if self.rules.iter().any(|rule| rule.allows(attrs)) {
            Verdict::Allow
        } else {
            no("")
        }
    }

    fn read_namespaced(
        &self,
        node: &str,
        what: Related,
        verb: &str,
        r: &ResourceAttributes<'_>,
    ) -> Verdict {
        if !matches!(verb, "get" | "list" | "watch") {
            return no("can only read resources of this type");
        }
        if !r.subresource.is_empty() {
            return no("cannot read subresource");
        }
        if r.namespace.is_empty() {
            return no("can only read namespaced object of this type");
        }
        self.related(node, what, r)
    }

    fn get_only(
        &self,
        node: &str,
        what: Related,
        verb: &str,
        r: &ResourceAttributes<'_>,
    ) -> Verdict {
        if verb != "get" {
            return no("can only get individual resources of this type");
        }
        if !r.subresource.is_empty() {
            return no("cannot get subresource");
        }
        self.related(node, what, r)
    }

    /// Allowed when a pod bound to `node` leads to the named object.
    fn related(&self, node: &str, what: Related, r: &ResourceAttributes<'_>) -> Verdict {
        if r.name.is_empty() {
            return no("No Object name found");
        }
        if self.has_path(node, what, r.namespace, r.name) {
            Verdict::Allow
        } else {
            no(format!(
                "no relationship found between node '{node}' and this object"
            ))
        }
    }

    /// The pods bound to `node` (in `namespace`, or everywhere).
    fn pods_on(&self, node: &str, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let (pods, _) = self.pods.list(&prefix("pods", namespace));
        pods.into_iter()
            .filter(|p| p["spec"]["nodeName"].as_str() == Some(node))
            .collect()
    }

    fn has_path(&self, node: &str, what: Related, namespace: &str, name: &str) -> bool {
        if what == Related::Volume {
            return self.pods_on(node, None).iter().any(|pod| {
                let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
                pod_refs(pod)
                    .claims
                    .iter()
                    .any(|claim| self.claim_volume(ns, claim).as_deref() == Some(name))
            });
        }
        self.pods_on(node, Some(namespace)).iter().any(|pod| {
            let refs = || pod_refs(pod);
            match what {
                Related::Pod => pod["metadata"]["name"].as_str() == Some(name),
                Related::Secret => refs().secrets.contains(name),
                Related::ConfigMap => refs().config_maps.contains(name),
                Related::Claim => refs().claims.contains(name),
                Related::ServiceAccount => refs().service_account.as_deref() == Some(name),
                Related::Volume => false,
            }
        })
    }

    /// The persistent volume a claim is bound to.
    fn claim_volume(&self, namespace: &str, claim: &str) -> Option<String> {
        let (claims, _) = self
            .claims
            .list(&prefix("persistentvolumeclaims", Some(namespace)));
        claims
            .iter()
            .find(|c| c["metadata"]["name"].as_str() == Some(claim))
            .and_then(|c| c["spec"]["volumeName"].as_str())
            .filter(|v| !v.is_empty())
            .map(String::from)
    }

    /// Whether `pod` (in `namespace`) is bound to `node`, from the cache.
    pub fn pod_on_node(&self, node: &str, namespace: &str, pod: &str) -> bool {
        self.has_path(node, Related::Pod, namespace, pod)
    }
}

/// A node's own Lease in `kube-node-lease` (the name is checked by
/// NodeRestriction on create, where the authorizer does not know it).
fn lease(node: &str, verb: &str, r: &ResourceAttributes<'_>) -> Verdict {
    if !matches!(verb, "get" | "create" | "update" | "patch" | "delete") {
        return no("can only get, create, update, patch, or delete a node lease");
    }
    if r.namespace != NODE_LEASE_NAMESPACE {
        return no(format!(
            "can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"
        ));
    }
    if verb != "create" && r.name != node {
        return no("can only access node lease with the same name as the requesting node");
    }
    Verdict::Allow
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, node: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}")},
            "spec": {
                "nodeName": node,
                "serviceAccountName": "default",
                "imagePullSecrets": [{"name": "pull"}],
                "containers": [{
                    "name": "c",
                    "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}}],
                    "envFrom": [{"configMapRef": {"name": "env-cm"}}],
                }],
                "volumes": [
                    {"name": "s", "secret": {"secretName": "vol-secret"}},
                    {"name": "p", "projected": {"sources": [{"configMap": {"name": "proj-cm"}}]}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "claim"}},
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                ],
            },
        })
    }

    #[test]
    fn a_pods_references_are_collected() {
        let refs = pod_refs(&pod("ns", "web", "a"));
        assert_eq!(
            refs.secrets.into_iter().collect::<Vec<_>>(),
            ["env-secret", "pull", "vol-secret"]
        );
        assert_eq!(
            refs.config_maps.into_iter().collect::<Vec<_>>(),
            ["env-cm", "proj-cm"]
        );
        assert_eq!(
            refs.claims.into_iter().collect::<Vec<_>>(),
            ["claim", "web-scratch"]
        );
        assert_eq!(refs.service_account.as_deref(), Some("default"));
    }

    fn node_user(name: &str) -> UserInfo {
        UserInfo::node(name)
    }

    fn attrs<'a>(
        user: &'a UserInfo,
        verb: &'a str,
        resource: &'a str,
        subresource: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        let group = if resource == "leases" {
            "coordination.k8s.io"
        } else {
            ""
        };
        Attributes {
            user,
            verb,
            path: "",
            resource: Some(ResourceAttributes {
                group,
                version: "v1",
                resource,
                subresource,
                namespace,
                name,
            }),
        }
    }

    async fn authorizer() -> (tempfile::TempDir, NodeAuthorizer) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::open(None, dir.path()).await.expect("store");
        let pods_kind = registry::lookup("", "v1", "pods").expect("pods");
        let claims_kind = registry::lookup("", "v1", "persistentvolumeclaims").expect("pvcs");
        for p in [pod("ns", "web", "a"), pod("ns", "other", "b")] {
            let key = pods_kind.key(
                Some("ns"),
                p["metadata"]["name"].as_str().unwrap_or_default(),
            );
            store
                .create(&key, crate::api::object::encode(&p), None)
                .await
                .expect("create");
        }
        let claim = json!({"metadata": {"name": "claim", "namespace": "ns"}, "spec": {"volumeName": "pv-1"}});
        store
            .create(
                &claims_kind.key(Some("ns"), "claim"),
                crate::api::object::encode(&claim),
                None,
            )
            .await
            .expect("create");
        let pods = WatchCache::start(Arc::clone(&store), pods_kind.prefix(None))
            .await
            .expect("cache");
        let claims = WatchCache::start(Arc::clone(&store), claims_kind.prefix(None))
            .await
            .expect("cache");
        for _ in 0..100 {
            if pods.list("/").0.len() == 2 && claims.list("/").0.len() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let rules = crate::auth::rbac::policy::node_rules();
        let auth = NodeAuthorizer::new(NodeSources { pods, claims }, rules);
        (dir, auth)
    }

    #[tokio::test]
    async fn nodes_read_only_what_their_pods_use() {
        let (_dir, auth) = authorizer().await;
        let a = node_user("a");
        let b = node_user("b");
        let allow = |at: Attributes<'_>| auth.authorize(&at) == Verdict::Allow;
        assert!(allow(attrs(&a, "get", "secrets", "", "ns", "vol-secret")));
        assert!(allow(attrs(&a, "watch", "secrets", "", "ns", "env-secret")));
        assert!(allow(attrs(&a, "get", "configmaps", "", "ns", "proj-cm")));
        assert!(allow(attrs(
            &a,
            "get",
            "persistentvolumeclaims",
            "",
            "ns",
            "web-scratch"
        )));
        assert!(allow(attrs(&a, "get", "persistentvolumes", "", "", "pv-1")));
        assert!(allow(attrs(
            &a,
            "create",
            "serviceaccounts",
            "token",
            "ns",
            "default"
        )));
        // Another node's pods use them too, but b has no pod named web.
        assert!(allow(attrs(&b, "get", "secrets", "", "ns", "vol-secret")));
        assert_eq!(
            auth.authorize(&attrs(&a, "get", "secrets", "", "ns", "unused")),
            Verdict::NoOpinion("no relationship found between node 'a' and this object".into())
        );
        assert!(!allow(attrs(
            &a,
            "get",
            "secrets",
            "",
            "elsewhere",
            "vol-secret"
        )));
        assert_eq!(
            auth.authorize(&attrs(&a, "list", "secrets", "", "ns", "")),
            Verdict::NoOpinion("No Object name found".into())
        );
        assert!(!allow(attrs(
            &a,
            "update",
            "secrets",
            "",
            "ns",
            "vol-secret"
        )));
        assert!(!allow(attrs(
            &a,
            "list",
            "persistentvolumes",
            "",
            "",
            "pv-1"
        )));
        assert!(!allow(attrs(
            &a,
            "get",
            "serviceaccounts",
            "",
            "ns",
            "default"
        )));
    }

    #[tokio::test]
    async fn leases_and_static_rules() {
        let (_dir, auth) = authorizer().await;
        let a = node_user("a");
        let allow = |at: Attributes<'_>| auth.authorize(&at) == Verdict::Allow;
        assert!(allow(attrs(
            &a,
            "update",
            "leases",
            "",
            "kube-node-lease",
            "a"
        )));
        assert!(allow(attrs(
            &a,
            "create",
            "leases",
            "",
            "kube-node-lease",
            ""
        )));
        assert!(!allow(attrs(
            &a,
            "update",
            "leases",
            "",
            "kube-node-lease",
            "b"
        )));
        assert!(!allow(attrs(&a, "get", "leases", "", "kube-system", "a")));
        assert!(allow(attrs(&a, "list", "pods", "", "", "")));
        assert!(allow(attrs(&a, "patch", "nodes", "status", "", "a")));
        assert!(allow(attrs(&a, "create", "pods", "eviction", "ns", "web")));
        assert!(!allow(attrs(&a, "delete", "namespaces", "", "", "ns")));
        // Not a node: no opinion.
        let bob = UserInfo::component("bob");
        assert_eq!(
            auth.authorize(&attrs(&bob, "get", "secrets", "", "ns", "vol-secret")),
            Verdict::NoOpinion(String::new())
        );
        // In the group without the name prefix: not a node either.
        let mut odd = UserInfo::component("kubelet");
        odd.groups.push(NODES_GROUP.into());
        assert_eq!(node_identity(&odd), None);
        assert!(auth.pod_on_node("a", "ns", "web"));
        assert!(!auth.pod_on_node("a", "ns", "other"));
    }
}
