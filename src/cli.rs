//! The `skiff` command line: one subcommand per role or tool.
//!
//! `skiff server` runs the control plane and `skiff version` prints the
//! version; further subcommands (`agent`, `token`)
//! are added as variants of [`Command`] with their own flag struct under
//! `cli/`. Every `skiff server` flag can also come from a `SKIFF_<FLAG>`
//! environment variable or from the YAML config file; [`server::resolve`]
//! merges the three (flag > env > file > default) and validates the result.

pub mod agent;
pub mod certificate;
pub mod check_config;
pub mod config_file;
pub mod host;
pub mod proxy;
pub mod server;
pub mod sim_nodes;
pub mod token;
pub mod tools;

use clap::{Parser, Subcommand};

/// A lightweight Kubernetes distribution in one binary.
#[derive(Debug, Parser)]
#[command(name = "skiff", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `skiff`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane: API server, store, scheduler and controllers.
    Server(Box<server::ServerArgs>),
    /// Run a node that joins a server: `skiff agent --server URL --token TOKEN`.
    Agent(Box<agent::AgentArgs>),
    /// Simulate nodes for testing the control plane (no containers run).
    SimNodes(sim_nodes::SimNodesArgs),
    /// Print the version of this skiff binary.
    Version,
    /// Run kubectl with this machine's admin kubeconfig.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Kubectl(tools::PassThrough),
    /// Run containerd's ctr against skiff's containerd.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Ctr(tools::PassThrough),
    /// Check that this machine has what skiff needs (kernel, binaries).
    CheckConfig,
    /// Check or rotate skiff's certificates.
    Certificate(certificate::CertificateArgs),
    /// Manage bootstrap tokens for joining nodes (create, list, delete).
    Token(token::TokenArgs),
    /// Run only the service proxy (as kube-proxy) against a cluster.
    Proxy(proxy::ProxyArgs),
    /// Remove the service proxy's iptables chains and the node's network state.
    CleanupNetwork(proxy::CleanupNetworkArgs),
}

/// The text `skiff version` prints.
pub fn version_text() -> String {
    format!("skiff version v{}", env!("CARGO_PKG_VERSION"))
}
