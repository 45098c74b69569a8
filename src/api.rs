//! The generic Kubernetes API server machinery.

pub mod kinds;
