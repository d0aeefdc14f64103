//! The OpenID Connect relying party against the real local identity provider, served over TLS
//! in-process: discovery, the token client, bearer validation with every rejection reason, the
//! JWKS cache (refetch, rate limit, single flight, last good keys) and the validated-token cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_lc_rs::signature::{KeyPair, RSA_PSS_SHA256};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use easyauth_entra::SigningKeys;
use easyauth_entra::keys::HeaderStyle;
use easyauth_module::oidc::jwks::JwksSettings;
use easyauth_module::oidc::{
    ClientCredentials, HttpError, KeyKind, MetadataError, OidcHttp, Rejection, TokenClient,
    TokenError, TokenValidator, ValidationPolicy, ValidatorSettings, aad_issuers,
    discover_from_issuer,
};
use easyauth_store::{MemoryStore, Store};
use serde_json::{Value, json};

mod support;
use support::*;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS with an arbitrary header and a signature computed by `sign`.
fn jws(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn fast_settings(min_refetch: Duration, max_age: Duration) -> ValidatorSettings {
    ValidatorSettings {
        jwks: JwksSettings {
            min_refetch_interval: min_refetch,
            max_age,
        },
        ..ValidatorSettings::default()
    }
}

#[tokio::test]
async fn discovery_over_tls_with_the_extra_root() {
    let p = Provider::start("discovery").await;
    let http = p.http();
    let v2 = discover_from_issuer(&http, &p.issuer_v2()).await.unwrap();
    assert_eq!(v2.issuer, p.issuer_v2());
    assert_eq!(v2.jwks_uri, p.jwks_uri());
    assert_eq!(
        v2.token_endpoint.as_deref(),
        Some(format!("{}/{TID}/oauth2/v2.0/token", p.base).as_str())
    );
    assert_eq!(
        v2.end_session_endpoint.as_deref(),
        Some(format!("{}/{TID}/oauth2/v2.0/logout", p.base).as_str())
    );
    assert_eq!(v2.id_token_signing_alg_values_supported, vec!["RS256"]);
    assert_eq!(aad_issuers(&v2.issuer), vec![p.issuer_v2(), p.issuer_v1()]);

    // The v1 document (trailing-slash issuer) is found from the v1 issuer.
    let v1 = discover_from_issuer(&http, &p.issuer_v1()).await.unwrap();
    assert_eq!(v1.issuer, p.issuer_v1());
    assert_eq!(aad_issuers(&v1.issuer), aad_issuers(&v2.issuer));

    // An unknown tenant is an HTTP error, not a document.
    let unknown = discover_from_issuer(&http, &format!("{}/nosuchtenant/v2.0", p.base)).await;
    assert!(
        matches!(unknown, Err(MetadataError::Fetch(HttpError::Status { .. }))),
        "{unknown:?}"
    );

    // Without the local CA the provider's certificate is not trusted.
    let untrusting = OidcHttp::new().unwrap();
    let err = discover_from_issuer(&untrusting, &p.issuer_v2())
        .await
        .expect_err("an untrusted certificate must fail");
    let text = err.to_string();
    assert!(
        matches!(err, MetadataError::Fetch(HttpError::Request { .. })),
        "{text}"
    );
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

#[tokio::test]
async fn real_v2_and_v1_tokens_pass() {
    let p = Provider::start("real").await;
    let http = p.http();
    let meta = discover_from_issuer(&http, &p.issuer_v2()).await.unwrap();
    let client = TokenClient::new(
        http.clone(),
        meta.token_endpoint.clone().unwrap(),
        ClientCredentials {
            client_id: WEB.into(),
            client_secret: Some(WEB_SECRET.into()),
        },
    );
    let validator = TokenValidator::new(http.clone());
    let policy = ValidationPolicy::new(
        aad_issuers(&meta.issuer),
        vec![API.into(), format!("api://{API2}")],
        meta.jwks_uri.clone(),
    );

    let v2 = client
        .client_credentials(&format!("api://{API}/.default"))
        .await
        .unwrap();
    assert!(v2.expires_in.is_some_and(|s| s > 0));
    let t = validator.validate(&v2.access_token, &policy).await.unwrap();
    assert_eq!(t.ver(), Some("2.0"));
    assert_eq!(t.iss(), Some(p.issuer_v2().as_str()));
    assert_eq!(t.audiences(), vec![API]);
    assert_eq!(t.client_id(), Some(WEB));
    assert_eq!(t.tid(), Some(TID));
    assert!(t.oid().is_some());
    assert_eq!(t.kid(), Some(p.keys.active_kid()));

    // The v1 token of a v1 API: issuer `<base>/<tid>/`, `aud` = `api://<id>`, `appid`.
    let v1 = client
        .client_credentials(&format!("api://{API2}/.default"))
        .await
        .unwrap();
    let t = validator.validate(&v1.access_token, &policy).await.unwrap();
    assert_eq!(t.ver(), Some("1.0"));
    assert_eq!(t.iss(), Some(p.issuer_v1().as_str()));
    assert_eq!(t.client_id(), Some(WEB));
    assert_eq!(t.roles(), vec!["Data.Read"]);

    // The same v1 token fails a policy that accepts only the v2 issuer.
    let v2_only = ValidationPolicy::new(
        vec![p.issuer_v2()],
        policy.audiences.clone(),
        policy.jwks_uri.clone(),
    );
    let err = validator
        .validate(&v1.access_token, &v2_only)
        .await
        .unwrap_err();
    assert!(matches!(err, Rejection::Issuer { .. }), "{err}");

    // PS256 with the same RSA key is accepted (App Service 1.6.2+).
    let key = p.private_key().await;
    let ps = jws(
        &json!({"typ": "JWT", "alg": "PS256", "kid": p.keys.active_kid()}),
        &p.claims(json!({})),
        |input| {
            let mut sig = vec![0u8; key.public_modulus_len()];
            key.sign(
                &RSA_PSS_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input,
                &mut sig,
            )
            .unwrap();
            sig
        },
    );
    let t = validator.validate(&ps, &policy).await.unwrap();
    assert_eq!(t.alg(), jsonwebtoken::Algorithm::PS256);

    // The token client turns OAuth errors into typed errors.
    let err = client
        .exchange_code("not-a-code", "https://app.test/cb", None)
        .await
        .unwrap_err();
    match &err {
        TokenError::OAuth { error, status, .. } => {
            assert_eq!(error, "invalid_grant");
            assert_eq!(*status, 400);
        }
        other => panic!("{other:?}"),
    }
    let err = client
        .refresh("not-a-refresh-token", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TokenError::OAuth { error, .. } if error == "invalid_grant"),
        "{err}"
    );
    assert_eq!(p.jwks_hits(), 1, "one JWKS fetch served every validation");
}

#[tokio::test]
async fn forged_algorithms_are_refused_before_signature_work() {
    let p = Provider::start("algs").await;
    let validator = TokenValidator::new(p.http());
    let policy = p.policy();
    let kid = p.keys.active_kid().to_owned();
    // Load the key set with a good token first.
    validator
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap();

    let none = jws(
        &json!({"typ": "JWT", "alg": "none", "kid": kid}),
        &p.claims(json!({})),
        |_| Vec::new(),
    );
    let err = validator.validate(&none, &policy).await.unwrap_err();
    assert_eq!(err, Rejection::AlgNone);
    assert_eq!(err.to_string(), "alg \"none\" is never accepted");
    let none_upper = jws(&json!({"alg": "None"}), &p.claims(json!({})), |_| {
        b"x".to_vec()
    });
    assert_eq!(
        validator.validate(&none_upper, &policy).await.unwrap_err(),
        Rejection::AlgNone
    );

    // HS256 keyed with the public key, as DER and as PEM: the classic key-confusion attack.
    let der = p.private_key().await.public_key().as_ref().to_vec();
    let pem = format!(
        "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
        STANDARD.encode(&der)
    );
    for secret in [der.clone(), pem.into_bytes()] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        let hs = jws(
            &json!({"typ": "JWT", "alg": "HS256", "kid": kid}),
            &p.claims(json!({})),
            |input| aws_lc_rs::hmac::sign(&key, input).as_ref().to_vec(),
        );
        let err = validator.validate(&hs, &policy).await.unwrap_err();
        assert_eq!(
            err,
            Rejection::AlgorithmNotAllowed {
                alg: "HS256".into(),
                key: KeyKind::Rsa
            }
        );
        assert_eq!(
            err.to_string(),
            "algorithm HS256 is not allowed for an RSA key"
        );
    }

    // An asymmetric algorithm of another family does not fit the RSA key either.
    let es = jws(
        &json!({"alg": "ES256", "kid": kid}),
        &p.claims(json!({})),
        |_| vec![1; 64],
    );
    assert!(matches!(
        validator.validate(&es, &policy).await.unwrap_err(),
        Rejection::AlgorithmNotAllowed {
            key: KeyKind::Rsa,
            ..
        }
    ));

    // HS256 naming an unknown kid is refused without a JWKS fetch.
    let before = p.jwks_hits();
    let hs_unknown = jws(
        &json!({"alg": "HS256", "kid": "made-up"}),
        &p.claims(json!({})),
        |_| vec![0; 32],
    );
    let err = validator.validate(&hs_unknown, &policy).await.unwrap_err();
    assert_eq!(
        err,
        Rejection::UnsupportedAlgorithm {
            alg: "HS256".into()
        }
    );
    assert_eq!(p.jwks_hits(), before);

    // A "crit" header the validator does not understand is refused.
    let crit = jws(
        &json!({"alg": "RS256", "kid": kid, "crit": ["exp"]}),
        &p.claims(json!({})),
        |_| vec![0; 256],
    );
    assert_eq!(
        validator.validate(&crit, &policy).await.unwrap_err(),
        Rejection::CriticalHeader
    );
}

#[tokio::test]
async fn every_claim_check_has_its_rejection() {
    let p = Provider::start("claims").await;
    let validator = TokenValidator::new(p.http());
    let policy = p.policy();
    let check = |overrides: Value| {
        let token = p.mint(overrides);
        let validator = &validator;
        let policy = &policy;
        async move { validator.validate(&token, policy).await }
    };
    let t = now();

    assert!(check(json!({})).await.is_ok());
    // A v1-form issuer of the same tenant is accepted too.
    assert!(check(json!({"iss": p.issuer_v1()})).await.is_ok());

    let err = check(json!({"iss": "https://a/"})).await.unwrap_err();
    assert!(matches!(&err, Rejection::Issuer { found, .. } if found == "https://a/"));
    assert_eq!(
        err.to_string(),
        format!(
            "issuer \"https://a/\" is not one of [\"{}\", \"{}\"]",
            p.issuer_v2(),
            p.issuer_v1()
        )
    );

    let err = check(json!({"aud": "api://x"})).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "audience \"api://x\" not in allowedAudiences [\"{API}\", \"api://{API2}\"]: "
        )),
        "{text}"
    );
    // What to change, naming this API's scope and where a front end asks for it.
    assert!(
        text.contains(&format!("scope api://{API2}/.default"))
            && text.contains("login.loginParameters"),
        "{text}"
    );
    // An array audience passes when one member is allowed, fails when none is.
    assert!(check(json!({"aud": ["other", API]})).await.is_ok());
    assert!(matches!(
        check(json!({"aud": ["a", "b"]})).await.unwrap_err(),
        Rejection::Audience { found, .. } if found == vec!["a", "b"]
    ));
    assert_eq!(
        check(json!({"aud": null})).await.unwrap_err(),
        Rejection::MissingClaim("aud")
    );

    let err = check(json!({"exp": t - 600})).await.unwrap_err();
    assert!(matches!(err, Rejection::Expired { exp, .. } if exp == t - 600));
    assert!(err.to_string().starts_with("token expired at "), "{err}");
    // Within the five-minute skew.
    assert!(check(json!({"exp": t - 120})).await.is_ok());
    assert_eq!(
        check(json!({"exp": null})).await.unwrap_err(),
        Rejection::MissingClaim("exp")
    );
    assert!(matches!(
        check(json!({"exp": "tomorrow"})).await.unwrap_err(),
        Rejection::ClaimType { claim: "exp", .. }
    ));

    assert!(matches!(
        check(json!({"nbf": t + 900})).await.unwrap_err(),
        Rejection::NotYetValid { nbf, .. } if nbf == t + 900
    ));
    assert!(check(json!({"nbf": t + 120})).await.is_ok());
    assert!(matches!(
        check(json!({"iat": t + 900})).await.unwrap_err(),
        Rejection::IssuedInFuture { .. }
    ));

    // A payload changed after signing (here: the audience) fails the signature.
    let good = p.mint(json!({"aud": "api://x"}));
    let parts: Vec<&str> = good.split('.').collect();
    let forged_claims = p.claims(json!({}));
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(forged_claims.to_string().as_bytes()),
        parts[2]
    );
    let err = validator.validate(&tampered, &policy).await.unwrap_err();
    assert_eq!(err, Rejection::BadSignature);
    // A flipped signature byte too.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
    assert_eq!(
        validator.validate(&flipped, &policy).await.unwrap_err(),
        Rejection::BadSignature
    );

    for garbage in [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "!!.!!.!!",
        "a.b.c.d.e",
        &format!("{}.e30.", b64(b"[1,2]")),
    ] {
        let err = validator.validate(garbage, &policy).await.unwrap_err();
        assert!(matches!(err, Rejection::Malformed(_)), "{garbage:?}: {err}");
    }
    let huge = "a".repeat(70_000);
    assert!(matches!(
        validator.validate(&huge, &policy).await.unwrap_err(),
        Rejection::Malformed(_)
    ));
    // No message quotes the token or its signature.
    let err = validator.validate(&tampered, &policy).await.unwrap_err();
    assert!(!err.to_string().contains(parts[2]));
}

/// Refetch interval used where a test needs to see a refetch allowed again.
const QUICK: Duration = Duration::from_millis(1000);

#[tokio::test]
async fn unknown_kid_refetches_once_then_is_rate_limited() {
    assert_eq!(
        JwksSettings::default().min_refetch_interval,
        Duration::from_secs(30)
    );
    let p = Provider::start("kid").await;
    let validator =
        TokenValidator::with_settings(p.http(), fast_settings(QUICK, Duration::from_secs(3600)));
    let policy = p.policy();
    validator
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap();
    assert_eq!(p.jwks_hits(), 1);

    // A key the provider never published.
    let stranger = SigningKeys::load_or_create(&MemoryStore::new())
        .await
        .unwrap();
    let forge = || {
        stranger
            .sign(HeaderStyle::V2, &p.claims(json!({})))
            .unwrap()
    };
    // The keys were fetched a moment ago: no refetch yet.
    assert!(matches!(
        validator.validate(&forge(), &policy).await.unwrap_err(),
        Rejection::UnknownKid { .. }
    ));
    assert_eq!(
        p.jwks_hits(),
        1,
        "a fetch within the interval is not repeated"
    );

    tokio::time::sleep(QUICK + Duration::from_millis(50)).await;
    let err = validator.validate(&forge(), &policy).await.unwrap_err();
    assert_eq!(
        err,
        Rejection::UnknownKid {
            kid: stranger.active_kid().into(),
            jwks_uri: p.jwks_uri()
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "no key with kid \"{}\" in {} after refresh",
            stranger.active_kid(),
            p.jwks_uri()
        )
    );
    assert_eq!(p.jwks_hits(), 2, "an unknown kid refetches once");

    // More unknown kids within the interval: no further fetch.
    for _ in 0..5 {
        assert!(matches!(
            validator.validate(&forge(), &policy).await.unwrap_err(),
            Rejection::UnknownKid { .. }
        ));
    }
    assert_eq!(p.jwks_hits(), 2);
    assert_eq!(validator.jwks().fetch_count(&p.jwks_uri()), 2);

    // Once the interval has passed, one more refetch is allowed.
    tokio::time::sleep(QUICK + Duration::from_millis(50)).await;
    let _ = validator.validate(&forge(), &policy).await.unwrap_err();
    let _ = validator.validate(&forge(), &policy).await.unwrap_err();
    assert_eq!(p.jwks_hits(), 3);
}

#[tokio::test]
async fn a_rotated_key_is_found_by_one_refetch() {
    let p = Provider::start("rotate").await;
    let validator =
        TokenValidator::with_settings(p.http(), fast_settings(QUICK, Duration::from_secs(3600)));
    let policy = p.policy();
    validator
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap();

    // The provider starts publishing (and signing with) a second key.
    let other_store = MemoryStore::new();
    let next = SigningKeys::load_or_create(&other_store).await.unwrap();
    let record = other_store.list_signing_keys().await.unwrap().remove(0);
    p.store.insert_signing_key(&record).await.unwrap();
    p.stop().await;
    p.serve().await;
    tokio::time::sleep(QUICK).await;

    let token = next.sign(HeaderStyle::V2, &p.claims(json!({}))).unwrap();
    let t = validator.validate(&token, &policy).await.unwrap();
    assert_eq!(t.kid(), Some(next.active_kid()));
    assert_eq!(p.jwks_hits(), 2);
    // The old key is still published and still accepted, from the cache.
    validator
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap();
    assert_eq!(p.jwks_hits(), 2);
}

#[tokio::test]
async fn last_good_keys_survive_garbage_and_an_outage() {
    let p = Provider::start("outage").await;
    let validator = TokenValidator::with_settings(
        p.http(),
        fast_settings(Duration::from_millis(100), Duration::from_secs(3600)),
    );
    let policy = p.policy();
    validator
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap();
    let stranger = SigningKeys::load_or_create(&MemoryStore::new())
        .await
        .unwrap();
    let unknown = || {
        stranger
            .sign(HeaderStyle::V2, &p.claims(json!({})))
            .unwrap()
    };

    // The provider answers garbage: a refetch happens, fails, and the good keys stay.
    p.probe.garbage.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(matches!(
        validator.validate(&unknown(), &policy).await.unwrap_err(),
        Rejection::UnknownKid { .. }
    ));
    assert_eq!(p.jwks_hits(), 2, "the garbage was fetched");
    // Tokens never seen before (so not answered by the token cache) still verify.
    validator
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap();

    // The provider goes away entirely.
    p.probe.garbage.store(false, Ordering::SeqCst);
    p.stop().await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(matches!(
        validator.validate(&unknown(), &policy).await.unwrap_err(),
        Rejection::UnknownKid { .. }
    ));
    assert_eq!(
        validator.jwks().fetch_count(&p.jwks_uri()),
        3,
        "a fetch was attempted against the stopped provider"
    );
    validator
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap();

    // A validator that never had keys says why it has none.
    let fresh = TokenValidator::new(p.http());
    let err = fresh
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap_err();
    assert!(matches!(err, Rejection::KeysUnavailable { .. }), "{err}");
    assert!(err.to_string().contains(&p.jwks_uri()), "{err}");
}

/// Waits until `jwks_uri` has been fetched `n` times (background refreshes run on their own).
async fn wait_for_fetches(validator: &TokenValidator, jwks_uri: &str, n: u64) {
    for _ in 0..100 {
        if validator.jwks().fetch_count(jwks_uri) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "expected {n} fetches, saw {}",
        validator.jwks().fetch_count(jwks_uri)
    );
}

#[tokio::test]
async fn old_key_sets_are_refreshed_in_the_background() {
    let p = Provider::start("background").await;
    let max_age = Duration::from_millis(200);
    let validator =
        TokenValidator::with_settings(p.http(), fast_settings(Duration::from_millis(100), max_age));
    let policy = p.policy();
    let uri = p.jwks_uri();
    validator
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap();
    assert_eq!(validator.jwks().fetch_count(&uri), 1);

    // Past max age the current keys answer at once and a refresh runs behind the request.
    tokio::time::sleep(max_age + Duration::from_millis(50)).await;
    validator
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap();
    wait_for_fetches(&validator, &uri, 2).await;
    assert_eq!(p.jwks_hits(), 2);

    // When the provider is down the refresh fails and the keys in hand keep working.
    p.stop().await;
    tokio::time::sleep(max_age + Duration::from_millis(50)).await;
    validator
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap();
    wait_for_fetches(&validator, &uri, 3).await;
    validator
        .validate(&p.mint(json!({})), &policy)
        .await
        .unwrap();
    assert!(validator.jwks().cached(&uri).is_some());
}

#[tokio::test]
async fn cached_tokens_do_not_cross_policies() {
    let p = Provider::start("cache").await;
    let validator = TokenValidator::new(p.http());
    let policy = p.policy();
    let token = p.mint(json!({}));
    validator.validate(&token, &policy).await.unwrap();
    assert_eq!(validator.cached_tokens(), 1);
    // A hit: the same Arc, no work.
    let a = validator.validate(&token, &policy).await.unwrap();
    let b = validator.validate(&token, &policy).await.unwrap();
    assert!(Arc::ptr_eq(&a, &b));

    let other_audience = ValidationPolicy::new(
        policy.issuers.clone(),
        vec!["api://someone-else".into()],
        policy.jwks_uri.clone(),
    );
    assert!(matches!(
        validator
            .validate(&token, &other_audience)
            .await
            .unwrap_err(),
        Rejection::Audience { .. }
    ));
    let other_issuer = ValidationPolicy::new(
        vec!["https://elsewhere/".into()],
        policy.audiences.clone(),
        policy.jwks_uri.clone(),
    );
    assert!(matches!(
        validator.validate(&token, &other_issuer).await.unwrap_err(),
        Rejection::Issuer { .. }
    ));
    // A policy whose keys come from elsewhere must fetch (and fail) rather than reuse the entry.
    let other_keys = ValidationPolicy::new(
        policy.issuers.clone(),
        policy.audiences.clone(),
        format!("{}/nosuchtenant/discovery/v2.0/keys", p.base),
    );
    assert!(matches!(
        validator.validate(&token, &other_keys).await.unwrap_err(),
        Rejection::KeysUnavailable { .. }
    ));

    // Expiry is re-checked on every hit: the cached token is refused once past exp + skew.
    let short = p.mint(json!({"exp": now() + 5}));
    validator.validate(&short, &policy).await.unwrap();
    let err = validator
        .validate_at(&short, &policy, now() + 5 + 301)
        .await
        .unwrap_err();
    assert!(matches!(err, Rejection::Expired { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_fetch() {
    let p = Provider::start("flight").await;
    let validator = Arc::new(TokenValidator::with_settings(
        p.http(),
        fast_settings(QUICK, Duration::from_secs(3600)),
    ));
    let policy = Arc::new(p.policy());

    // Cold cache: 32 requests at once, one fetch.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (v, pol, token) = (validator.clone(), policy.clone(), p.mint(json!({})));
        tasks.spawn(async move { v.validate(&token, &pol).await.map(|_| ()) });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(p.jwks_hits(), 1);

    // A rotated key seen by 32 requests at once: one refetch.
    let other_store = MemoryStore::new();
    let next = SigningKeys::load_or_create(&other_store).await.unwrap();
    let record = other_store.list_signing_keys().await.unwrap().remove(0);
    p.store.insert_signing_key(&record).await.unwrap();
    p.stop().await;
    p.serve().await;
    tokio::time::sleep(QUICK).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let token = next.sign(HeaderStyle::V2, &p.claims(json!({}))).unwrap();
        let (v, pol) = (validator.clone(), policy.clone());
        tasks.spawn(async move { v.validate(&token, &pol).await.map(|_| ()) });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(p.jwks_hits(), 2);
    assert_eq!(validator.jwks().fetch_count(&p.jwks_uri()), 2);
}
