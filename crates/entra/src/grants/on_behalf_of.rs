//! On-behalf-of (`jwt-bearer` with `requested_token_use=on_behalf_of`): a middle-tier API trades
//! the user's access token it received for a token to a downstream API. The assertion must be a
//! user token this tenant issued to the calling app (its `aud` is the caller); the new token's
//! audience is the downstream API and its permissions are what the user consented the caller.

use crate::util::clip;
use axum::response::Response;
use serde_json::Value;

use super::GrantContext;
use super::delegated::{self, Delegation};
use crate::error::EntraError;
use crate::keys::VerifyError;
use crate::scopes::Scopes;
use crate::tokens::{IdTokenSpec, RefreshData};
use crate::util::now;

/// Clock skew tolerated on the assertion's times.
const SKEW: i64 = 300;

pub(super) async fn handle(ctx: &GrantContext<'_>) -> Result<Response, EntraError> {
    match ctx.params.required("requested_token_use")? {
        "on_behalf_of" => {}
        other => {
            return Err(EntraError::InvalidRequest {
                code: 50027,
                message: format!(
                    "Invalid requested_token_use '{}'; only 'on_behalf_of' is supported.",
                    clip(other, 50)
                ),
            });
        }
    }
    let assertion = ctx.params.required("assertion")?;
    let raw = ctx.params.required("scope")?;
    let (client, acr) = ctx.client(true)?;
    let dir = ctx.dir;
    let idp = ctx.idp;

    let claims = idp.verify_own(assertion).await.map_err(|e| match e {
        VerifyError::Malformed => EntraError::InvalidAssertion("the assertion is not a JWT".into()),
        other => EntraError::InvalidAssertion(other.to_string()),
    })?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let iss = text("iss").unwrap_or_default();
    if iss != idp.issuer_v2 && iss != idp.issuer_v1 {
        return Err(EntraError::InvalidAssertion(format!(
            "issuer '{iss}' is not this tenant"
        )));
    }
    let now = now();
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    if exp + SKEW < now || nbf - SKEW > now {
        return Err(EntraError::AssertionExpired);
    }
    let aud = text("aud").unwrap_or_default();
    let for_caller = aud.eq_ignore_ascii_case(&client.app_id)
        || client
            .identifier_uris
            .iter()
            .any(|u| u.eq_ignore_ascii_case(aud));
    if text("scp").is_none() {
        // An ID token (it has a nonce or no client claim) or an app-only token: neither may be exchanged.
        let id_token =
            claims.contains_key("nonce") || (text("azp").is_none() && text("appid").is_none());
        return Err(if id_token {
            EntraError::IdTokenAsAssertion
        } else {
            EntraError::InvalidAssertion("app-only tokens cannot be used for on-behalf-of".into())
        });
    }
    if !for_caller {
        return Err(EntraError::InvalidAssertion(format!(
            "the assertion's audience '{aud}' is not the calling application {}",
            client.app_id
        )));
    }
    let user = text("oid")
        .and_then(|oid| dir.user(oid))
        .filter(|u| u.account_enabled)
        .ok_or_else(|| EntraError::UserNotFound(text("oid").unwrap_or("(none)").into()))?;

    let scopes = Scopes::parse(dir, raw)?;
    let resource = scopes
        .single_resource(raw)?
        .ok_or_else(|| EntraError::InvalidScope {
            scope: raw.into(),
            reason: "Name the downstream API.".into(),
        })?;
    let delegation = Delegation {
        client: &client,
        acr,
        user,
        resource,
    };
    let mut response = delegated::access_token(idp, dir, &delegation, &scopes.oidc)?;
    let auth_time = claims.get("iat").and_then(Value::as_i64).unwrap_or(now);
    if scopes.oidc.openid {
        let spec = IdTokenSpec {
            profile: scopes.oidc.profile,
            email: scopes.oidc.email,
            ..Default::default()
        };
        response.id_token = Some(idp.id_token(dir, &client, user, &spec)?);
    }
    if scopes.oidc.offline_access {
        let data = RefreshData {
            scope: raw.to_owned(),
            auth_time,
            confidential: true,
        };
        let (value, rt) = idp.new_refresh_token(dir, &client, user, &data, None)?;
        idp.store.insert_refresh_token(&rt).await?;
        response.refresh_token = Some(value);
    }
    if ctx.wants_client_info() {
        response.client_info = Some(idp.client_info(dir, user));
    }
    Ok(response.into_response_with(ctx.log(&client, "on_behalf_of")))
}
