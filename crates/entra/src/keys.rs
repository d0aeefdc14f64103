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
    /// Loads the keys from the store, creating the first one if there is none; the newest key
    /// signs (no publish lead: one instance).
    pub async fn load_or_create(store: &dyn Store) -> Result<SigningKeys, KeyError> {
        SigningKeys::load_or_create_with(store, 0).await
    }

    /// Loads the keys, creating the first one if there is none. Several replicas starting
    /// together create exactly one first key (see [`ensure_successor`]). A key signs only once it
    /// has been in the store for `publish_lead` seconds (so every replica re-reading the store in
    /// between publishes it first), except the very first key, which nobody can have published.
    pub async fn load_or_create_with(
        store: &dyn Store,
        publish_lead: i64,
    ) -> Result<SigningKeys, KeyError> {
        let mut records = store.list_signing_keys().await?;
        if !records.iter().any(|r| !r.retired) {
            ensure_successor(store, None).await?;
            records = store.list_signing_keys().await?;
        }
        SigningKeys::from_records(records, now(), publish_lead)
    }

    /// The keys in `records`: all published; the signer is the newest active key created at
    /// least `publish_lead` seconds before `now`, else (only keys younger than that) the oldest
    /// active one. Every replica with the same records and clock picks the same signer.
    pub fn from_records(
        mut records: Vec<SigningKeyRecord>,
        now: i64,
        publish_lead: i64,
    ) -> Result<SigningKeys, KeyError> {
        records.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        let oldest = records.iter().find(|r| !r.retired);
        let ripe = records
            .iter()
            .rev()
            .find(|r| !r.retired && r.created_at.saturating_add(publish_lead) <= now);
        let Some(active) = ripe.or(oldest) else {
            return Err(KeyError::Create(
                "no active signing key in the store".into(),
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

    /// The kids of every published key, oldest first.
    pub fn published_kids(&self) -> Vec<&str> {
        self.published.iter().map(|k| k.kid.as_str()).collect()
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

/// What a successor slot holds: the whole key, so whichever replica reads the slot can insert the
/// key itself (a winner that stopped between claiming and inserting leaves nothing stuck).
#[derive(serde::Serialize, serde::Deserialize)]
struct SlotKey {
    kid: String,
    pkcs8: String,
    cert: String,
    created_at: i64,
}

/// The store setting naming the key that follows `after` (`None`: the first key).
fn successor_slot(after: Option<&str>) -> String {
    format!("idp.signing-key.after.{}", after.unwrap_or("none"))
}

/// Makes sure the key that follows `after` (`None`: the first key) exists, creating it unless a
/// replica already did, and returns it. The successor is claimed through a create-once setting,
/// so however many replicas (or admin commands) race, one key follows another: one rotation.
pub async fn ensure_successor(
    store: &dyn Store,
    after: Option<&str>,
) -> Result<SigningKeyRecord, KeyError> {
    let candidate = tokio::task::spawn_blocking(generate)
        .await
        .map_err(|e| KeyError::Create(e.to_string()))??;
    let encoded = serde_json::to_string(&SlotKey {
        kid: candidate.kid.clone(),
        pkcs8: STANDARD.encode(&candidate.pkcs8_der),
        cert: STANDARD.encode(&candidate.cert_der),
        created_at: candidate.created_at,
    })
    .map_err(|e| KeyError::Create(e.to_string()))?;
    let slot = successor_slot(after);
    let stored = store.get_or_create_setting(&slot, &encoded).await?;
    let corrupt = |reason: String| KeyError::Corrupt {
        kid: slot.clone(),
        reason,
    };
    let claimed: SlotKey = serde_json::from_str(&stored).map_err(|e| corrupt(e.to_string()))?;
    let record = SigningKeyRecord {
        pkcs8_der: STANDARD
            .decode(&claimed.pkcs8)
            .map_err(|e| corrupt(e.to_string()))?,
        cert_der: STANDARD
            .decode(&claimed.cert)
            .map_err(|e| corrupt(e.to_string()))?,
        kid: claimed.kid,
        created_at: claimed.created_at,
        retired: false,
    };
    let present = |keys: &[SigningKeyRecord]| keys.iter().any(|k| k.kid == record.kid);
    if !present(&store.list_signing_keys().await?)
        && let Err(e) = store.insert_signing_key(&record).await
        // A racing replica may have inserted the same key in between: that is success.
        && !present(&store.list_signing_keys().await?)
    {
        return Err(e.into());
    }
    Ok(record)
}

/// Rotates when the newest key in the store is at least `period` seconds old at `now`: its
/// successor is created (once, whoever asks). Returns the new key's kid if this call found a
/// rotation due.
pub async fn rotate_if_due(
    store: &dyn Store,
    period: i64,
    now: i64,
) -> Result<Option<String>, KeyError> {
    let mut records = store.list_signing_keys().await?;
    records.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
    let Some(newest) = records.iter().rev().find(|r| !r.retired) else {
        return Ok(Some(ensure_successor(store, None).await?.kid));
    };
    if now.saturating_sub(newest.created_at) < period {
        return Ok(None);
    }
    Ok(Some(ensure_successor(store, Some(&newest.kid)).await?.kid))
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_starting_together_agree_on_one_first_key() {
        let store = std::sync::Arc::new(easyauth_store::MemoryStore::new());
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { SigningKeys::load_or_create_with(&*store, 60).await })
            })
            .collect();
        let mut kids = Vec::new();
        for task in tasks {
            kids.push(
                task.await
                    .expect("join")
                    .expect("keys")
                    .active_kid()
                    .to_owned(),
            );
        }
        kids.dedup();
        assert_eq!(kids.len(), 1, "{kids:?}");
        assert_eq!(store.list_signing_keys().await.expect("list").len(), 1);
    }

    #[tokio::test]
    async fn a_rotated_key_is_published_before_it_signs() {
        let store = easyauth_store::MemoryStore::new();
        // A key made two hours ago, so it is clearly older than its successor.
        let mut old = generate().expect("key");
        old.created_at -= 7200;
        store.insert_signing_key(&old).await.expect("insert");
        let created = old.created_at;
        let first = SigningKeys::load_or_create_with(&store, 60)
            .await
            .expect("keys");
        assert_eq!(first.active_kid(), old.kid);
        // Not due yet: nothing happens.
        assert_eq!(
            rotate_if_due(&store, 3600, created + 10)
                .await
                .expect("rotate"),
            None
        );
        // Due: one successor.
        let next = rotate_if_due(&store, 3600, now())
            .await
            .expect("rotate")
            .expect("rotated");
        // A second replica finding the same rotation due gets the same successor, not another.
        let racing = ensure_successor(&store, Some(first.active_kid()))
            .await
            .expect("successor");
        assert_eq!(racing.kid, next);
        let records = store.list_signing_keys().await.expect("list");
        assert_eq!(records.len(), 2);
        let next_created = records
            .iter()
            .find(|r| r.kid == next)
            .expect("next")
            .created_at;
        // Inside the publish lead: both keys published, the old one still signs.
        let during =
            SigningKeys::from_records(records.clone(), next_created + 59, 60).expect("keys");
        assert_eq!(during.active_kid(), first.active_kid());
        assert_eq!(during.published_kids().len(), 2);
        // After the lead the new key signs, and the old key stays published.
        let after = SigningKeys::from_records(records, next_created + 60, 60).expect("keys");
        assert_eq!(after.active_kid(), next);
        assert!(after.published_kids().contains(&first.active_kid()));
        let old_token = first.sign(HeaderStyle::V2, &json!({"n": 1})).expect("sign");
        assert!(after.verify_own(&old_token).is_ok());
    }
}
