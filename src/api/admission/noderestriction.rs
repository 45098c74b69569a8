//! NodeRestriction admission, as upstream's plugin: what the node
//! authorizer lets every kubelet do, this narrows to the kubelet's own
//! objects. A node (`system:node:<name>` in `system:nodes`) may
//!
//! - create, update and delete only its own Node, without setting or
//!   changing `node-restriction.kubernetes.io/` labels or `kubernetes.io` /
//!   `k8s.io` labels other than the kubelet's own set, and without changing
//!   its taints;
//! - create only mirror pods bound to itself (owned by its Node, referring
//!   to no service account, secret, configmap or claim), delete only pods
//!   bound to itself, update the status only of pods bound to itself
//!   (without touching their labels), and evict only pods bound to itself;
//! - update only the status (capacity and conditions) of claims;
//! - request service-account tokens only bound to a pod bound to itself;
//! - write only its own Lease in `kube-node-lease`.
//!
//! Refusals are 403 Forbidden with upstream's messages.

use serde_json::Value;

use crate::api::handlers::{Core, Ctx};
use crate::api::object;
use crate::api::registry::KindInfo;
use crate::api::status::ApiStatus;
use crate::auth::node::{NODE_LEASE_NAMESPACE, node_identity};

/// The annotation that marks a mirror pod.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// What the request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    fn upstream(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// The request as the plugin sees it.
pub struct Request<'a> {
    pub kind: &'a KindInfo,
    pub subresource: &'a str,
    pub namespace: &'a str,
    /// The name on the URL (empty on a create).
    pub name: &'a str,
    pub operation: Operation,
    /// The object to be stored (create, update) or the request body
    /// (eviction, token request).
    pub object: Option<&'a Value>,
    /// The stored object (update, delete).
    pub old: Option<&'a Value>,
}

/// Admits `ctx`'s request: `object` is what is to be stored (create,
/// update) or the body (eviction, token request), `old` what is stored.
pub fn admit(
    core: &Core,
    ctx: &Ctx,
    operation: Operation,
    object: Option<&Value>,
    old: Option<&Value>,
) -> Result<(), ApiStatus> {
    let Some(user) = &ctx.user else {
        return Ok(());
    };
    let Some(node) = node_identity(user) else {
        return Ok(());
    };
    let request = Request {
        kind: ctx.kind(),
        subresource: ctx.target.subresource.as_deref().unwrap_or(""),
        namespace: ctx.namespace().unwrap_or(""),
        name: ctx.target.name.as_deref().unwrap_or(""),
        operation,
        object,
        old,
    };
    let lookup = |namespace: &str, plural: &str, name: &str| {
        crate::api::admission::cached(core, "", plural, Some(namespace))
            .into_iter()
            .find(|o| object::name(o) == name)
            .map(|o| (*o).clone())
    };
    check(node, &request, &lookup).map_err(|why| {
        let name = if request.name.is_empty() {
            request.object.map(object::name).unwrap_or("")
        } else {
            request.name
        };
        ApiStatus::forbidden(request.kind, name, &why)
    })
}

/// A lookup of core objects by namespace (empty for cluster-scoped
/// kinds), plural and name.
pub type Lookup<'a> = dyn Fn(&str, &str, &str) -> Option<Value> + 'a;

/// The plugin's decision for `node`: `Err` carries upstream's reason.
pub fn check(node: &str, r: &Request<'_>, lookup: &Lookup<'_>) -> Result<(), String> {
    if node.is_empty() {
        return Err("could not determine node from user".to_string());
    }
    if !r.kind.group.is_empty() {
        if r.kind.group == "coordination.k8s.io" && r.kind.plural == "leases" {
            return lease(node, r);
        }
        return Ok(());
    }
    match r.kind.plural {
        "pods" => match r.subresource {
            "" => pod(node, r, lookup),
            "status" => pod_status(node, r),
            "eviction" => eviction(node, r, lookup),
            other => Err(format!(
                "unexpected pod subresource {other:?}, only 'status' and 'eviction' are allowed"
            )),
        },
        "nodes" => node_object(node, r),
        "persistentvolumeclaims" => match r.subresource {
            "status" => claim_status(node, r),
            _ => Err("may only update PVC status".to_string()),
        },
        "serviceaccounts" => token_request(node, r, lookup),
        _ => Ok(()),
    }
}

fn spec_node(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or("")
}

fn pod(node: &str, r: &Request<'_>, lookup: &Lookup<'_>) -> Result<(), String> {
    match r.operation {
        Operation::Create => mirror_pod(node, r.object.unwrap_or(&Value::Null), lookup),
        Operation::Delete => {
            let Some(existing) = r.old else {
                return Err(format!("pods {:?} not found", r.name));
            };
            if spec_node(existing) != node {
                return Err(format!(
                    "node {node:?} can only delete pods with spec.nodeName set to itself"
                ));
            }
            Ok(())
        }
        Operation::Update => Err(format!(
            "unexpected operation {:?}, node {node:?} can only create and delete mirror pods",
            r.operation.upstream()
        )),
    }
}

fn mirror_pod(node: &str, pod: &Value, lookup: &Lookup<'_>) -> Result<(), String> {
    if pod["metadata"]["annotations"][MIRROR_POD_ANNOTATION].is_null() {
        return Err(format!(
            "pod does not have {MIRROR_POD_ANNOTATION:?} annotation, node {node:?} can only create mirror pods"
        ));
    }
    if spec_node(pod) != node {
        return Err(format!(
            "node {node:?} can only create pods with spec.nodeName set to itself"
        ));
    }
    let owners = pod["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match owners.as_slice() {
        [] => {
            return Err(format!(
                "node {node:?} can only create pods with an owner reference set to itself"
            ));
        }
        [owner] => {
            if owner["apiVersion"] != "v1" || owner["kind"] != "Node" || owner["name"] != node {
                return Err(format!(
                    "node {node:?} can only create pods with an owner reference set to itself"
                ));
            }
            if owner["controller"] != true {
                return Err(format!(
                    "node {node:?} can only create pods with a controller owner reference set to itself"
                ));
            }
            if owner["blockOwnerDeletion"] == true {
                return Err(format!(
                    "node {node:?} must not set blockOwnerDeletion on an owner reference"
                ));
            }
            let Some(stored) = lookup("", "nodes", node) else {
                return Err(format!("nodes {node:?} not found"));
            };
            let (want, got) = (
                owner["uid"].as_str().unwrap_or(""),
                stored["metadata"]["uid"].as_str().unwrap_or(""),
            );
            if want != got {
                return Err(format!(
                    "node {node} UID mismatch: expected {want} got {got}"
                ));
            }
        }
        _ => {
            return Err(format!(
                "node {node:?} can only create pods with a single owner reference set to itself"
            ));
        }
    }
    if pod["spec"]["serviceAccountName"]
        .as_str()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(format!(
            "node {node:?} can not create pods that reference a service account"
        ));
    }
    let refs = crate::auth::node::pod_refs(pod);
    if !refs.secrets.is_empty() {
        return Err(format!(
            "node {node:?} can not create pods that reference secrets"
        ));
    }
    if !refs.config_maps.is_empty() {
        return Err(format!(
            "node {node:?} can not create pods that reference configmaps"
        ));
    }
    let volumes = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if volumes.iter().any(|v| {
        v["projected"]["sources"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| !s["clusterTrustBundle"].is_null()))
    }) {
        return Err(format!(
            "node {node:?} can not create pods that reference clustertrustbundles"
        ));
    }
    if volumes
        .iter()
        .any(|v| !v["persistentVolumeClaim"].is_null())
    {
        return Err(format!(
            "node {node:?} can not create pods that reference persistentvolumeclaims"
        ));
    }
    Ok(())
}

fn pod_status(node: &str, r: &Request<'_>) -> Result<(), String> {
    if r.operation != Operation::Update {
        return Err(format!("unexpected operation {:?}", r.operation.upstream()));
    }
    let old = r.old.unwrap_or(&Value::Null);
    if spec_node(old) != node {
        return Err(format!(
            "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
        ));
    }
    let labels = |v: &Value| {
        v["metadata"]["labels"]
            .as_object()
            .filter(|m| !m.is_empty())
            .cloned()
    };
    if labels(old) != labels(r.object.unwrap_or(&Value::Null)) {
        return Err(format!(
            "node {node:?} cannot update labels through pod status"
        ));
    }
    Ok(())
}

fn eviction(node: &str, r: &Request<'_>, lookup: &Lookup<'_>) -> Result<(), String> {
    if r.operation != Operation::Create {
        return Err(format!("unexpected operation {}", r.operation.upstream()));
    }
    let name = if r.name.is_empty() {
        r.object.map(object::name).unwrap_or("")
    } else {
        r.name
    };
    if name.is_empty() {
        return Err("could not determine pod from request data".to_string());
    }
    let Some(pod) = lookup(r.namespace, "pods", name) else {
        return Err(format!("pods {name:?} not found"));
    };
    if spec_node(&pod) != node {
        return Err(format!(
            "node {node} can only evict pods with spec.nodeName set to itself"
        ));
    }
    Ok(())
}

fn claim_status(node: &str, r: &Request<'_>) -> Result<(), String> {
    if r.operation != Operation::Update {
        return Err(format!("unexpected operation {:?}", r.operation.upstream()));
    }
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
        if let Some(status) = v["status"].as_object_mut() {
            for key in [
                "capacity",
                "conditions",
                "allocatedResourceStatuses",
                "allocatedResources",
            ] {
                status.remove(key);
            }
        }
        v
    };
    if strip(r.old.unwrap_or(&Value::Null)) != strip(r.object.unwrap_or(&Value::Null)) {
        return Err(format!(
            "node {node:?} is not allowed to update fields other than status.capacity and status.conditions"
        ));
    }
    Ok(())
}

fn node_object(node: &str, r: &Request<'_>) -> Result<(), String> {
    let requested = if r.operation == Operation::Create {
        r.object.map(object::name).unwrap_or("")
    } else {
        r.name
    };
    if requested != node {
        return Err(format!(
            "node {node:?} is not allowed to modify node {requested:?}"
        ));
    }
    let new = r.object.unwrap_or(&Value::Null);
    match r.operation {
        Operation::Create => {
            if !new["spec"]["configSource"].is_null() {
                return Err(format!(
                    "node {node:?} is not allowed to create pods with a non-nil configSource"
                ));
            }
            let forbidden = forbidden_labels(&modified_labels(new, &Value::Null));
            if !forbidden.is_empty() {
                return Err(format!(
                    "node {node:?} is not allowed to set the following labels: {}",
                    forbidden.join(", ")
                ));
            }
        }
        Operation::Update => {
            let old = r.old.unwrap_or(&Value::Null);
            let source = &new["spec"]["configSource"];
            if !source.is_null() && *source != old["spec"]["configSource"] {
                return Err(format!(
                    "node {node:?} is not allowed to update configSource to a new non-nil configSource"
                ));
            }
            let taints = |v: &Value| {
                v["spec"]["taints"]
                    .as_array()
                    .filter(|t| !t.is_empty())
                    .cloned()
            };
            if taints(new) != taints(old) {
                return Err(format!("node {node:?} is not allowed to modify taints"));
            }
            let forbidden = forbidden_labels(&modified_labels(new, old));
            if !forbidden.is_empty() {
                return Err(format!(
                    "is not allowed to modify labels: {}",
                    forbidden.join(", ")
                ));
            }
        }
        Operation::Delete => {}
    }
    Ok(())
}

/// The label keys that differ between two objects, sorted.
fn modified_labels(a: &Value, b: &Value) -> Vec<String> {
    let labels = |v: &Value| {
        v["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    let (a, b) = (labels(a), labels(b));
    let mut keys: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .chain(b.iter().filter(|(k, v)| a.get(*k) != Some(*v)))
        .map(|(k, _)| k.clone())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The labels upstream lets a kubelet set on its Node
/// (`k8s.io/kubelet/pkg/apis.KubeletLabels`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "kubernetes.io/os",
    "kubernetes.io/arch",
];

/// The label namespaces a kubelet may use freely.
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

fn in_namespace(namespace: &str, domain: &str) -> bool {
    namespace == domain
        || namespace
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Whether a kubelet may set `key` on its Node (upstream's
/// `IsKubeletLabel`).
pub fn is_kubelet_label(key: &str) -> bool {
    KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_NAMESPACES
            .iter()
            .any(|d| in_namespace(label_namespace(key), d))
}

/// Of `modified`, the labels a node may not add, remove or change.
pub fn forbidden_labels(modified: &[String]) -> Vec<String> {
    modified
        .iter()
        .filter(|key| {
            let ns = label_namespace(key);
            let restricted = in_namespace(ns, "node-restriction.kubernetes.io");
            let kubernetes = in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io");
            restricted || (kubernetes && !is_kubelet_label(key))
        })
        .cloned()
        .collect()
}

fn token_request(node: &str, r: &Request<'_>, lookup: &Lookup<'_>) -> Result<(), String> {
    if r.operation != Operation::Create || r.subresource != "token" {
        return Ok(());
    }
    let bound = &r.object.unwrap_or(&Value::Null)["spec"]["boundObjectRef"];
    let field = |k: &str| bound[k].as_str().unwrap_or("");
    if bound.is_null()
        || field("apiVersion") != "v1"
        || field("kind") != "Pod"
        || field("name").is_empty()
    {
        return Err("node requested token not bound to a pod".to_string());
    }
    if field("uid").is_empty() {
        return Err("node requested token with a pod binding without a uid".to_string());
    }
    let Some(pod) = lookup(r.namespace, "pods", field("name")) else {
        return Err(format!("pods {:?} not found", field("name")));
    };
    if pod["metadata"]["uid"].as_str().unwrap_or("") != field("uid") {
        return Err(format!(
            "the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated",
            field("uid")
        ));
    }
    if spec_node(&pod) != node {
        return Err(
            "node requested token bound to a pod scheduled on a different node".to_string(),
        );
    }
    Ok(())
}

fn lease(node: &str, r: &Request<'_>) -> Result<(), String> {
    if r.namespace != NODE_LEASE_NAMESPACE {
        return Err(format!(
            "can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"
        ));
    }
    let name = if r.operation == Operation::Create {
        r.object.map(object::name).unwrap_or("")
    } else {
        r.name
    };
    if name != node {
        return Err(
            "can only access node lease with the same name as the requesting node".to_string(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry;
    use serde_json::json;

    fn kind(group: &str, plural: &str) -> &'static KindInfo {
        registry::lookup(group, "v1", plural).expect("kind")
    }

    fn req<'a>(
        kind: &'a KindInfo,
        subresource: &'a str,
        name: &'a str,
        operation: Operation,
        object: Option<&'a Value>,
        old: Option<&'a Value>,
    ) -> Request<'a> {
        Request {
            kind,
            subresource,
            namespace: if kind.namespaced { "ns" } else { "" },
            name,
            operation,
            object,
            old,
        }
    }

    fn pods_lookup(ns: &str, plural: &str, name: &str) -> Option<Value> {
        match (ns, plural, name) {
            ("ns", "pods", "mine") => {
                Some(json!({"metadata": {"name": "mine", "uid": "u1"}, "spec": {"nodeName": "a"}}))
            }
            ("ns", "pods", "theirs") => Some(
                json!({"metadata": {"name": "theirs", "uid": "u2"}, "spec": {"nodeName": "b"}}),
            ),
            ("", "nodes", "a") => Some(json!({"metadata": {"name": "a", "uid": "node-a"}})),
            _ => None,
        }
    }

    #[test]
    fn a_node_changes_only_itself_and_its_allowed_labels() {
        let nodes = kind("", "nodes");
        let mut old = json!({"metadata": {"name": "a", "labels": {"kubernetes.io/hostname": "a"}}, "spec": {}});
        let mut new = old.clone();
        new["metadata"]["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"] =
            json!("true");
        new["metadata"]["labels"]["example.com/rack"] = json!("r1");
        let ok = req(nodes, "", "a", Operation::Update, Some(&new), Some(&old));
        assert_eq!(check("a", &ok, &pods_lookup), Ok(()));
        let other = req(nodes, "", "b", Operation::Update, Some(&new), Some(&old));
        assert_eq!(
            check("a", &other, &pods_lookup),
            Err(r#"node "a" is not allowed to modify node "b""#.into())
        );
        new["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = json!("true");
        new["metadata"]["labels"]["node-restriction.kubernetes.io/pci"] = json!("yes");
        let labels = req(nodes, "", "a", Operation::Update, Some(&new), Some(&old));
        assert_eq!(
            check("a", &labels, &pods_lookup),
            Err("is not allowed to modify labels: node-restriction.kubernetes.io/pci, node-role.kubernetes.io/control-plane".into())
        );
        let create = req(nodes, "", "", Operation::Create, Some(&new), None);
        assert!(
            check("a", &create, &pods_lookup)
                .unwrap_err()
                .starts_with(r#"node "a" is not allowed to set the following labels: "#)
        );
        old["spec"]["taints"] = json!([{"key": "k", "effect": "NoSchedule"}]);
        let taints = req(
            nodes,
            "status",
            "a",
            Operation::Update,
            Some(&new),
            Some(&old),
        );
        assert_eq!(
            check("a", &taints, &pods_lookup),
            Err(r#"node "a" is not allowed to modify taints"#.into())
        );
    }

    #[test]
    fn pods_status_eviction_and_deletion_are_for_own_pods() {
        let pods = kind("", "pods");
        let mine = pods_lookup("ns", "pods", "mine").expect("pod");
        let theirs = pods_lookup("ns", "pods", "theirs").expect("pod");
        let status = req(
            pods,
            "status",
            "theirs",
            Operation::Update,
            Some(&theirs),
            Some(&theirs),
        );
        assert_eq!(
            check("a", &status, &pods_lookup),
            Err(
                r#"node "a" can only update pod status for pods with spec.nodeName set to itself"#
                    .into()
            )
        );
        let own = req(
            pods,
            "status",
            "mine",
            Operation::Update,
            Some(&mine),
            Some(&mine),
        );
        assert_eq!(check("a", &own, &pods_lookup), Ok(()));
        let mut relabeled = mine.clone();
        relabeled["metadata"]["labels"] = json!({"x": "y"});
        let relabel = req(
            pods,
            "status",
            "mine",
            Operation::Update,
            Some(&relabeled),
            Some(&mine),
        );
        assert_eq!(
            check("a", &relabel, &pods_lookup),
            Err(r#"node "a" cannot update labels through pod status"#.into())
        );
        let delete = req(pods, "", "theirs", Operation::Delete, None, Some(&theirs));
        assert_eq!(
            check("a", &delete, &pods_lookup),
            Err(r#"node "a" can only delete pods with spec.nodeName set to itself"#.into())
        );
        let evict = req(pods, "eviction", "theirs", Operation::Create, None, None);
        assert_eq!(
            check("a", &evict, &pods_lookup),
            Err("node a can only evict pods with spec.nodeName set to itself".into())
        );
        let evict_own = req(pods, "eviction", "mine", Operation::Create, None, None);
        assert_eq!(check("a", &evict_own, &pods_lookup), Ok(()));
    }

    #[test]
    fn only_mirror_pods_owned_by_the_node_are_created() {
        let pods = kind("", "pods");
        let plain = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "a"}});
        let r = req(pods, "", "", Operation::Create, Some(&plain), None);
        assert_eq!(
            check("a", &r, &pods_lookup),
            Err(r#"pod does not have "kubernetes.io/config.mirror" annotation, node "a" can only create mirror pods"#.into())
        );
        let mirror = json!({"metadata": {"name": "p",
            "annotations": {MIRROR_POD_ANNOTATION: "hash"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "a", "uid": "node-a", "controller": true}]},
            "spec": {"nodeName": "a"}});
        let r = req(pods, "", "", Operation::Create, Some(&mirror), None);
        assert_eq!(check("a", &r, &pods_lookup), Ok(()));
        let mut with_secret = mirror.clone();
        with_secret["spec"]["volumes"] = json!([{"name": "s", "secret": {"secretName": "x"}}]);
        let r = req(pods, "", "", Operation::Create, Some(&with_secret), None);
        assert_eq!(
            check("a", &r, &pods_lookup),
            Err(r#"node "a" can not create pods that reference secrets"#.into())
        );
        let mut elsewhere = mirror.clone();
        elsewhere["spec"]["nodeName"] = json!("b");
        let r = req(pods, "", "", Operation::Create, Some(&elsewhere), None);
        assert_eq!(
            check("a", &r, &pods_lookup),
            Err(r#"node "a" can only create pods with spec.nodeName set to itself"#.into())
        );
    }

    #[test]
    fn leases_tokens_and_claims() {
        let leases = kind("coordination.k8s.io", "leases");
        let mut r = req(leases, "", "b", Operation::Update, None, None);
        r.namespace = NODE_LEASE_NAMESPACE;
        assert_eq!(
            check("a", &r, &pods_lookup),
            Err("can only access node lease with the same name as the requesting node".into())
        );
        r.name = "a";
        assert_eq!(check("a", &r, &pods_lookup), Ok(()));

        let sas = kind("", "serviceaccounts");
        let unbound = json!({"spec": {}});
        let r = req(
            sas,
            "token",
            "default",
            Operation::Create,
            Some(&unbound),
            None,
        );
        assert_eq!(
            check("a", &r, &pods_lookup),
            Err("node requested token not bound to a pod".into())
        );
        let bound = |name: &str, uid: &str| json!({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}}});
        let theirs = bound("theirs", "u2");
        let r = req(
            sas,
            "token",
            "default",
            Operation::Create,
            Some(&theirs),
            None,
        );
        assert_eq!(
            check("a", &r, &pods_lookup),
            Err("node requested token bound to a pod scheduled on a different node".into())
        );
        let mine = bound("mine", "u1");
        let r = req(
            sas,
            "token",
            "default",
            Operation::Create,
            Some(&mine),
            None,
        );
        assert_eq!(check("a", &r, &pods_lookup), Ok(()));

        let claims = kind("", "persistentvolumeclaims");
        let old = json!({"metadata": {"name": "c", "resourceVersion": "1"}, "spec": {"volumeName": "v"}, "status": {"phase": "Bound"}});
        let mut new = old.clone();
        new["status"]["capacity"] = json!({"storage": "2Gi"});
        new["metadata"]["resourceVersion"] = json!("2");
        let r = req(
            claims,
            "status",
            "c",
            Operation::Update,
            Some(&new),
            Some(&old),
        );
        assert_eq!(check("a", &r, &pods_lookup), Ok(()));
        new["status"]["phase"] = json!("Lost");
        let r = req(
            claims,
            "status",
            "c",
            Operation::Update,
            Some(&new),
            Some(&old),
        );
        assert!(check("a", &r, &pods_lookup).is_err());
        let r = req(claims, "", "c", Operation::Update, Some(&new), Some(&old));
        assert_eq!(
            check("a", &r, &pods_lookup),
            Err("may only update PVC status".into())
        );
    }

    #[test]
    fn kubelet_labels_match_upstreams_set() {
        assert!(is_kubelet_label("kubernetes.io/hostname"));
        assert!(is_kubelet_label("node.kubernetes.io/instance-type"));
        assert!(is_kubelet_label("foo.kubelet.kubernetes.io/x"));
        assert!(!is_kubelet_label("node-role.kubernetes.io/control-plane"));
        assert_eq!(
            forbidden_labels(&[
                "example.com/x".into(),
                "a.k8s.io/y".into(),
                "kubernetes.io/os".into()
            ]),
            ["a.k8s.io/y"]
        );
    }
}
