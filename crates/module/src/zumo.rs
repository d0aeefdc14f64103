//! `X-ZUMO-AUTH`: the `authenticationToken` of a client-directed session, an HS256 JWT issued by
//! and for one site with the site's signing key.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::now;
use crate::cookies::CookieKeys;
use crate::ids::sha256_hex;
use crate::oidc::validate::MAX_TOKEN_LEN;
use crate::site::Site;

/// The `X-ZUMO-AUTH` value, taken out of the headers before anything else runs (the app must never
/// see it) and handed to identification in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct ZumoToken(pub(crate) String);

/// Claims of the `X-ZUMO-AUTH` token (App Service's "authenticationToken").
#[derive(Debug, Serialize, Deserialize)]
struct ZumoClaims {
    sub: String,
    sid: String,
    idp: String,
    ver: String,
    iss: String,
    aud: String,
    exp: i64,
    nbf: i64,
}

/// The user id App Service reports for a client-directed session.
pub(crate) fn user_id(sid: &str) -> String {
    format!("sid:{}", &sha256_hex(sid.as_bytes())[..32])
}

/// An `authenticationToken` for session `sid`; issued by and for `site`.
pub(crate) fn issue(
    keys: &CookieKeys,
    site: &Site,
    sid: &str,
    provider: &str,
    expires: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = ZumoClaims {
        sub: user_id(sid),
        sid: sid.to_owned(),
        idp: provider.to_owned(),
        ver: "3".into(),
        iss: site.base(),
        aud: site.base(),
        exp: expires,
        nbf: now(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&keys.signing),
    )
}

/// The session id in a valid token (HS256 with this site's signing key only); `leeway` admits
/// a token that expired that many seconds ago.
pub(crate) fn session_id(
    keys: &CookieKeys,
    site: &Site,
    token: &str,
    leeway: u64,
) -> Option<String> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[site.base()]);
    validation.set_issuer(&[site.base()]);
    validation.leeway = leeway;
    jsonwebtoken::decode::<ZumoClaims>(token, &DecodingKey::from_secret(&keys.signing), &validation)
        .ok()
        .map(|d| d.claims.sid)
}
