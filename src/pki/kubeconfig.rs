//! The admin kubeconfig written for `kubectl`.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::{PkiError, files};

/// Renders a kubeconfig for `server` trusting `ca_pem`, authenticating with
/// the client certificate `cert_pem` / `key_pem`.
pub fn render(
    server: &str,
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<String, PkiError> {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "default",
            "cluster": {
                "server": server,
                "certificate-authority-data": STANDARD.encode(ca_pem),
            },
        }],
        "contexts": [{
            "name": "default",
            "context": {"cluster": "default", "user": "default"},
        }],
        "current-context": "default",
        "preferences": {},
        "users": [{
            "name": "default",
            "user": {
                "client-certificate-data": STANDARD.encode(cert_pem),
                "client-key-data": STANDARD.encode(key_pem),
            },
        }],
    });
    serde_saphyr::to_string(&config).map_err(|e| PkiError::Kubeconfig(e.to_string()))
}

/// Writes `contents` to `path` with `mode`, creating the parent directory.
pub fn write(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        files::ensure_dir(parent, false)?;
    }
    files::write(path, contents.as_bytes(), mode)
}
