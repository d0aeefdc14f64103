//! What validation works with and produces: the [`ValidationPolicy`] a token must satisfy and
//! the [`ValidatedToken`] it becomes (claims, expiry, the headers built from it once).

use std::time::Duration;

use aws_lc_rs::digest;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::principal::InjectedCell;

/// What a token must satisfy. Two policies that differ in any field never share cache entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationPolicy {
    /// Accepted `iss` values, compared exactly; `{tenantid}` in one stands for the token's `tid`.
    pub issuers: Vec<String>,
    /// Accepted `aud` values (`allowedAudiences` plus the client id); one trailing slash is
    /// ignored on either side, as Microsoft.IdentityModel does by default.
    pub audiences: Vec<String>,
    pub jwks_uri: String,
    pub clock_skew: Duration,
}

impl ValidationPolicy {
    /// App Service's allowance for clock differences on `exp`, `nbf` and `iat`.
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(300);

    pub fn new(
        issuers: Vec<String>,
        audiences: Vec<String>,
        jwks_uri: impl Into<String>,
    ) -> ValidationPolicy {
        ValidationPolicy {
            issuers,
            audiences,
            jwks_uri: jwks_uri.into(),
            clock_skew: Self::DEFAULT_CLOCK_SKEW,
        }
    }

    pub fn with_clock_skew(mut self, skew: Duration) -> ValidationPolicy {
        self.clock_skew = skew;
        self
    }

    /// SHA-256 over every field, length-prefixed so `["a,b"]` and `["a", "b"]` differ.
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        let mut parts: Vec<Vec<u8>> = vec![b"policy-v1".to_vec()];
        let mut list = |tag: &[u8], items: &[String]| {
            parts.push(tag.to_vec());
            parts.push((items.len() as u64).to_be_bytes().to_vec());
            for item in items {
                parts.push((item.len() as u64).to_be_bytes().to_vec());
                parts.push(item.as_bytes().to_vec());
            }
        };
        list(b"iss", &self.issuers);
        list(b"aud", &self.audiences);
        list(b"jwks", std::slice::from_ref(&self.jwks_uri));
        parts.push(self.clock_skew.as_secs().to_be_bytes().to_vec());
        parts.push(self.clock_skew.subsec_nanos().to_be_bytes().to_vec());
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        sha256(&refs)
    }
}

/// A policy with its fingerprint worked out once: a provider's bearer policy is the same for
/// every request, so its fingerprint (a SHA-256 over every field) need not be recomputed per
/// token. The policy cannot change behind the fingerprint: it is only readable.
#[derive(Debug, Clone)]
pub struct PreparedPolicy {
    policy: ValidationPolicy,
    fingerprint: [u8; 32],
}

impl PreparedPolicy {
    pub fn new(policy: ValidationPolicy) -> PreparedPolicy {
        let fingerprint = policy.fingerprint();
        PreparedPolicy {
            policy,
            fingerprint,
        }
    }

    pub fn policy(&self) -> &ValidationPolicy {
        &self.policy
    }

    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }
}

/// A token that passed validation: its claims plus convenience accessors.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedToken {
    pub(super) claims: Map<String, Value>,
    pub(super) exp: i64,
    pub(super) alg: Algorithm,
    pub(super) kid: Option<String>,
    /// The headers the module injects for this token, built on first use (see
    /// [`crate::principal::InjectedHeaders`]); the validated-token cache keeps them with it.
    pub(super) injected: InjectedCell,
}

impl ValidatedToken {
    pub(crate) fn injected(&self) -> &InjectedCell {
        &self.injected
    }

    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// A claim that is a string.
    pub fn str_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub fn exp(&self) -> i64 {
        self.exp
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn iss(&self) -> Option<&str> {
        self.str_claim("iss")
    }

    pub fn sub(&self) -> Option<&str> {
        self.str_claim("sub")
    }

    pub fn oid(&self) -> Option<&str> {
        self.str_claim("oid")
    }

    pub fn tid(&self) -> Option<&str> {
        self.str_claim("tid")
    }

    /// `"1.0"` or `"2.0"` for Entra tokens.
    pub fn ver(&self) -> Option<&str> {
        self.str_claim("ver")
    }

    pub fn name(&self) -> Option<&str> {
        self.str_claim("name")
    }

    /// The client the token was issued to: `azp` (v2) or `appid` (v1).
    pub fn client_id(&self) -> Option<&str> {
        self.str_claim("azp").or_else(|| self.str_claim("appid"))
    }

    /// `preferred_username` (v2), else `upn` or `unique_name` (v1).
    pub fn preferred_username(&self) -> Option<&str> {
        self.str_claim("preferred_username")
            .or_else(|| self.str_claim("upn"))
            .or_else(|| self.str_claim("unique_name"))
    }

    /// `aud` as a list, whether the token carries a string or an array.
    pub fn audiences(&self) -> Vec<&str> {
        strings(self.claims.get("aud"))
    }

    /// The delegated scopes (`scp`, space-separated).
    pub fn scopes(&self) -> Vec<&str> {
        self.str_claim("scp")
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default()
    }

    pub fn roles(&self) -> Vec<&str> {
        strings(self.claims.get("roles"))
    }

    pub fn groups(&self) -> Vec<&str> {
        strings(self.claims.get("groups"))
    }

    pub(crate) fn expired(&self, now: i64, skew: Duration) -> bool {
        now > self.exp.saturating_add(skew_secs(skew))
    }

    #[cfg(test)]
    pub(crate) fn for_tests(claims: Map<String, Value>, exp: i64) -> ValidatedToken {
        ValidatedToken {
            claims,
            exp,
            alg: Algorithm::RS256,
            kid: None,
            injected: Default::default(),
        }
    }
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// SHA-256 over the concatenated parts.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// A clock skew in whole seconds (saturating).
pub(super) fn skew_secs(skew: Duration) -> i64 {
    i64::try_from(skew.as_secs()).unwrap_or(i64::MAX)
}
