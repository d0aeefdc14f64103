//! The local certificate authority.
//!
//! MSAL and azure-identity refuse plain-http authorities, so the identity provider (and later the
//! platform) serve https with a certificate from a CA that easyauth creates once per data dir.
//! The CA's PEM file is what a person or a test tells its clients to trust; server certificates
//! are issued afresh at each start for exactly the host names in use.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// File names inside the data dir.
pub const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
const CA_COMMON_NAME: &str = "easyauth local CA";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a usable CA key: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("cannot issue a certificate: {0}")]
    Issue(String),
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
}

/// A CA whose certificate and key live in a data dir.
#[derive(Debug)]
pub struct LocalCa {
    cert_path: PathBuf,
    cert_pem: String,
    key: KeyPair,
}

impl LocalCa {
    /// Loads the CA from `dir`, creating it (and `dir`) on first use.
    pub fn load_or_create(dir: &Path) -> Result<LocalCa, PkiError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PkiError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if cert_path.exists() && key_path.exists() {
            let key_pem = fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::BadKey {
                path: key_path.clone(),
                reason: e.to_string(),
            })?;
            let cert_pem = fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            return Ok(LocalCa {
                cert_path,
                cert_pem,
                key,
            });
        }
        let key = KeyPair::generate().map_err(|e| PkiError::Issue(e.to_string()))?;
        let mut params = ca_params();
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        let cert = params
            .self_signed(&key)
            .map_err(|e| PkiError::Issue(e.to_string()))?;
        write_private(&key_path, key.serialize_pem().as_bytes()).map_err(io(&key_path))?;
        fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
        Ok(LocalCa {
            cert_path,
            cert_pem: cert.pem(),
            key,
        })
    }

    /// Path of the CA certificate (PEM) that clients must trust.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a server certificate for `hosts` (DNS names or IP addresses) and returns a rustls
    /// configuration serving it with the CA in the chain, offering HTTP/2 and HTTP/1.1.
    pub fn server_config(&self, hosts: &[String]) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let (chain, key) = self.issue_server_cert(hosts)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PkiError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| PkiError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Issues a server certificate for `hosts` as PEM, for servers configured with files
    /// (Redis, PostgreSQL, nginx): the certificate followed by the CA's, and its PKCS#8 key.
    pub fn server_cert_pem(&self, hosts: &[String]) -> Result<(String, String), PkiError> {
        let (leaf, key) = self.issue_leaf(hosts)?;
        Ok((
            format!("{}{}", leaf.pem(), self.cert_pem),
            key.serialize_pem(),
        ))
    }

    fn issue_server_cert(
        &self,
        hosts: &[String],
    ) -> Result<
        (
            Vec<rustls::pki_types::CertificateDer<'static>>,
            rustls::pki_types::PrivateKeyDer<'static>,
        ),
        PkiError,
    > {
        let (leaf, leaf_key) = self.issue_leaf(hosts)?;
        let ca_der = rustls::pki_types::pem::PemObject::from_pem_slice(self.cert_pem.as_bytes())
            .map_err(|e| PkiError::Issue(format!("stored CA certificate is not PEM: {e}")))?;
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        Ok((vec![leaf.der().clone(), ca_der], key))
    }

    fn issue_leaf(&self, hosts: &[String]) -> Result<(rcgen::Certificate, KeyPair), PkiError> {
        let issue = |e: rcgen::Error| PkiError::Issue(e.to_string());
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            hosts.first().map(String::as_str).unwrap_or("localhost"),
        );
        params.distinguished_name = dn;
        for host in hosts {
            let san = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(host.clone().try_into().map_err(issue)?),
            };
            if !params.subject_alt_names.contains(&san) {
                params.subject_alt_names.push(san);
            }
        }
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(365);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate().map_err(issue)?;
        // The issuer is rebuilt from the same deterministic parameters the CA was created with,
        // so its name and key identifier match the stored certificate.
        let ca = Issuer::new(ca_params(), &self.key);
        let leaf = params.signed_by(&leaf_key, &ca).map_err(issue)?;
        Ok((leaf, leaf_key))
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, "easyauth");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Writes a file readable by its owner only (the CA key must not be world-readable).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_created_once_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("easyauth-pki-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = LocalCa::load_or_create(&dir).expect("create");
        let pem = first.cert_pem().to_owned();
        let second = LocalCa::load_or_create(&dir).expect("reload");
        assert_eq!(
            pem,
            second.cert_pem(),
            "a restart must keep the CA clients already trust"
        );
        let config = second.server_config(&["localhost".into(), "127.0.0.1".into()]);
        assert!(config.is_ok(), "{config:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(CA_KEY_FILE))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "CA key must be private");
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
