//! Client-certificate authentication against the cluster CA.
//!
//! The TLS layer only asks for a certificate and checks that the client holds
//! its key ([`RequestClientCert`]); whether the chain leads to the cluster CA
//! is decided per connection by [`CertAuthenticator`], so a certificate from
//! another CA gets a proper HTTP 401, as upstream does, instead of a TLS alert
//! the user cannot read. The user is the subject's CN; the groups are its O
//! values plus `system:authenticated`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{AuthError, UserInfo};

/// Checks client certificate chains against the cluster CA.
#[derive(Debug, Clone)]
pub struct CertAuthenticator {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl CertAuthenticator {
    /// Trusts the certificates in `ca_pem`.
    pub fn new(ca_pem: &str) -> Result<Self, AuthError> {
        let mut roots = RootCertStore::empty();
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
            let cert: CertificateDer<'static> = cert.map_err(|e| AuthError::Ca(e.to_string()))?;
            roots.add(cert).map_err(|e| AuthError::Ca(e.to_string()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| AuthError::Ca(e.to_string()))?;
        Ok(CertAuthenticator { verifier })
    }

    /// The TLS-level verifier to put into the server config.
    pub fn tls_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(RequestClientCert {
            inner: self.verifier.clone(),
        })
    }

    /// The user a verified chain (end entity first) authenticates as.
    pub fn authenticate(&self, chain: &[CertificateDer<'_>]) -> Result<UserInfo, AuthError> {
        let (end_entity, intermediates) = chain.split_first().ok_or(AuthError::NoCertificate)?;
        self.verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map_err(|e| AuthError::BadCertificate(e.to_string()))?;
        user_of(end_entity)
    }
}

/// The identity a client certificate names.
fn user_of(cert: &CertificateDer<'_>) -> Result<UserInfo, AuthError> {
    let (_, cert) = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| AuthError::BadCertificate(e.to_string()))?;
    let subject = cert.subject();
    let username = subject
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty())
        .ok_or_else(|| AuthError::BadCertificate("the subject has no common name".into()))?
        .to_string();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    groups.push("system:authenticated".to_string());
    Ok(UserInfo {
        username,
        uid: String::new(),
        groups,
        extra: BTreeMap::new(),
    })
}

/// Asks every client for a certificate but accepts any chain (including
/// none) at the TLS layer; only the proof of key possession is checked here.
#[derive(Debug)]
struct RequestClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: clients then send whatever certificate they have, and a
        // wrong one is answered with 401 rather than silently left out.
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
