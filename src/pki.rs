//! The server's PKI: cluster CA, serving and admin certificates, the admin
//! kubeconfig, the service-account signing key and the join token, all under
//! `<data-dir>/server/`.
//!
//! [`ensure`] runs at every start. The first start generates everything;
//! later starts reuse what is on disk (same CA, same files) and reissue only
//! what no longer fits: the serving certificate when its names changed (a new
//! `--tls-san`, a new node IP) and any leaf close to expiry. Private keys and
//! the token are mode 0600.

pub mod ca;
pub mod certs;
pub mod files;
pub mod kubeconfig;
pub mod kubelet;
pub mod service_account;
pub mod token;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

pub use token::ServerToken;

/// Everything that can go wrong setting up the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is damaged ({detail}); restore it from a backup, or delete it to have it regenerated"
    )]
    BadFile { path: PathBuf, detail: String },
    #[error(
        "{present} exists but {missing} does not; restore the missing file, or delete both to generate a new CA (every node must then rejoin)"
    )]
    Incomplete { present: PathBuf, missing: PathBuf },
    #[error("generating a certificate: {0}")]
    Generate(rcgen::Error),
    #[error("cannot compute certificate validity from the system clock: {0}")]
    Clock(String),
    #[error("invalid --token: {0}")]
    BadToken(String),
    #[error("rendering the kubeconfig: {0}")]
    Kubeconfig(String),
}

impl PkiError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        PkiError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn bad_file(path: &Path, detail: impl std::fmt::Display) -> Self {
        PkiError::BadFile {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        }
    }
}

/// What the PKI depends on.
#[derive(Debug, Clone)]
pub struct PkiParams {
    pub data_dir: PathBuf,
    pub hostname: String,
    pub node_ips: Vec<IpAddr>,
    pub service_cidr: IpNet,
    pub cluster_domain: String,
    pub tls_sans: Vec<String>,
    /// The token as given on the command line, if any.
    pub token: Option<String>,
    /// The API URL written into the admin kubeconfig.
    pub kubeconfig_server: String,
    pub kubeconfig_path: PathBuf,
    pub kubeconfig_mode: u32,
}

/// The PKI in effect, loaded into memory.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub token: ServerToken,
    /// Names in the serving certificate.
    pub serving_sans: Vec<String>,
    /// The service-account token signing key (PKCS#8 PEM, ECDSA P-256).
    pub service_account_key_pem: String,
    /// The client certificate the API server presents to kubelets.
    pub kubelet_client: kubelet::CertKey,
}

/// Where each file lives under `<data-dir>/server/`.
pub struct Paths {
    pub tls_dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub kubelet_client_cert: PathBuf,
    pub kubelet_client_key: PathBuf,
    pub service_account_key: PathBuf,
    pub token: PathBuf,
}

impl Paths {
    pub fn new(data_dir: &Path) -> Self {
        let server = data_dir.join("server");
        let tls = server.join("tls");
        Paths {
            ca_cert: tls.join("server-ca.crt"),
            ca_key: tls.join("server-ca.key"),
            serving_cert: tls.join("serving-kube-apiserver.crt"),
            serving_key: tls.join("serving-kube-apiserver.key"),
            admin_cert: tls.join("client-admin.crt"),
            admin_key: tls.join("client-admin.key"),
            kubelet_client_cert: tls.join("client-kube-apiserver-kubelet-client.crt"),
            kubelet_client_key: tls.join("client-kube-apiserver-kubelet-client.key"),
            service_account_key: tls.join("service.key"),
            token: server.join("token"),
            tls_dir: tls,
        }
    }
}

/// Creates or reuses the CA, certificates, token and admin kubeconfig.
pub fn ensure(params: &PkiParams) -> Result<Pki, PkiError> {
    let paths = Paths::new(&params.data_dir);
    files::ensure_dir(&paths.tls_dir, true)?;
    let ca = ca::Ca::load_or_create(&paths.ca_cert, &paths.ca_key)?;
    if ca.created {
        tracing::info!(path = %paths.ca_cert.display(), "generated the cluster CA");
    }

    let sans = certs::serving_sans(
        &params.hostname,
        &params.node_ips,
        &params.service_cidr,
        &params.cluster_domain,
        &params.tls_sans,
    );
    let (serving_cert_pem, serving_key_pem) = leaf(
        &ca,
        &paths.serving_cert,
        &paths.serving_key,
        &ca::LeafSpec {
            common_name: "kube-apiserver",
            organizations: &[],
            sans: &sans,
            usage: ca::Usage::Server,
            days: certs::LEAF_DAYS,
        },
    )?;
    let (admin_cert_pem, admin_key_pem) = leaf(
        &ca,
        &paths.admin_cert,
        &paths.admin_key,
        &ca::LeafSpec {
            common_name: "system:admin",
            organizations: &["system:masters"],
            sans: &[],
            usage: ca::Usage::Client,
            days: certs::LEAF_DAYS,
        },
    )?;

    let (kubelet_client_cert, kubelet_client_key) = leaf(
        &ca,
        &paths.kubelet_client_cert,
        &paths.kubelet_client_key,
        &ca::LeafSpec {
            common_name: kubelet::KUBELET_CLIENT_USER,
            organizations: &[],
            sans: &[],
            usage: ca::Usage::Client,
            days: certs::LEAF_DAYS,
        },
    )?;

    let service_account_key_pem = service_account::load_or_create(&paths.service_account_key)?;

    let token = token::ensure(&paths.token, params.token.as_deref(), &ca.cert_pem)?;

    let config = kubeconfig::render(
        &params.kubeconfig_server,
        &ca.cert_pem,
        &admin_cert_pem,
        &admin_key_pem,
    )?;
    kubeconfig::write(&params.kubeconfig_path, &config, params.kubeconfig_mode)?;

    Ok(Pki {
        ca_pem: ca.cert_pem,
        serving_cert_pem,
        serving_key_pem,
        token,
        serving_sans: sans,
        service_account_key_pem,
        kubelet_client: kubelet::CertKey {
            cert_pem: kubelet_client_cert,
            key_pem: kubelet_client_key,
        },
    })
}

/// Reuses the certificate at `cert_path` when it still fits `spec`, else
/// issues and writes a new one. Returns (cert PEM, key PEM).
fn leaf(
    ca: &ca::Ca,
    cert_path: &Path,
    key_path: &Path,
    spec: &ca::LeafSpec<'_>,
) -> Result<(String, String), PkiError> {
    let names = (spec.usage == ca::Usage::Server).then_some(spec.sans);
    if !ca.created && certs::reusable(cert_path, key_path, names) {
        let cert = files::read_optional(cert_path)?;
        let key = files::read_optional(key_path)?;
        if let (Some(cert), Some(key)) = (cert, key) {
            return Ok((cert, key));
        }
    }
    let (cert, key) = ca.issue(spec)?;
    files::write(key_path, key.as_bytes(), files::PRIVATE)?;
    files::write(cert_path, cert.as_bytes(), files::PUBLIC)?;
    tracing::info!(path = %cert_path.display(), subject = spec.common_name, "issued certificate");
    Ok((cert, key))
}
