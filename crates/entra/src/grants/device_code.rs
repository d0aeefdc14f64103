//! `grant_type=urn:ietf:params:oauth:grant-type:device_code`: the client polls with the device
//! code it got from the device authorization endpoint. `authorization_pending` until the person
//! finishes on the verification page (`slow_down` if the client polls faster than the interval),
//! `authorization_declined` if they cancelled, `expired_token` after the code's lifetime; then
//! the tokens, once: the code is single-use.

use axum::response::Response;
use easyauth_store::Consumed;

use super::{GrantContext, UserGrant};
use crate::endpoints::devicecode::{DEVICE_KIND, DeviceState};
use crate::error::EntraError;
use crate::util::{now, sha256_hex};

pub(super) async fn handle(ctx: &GrantContext<'_>) -> Result<Response, EntraError> {
    let device_code = ctx.params.required("device_code")?;
    let request = ctx.client_request()?;
    let idp = ctx.idp;
    let dir = ctx.dir;
    let key = sha256_hex(device_code.as_bytes());
    let record = idp
        .device_request(&key)
        .await?
        .ok_or(EntraError::BadVerificationCode)?;
    if !record.client_id.eq_ignore_ascii_case(&request.client_id) {
        return Err(EntraError::InvalidGrant {
            parameter: "device_code",
            reason: "The device code was issued to a different client.".into(),
        });
    }
    // Public clients (the Azure CLI) poll with their client id alone; an app with credentials
    // authenticates, unless its registration allows public client flows.
    let required = dir
        .app(&record.client_id)
        .is_some_and(|a| a.has_credentials() && a.is_fallback_public_client != Some(true));
    let (client, acr) = request.authenticate(dir, &ctx.token_endpoints(), required)?;
    if record.expires_at <= now() {
        return Err(EntraError::DeviceCodeExpired);
    }
    let (user_id, auth_time) = match &record.state {
        // RFC 8628's `slow_down` is a variant of pending; a finished request is answered at once.
        DeviceState::Pending => {
            return Err(if idp.device_poll_too_soon(&key, &record).await? {
                EntraError::SlowDown(record.interval)
            } else {
                EntraError::AuthorizationPending
            });
        }
        DeviceState::Declined => return Err(EntraError::AuthorizationDeclined),
        DeviceState::Approved { user_id, auth_time } => (user_id.clone(), *auth_time),
    };
    let user = dir
        .user(&user_id)
        .filter(|u| u.account_enabled)
        .ok_or_else(|| EntraError::UserNotFound(user_id.clone()))?;
    let grant = UserGrant {
        client: &client,
        acr,
        user,
        granted_scope: &record.scope,
        token_scope: ctx.params.get("scope").unwrap_or(&record.scope),
        nonce: None,
        auth_time,
        grant: "device_code",
    };
    // Everything that could refuse the request is checked before the code is used up.
    super::check_user_grant(dir, &grant)?;
    match idp.store.consume_ephemeral(DEVICE_KIND, &key).await? {
        Consumed::First { .. } => {}
        Consumed::Again { .. } => return Err(EntraError::CodeRedeemed),
        Consumed::Missing => return Err(EntraError::BadVerificationCode),
    }
    super::user_tokens(ctx, &grant).await
}
