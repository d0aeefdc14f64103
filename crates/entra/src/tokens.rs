//! Minting access tokens, ID tokens and refresh tokens with the claims Entra puts in them, and the
//! token endpoint's success response.

use aws_lc_rs::hmac;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use easyauth_store::RefreshTokenRecord;
use serde::{Deserialize, Serialize};

use crate::Idp;
use crate::directory::{Application, Directory, GRAPH_APP_ID, GRAPH_RESOURCE, User};
use crate::error::EntraError;
use crate::keys::HeaderStyle;
use crate::log::LogFields;
use crate::util::{b64url, now, random_token, sha256, sha256_hex};

/// How the client authenticated: `appidacr` / `azpacr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAcr {
    Public,
    Secret,
    Certificate,
}

impl ClientAcr {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAcr::Public => "0",
            ClientAcr::Secret => "1",
            ClientAcr::Certificate => "2",
        }
    }
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<&'a str>,
    aio: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    amr: Option<[&'a str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    appid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    appidacr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    azp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    azpacr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idtyp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    oid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    rh: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scp: Option<&'a str>,
    sub: &'a str,
    tid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upn: Option<&'a str>,
    uti: String,
    ver: &'a str,
}

/// What an access token is for and on whose behalf.
#[derive(Debug)]
pub struct AccessTokenSpec<'a> {
    pub client: &'a Application,
    pub acr: ClientAcr,
    pub resource: &'a Application,
    /// The resource identifier as the client wrote it (v1 `aud`).
    pub identifier: &'a str,
    pub user: Option<&'a User>,
    /// Delegated permissions (user tokens).
    pub scp: Option<String>,
    pub roles: Vec<String>,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    ver: &'a str,
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    oid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<&'a [String]>,
    tid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    c_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    aio: String,
    rh: &'a str,
    uti: String,
}

/// What an ID token says beyond the user.
#[derive(Debug, Default)]
pub struct IdTokenSpec<'a> {
    pub nonce: Option<&'a str>,
    pub profile: bool,
    pub email: bool,
    /// Authorization code this ID token accompanies (hybrid flow): adds `c_hash`.
    pub code: Option<&'a str>,
    pub auth_time: Option<i64>,
}

const RH: &str = "0.AAAAeasyauth";

impl Idp {
    /// Pairwise subject: stable per (user, application), different across applications.
    pub(crate) fn pairwise_sub(&self, user_id: &str, app_id: &str) -> String {
        let tag = hmac::sign(
            &self.pairwise_key,
            format!("{user_id}|{}", app_id.to_ascii_lowercase()).as_bytes(),
        );
        b64url(tag.as_ref())
    }

    /// Signs an access token; returns it with its lifetime in seconds.
    pub(crate) fn access_token(
        &self,
        dir: &Directory,
        spec: &AccessTokenSpec<'_>,
    ) -> Result<(String, i64), EntraError> {
        let v2 = spec.resource.access_token_version() == 2;
        let iat = now();
        let lifetime = self.config.access_token_lifetime;
        let aud: &str = if v2 {
            &spec.resource.app_id
        } else if spec.resource.app_id == GRAPH_APP_ID {
            GRAPH_RESOURCE
        } else {
            spec.identifier
        };
        let tid = dir.tenant.id.as_str();
        let user = spec.user;
        let oid = user.map_or(spec.client.service_principal_id.as_str(), |u| u.id.as_str());
        let sub = match user {
            Some(u) => self.pairwise_sub(&u.id, &spec.resource.app_id),
            None => oid.to_owned(),
        };
        let client = spec.client.app_id.as_str();
        let acr = spec.acr.as_str();
        let groups = user
            .filter(|u| {
                !u.groups.is_empty()
                    && spec
                        .resource
                        .group_membership_claims
                        .as_deref()
                        .is_some_and(|g| g != "None")
            })
            .map(|u| u.groups.as_slice());
        let claims = AccessClaims {
            aud,
            iss: if v2 { &self.issuer_v2 } else { &self.issuer_v1 },
            iat,
            nbf: iat,
            exp: iat + lifetime,
            acr: (!v2 && user.is_some()).then_some("1"),
            aio: random_token(24),
            amr: (!v2 && user.is_some()).then_some(["pwd"]),
            appid: (!v2).then_some(client),
            appidacr: (!v2).then_some(acr),
            azp: v2.then_some(client),
            azpacr: v2.then_some(acr),
            family_name: if v2 {
                None
            } else {
                user.and_then(|u| u.surname.as_deref())
            },
            given_name: if v2 {
                None
            } else {
                user.and_then(|u| u.given_name.as_deref())
            },
            groups,
            idtyp: user.is_none().then_some("app"),
            name: user.map(|u| u.display_name.as_str()),
            oid,
            preferred_username: if v2 {
                user.map(|u| u.user_principal_name.as_str())
            } else {
                None
            },
            rh: RH,
            roles: (!spec.roles.is_empty()).then_some(spec.roles.as_slice()),
            scp: spec.scp.as_deref(),
            sub: &sub,
            tid,
            unique_name: if v2 {
                None
            } else {
                user.map(|u| u.user_principal_name.as_str())
            },
            upn: if v2 {
                None
            } else {
                user.map(|u| u.user_principal_name.as_str())
            },
            uti: random_token(16),
            ver: if v2 { "2.0" } else { "1.0" },
        };
        let style = if v2 { HeaderStyle::V2 } else { HeaderStyle::V1 };
        let token = self
            .keys()
            .sign(style, &claims)
            .map_err(EntraError::Internal)?;
        Ok((token, lifetime))
    }

    /// Signs a v2 ID token for `client` about `user`.
    pub(crate) fn id_token(
        &self,
        dir: &Directory,
        client: &Application,
        user: &User,
        spec: &IdTokenSpec<'_>,
    ) -> Result<String, EntraError> {
        let iat = now();
        let roles = dir.assigned_roles(client, &user.id, "User");
        let claims = IdClaims {
            ver: "2.0",
            iss: &self.issuer_v2,
            sub: self.pairwise_sub(&user.id, &client.app_id),
            aud: &client.app_id,
            exp: iat + self.config.id_token_lifetime,
            iat,
            nbf: iat,
            name: spec.profile.then_some(user.display_name.as_str()),
            preferred_username: spec.profile.then_some(user.user_principal_name.as_str()),
            email: if spec.email {
                user.mail.as_deref()
            } else {
                None
            },
            oid: &user.id,
            roles: (!roles.is_empty()).then_some(roles.as_slice()),
            tid: &dir.tenant.id,
            nonce: spec.nonce,
            c_hash: spec.code.map(|code| b64url(&sha256(code.as_bytes())[..16])),
            auth_time: spec.auth_time,
            aio: random_token(24),
            rh: RH,
            uti: random_token(16),
        };
        self.keys()
            .sign(HeaderStyle::V2, &claims)
            .map_err(EntraError::Internal)
    }

    /// `client_info`: base64url `{"uid": <oid>, "utid": <tid>}`, which MSAL uses as the account key.
    pub(crate) fn client_info(&self, dir: &Directory, user: &User) -> String {
        b64url(
            serde_json::json!({"uid": user.id, "utid": dir.tenant.id})
                .to_string()
                .as_bytes(),
        )
    }

    /// Creates and stores a refresh token; `family` continues an existing rotation family.
    pub(crate) fn new_refresh_token(
        &self,
        dir: &Directory,
        client: &Application,
        user: &User,
        data: &RefreshData,
        family: Option<&str>,
    ) -> Result<(String, RefreshTokenRecord), EntraError> {
        let value = random_token(48);
        let issued_at = now();
        let record = RefreshTokenRecord {
            token_hash: sha256_hex(value.as_bytes()),
            family_id: family.map_or_else(|| random_token(16), str::to_owned),
            tenant_id: dir.tenant.id.clone(),
            client_id: client.app_id.clone(),
            user_id: user.id.clone(),
            data: serde_json::to_string(data).map_err(|e| EntraError::Internal(e.to_string()))?,
            issued_at,
            expires_at: issued_at + self.config.refresh_token_lifetime,
            used_at: None,
            revoked: false,
        };
        Ok((value, record))
    }
}

/// What a refresh token remembers about the sign-in it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshData {
    /// The scopes consented at sign-in (every resource), space-separated.
    pub scope: String,
    pub auth_time: i64,
    /// Issued to an authenticated (confidential) client, which must authenticate to redeem it.
    pub confidential: bool,
}

/// The token endpoint's success body.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub expires_in: i64,
    pub ext_expires_in: i64,
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_info: Option<String>,
}

impl TokenResponse {
    pub fn bearer(access_token: String, expires_in: i64) -> TokenResponse {
        TokenResponse {
            token_type: "Bearer",
            scope: None,
            expires_in,
            ext_expires_in: expires_in,
            access_token,
            refresh_token: None,
            id_token: None,
            client_info: None,
        }
    }

    pub(crate) fn into_response_with(self, fields: LogFields) -> Response {
        let mut response = axum::Json(self).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response.extensions_mut().insert(fields);
        response
    }
}

/// The `scope` a token response echoes: the resource scopes as the client spelled them, then the
/// OpenID Connect scopes granted.
pub(crate) fn response_scope(requested: &[String], oidc: &crate::scopes::OidcScopes) -> String {
    let mut out = requested.join(" ");
    for name in oidc.names() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(name);
    }
    out
}
