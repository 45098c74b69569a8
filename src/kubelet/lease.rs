//! The node heartbeat: a Lease named after the node in `kube-node-lease`,
//! renewed every [`RENEW_EVERY`], as the upstream kubelet does. It is cheap
//! (one small object) so the Node itself is written only on change.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
use kube::api::{Api, PostParams};

pub const RENEW_EVERY: Duration = Duration::from_secs(10);
const DURATION_SECONDS: i32 = 40;

/// Renews the node's Lease forever.
pub async fn run(client: kube::Client, node_name: String, node_uid: String) {
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = renew(&leases, &node_name, &node_uid).await {
            tracing::warn!(error = %e, node = %node_name, "cannot renew the node lease");
        }
    }
}

async fn renew(leases: &Api<Lease>, node_name: &str, node_uid: &str) -> Result<(), kube::Error> {
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    match leases.get_opt(node_name).await? {
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = Some(node_name.to_string());
            spec.lease_duration_seconds = Some(DURATION_SECONDS);
            spec.renew_time = Some(now);
            leases
                .replace(node_name, &PostParams::default(), &lease)
                .await?;
        }
        None => {
            let mut lease = Lease::default();
            lease.metadata.name = Some(node_name.to_string());
            lease.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "v1".to_string(),
                kind: "Node".to_string(),
                name: node_name.to_string(),
                uid: node_uid.to_string(),
                ..Default::default()
            }]);
            lease.spec = Some(LeaseSpec {
                holder_identity: Some(node_name.to_string()),
                lease_duration_seconds: Some(DURATION_SECONDS),
                renew_time: Some(now),
                ..Default::default()
            });
            leases.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}
