//! Token-signing keys: RSA-2048 pairs with self-signed certificates, persisted in the store so a
//! restart keeps validating earlier tokens, and published as JWKS with `kid == x5t` (the SHA-1
//! thumbprint of the `x5c` certificate, as Entra does).
//!
//! Signing uses a parsed `aws_lc_rs` key pair held for the life of the process. jsonwebtoken's
//! `encode` re-parses the DER key on every call, which costs a measurable share of an RSA sign, so
//! the compact JWS is assembled here; verification uses jsonwebtoken.

use std::collections::HashMap;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use easyauth_store::{SigningKeyRecord, Store, StoreError};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::util::{b64url, now};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid} in the store is unusable: {reason}")]
    Corrupt { kid: String, reason: String },
    #[error("cannot create a signing key: {0}")]
    Create(String),
}

struct PublishedKey {
    kid: String,
    n: String,
    e: String,
    x5c: String,
    decoding: DecodingKey,
}

/// The active signing key plus every published key.
pub struct SigningKeys {
    kid: String,
    pair: RsaKeyPair,
    rng: SystemRandom,
    /// Pre-encoded JOSE headers: v2 tokens carry `kid`, v1 tokens `x5t` and `kid`.
    header_v2: String,
    header_v1: String,
    published: Vec<PublishedKey>,
    by_kid: HashMap<String, usize>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("kid", &self.kid)
            .field("published", &self.by_kid.len())
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderStyle {
    V1,
    V2,
}

impl SigningKeys {
    /// Loads the keys from the store, creating the first one if there is none.
    pub async fn load_or_create(store: &dyn Store) -> Result<SigningKeys, KeyError> {
        let mut records = store.list_signing_keys().await?;
        if !records.iter().any(|r| !r.retired) {
            let record = tokio::task::spawn_blocking(generate)
                .await
                .map_err(|e| KeyError::Create(e.to_string()))??;
            store.insert_signing_key(&record).await?;
            records = store.list_signing_keys().await?;
        }
        // The newest active key signs; ties are broken by kid so every instance picks the same.
        records.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        let Some(active) = records.iter().rev().find(|r| !r.retired) else {
            return Err(KeyError::Create(
                "no active signing key after creating one".into(),
            ));
        };
        let corrupt = |r: &SigningKeyRecord, reason: String| KeyError::Corrupt {
            kid: r.kid.clone(),
            reason,
        };
        let pair = RsaKeyPair::from_pkcs8(&active.pkcs8_der)
            .map_err(|e| corrupt(active, e.to_string()))?;
        let header_v2 = b64url(
            json!({"typ": "JWT", "alg": "RS256", "kid": active.kid})
                .to_string()
                .as_bytes(),
        );
        let header_v1 = b64url(
            json!({"typ": "JWT", "alg": "RS256", "x5t": active.kid, "kid": active.kid})
                .to_string()
                .as_bytes(),
        );
        let mut published = Vec::new();
        let mut by_kid = HashMap::new();
        for record in &records {
            let key = RsaKeyPair::from_pkcs8(&record.pkcs8_der)
                .map_err(|e| corrupt(record, e.to_string()))?;
            let (n, e) = public_components(&key).map_err(|reason| corrupt(record, reason))?;
            let decoding = DecodingKey::from_rsa_components(&n, &e)
                .map_err(|e| corrupt(record, e.to_string()))?;
            by_kid.insert(record.kid.clone(), published.len());
            published.push(PublishedKey {
                kid: record.kid.clone(),
                n,
                e,
                x5c: STANDARD.encode(&record.cert_der),
                decoding,
            });
        }
        Ok(SigningKeys {
            kid: active.kid.clone(),
            pair,
            rng: SystemRandom::new(),
            header_v2,
            header_v1,
            published,
            by_kid,
        })
    }

    pub fn active_kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as an RS256 compact JWS.
    pub fn sign(&self, style: HeaderStyle, claims: &impl Serialize) -> Result<String, String> {
        let header = match style {
            HeaderStyle::V1 => &self.header_v1,
            HeaderStyle::V2 => &self.header_v2,
        };
        let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let mut jws = String::with_capacity(header.len() + payload.len() * 4 / 3 + 350);
        jws.push_str(header);
        jws.push('.');
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, jws.as_bytes(), &mut signature)
            .map_err(|e| e.to_string())?;
        jws.push('.');
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
        Ok(jws)
    }

    /// The JWKS document; `issuer` is set on v2 key sets only.
    pub fn jwks(&self, issuer: Option<&str>) -> Value {
        let keys: Vec<Value> = self
            .published
            .iter()
            .map(|k| {
                let mut m = Map::new();
                m.insert("kty".into(), "RSA".into());
                m.insert("use".into(), "sig".into());
                m.insert("kid".into(), k.kid.clone().into());
                m.insert("x5t".into(), k.kid.clone().into());
                m.insert("n".into(), k.n.clone().into());
                m.insert("e".into(), k.e.clone().into());
                m.insert("x5c".into(), json!([k.x5c]));
                if let Some(issuer) = issuer {
                    m.insert("issuer".into(), issuer.into());
                }
                Value::Object(m)
            })
            .collect();
        json!({ "keys": keys })
    }

    /// Verifies the signature of a token this identity provider issued and returns its claims.
    /// Only RS256 is accepted, whatever the header says; times are checked by the caller.
    pub fn verify_own(&self, token: &str) -> Result<Map<String, Value>, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(VerifyError::Algorithm);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let key = self
            .by_kid
            .get(&kid)
            .map(|&i| &self.published[i])
            .ok_or(VerifyError::UnknownKey)?;
        // The signature alone: the claims are the caller's to judge (a claim of an unexpected
        // type, e.g. an array `sub`, is not a bad signature).
        let (message, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
        let payload = match message.split_once('.') {
            Some((_, payload)) if !payload.contains('.') => payload,
            _ => return Err(VerifyError::Malformed),
        };
        if !jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &key.decoding,
            Algorithm::RS256,
        )
        .unwrap_or(false)
        {
            return Err(VerifyError::Signature);
        }
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| VerifyError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| VerifyError::Malformed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is not a well-formed JWS")]
    Malformed,
    #[error("the token's algorithm is not RS256")]
    Algorithm,
    #[error("no published key has the token's kid")]
    UnknownKey,
    #[error("the signature does not verify")]
    Signature,
}

fn public_components(pair: &RsaKeyPair) -> Result<(String, String), String> {
    // The public key DER is PKCS#1 RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }.
    let der = pair.public_key().as_ref();
    let (_, seq) =
        x509_parser::der_parser::der::parse_der_sequence(der).map_err(|e| e.to_string())?;
    let items = seq.as_sequence().map_err(|e| e.to_string())?;
    let [n, e] = items.as_slice() else {
        return Err("unexpected RSA public key layout".into());
    };
    let strip = |b: &[u8]| {
        let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
        b[start..].to_vec()
    };
    let n = strip(n.as_slice().map_err(|e| e.to_string())?);
    let e = strip(e.as_slice().map_err(|e| e.to_string())?);
    Ok((b64url(&n), b64url(&e)))
}

fn generate() -> Result<SigningKeyRecord, KeyError> {
    let create = |e: &dyn std::fmt::Display| KeyError::Create(e.to_string());
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| create(&e))?;
    let pkcs8 = pair.as_der().map_err(|e| create(&e))?;
    let pkcs8 = pkcs8.as_ref().to_vec();
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &pkcs8.clone().into(),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|e| create(&e))?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "easyauth token signing");
    params.distinguished_name = dn;
    let issued = time::OffsetDateTime::now_utc();
    params.not_before = issued - time::Duration::days(1);
    params.not_after = issued + time::Duration::days(5 * 365);
    let cert = params.self_signed(&key).map_err(|e| create(&e))?;
    let cert_der = cert.der().to_vec();
    let thumbprint =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert_der);
    Ok(SigningKeyRecord {
        kid: b64url(thumbprint.as_ref()),
        pkcs8_der: pkcs8,
        cert_der,
        created_at: now(),
        retired: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signs_and_verifies_and_survives_reload() {
        let store = easyauth_store::MemoryStore::new();
        let keys = SigningKeys::load_or_create(&store).await.expect("keys");
        assert_eq!(
            keys.active_kid().len(),
            27,
            "kid is unpadded base64url SHA-1"
        );
        let token = keys
            .sign(HeaderStyle::V2, &json!({"aud": "x", "n": 1}))
            .expect("sign");
        let claims = keys.verify_own(&token).expect("verify");
        assert_eq!(claims["aud"], "x");
        // Found by fuzzing: claims of unusual types are the caller's to judge; the signature of
        // such a token is still good (it used to be reported as a bad signature).
        let odd = keys
            .sign(
                HeaderStyle::V1,
                &json!({"sub": ["g1", "g2"], "exp": "soon"}),
            )
            .expect("sign");
        assert_eq!(keys.verify_own(&odd).expect("verify")["sub"][1], "g2");
        let mut extra = odd.clone();
        extra.insert_str(odd.find('.').expect("dot") + 1, "e30.");
        assert_eq!(keys.verify_own(&extra).err(), Some(VerifyError::Malformed));
        let reloaded = SigningKeys::load_or_create(&store).await.expect("reload");
        assert_eq!(reloaded.active_kid(), keys.active_kid());
        assert!(reloaded.verify_own(&token).is_ok());

        let mut tampered = token.clone();
        tampered.replace_range(
            token.len() - 5..token.len() - 4,
            if token.ends_with('A') { "B" } else { "A" },
        );
        assert_eq!(
            keys.verify_own(&tampered).err(),
            Some(VerifyError::Signature)
        );
        // alg=none and HS256 keyed with the public key must be refused.
        let body = token.split('.').nth(1).expect("payload");
        let none = format!("{}.{body}.", b64url(br#"{"alg":"none","kid":"x"}"#));
        assert!(keys.verify_own(&none).is_err());
        let hs = format!(
            "{}.{body}.AAAA",
            b64url(format!(r#"{{"alg":"HS256","kid":"{}"}}"#, keys.kid).as_bytes())
        );
        assert_eq!(keys.verify_own(&hs).err(), Some(VerifyError::Algorithm));
    }
}
