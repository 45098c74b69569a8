//! The cluster DNS, in-process on every node (CoreDNS's job in k3s): it
//! answers the cluster zone from Services and EndpointSlices and forwards
//! everything else to the node's upstream resolvers, on UDP and TCP port 53
//! at the cluster DNS address (`--cluster-dns`), which it puts on the host
//! (see [`interface`]). The `kube-system/kube-dns` Service carries the same
//! address for compatibility; the service proxy leaves it alone.

pub mod forward;
pub mod interface;
pub mod records;
pub mod resolv;
pub mod server;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;

use crate::informer::Informer;
use forward::Forwarder;
use resolv::ResolvConf;
use server::Handler;

/// The DNS settings of a node.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// The address answered (`--cluster-dns`).
    pub cluster_dns: IpAddr,
    /// The cluster zone (`--cluster-domain`).
    pub cluster_domain: String,
    /// Where the upstream resolvers are read (`--resolv-conf`).
    pub resolv_conf: PathBuf,
}

/// Runs the cluster DNS until the task is dropped; failures are logged.
pub async fn run(client: kube::Client, settings: DnsSettings) {
    let path = resolv::effective_path(&settings.resolv_conf);
    let upstreams: Vec<SocketAddr> = ResolvConf::read(&path)
        .nameservers
        .into_iter()
        .filter(|ip| *ip != settings.cluster_dns)
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    if upstreams.is_empty() {
        tracing::warn!(path = %path.display(), "no upstream resolvers: names outside the cluster get SERVFAIL");
    }
    let handler = Arc::new(Handler::new(
        &settings.cluster_domain,
        Forwarder::new(
            upstreams,
            forward::UPSTREAM_TIMEOUT,
            forward::CACHE_CAPACITY,
        ),
    ));
    let address = settings.cluster_dns;
    match tokio::task::spawn_blocking(move || interface::ensure(address)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot put the cluster DNS address on the host; pods get no cluster DNS");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot put the cluster DNS address on the host");
            return;
        }
    }
    tokio::spawn(keep_snapshot(
        client,
        settings.cluster_domain.clone(),
        Arc::clone(&handler),
    ));
    // The address may take a moment to become bindable (DAD for IPv6).
    let addr = SocketAddr::new(settings.cluster_dns, 53);
    for attempt in 0..20u32 {
        match server::bind_and_serve(addr, Arc::clone(&handler)).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(%addr, attempt, error = %e, "cannot bind the cluster DNS; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    tracing::error!(%addr, "cannot bind the cluster DNS; pods get no cluster DNS");
}

/// Watches Services and EndpointSlices and rebuilds the zone's snapshot
/// after each batch of changes.
async fn keep_snapshot(client: kube::Client, domain: String, handler: Arc<Handler>) {
    let services = Informer::start(Api::<Service>::all(client.clone()));
    let slices = Informer::start(Api::<EndpointSlice>::all(client));
    let mut service_changes = services.subscribe();
    let mut slice_changes = slices.subscribe();
    let domain = domain.trim_end_matches('.').to_lowercase();
    loop {
        tokio::select! {
            changed = service_changes.next() => if changed.is_none() { return },
            changed = slice_changes.next() => if changed.is_none() { return },
        }
        // Let a burst of changes land, then rebuild once.
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Some(Some(_)) = service_changes.next().now_or_never() {}
        while let Some(Some(_)) = slice_changes.next().now_or_never() {}
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u32::try_from(d.as_secs()).unwrap_or_default())
            .unwrap_or_default();
        let service_list = services.store().state();
        let slice_list = slices.store().state();
        handler.set_snapshot(records::Snapshot::build(
            &domain,
            service_list.iter().map(|s| s.as_ref()),
            slice_list.iter().map(|s| s.as_ref()),
            serial,
        ));
    }
}
