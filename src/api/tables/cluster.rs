//! Tables of the remaining API groups: networking (ingresses, ingress
//! classes, network policies), discovery (endpoint slices), RBAC bindings,
//! storage (storage classes and the CSI kinds), scheduling (priority
//! classes), coordination (leases), admission webhooks and runtime classes.
//! Roles, cluster roles, limit ranges and CRDs have no printer upstream and
//! get the default table.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::format::{
    age, arr, boolean, count, label_selector, list_with_more, name, or, quantity, s,
};
use super::{AGE, Clock, Column, NAME, Printer, no_conditions};

macro_rules! printer {
    ($cols:expr, $cells:expr) => {
        Printer {
            columns: $cols,
            cells: $cells,
            conditions: no_conditions,
        }
    };
}

static INGRESSES: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration"
        ),
        Column::new(
            "Hosts",
            "string",
            "Hosts that incoming requests are matched against before the ingress rule"
        ),
        Column::new(
            "Address",
            "string",
            "Address is a list containing ingress points for the load-balancer"
        ),
        Column::new("Ports", "string", "Ports of TLS configurations that open"),
        AGE,
    ],
    ingress_cells
);

fn ingress_cells(ing: &Value, clock: &Clock) -> Vec<Value> {
    let rules = arr(ing, "/spec/rules");
    let hosts: Vec<String> = rules
        .iter()
        .take(3)
        .map(|r| s(r, "/host"))
        .filter(|h| !h.is_empty())
        .map(String::from)
        .collect();
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if rules.len() > 3 {
        format!("{} + {} more...", hosts.join(","), rules.len() - 3)
    } else {
        hosts.join(",")
    };
    let address: BTreeSet<&str> = arr(ing, "/status/loadBalancer/ingress")
        .iter()
        .map(|i| or(s(i, "/ip"), s(i, "/hostname")))
        .filter(|a| !a.is_empty())
        .collect();
    let ports = if arr(ing, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        json!(name(ing)),
        json!(or(s(ing, "/spec/ingressClassName"), "<none>")),
        json!(hosts),
        json!(address.into_iter().collect::<Vec<_>>().join(",")),
        json!(ports),
        age(ing, clock),
    ]
}

static INGRESS_CLASSES: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Controller",
            "string",
            "Controller that is responsible for handling this class"
        ),
        Column::new(
            "Parameters",
            "string",
            "A reference to a resource with additional parameters"
        ),
        AGE,
    ],
    |ic, clock| {
        let params = match ic.pointer("/spec/parameters") {
            Some(p) => {
                let group = match s(p, "/apiGroup") {
                    "" => String::new(),
                    g => format!(".{g}"),
                };
                format!("{}{group}/{}", s(p, "/kind"), s(p, "/name"))
            }
            None => "<none>".into(),
        };
        vec![
            json!(name(ic)),
            json!(s(ic, "/spec/controller")),
            json!(params),
            age(ic, clock),
        ]
    }
);

static NETWORK_POLICIES: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Pod-Selector",
            "string",
            "podSelector selects the pods to which this NetworkPolicy object applies."
        ),
        AGE,
    ],
    |np, clock| {
        let sel = np
            .pointer("/spec/podSelector")
            .cloned()
            .unwrap_or_else(|| json!({}));
        vec![
            json!(name(np)),
            json!(label_selector(Some(&sel))),
            age(np, clock),
        ]
    }
);

static ENDPOINT_SLICES: Printer = printer!(
    &[
        NAME,
        Column::new(
            "AddressType",
            "string",
            "addressType specifies the type of address carried by this EndpointSlice."
        ),
        Column::new(
            "Ports",
            "string",
            "ports specifies the list of network ports exposed by each endpoint in this slice."
        ),
        Column::new(
            "Endpoints",
            "string",
            "endpoints is a list of unique endpoints in this slice."
        ),
        AGE,
    ],
    |es, clock| {
        let ports = arr(es, "/ports");
        let port_list: Vec<String> = ports
            .iter()
            .map(
                |p| match (p.get("port").and_then(Value::as_i64), s(p, "/name")) {
                    (Some(n), _) => n.to_string(),
                    (None, "") => "*".into(),
                    (None, name) => name.to_string(),
                },
            )
            .collect();
        let addresses: Vec<String> = arr(es, "/endpoints")
            .iter()
            .flat_map(|e| arr(e, "/addresses"))
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        let unset = |s: String| {
            if s.is_empty() {
                "<unset>".to_string()
            } else {
                s
            }
        };
        vec![
            json!(name(es)),
            json!(s(es, "/addressType")),
            json!(unset(list_with_more(&port_list, port_list.len(), 3))),
            json!(unset(list_with_more(&addresses, addresses.len(), 3))),
            age(es, clock),
        ]
    }
);

const BINDING_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Role",
        "string",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
    ),
    AGE,
    Column::new("Users", "string", "Users in the roleBinding").wide(),
    Column::new("Groups", "string", "Groups in the roleBinding").wide(),
    Column::new(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    )
    .wide(),
];

static ROLE_BINDINGS: Printer = printer!(BINDING_COLUMNS, binding_cells);

static CLUSTER_ROLE_BINDINGS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Role",
            "string",
            "RoleRef can only reference a ClusterRole in the global namespace."
        ),
        AGE,
        Column::new("Users", "string", "Users in the clusterRoleBinding").wide(),
        Column::new("Groups", "string", "Groups in the clusterRoleBinding").wide(),
        Column::new(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the clusterRoleBinding"
        )
        .wide(),
    ],
    binding_cells
);

/// A (cluster) role binding: `Kind/name` of the role, then users, groups and
/// `namespace/name` service accounts (`rbac.SubjectsStrings`).
fn binding_cells(rb: &Value, clock: &Clock) -> Vec<Value> {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for subject in arr(rb, "/subjects") {
        let n = s(subject, "/name");
        match s(subject, "/kind") {
            "User" => users.push(n.to_string()),
            "Group" => groups.push(n.to_string()),
            "ServiceAccount" => sas.push(format!("{}/{n}", s(subject, "/namespace"))),
            _ => {}
        }
    }
    vec![
        json!(name(rb)),
        json!(format!(
            "{}/{}",
            s(rb, "/roleRef/kind"),
            s(rb, "/roleRef/name")
        )),
        age(rb, clock),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}

static STORAGE_CLASSES: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Provisioner",
            "string",
            "provisioner indicates the type of the provisioner."
        ),
        Column::new(
            "ReclaimPolicy",
            "string",
            "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class."
        ),
        Column::new(
            "VolumeBindingMode",
            "string",
            "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound."
        ),
        Column::new(
            "AllowVolumeExpansion",
            "string",
            "allowVolumeExpansion shows whether the storage class allow volume expand."
        ),
        AGE,
    ],
    |sc, clock| {
        let default = [
            "storageclass.kubernetes.io~1is-default-class",
            "storageclass.beta.kubernetes.io~1is-default-class",
        ]
        .iter()
        .any(|a| s(sc, &format!("/metadata/annotations/{a}")) == "true");
        let shown = if default {
            format!("{} (default)", name(sc))
        } else {
            name(sc).to_string()
        };
        vec![
            json!(shown),
            json!(s(sc, "/provisioner")),
            json!(or(s(sc, "/reclaimPolicy"), "Delete")),
            json!(or(s(sc, "/volumeBindingMode"), "Immediate")),
            json!(boolean(sc, "/allowVolumeExpansion").unwrap_or(false)),
            age(sc, clock),
        ]
    }
);

static CSI_DRIVERS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "AttachRequired",
            "boolean",
            "attachRequired indicates this CSI volume driver requires an attach operation."
        ),
        Column::new(
            "PodInfoOnMount",
            "boolean",
            "podInfoOnMount indicates this CSI volume driver requires additional pod information during mount operations."
        ),
        Column::new(
            "StorageCapacity",
            "boolean",
            "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity."
        ),
        Column::new(
            "TokenRequests",
            "string",
            "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for."
        ),
        Column::new(
            "RequiresRepublish",
            "boolean",
            "requiresRepublish indicates the CSI driver wants NodePublishVolume being periodically called."
        ),
        Column::new(
            "Modes",
            "string",
            "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports."
        ),
        AGE,
    ],
    |d, clock| {
        let tokens = d
            .pointer("/spec/tokenRequests")
            .and_then(Value::as_array)
            .map_or("<unset>".to_string(), |t| {
                t.iter()
                    .map(|r| s(r, "/audience"))
                    .collect::<Vec<_>>()
                    .join(",")
            });
        let modes: Vec<&str> = arr(d, "/spec/volumeLifecycleModes")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        vec![
            json!(name(d)),
            json!(boolean(d, "/spec/attachRequired").unwrap_or(true)),
            json!(boolean(d, "/spec/podInfoOnMount").unwrap_or(false)),
            json!(boolean(d, "/spec/storageCapacity").unwrap_or(false)),
            json!(tokens),
            json!(boolean(d, "/spec/requiresRepublish").unwrap_or(false)),
            json!(or(&modes.join(","), "<none>")),
            age(d, clock),
        ]
    }
);

static CSI_NODES: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Drivers",
            "integer",
            "Drivers indicates the number of CSI drivers registered on the node"
        ),
        AGE,
    ],
    |n, clock| vec![
        json!(name(n)),
        json!(count(n, "/spec/drivers")),
        age(n, clock)
    ]
);

static VOLUME_ATTACHMENTS: Printer = printer!(
    &[
        NAME,
        Column {
            format: "name",
            ..Column::new(
                "Attacher",
                "string",
                "attacher indicates the name of the volume driver that MUST handle this request."
            )
        },
        Column::new(
            "PV",
            "string",
            "persistentVolumeName represents the name of the persistent volume to attach."
        ),
        Column::new(
            "Node",
            "string",
            "nodeName represents the node that the volume should be attached to."
        ),
        Column::new(
            "Attached",
            "boolean",
            "attached indicates the volume is successfully attached."
        ),
        AGE,
    ],
    |va, clock| {
        vec![
            json!(name(va)),
            json!(s(va, "/spec/attacher")),
            json!(s(va, "/spec/source/persistentVolumeName")),
            json!(s(va, "/spec/nodeName")),
            json!(boolean(va, "/status/attached").unwrap_or(false)),
            age(va, clock),
        ]
    }
);

static CSI_STORAGE_CAPACITIES: Printer = printer!(
    &[
        NAME,
        Column::new(
            "StorageClassName",
            "string",
            "storageClassName represents the name of the StorageClass that the reported capacity applies to."
        ),
        Column::new(
            "Capacity",
            "string",
            "capacity is the value reported by the CSI driver in its GetCapacityResponse."
        ),
    ],
    |c, _| {
        let capacity = match c.get("capacity") {
            Some(q) => quantity(Some(q)),
            None => "<unset>".into(),
        };
        vec![
            json!(name(c)),
            json!(s(c, "/storageClassName")),
            json!(capacity),
        ]
    }
);

static PRIORITY_CLASSES: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Value",
            "integer",
            "value represents the integer value of this priority class."
        ),
        Column::new(
            "Global-Default",
            "boolean",
            "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class."
        ),
        AGE,
        Column::new(
            "PreemptionPolicy",
            "string",
            "preemptionPolicy is the Policy for preempting pods with lower priority."
        ),
    ],
    |pc, clock| {
        vec![
            json!(name(pc)),
            json!(pc.get("value").and_then(Value::as_i64).unwrap_or(0)),
            json!(boolean(pc, "/globalDefault").unwrap_or(false)),
            age(pc, clock),
            json!(or(s(pc, "/preemptionPolicy"), "PreemptLowerPriority")),
        ]
    }
);

static LEASES: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Holder",
            "string",
            "holderIdentity contains the identity of the holder of a current lease."
        ),
        AGE,
    ],
    |l, clock| vec![
        json!(name(l)),
        json!(s(l, "/spec/holderIdentity")),
        age(l, clock)
    ]
);

static WEBHOOK_CONFIGURATIONS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Webhooks",
            "integer",
            "Webhooks indicates the number of webhooks registered in this configuration"
        ),
        AGE,
    ],
    |w, clock| vec![json!(name(w)), json!(count(w, "/webhooks")), age(w, clock)]
);

static RUNTIME_CLASSES: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Handler",
            "string",
            "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class."
        ),
        AGE,
    ],
    |rc, clock| vec![json!(name(rc)), json!(s(rc, "/handler")), age(rc, clock)]
);

pub(super) fn printer(group: &str, kind: &str) -> Option<&'static Printer> {
    Some(match (group, kind) {
        ("networking.k8s.io", "Ingress") => &INGRESSES,
        ("networking.k8s.io", "IngressClass") => &INGRESS_CLASSES,
        ("networking.k8s.io", "NetworkPolicy") => &NETWORK_POLICIES,
        ("discovery.k8s.io", "EndpointSlice") => &ENDPOINT_SLICES,
        ("rbac.authorization.k8s.io", "RoleBinding") => &ROLE_BINDINGS,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => &CLUSTER_ROLE_BINDINGS,
        ("storage.k8s.io", "StorageClass") => &STORAGE_CLASSES,
        ("storage.k8s.io", "CSIDriver") => &CSI_DRIVERS,
        ("storage.k8s.io", "CSINode") => &CSI_NODES,
        ("storage.k8s.io", "VolumeAttachment") => &VOLUME_ATTACHMENTS,
        ("storage.k8s.io", "CSIStorageCapacity") => &CSI_STORAGE_CAPACITIES,
        ("scheduling.k8s.io", "PriorityClass") => &PRIORITY_CLASSES,
        ("coordination.k8s.io", "Lease") => &LEASES,
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => &WEBHOOK_CONFIGURATIONS,
        ("node.k8s.io", "RuntimeClass") => &RUNTIME_CLASSES,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn cells(group: &str, kind: &str, obj: Value) -> Vec<Value> {
        let Some(p) = printer(group, kind) else {
            panic!("{group}/{kind} has a printer")
        };
        let c = (p.cells)(
            &obj,
            &Clock {
                now: Timestamp::UNIX_EPOCH,
            },
        );
        assert_eq!(c.len(), p.columns.len(), "{kind}");
        c
    }

    #[test]
    fn ingresses_and_slices() {
        let ing = json!({"spec": {"rules": [{"host": "a"}, {}, {"host": "c"}, {"host": "d"}], "tls": [{}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}});
        let c = cells("networking.k8s.io", "Ingress", ing);
        assert_eq!(
            &c[1..5],
            &[
                json!("<none>"),
                json!("a,c + 1 more..."),
                json!("1.1.1.1"),
                json!("80, 443")
            ]
        );
        let es = json!({"addressType": "IPv4", "ports": [{"port": 80}, {"name": "x"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]});
        let c = cells("discovery.k8s.io", "EndpointSlice", es);
        assert_eq!(
            &c[1..4],
            &[
                json!("IPv4"),
                json!("80,x,*"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
            ]
        );
        let c = cells("discovery.k8s.io", "EndpointSlice", json!({}));
        assert_eq!(c[2], "<unset>");
    }

    #[test]
    fn bindings_and_classes() {
        let rb = json!({"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "namespace": "ns", "name": "bot"}, {"kind": "User", "name": "bob"}]});
        let c = cells("rbac.authorization.k8s.io", "RoleBinding", rb);
        assert_eq!(
            &c[3..6],
            &[json!("alice, bob"), json!("devs"), json!("ns/bot")]
        );
        assert_eq!(c[1], "ClusterRole/view");
        let sc = json!({"metadata": {"name": "local", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path"});
        let c = cells("storage.k8s.io", "StorageClass", sc);
        assert_eq!(
            &c[..5],
            &[
                json!("local (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("Immediate"),
                json!(false)
            ]
        );
        let c = cells(
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"value": 1000, "globalDefault": true}),
        );
        assert_eq!(
            (c[1].clone(), c[2].clone(), c[4].clone()),
            (json!(1000), json!(true), json!("PreemptLowerPriority"))
        );
        let c = cells(
            "storage.k8s.io",
            "CSIDriver",
            json!({"spec": {"volumeLifecycleModes": ["Persistent"]}}),
        );
        assert_eq!(
            &c[1..7],
            &[
                json!(true),
                json!(false),
                json!(false),
                json!("<unset>"),
                json!(false),
                json!("Persistent")
            ]
        );
        let c = cells(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            json!({"webhooks": [{}, {}]}),
        );
        assert_eq!(c[1], 2);
    }
}
