//! The authorization request and its validation: the one path every step of the flow takes.
//!
//! The request is validated in Entra's order: problems with the client or the redirect URI are
//! shown on an error page (never redirected to an unverified URI); everything later is returned
//! to the redirect URI in the requested response mode. The sign-in and consent forms carry the
//! original request (`ctx`), and [`AuthorizeRequest::validate`] runs again from scratch when they
//! are submitted, since the browser could have changed it.

use std::sync::Arc;

use super::respond::{Rejection, ResponseMode, Target};
use crate::directory::{Application, Directory, RedirectKind};
use crate::endpoints::form::Params;
use crate::error::EntraError;
use crate::scopes::Scopes;
use crate::util::clip;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prompt {
    Default,
    Login,
    None,
    Consent,
    SelectAccount,
}

/// A validated authorization request.
#[derive(Debug)]
pub(super) struct AuthorizeRequest {
    pub(super) params: Params,
    pub(super) client: Arc<Application>,
    pub(super) redirect_uri: String,
    pub(super) redirect_kind: RedirectKind,
    pub(super) id_token: bool,
    pub(super) mode: ResponseMode,
    pub(super) scope_raw: String,
    pub(super) scopes: Scopes,
    pub(super) state: Option<String>,
    pub(super) nonce: Option<String>,
    pub(super) prompt: Prompt,
    pub(super) login_hint: Option<String>,
    pub(super) challenge: Option<(String, String)>,
    pub(super) client_info: bool,
}

impl From<(EntraError, &AuthorizeRequest)> for Rejection {
    fn from((error, req): (EntraError, &AuthorizeRequest)) -> Self {
        Rejection::Redirect {
            error,
            target: req.target(),
        }
    }
}

impl AuthorizeRequest {
    /// Every check of the authorize step. The authorize endpoint and each form that carries the
    /// request (sign-in, consent) call this, so a step entered directly cannot skip one.
    pub(super) fn validate(dir: &Directory, params: Params) -> Result<AuthorizeRequest, Rejection> {
        let client_id = params
            .get("client_id")
            .ok_or(Rejection::Page(EntraError::MissingParameter("client_id")))?;
        let client = dir
            .app(client_id)
            .filter(|a| a.app_id.eq_ignore_ascii_case(client_id))
            .ok_or_else(|| {
                Rejection::Page(EntraError::UnknownClient {
                    client_id: clip(client_id, 64),
                    tenant: dir.tenant.id.clone(),
                })
            })?
            .clone();
        let redirect_uri = params
            .get("redirect_uri")
            .ok_or(Rejection::Page(EntraError::InvalidRequest {
                code: 900971,
                message: "No reply address provided.".into(),
            }))?
            .to_owned();
        let redirect_kind = client.redirect_kind(&redirect_uri).ok_or_else(|| {
            Rejection::Page(EntraError::RedirectUriMismatch {
                uri: clip(&redirect_uri, 300),
                client_id: client.app_id.clone(),
            })
        })?;
        let state = params.get("state").map(str::to_owned);
        let response_type = params.get("response_type");
        let mut words: Vec<&str> = response_type.unwrap_or("").split_whitespace().collect();
        words.sort_unstable();
        let id_token = match words.as_slice() {
            ["code"] => false,
            ["code", "id_token"] => true,
            _ => {
                let error = match response_type {
                    None => EntraError::MissingParameter("response_type"),
                    Some(t) => EntraError::UnsupportedResponseType(clip(t, 50)),
                };
                let mode = if response_type.is_some_and(|t| t.contains("id_token")) {
                    ResponseMode::Fragment
                } else {
                    ResponseMode::Query
                };
                return Err(Rejection::Redirect {
                    error,
                    target: Target {
                        redirect_uri,
                        mode,
                        state,
                    },
                });
            }
        };
        let default_mode = if id_token {
            ResponseMode::Fragment
        } else {
            ResponseMode::Query
        };
        let mode = match params.get("response_mode") {
            None => default_mode,
            Some("query") if !id_token => ResponseMode::Query,
            Some("fragment") => ResponseMode::Fragment,
            Some("form_post") => ResponseMode::FormPost,
            Some(other) => {
                let message = if other == "query" {
                    "The response_mode 'query' is not allowed when an id_token is requested."
                        .to_owned()
                } else {
                    format!("The response_mode '{}' is not supported.", clip(other, 50))
                };
                return Err(Rejection::Redirect {
                    error: EntraError::InvalidRequest {
                        code: 900352,
                        message,
                    },
                    target: Target {
                        redirect_uri,
                        mode: default_mode,
                        state,
                    },
                });
            }
        };
        let mut req = AuthorizeRequest {
            client,
            redirect_uri,
            redirect_kind,
            id_token,
            mode,
            scope_raw: String::new(),
            scopes: Scopes::default(),
            state,
            nonce: params.get("nonce").map(str::to_owned),
            prompt: Prompt::Default,
            login_hint: params.get("login_hint").map(str::to_owned),
            challenge: None,
            client_info: params.get("client_info") == Some("1"),
            params,
        };
        let fail = |e: EntraError, r: &AuthorizeRequest| Err(Rejection::from((e, r)));
        let invalid = |code: u32, message: String, r: &AuthorizeRequest| {
            fail(EntraError::InvalidRequest { code, message }, r)
        };
        if req.id_token
            && !req
                .client
                .web
                .implicit_grant_settings
                .enable_id_token_issuance
        {
            return fail(EntraError::ResponseTypeNotEnabled("id_token".into()), &req);
        }
        if req.params.get("resource").is_some() {
            return fail(EntraError::ResourceParameterUnsupported, &req);
        }
        let Some(scope_raw) = req.params.get("scope").map(str::to_owned) else {
            return fail(EntraError::MissingParameter("scope"), &req);
        };
        match Scopes::parse(dir, &scope_raw) {
            Ok(s) => req.scopes = s,
            Err(e) => return fail(e, &req),
        }
        req.scope_raw = scope_raw;
        if req.id_token && !req.scopes.oidc.openid {
            return invalid(
                900144,
                "An id_token was requested but the scope does not include 'openid'.".into(),
                &req,
            );
        }
        if req.id_token && req.nonce.is_none() {
            return fail(EntraError::MissingParameter("nonce"), &req);
        }
        req.prompt = match req.params.get("prompt") {
            None => Prompt::Default,
            Some("login") => Prompt::Login,
            Some("none") => Prompt::None,
            Some("consent") => Prompt::Consent,
            Some("select_account") => Prompt::SelectAccount,
            Some(other) => {
                let message = format!(
                    "Invalid value '{}' for the 'prompt' parameter.",
                    clip(other, 50)
                );
                return invalid(90023, message, &req);
            }
        };
        if req.prompt == Prompt::SelectAccount && req.login_hint.is_some() {
            let message = "login_hint and prompt=select_account cannot be used together.".into();
            return invalid(90023, message, &req);
        }
        if let Some(challenge) = req.params.get("code_challenge") {
            let method = req.params.get("code_challenge_method").unwrap_or("plain");
            let valid_len = (43..=128).contains(&challenge.len());
            if !matches!(method, "S256" | "plain") {
                let message = format!(
                    "Invalid code_challenge_method '{}'. Use 'S256' or 'plain'.",
                    clip(method, 20)
                );
                return invalid(501491, message, &req);
            }
            if !valid_len
                || !challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            {
                return invalid(
                    501491,
                    "Invalid size of Code_Challenge parameter.".into(),
                    &req,
                );
            }
            req.challenge = Some((challenge.to_owned(), method.to_owned()));
        } else if req.redirect_kind == RedirectKind::Spa {
            return fail(EntraError::InvalidRequest { code: 9002325, message: "Proof Key for Code Exchange is required for cross-origin authorization code redemption.".into() }, &req);
        }
        Ok(req)
    }

    pub(super) fn target(&self) -> Target {
        Target {
            redirect_uri: self.redirect_uri.clone(),
            mode: self.mode,
            state: self.state.clone(),
        }
    }
}
