//! `skiff proxy` (the service proxy alone, as kube-proxy runs upstream) and
//! `skiff cleanup-network` (removes what a node put on the host).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ipnet::IpNet;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::proxy::ProxySettings;

/// Run only the service proxy against a cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Kubeconfig of the cluster (its user needs `system:node-proxier`'s rights).
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// The node this proxy runs on (its endpoints are the local ones).
    #[arg(long)]
    pub node_name: String,
    /// Traffic to cluster IPs from outside this range is masqueraded.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: IpNet,
    /// The least time between two syncs, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub min_sync_period_ms: u64,
    /// Log filter (`info`, `debug`, `skiff::proxy=debug`, ...).
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

/// Remove the service proxy's iptables chains and the node's network state.
#[derive(Debug, Clone, clap::Args)]
pub struct CleanupNetworkArgs {
    /// The cluster CIDR the node used (its route is removed).
    #[arg(long, env = "SKIFF_CLUSTER_CIDR", default_value = "10.42.0.0/16")]
    pub cluster_cidr: IpNet,
    /// The service CIDR the node used (its route is removed).
    #[arg(long, env = "SKIFF_SERVICE_CIDR", default_value = "10.43.0.0/16")]
    pub service_cidr: IpNet,
}

/// `skiff cleanup-network`: best effort, always succeeds.
pub fn cleanup_network(args: CleanupNetworkArgs) -> ExitCode {
    crate::net::cleanup(args.cluster_cidr, args.service_cidr);
    ExitCode::SUCCESS
}

/// `skiff proxy`: runs until SIGINT/SIGTERM; the rules stay in place
/// (`skiff cleanup-network` removes them), as with kube-proxy.
pub fn proxy(args: ProxyArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ProxyArgs) -> Result<(), String> {
    let path = args.kubeconfig.display().to_string();
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)
        .map_err(|e| format!("reading the kubeconfig {path}: {e}"))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("reading the kubeconfig {path}: {e}"))?;
    let client = kube::Client::try_from(config).map_err(|e| format!("connecting: {e}"))?;
    let mut settings = ProxySettings::new(args.node_name, args.cluster_cidr);
    settings.min_sync_period = Duration::from_millis(args.min_sync_period_ms);
    let proxy = tokio::spawn(crate::proxy::run(client, settings));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated() => {}
    }
    proxy.abort();
    Ok(())
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}
