//! `jws`: the module's bearer-token decoding (`CompactJws`, `decode_unverified`, `check_claims`,
//! the very steps `TokenValidator` takes) and the identity provider's `SigningKeys::verify_own`.
//!
//! The first byte picks what the rest is: a raw token, a header and a payload to encode, claims
//! to check, or claims to sign and tamper with.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use easyauth_entra::{HeaderStyle, SigningKeys};
use easyauth_module::oidc::validate::MAX_TOKEN_LEN;
use easyauth_module::oidc::{
    CompactJws, JwsHeader, Rejection, ValidationPolicy, check_claims, decode_unverified,
};
use serde_json::{Map, Value};

/// A fixed "now" so that lifetime checks are reproducible: 2026-11-21T05:00:00Z.
const NOW: i64 = 1_795_237_200;
/// The longest explanation a rejection may give: claim values are quoted and cut at 200
/// characters, lists at 20 entries.
const MAX_EXPLANATION: usize = 16 * 1024;

pub fn jws(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => raw_token(&String::from_utf8_lossy(rest)),
        1 => encoded_segments(rest),
        2 => claims(rest),
        _ => signed(mode, rest),
    }
}

/// An arbitrary token: whatever decodes must be canonical and pass the header rules, and the
/// identity provider must never accept it as its own.
fn raw_token(token: &str) {
    match decode_unverified(token) {
        Ok((header, _claims)) => {
            assert!(token.len() <= MAX_TOKEN_LEN);
            let jws = CompactJws::split(token).expect("a decodable token splits");
            assert_eq!(token.matches('.').count(), 2);
            assert_eq!(
                &token[..jws.signing_input_len()],
                format!("{}.{}", jws.header, jws.payload)
            );
            // Strict base64url: one encoding per byte string, so two spellings of one token
            // cannot exist (the validated-token cache is keyed by the token text).
            for segment in [jws.header, jws.payload] {
                let bytes = URL_SAFE_NO_PAD.decode(segment).expect("decoded before");
                assert_eq!(URL_SAFE_NO_PAD.encode(bytes), segment);
            }
            check_header(&header);
        }
        Err(rejection) => check_rejection(&rejection),
    }
    assert!(
        signing_keys().verify_own(token).is_err(),
        "an unsigned token verified: {token:?}"
    );
}

/// Header and payload JSON (split at the first NUL), encoded as a JWS: decoding must agree with
/// plain JSON parsing of the two parts.
fn encoded_segments(rest: &[u8]) {
    let (header_json, payload_json) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b"{}"[..]),
    };
    let token = format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(header_json),
        URL_SAFE_NO_PAD.encode(payload_json)
    );
    let header: Option<JwsHeader> = serde_json::from_slice(header_json).ok();
    let claims: Option<Map<String, Value>> = serde_json::from_slice(payload_json).ok();
    match decode_unverified(&token) {
        Ok((h, c)) => {
            assert_eq!(Some(&h), header.as_ref());
            assert_eq!(Some(&c), claims.as_ref());
            check_header(&h);
        }
        Err(Rejection::Malformed(m)) if token.len() > MAX_TOKEN_LEN => {
            assert!(m.contains("64 KiB"), "{m}");
        }
        Err(Rejection::Malformed(m)) if m.contains("header") => assert!(header.is_none(), "{m}"),
        Err(Rejection::Malformed(m)) if m.contains("payload") => {
            assert!(header.is_some() && claims.is_none(), "{m}");
        }
        Err(Rejection::AlgNone) => {
            let alg = header.map(|h| h.alg).unwrap_or_default();
            assert!(alg.eq_ignore_ascii_case("none"), "{alg:?}");
        }
        Err(Rejection::CriticalHeader) => assert!(header.is_some_and(|h| h.crit.is_some())),
        Err(other) => panic!("unexpected rejection {other:?}"),
    }
    if let Some(c) = claims {
        claims_against_policy(&c);
    }
}

/// Claims as JSON: the lifetime, issuer and audience rules, re-derived independently.
fn claims(rest: &[u8]) {
    if let Ok(c) = serde_json::from_slice::<Map<String, Value>>(rest) {
        claims_against_policy(&c);
    }
}

/// Claims the identity provider signs must verify unchanged, and any one-byte change to the
/// token must make `verify_own` refuse it.
fn signed(mode: u8, rest: &[u8]) {
    let keys = signing_keys();
    let (edit, json) = match rest {
        [a, b, c, json @ ..] => ((usize::from(*a) << 8 | usize::from(*b), *c), json),
        _ => ((0, 0), rest),
    };
    let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(json) else {
        return;
    };
    let style = if mode & 4 == 0 {
        HeaderStyle::V2
    } else {
        HeaderStyle::V1
    };
    let token = keys.sign(style, &claims).expect("signing never fails");
    let verified = keys.verify_own(&token).expect("own token verifies");
    // Compare through the same serializer: floats need not survive a text round trip exactly.
    let expected: Map<String, Value> =
        serde_json::from_slice(&serde_json::to_vec(&claims).expect("serializes"))
            .expect("reparses");
    assert_eq!(verified, expected);
    let (header, decoded) = decode_unverified(&token).expect("the module decodes it");
    assert_eq!(header.alg, "RS256");
    assert_eq!(header.kid.as_deref(), Some(keys.active_kid()));
    assert_eq!(decoded, expected);

    let (at, byte) = edit;
    let mut tampered = token.clone().into_bytes();
    let at = at % tampered.len();
    tampered[at] = byte;
    if let Ok(tampered) = String::from_utf8(tampered)
        && tampered != token
    {
        assert!(
            keys.verify_own(&tampered).is_err(),
            "byte {at} changed to {byte:#04x} and the token still verifies"
        );
    }
}

fn check_header(header: &JwsHeader) {
    assert!(!header.alg.eq_ignore_ascii_case("none"));
    assert!(header.crit.is_none());
}

/// Rejections are logged and shown in development-mode bodies: one line, bounded, never the
/// token itself.
fn check_rejection(rejection: &Rejection) {
    let text = rejection.to_string();
    assert!(
        !text.chars().any(|c| c == '\n' || c == '\r'),
        "a rejection spans several lines: {text:?}"
    );
    assert!(text.len() <= MAX_EXPLANATION, "{} bytes", text.len());
}

fn policy() -> &'static ValidationPolicy {
    static POLICY: OnceLock<ValidationPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        ValidationPolicy::new(
            vec![
                "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
                "https://sts.windows.net/t/".into(),
            ],
            vec!["api://app".into(), "cid/".into()],
            "https://idp.test/keys",
        )
    })
}

/// `check_claims` under a fixed policy and time, against the rules in its documentation.
fn claims_against_policy(claims: &Map<String, Value>) {
    let policy = policy();
    let skew = i64::try_from(policy.clock_skew.as_secs()).expect("small");
    match check_claims(claims, policy, NOW) {
        Ok(exp) => {
            assert_eq!(numeric(claims.get("exp")), Some(exp));
            assert!(NOW <= exp.saturating_add(skew), "expired at {exp}");
            for name in ["nbf", "iat"] {
                if let Some(v) = claims.get(name) {
                    let t = numeric(Some(v)).expect("a time claim that passed is a number");
                    assert!(t <= NOW + skew, "{name} {t} is in the future");
                }
            }
            let iss = claims.get("iss").and_then(Value::as_str).expect("iss");
            let tid = claims.get("tid").and_then(Value::as_str);
            let by_template = tid.is_some_and(|t| {
                !t.is_empty()
                    && t.len() <= 64
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                    && iss == format!("https://login.microsoftonline.com/{t}/v2.0")
            });
            // Exact matches include the template text itself, which no real issuer sends.
            let exact = policy.issuers.iter().any(|allowed| allowed == iss);
            assert!(by_template || exact, "issuer {iss:?} (tid {tid:?}) passed");
            let audiences: Vec<&str> = match claims.get("aud") {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                other => panic!("aud {other:?} passed"),
            };
            assert!(
                audiences
                    .iter()
                    .any(|a| matches!(*a, "api://app" | "api://app/" | "cid" | "cid/")),
                "audiences {audiences:?} passed"
            );
        }
        Err(rejection) => check_rejection(&rejection),
    }
}

/// A NumericDate as the validator reads it: integers, or finite numbers truncated.
fn numeric(value: Option<&Value>) -> Option<i64> {
    let n = value?.as_number()?;
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.trunc() as i64)
    })
}

/// The identity provider's signing keys, generated once per process (an RSA key takes a moment).
fn signing_keys() -> &'static SigningKeys {
    static KEYS: OnceLock<SigningKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let store = easyauth_store::MemoryStore::new();
        crate::runtime::block_on(SigningKeys::load_or_create(&store))
            .expect("signing keys in a memory store")
    })
}
