//! Secrets at rest and client certificates.
//!
//! User passwords are stretched with PBKDF2-HMAC-SHA256 (they are low-entropy and checked once per
//! sign-in). Client secrets are high-entropy random strings checked on every token request, so a
//! single SHA-256 is the right cost; both are compared in constant time.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use x509_parser::pem::Pem;

use crate::util::{b64url, b64url_decode, ct_eq, random_token, sha256, sha256_hex};

const PBKDF2_ITERATIONS: u32 = 100_000;

pub(crate) fn hash_password(password: &str) -> String {
    let salt = random_token(16);
    let iterations = NonZeroU32::new(PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt.as_bytes(),
        password.as_bytes(),
        &mut out,
    );
    format!("pbkdf2-sha256${PBKDF2_ITERATIONS}${salt}${}", b64url(&out))
}

pub(crate) fn verify_password(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iterations), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(iterations), Some(expected)) = (
        iterations.parse::<u32>().ok().and_then(NonZeroU32::new),
        b64url_decode(hash),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt.as_bytes(),
        password.as_bytes(),
        &expected,
    )
    .is_ok()
}

pub fn hash_client_secret(secret: &str) -> String {
    format!("sha256${}", sha256_hex(secret.as_bytes()))
}

pub(crate) fn verify_client_secret(stored: &str, secret: &str) -> bool {
    let Some(expected) = stored.strip_prefix("sha256$") else {
        return false;
    };
    ct_eq(
        expected.as_bytes(),
        sha256_hex(secret.as_bytes()).as_bytes(),
    )
}

pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// A certificate registered in an application's `keyCredentials`.
#[derive(Debug, Clone)]
pub(crate) struct ClientCertificate {
    /// PKCS#1 `RSAPublicKey` DER, what the RSA verifier takes.
    pub(crate) rsa_public_key: Vec<u8>,
    /// base64url SHA-1 of the DER certificate (`x5t`).
    pub(crate) x5t: String,
    /// base64url SHA-256 of the DER certificate (`x5t#S256`).
    pub(crate) x5t_s256: String,
    pub(crate) not_after: i64,
}

impl ClientCertificate {
    pub(crate) fn parse(key: &str) -> Result<ClientCertificate, String> {
        let der = if key.contains("-----BEGIN") {
            // The first CERTIFICATE block; other blocks (a private key pasted along) are skipped.
            let pem = Pem::iter_from_buffer(key.as_bytes())
                .find(|block| block.as_ref().map_or(true, |b| b.label == "CERTIFICATE"))
                .ok_or("no CERTIFICATE block in the PEM text")?
                .map_err(|e| format!("bad PEM: {e}"))?;
            pem.contents
        } else {
            let compact: String = key.chars().filter(|c| !c.is_whitespace()).collect();
            STANDARD
                .decode(compact)
                .map_err(|e| format!("bad base64: {e}"))?
        };
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let spki = cert.public_key();
        if spki.algorithm.algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
            return Err("only RSA certificates are supported".into());
        }
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        Ok(ClientCertificate {
            rsa_public_key: spki.subject_public_key.data.to_vec(),
            x5t: b64url(sha1.as_ref()),
            x5t_s256: b64url(&sha256(&der)),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// A new random secret (base64url, `bytes` of entropy): demo passwords and client secrets.
pub fn generate_secret(bytes: usize) -> String {
    random_token(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed RSA certificate: its DER and its PEM text.
    fn rsa_certificate() -> (Vec<u8>, String) {
        use aws_lc_rs::encoding::AsDer;
        let pair =
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key");
        let pkcs8 = pair.as_der().expect("PKCS#8").as_ref().to_vec();
        let key =
            rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.into(), &rcgen::PKCS_RSA_SHA256)
                .expect("rcgen key");
        let cert = rcgen::CertificateParams::default()
            .self_signed(&key)
            .expect("certificate");
        (cert.der().to_vec(), cert.pem())
    }

    #[test]
    fn client_certificates_parse_from_pem_or_base64_der() {
        let (der, pem) = rsa_certificate();
        let expected = b64url(&sha256(&der));
        let from_pem = ClientCertificate::parse(&pem).expect("PEM");
        assert_eq!(from_pem.x5t_s256, expected);
        // A private key pasted before the certificate is skipped, not taken for it.
        let with_key =
            format!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{pem}");
        assert_eq!(
            ClientCertificate::parse(&with_key)
                .expect("PEM after a key")
                .x5t_s256,
            expected
        );
        let from_base64 = ClientCertificate::parse(&STANDARD.encode(&der)).expect("base64");
        assert_eq!(from_base64.x5t_s256, expected);
        let no_certificate = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(ClientCertificate::parse(no_certificate).is_err());
        let broken = pem.replace('M', "!");
        assert!(ClientCertificate::parse(&broken).is_err());
    }

    #[test]
    fn password_hashes_verify_only_the_right_password() {
        let h = hash_password("correct horse");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsE"));
        assert!(!verify_password("garbage", "correct horse"));
        assert_ne!(h, hash_password("correct horse"), "salted");
    }

    #[test]
    fn client_secret_hashes() {
        let h = hash_client_secret("abc");
        assert!(verify_client_secret(&h, "abc"));
        assert!(!verify_client_secret(&h, "abd"));
        assert!(!verify_client_secret("plain", "plain"));
    }
}
