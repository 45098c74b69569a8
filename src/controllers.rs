//! The in-process controllers and scheduler of `skiff server`: they share one
//! informer per kind and act through the API as their own users, in
//! upstream's style: `system:kube-scheduler` for the scheduler and one
//! service account per controller
//! (`system:serviceaccount:kube-system:<name>-controller`), as
//! kube-controller-manager does with `--use-service-account-credentials`.

pub mod adoption;
pub mod clusterrole_aggregation;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod expectations;
pub mod garbagecollector;
pub mod history;
pub mod job;
pub mod namespace;
pub mod nodelifecycle;
pub mod per_namespace;
pub mod podgc;
pub mod replicaset;
pub mod rootca;
pub mod service_pods;
pub mod serviceaccount;
pub mod servicelb;
pub mod statefulset;
pub mod tokencleaner;
pub mod ttl_after_finished;
pub mod volume_binder;

use std::sync::Arc;

use axum::Router;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;

use crate::api::Caches;
use crate::auth::UserInfo;
use crate::client::in_process;
use crate::informer::Informer;

/// The user a controller acts as: its service account in kube-system,
/// which the bootstrap policy binds to `system:controller:<name>-controller`.
fn controller_user(name: &str) -> UserInfo {
    UserInfo::service_account("kube-system", &format!("{name}-controller"))
}

/// The controllers' settings (`skiff server` flags).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a node may go without a heartbeat before it is marked
    /// Unknown (`--node-monitor-grace-period`).
    pub node_monitor_grace_period: std::time::Duration,
    /// PodGC's threshold and quarantine.
    pub pod_gc: podgc::Settings,
    /// The range node IPAM cuts each node's podCIDR from (`--cluster-cidr`).
    pub cluster_cidr: ipnet::IpNet,
}

/// Runs the scheduler and the controllers (with the garbage collector) each
/// only while this server holds its Lease (`kube-system/kube-scheduler`,
/// `kube-system/kube-controller-manager`), as upstream's components do
/// with `--leader-elect`.
/// The candidacies are resigned (and the Leases released) on shutdown.
pub fn start_elected(
    router: Router,
    caches: Caches,
    ca_pem: &str,
    settings: Settings,
) -> Vec<crate::leader_election::Candidacy> {
    use crate::leader_election::{self, Config, identity};
    let scheduler_router = router.clone();
    let scheduler = leader_election::spawn(
        in_process(router.clone(), UserInfo::component("system:kube-scheduler")),
        Config::new("kube-scheduler", &identity()),
        Arc::new(move || crate::scheduler::start_in_process(scheduler_router.clone())),
    );
    let ca_pem = ca_pem.to_string();
    let lease_client = in_process(
        router.clone(),
        UserInfo::component("system:kube-controller-manager"),
    );
    let controllers = leader_election::spawn(
        lease_client,
        Config::new("kube-controller-manager", &identity()),
        Arc::new(move || {
            start(router.clone(), &ca_pem, &settings);
            garbagecollector::start(
                in_process(
                    router.clone(),
                    UserInfo::service_account("kube-system", "generic-garbage-collector"),
                ),
                caches.clone(),
            );
        }),
    );
    vec![scheduler, controllers]
}

/// Starts the controllers against `router`; `ca_pem` is the cluster CA the
/// root CA publisher puts into every namespace.
pub fn start(router: Router, ca_pem: &str, settings: &Settings) {
    let informers_client = in_process(
        router.clone(),
        UserInfo::component("system:kube-controller-manager"),
    );
    // Node IPAM runs as the node controller's service account, as in
    // kube-controller-manager (its role may patch nodes).
    tokio::spawn(crate::node_ipam::run(
        in_process(router.clone(), controller_user("node")),
        settings.cluster_cidr,
    ));
    let pods = Informer::start(Api::<Pod>::all(informers_client.clone()));
    let nodes = Informer::start(Api::<Node>::all(informers_client.clone()));
    let replicasets = Informer::start(Api::<ReplicaSet>::all(informers_client.clone()));
    let deployments = Informer::start(Api::<Deployment>::all(informers_client.clone()));
    let namespaces = Informer::start(Api::<Namespace>::all(informers_client.clone()));
    let jobs = Informer::start(Api::<Job>::all(informers_client.clone()));
    let cronjobs = Informer::start(Api::<CronJob>::all(informers_client.clone()));
    let services = Informer::start(Api::<Service>::all(informers_client.clone()));
    let endpoints = Informer::start(Api::<Endpoints>::all(informers_client.clone()));
    let slices = Informer::start(Api::<EndpointSlice>::all(informers_client.clone()));
    let pdbs = Informer::start(
        Api::<k8s_openapi::api::policy::v1::PodDisruptionBudget>::all(informers_client.clone()),
    );
    start_workloads(&router, &informers_client, pods.clone(), nodes.clone());
    let leases = Informer::start(
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
            informers_client.clone(),
            "kube-node-lease",
        ),
    );
    nodelifecycle::start(
        in_process(router.clone(), controller_user("node")),
        nodes.clone(),
        pods.clone(),
        leases,
        settings.node_monitor_grace_period,
    );
    volume_binder::start(
        in_process(
            router.clone(),
            UserInfo::service_account("kube-system", "persistent-volume-binder"),
        ),
        Informer::start(Api::all(informers_client.clone())),
        Informer::start(Api::all(informers_client.clone())),
        Informer::start(Api::all(informers_client.clone())),
    );
    podgc::start(
        in_process(
            router.clone(),
            UserInfo::service_account("kube-system", "pod-garbage-collector"),
        ),
        pods.clone(),
        nodes.clone(),
        settings.pod_gc,
    );
    endpoints::start(
        in_process(router.clone(), controller_user("endpoint")),
        services.clone(),
        pods.clone(),
        endpoints,
    );
    servicelb::start(
        in_process(router.clone(), controller_user("service-lb")),
        services.clone(),
        nodes.clone(),
    );
    endpointslice::start(
        in_process(router.clone(), controller_user("endpointslice")),
        services,
        pods.clone(),
        slices,
    );
    disruption::start(
        in_process(router.clone(), controller_user("disruption")),
        pdbs,
        pods.clone(),
        replicasets.clone(),
        deployments.clone(),
    );
    replicaset::start(
        in_process(router.clone(), controller_user("replicaset")),
        replicasets.clone(),
        pods.clone(),
    );
    replicaset::start(
        in_process(router.clone(), controller_user("replication")),
        Informer::start(
            Api::<k8s_openapi::api::core::v1::ReplicationController>::all(informers_client.clone()),
        ),
        pods.clone(),
    );
    job::start(
        in_process(router.clone(), controller_user("job")),
        jobs.clone(),
        pods,
    );
    cronjob::start(
        in_process(router.clone(), controller_user("cronjob")),
        cronjobs,
        jobs.clone(),
    );
    ttl_after_finished::start(
        in_process(router.clone(), controller_user("ttl-after-finished")),
        jobs,
    );
    tokencleaner::start(
        in_process(
            router.clone(),
            UserInfo::service_account("kube-system", "token-cleaner"),
        ),
        Informer::start(Api::namespaced(
            informers_client.clone(),
            crate::auth::bootstrap::NAMESPACE,
        )),
    );
    deployment::start(
        in_process(router.clone(), controller_user("deployment")),
        deployments,
        replicasets,
    );
    namespace::start(
        in_process(router.clone(), controller_user("namespace")),
        namespaces.clone(),
    );
    serviceaccount::start(
        in_process(router.clone(), controller_user("service-account")),
        informers_client.clone(),
        namespaces.clone(),
    );
    rootca::start(
        in_process(
            router.clone(),
            UserInfo::service_account("kube-system", "root-ca-cert-publisher"),
        ),
        informers_client,
        namespaces,
        ca_pem.to_string(),
    );
    clusterrole_aggregation::start(in_process(
        router,
        controller_user("clusterrole-aggregation"),
    ));
    tracing::info!("controllers started");
}

/// The StatefulSet and DaemonSet controllers, with the informers only
/// they use.
fn start_workloads(
    router: &Router,
    informers: &kube::Client,
    pods: Shared<Pod>,
    nodes: Shared<Node>,
) {
    use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, StatefulSet};
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let revisions = Informer::start(Api::<ControllerRevision>::all(informers.clone()));
    statefulset::start(
        in_process(router.clone(), controller_user("statefulset")),
        Informer::start(Api::<StatefulSet>::all(informers.clone())),
        pods.clone(),
        Informer::start(Api::<PersistentVolumeClaim>::all(informers.clone())),
        revisions.clone(),
    );
    daemonset::start(
        in_process(router.clone(), controller_user("daemon-set")),
        Informer::start(Api::<DaemonSet>::all(informers.clone())),
        pods,
        nodes,
        revisions,
    );
}

/// The controlling owner reference of an object, if any.
pub fn controller_of(refs: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs?.iter().find(|r| r.controller == Some(true))
}

/// A controller owner reference to `owner` (blockOwnerDeletion set).
pub fn owner_reference(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Shared informer handle type.
pub type Shared<K> = Arc<Informer<K>>;

/// Whether a label selector selects these labels (an empty selector selects
/// nothing, as for workload controllers).
pub fn selects(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    let Ok(sel) = serde_json::to_value(selector) else {
        return false;
    };
    if crate::api::kinds::labelselector::is_empty(&sel) {
        return false;
    }
    let labels = labels.and_then(|l| serde_json::to_value(l).ok());
    crate::api::kinds::labelselector::matches(&sel, labels.as_ref())
}
