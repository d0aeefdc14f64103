//! `grant_type=client_credentials`: an app-only token for `<resource>/.default`, carrying the
//! app roles assigned to the client on that resource.

use axum::response::Response;

use super::GrantContext;
use crate::error::EntraError;
use crate::scopes::Scopes;
use crate::tokens::{AccessTokenSpec, TokenResponse};

pub(super) async fn handle(ctx: &GrantContext<'_>) -> Result<Response, EntraError> {
    let (client, acr) = ctx.client(true)?;
    // An app-only token is issued to the app's service principal; an app registered through
    // Graph has none until one is created (`az ad sp create`). The error's `error` string is
    // UNCONFIRMED.
    if client.without_service_principal {
        return Err(EntraError::InvalidRequest {
            code: 7000229,
            message: format!(
                "The client application {} is missing service principal in the tenant {}.",
                client.app_id, ctx.dir.tenant.id
            ),
        });
    }
    let raw = ctx.params.required("scope")?;
    let dir = ctx.dir;
    let scopes = Scopes::parse(dir, raw)?;
    let resource = match scopes.single_resource(raw) {
        Ok(Some(r)) => r,
        Ok(None) | Err(EntraError::MultipleResources(_)) => {
            return Err(EntraError::InvalidScope {
                scope: raw.into(),
                reason: "The client credentials flow takes exactly one scope of the form <resource>/.default.".into(),
            });
        }
        Err(e) => return Err(e),
    };
    if !resource.default {
        return Err(EntraError::InvalidScope {
            scope: raw.into(),
            reason: "The client credentials flow requires the /.default scope of the resource."
                .into(),
        });
    }
    let spec = AccessTokenSpec {
        client: &client,
        acr,
        resource: &resource.app,
        identifier: &resource.identifier,
        user: None,
        scp: None,
        roles: dir.assigned_roles(&resource.app, &client.app_id, "Application"),
    };
    let (token, lifetime) = ctx.idp.access_token(dir, &spec)?;
    Ok(TokenResponse::bearer(token, lifetime)
        .into_response_with(ctx.log(&client, "client_credentials")))
}
