//! skiff: a lightweight Kubernetes distribution in one binary.
//!
//! `skiff server` runs the API server, the SQLite-backed store, the scheduler
//! and the controllers (and by default a node); `skiff agent` joins more
//! nodes. See `docs/` and the README for how the parts fit together.

pub mod agent;
pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod controllers;
pub mod dns;
pub mod events;
pub mod informer;
pub mod kubelet;
pub mod leader_election;
pub mod net;
pub mod node_ipam;
pub mod pki;
pub mod proxy;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod sim_nodes;
pub mod store;
pub mod upgrade_proxy;
pub mod workqueue;
