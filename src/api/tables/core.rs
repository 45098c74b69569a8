//! Tables of the core (`v1`) kinds other than pods: services, endpoints,
//! nodes, namespaces, events, config maps, secrets, service accounts,
//! volumes and claims, replication controllers, pod templates and quotas.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::format::{
    age, arr, containers, count, int, int0, labels, list_with_more, name, or, quantity, s, since,
    time,
};
use super::{AGE, CONTAINERS, Clock, Column, IMAGES, NAME, Printer, no_conditions};

macro_rules! printer {
    ($cols:expr, $cells:expr) => {
        Printer {
            columns: $cols,
            cells: $cells,
            conditions: no_conditions,
        }
    };
}

static SERVICES: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Type",
            "string",
            "type determines how the Service is exposed."
        ),
        Column::new(
            "Cluster-IP",
            "string",
            "clusterIP is the IP address of the service and is usually assigned randomly.",
        ),
        Column::new(
            "External-IP",
            "string",
            "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
        ),
        Column::new(
            "Port(s)",
            "string",
            "The list of ports that are exposed by this service.",
        ),
        AGE,
        Column::new(
            "Selector",
            "string",
            "Route service traffic to pods with label keys and values matching this selector.",
        )
        .wide(),
    ],
    service_cells
);

fn load_balancer_ips(svc: &Value) -> Vec<String> {
    let set: BTreeSet<&str> = arr(svc, "/status/loadBalancer/ingress")
        .iter()
        .map(|i| or(s(i, "/ip"), s(i, "/hostname")))
        .filter(|a| !a.is_empty())
        .collect();
    set.into_iter().map(String::from).collect()
}

fn external_ip(svc: &Value) -> String {
    let external: Vec<&str> = arr(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match or(s(svc, "/spec/type"), "ClusterIP") {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".into(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let mut all = load_balancer_ips(svc);
            all.extend(external.iter().map(|s| s.to_string()));
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => s(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    }
}

fn service_cells(svc: &Value, clock: &Clock) -> Vec<Value> {
    let cluster_ip = arr(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let ports: Vec<String> = arr(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let proto = or(s(p, "/protocol"), "TCP");
            match int0(p, "/nodePort") {
                0 => format!("{}/{proto}", int0(p, "/port")),
                np => format!("{}:{np}/{proto}", int0(p, "/port")),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        json!(name(svc)),
        json!(s(svc, "/spec/type")),
        json!(cluster_ip),
        json!(external_ip(svc)),
        json!(ports),
        age(svc, clock),
        json!(labels(svc.pointer("/spec/selector"))),
    ]
}

static ENDPOINTS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Endpoints",
            "string",
            "The set of all endpoints is the union of all subsets.",
        ),
        AGE,
    ],
    endpoints_cells
);

/// Upstream's `formatEndpoints`: up to three `ip:port`, then `+ N more...`.
fn format_endpoints(ep: &Value) -> String {
    let subsets = arr(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut list = Vec::new();
    let mut total = 0;
    for ss in subsets {
        let addresses = arr(ss, "/addresses");
        let ports = arr(ss, "/ports");
        if ports.is_empty() {
            total += addresses.len();
            list.extend(addresses.iter().map(|a| s(a, "/ip").to_string()));
            continue;
        }
        for port in ports {
            total += addresses.len();
            for a in addresses {
                let ip = s(a, "/ip");
                let p = int0(port, "/port");
                list.push(if ip.contains(':') {
                    format!("[{ip}]:{p}")
                } else {
                    format!("{ip}:{p}")
                });
            }
        }
    }
    list_with_more(&list, total, 3)
}

fn endpoints_cells(ep: &Value, clock: &Clock) -> Vec<Value> {
    vec![json!(name(ep)), json!(format_endpoints(ep)), age(ep, clock)]
}

static NODES: Printer = printer!(
    &[
        NAME,
        Column::new("Status", "string", "The status of the node"),
        Column::new("Roles", "string", "The roles of the node"),
        AGE,
        Column::new("Version", "string", "Kubelet Version reported by the node."),
        Column::new(
            "Internal-IP",
            "string",
            "List of addresses reachable to the node.",
        )
        .wide(),
        Column::new(
            "External-IP",
            "string",
            "List of addresses reachable to the node.",
        )
        .wide(),
        Column::new("OS-Image", "string", "OS Image reported by the node.").wide(),
        Column::new(
            "Kernel-Version",
            "string",
            "Kernel Version reported by the node.",
        )
        .wide(),
        Column::new(
            "Container-Runtime",
            "string",
            "ContainerRuntime Version reported by the node.",
        )
        .wide(),
    ],
    node_cells
);

fn node_address(node: &Value, ty: &str) -> String {
    arr(node, "/status/addresses")
        .iter()
        .find(|a| s(a, "/type") == ty)
        .map(|a| s(a, "/address").to_string())
        .unwrap_or_else(|| "<none>".into())
}

fn node_cells(node: &Value, clock: &Clock) -> Vec<Value> {
    let mut status: Vec<&str> = match arr(node, "/status/conditions")
        .iter()
        .rfind(|c| s(c, "/type") == "Ready")
    {
        Some(c) if s(c, "/status") == "True" => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles = BTreeSet::new();
    if let Some(l) = node.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in l {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_string());
                }
            }
        }
    }
    let roles = roles.into_iter().collect::<Vec<_>>().join(",");
    let info = |f: &str| or(s(node, &format!("/status/nodeInfo/{f}")), "<unknown>").to_string();
    vec![
        json!(name(node)),
        json!(status.join(",")),
        json!(or(&roles, "<none>")),
        age(node, clock),
        json!(s(node, "/status/nodeInfo/kubeletVersion")),
        json!(node_address(node, "InternalIP")),
        json!(node_address(node, "ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

static NAMESPACES: Printer = printer!(
    &[
        NAME,
        Column::new("Status", "string", "The status of the namespace"),
        AGE
    ],
    |ns, clock| vec![
        json!(name(ns)),
        json!(s(ns, "/status/phase")),
        age(ns, clock)
    ]
);

static EVENTS: Printer = printer!(
    &[
        Column::new(
            "Last Seen",
            "string",
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        Column::new("Type", "string", "Type of this event (Normal, Warning)"),
        Column::new(
            "Reason",
            "string",
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        Column::new("Object", "string", "The object that this event is about."),
        Column::new(
            "Subobject",
            "string",
            "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
        )
        .wide(),
        Column::new(
            "Source",
            "string",
            "The component reporting this event.",
        )
        .wide(),
        Column::new(
            "Message",
            "string",
            "A human-readable description of the status of this operation.",
        ),
        Column::new(
            "First Seen",
            "string",
            "The time at which the event was first recorded.",
        )
        .wide(),
        Column::new(
            "Count",
            "string",
            "The number of times this event has occurred.",
        )
        .wide(),
        super::Column { priority: 1, ..NAME },
    ],
    event_cells
);

/// A core Event's row (events.k8s.io Events are stored in this form too).
fn event_cells(ev: &Value, clock: &Clock) -> Vec<Value> {
    let first = time(ev, "/firstTimestamp").or_else(|| time(ev, "/eventTime"));
    let first_seen = since(first, clock);
    let mut last_seen = match time(ev, "/lastTimestamp") {
        Some(t) => since(Some(t), clock),
        None => first_seen.clone(),
    };
    let mut n = int0(ev, "/count");
    if ev.pointer("/series").is_some_and(Value::is_object) {
        last_seen = since(time(ev, "/series/lastObservedTime"), clock);
        n = int0(ev, "/series/count");
    } else if n == 0 {
        n = 1;
    }
    let kind = s(ev, "/involvedObject/kind").to_lowercase();
    let target = match s(ev, "/involvedObject/name") {
        "" => kind,
        object => format!("{kind}/{object}"),
    };
    let component = or(s(ev, "/source/component"), s(ev, "/reportingComponent"));
    let host = or(s(ev, "/source/host"), s(ev, "/reportingInstance"));
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last_seen),
        json!(s(ev, "/type")),
        json!(s(ev, "/reason")),
        json!(target),
        json!(s(ev, "/involvedObject/fieldPath")),
        json!(source),
        json!(s(ev, "/message").trim()),
        json!(first_seen),
        json!(n),
        json!(name(ev)),
    ]
}

static CONFIGMAPS: Printer = printer!(
    &[
        NAME,
        Column::new("Data", "string", "Data contains the configuration data.",),
        AGE
    ],
    |cm, clock| {
        vec![
            json!(name(cm)),
            json!(count(cm, "/data") + count(cm, "/binaryData")),
            age(cm, clock),
        ]
    }
);

static SECRETS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Type",
            "string",
            "Used to facilitate programmatic handling of secret data.",
        ),
        Column::new("Data", "string", "Data contains the secret data.",),
        AGE
    ],
    |sec, clock| {
        vec![
            json!(name(sec)),
            json!(s(sec, "/type")),
            json!(count(sec, "/data")),
            age(sec, clock),
        ]
    }
);

static SERVICE_ACCOUNTS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Secrets",
            "string",
            "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
        ),
        AGE
    ],
    |sa, clock| vec![
        json!(name(sa)),
        json!(count(sa, "/secrets")),
        age(sa, clock)
    ]
);

/// `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class of a volume or claim: the beta annotation wins.
fn storage_class(obj: &Value) -> &str {
    match s(
        obj,
        "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
    ) {
        "" => s(obj, "/spec/storageClassName"),
        class => class,
    }
}

fn phase_or_terminating(obj: &Value) -> &str {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else {
        s(obj, "/status/phase")
    }
}

static PERSISTENT_VOLUMES: Printer = printer!(
    &[
        NAME,
        Column::new("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity."),
        Column::new("Access Modes", "string", "accessModes contains all ways the volume can be mounted."),
        Column::new("Reclaim Policy", "string", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim."),
        Column::new("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
        Column::new("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
        Column::new("StorageClass", "string", "StorageClass of the pv"),
        Column::new("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
        Column::new("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
        AGE,
        Column::new("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.").wide(),
    ],
    pv_cells
);

fn pv_cells(pv: &Value, clock: &Clock) -> Vec<Value> {
    let claim = match pv.pointer("/spec/claimRef") {
        Some(c) => format!("{}/{}", s(c, "/namespace"), s(c, "/name")),
        None => String::new(),
    };
    vec![
        json!(name(pv)),
        json!(quantity(pv.pointer("/spec/capacity/storage"))),
        json!(access_modes(arr(pv, "/spec/accessModes"))),
        json!(s(pv, "/spec/persistentVolumeReclaimPolicy")),
        json!(phase_or_terminating(pv)),
        json!(claim),
        json!(storage_class(pv)),
        json!(or(s(pv, "/spec/volumeAttributesClassName"), "<unset>")),
        json!(s(pv, "/status/reason")),
        age(pv, clock),
        json!(or(s(pv, "/spec/volumeMode"), "<unset>")),
    ]
}

static PERSISTENT_VOLUME_CLAIMS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Status",
            "string",
            "phase represents the current phase of PersistentVolumeClaim."
        ),
        Column::new(
            "Volume",
            "string",
            "volumeName is the binding reference to the PersistentVolume backing this claim."
        ),
        Column::new(
            "Capacity",
            "string",
            "capacity represents the actual resources of the underlying volume."
        ),
        Column::new(
            "Access Modes",
            "string",
            "accessModes contains the actual access modes the volume backing the PVC has."
        ),
        Column::new("StorageClass", "string", "StorageClass of the pvc"),
        Column::new(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pvc"
        ),
        AGE,
        Column::new(
            "VolumeMode",
            "string",
            "volumeMode defines what type of volume is required by the claim."
        )
        .wide(),
    ],
    pvc_cells
);

fn pvc_cells(pvc: &Value, clock: &Clock) -> Vec<Value> {
    let volume = s(pvc, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(pvc.pointer("/status/capacity/storage")),
            access_modes(arr(pvc, "/status/accessModes")),
        )
    };
    vec![
        json!(name(pvc)),
        json!(phase_or_terminating(pvc)),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(storage_class(pvc)),
        json!(or(s(pvc, "/spec/volumeAttributesClassName"), "<unset>")),
        age(pvc, clock),
        json!(or(s(pvc, "/spec/volumeMode"), "<unset>")),
    ]
}

static REPLICATION_CONTROLLERS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Desired",
            "integer",
            "Replicas is the number of desired replicas."
        ),
        Column::new(
            "Current",
            "integer",
            "Replicas is the most recently observed number of replicas."
        ),
        Column::new(
            "Ready",
            "integer",
            "The number of ready replicas for this replication controller."
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        Column::new(
            "Selector",
            "string",
            "Selector is a label query over pods that should match the Replicas count."
        )
        .wide(),
    ],
    |rc, clock| {
        let (names, images) = containers(rc.pointer("/spec/template/spec"));
        vec![
            json!(name(rc)),
            json!(int(rc, "/spec/replicas").unwrap_or(1)),
            json!(int0(rc, "/status/replicas")),
            json!(int0(rc, "/status/readyReplicas")),
            age(rc, clock),
            names,
            images,
            json!(labels(rc.pointer("/spec/selector"))),
        ]
    }
);

static POD_TEMPLATES: Printer = printer!(
    &[
        NAME,
        Column {
            priority: 0,
            ..CONTAINERS
        },
        Column {
            priority: 0,
            ..IMAGES
        },
        Column::new("Pod Labels", "string", "The labels for the pod template."),
    ],
    |pt, _| {
        let (names, images) = containers(pt.pointer("/template/spec"));
        vec![
            json!(name(pt)),
            names,
            images,
            json!(labels(pt.pointer("/template/metadata/labels"))),
        ]
    }
);

static RESOURCE_QUOTAS: Printer = printer!(
    &[
        NAME,
        AGE,
        Column::new(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume."
        ),
        Column::new(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."
        ),
    ],
    quota_cells
);

fn quota_cells(q: &Value, clock: &Clock) -> Vec<Value> {
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    if let Some(hard) = q.pointer("/status/hard").and_then(Value::as_object) {
        let mut names: Vec<&String> = hard.keys().collect();
        names.sort();
        for res in names {
            let used = quantity(q.pointer("/status/used").and_then(|u| u.get(res)));
            let entry = format!("{res}: {used}/{}", quantity(hard.get(res)));
            if res.split('.').next() == Some("limits") && res.contains('.') {
                limits.push(entry);
            } else {
                requests.push(entry);
            }
        }
    }
    vec![
        json!(name(q)),
        age(q, clock),
        json!(requests.join(", ")),
        json!(limits.join(", ")),
    ]
}

pub(super) fn printer(kind: &str) -> Option<&'static Printer> {
    Some(match kind {
        "Service" => &SERVICES,
        "Endpoints" => &ENDPOINTS,
        "Node" => &NODES,
        "Namespace" => &NAMESPACES,
        "Event" => &EVENTS,
        "ConfigMap" => &CONFIGMAPS,
        "Secret" => &SECRETS,
        "ServiceAccount" => &SERVICE_ACCOUNTS,
        "PersistentVolume" => &PERSISTENT_VOLUMES,
        "PersistentVolumeClaim" => &PERSISTENT_VOLUME_CLAIMS,
        "ReplicationController" => &REPLICATION_CONTROLLERS,
        "PodTemplate" => &POD_TEMPLATES,
        "ResourceQuota" => &RESOURCE_QUOTAS,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn clock() -> Clock {
        match "2024-01-01T01:00:00Z".parse::<Timestamp>() {
            Ok(now) => Clock { now },
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn services() {
        let svc = json!({"metadata": {"name": "web", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"type": "NodePort", "clusterIPs": ["10.43.0.5"], "selector": {"app": "web"},
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
        let c = service_cells(&svc, &clock());
        assert_eq!(
            c,
            vec![
                json!("web"),
                json!("NodePort"),
                json!("10.43.0.5"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP"),
                json!("60m"),
                json!("app=web")
            ]
        );
        let lb = json!({"spec": {"type": "LoadBalancer"}});
        assert_eq!(external_ip(&lb), "<pending>");
        let lb = json!({"spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]},
                        "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]}}});
        assert_eq!(external_ip(&lb), "5.6.7.8,lb.example,1.2.3.4");
        let en = json!({"spec": {"type": "ExternalName", "externalName": "db.example"}});
        assert_eq!(external_ip(&en), "db.example");
    }

    #[test]
    fn endpoints() {
        let ep = json!({"subsets": [{"addresses": [{"ip": "10.42.0.1"}, {"ip": "10.42.0.2"}],
                                     "ports": [{"port": 80}, {"port": 443}]}]});
        assert_eq!(
            format_endpoints(&ep),
            "10.42.0.1:80,10.42.0.2:80,10.42.0.1:443 + 1 more..."
        );
        assert_eq!(format_endpoints(&json!({})), "<none>");
    }

    #[test]
    fn nodes() {
        let node = json!({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "False"}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                       "nodeInfo": {"kubeletVersion": "v1.33.0"}}});
        let c = node_cells(&node, &clock());
        assert_eq!(c[1], "NotReady,SchedulingDisabled");
        assert_eq!(c[2], "control-plane,edge");
        assert_eq!(c[3], "<unknown>");
        assert_eq!(c[4], "v1.33.0");
        assert_eq!(c[5], "10.0.0.1");
        assert_eq!(c[6], "<none>");
        assert_eq!(c[7], "<unknown>");
    }

    #[test]
    fn events() {
        let ev = json!({"metadata": {"name": "e1"}, "type": "Warning", "reason": "Failed",
            "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{a}"},
            "source": {"component": "kubelet", "host": "n1"}, "message": " boom \n",
            "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:55:00Z", "count": 3});
        let c = event_cells(&ev, &clock());
        assert_eq!(
            c,
            vec![
                json!("5m"),
                json!("Warning"),
                json!("Failed"),
                json!("pod/p"),
                json!("spec.containers{a}"),
                json!("kubelet, n1"),
                json!("boom"),
                json!("60m"),
                json!(3),
                json!("e1")
            ]
        );
        let new_style = json!({"eventTime": "2024-01-01T00:59:00.000000Z", "reportingComponent": "sched",
            "involvedObject": {"kind": "Node"}});
        let c = event_cells(&new_style, &clock());
        assert_eq!(
            (c[0].clone(), c[3].clone(), c[5].clone(), c[8].clone()),
            (json!("60s"), json!("node"), json!("sched"), json!(1))
        );
    }

    #[test]
    fn volumes_and_quotas() {
        let pv = json!({"spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "a", "name": "c"}, "storageClassName": "fast"},
            "status": {"phase": "Bound"}});
        let c = pv_cells(&pv, &clock());
        assert_eq!(
            &c[1..8],
            &[
                json!("1Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("a/c"),
                json!("fast"),
                json!("<unset>")
            ]
        );
        let pvc = json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}});
        let c = pvc_cells(&pvc, &clock());
        assert_eq!(
            &c[1..5],
            &[json!("Pending"), json!(""), json!(""), json!("")]
        );
        let q = json!({"status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1Gi"},
                                  "used": {"pods": "3", "limits.cpu": "500m"}}});
        let c = quota_cells(&q, &clock());
        assert_eq!(c[2], "pods: 3/10, requests.memory: 0/1Gi");
        assert_eq!(c[3], "limits.cpu: 500m/2");
    }
}
