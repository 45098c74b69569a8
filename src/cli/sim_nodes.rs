//! Flags of `skiff sim-nodes`, the node simulator (see [`crate::sim_nodes`]).

use std::path::PathBuf;

/// Register simulated nodes that "run" the pods bound to them (no containers).
#[derive(Debug, Clone, clap::Args)]
pub struct SimNodesArgs {
    /// Kubeconfig of the cluster to join.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// How many nodes to simulate.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=250))]
    pub count: u16,
    /// Node names are this prefix followed by 0, 1, ...
    #[arg(long, default_value = "sim-")]
    pub name_prefix: String,
    /// CPU capacity of each node.
    #[arg(long, default_value = "4")]
    pub cpu: String,
    /// Memory capacity of each node.
    #[arg(long, default_value = "8Gi")]
    pub memory: String,
    /// Pod capacity of each node.
    #[arg(long, default_value_t = 110)]
    pub pods: u32,
    /// Seconds a pod owned by a Job runs before it succeeds.
    #[arg(long, default_value_t = 2)]
    pub job_run_seconds: u64,
}
