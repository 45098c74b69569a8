//! The flags of `skiff agent` and the validated [`JoinConfig`] they make.
//!
//! As for `skiff server`: each flag is also read from `SKIFF_<FLAG>` (the
//! server URL from `SKIFF_URL`, as k3s's `K3S_URL`) and from the config
//! file (keys = long flag names); flag > env > file > default, every value
//! checked in one place by the same checks as the server's.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::ArgMatches;

use super::config_file::ConfigFile;
use super::server::checks;
use super::server::{ConfigError, DEFAULT_CONFIG, pick_one, token_from};
use crate::agent::join::ServerUrl;

/// Flags of `skiff agent`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentArgs {
    /// YAML config file whose keys are the long flag names [default: /etc/skiff/config.yaml]
    #[arg(long, env = "SKIFF_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The server to join, such as https://10.0.0.1:6443
    #[arg(long, env = "SKIFF_URL", value_name = "URL")]
    pub server: Option<String>,
    /// The join token (from <data-dir>/server/token on the server, or `skiff token create`)
    #[arg(
        long,
        env = "SKIFF_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// File holding the join token
    #[arg(long, env = "SKIFF_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<String>,
    /// Directory holding the node's state (credentials, containerd, pods) [default: /var/lib/skiff]
    #[arg(long, env = "SKIFF_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Name of this node [default: the hostname]
    #[arg(long, env = "SKIFF_NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,
    /// Address of this node [default: the IP of the default route's interface]
    #[arg(long, env = "SKIFF_NODE_IP", value_name = "IP")]
    pub node_ip: Option<String>,
    /// Interface other nodes reach this one through (the overlay's uplink; its address is the node's when --node-ip is not given)
    #[arg(long, env = "SKIFF_FLANNEL_IFACE", value_name = "IFACE")]
    pub flannel_iface: Option<String>,
    /// Existing CRI socket to use instead of launching containerd (path or unix:// URL)
    #[arg(long, env = "SKIFF_CONTAINER_RUNTIME_ENDPOINT", value_name = "SOCKET")]
    pub container_runtime_endpoint: Option<String>,
    /// The node's resolver file: upstreams of the cluster DNS and pods' dnsPolicy Default [default: /etc/resolv.conf]
    #[arg(long, env = "SKIFF_RESOLV_CONF", value_name = "FILE")]
    pub resolv_conf: Option<String>,
    /// Private registries file (mirrors, auth, TLS) [default: /etc/skiff/registries.yaml]
    #[arg(long, env = "SKIFF_PRIVATE_REGISTRY", value_name = "FILE")]
    pub private_registry: Option<String>,
    /// Pull only through the mirrors in the private registries file, never from the registries themselves
    #[arg(long, env = "SKIFF_DISABLE_DEFAULT_REGISTRY_ENDPOINT", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub disable_default_registry_endpoint: Option<String>,
    /// Port of the node's kubelet HTTPS server (logs, exec, port-forward) [default: 10250]
    #[arg(long, env = "SKIFF_KUBELET_PORT", value_name = "PORT")]
    pub kubelet_port: Option<String>,
    /// Size at which a container's log file is rotated, e.g. 10Mi [default: 10Mi]
    #[arg(long, env = "SKIFF_CONTAINER_LOG_MAX_SIZE", value_name = "SIZE")]
    pub container_log_max_size: Option<String>,
    /// Log files kept per container, the live one included (at least 2) [default: 5]
    #[arg(long, env = "SKIFF_CONTAINER_LOG_MAX_FILES", value_name = "COUNT")]
    pub container_log_max_files: Option<String>,
    /// Log level (error, warn, info, debug, trace) or a tracing filter [default: info]
    #[arg(long, env = "SKIFF_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// The long flag names, which are also the config file's keys.
pub const FLAGS: &[&str] = &[
    "server",
    "token",
    "token-file",
    "data-dir",
    "node-name",
    "node-ip",
    "flannel-iface",
    "container-runtime-endpoint",
    "resolv-conf",
    "private-registry",
    "disable-default-registry-endpoint",
    "kubelet-port",
    "container-log-max-size",
    "container-log-max-files",
    "log-level",
];

/// The settings `skiff agent` runs with, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinConfig {
    pub server: ServerUrl,
    /// The token as given.
    pub token: String,
    /// The CA hash a `K10` token pins; `None` for a bare secret.
    pub ca_hash: Option<String>,
    pub data_dir: PathBuf,
    pub node_name: String,
    pub node_ip: IpAddr,
    /// Whether `--node-ip` was given (else the node IP was detected).
    pub node_ip_given: bool,
    pub flannel_iface: Option<String>,
    pub container_runtime_endpoint: Option<PathBuf>,
    pub resolv_conf: PathBuf,
    pub private_registry: PathBuf,
    pub disable_default_registry_endpoint: bool,
    pub kubelet_port: u16,
    pub container_log_max_size: u64,
    pub container_log_max_files: u32,
    pub log_level: String,
}

/// Merges flags/env, the config file and the defaults into a validated
/// [`JoinConfig`].
pub fn resolve(args: &AgentArgs, matches: &ArgMatches) -> Result<JoinConfig, ConfigError> {
    let (config_path, explicit) = match &args.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let file = ConfigFile::load(&config_path, explicit, FLAGS)?;
    let pick = |flag: &'static str, given: &Option<String>, default: &str| {
        pick_one(matches, &file, flag, given.clone(), default)
    };

    let server_raw = pick("server", &args.server, "");
    if server_raw.value.trim().is_empty() {
        return Err(ConfigError::Conflict(
            "no server to join: give --server https://HOST:6443 (or SKIFF_URL)".to_string(),
        ));
    }
    let server = ServerUrl::parse(&server_raw.value).map_err(|fix| server_raw.invalid(fix))?;
    let token = token_from(matches, &file, args.token.clone(), args.token_file.clone())?
        .ok_or_else(|| {
            ConfigError::Conflict(
                "no join token: give --token (or SKIFF_TOKEN, or --token-file) with the token in <data-dir>/server/token on the server".to_string(),
            )
        })?;
    let ca_hash = crate::pki::token::parse_join(&token)
        .map_err(|e| ConfigError::Invalid {
            flag: "token",
            value: "<hidden>".to_string(),
            origin: super::server::Origin::Flag,
            fix: e.to_string(),
        })?
        .ca_hash
        .map(str::to_ascii_lowercase);
    let data_dir = checks::path(&pick("data-dir", &args.data_dir, "/var/lib/skiff"))?;
    let node_name = pick("node-name", &args.node_name, "");
    let node_name = if node_name.value.is_empty() {
        super::host::hostname().to_ascii_lowercase()
    } else {
        checks::domain(&node_name)?
    };
    let node_ip = pick("node-ip", &args.node_ip, "");
    let node_ip_given = !node_ip.value.is_empty();
    let node_ip = if node_ip_given {
        checks::ip(&node_ip)?
    } else {
        super::host::primary_ip()
    };
    let iface = pick("flannel-iface", &args.flannel_iface, "");
    let flannel_iface = if iface.value.is_empty() {
        None
    } else {
        Some(checks::interface(&iface)?)
    };
    let endpoint = pick(
        "container-runtime-endpoint",
        &args.container_runtime_endpoint,
        "",
    );
    let container_runtime_endpoint =
        (!endpoint.value.is_empty()).then(|| PathBuf::from(endpoint.value));
    let resolv_conf = checks::path(&pick(
        "resolv-conf",
        &args.resolv_conf,
        crate::dns::resolv::DEFAULT_PATH,
    ))?;
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
    let log_level = checks::log_level(&pick("log-level", &args.log_level, "info"))?;
    Ok(JoinConfig {
        server,
        token,
        ca_hash,
        data_dir,
        node_name,
        node_ip,
        node_ip_given,
        flannel_iface,
        container_runtime_endpoint,
        resolv_conf,
        private_registry,
        disable_default_registry_endpoint,
        kubelet_port,
        container_log_max_size,
        container_log_max_files,
        log_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    #[derive(Debug, clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: AgentArgs,
    }

    fn resolve_args(argv: &[&str]) -> Result<JoinConfig, ConfigError> {
        let mut full = vec!["agent"];
        full.extend_from_slice(argv);
        let matches = Wrapper::command()
            .try_get_matches_from(full)
            .expect("clap parses");
        let wrapper = Wrapper::from_arg_matches(&matches).expect("args");
        resolve(&wrapper.args, &matches)
    }

    /// Every flag can also be set in the config file.
    #[test]
    fn config_file_knows_every_flag() {
        for arg in Wrapper::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long != "config" {
                assert!(FLAGS.contains(&long), "--{long} is missing from FLAGS");
            }
        }
    }

    #[test]
    fn flags_make_a_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("config.yaml");
        std::fs::write(&empty, "").expect("write");
        let hash = "AB".repeat(32);
        let token = format!("K10{hash}::server:s3cret");
        let config = resolve_args(&[
            "--config",
            &empty.display().to_string(),
            "--server",
            "https://10.0.0.1:6443",
            "--token",
            &token,
            "--node-name",
            "worker-1",
            "--node-ip",
            "10.0.0.11",
            "--kubelet-port",
            "10251",
        ])
        .expect("valid");
        assert_eq!(config.server.url, "https://10.0.0.1:6443");
        assert_eq!(config.ca_hash, Some(hash.to_ascii_lowercase()));
        assert_eq!(config.token, token);
        assert_eq!(config.node_name, "worker-1");
        assert_eq!(config.node_ip, "10.0.0.11".parse::<IpAddr>().expect("ip"));
        assert_eq!(config.kubelet_port, 10251);
    }

    #[test]
    fn missing_or_bad_values_name_what_to_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, "server: https://10.0.0.1:6443\ntoken: s3cret\n").expect("write");
        let config_flag = file.display().to_string();
        let from_file = resolve_args(&["--config", &config_flag]).expect("from the file");
        assert_eq!(from_file.server.port, 6443);
        assert_eq!(from_file.ca_hash, None);

        let empty = dir.path().join("empty.yaml");
        std::fs::write(&empty, "").expect("write");
        let empty_flag = empty.display().to_string();
        let err = resolve_args(&["--config", &empty_flag, "--token", "x"]).unwrap_err();
        assert!(err.to_string().contains("--server"), "{err}");
        let err =
            resolve_args(&["--config", &empty_flag, "--server", "https://h:6443"]).unwrap_err();
        assert!(err.to_string().contains("--token"), "{err}");
        let err = resolve_args(&[
            "--config",
            &empty_flag,
            "--server",
            "http://h:6443",
            "--token",
            "x",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("https://"), "{err}");
        let err = resolve_args(&[
            "--config",
            &empty_flag,
            "--server",
            "https://h:6443",
            "--token",
            "K10abc::server:x",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("K10<64 hex digits>"), "{err}");
    }
}
