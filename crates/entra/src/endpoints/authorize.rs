//! The authorization endpoint, with its sign-in and consent steps.
//!
//! The request is validated in Entra's order: problems with the client or the redirect URI are
//! shown on an error page (never redirected to an unverified URI); everything later is returned
//! to the redirect URI in the requested response mode. The sign-in and consent forms carry the
//! original request (`ctx`), which is validated again from scratch when they are submitted.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::form::{Params, read_form};
use super::tenant;
use crate::Idp;
use crate::consent::{self, ConsentPrompt};
use crate::directory::{Application, Directory, RedirectKind, User};
use crate::error::{EntraError, Outcome};
use crate::log::LogFields;
use crate::pages;
use crate::scopes::{ResourceScopes, Scopes};
use crate::session::SignInSession;
use crate::signin::{self, SignInRule, SignInStep, check_password};
use crate::tokens::IdTokenSpec;
use crate::util::{clip, now, random_token, sha256_hex};

pub(crate) const CODE_KIND: &str = "authorization-code";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prompt {
    Default,
    Login,
    None,
    Consent,
    SelectAccount,
}

/// A validated authorization request.
#[derive(Debug)]
pub(crate) struct AuthorizeRequest {
    params: Params,
    client: Arc<Application>,
    redirect_uri: String,
    redirect_kind: RedirectKind,
    id_token: bool,
    mode: ResponseMode,
    scope_raw: String,
    scopes: Scopes,
    state: Option<String>,
    nonce: Option<String>,
    prompt: Prompt,
    login_hint: Option<String>,
    challenge: Option<(String, String)>,
    client_info: bool,
}

/// Where a rejected request is answered.
enum Rejection {
    /// On the identity provider's own page: the redirect URI is not trustworthy.
    Page(EntraError),
    /// At the redirect URI.
    Redirect { error: EntraError, target: Target },
}

/// A verified redirect URI with its response mode and state.
struct Target {
    redirect_uri: String,
    mode: ResponseMode,
    state: Option<String>,
}

impl From<(EntraError, &AuthorizeRequest)> for Rejection {
    fn from((error, req): (EntraError, &AuthorizeRequest)) -> Self {
        Rejection::Redirect {
            error,
            target: req.target(),
        }
    }
}

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

impl AuthorizeRequest {
    fn parse(dir: &Directory, params: Params) -> Result<AuthorizeRequest, Rejection> {
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

    fn target(&self) -> Target {
        Target {
            redirect_uri: self.redirect_uri.clone(),
            mode: self.mode,
            state: self.state.clone(),
        }
    }
}

/// GET /{tenant}/oauth2/v2.0/authorize
pub(crate) async fn get(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    start(
        &idp,
        &tenant_name,
        &headers,
        Params::from_query(query.as_deref()),
    )
    .await
}

/// POST /{tenant}/oauth2/v2.0/authorize (the same request, form-encoded).
pub(crate) async fn post(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = read_form(&headers, body).await;
    start(&idp, &tenant_name, &headers, params).await
}

async fn start(
    idp: &Idp,
    tenant_name: &str,
    headers: &HeaderMap,
    params: Result<Params, EntraError>,
) -> Response {
    let dir = match tenant(idp, tenant_name) {
        Ok((dir, _)) => dir,
        Err(e) => return error_page(&e),
    };
    let req = match params
        .map_err(Rejection::Page)
        .and_then(|p| AuthorizeRequest::parse(&dir, p))
    {
        Ok(r) => r,
        Err(rejection) => return reject(rejection),
    };
    let session = idp.current_session(headers).await;
    proceed(idp, &dir, req, session, headers, Flow::default()).await
}

/// Which step of the flow the request comes from: a form that was just submitted satisfies the
/// step it stands for, and nothing else.
#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    sign_in: SignInStep,
    just_consented: bool,
}

/// How long after signing in the consent form still counts as part of that sign-in (so
/// `prompt=login` does not ask for the password twice in one flow).
const SIGN_IN_STEP_LIFETIME: i64 = 600;

/// The signed-in user, if the session satisfies the request (`prompt`, `login_hint`, an enabled
/// account); `None` means the user must sign in. Every step applies this same rule
/// ([`crate::signin::signed_in_user`], shared with the device-code page).
fn signed_in_user<'d>(
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
fn consent_needed<'r>(
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

async fn proceed(
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
        return sign_in_page(idp, dir, &req, headers, None, StatusCode::OK);
    };
    let to_consent = match consent_needed(dir, &req, user, flow) {
        Ok(c) => c,
        Err(e) => return reject((e, &req).into()),
    };
    if !to_consent.is_empty() {
        let permissions: Vec<pages::Permission> = to_consent
            .iter()
            .flat_map(|(r, values)| values.iter().map(|v| pages::Permission::of(&r.app, v)))
            .collect();
        let (csrf, set_cookie) = idp.csrf_token(headers);
        let action = format!("{}/{}/consent", idp.config.public_url, dir.tenant.id);
        let ctx = req.params.encode();
        let html = pages::consent(&pages::Consent {
            action: &action,
            ctx: &ctx,
            csrf: &csrf,
            app_name: &req.client.display_name,
            user: &user.user_principal_name,
            permissions: &permissions,
        });
        return html_response(
            StatusCode::OK,
            html,
            set_cookie,
            LogFields::for_client(dir, &req.client),
        );
    }
    issue_code(idp, dir, &req, user, session).await
}

async fn issue_code(
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
    let json = serde_json::to_string(&record).unwrap_or_default();
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

/// Sends `fields` to the redirect URI in the response mode.
fn respond(target: &Target, fields: &[(&str, String)]) -> Response {
    let encoded = || {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            s.append_pair(k, v);
        }
        s.finish()
    };
    let location = match target.mode {
        ResponseMode::FormPost => {
            let html = pages::form_post(&target.redirect_uri, fields);
            return html_response(StatusCode::OK, html, None, LogFields::default());
        }
        ResponseMode::Query => {
            let separator = if target.redirect_uri.contains('?') {
                '&'
            } else {
                '?'
            };
            format!("{}{separator}{}", target.redirect_uri, encoded())
        }
        ResponseMode::Fragment => format!("{}#{}", target.redirect_uri, encoded()),
    };
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => error_page(&EntraError::Malformed(
            "The redirect URI cannot be used in a Location header.".into(),
        )),
    }
}

fn reject(rejection: Rejection) -> Response {
    match rejection {
        Rejection::Page(error) => error_page(&error),
        Rejection::Redirect { error, target } => {
            let body = error.body(None);
            let mut fields: Vec<(&str, String)> = vec![
                ("error", body.error.to_owned()),
                ("error_description", body.error_description),
            ];
            if let Some(state) = &target.state {
                fields.push(("state", state.clone()));
            }
            let mut response = respond(&target, &fields);
            response
                .extensions_mut()
                .insert(Outcome::Error(error.code()));
            response
        }
    }
}

pub(crate) fn error_page(error: &EntraError) -> Response {
    let body = error.body(None);
    let status = match error.status() {
        StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = html_response(
        status,
        pages::error(&body.error_description),
        None,
        LogFields::default(),
    );
    response
        .extensions_mut()
        .insert(Outcome::Error(error.code()));
    response
}

pub(crate) fn html_response(
    status: StatusCode,
    html: String,
    set_cookie: Option<String>,
    fields: LogFields,
) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action *; frame-ancestors 'none'"),
    );
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.append(header::SET_COOKIE, cookie);
    }
    response.extensions_mut().insert(fields);
    response
}

fn sign_in_page(
    idp: &Idp,
    dir: &Directory,
    req: &AuthorizeRequest,
    headers: &HeaderMap,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (csrf, set_cookie) = idp.csrf_token(headers);
    let action = format!("{}/{}/login", idp.config.public_url, dir.tenant.id);
    let ctx = req.params.encode();
    let html = pages::sign_in(&pages::SignIn {
        action: &action,
        ctx: &ctx,
        csrf: &csrf,
        app_name: &req.client.display_name,
        tenant_name: dir
            .tenant
            .display_name
            .as_deref()
            .unwrap_or(&dir.tenant.domain),
        login_hint: req.login_hint.as_deref(),
        error,
    });
    html_response(
        status,
        html,
        set_cookie,
        LogFields::for_client(dir, &req.client),
    )
}

/// Re-validates the authorize request a form carried.
fn from_form(dir: &Directory, form: &Params) -> Result<AuthorizeRequest, Box<Response>> {
    let ctx = form
        .get("ctx")
        .ok_or_else(|| error_page(&EntraError::MissingParameter("ctx")))?;
    let params = Params::parse(ctx.as_bytes()).map_err(|e| Box::new(error_page(&e)))?;
    AuthorizeRequest::parse(dir, params).map_err(|r| Box::new(reject(r)))
}

/// A posted sign-in or consent form: its tenant, its fields, and the authorize request it carries
/// (validated again, since the browser could have changed it).
async fn posted_form(
    idp: &Idp,
    tenant_name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Arc<Directory>, Params, AuthorizeRequest), Box<Response>> {
    let (dir, _) = tenant(idp, tenant_name).map_err(|e| Box::new(error_page(&e)))?;
    let form = read_form(headers, body)
        .await
        .map_err(|e| Box::new(error_page(&e)))?;
    let req = from_form(&dir, &form)?;
    Ok((dir, form, req))
}

/// POST /{tenant}/login: the sign-in form.
pub(crate) async fn login(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (dir, form, req) = match posted_form(&idp, &tenant_name, &headers, body).await {
        Ok(x) => x,
        Err(response) => return *response,
    };
    let retry =
        |message: &str| sign_in_page(&idp, &dir, &req, &headers, Some(message), StatusCode::OK);
    if !idp.csrf_ok(&headers, form.get("csrf")) {
        return retry("Your session timed out. Please sign in again.");
    }
    let (Some(login), Some(password)) = (form.get("login"), form.get("passwd").map(str::to_owned))
    else {
        return retry("Enter your email and password.");
    };
    let user = match check_password(&idp, &dir, login, password).await {
        Ok(user) => user,
        Err(failure) => return retry(&failure.to_string()),
    };
    let (session, cookie) = match idp.create_session(&user.id).await {
        Ok(s) => s,
        Err(e) => return error_page(&e),
    };
    let mut response = proceed(
        &idp,
        &dir,
        req,
        Some(session),
        &headers,
        Flow {
            sign_in: SignInStep::Typed,
            just_consented: false,
        },
    )
    .await;
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// POST /{tenant}/consent: the consent form. It re-runs the sign-in rule and the consent rules
/// of the authorize request it carries (one function each, shared with `proceed`), records only
/// what those rules say the user may grant, and records nothing when they refuse.
pub(crate) async fn consent(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (dir, form, req) = match posted_form(&idp, &tenant_name, &headers, body).await {
        Ok(x) => x,
        Err(response) => return *response,
    };
    let session = idp.current_session(&headers).await;
    // The consent page follows a sign-in; within its lifetime that sign-in satisfies `prompt`.
    let recent = session
        .as_ref()
        .is_some_and(|s| now() - s.auth_time <= SIGN_IN_STEP_LIFETIME);
    let sign_in_step = Flow {
        sign_in: if recent {
            SignInStep::Recent
        } else {
            SignInStep::Session
        },
        just_consented: false,
    };
    let user = signed_in_user(&dir, &req, session.as_ref(), sign_in_step).cloned();
    let (Some(user), true) = (user, idp.csrf_ok(&headers, form.get("csrf"))) else {
        return sign_in_page(
            &idp,
            &dir,
            &req,
            &headers,
            Some("Your session timed out. Please sign in again."),
            StatusCode::OK,
        );
    };
    if form.get("consent") != Some("accept") {
        return reject((EntraError::ConsentDeclined, &req).into());
    }
    let to_consent = match consent_needed(&dir, &req, &user, sign_in_step) {
        Ok(c) => c,
        Err(e) => return reject((e, &req).into()),
    };
    let dir = match consent::record(&idp, &req.client, &user, &to_consent).await {
        Ok(d) => d,
        Err(e) => return reject((e, &req).into()),
    };
    proceed(
        &idp,
        &dir,
        req,
        session,
        &headers,
        Flow {
            sign_in: sign_in_step.sign_in,
            just_consented: true,
        },
    )
    .await
}

impl LogFields {
    pub(crate) fn for_client(dir: &Directory, client: &Application) -> LogFields {
        LogFields {
            tenant: Some(dir.tenant.id.clone()),
            client: Some(client.app_id.clone()),
            grant: None,
        }
    }
}
