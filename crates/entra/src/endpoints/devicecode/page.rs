//! The device-code page (`verification_uri`, `GET /devicelogin`): the person types the user code
//! their device shows, confirms the application ("Are you trying to sign in to ...?"), signs in
//! unless the identity provider's session already speaks for them, consents when needed, and is
//! told to go back to the device. "Cancel" (or declining consent) makes the device's polling end
//! with `authorization_declined`.
//!
//! Every form is one `POST /devicelogin`; each submission first re-runs, through
//! [`pending_request`], every check the earlier steps made (the CSRF token, a user code naming a
//! request that is still pending and unexpired), and the steps that act for a user re-run the
//! sign-in rule ([`signin::signed_in_user`]). Passwords go through [`check_password`] (smart
//! lockout) and consent through [`consent::needed`], exactly as on the authorize endpoint.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::{DeviceRecord, DeviceState};
use crate::Idp;
use crate::consent::{self, ConsentPrompt};
use crate::directory::{Application, Directory, GRAPH_APP_ID, User};
use crate::endpoints::authorize::{error_page, html_response};
use crate::endpoints::form::{Params, read_form};
use crate::endpoints::tenant;
use crate::error::EntraError;
use crate::log::LogFields;
use crate::pages::{self, Permission};
use crate::scopes::Scopes;
use crate::signin::{self, SignInRule, SignInStep, check_password};
use crate::util::{normalize_user_code, now};

const BAD_CODE: &str = "That code didn't work. Check the code and try again.";
const EXPIRED_CODE: &str = "That code has expired. Go back to your app or device, start the sign-in again and enter the new code.";
const USED_CODE: &str =
    "That code has already been used. Go back to your app or device and start the sign-in again.";
const TIMED_OUT: &str = "Your session timed out. Please enter the code again.";

/// GET /devicelogin: the code-entry form (a `user_code` or `otc` in the link fills it in).
pub(crate) async fn show(
    State(idp): State<Arc<Idp>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let dir = idp.directory();
    entry(&idp, &dir, &headers, query.as_deref())
}

/// GET /{tenant}/oauth2/deviceauth: the same page, by the v1 spelling Entra also answers.
pub(crate) async fn show_for_tenant(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match tenant(&idp, &tenant_name) {
        Ok((dir, _)) => entry(&idp, &dir, &headers, query.as_deref()),
        Err(e) => error_page(&e),
    }
}

fn entry(idp: &Idp, dir: &Directory, headers: &HeaderMap, query: Option<&str>) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_page(&e),
    };
    let prefill = params
        .get("user_code")
        .or_else(|| params.get("otc"))
        .map(normalize_user_code)
        .unwrap_or_default();
    entry_page(idp, dir, headers, &prefill, None)
}

fn entry_page(
    idp: &Idp,
    dir: &Directory,
    headers: &HeaderMap,
    user_code: &str,
    error: Option<&str>,
) -> Response {
    let (csrf, set_cookie) = idp.csrf_token(headers);
    let html = pages::device_code_entry(&pages::DeviceCodeEntry {
        action: &idp.verification_uri(),
        csrf: &csrf,
        user_code,
        error,
    });
    let fields = LogFields {
        tenant: Some(dir.tenant.id.clone()),
        ..Default::default()
    };
    html_response(StatusCode::OK, html, set_cookie, fields)
}

/// What a submitted form asks for, read from the fields it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The code-entry form.
    Code,
    /// "Are you trying to sign in to ...?": Continue or Cancel.
    Confirm { proceed: bool },
    /// The sign-in form.
    SignIn,
    /// The consent form: Accept or Cancel.
    Consent { accept: bool },
}

impl Step {
    fn of(form: &Params) -> Step {
        if let Some(answer) = form.get("consent") {
            Step::Consent {
                accept: answer == "accept",
            }
        } else if form.get("login").is_some() || form.get("passwd").is_some() {
            Step::SignIn
        } else if let Some(answer) = form.get("confirm") {
            Step::Confirm {
                proceed: answer == "continue",
            }
        } else {
            Step::Code
        }
    }
}

/// A device request that a submitted form may act on.
#[derive(Debug)]
struct Pending {
    key: String,
    user_code: String,
    client: Arc<Application>,
    scopes: Scopes,
}

/// The checks every submission repeats, whatever step it claims to be: the CSRF token, and a user
/// code naming a device request that is still pending and unexpired, for a client and scopes
/// that still exist. A failure answers with the page to show.
async fn pending_request(
    idp: &Idp,
    dir: &Directory,
    headers: &HeaderMap,
    form: &Params,
    typed: &str,
) -> Result<Pending, Box<Response>> {
    let user_code = normalize_user_code(typed);
    let retry = |message: &str| Box::new(entry_page(idp, dir, headers, &user_code, Some(message)));
    if !idp.csrf_ok(headers, form.get("csrf")) {
        return Err(retry(TIMED_OUT));
    }
    if user_code.is_empty() {
        return Err(retry("Enter the code displayed on your app or device."));
    }
    let found = idp
        .device_request_by_user_code(&user_code)
        .await
        .map_err(|e| Box::new(error_page(&e)))?;
    let Some((key, record)) = found else {
        return Err(retry(BAD_CODE));
    };
    let DeviceRecord {
        client_id,
        scope,
        expires_at,
        state,
        ..
    } = record;
    if expires_at <= now() {
        return Err(retry(EXPIRED_CODE));
    }
    if state != DeviceState::Pending {
        return Err(retry(USED_CODE));
    }
    let client = dir.app(&client_id).cloned().ok_or_else(|| {
        Box::new(error_page(&EntraError::UnknownClient {
            client_id: client_id.clone(),
            tenant: dir.tenant.id.clone(),
        }))
    })?;
    let scopes = Scopes::parse(dir, &scope).map_err(|e| Box::new(error_page(&e)))?;
    Ok(Pending {
        key,
        user_code,
        client,
        scopes,
    })
}

/// POST /devicelogin: every form of the flow.
pub(crate) async fn submit(
    State(idp): State<Arc<Idp>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dir = idp.directory();
    let form = match read_form(&headers, body).await {
        Ok(f) => f,
        Err(e) => return error_page(&e),
    };
    let step = Step::of(&form);
    let typed = match step {
        Step::Code => form.get("user_code"),
        _ => form.get("ctx"),
    }
    .unwrap_or_default();
    let pending = match pending_request(&idp, &dir, &headers, &form, typed).await {
        Ok(p) => p,
        Err(response) => return *response,
    };
    let flow = DeviceFlow {
        idp: &idp,
        dir: &dir,
        headers: &headers,
        pending: &pending,
    };
    match step {
        Step::Code => flow.confirm_page().await,
        Step::Confirm { proceed: false } | Step::Consent { accept: false } => {
            // Declining consent needs the session that was asked; cancelling the confirmation
            // does not (it only ends the request).
            if matches!(step, Step::Consent { .. }) && flow.session_user().await.is_none() {
                return flow.sign_in_page(Some(TIMED_OUT_SIGN_IN));
            }
            flow.decline().await
        }
        Step::Confirm { proceed: true } => match flow.session_user().await {
            Some((user, auth_time)) => flow.finish(&user, auth_time, None).await,
            None => flow.sign_in_page(None),
        },
        Step::SignIn => flow.sign_in(&form).await,
        Step::Consent { accept: true } => flow.consent().await,
    }
}

const TIMED_OUT_SIGN_IN: &str = "Your session timed out. Please sign in again.";

/// One submission's context.
struct DeviceFlow<'a> {
    idp: &'a Idp,
    dir: &'a Directory,
    headers: &'a HeaderMap,
    pending: &'a Pending,
}

impl DeviceFlow<'_> {
    fn html(&self, html: String, set_cookie: Option<String>) -> Response {
        html_response(
            StatusCode::OK,
            html,
            set_cookie,
            LogFields::for_client(self.dir, &self.pending.client),
        )
    }

    /// The user the identity provider's session speaks for, under the same sign-in rule as the
    /// authorize endpoint (a device request carries no `prompt` and no `login_hint`).
    async fn session_user(&self) -> Option<(User, i64)> {
        let session = self.idp.current_session(self.headers).await?;
        let user = signin::signed_in_user(
            self.dir,
            Some(&session),
            SignInRule::default(),
            SignInStep::Session,
        )?;
        Some((user.clone(), session.auth_time))
    }

    /// What the application will be able to do, for the confirmation page.
    fn permissions(&self, user: Option<&str>) -> Vec<Permission> {
        let (dir, client) = (self.dir, &self.pending.client);
        let mut out = Vec::new();
        for r in &self.pending.scopes.resources {
            let mut values = if r.default {
                consent::effective(dir, client, r, user)
            } else {
                r.values.clone()
            };
            if r.default {
                for v in consent::missing(dir, client, r, user) {
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
            }
            out.extend(values.iter().map(|v| Permission::of(&r.app, v)));
        }
        if let Some(graph) = dir.app(GRAPH_APP_ID) {
            let oidc = self.pending.scopes.oidc;
            out.extend(oidc.names().map(|n| Permission::of(graph, n)));
        }
        out
    }

    async fn confirm_page(&self) -> Response {
        let user = self.session_user().await;
        let (csrf, set_cookie) = self.idp.csrf_token(self.headers);
        let permissions = self.permissions(user.as_ref().map(|(u, _)| u.id.as_str()));
        let html = pages::device_confirm(&pages::DeviceConfirm {
            action: &self.idp.verification_uri(),
            ctx: &self.pending.user_code,
            csrf: &csrf,
            app_name: &self.pending.client.display_name,
            user: user.as_ref().map(|(u, _)| u.user_principal_name.as_str()),
            permissions: &permissions,
        });
        self.html(html, set_cookie)
    }

    fn sign_in_page(&self, error: Option<&str>) -> Response {
        let (csrf, set_cookie) = self.idp.csrf_token(self.headers);
        let tenant = &self.dir.tenant;
        let html = pages::sign_in(&pages::SignIn {
            action: &self.idp.verification_uri(),
            ctx: &self.pending.user_code,
            csrf: &csrf,
            app_name: &self.pending.client.display_name,
            tenant_name: tenant.display_name.as_deref().unwrap_or(&tenant.domain),
            login_hint: None,
            error,
        });
        self.html(html, set_cookie)
    }

    /// The sign-in form: the password goes through smart lockout, as on the authorize endpoint.
    async fn sign_in(&self, form: &Params) -> Response {
        let (Some(login), Some(password)) =
            (form.get("login"), form.get("passwd").map(str::to_owned))
        else {
            return self.sign_in_page(Some("Enter your email and password."));
        };
        let user = match check_password(self.idp, self.dir, login, password).await {
            Ok(user) => user,
            Err(failure) => return self.sign_in_page(Some(&failure.to_string())),
        };
        let (session, cookie) = match self.idp.create_session(&user.id).await {
            Ok(s) => s,
            Err(e) => return error_page(&e),
        };
        let mut response = self.finish(&user, session.auth_time, None).await;
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }

    /// After the sign-in: the consent page if the consent rule asks for one, else approval.
    /// `consented` is the directory a consent just updated, if one did.
    async fn finish(&self, user: &User, auth_time: i64, consented: Option<&Directory>) -> Response {
        let dir = consented.unwrap_or(self.dir);
        let prompt = ConsentPrompt {
            force: false,
            // Consent was just given: anything still missing is an error, not another page.
            silent: consented.is_some(),
        };
        let to_consent = match consent::needed(
            dir,
            &self.pending.client,
            &self.pending.scopes.resources,
            user,
            prompt,
        ) {
            Ok(c) => c,
            Err(e) => return error_page(&e),
        };
        if to_consent.is_empty() {
            return self.approve(user, auth_time).await;
        }
        let permissions: Vec<Permission> = to_consent
            .iter()
            .flat_map(|(r, values)| values.iter().map(|v| Permission::of(&r.app, v)))
            .collect();
        let (csrf, set_cookie) = self.idp.csrf_token(self.headers);
        let html = pages::consent(&pages::Consent {
            action: &self.idp.verification_uri(),
            ctx: &self.pending.user_code,
            csrf: &csrf,
            app_name: &self.pending.client.display_name,
            user: &user.user_principal_name,
            permissions: &permissions,
        });
        self.html(html, set_cookie)
    }

    /// The consent form's Accept: records exactly what the consent rule allows, then approves.
    async fn consent(&self) -> Response {
        let Some((user, auth_time)) = self.session_user().await else {
            return self.sign_in_page(Some(TIMED_OUT_SIGN_IN));
        };
        let to_consent = match consent::needed(
            self.dir,
            &self.pending.client,
            &self.pending.scopes.resources,
            &user,
            ConsentPrompt::default(),
        ) {
            Ok(c) => c,
            Err(e) => return error_page(&e),
        };
        let updated =
            match consent::record(self.idp, &self.pending.client, &user, &to_consent).await {
                Ok(d) => d,
                Err(e) => return error_page(&e),
            };
        self.finish(&user, auth_time, Some(&updated)).await
    }

    async fn approve(&self, user: &User, auth_time: i64) -> Response {
        let state = DeviceState::Approved {
            user_id: user.id.clone(),
            auth_time,
        };
        match self
            .idp
            .settle_device_request(&self.pending.key, state)
            .await
        {
            Ok(true) => self.html(pages::device_done(&self.pending.client.display_name), None),
            Ok(false) => entry_page(
                self.idp,
                self.dir,
                self.headers,
                &self.pending.user_code,
                Some(USED_CODE),
            ),
            Err(e) => error_page(&e),
        }
    }

    async fn decline(&self) -> Response {
        match self
            .idp
            .settle_device_request(&self.pending.key, DeviceState::Declined)
            .await
        {
            Ok(true) => self.html(
                pages::device_declined(&self.pending.client.display_name),
                None,
            ),
            Ok(false) => entry_page(
                self.idp,
                self.dir,
                self.headers,
                &self.pending.user_code,
                Some(USED_CODE),
            ),
            Err(e) => error_page(&e),
        }
    }
}
