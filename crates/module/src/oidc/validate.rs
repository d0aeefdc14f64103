//! Bearer-token validation: a compact JWS signed by a key from the policy's JWKS,
//! with an allowed issuer and audience and a current lifetime (5 minutes of clock skew).
//!
//! Order of checks: shape, header (`alg`, `crit`), key lookup, algorithm-fits-key (before any
//! signature work), signature, then claims: `exp` (required), `nbf`, `iat`, `iss`, `aud`.
//! Rejections carry the explanation a log line or a development-mode body shows; they never
//! quote the token or its signature, and quoted claim values are escaped and truncated.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::cache::{CacheKey, DEFAULT_CAPACITY, TokenCache};
use super::http::OidcHttp;
use super::issuers::TENANT_PLACEHOLDER;
use super::jwks::{JwksCache, JwksSettings, KeyKind, KeyLookupError};
use super::token::skew_secs;
pub use super::token::{PreparedPolicy, ValidatedToken, ValidationPolicy};

/// Longest token accepted; Entra tokens with group claims stay far below this.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Why a token was refused. `Display` is the explanation for logs and development-mode bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    #[error("alg \"none\" is never accepted")]
    AlgNone,
    #[error("algorithm {} is not supported", show_alg(.alg))]
    UnsupportedAlgorithm { alg: String },
    #[error("algorithm {} is not allowed for {key}", show_alg(.alg))]
    AlgorithmNotAllowed { alg: String, key: KeyKind },
    #[error("the token header has \"crit\" parameters, which are not supported")]
    CriticalHeader,
    #[error("the token has no \"kid\" and {jwks_uri} publishes {keys} keys")]
    MissingKid { jwks_uri: String, keys: usize },
    #[error("no key with kid {} in {jwks_uri} after refresh", quote(.kid))]
    UnknownKid { kid: String, jwks_uri: String },
    #[error("no signing keys could be fetched from {jwks_uri}: {reason}")]
    KeysUnavailable { jwks_uri: String, reason: String },
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the token has no \"{0}\" claim")]
    MissingClaim(&'static str),
    #[error("claim \"{claim}\" is not {expected}")]
    ClaimType {
        claim: &'static str,
        expected: &'static str,
    },
    #[error("token expired at {} (now {})", time(*.exp), time(*.now))]
    Expired { exp: i64, now: i64 },
    #[error("token not valid before {} (now {})", time(*.nbf), time(*.now))]
    NotYetValid { nbf: i64, now: i64 },
    #[error("token issued in the future at {} (now {})", time(*.iat), time(*.now))]
    IssuedInFuture { iat: i64, now: i64 },
    #[error("issuer {} is not one of {}", quote(.found), list(.allowed))]
    Issuer { found: String, allowed: Vec<String> },
    #[error(
        "{} not in allowedAudiences {}: the caller must ask for a token for this API (scope {}/.default, or one of its delegated scopes such as {}/user_impersonation; an App Service front end asks for it in identityProviders.azureActiveDirectory.login.loginParameters)",
        AudienceList(.found), list(.allowed), api_of(.allowed), api_of(.allowed)
    )]
    Audience {
        found: Vec<String>,
        allowed: Vec<String>,
    },
}

/// Escaped, quoted, and cut at 200 characters: claim values are attacker-chosen.
fn quote(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().take(20).map(|s| quote(s)).collect();
    let more = if items.len() > 20 { ", …" } else { "" };
    format!("[{}{more}]", quoted.join(", "))
}

struct AudienceList<'a>(&'a [String]);

impl fmt::Display for AudienceList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "audience {}", quote(one)),
            many => write!(f, "audiences {}", list(many)),
        }
    }
}

/// Algorithm names are printed bare when they look like one (`HS256`), quoted otherwise.
/// The API identifier a caller should ask for: the first `api://` audience, else the first.
fn api_of(allowed: &[String]) -> &str {
    allowed
        .iter()
        .find(|a| a.starts_with("api://"))
        .or(allowed.first())
        .map_or("<this API's application ID URI>", String::as_str)
}

fn show_alg(alg: &str) -> String {
    let plain = !alg.is_empty()
        && alg.len() <= 16
        && alg.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if plain { alg.to_owned() } else { quote(alg) }
}

fn time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// Tunables of a [`TokenValidator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatorSettings {
    pub jwks: JwksSettings,
    /// Validated tokens kept; 0 disables the cache.
    pub cache_capacity: usize,
}

impl Default for ValidatorSettings {
    fn default() -> ValidatorSettings {
        ValidatorSettings {
            jwks: JwksSettings::default(),
            cache_capacity: DEFAULT_CAPACITY,
        }
    }
}

/// Validates bearer tokens against policies; holds the JWKS cache and the validated-token cache.
pub struct TokenValidator {
    jwks: JwksCache,
    cache: TokenCache,
}

impl fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenValidator")
            .field("jwks", &self.jwks.settings())
            .field("cached_tokens", &self.cache.len())
            .finish()
    }
}

/// The JOSE header fields the validator reads; the rest are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JwsHeader {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub x5t: Option<String>,
    #[serde(default)]
    pub crit: Option<Value>,
}

/// A compact JWS split into its three base64url segments, nothing decoded or verified yet.
///
/// The validator decodes through these steps in its own order (header, key lookup, signature,
/// then payload), so the pure steps can be tested and fuzzed without keys or network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactJws<'a> {
    pub header: &'a str,
    pub payload: &'a str,
    pub signature: &'a str,
}

impl<'a> CompactJws<'a> {
    /// Splits `token` at its dots; length is checked by the callers (see [`MAX_TOKEN_LEN`]).
    pub fn split(token: &'a str) -> Result<CompactJws<'a>, Rejection> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts.as_slice() else {
            return Err(Rejection::Malformed(if parts.len() == 5 {
                "encrypted tokens (JWE) are not supported"
            } else {
                "a JWS has three dot-separated parts"
            }));
        };
        Ok(CompactJws {
            header,
            payload,
            signature,
        })
    }

    /// `header.payload`: the bytes the signature covers, as a prefix of the token.
    pub fn signing_input_len(&self) -> usize {
        self.header.len() + 1 + self.payload.len()
    }

    /// The decoded header; `alg: none` and `crit` are refused here, before any key lookup.
    pub fn decode_header(&self) -> Result<JwsHeader, Rejection> {
        let header_json = URL_SAFE_NO_PAD
            .decode(self.header)
            .map_err(|_| Rejection::Malformed("the header is not base64url"))?;
        let header: JwsHeader = serde_json::from_slice(&header_json)
            .map_err(|_| Rejection::Malformed("the header is not a JSON object with \"alg\""))?;
        if header.alg.eq_ignore_ascii_case("none") {
            return Err(Rejection::AlgNone);
        }
        if header.crit.is_some() {
            return Err(Rejection::CriticalHeader);
        }
        Ok(header)
    }

    /// The decoded claims (only meaningful once the signature verified).
    pub fn decode_claims(&self) -> Result<Map<String, Value>, Rejection> {
        let payload = URL_SAFE_NO_PAD
            .decode(self.payload)
            .map_err(|_| Rejection::Malformed("the payload is not base64url"))?;
        serde_json::from_slice(&payload)
            .map_err(|_| Rejection::Malformed("the payload is not a JSON object"))
    }
}

fn check_len(token: &str) -> Result<(), Rejection> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::Malformed("the token is longer than 64 KiB"));
    }
    Ok(())
}

/// Header and claims of `token` WITHOUT verifying its signature: the validator's own decoding
/// steps, for diagnostics and tests. Never base a decision on the result.
pub fn decode_unverified(token: &str) -> Result<(JwsHeader, Map<String, Value>), Rejection> {
    check_len(token)?;
    let jws = CompactJws::split(token)?;
    let header = jws.decode_header()?;
    let claims = jws.decode_claims()?;
    Ok((header, claims))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl TokenValidator {
    pub fn new(http: OidcHttp) -> TokenValidator {
        Self::with_settings(http, ValidatorSettings::default())
    }

    pub fn with_settings(http: OidcHttp, settings: ValidatorSettings) -> TokenValidator {
        TokenValidator {
            jwks: JwksCache::new(http, settings.jwks),
            cache: TokenCache::new(settings.cache_capacity),
        }
    }

    /// The signing-key cache (shared with clones of it).
    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// Number of validated tokens currently cached.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// Validates `token` under `policy` at the current time.
    pub async fn validate(
        &self,
        token: &str,
        policy: &ValidationPolicy,
    ) -> Result<Arc<ValidatedToken>, Rejection> {
        self.validate_at(token, policy, unix_now()).await
    }

    /// Validates as if the Unix time were `now` (tests, replaying logged decisions).
    pub async fn validate_at(
        &self,
        token: &str,
        policy: &ValidationPolicy,
        now: i64,
    ) -> Result<Arc<ValidatedToken>, Rejection> {
        check_len(token)?;
        self.validate_keyed(token, policy, CacheKey::new(token, policy), now)
            .await
    }

    /// Validates `token` under a prepared policy at the current time (the per-request path).
    pub async fn validate_prepared(
        &self,
        token: &str,
        prepared: &PreparedPolicy,
    ) -> Result<Arc<ValidatedToken>, Rejection> {
        check_len(token)?;
        let key = CacheKey::with_fingerprint(token, prepared.fingerprint());
        self.validate_keyed(token, prepared.policy(), key, unix_now())
            .await
    }

    async fn validate_keyed(
        &self,
        token: &str,
        policy: &ValidationPolicy,
        key: CacheKey,
        now: i64,
    ) -> Result<Arc<ValidatedToken>, Rejection> {
        if let Some(hit) = self.cache.get(&key, now, policy.clock_skew) {
            return Ok(hit);
        }
        let validated = Arc::new(self.validate_uncached(token, policy, now).await?);
        self.cache
            .insert(key, validated.clone(), now, policy.clock_skew);
        Ok(validated)
    }

    async fn validate_uncached(
        &self,
        token: &str,
        policy: &ValidationPolicy,
        now: i64,
    ) -> Result<ValidatedToken, Rejection> {
        let jws = CompactJws::split(token)?;
        let header = jws.decode_header()?;
        let supported = supported_algorithm(&header.alg);
        // A token whose algorithm no key could accept is answered from the cached keys only,
        // so it cannot make the cache fetch.
        let kid = header.kid.as_deref().or(header.x5t.as_deref());
        let key = match self
            .jwks
            .key_for(&policy.jwks_uri, kid, supported.is_some())
            .await
        {
            Ok(key) => key,
            Err(_) if supported.is_none() => {
                return Err(Rejection::UnsupportedAlgorithm { alg: header.alg });
            }
            Err(KeyLookupError::UnknownKid { kid: Some(kid), .. }) => {
                return Err(Rejection::UnknownKid {
                    kid,
                    jwks_uri: policy.jwks_uri.clone(),
                });
            }
            Err(KeyLookupError::UnknownKid { kid: None, keys }) => {
                return Err(Rejection::MissingKid {
                    jwks_uri: policy.jwks_uri.clone(),
                    keys,
                });
            }
            Err(KeyLookupError::Unavailable { reason }) => {
                return Err(Rejection::KeysUnavailable {
                    jwks_uri: policy.jwks_uri.clone(),
                    reason,
                });
            }
        };
        let Some(alg) = supported.filter(|a| key.allows(*a)) else {
            return Err(Rejection::AlgorithmNotAllowed {
                alg: header.alg,
                key: key.kind,
            });
        };
        if jws.signature.is_empty() {
            return Err(Rejection::Malformed("the signature is empty"));
        }
        let message = &token.as_bytes()[..jws.signing_input_len()];
        let verified = jsonwebtoken::crypto::verify(jws.signature, message, &key.decoding, alg)
            .unwrap_or(false);
        if !verified {
            return Err(Rejection::BadSignature);
        }
        let claims = jws.decode_claims()?;
        let exp = check_claims(&claims, policy, now)?;
        Ok(ValidatedToken {
            claims,
            exp,
            alg,
            kid: key.kid.clone(),
            injected: Default::default(),
        })
    }
}

/// The algorithms any key kind could accept; everything else (HS*, EdDSA, unknown) is refused.
fn supported_algorithm(alg: &str) -> Option<Algorithm> {
    match alg {
        "ES256" => Some(Algorithm::ES256),
        rsa => super::jwks::rsa_algorithm(rsa),
    }
}

/// Lifetime, issuer and audience checks on verified claims; returns `exp`.
pub fn check_claims(
    claims: &Map<String, Value>,
    policy: &ValidationPolicy,
    now: i64,
) -> Result<i64, Rejection> {
    let skew = skew_secs(policy.clock_skew);
    let exp = numeric(claims, "exp")?.ok_or(Rejection::MissingClaim("exp"))?;
    if now > exp.saturating_add(skew) {
        return Err(Rejection::Expired { exp, now });
    }
    if let Some(nbf) = numeric(claims, "nbf")?
        && nbf > now.saturating_add(skew)
    {
        return Err(Rejection::NotYetValid { nbf, now });
    }
    if let Some(iat) = numeric(claims, "iat")?
        && iat > now.saturating_add(skew)
    {
        return Err(Rejection::IssuedInFuture { iat, now });
    }

    let iss = match claims.get("iss") {
        None => return Err(Rejection::MissingClaim("iss")),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(Rejection::ClaimType {
                claim: "iss",
                expected: "a string",
            });
        }
    };
    let tid = claims.get("tid").and_then(Value::as_str);
    if !policy
        .issuers
        .iter()
        .any(|allowed| issuer_matches(allowed, iss, tid))
    {
        return Err(Rejection::Issuer {
            found: iss.to_owned(),
            allowed: policy.issuers.clone(),
        });
    }

    let audiences: Vec<&str> = match claims.get("aud") {
        None => return Err(Rejection::MissingClaim("aud")),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or(Rejection::ClaimType {
                claim: "aud",
                expected: "a string or an array of strings",
            })?,
        Some(_) => {
            return Err(Rejection::ClaimType {
                claim: "aud",
                expected: "a string or an array of strings",
            });
        }
    };
    let allowed: HashSet<&str> = policy
        .audiences
        .iter()
        .map(|a| a.strip_suffix('/').unwrap_or(a))
        .collect();
    if !audiences
        .iter()
        .any(|a| allowed.contains(a.strip_suffix('/').unwrap_or(a)))
    {
        return Err(Rejection::Audience {
            found: audiences.iter().map(|a| (*a).to_owned()).collect(),
            allowed: policy.audiences.clone(),
        });
    }
    Ok(exp)
}

/// A NumericDate claim: absent is `None`; a non-number is an error (fractions are truncated).
fn numeric(claims: &Map<String, Value>, claim: &'static str) -> Result<Option<i64>, Rejection> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i64)
            })
            .map(Some)
            .ok_or(Rejection::ClaimType {
                claim,
                expected: "a number",
            }),
        Some(_) => Err(Rejection::ClaimType {
            claim,
            expected: "a number",
        }),
    }
}

/// Exact match, or a `{tenantid}` template matched after substituting the token's `tid`.
fn issuer_matches(allowed: &str, iss: &str, tid: Option<&str>) -> bool {
    if allowed == iss {
        return true;
    }
    match tid {
        Some(tid) if allowed.contains(TENANT_PLACEHOLDER) && is_tenant_id(tid) => {
            allowed.replace(TENANT_PLACEHOLDER, tid) == iss
        }
        _ => false,
    }
}

fn is_tenant_id(tid: &str) -> bool {
    !tid.is_empty()
        && tid.len() <= 64
        && tid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn policy() -> ValidationPolicy {
        ValidationPolicy::new(
            vec!["https://idp/t/v2.0".into(), "https://idp/t/".into()],
            vec!["api://app".into(), "cid".into()],
            "https://idp/t/keys",
        )
    }

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    const NOW: i64 = 1_795_237_200; // 2026-11-21T05:00:00Z

    #[test]
    fn messages_are_the_documented_explanations() {
        let p = policy();
        let check = |v: Value| check_claims(&claims(v), &p, NOW).map_err(|e| e.to_string());
        let base = json!({"iss": "https://idp/t/v2.0", "aud": "cid", "exp": NOW + 60});
        assert_eq!(check(base.clone()), Ok(NOW + 60));
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        assert_eq!(
            check(with("aud", json!("api://x"))),
            Err(r#"audience "api://x" not in allowedAudiences ["api://app", "cid"]: the caller must ask for a token for this API (scope api://app/.default, or one of its delegated scopes such as api://app/user_impersonation; an App Service front end asks for it in identityProviders.azureActiveDirectory.login.loginParameters)"#.into())
        );
        let several = check(with("aud", json!(["a", "b"]))).expect_err("refused");
        assert!(
            several.starts_with(
                r#"audiences ["a", "b"] not in allowedAudiences ["api://app", "cid"]: "#
            ),
            "{several}"
        );
        assert_eq!(
            check(with("iss", json!("https://a/"))),
            Err(
                r#"issuer "https://a/" is not one of ["https://idp/t/v2.0", "https://idp/t/"]"#
                    .into()
            )
        );
        assert_eq!(
            check(with("exp", json!(NOW - 3600))),
            Err("token expired at 2026-11-21T04:00:00Z (now 2026-11-21T05:00:00Z)".into())
        );
        assert_eq!(
            check(with("exp", json!("soon"))),
            Err(r#"claim "exp" is not a number"#.into())
        );
        assert_eq!(
            check(with("nbf", json!(NOW + 301))),
            Err("token not valid before 2026-11-21T05:05:01Z (now 2026-11-21T05:00:00Z)".into())
        );
        assert!(check(with("iat", json!(NOW + 400))).is_err());
        let mut no_exp = base.clone();
        no_exp.as_object_mut().map(|m| m.remove("exp"));
        assert_eq!(check(no_exp), Err(r#"the token has no "exp" claim"#.into()));
    }

    #[test]
    fn skew_and_slashes_and_templates() {
        let p = policy();
        let ok = |v: Value| check_claims(&claims(v), &p, NOW).is_ok();
        // Within the five-minute allowance on both sides.
        assert!(ok(
            json!({"iss": "https://idp/t/", "aud": "cid", "exp": NOW - 299, "nbf": NOW + 299})
        ));
        assert!(!ok(
            json!({"iss": "https://idp/t/", "aud": "cid", "exp": NOW - 301})
        ));
        // One trailing slash on the audience is not significant.
        assert!(ok(
            json!({"iss": "https://idp/t/", "aud": "api://app/", "exp": NOW + 1})
        ));
        let mut multi = policy();
        multi.issuers = vec!["https://login.microsoftonline.com/{tenantid}/v2.0".into()];
        let m = |v: Value| check_claims(&claims(v), &multi, NOW).is_ok();
        assert!(m(
            json!({"iss": "https://login.microsoftonline.com/abc/v2.0", "tid": "abc", "aud": "cid", "exp": NOW + 1})
        ));
        assert!(!m(
            json!({"iss": "https://login.microsoftonline.com/abc/v2.0", "tid": "xyz", "aud": "cid", "exp": NOW + 1})
        ));
        assert!(!m(
            json!({"iss": "https://login.microsoftonline.com/a/b/v2.0", "tid": "a/b", "aud": "cid", "exp": NOW + 1})
        ));
    }

    #[test]
    fn fingerprints_differ_per_field() {
        let base = policy();
        let mut prints = vec![base.fingerprint()];
        let mut p = base.clone();
        p.audiences.push("other".into());
        prints.push(p.fingerprint());
        let mut p = base.clone();
        p.issuers.pop();
        prints.push(p.fingerprint());
        let mut p = base.clone();
        p.jwks_uri.push('x');
        prints.push(p.fingerprint());
        prints.push(
            base.clone()
                .with_clock_skew(Duration::from_secs(0))
                .fingerprint(),
        );
        let mut p = base.clone();
        p.audiences = vec!["api://app,cid".into()];
        prints.push(p.fingerprint());
        let unique: HashSet<_> = prints.iter().collect();
        assert_eq!(unique.len(), prints.len());
        assert_eq!(base.fingerprint(), policy().fingerprint());
    }

    #[test]
    fn quoted_values_are_escaped_and_bounded() {
        let long = "x".repeat(1000);
        let msg = Rejection::Issuer {
            found: format!("a\nb{long}"),
            allowed: vec![],
        }
        .to_string();
        assert!(!msg.contains('\n'));
        assert!(msg.len() < 300, "{msg}");
        assert_eq!(
            Rejection::AlgorithmNotAllowed {
                alg: "HS256".into(),
                key: KeyKind::Rsa
            }
            .to_string(),
            "algorithm HS256 is not allowed for an RSA key"
        );
    }

    #[test]
    fn unverified_decoding_takes_the_validators_steps() {
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256","kid":"k"}"#),
            b64(r#"{"aud":"x"}"#)
        );
        let (header, claims) = decode_unverified(&token).expect("decodes");
        assert_eq!(
            (header.alg.as_str(), header.kid.as_deref()),
            ("RS256", Some("k"))
        );
        assert_eq!(claims["aud"], "x");
        let none = format!("{}.{}.", b64(r#"{"alg":"None"}"#), b64("{}"));
        assert_eq!(decode_unverified(&none), Err(Rejection::AlgNone));
        let crit = format!("{}.{}.s", b64(r#"{"alg":"RS256","crit":[]}"#), b64("{}"));
        assert_eq!(decode_unverified(&crit), Err(Rejection::CriticalHeader));
        assert!(
            matches!(decode_unverified("a.b.c.d.e"), Err(Rejection::Malformed(m)) if m.contains("JWE"))
        );
        let long = format!(
            "{}.{}.s",
            b64(r#"{"alg":"RS256"}"#),
            "A".repeat(MAX_TOKEN_LEN)
        );
        assert!(
            matches!(decode_unverified(&long), Err(Rejection::Malformed(m)) if m.contains("64 KiB"))
        );
    }

    #[test]
    fn accessors() {
        let t = ValidatedToken::for_tests(
            claims(
                json!({"appid": "c", "upn": "u@x", "scp": "a  b", "roles": ["r"], "aud": "x", "groups": ["g1", "g2"]}),
            ),
            NOW,
        );
        assert_eq!(t.client_id(), Some("c"));
        assert_eq!(t.preferred_username(), Some("u@x"));
        assert_eq!(t.scopes(), vec!["a", "b"]);
        assert_eq!(t.roles(), vec!["r"]);
        assert_eq!(t.groups(), vec!["g1", "g2"]);
        assert_eq!(t.audiences(), vec!["x"]);
        assert!(!t.expired(NOW + 300, ValidationPolicy::DEFAULT_CLOCK_SKEW));
        assert!(t.expired(NOW + 301, ValidationPolicy::DEFAULT_CLOCK_SKEW));
    }
}
