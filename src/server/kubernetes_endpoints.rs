//! The `default/kubernetes` Service's endpoints follow the live API servers.
//!
//! Every API server keeps an identity Lease `kube-system/apiserver-<id>`
//! (label `apiserver.kubernetes.io/identity: kube-apiserver`, as upstream's)
//! renewed every [`RENEW_EVERY`], whose annotations carry the address and
//! port it advertises. After each renewal it sets the `kubernetes`
//! Endpoints and EndpointSlice to the advertised addresses of the servers
//! whose leases have not expired, and deletes expired leases (upstream's
//! lease garbage collector). The duration is upstream's endpoint-reconciler
//! TTL, 15 s: a stopped server's address leaves within that.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde::de::DeserializeOwned;
use sha2::Digest;

pub const RENEW_EVERY: Duration = Duration::from_secs(10);
const LEASE_SECONDS: i32 = 15;
pub const IDENTITY_LABEL: &str = "apiserver.kubernetes.io/identity";
pub const ADDRESS_ANNOTATION: &str = "skiff.io/advertise-address";
pub const PORT_ANNOTATION: &str = "skiff.io/advertise-port";

/// This server's identity and what it advertises.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Stable across restarts (derived from the node name).
    pub lease_name: String,
    pub holder: String,
    pub address: IpAddr,
    pub port: u16,
}

impl Identity {
    pub fn new(node_name: &str, address: IpAddr, port: u16) -> Self {
        let hash = sha2::Sha256::digest(node_name.as_bytes());
        Identity {
            lease_name: format!("apiserver-{}", hex::encode(&hash[..13])),
            holder: format!("kube-apiserver-{}", uuid::Uuid::new_v4()),
            address,
            port,
        }
    }
}

/// Renews the lease and reconciles the endpoints forever.
pub async fn run(client: kube::Client, identity: Identity) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = reconcile_once(&client, &identity).await {
            tracing::warn!(error = %e, "cannot reconcile the kubernetes Service's endpoints");
        }
    }
}

/// One round: renew, read the live leases, write the endpoints.
pub async fn reconcile_once(client: &kube::Client, identity: &Identity) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    renew(&leases, identity).await?;
    let now = Timestamp::now();
    let list = leases
        .list(&ListParams::default().labels(&format!("{IDENTITY_LABEL}=kube-apiserver")))
        .await?;
    let mut live: Vec<IpAddr> = Vec::new();
    for lease in &list.items {
        let name = lease.metadata.name.clone().unwrap_or_default();
        if expired(lease, now) {
            tracing::info!(lease = %name, "an API server's lease expired; removing it and its address");
            let _ = leases.delete(&name, &DeleteParams::default()).await;
            continue;
        }
        let address = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ADDRESS_ANNOTATION))
            .and_then(|a| a.parse::<IpAddr>().ok());
        if let Some(address) = address
            && !address.is_loopback()
            && address.is_ipv4() == identity.address.is_ipv4()
            && !live.contains(&address)
        {
            live.push(address);
        }
    }
    live.sort();
    if live.is_empty() {
        // Only loopback-advertising servers: nothing a pod could reach
        // (the bootstrap warned about it).
        return Ok(());
    }
    let (endpoints, slice) = crate::api::bootstrap::kubernetes_endpoints(&live, identity.port);
    let mut want: Vec<String> = live.iter().map(ToString::to_string).collect();
    want.sort();
    let endpoint_ips = |e: &Endpoints| -> Vec<String> {
        let subsets = e.subsets.iter().flatten();
        let ports_ok = e.subsets.iter().flatten().all(|s| {
            s.ports
                .iter()
                .flatten()
                .all(|p| p.port == i32::from(identity.port))
        });
        let ips = subsets
            .flat_map(|s| s.addresses.iter().flatten().map(|a| a.ip.clone()))
            .collect();
        if ports_ok { ips } else { Vec::new() }
    };
    let slice_ips = |s: &EndpointSlice| -> Vec<String> {
        let ports_ok = s
            .ports
            .iter()
            .flatten()
            .all(|p| p.port == Some(i32::from(identity.port)));
        let ips = s
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.clone())
            .collect();
        if ports_ok { ips } else { Vec::new() }
    };
    let endpoints_api = Api::<Endpoints>::namespaced(client.clone(), "default");
    write(endpoints_api, endpoints, endpoint_ips, &want).await?;
    let slices_api = Api::<EndpointSlice>::namespaced(client.clone(), "default");
    write(slices_api, slice, slice_ips, &want).await
}

fn expired(lease: &Lease, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else {
        return true;
    };
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return true;
    };
    renewed.0.as_second() + i64::from(seconds) < now.as_second()
}

async fn renew(leases: &Api<Lease>, identity: &Identity) -> Result<(), kube::Error> {
    let now = MicroTime(Timestamp::now());
    let mut lease = leases
        .get_opt(&identity.lease_name)
        .await?
        .unwrap_or_default();
    let exists = lease.metadata.resource_version.is_some();
    lease.metadata.name = Some(identity.lease_name.clone());
    lease
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(IDENTITY_LABEL.to_string(), "kube-apiserver".to_string());
    let annotations = lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.insert(ADDRESS_ANNOTATION.to_string(), identity.address.to_string());
    annotations.insert(PORT_ANNOTATION.to_string(), identity.port.to_string());
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if !exists || spec.holder_identity.as_deref() != Some(&identity.holder) {
        spec.acquire_time = Some(now.clone());
    }
    spec.holder_identity = Some(identity.holder.clone());
    spec.lease_duration_seconds = Some(LEASE_SECONDS);
    spec.renew_time = Some(now);
    if exists {
        leases
            .replace(&identity.lease_name, &PostParams::default(), &lease)
            .await?;
    } else {
        leases.create(&PostParams::default(), &lease).await?;
    }
    Ok(())
}

/// Creates `desired` or replaces the existing object when the addresses
/// it has (read by `current`) are not `want`.
async fn write<K>(
    api: Api<K>,
    desired: serde_json::Value,
    current: impl Fn(&K) -> Vec<String>,
    want: &[String],
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
    K::DynamicType: Default,
{
    let Ok(mut object) = serde_json::from_value::<K>(desired) else {
        return Ok(());
    };
    match api.get_opt("kubernetes").await? {
        Some(existing) => {
            let mut have = current(&existing);
            have.sort();
            if have == want {
                return Ok(());
            }
            tracing::info!(kind = %K::kind(&Default::default()), "updating the kubernetes Service's endpoints to the live API servers");
            object.meta_mut().resource_version = existing.meta().resource_version.clone();
            api.replace("kubernetes", &PostParams::default(), &object)
                .await?;
        }
        None => {
            api.create(&PostParams::default(), &object).await?;
        }
    }
    Ok(())
}
