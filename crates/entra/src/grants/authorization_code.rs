//! `grant_type=authorization_code`: redeems a code from /authorize (PKCE checked, single use).

use axum::response::Response;
use easyauth_store::Consumed;

use super::{GrantContext, UserGrant};
use crate::directory::RedirectKind;
use crate::endpoints::authorize::{CODE_KIND, CodeRecord};
use crate::error::EntraError;
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
        // RFC 9700 section 2.1.1: a verifier for a code issued without a challenge means the code was
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
    let grant = UserGrant {
        client: &client,
        acr,
        user,
        granted_scope: &record.scope,
        token_scope: ctx.params.get("scope").unwrap_or(&record.scope),
        nonce: record.nonce.as_deref(),
        auth_time: record.auth_time,
        grant: "authorization_code",
    };
    super::user_tokens(ctx, &grant).await
}
