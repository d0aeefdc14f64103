//! `grant_type=refresh_token`: rotation with reuse detection. Each refresh token works once; its
//! successor belongs to the same family, and presenting a token that was already exchanged
//! revokes the whole family (a stolen copy and the legitimate one cannot both live on). The
//! `scope` may name another resource than the sign-in did (Entra's multi-resource refresh
//! tokens), when the client may use that resource for the user.

use axum::response::Response;

use super::GrantContext;
use super::delegated::{self, Delegation};
use crate::consent;
use crate::error::EntraError;
use crate::scopes::Scopes;
use crate::tokens::{IdTokenSpec, RefreshData};
use crate::util::{now, sha256_hex};

pub(super) async fn handle(ctx: &GrantContext<'_>) -> Result<Response, EntraError> {
    let presented = ctx.params.required("refresh_token")?;
    let request = ctx.client_request()?;
    let store = &ctx.idp.store;
    let dir = ctx.dir;
    let invalid = |reason: &str| EntraError::InvalidGrant {
        parameter: "refresh_token",
        reason: reason.into(),
    };
    let hash = sha256_hex(presented.as_bytes());
    let record = store
        .get_refresh_token(&hash)
        .await?
        .filter(|r| r.tenant_id == dir.tenant.id)
        .ok_or_else(|| invalid("The refresh token is unknown or malformed."))?;
    if !record.client_id.eq_ignore_ascii_case(&request.client_id) {
        return Err(invalid(
            "The refresh token was issued to a different client.",
        ));
    }
    let data: RefreshData =
        serde_json::from_str(&record.data).map_err(|e| EntraError::Internal(e.to_string()))?;
    let (client, acr) = request.authenticate(dir, &ctx.token_endpoints(), data.confidential)?;
    let now = now();
    if record.revoked {
        return Err(EntraError::GrantRevoked(
            "The refresh token has been revoked.".into(),
        ));
    }
    if record.used_at.is_some() {
        store.revoke_refresh_family(&record.family_id).await?;
        tracing::warn!(client = %client.app_id, user = %record.user_id, "refresh token reused; its family is revoked");
        return Err(EntraError::GrantRevoked(
            "The refresh token was already used; every token from the same sign-in has been revoked.".into(),
        ));
    }
    if record.expires_at <= now {
        return Err(EntraError::GrantExpired);
    }
    let user = dir
        .user(&record.user_id)
        .filter(|u| u.account_enabled)
        .ok_or_else(|| EntraError::UserNotFound(record.user_id.clone()))?;
    let scope_raw = ctx.params.get("scope").unwrap_or(&data.scope);
    let scopes = Scopes::parse(dir, scope_raw)?;
    let original = Scopes::parse(dir, &data.scope)?;
    // Neither this request nor the sign-in named a resource: only OpenID Connect scopes, answered
    // with a token for Graph's userinfo like the sign-in was.
    let resource = match scopes.single_resource(scope_raw)? {
        Some(r) => Some(r),
        None => original.single_resource(&data.scope)?,
    };
    if let Some(resource) = resource {
        // Refresh tokens are multi-resource, as Entra's are: one from a sign-in for ARM buys a
        // Graph token too. A resource the sign-in did not name needs a grant of its own
        // (consent, pre-authorization), not merely nothing missing: `/.default` of a resource
        // the client was never granted anything on would otherwise yield an empty `scp`.
        let scp = consent::effective(dir, &client, resource, Some(&user.id));
        let signed_in_for = original
            .resources
            .iter()
            .any(|r| r.app.app_id == resource.app.app_id);
        if !consent::missing(dir, &client, resource, Some(&user.id)).is_empty()
            || (!signed_in_for && scp.is_empty())
        {
            return Err(delegated::consent_required(&client));
        }
    }

    let (value, successor) =
        ctx.idp
            .new_refresh_token(dir, &client, user, &data, Some(&record.family_id))?;
    if !store.rotate_refresh_token(&hash, &successor, now).await? {
        // Another request exchanged this token first: treat it as reuse.
        store.revoke_refresh_family(&record.family_id).await?;
        return Err(EntraError::GrantRevoked(
            "The refresh token was already used.".into(),
        ));
    }
    let oidc = if ctx.params.get("scope").is_some() {
        scopes.oidc
    } else {
        original.oidc
    };
    let mut response = match resource {
        Some(resource) => {
            let delegation = Delegation {
                client: &client,
                acr,
                user,
                resource,
            };
            delegated::access_token(ctx.idp, dir, &delegation, &oidc)?
        }
        None => delegated::userinfo_token(ctx.idp, dir, &client, acr, user, &oidc)?,
    };
    response.refresh_token = Some(value);
    if oidc.openid {
        let spec = IdTokenSpec {
            profile: oidc.profile,
            email: oidc.email,
            auth_time: Some(data.auth_time),
            ..Default::default()
        };
        response.id_token = Some(ctx.idp.id_token(dir, &client, user, &spec)?);
    }
    if ctx.wants_client_info() {
        response.client_info = Some(ctx.idp.client_info(dir, user));
    }
    Ok(response.into_response_with(ctx.log(&client, "refresh_token")))
}
