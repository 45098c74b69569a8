//! The cluster certificate authority and the certificates it issues.
//!
//! One ECDSA P-256 CA, valid ten years, signs the serving certificate and
//! every client certificate; clients trust it through the kubeconfig and the
//! `/cacerts` endpoint, and the server trusts client certificates it signed.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};

use super::{PkiError, files};

/// How long the CA is valid.
const CA_DAYS: i64 = 3650;

/// The cluster CA: its certificate (PEM, byte for byte as on disk) and key.
pub struct Ca {
    pub cert_pem: String,
    key: KeyPair,
    /// True when this start generated the CA (every leaf must be reissued).
    pub created: bool,
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
}

/// The subject and names of a certificate to issue.
pub struct LeafSpec<'a> {
    pub common_name: &'a str,
    pub organizations: &'a [&'a str],
    pub sans: &'a [String],
    pub usage: Usage,
    pub days: i64,
}

impl Ca {
    /// Loads the CA from `cert_path` and `key_path`, or creates both when
    /// neither exists.
    pub fn load_or_create(cert_path: &Path, key_path: &Path) -> Result<Ca, PkiError> {
        match (
            files::read_optional(cert_path)?,
            files::read_optional(key_path)?,
        ) {
            (Some(cert_pem), Some(key_pem)) => {
                let key =
                    KeyPair::from_pem(&key_pem).map_err(|e| PkiError::bad_file(key_path, e))?;
                Issuer::from_ca_cert_pem(&cert_pem, &key)
                    .map_err(|e| PkiError::bad_file(cert_path, e))?;
                Ok(Ca {
                    cert_pem,
                    key,
                    created: false,
                })
            }
            (None, None) => {
                let key = KeyPair::generate().map_err(PkiError::Generate)?;
                let mut params = CertificateParams::default();
                let mut dn = DistinguishedName::new();
                dn.push(
                    DnType::CommonName,
                    format!("skiff-ca@{}", jiff::Timestamp::now().as_second()),
                );
                params.distinguished_name = dn;
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                set_validity(&mut params, CA_DAYS)?;
                let cert = params.self_signed(&key).map_err(PkiError::Generate)?;
                let cert_pem = cert.pem();
                files::write(key_path, key.serialize_pem().as_bytes(), files::PRIVATE)?;
                files::write(cert_path, cert_pem.as_bytes(), files::PUBLIC)?;
                Ok(Ca {
                    cert_pem,
                    key,
                    created: true,
                })
            }
            (Some(_), None) => Err(PkiError::Incomplete {
                present: cert_path.to_path_buf(),
                missing: key_path.to_path_buf(),
            }),
            (None, Some(_)) => Err(PkiError::Incomplete {
                present: key_path.to_path_buf(),
                missing: cert_path.to_path_buf(),
            }),
        }
    }

    /// Issues a certificate with a fresh key; returns (cert PEM, key PEM).
    pub fn issue(&self, spec: &LeafSpec<'_>) -> Result<(String, String), PkiError> {
        let issuer =
            Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(PkiError::Generate)?;
        let key = KeyPair::generate().map_err(PkiError::Generate)?;
        let mut params = CertificateParams::new(spec.sans.to_vec()).map_err(PkiError::Generate)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name);
        for org in spec.organizations {
            dn.push(DnType::OrganizationName, *org);
        }
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![match spec.usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, spec.days)?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(PkiError::Generate)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Valid from yesterday (tolerating clock skew) for `days` days, with a
/// random serial number.
fn set_validity(params: &mut CertificateParams, days: i64) -> Result<(), PkiError> {
    let today = jiff::Zoned::now().date();
    let ymd = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(i32::from(d.year()), d.month() as u8, d.day() as u8)
    };
    let start = today
        .yesterday()
        .map_err(|e| PkiError::Clock(e.to_string()))?;
    let end = today
        .checked_add(jiff::Span::new().days(days))
        .map_err(|e| PkiError::Clock(e.to_string()))?;
    params.not_before = ymd(start);
    params.not_after = ymd(end);
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(())
}
