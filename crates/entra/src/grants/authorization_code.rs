//! `grant_type=authorization_code`: redeems a code from /authorize (PKCE checked, single use).

use axum::response::Response;
use easyauth_store::Consumed;

use super::GrantContext;
use crate::consent;
use crate::directory::{GRAPH_APP_ID, RedirectKind};
use crate::endpoints::authorize::{CODE_KIND, CodeRecord};
use crate::error::EntraError;
use crate::scopes::Scopes;
use crate::tokens::{
    AccessTokenSpec, ClientAcr, IdTokenSpec, RefreshData, TokenResponse, response_scope,
};
use crate::util::{b64url, clip, ct_eq, now, sha256, sha256_hex};

pub(super) async fn handle(ctx: &GrantContext<'_>) -> Result<Response, EntraError> {
    let code = ctx.params.required("code")?;
    let redirect_uri = ctx.params.required("redirect_uri")?;
    let request = ctx.client_request()?;
    let key = sha256_hex(code.as_bytes());
    let store = &ctx.idp.store;
    let invalid = |reason: &str| EntraError::InvalidGrant {
        parameter: "code",
        reason: reason.into(),
    };

    // Look before consuming, so a request with the wrong client or credential cannot burn the
    // user's code; consume (atomically) only once everything checks out.
    let Some(json) = store.get_ephemeral(CODE_KIND, &key, now()).await? else {
        return Err(match store.consume_ephemeral(CODE_KIND, &key).await? {
            Consumed::Missing => invalid("The code is unknown or malformed."),
            Consumed::Again { .. } => EntraError::CodeRedeemed,
            Consumed::First { .. } => EntraError::GrantExpired,
        });
    };
    let record: CodeRecord =
        serde_json::from_str(&json).map_err(|e| EntraError::Internal(e.to_string()))?;
    if !record.client_id.eq_ignore_ascii_case(&request.client_id) {
        return Err(invalid("The code was issued to a different client."));
    }
    let dir = ctx.dir;
    let client_app = dir.app(&record.client_id).cloned();
    let required = record.redirect_kind == RedirectKind::Web
        && client_app.as_ref().is_some_and(|a| a.has_credentials());
    let (client, acr) = request.authenticate(dir, &ctx.token_endpoints(), required)?;
    if record.redirect_uri != redirect_uri {
        return Err(EntraError::RedirectUriMismatch {
            uri: clip(redirect_uri, 300),
            client_id: client.app_id.clone(),
        });
    }
    match (&record.challenge, ctx.params.get("code_verifier")) {
        (Some((challenge, method)), verifier) => {
            let verifier = verifier.ok_or(EntraError::MissingParameter("code_verifier"))?;
            let computed = match method.as_str() {
                "S256" => b64url(&sha256(verifier.as_bytes())),
                _ => verifier.to_owned(),
            };
            if !ct_eq(computed.as_bytes(), challenge.as_bytes()) {
                return Err(EntraError::PkceMismatch);
            }
        }
        // RFC 9700 §2.1.1: a verifier for a code issued without a challenge means the code was
        // injected into another client's flow (a PKCE downgrade); refuse it.
        (None, Some(_)) => return Err(EntraError::VerifierWithoutChallenge),
        (None, None) => {}
    }
    match store.consume_ephemeral(CODE_KIND, &key).await? {
        Consumed::First { expires_at, .. } if expires_at > now() => {}
        Consumed::First { .. } => return Err(EntraError::GrantExpired),
        Consumed::Again { .. } => return Err(EntraError::CodeRedeemed),
        Consumed::Missing => return Err(invalid("The code is unknown or malformed.")),
    }

    let user = dir
        .user(&record.user_id)
        .filter(|u| u.account_enabled)
        .ok_or_else(|| EntraError::UserNotFound(record.user_id.clone()))?;
    let granted = Scopes::parse(dir, &record.scope)?;
    let token_scope_raw = ctx.params.get("scope").unwrap_or(&record.scope);
    let token_scopes = Scopes::parse(dir, token_scope_raw)?;
    let oidc = granted.oidc;
    let mut response = match token_scopes.single_resource(token_scope_raw)? {
        Some(resource) => {
            let missing = consent::missing(dir, &client, resource, Some(&user.id));
            if !missing.is_empty() {
                return Err(EntraError::ConsentRequired {
                    client_id: client.app_id.clone(),
                    client_name: client.display_name.clone(),
                });
            }
            let spec = AccessTokenSpec {
                client: &client,
                acr,
                resource: &resource.app,
                identifier: &resource.identifier,
                user: Some(user),
                scp: Some(consent::effective(dir, &client, resource, Some(&user.id)).join(" ")),
                roles: dir.assigned_roles(&resource.app, &user.id, "User"),
            };
            let (at, lifetime) = ctx.idp.access_token(dir, &spec)?;
            let mut r = TokenResponse::bearer(at, lifetime);
            r.scope = Some(response_scope(&resource.requested, &oidc));
            r
        }
        None => {
            // Only OpenID Connect scopes: a token for Graph's userinfo, as Entra issues.
            let graph = dir
                .app(GRAPH_APP_ID)
                .ok_or_else(|| EntraError::Internal("Graph is missing".into()))?;
            let scp: Vec<&str> = oidc.names().filter(|n| *n != "offline_access").collect();
            let spec = AccessTokenSpec {
                client: &client,
                acr,
                resource: graph,
                identifier: crate::directory::GRAPH_RESOURCE,
                user: Some(user),
                scp: Some(scp.join(" ")),
                roles: Vec::new(),
            };
            let (at, lifetime) = ctx.idp.access_token(dir, &spec)?;
            let mut r = TokenResponse::bearer(at, lifetime);
            r.scope = Some(response_scope(&[], &oidc));
            r
        }
    };
    if oidc.openid {
        let spec = IdTokenSpec {
            nonce: record.nonce.as_deref(),
            profile: oidc.profile,
            email: oidc.email,
            code: None,
            auth_time: Some(record.auth_time),
        };
        response.id_token = Some(ctx.idp.id_token(dir, &client, user, &spec)?);
    }
    if oidc.offline_access {
        let data = RefreshData {
            scope: record.scope.clone(),
            auth_time: record.auth_time,
            confidential: acr != ClientAcr::Public,
        };
        let (value, rt) = ctx.idp.new_refresh_token(dir, &client, user, &data, None);
        store.insert_refresh_token(&rt).await?;
        response.refresh_token = Some(value);
    }
    if ctx.wants_client_info() {
        response.client_info = Some(ctx.idp.client_info(dir, user));
    }
    Ok(response.into_response_with(ctx.log(&client, "authorization_code")))
}
