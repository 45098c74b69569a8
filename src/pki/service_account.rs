//! The service-account signing key: one ECDSA P-256 key (PKCS#8 PEM in
//! `<data-dir>/server/tls/service.key`, mode 0600) that signs every
//! service-account token (ES256). It is created on the first start and kept
//! across restarts, so tokens issued before a restart stay valid.

use std::path::Path;

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};

use super::{PkiError, files};

/// Loads the signing key at `path` (PEM), creating it when missing. A file
/// that is not a P-256 private key is an error: replacing it silently would
/// invalidate every token in use.
pub fn load_or_create(path: &Path) -> Result<String, PkiError> {
    if let Some(pem) = files::read_optional(path)? {
        let key = KeyPair::from_pem(&pem).map_err(|e| PkiError::bad_file(path, e))?;
        if key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(PkiError::bad_file(path, "not an ECDSA P-256 private key"));
        }
        return Ok(pem);
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::Generate)?;
    let pem = key.serialize_pem();
    files::write(path, pem.as_bytes(), files::PRIVATE)?;
    tracing::info!(path = %path.display(), "generated the service-account signing key");
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("service.key");
        let first = load_or_create(&path).expect("create");
        let second = load_or_create(&path).expect("reuse");
        assert_eq!(first, second);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("stat").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_key_is_reported_not_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("service.key");
        std::fs::write(&path, "garbage").expect("write");
        let err = load_or_create(&path).expect_err("damaged");
        assert!(matches!(err, PkiError::BadFile { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "garbage");
    }
}
