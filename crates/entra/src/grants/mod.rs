//! One module per `grant_type`, behind a dispatcher (the shape of dex's `server/grants`).

mod authorization_code;
mod client_credentials;
mod on_behalf_of;
mod refresh_token;

use crate::util::clip;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::Idp;
use crate::client_auth::ClientRequest;
use crate::directory::{Application, Directory};
use crate::endpoints::form::Params;
use crate::error::EntraError;
use crate::log::LogFields;
use crate::tokens::ClientAcr;

pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

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
        other => Err(EntraError::UnsupportedGrantType(clip(other, 100))),
    }
}
