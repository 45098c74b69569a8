//! `skiff agent`: a node that joins a server over the network.
//!
//! It joins (see `join.rs`), retrying with capped exponential backoff while
//! the server is unreachable or refuses it, each failure one log line that
//! says what to fix; then it runs the same node roles as a server's own
//! node, with a `kube::Client` that authenticates with the node's client
//! certificate. The client opens new connections as needed, so the node's
//! watches and lease renewals resume by themselves after a server restart.

use std::process::ExitCode;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::AgentConfig;
use super::join::{self, Backoff, JoinSettings, Joined};
use crate::cli::agent::JoinConfig;

/// Runs the agent until it is told to stop.
pub fn run(config: JoinConfig) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("skiff agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff agent: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: JoinConfig) -> Result<(), String> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        server = %config.server.url,
        node = %config.node_name,
        "starting skiff agent"
    );
    if config.node_ip.is_loopback() {
        tracing::warn!(
            node_ip = %config.node_ip,
            "this node's address is a loopback address (no default route to take it from): the server cannot reach its kubelet for logs and exec; give --node-ip"
        );
    }
    let settings = JoinSettings {
        server: config.server.clone(),
        token: config.token.clone(),
        ca_hash: config.ca_hash.clone(),
        agent_dir: config.data_dir.join("agent"),
        node_name: config.node_name.clone(),
        node_ips: vec![config.node_ip],
        hostname: crate::cli::host::hostname(),
    };
    let joined = tokio::select! {
        joined = join_until_accepted(&settings) => joined,
        _ = crate::server::shutdown_signal() => return Ok(()),
    };
    tracing::info!(node = %config.node_name, server = %config.server.url, "joined the cluster");
    let client = client(&joined).await?;
    let agent = AgentConfig {
        data_dir: config.data_dir.clone(),
        node_name: config.node_name.clone(),
        node_ip: config.node_ip,
        container_runtime_endpoint: config.container_runtime_endpoint.clone(),
        private_registry: config.private_registry.clone(),
        disable_default_registry_endpoint: config.disable_default_registry_endpoint,
        cluster_cidr: joined.credentials.config.cluster_cidr,
        service_cidr: joined.credentials.config.service_cidr,
        version: crate::api::discovery::version()["gitVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        kubelet_port: config.kubelet_port,
        kubelet_tls: Some(crate::kubelet::server::ServerTls {
            ca_pem: joined.credentials.ca_cert.clone(),
            cert_pem: joined.credentials.serving_cert.clone(),
            key_pem: joined.credentials.serving_key.clone(),
            tokens: None,
        }),
        container_log_max_size: config.container_log_max_size,
        container_log_max_files: config.container_log_max_files,
        dns: crate::dns::DnsSettings {
            cluster_dns: joined.credentials.config.cluster_dns,
            cluster_domain: joined.credentials.config.cluster_domain.clone(),
            resolv_conf: config.resolv_conf.clone(),
        },
        overlay: crate::net::overlay::OverlaySettings {
            backend: joined
                .credentials
                .config
                .flannel_backend
                .parse()
                .map_err(|e| format!("the server's overlay backend: {e}"))?,
            iface: config.flannel_iface.clone(),
            node_ip: config.node_ip_given.then_some(config.node_ip),
        },
    };
    tokio::select! {
        result = super::run(client, agent) => {
            result.map_err(|e| format!("the node stopped: {e}"))
        }
        _ = crate::server::shutdown_signal() => {
            tracing::info!("skiff agent stopped");
            Ok(())
        }
    }
}

/// Joins, retrying every failure after a growing delay.
async fn join_until_accepted(settings: &JoinSettings) -> Joined {
    let mut backoff = Backoff::default();
    loop {
        match join::join(settings).await {
            Ok(joined) => return joined,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::error!("cannot join: {e}; retrying in {}s", delay.as_secs());
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// A client of the API server with the node's credentials.
async fn client(joined: &Joined) -> Result<kube::Client, String> {
    let kubeconfig = Kubeconfig::from_yaml(&joined.kubeconfig)
        .map_err(|e| format!("the node kubeconfig: {e}"))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("the node kubeconfig: {e}"))?;
    kube::Client::try_from(config).map_err(|e| format!("the API client: {e}"))
}
