//! Client authentication at the token endpoint: `client_secret_post`, `client_secret_basic`, and
//! certificate client assertions (`private_key_jwt`) as MSAL builds them.

use crate::util::clip;
use std::sync::Arc;

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::credentials::{ClientCertificate, parse_rfc3339, verify_client_secret};
use crate::directory::{Application, Directory};
use crate::endpoints::form::Params;
use crate::error::EntraError;
use crate::tokens::ClientAcr;
use crate::util::now;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew tolerated on assertion times.
const SKEW: f64 = 300.0;

#[derive(Debug)]
enum Credential {
    None,
    Secret(String),
    Assertion(String),
}

/// The client named by a token request and the credential it presented.
#[derive(Debug)]
pub struct ClientRequest {
    pub client_id: String,
    credential: Credential,
}

impl ClientRequest {
    /// Reads `client_id` and the credential from the body or an HTTP Basic header.
    pub fn extract(params: &Params, headers: &HeaderMap) -> Result<ClientRequest, EntraError> {
        let basic = basic_credentials(headers)?;
        let body_id = params.get("client_id");
        let client_id = match (&basic, body_id) {
            (Some((id, _)), Some(body)) if id != body => {
                return Err(EntraError::Malformed(
                    "client_id in the body differs from the one in the Authorization header."
                        .into(),
                ));
            }
            (Some((id, _)), _) => id.clone(),
            (None, Some(body)) => body.to_owned(),
            (None, None) => return Err(EntraError::MissingParameter("client_id")),
        };
        let assertion = match (
            params.get("client_assertion_type"),
            params.get("client_assertion"),
        ) {
            (Some(ASSERTION_TYPE), Some(a)) => Some(a.to_owned()),
            (Some(other), _) if other != ASSERTION_TYPE => {
                return Err(EntraError::InvalidRequest {
                    code: 700023,
                    message: format!("Invalid client assertion type '{}'.", clip(other, 100)),
                });
            }
            (Some(_), None) => return Err(EntraError::MissingParameter("client_assertion")),
            (None, Some(_)) => return Err(EntraError::MissingParameter("client_assertion_type")),
            _ => None,
        };
        let secret = match (basic.map(|(_, s)| s), params.get("client_secret")) {
            (Some(_), Some(_)) => {
                return Err(EntraError::Malformed(
                    "The client secret was sent both in the body and in the Authorization header."
                        .into(),
                ));
            }
            (Some(s), None) => Some(s),
            (None, Some(s)) => Some(s.to_owned()),
            (None, None) => None,
        };
        let credential = match (secret, assertion) {
            (Some(_), Some(_)) => {
                return Err(EntraError::Malformed(
                    "Send either client_secret or client_assertion, not both.".into(),
                ));
            }
            (Some(s), None) => Credential::Secret(s),
            (None, Some(a)) => Credential::Assertion(a),
            (None, None) => Credential::None,
        };
        Ok(ClientRequest {
            client_id,
            credential,
        })
    }

    /// Looks the client up and checks its credential. `required` is true for grants that only
    /// confidential clients may use; a public client may not present a credential at all.
    pub fn authenticate(
        &self,
        dir: &Directory,
        token_endpoints: &[String],
        required: bool,
    ) -> Result<(Arc<Application>, ClientAcr), EntraError> {
        let app = dir
            .app(&self.client_id)
            .filter(|a| a.app_id.eq_ignore_ascii_case(&self.client_id))
            .ok_or_else(|| EntraError::UnknownClient {
                client_id: clip(&self.client_id, 64),
                tenant: dir.tenant.id.clone(),
            })?;
        match &self.credential {
            Credential::None if required => Err(EntraError::MissingClientCredential),
            Credential::None => Ok((app.clone(), ClientAcr::Public)),
            _ if !app.has_credentials() => Err(EntraError::PublicClientWithCredential),
            Credential::Secret(secret) => {
                verify_secret(app, secret).map(|()| (app.clone(), ClientAcr::Secret))
            }
            Credential::Assertion(jwt) => verify_assertion(app, jwt, token_endpoints)
                .map(|()| (app.clone(), ClientAcr::Certificate)),
        }
    }
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, EntraError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        EntraError::Malformed(
            "The Authorization header is not valid HTTP Basic client authentication.".into(),
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(malformed());
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    // RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Ok(Some((
        unescape(id).ok_or_else(malformed)?,
        unescape(secret).ok_or_else(malformed)?,
    )))
}

/// MSAL Python sends `x5t` base64url *with* `=` padding, msal-node without; Entra accepts both.
fn thumbprint_matches(sent: Option<&str>, registered: &str) -> bool {
    sent.is_some_and(|t| t.trim_end_matches('=') == registered)
}

fn verify_secret(app: &Application, secret: &str) -> Result<(), EntraError> {
    let now = now();
    let mut matched_expired = false;
    // Check every credential so timing does not reveal which one matched.
    let mut matched = false;
    for cred in &app.password_credentials {
        let Some(hash) = &cred.secret_hash else {
            continue;
        };
        if verify_client_secret(hash, secret) {
            let expired = cred
                .end_date_time
                .as_deref()
                .and_then(parse_rfc3339)
                .is_some_and(|end| end <= now);
            matched_expired |= expired;
            matched |= !expired;
        }
    }
    if matched {
        Ok(())
    } else if matched_expired {
        Err(EntraError::ExpiredClientSecret(app.app_id.clone()))
    } else {
        Err(EntraError::InvalidClientSecret(app.app_id.clone()))
    }
}

/// Validates a certificate client assertion: signature by a registered certificate (found by
/// `x5t` or `x5t#S256`), `aud` = this token endpoint, `iss` = `sub` = client id, current times.
/// MSAL Python writes `exp`/`iat` as floats and reuses one assertion for its lifetime, as Entra
/// allows, so times are read as numbers and `jti` is not treated as single-use.
fn verify_assertion(
    app: &Application,
    jwt: &str,
    token_endpoints: &[String],
) -> Result<(), EntraError> {
    let bad = |why: &str| EntraError::InvalidClientAssertion(why.into());
    let header = jsonwebtoken::decode_header(jwt)
        .map_err(|_| bad("The assertion is not a well-formed JWT."))?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(bad("The assertion must be signed with RS256 or PS256."));
    }
    let cert = app
        .key_credentials
        .iter()
        .filter_map(|k| ClientCertificate::parse(&k.key).ok().map(|c| (k, c)))
        .find(|(_, c)| {
            thumbprint_matches(header.x5t.as_deref(), &c.x5t)
                || thumbprint_matches(header.x5t_s256.as_deref(), &c.x5t_s256)
        });
    let Some((registered, cert)) = cert else {
        return Err(bad(
            "No certificate registered for the application matches the assertion's x5t or x5t#S256 thumbprint.",
        ));
    };
    let now_s = now();
    let end = registered
        .end_date_time
        .as_deref()
        .and_then(parse_rfc3339)
        .unwrap_or(i64::MAX);
    if cert.not_after < now_s || end < now_s {
        return Err(bad(
            "The certificate used to sign the assertion has expired.",
        ));
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Map<String, Value>>(
        jwt,
        &DecodingKey::from_rsa_der(&cert.rsa_public_key),
        &validation,
    )
    .map_err(|_| bad("The signature does not verify with the registered certificate."))?
    .claims;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(app.app_id.as_str()) || text("sub") != Some(app.app_id.as_str()) {
        return Err(bad(
            "The assertion's iss and sub must both be the client id.",
        ));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => token_endpoints.iter().any(|e| e == aud),
        Some(Value::Array(list)) => list.iter().any(|a| {
            a.as_str()
                .is_some_and(|a| token_endpoints.iter().any(|e| e == a))
        }),
        _ => false,
    };
    if !audience_ok {
        return Err(bad("The assertion's aud must be this token endpoint."));
    }
    let now_f = now_s as f64;
    match claims.get("exp").and_then(Value::as_f64) {
        Some(exp) if exp + SKEW >= now_f => {}
        Some(_) => return Err(EntraError::ExpiredClientAssertion),
        None => return Err(bad("The assertion has no numeric exp claim.")),
    }
    if claims
        .get("nbf")
        .and_then(Value::as_f64)
        .is_some_and(|nbf| nbf - SKEW > now_f)
    {
        return Err(EntraError::ExpiredClientAssertion);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::thumbprint_matches;

    #[test]
    fn thumbprints_match_with_or_without_base64_padding() {
        let registered = "rVPxhHDhVWbEWJ5baPMxZ3999Lo";
        assert!(thumbprint_matches(
            Some("rVPxhHDhVWbEWJ5baPMxZ3999Lo"),
            registered
        ));
        assert!(
            thumbprint_matches(Some("rVPxhHDhVWbEWJ5baPMxZ3999Lo="), registered),
            "MSAL Python pads"
        );
        assert!(!thumbprint_matches(
            Some("rVPxhHDhVWbEWJ5baPMxZ3999Lp"),
            registered
        ));
        assert!(!thumbprint_matches(Some(""), registered));
        assert!(!thumbprint_matches(None, registered));
    }
}
