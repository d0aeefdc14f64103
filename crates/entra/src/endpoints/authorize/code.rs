//! The authorization code: its server-side record and the redirect that hands it to the client.

use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::request::AuthorizeRequest;
use super::respond::{reject, respond};
use crate::Idp;
use crate::directory::{Directory, RedirectKind, User};
use crate::error::EntraError;
use crate::log::LogFields;
use crate::session::SignInSession;
use crate::tokens::IdTokenSpec;
use crate::util::{now, random_token, sha256_hex};

pub(crate) const CODE_KIND: &str = "authorization-code";

/// The code's server-side record.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CodeRecord {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) redirect_kind: RedirectKind,
    pub(crate) user_id: String,
    pub(crate) scope: String,
    pub(crate) nonce: Option<String>,
    pub(crate) challenge: Option<(String, String)>,
    pub(crate) auth_time: i64,
}

/// Stores a code for the signed-in, consented `user` and sends it (with an ID token in the
/// hybrid flow) to the redirect URI.
pub(super) async fn issue(
    idp: &Idp,
    dir: &Directory,
    req: &AuthorizeRequest,
    user: &User,
    session: &SignInSession,
) -> Response {
    let code = random_token(48);
    let record = CodeRecord {
        client_id: req.client.app_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        redirect_kind: req.redirect_kind,
        user_id: user.id.clone(),
        scope: req.scope_raw.clone(),
        nonce: req.nonce.clone(),
        challenge: req.challenge.clone(),
        auth_time: session.auth_time,
    };
    let json = match serde_json::to_string(&record) {
        Ok(json) => json,
        Err(e) => return reject((EntraError::Internal(e.to_string()), req).into()),
    };
    if let Err(e) = idp
        .store
        .put_ephemeral(
            CODE_KIND,
            &sha256_hex(code.as_bytes()),
            &json,
            now() + idp.config.code_lifetime,
        )
        .await
    {
        return reject((EntraError::from(e), req).into());
    }
    let mut fields: Vec<(&str, String)> = vec![("code", code.clone())];
    if req.id_token {
        let spec = IdTokenSpec {
            nonce: req.nonce.as_deref(),
            profile: req.scopes.oidc.profile,
            email: req.scopes.oidc.email,
            code: Some(&code),
            auth_time: Some(session.auth_time),
        };
        match idp.id_token(dir, &req.client, user, &spec) {
            Ok(t) => fields.push(("id_token", t)),
            Err(e) => return reject((e, req).into()),
        }
    }
    if let Some(state) = &req.state {
        fields.push(("state", state.clone()));
    }
    if req.client_info {
        fields.push(("client_info", idp.client_info(dir, user)));
    }
    fields.push((
        "session_state",
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, session.id.as_bytes()).to_string(),
    ));
    let mut response = respond(&req.target(), &fields);
    response
        .extensions_mut()
        .insert(LogFields::for_client(dir, &req.client));
    response
}
