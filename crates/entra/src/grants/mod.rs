//! One module per `grant_type`, behind a dispatcher (the shape of dex's `server/grants`).
//! Parameters no grant reads (`claims` with MSAL's `CP1` capability, `client_info` where no user
//! is involved, telemetry) are accepted and ignored, as Entra does.

mod authorization_code;
mod client_credentials;
mod delegated;
mod device_code;
mod on_behalf_of;
mod refresh_token;

use crate::util::clip;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::Idp;
use crate::client_auth::ClientRequest;
use crate::consent;
use crate::directory::{Application, Directory, User};
use crate::endpoints::form::Params;
use crate::error::EntraError;
use crate::log::LogFields;
use crate::scopes::Scopes;
use crate::tokens::{ClientAcr, IdTokenSpec, RefreshData};
use delegated::Delegation;

pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub(crate) const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Everything a grant handler needs about the request.
pub(crate) struct GrantContext<'a> {
    pub(crate) idp: &'a Idp,
    pub(crate) dir: &'a Directory,
    pub(crate) params: &'a Params,
    pub(crate) headers: &'a HeaderMap,
}

impl GrantContext<'_> {
    /// Authenticates the client; `required` for grants only confidential clients may use.
    pub(crate) fn client(
        &self,
        required: bool,
    ) -> Result<(std::sync::Arc<Application>, ClientAcr), EntraError> {
        let request = ClientRequest::extract(self.params, self.headers)?;
        request.authenticate(self.dir, &self.token_endpoints(), required)
    }

    pub(crate) fn client_request(&self) -> Result<ClientRequest, EntraError> {
        ClientRequest::extract(self.params, self.headers)
    }

    /// Every spelling of this token endpoint a client assertion may use as `aud`.
    pub(crate) fn token_endpoints(&self) -> Vec<String> {
        let base = &self.idp.config.public_url;
        let mut out = Vec::with_capacity(6);
        for t in [&self.dir.tenant.id, &self.dir.tenant.domain] {
            out.push(format!("{base}/{t}/oauth2/v2.0/token"));
            out.push(format!("{base}/{t}/oauth2/token"));
        }
        out
    }

    pub(crate) fn log(&self, client: &Application, grant: &'static str) -> LogFields {
        LogFields {
            tenant: Some(self.dir.tenant.id.clone()),
            client: Some(client.app_id.clone()),
            grant: Some(grant),
        }
    }

    pub(crate) fn wants_client_info(&self) -> bool {
        self.params.get("client_info") == Some("1")
    }
}

/// The grant's name for the log, for known grant types only.
pub(crate) fn grant_name(grant_type: &str) -> Option<&'static str> {
    match grant_type {
        "authorization_code" => Some("authorization_code"),
        "refresh_token" => Some("refresh_token"),
        "client_credentials" => Some("client_credentials"),
        JWT_BEARER => Some("on_behalf_of"),
        DEVICE_CODE => Some("device_code"),
        _ => None,
    }
}

pub(crate) async fn dispatch(ctx: &GrantContext<'_>) -> Result<Response, EntraError> {
    if ctx.params.get("resource").is_some() {
        return Err(EntraError::ResourceParameterUnsupported);
    }
    match ctx.params.required("grant_type")? {
        "authorization_code" => authorization_code::handle(ctx).await,
        "refresh_token" => refresh_token::handle(ctx).await,
        "client_credentials" => client_credentials::handle(ctx).await,
        JWT_BEARER => on_behalf_of::handle(ctx).await,
        DEVICE_CODE => device_code::handle(ctx).await,
        other => Err(EntraError::UnsupportedGrantType(clip(other, 100))),
    }
}

/// A user's sign-in that a grant (an authorization code, a device code) turns into tokens.
#[derive(Debug)]
pub(crate) struct UserGrant<'a> {
    pub(crate) client: &'a Application,
    pub(crate) acr: ClientAcr,
    pub(crate) user: &'a User,
    /// What the user signed in and consented for (every resource, OpenID Connect scopes): the
    /// refresh token remembers it.
    pub(crate) granted_scope: &'a str,
    /// The scopes of this token: the request's `scope`, else the granted ones.
    pub(crate) token_scope: &'a str,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) auth_time: i64,
    pub(crate) grant: &'static str,
}

/// Everything [`user_tokens`] refuses, checked without issuing anything, so a grant can verify
/// the request before it uses up a single-use code.
pub(crate) fn check_user_grant(dir: &Directory, g: &UserGrant<'_>) -> Result<(), EntraError> {
    Scopes::parse(dir, g.granted_scope)?;
    let token_scopes = Scopes::parse(dir, g.token_scope)?;
    if let Some(resource) = token_scopes.single_resource(g.token_scope)?
        && !consent::missing(dir, g.client, resource, Some(&g.user.id)).is_empty()
    {
        return Err(delegated::consent_required(g.client));
    }
    Ok(())
}

/// The token response for a user's grant: the access token for the one resource named (Graph's
/// userinfo when only OpenID Connect scopes are), the ID token with `openid`, a refresh token
/// with `offline_access`, and `client_info` when asked.
pub(crate) async fn user_tokens(
    ctx: &GrantContext<'_>,
    g: &UserGrant<'_>,
) -> Result<Response, EntraError> {
    let dir = ctx.dir;
    let (client, user) = (g.client, g.user);
    let granted = Scopes::parse(dir, g.granted_scope)?;
    let token_scopes = Scopes::parse(dir, g.token_scope)?;
    let oidc = granted.oidc;
    let mut response = match token_scopes.single_resource(g.token_scope)? {
        Some(resource) => {
            let delegation = Delegation {
                client,
                acr: g.acr,
                user,
                resource,
            };
            delegated::access_token(ctx.idp, dir, &delegation, &oidc)?
        }
        None => delegated::userinfo_token(ctx.idp, dir, client, g.acr, user, &oidc)?,
    };
    if oidc.openid {
        let spec = IdTokenSpec {
            nonce: g.nonce,
            profile: oidc.profile,
            email: oidc.email,
            code: None,
            auth_time: Some(g.auth_time),
        };
        response.id_token = Some(ctx.idp.id_token(dir, client, user, &spec)?);
    }
    if oidc.offline_access {
        let data = RefreshData {
            scope: g.granted_scope.to_owned(),
            auth_time: g.auth_time,
            confidential: g.acr != ClientAcr::Public,
        };
        let (value, rt) = ctx.idp.new_refresh_token(dir, client, user, &data, None)?;
        ctx.idp.store.insert_refresh_token(&rt).await?;
        response.refresh_token = Some(value);
    }
    if ctx.wants_client_info() {
        response.client_info = Some(ctx.idp.client_info(dir, user));
    }
    Ok(response.into_response_with(ctx.log(client, g.grant)))
}
