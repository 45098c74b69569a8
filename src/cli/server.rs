//! The flags of `skiff server` and the validated [`ServerConfig`] they make.
//!
//! clap reads the command line and the `SKIFF_<FLAG>` environment variables
//! (keeping every value as text); [`resolve`] fills what is still unset from
//! the config file, then the defaults, and parses and checks each value in
//! one place, so a bad value names its flag and where it came from whatever
//! its source. Cross-flag rules (CIDRs that overlap, a DNS address outside the
//! service range) are checked last.

pub(crate) mod checks;

use std::net::IpAddr;
use std::path::PathBuf;

use clap::ArgMatches;
use clap::parser::ValueSource;
use ipnet::IpNet;

use super::config_file::{ConfigFile, ConfigFileError, FileValue};

/// Where the default config file lives.
pub const DEFAULT_CONFIG: &str = "/etc/skiff/config.yaml";

/// Flags of `skiff server`. Each is also read from `SKIFF_<FLAG_NAME>` and from
/// the config file (keys = long flag names); flag > env > file > default.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// YAML config file whose keys are the long flag names [default: /etc/skiff/config.yaml]
    #[arg(long, env = "SKIFF_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory holding the server's state (certificates, database, token) [default: /var/lib/skiff]
    #[arg(long, env = "SKIFF_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Address the HTTPS listener binds to [default: 0.0.0.0]
    #[arg(long, env = "SKIFF_BIND_ADDRESS", value_name = "IP")]
    pub bind_address: Option<String>,
    /// Port of the HTTPS API listener [default: 6443]
    #[arg(long, env = "SKIFF_HTTPS_LISTEN_PORT", value_name = "PORT")]
    pub https_listen_port: Option<String>,
    /// Address other nodes reach this server at [default: the IP of the default route's interface]
    #[arg(long, env = "SKIFF_ADVERTISE_ADDRESS", value_name = "IP")]
    pub advertise_address: Option<String>,
    /// Extra hostname or IP for the serving certificate (repeatable)
    #[arg(
        long,
        env = "SKIFF_TLS_SAN",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub tls_san: Vec<String>,
    /// Shared secret that nodes join with (generated when not given)
    #[arg(
        long,
        env = "SKIFF_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// File holding the shared secret
    #[arg(long, env = "SKIFF_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<String>,
    /// Where to write the admin kubeconfig [default: /etc/skiff/skiff.yaml]
    #[arg(long, env = "SKIFF_WRITE_KUBECONFIG", value_name = "FILE")]
    pub write_kubeconfig: Option<String>,
    /// File mode of the admin kubeconfig, in octal [default: 0600]
    #[arg(long, env = "SKIFF_WRITE_KUBECONFIG_MODE", value_name = "MODE")]
    pub write_kubeconfig_mode: Option<String>,
    /// Pod IP range [default: 10.42.0.0/16]
    #[arg(long, env = "SKIFF_CLUSTER_CIDR", value_name = "CIDR")]
    pub cluster_cidr: Option<String>,
    /// Service ClusterIP range [default: 10.43.0.0/16]
    #[arg(long, env = "SKIFF_SERVICE_CIDR", value_name = "CIDR")]
    pub service_cidr: Option<String>,
    /// Cluster DNS service IP, inside the service range [default: 10.43.0.10]
    #[arg(long, env = "SKIFF_CLUSTER_DNS", value_name = "IP")]
    pub cluster_dns: Option<String>,
    /// Cluster domain [default: cluster.local]
    #[arg(long, env = "SKIFF_CLUSTER_DOMAIN", value_name = "DOMAIN")]
    pub cluster_domain: Option<String>,
    /// NodePort range, inclusive [default: 30000-32767]
    #[arg(long, env = "SKIFF_SERVICE_NODE_PORT_RANGE", value_name = "FIRST-LAST")]
    pub service_node_port_range: Option<String>,
    /// Datastore endpoint [default: the SQLite database under <data-dir>/server/db]
    #[arg(long, env = "SKIFF_DATASTORE_ENDPOINT", value_name = "URL")]
    pub datastore_endpoint: Option<String>,
    /// Run the control plane only, without the built-in node
    #[arg(long, env = "SKIFF_DISABLE_AGENT", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub disable_agent: Option<String>,
    /// Name of this server's node [default: the hostname]
    #[arg(long, env = "SKIFF_NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,
    /// Existing CRI socket to use instead of launching containerd (path or unix:// URL)
    #[arg(long, env = "SKIFF_CONTAINER_RUNTIME_ENDPOINT", value_name = "SOCKET")]
    pub container_runtime_endpoint: Option<String>,
    /// Private registries file (mirrors, auth, TLS) [default: /etc/skiff/registries.yaml]
    #[arg(long, env = "SKIFF_PRIVATE_REGISTRY", value_name = "FILE")]
    pub private_registry: Option<String>,
    /// Pull only through the mirrors in the private registries file, never from the registries themselves
    #[arg(long, env = "SKIFF_DISABLE_DEFAULT_REGISTRY_ENDPOINT", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub disable_default_registry_endpoint: Option<String>,
    /// The node's resolver file: upstreams of the cluster DNS and pods' dnsPolicy Default [default: /etc/resolv.conf]
    #[arg(long, env = "SKIFF_RESOLV_CONF", value_name = "FILE")]
    pub resolv_conf: Option<String>,
    /// Port of the node's kubelet HTTPS server (logs, exec, port-forward) [default: 10250]
    #[arg(long, env = "SKIFF_KUBELET_PORT", value_name = "PORT")]
    pub kubelet_port: Option<String>,
    /// Size at which a container's log file is rotated, e.g. 10Mi [default: 10Mi]
    #[arg(long, env = "SKIFF_CONTAINER_LOG_MAX_SIZE", value_name = "SIZE")]
    pub container_log_max_size: Option<String>,
    /// Log files kept per container, the live one included (at least 2) [default: 5]
    #[arg(long, env = "SKIFF_CONTAINER_LOG_MAX_FILES", value_name = "COUNT")]
    pub container_log_max_files: Option<String>,
    /// How long a node may go without a heartbeat before it is marked Unknown and tainted, e.g. 40s or 2m [default: 40s]
    #[arg(long, env = "SKIFF_NODE_MONITOR_GRACE_PERIOD", value_name = "DURATION")]
    pub node_monitor_grace_period: Option<String>,
    /// Terminated pods kept before PodGC deletes the oldest; 0 keeps them all [default: 12500]
    #[arg(long, env = "SKIFF_TERMINATED_POD_GC_THRESHOLD", value_name = "COUNT")]
    pub terminated_pod_gc_threshold: Option<String>,
    /// How long a pod's node must be gone before PodGC deletes the pod, e.g. 40s [default: 40s]
    #[arg(long, env = "SKIFF_POD_GC_ORPHAN_QUARANTINE", value_name = "DURATION")]
    pub pod_gc_orphan_quarantine: Option<String>,
    /// The pod network between nodes: vxlan, host-gw (nodes on one L2 segment) or none [default: vxlan]
    #[arg(long, env = "SKIFF_FLANNEL_BACKEND", value_name = "BACKEND")]
    pub flannel_backend: Option<String>,
    /// The interface the overlay runs over; its first IPv4 is the node IP unless --node-ip is given [default: the interface of the node IP or of the default route]
    #[arg(long, env = "SKIFF_FLANNEL_IFACE", value_name = "IFACE")]
    pub flannel_iface: Option<String>,
    /// The node's InternalIP and overlay endpoint [default: the advertise address]
    #[arg(long, env = "SKIFF_NODE_IP", value_name = "IP")]
    pub node_ip: Option<String>,
    /// Log level (error, warn, info, debug, trace) or a tracing filter [default: info]
    #[arg(long, env = "SKIFF_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// The long flag names, which are also the config file's keys.
pub const FLAGS: &[&str] = &[
    "data-dir",
    "bind-address",
    "https-listen-port",
    "advertise-address",
    "tls-san",
    "token",
    "token-file",
    "write-kubeconfig",
    "write-kubeconfig-mode",
    "cluster-cidr",
    "service-cidr",
    "cluster-dns",
    "cluster-domain",
    "service-node-port-range",
    "datastore-endpoint",
    "disable-agent",
    "node-name",
    "container-runtime-endpoint",
    "resolv-conf",
    "private-registry",
    "disable-default-registry-endpoint",
    "kubelet-port",
    "container-log-max-size",
    "container-log-max-files",
    "node-monitor-grace-period",
    "terminated-pod-gc-threshold",
    "pod-gc-orphan-quarantine",
    "flannel-backend",
    "flannel-iface",
    "node-ip",
    "log-level",
];

/// The settings `skiff server` runs with, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    pub https_listen_port: u16,
    pub advertise_address: IpAddr,
    pub tls_san: Vec<String>,
    /// The token as given (bare secret or `K10...` form); `None`: generate.
    pub token: Option<String>,
    pub write_kubeconfig: PathBuf,
    pub write_kubeconfig_mode: u32,
    pub cluster_cidr: IpNet,
    pub service_cidr: IpNet,
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    pub service_node_port_range: (u16, u16),
    pub datastore_endpoint: Option<String>,
    pub disable_agent: bool,
    pub node_name: String,
    pub container_runtime_endpoint: Option<PathBuf>,
    pub private_registry: PathBuf,
    pub disable_default_registry_endpoint: bool,
    pub kubelet_port: u16,
    /// The node's resolver file (`--resolv-conf`).
    pub resolv_conf: PathBuf,
    /// Bytes at which a container log file is rotated.
    pub container_log_max_size: u64,
    pub container_log_max_files: u32,
    pub node_monitor_grace_period: std::time::Duration,
    pub terminated_pod_gc_threshold: usize,
    pub pod_gc_orphan_quarantine: std::time::Duration,
    /// The overlay between nodes (src/net/overlay.rs).
    pub flannel_backend: crate::net::overlay::Backend,
    pub flannel_iface: Option<String>,
    /// `--node-ip`; `None`: the advertise address.
    pub node_ip: Option<IpAddr>,
    pub log_level: String,
}

/// Where a setting's value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env(String),
    File(PathBuf),
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => Ok(()),
            Origin::Env(var) => write!(f, " (from {var})"),
            Origin::File(path) => write!(f, " (from config file {})", path.display()),
            Origin::Default => write!(f, " (the default)"),
        }
    }
}

/// A configuration that cannot be used; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] ConfigFileError),
    #[error("invalid --{flag} {value:?}{origin}: {fix}")]
    Invalid {
        flag: &'static str,
        value: String,
        origin: Origin,
        fix: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("cannot read --token-file {path}: {source}")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
}

/// A raw setting: its text and where it came from.
pub(crate) struct Raw {
    pub(crate) flag: &'static str,
    pub(crate) value: String,
    pub(crate) origin: Origin,
}

impl Raw {
    pub(crate) fn invalid(&self, fix: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            flag: self.flag,
            value: self.value.clone(),
            origin: self.origin.clone(),
            fix: fix.into(),
        }
    }
}

/// Merges flags/env (`args`, with `matches` telling which was which), the
/// config file and the defaults into a validated [`ServerConfig`].
pub fn resolve(args: &ServerArgs, matches: &ArgMatches) -> Result<ServerConfig, ConfigError> {
    let (config_path, explicit) = match &args.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let file = ConfigFile::load(&config_path, explicit, FLAGS)?;
    let pick = |flag: &'static str, given: &Option<String>, default: &str| -> Raw {
        pick_one(matches, &file, flag, given.clone(), default)
    };

    let data_dir = checks::path(&pick("data-dir", &args.data_dir, "/var/lib/skiff"))?;
    let bind_address = checks::ip(&pick("bind-address", &args.bind_address, "0.0.0.0"))?;
    let https_listen_port =
        checks::port(&pick("https-listen-port", &args.https_listen_port, "6443"))?;
    let advertise = pick("advertise-address", &args.advertise_address, "");
    let advertise_address = if advertise.value.is_empty() {
        super::host::primary_ip()
    } else {
        checks::ip(&advertise)?
    };
    let tls_san = tls_sans(args, matches, &file)?;
    let token = token(args, matches, &file)?;
    let write_kubeconfig = checks::path(&pick(
        "write-kubeconfig",
        &args.write_kubeconfig,
        "/etc/skiff/skiff.yaml",
    ))?;
    let write_kubeconfig_mode = checks::file_mode(&pick(
        "write-kubeconfig-mode",
        &args.write_kubeconfig_mode,
        "0600",
    ))?;
    let cluster_cidr_raw = pick("cluster-cidr", &args.cluster_cidr, "10.42.0.0/16");
    let cluster_cidr = checks::cidr(&cluster_cidr_raw)?;
    let service_cidr_raw = pick("service-cidr", &args.service_cidr, "10.43.0.0/16");
    let service_cidr = checks::cidr(&service_cidr_raw)?;
    let cluster_dns_raw = pick("cluster-dns", &args.cluster_dns, "10.43.0.10");
    let cluster_dns = checks::ip(&cluster_dns_raw)?;
    let cluster_domain = checks::domain(&pick(
        "cluster-domain",
        &args.cluster_domain,
        "cluster.local",
    ))?;
    let service_node_port_range = checks::port_range(&pick(
        "service-node-port-range",
        &args.service_node_port_range,
        "30000-32767",
    ))?;
    let endpoint = pick("datastore-endpoint", &args.datastore_endpoint, "");
    let datastore_endpoint = (!endpoint.value.is_empty()).then_some(endpoint.value);
    let disable_agent = checks::boolean(&pick("disable-agent", &args.disable_agent, "false"))?;
    let node_name = pick("node-name", &args.node_name, "");
    let node_name = if node_name.value.is_empty() {
        super::host::hostname().to_ascii_lowercase()
    } else {
        checks::domain(&node_name)?
    };
    let endpoint = pick(
        "container-runtime-endpoint",
        &args.container_runtime_endpoint,
        "",
    );
    let container_runtime_endpoint =
        (!endpoint.value.is_empty()).then(|| PathBuf::from(endpoint.value));
    let private_registry = checks::path(&pick(
        "private-registry",
        &args.private_registry,
        crate::runtime::registries::DEFAULT_PATH,
    ))?;
    let disable_default_registry_endpoint = checks::boolean(&pick(
        "disable-default-registry-endpoint",
        &args.disable_default_registry_endpoint,
        "false",
    ))?;
    let kubelet_port = checks::port(&pick("kubelet-port", &args.kubelet_port, "10250"))?;
    let resolv_conf = PathBuf::from(
        pick(
            "resolv-conf",
            &args.resolv_conf,
            crate::dns::resolv::DEFAULT_PATH,
        )
        .value,
    );
    let container_log_max_size = checks::size(&pick(
        "container-log-max-size",
        &args.container_log_max_size,
        "10Mi",
    ))?;
    let container_log_max_files = checks::log_files(&pick(
        "container-log-max-files",
        &args.container_log_max_files,
        "5",
    ))?;
    let node_monitor_grace_period = checks::duration(&pick(
        "node-monitor-grace-period",
        &args.node_monitor_grace_period,
        "40s",
    ))?;
    let threshold = pick(
        "terminated-pod-gc-threshold",
        &args.terminated_pod_gc_threshold,
        "12500",
    );
    let terminated_pod_gc_threshold = threshold
        .value
        .trim()
        .parse::<u32>()
        .map_err(|_| threshold.invalid("use a number of pods, 0 or more"))?
        as usize;
    let pod_gc_orphan_quarantine = checks::duration(&pick(
        "pod-gc-orphan-quarantine",
        &args.pod_gc_orphan_quarantine,
        "40s",
    ))?;
    let flannel_backend =
        checks::flannel_backend(&pick("flannel-backend", &args.flannel_backend, "vxlan"))?;
    let iface = pick("flannel-iface", &args.flannel_iface, "");
    let flannel_iface = if iface.value.is_empty() {
        None
    } else {
        Some(checks::interface(&iface)?)
    };
    let node_ip_raw = pick("node-ip", &args.node_ip, "");
    let node_ip = if node_ip_raw.value.is_empty() {
        None
    } else {
        Some(checks::node_ip(&node_ip_raw)?)
    };
    let log_level = checks::log_level(&pick("log-level", &args.log_level, "info"))?;

    checks::cidrs_apart(
        &cluster_cidr_raw,
        cluster_cidr,
        &service_cidr_raw,
        service_cidr,
    )?;
    if !service_cidr.contains(&cluster_dns) {
        return Err(cluster_dns_raw.invalid(format!(
            "the cluster DNS address must lie inside --service-cidr {service_cidr}; pick an address in that range (such as the 10th)"
        )));
    }

    Ok(ServerConfig {
        data_dir,
        bind_address,
        https_listen_port,
        advertise_address,
        tls_san,
        token,
        write_kubeconfig,
        write_kubeconfig_mode,
        cluster_cidr,
        service_cidr,
        cluster_dns,
        cluster_domain,
        service_node_port_range,
        datastore_endpoint,
        disable_agent,
        node_name,
        container_runtime_endpoint,
        private_registry,
        disable_default_registry_endpoint,
        kubelet_port,
        resolv_conf,
        container_log_max_size,
        container_log_max_files,
        node_monitor_grace_period,
        terminated_pod_gc_threshold,
        pod_gc_orphan_quarantine,
        flannel_backend,
        flannel_iface,
        node_ip,
        log_level,
    })
}

/// The clap argument id of a long flag name.
fn arg_id(flag: &str) -> String {
    flag.replace('-', "_")
}

fn env_var(flag: &str) -> String {
    format!("SKIFF_{}", flag.replace('-', "_").to_ascii_uppercase())
}

fn origin_of(matches: &ArgMatches, flag: &str) -> Origin {
    match matches.value_source(&arg_id(flag)) {
        Some(ValueSource::EnvVariable) => Origin::Env(env_var(flag)),
        _ => Origin::Flag,
    }
}

pub(crate) fn pick_one(
    matches: &ArgMatches,
    file: &ConfigFile,
    flag: &'static str,
    given: Option<String>,
    default: &str,
) -> Raw {
    if let Some(value) = given {
        return Raw {
            flag,
            value,
            origin: origin_of(matches, flag),
        };
    }
    match file.values.get(flag) {
        Some(FileValue::One(value)) => Raw {
            flag,
            value: value.clone(),
            origin: Origin::File(file.path.clone()),
        },
        Some(FileValue::List(values)) => Raw {
            flag,
            value: values.join(","),
            origin: Origin::File(file.path.clone()),
        },
        None => Raw {
            flag,
            value: default.to_string(),
            origin: Origin::Default,
        },
    }
}

fn tls_sans(
    args: &ServerArgs,
    matches: &ArgMatches,
    file: &ConfigFile,
) -> Result<Vec<String>, ConfigError> {
    let (values, origin) = if !args.tls_san.is_empty() {
        (args.tls_san.clone(), origin_of(matches, "tls-san"))
    } else {
        let values = match file.values.get("tls-san") {
            Some(FileValue::List(v)) => v.clone(),
            Some(FileValue::One(v)) => vec![v.clone()],
            None => Vec::new(),
        };
        (values, Origin::File(file.path.clone()))
    };
    let mut sans = Vec::new();
    for value in values {
        let raw = Raw {
            flag: "tls-san",
            value: value.trim().to_string(),
            origin: origin.clone(),
        };
        let san = checks::san(&raw)?;
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    Ok(sans)
}

fn token(
    args: &ServerArgs,
    matches: &ArgMatches,
    file: &ConfigFile,
) -> Result<Option<String>, ConfigError> {
    token_from(matches, file, args.token.clone(), args.token_file.clone())
}

/// The token from `--token` or `--token-file` (at most one of them), as
/// `skiff server` and `skiff agent` read it.
pub(crate) fn token_from(
    matches: &ArgMatches,
    file: &ConfigFile,
    token: Option<String>,
    token_file: Option<String>,
) -> Result<Option<String>, ConfigError> {
    let token = pick_one(matches, file, "token", token, "");
    let token_file = pick_one(matches, file, "token-file", token_file, "");
    if !token.value.trim().is_empty() && !token_file.value.is_empty() {
        return Err(ConfigError::Conflict(
            "both --token and --token-file are set; give only one of them".to_string(),
        ));
    }
    let from_file = if token_file.value.is_empty() {
        None
    } else {
        let text = std::fs::read_to_string(&token_file.value).map_err(|source| {
            ConfigError::TokenFile {
                path: token_file.value.clone(),
                source,
            }
        })?;
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(token_file.invalid("the file is empty; write the token into it"));
        }
        Some(text)
    };
    match (token.value.trim(), from_file) {
        ("", found) => Ok(found),
        (given, _) if given.chars().any(char::is_whitespace) => Err(ConfigError::Invalid {
            flag: "token",
            value: "<hidden>".to_string(),
            origin: token.origin,
            fix: "a token must not contain spaces".to_string(),
        }),
        (given, _) => Ok(Some(given.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag can also be set in the config file: FLAGS (the file's
    /// known keys) names each long flag but `--config` itself.
    #[test]
    fn config_file_knows_every_flag() {
        let command = <ServerArgs as clap::Args>::augment_args(clap::Command::new("server"));
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "config" {
                continue;
            }
            assert!(FLAGS.contains(&long), "--{long} is missing from FLAGS");
        }
    }
}
