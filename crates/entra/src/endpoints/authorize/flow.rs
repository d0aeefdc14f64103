//! The steps after validation, in order: sign-in, consent, code. Every entry into the flow (the
//! authorize request, the sign-in form, the consent form) validates the request through
//! [`AuthorizeRequest::validate`] and then applies the same sign-in and consent rules here; a
//! submitted form only marks the one step it stands for as done ([`Flow`]).

use std::sync::Arc;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;

use super::code;
use super::page;
use super::request::{AuthorizeRequest, Prompt};
use super::respond::{error_page, reject};
use crate::Idp;
use crate::consent::{self, ConsentPrompt};
use crate::directory::{Directory, User};
use crate::endpoints::form::{Params, read_form};
use crate::endpoints::tenant;
use crate::error::EntraError;
use crate::scopes::ResourceScopes;
use crate::session::SignInSession;
use crate::signin::{self, SignInRule, SignInStep};

/// Which step of the flow the request comes from: a form that was just submitted satisfies the
/// step it stands for, and nothing else.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Flow {
    pub(super) sign_in: SignInStep,
    pub(super) just_consented: bool,
}

/// The signed-in user, if the session satisfies the request (`prompt`, `login_hint`, an enabled
/// account); `None` means the user must sign in. Every step applies this same rule
/// ([`crate::signin::signed_in_user`], shared with the device-code page).
pub(super) fn signed_in_user<'d>(
    dir: &'d Directory,
    req: &AuthorizeRequest,
    session: Option<&SignInSession>,
    flow: Flow,
) -> Option<&'d User> {
    let rule = SignInRule {
        fresh: matches!(req.prompt, Prompt::Login | Prompt::SelectAccount),
        login_hint: req.login_hint.as_deref(),
    };
    signin::signed_in_user(dir, session, rule, flow.sign_in)
}

/// What the user must still consent to for this request, resource by resource, or the error
/// that ends it. The authorize request, the consent form and the device-code page all go
/// through [`consent::needed`], so a posted form cannot skip a rule.
pub(super) fn consent_needed<'r>(
    dir: &Directory,
    req: &'r AuthorizeRequest,
    user: &User,
    flow: Flow,
) -> Result<Vec<(&'r ResourceScopes, Vec<String>)>, EntraError> {
    let prompt = ConsentPrompt {
        force: req.prompt == Prompt::Consent && !flow.just_consented,
        silent: req.prompt == Prompt::None || flow.just_consented,
    };
    consent::needed(dir, &req.client, &req.scopes.resources, user, prompt)
}

/// Takes a validated request as far as it can go: the sign-in page, the consent page, or the
/// code at the redirect URI.
pub(super) async fn proceed(
    idp: &Idp,
    dir: &Directory,
    req: AuthorizeRequest,
    session: Option<SignInSession>,
    headers: &HeaderMap,
    flow: Flow,
) -> Response {
    let (Some(user), Some(session)) = (
        signed_in_user(dir, &req, session.as_ref(), flow),
        session.as_ref(),
    ) else {
        if req.prompt == Prompt::None {
            return reject((EntraError::LoginRequired, &req).into());
        }
        return page::sign_in(idp, dir, &req, headers, None);
    };
    let to_consent = match consent_needed(dir, &req, user, flow) {
        Ok(c) => c,
        Err(e) => return reject((e, &req).into()),
    };
    if !to_consent.is_empty() {
        return page::consent(
            idp,
            dir,
            &req,
            headers,
            &user.user_principal_name,
            &to_consent,
        );
    }
    code::issue(idp, dir, &req, user, session).await
}

/// A posted sign-in or consent form: its tenant, its fields, and the authorize request it
/// carries, validated again through [`AuthorizeRequest::validate`].
pub(super) async fn posted_form(
    idp: &Idp,
    tenant_name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Arc<Directory>, Params, AuthorizeRequest), Box<Response>> {
    let (dir, _) = tenant(idp, tenant_name).map_err(|e| Box::new(error_page(&e)))?;
    let form = read_form(headers, body)
        .await
        .map_err(|e| Box::new(error_page(&e)))?;
    let ctx = form
        .get("ctx")
        .ok_or_else(|| error_page(&EntraError::MissingParameter("ctx")))?;
    let params = Params::parse(ctx.as_bytes()).map_err(|e| Box::new(error_page(&e)))?;
    let req = AuthorizeRequest::validate(&dir, params).map_err(|r| Box::new(reject(r)))?;
    Ok((dir, form, req))
}
