//! `skiff server`: starts the control plane from a validated configuration.
//!
//! The order is: logging, PKI (CA, certificates, token, kubeconfig), the
//! store, the API server, node IPAM, the scheduler and controllers
//! (in-process clients of the API) and (unless `--disable-agent`) the
//! server's own node, then the HTTPS listener. Any failure ends the
//! process with its message; SIGTERM or SIGINT shut it down gracefully.

pub mod gate;
pub mod join;
pub mod kubernetes_endpoints;
pub mod listener;
pub mod lock;
pub mod manifests;
pub mod node_labels;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::agent::AgentConfig;
use crate::api::{ApiConfig, ApiError, ApiServer};
use crate::auth::authn::Authenticator;
use crate::auth::jwt::JwtError;
use crate::auth::serviceaccount::{TokenIssuer, issuer_for};
use crate::auth::token::ServerTokenAuthenticator;
use crate::auth::x509::CertAuthenticator;
use crate::auth::{AuthError, UserInfo};
use crate::cli::server::ServerConfig;
use crate::pki::{self, PkiError, PkiParams};
use crate::store::{self, StoreError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("opening the datastore: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the service-account signing key: {0}")]
    ServiceAccountKey(#[from] JwtError),
    #[error(transparent)]
    Listener(#[from] listener::ListenerError),
    #[error("the API server's kubelet client: {0}")]
    KubeletClient(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs the server until it is told to stop; the exit code says whether it
/// stopped on request (0) or failed (1, with the reason on stderr).
pub fn run(config: ServerConfig) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)
        .and_then(|runtime| runtime.block_on(serve(config)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServerConfig) -> Result<(), ServerError> {
    let started = Instant::now();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), data_dir = %config.data_dir.display(), "starting skiff server");
    // Held until this function returns, that is for the server's lifetime.
    let _data_dir_lock = lock::acquire(&config.data_dir)?;

    let pki = pki::ensure(&PkiParams {
        data_dir: config.data_dir.clone(),
        hostname: crate::cli::host::hostname(),
        node_ips: node_ips(&config),
        service_cidr: config.service_cidr,
        cluster_domain: config.cluster_domain.clone(),
        tls_sans: config.tls_san.clone(),
        token: config.token.clone(),
        kubeconfig_server: kubeconfig_server(&config),
        kubeconfig_path: config.write_kubeconfig.clone(),
        kubeconfig_mode: config.write_kubeconfig_mode,
    })?;
    tracing::info!(path = %config.write_kubeconfig.display(), "wrote the admin kubeconfig");

    let store = store::open(config.datastore_endpoint.as_deref(), &config.data_dir).await?;
    let api = ApiServer::new(
        store,
        ApiConfig {
            cluster_cidr: config.cluster_cidr,
            service_cidr: config.service_cidr,
            cluster_dns: config.cluster_dns,
            cluster_domain: config.cluster_domain.clone(),
            service_node_port_range: config.service_node_port_range,
            advertise_address: config.advertise_address,
            https_port: config.https_listen_port,
        },
    )
    .await?;

    let issuer = Arc::new(TokenIssuer::new(
        &pki.service_account_key_pem,
        issuer_for(&config.cluster_domain),
    )?);
    api.enable_token_requests(Arc::clone(&issuer));

    let settings = crate::controllers::Settings {
        node_monitor_grace_period: config.node_monitor_grace_period,
        pod_gc: crate::controllers::podgc::Settings {
            terminated_threshold: config.terminated_pod_gc_threshold,
            quarantine: config.pod_gc_orphan_quarantine,
        },
        cluster_cidr: config.cluster_cidr,
    };
    let candidacies =
        crate::controllers::start_elected(api.router(), api.caches(), &pki.ca_pem, settings);

    // The deployer applies as an administrator, as k3s' does.
    let mut deployer = UserInfo::component("system:skiff-deploy");
    deployer.groups.insert(0, "system:masters".to_string());
    manifests::start(
        crate::client::in_process(api.router(), deployer),
        manifests::dir(&config.data_dir),
    );

    // The API server's own loopback identity, as upstream's.
    let mut apiserver = UserInfo::component("system:apiserver");
    apiserver.groups.insert(0, "system:masters".to_string());
    tokio::spawn(kubernetes_endpoints::run(
        crate::client::in_process(api.router(), apiserver),
        kubernetes_endpoints::Identity::new(
            &config.node_name,
            config.advertise_address,
            config.https_listen_port,
        ),
    ));

    let clients = CertAuthenticator::new(&pki.ca_pem)?;
    let authenticator = Authenticator::new(vec![
        Arc::new(ServerTokenAuthenticator::new(&pki.token)),
        Arc::new(issuer.authenticator(api.objects())),
        Arc::new(crate::auth::bootstrap::BootstrapTokenAuthenticator::new(
            api.objects(),
        )),
    ]);
    let tokens = crate::kubelet::server::InProcessTokens(authenticator.clone());
    let gate = gate::Gate::new(authenticator, api.router(), pki.ca_pem.clone())
        .with_join(join_supervisor(&config, &api)?);
    let tls = listener::tls_config(&pki.serving_cert_pem, &pki.serving_key_pem, &clients)?;
    let addr = SocketAddr::new(config.bind_address, config.https_listen_port);
    let socket = listener::bind(addr).await?;
    api.enable_kubelet_proxy(
        crate::api::handlers::proxy::KubeletClient::new(&pki.ca_pem, &pki.kubelet_client)
            .map_err(ServerError::KubeletClient)?,
    );
    start_node_roles(&config, &api, &pki, tokens);
    tracing::info!(
        %addr,
        ready_ms = started.elapsed().as_millis() as u64,
        "skiff server is ready"
    );
    notify_ready();
    listener::serve(socket, tls, clients, gate, shutdown_signal()).await;
    for candidacy in candidacies {
        candidacy.resign().await;
    }
    tracing::info!("skiff server stopped");
    Ok(())
}

/// The issuer of joining nodes' credentials. It keeps the node-identity
/// Secrets as an administrator, as k3s's supervisor does.
fn join_supervisor(
    config: &ServerConfig,
    api: &ApiServer,
) -> Result<join::Supervisor, ServerError> {
    let paths = pki::Paths::new(&config.data_dir);
    let ca = pki::ca::Ca::load_or_create(&paths.ca_cert, &paths.ca_key)?;
    let mut supervisor = UserInfo::component("system:skiff-supervisor");
    supervisor.groups.insert(0, "system:masters".to_string());
    let settings = join::ClusterConfig {
        cluster_cidr: config.cluster_cidr,
        service_cidr: config.service_cidr,
        cluster_dns: config.cluster_dns,
        cluster_domain: config.cluster_domain.clone(),
        server: format!(
            "https://{}",
            SocketAddr::new(config.advertise_address, config.https_listen_port)
        ),
        flannel_backend: config.flannel_backend.as_str().to_string(),
    };
    Ok(join::Supervisor::new(
        ca,
        settings,
        crate::client::in_process(api.router(), supervisor),
    ))
}

/// Tells systemd (a `Type=notify` unit) that the server is serving:
/// `READY=1` to `$NOTIFY_SOCKET`, a path or an abstract name (`@...`).
fn notify_ready() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let target = target.to_string_lossy().into_owned();
    let addr = match target.strip_prefix('@') {
        Some(name) => UnixAddr::from_abstract_name(name.as_bytes()),
        None => UnixAddr::from_pathname(&target),
    };
    let sent = addr.and_then(|addr| {
        let socket = UnixDatagram::unbound()?;
        socket.send_to_addr(b"READY=1", &addr)
    });
    if let Err(e) = sent {
        tracing::warn!(socket = %target, error = %e, "cannot notify the service manager");
    }
}

/// Starts this server's own node, unless `--disable-agent`.
fn start_node_roles(
    config: &ServerConfig,
    api: &ApiServer,
    pki: &pki::Pki,
    tokens: crate::kubelet::server::InProcessTokens,
) {
    if config.disable_agent {
        tracing::info!("--disable-agent: running the control plane only, without a node");
        return;
    }
    let kubelet_tls = match pki::kubelet::ensure_serving(
        &config.data_dir,
        &config.node_name,
        &crate::cli::host::hostname(),
        &[config.advertise_address],
    ) {
        Ok(serving) => Some(crate::kubelet::server::ServerTls {
            ca_pem: pki.ca_pem.clone(),
            cert_pem: serving.cert_pem,
            key_pem: serving.key_pem,
            tokens: Some(tokens),
        }),
        Err(e) => {
            tracing::error!(error = %e, "no kubelet serving certificate: the node runs without its kubelet server");
            None
        }
    };
    // The kubelet may not give itself a node-role label (NodeRestriction):
    // the server labels its own node, as k3s does.
    tokio::spawn(node_labels::label_control_plane(
        crate::client::in_process(
            api.router(),
            UserInfo::service_account("kube-system", "node-controller"),
        ),
        config.node_name.clone(),
    ));
    let user = UserInfo::node(&config.node_name);
    crate::agent::spawn(
        crate::client::in_process(api.router(), user),
        AgentConfig {
            data_dir: config.data_dir.clone(),
            node_name: config.node_name.clone(),
            node_ip: config.node_ip.unwrap_or(config.advertise_address),
            container_runtime_endpoint: config.container_runtime_endpoint.clone(),
            private_registry: config.private_registry.clone(),
            disable_default_registry_endpoint: config.disable_default_registry_endpoint,
            cluster_cidr: config.cluster_cidr,
            service_cidr: config.service_cidr,
            version: crate::api::discovery::version()["gitVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            kubelet_port: config.kubelet_port,
            kubelet_tls,
            container_log_max_size: config.container_log_max_size,
            container_log_max_files: config.container_log_max_files,
            overlay: crate::net::overlay::OverlaySettings {
                backend: config.flannel_backend,
                iface: config.flannel_iface.clone(),
                node_ip: config.node_ip,
            },
            dns: crate::dns::DnsSettings {
                cluster_dns: config.cluster_dns,
                cluster_domain: config.cluster_domain.clone(),
                resolv_conf: config.resolv_conf.clone(),
            },
        },
    );
}

/// The addresses clients may use to reach this node: the advertise address
/// and, when the listener is bound to one address, that address.
fn node_ips(config: &ServerConfig) -> Vec<std::net::IpAddr> {
    let mut ips = vec![config.advertise_address];
    if !config.bind_address.is_unspecified() && !ips.contains(&config.bind_address) {
        ips.push(config.bind_address);
    }
    ips
}

/// The URL the admin kubeconfig points at: 127.0.0.1, unless the listener
/// is bound to one specific address (which the serving cert then names).
fn kubeconfig_server(config: &ServerConfig) -> String {
    let ip = config.bind_address;
    let host = if ip.is_unspecified() {
        "127.0.0.1".to_string()
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    format!("https://{host}:{}", config.https_listen_port)
}

/// Completes on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("received SIGINT"),
        _ = terminate => tracing::info!("received SIGTERM"),
    }
}
