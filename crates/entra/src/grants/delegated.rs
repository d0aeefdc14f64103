//! The delegated access token: a user's token for one resource, carrying the permissions the
//! user (or an administrator, or pre-authorization) consented the client. The authorization-code,
//! device-code, refresh and on-behalf-of grants all mint it here, so the consent check and the
//! claims cannot drift apart between grants.

use crate::Idp;
use crate::consent;
use crate::directory::{Application, Directory, GRAPH_APP_ID, GRAPH_RESOURCE, User};
use crate::error::EntraError;
use crate::scopes::{OidcScopes, ResourceScopes};
use crate::tokens::{AccessTokenSpec, ClientAcr, TokenResponse, response_scope};

/// Who asks, for whom, for what.
pub(super) struct Delegation<'a> {
    pub(super) client: &'a Application,
    pub(super) acr: ClientAcr,
    pub(super) user: &'a User,
    pub(super) resource: &'a ResourceScopes,
}

/// AADSTS65001: the user has not consented the client to something the request names.
pub(super) fn consent_required(client: &Application) -> EntraError {
    EntraError::ConsentRequired {
        client_id: client.app_id.clone(),
        client_name: client.display_name.clone(),
    }
}

/// The token response with the access token for `d.resource` (`scope` lists its permissions and
/// the OpenID Connect scopes in `oidc`); refused when any requested permission lacks consent.
pub(super) fn access_token(
    idp: &Idp,
    dir: &Directory,
    d: &Delegation<'_>,
    oidc: &OidcScopes,
) -> Result<TokenResponse, EntraError> {
    let user_id = Some(d.user.id.as_str());
    if !consent::missing(dir, d.client, d.resource, user_id).is_empty() {
        return Err(consent_required(d.client));
    }
    let spec = AccessTokenSpec {
        client: d.client,
        acr: d.acr,
        resource: &d.resource.app,
        identifier: &d.resource.identifier,
        user: Some(d.user),
        scp: Some(consent::effective(dir, d.client, d.resource, user_id).join(" ")),
        roles: dir.assigned_roles(&d.resource.app, &d.user.id, "User"),
    };
    let (token, lifetime) = idp.access_token(dir, &spec)?;
    let mut response = TokenResponse::bearer(token, lifetime);
    response.scope = Some(response_scope(&d.resource.requested, oidc));
    Ok(response)
}

/// The token response when only OpenID Connect scopes were asked for: an access token for
/// Microsoft Graph's userinfo carrying those scopes, as Entra issues (the sign-in and every
/// refresh of it answer the same way).
pub(super) fn userinfo_token(
    idp: &Idp,
    dir: &Directory,
    client: &Application,
    acr: ClientAcr,
    user: &User,
    oidc: &OidcScopes,
) -> Result<TokenResponse, EntraError> {
    let graph = dir
        .app(GRAPH_APP_ID)
        .ok_or_else(|| EntraError::Internal("Graph is missing".into()))?;
    let scp: Vec<&str> = oidc.names().filter(|n| *n != "offline_access").collect();
    let spec = AccessTokenSpec {
        client,
        acr,
        resource: graph,
        identifier: GRAPH_RESOURCE,
        user: Some(user),
        scp: Some(scp.join(" ")),
        roles: Vec::new(),
    };
    let (token, lifetime) = idp.access_token(dir, &spec)?;
    let mut response = TokenResponse::bearer(token, lifetime);
    response.scope = Some(response_scope(&[], oidc));
    Ok(response)
}
