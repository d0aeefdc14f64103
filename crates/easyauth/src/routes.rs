//! The module's own routes under `/.auth`.

use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::module::{Identity, Module, SessionRecord, ZumoToken, bearer, now, random_id};
use crate::oidc::ValidatedToken;
use crate::pipeline::{refuse, unauthorized};
use crate::principal::ClientPrincipal;
use crate::provider::Provider;
use crate::redirect;
use crate::session::{NONCE_COOKIE, SESSION_COOKIE, cookie};
use crate::site::Site;

/// Largest form body the callback reads (a code, an ID token and a state).
const MAX_FORM: usize = 64 * 1024;
/// Largest JSON body client-directed login reads (an access token and an ID token).
const MAX_CLIENT_LOGIN: usize = 192 * 1024;

/// A sign-in in progress, sealed into the `Nonce` cookie.
#[derive(Debug, Serialize, Deserialize)]
struct Attempt {
    provider: String,
    /// The callback URL sent to the provider: the code is redeemed with exactly this, and only a
    /// callback to it (the same site) finishes the attempt.
    redirect_uri: String,
    nonce: String,
    state: String,
    verifier: String,
    /// Where to land, as validated; `fragment` (already encoded, `#...`) follows it.
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fragment: Option<String>,
    exp: i64,
}

pub(crate) async fn handle(m: &Arc<Module>, request: Request) -> Response {
    // Routes are rare next to proxied requests: one copy of the site is fine here.
    let Some(site) = crate::pipeline::site_of(request.extensions()).cloned() else {
        return refuse(m, StatusCode::BAD_REQUEST, "no site for this request");
    };
    let site = &site;
    let path = request.uri().path().to_owned();
    let rest = if m.settings.logout_path.as_deref() == Some(path.as_str()) {
        "/logout".to_owned()
    } else {
        path[m.settings.api_prefix.len()..].to_owned()
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let (parts, body) = request.into_parts();
    let request = &parts;
    match (parts.method.clone(), segments.as_slice()) {
        (Method::GET, ["version"]) => {
            axum::Json(json!({"version": env!("CARGO_PKG_VERSION")})).into_response()
        }
        (Method::GET, ["login"]) => {
            let Some(provider) = m.default_provider() else {
                return refuse(m, StatusCode::NOT_FOUND, "no provider");
            };
            let query = request
                .uri
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            found(
                &format!(
                    "{}/login/{}{query}",
                    m.settings.api_prefix,
                    provider.alias()
                ),
                Vec::new(),
            )
        }
        (Method::GET, ["login", "done"]) => page(
            StatusCode::OK,
            "You have successfully signed in",
            "<p><a href=\"/\">Return to the website</a></p>",
        ),
        (Method::GET, ["login", alias]) => match m.provider(alias) {
            Some(p) => start_login(m, site, p, request).await,
            None => refuse(
                m,
                StatusCode::NOT_FOUND,
                &format!("no identity provider named {alias}"),
            ),
        },
        (Method::POST, ["login", alias]) => match m.provider(alias) {
            Some(p) => client_login(m, site, p, request, body).await,
            None => refuse(
                m,
                StatusCode::NOT_FOUND,
                &format!("no identity provider named {alias}"),
            ),
        },
        (Method::GET | Method::POST, ["login", alias, "callback"]) => match m.provider(alias) {
            Some(p) => callback(m, site, p, request, body).await,
            None => refuse(
                m,
                StatusCode::NOT_FOUND,
                &format!("no identity provider named {alias}"),
            ),
        },
        (Method::GET, ["me"]) => me(m, site, request).await,
        (Method::GET, ["refresh"]) => refresh(m, site, request).await,
        (Method::GET, ["logout"]) => logout(m, site, request).await,
        (Method::GET, ["logout", "complete" | "done"]) => {
            let target = query_param(request, "state")
                .or_else(|| query_param(request, "post_logout_redirect_uri"))
                .and_then(|t| redirect_target(m, site, &t));
            match target {
                Some(t) => found(&t, Vec::new()),
                None => page(
                    StatusCode::OK,
                    "You have signed out",
                    "<p><a href=\"/\">Return to the website</a></p>",
                ),
            }
        }
        _ => refuse(m, StatusCode::NOT_FOUND, &format!("no route {path}")),
    }
}

fn query_param(request: &Parts, name: &str) -> Option<String> {
    form_pairs(request.uri.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Form or query pairs; at most [`MAX_PAIRS`] (a callback carries fewer than ten).
fn form_pairs(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes())
        .take(MAX_PAIRS)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

const MAX_PAIRS: usize = 64;

fn found(location: &str, cookies: Vec<String>) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    set_cookies(&mut r, cookies);
    r
}

fn set_cookies(r: &mut Response, cookies: Vec<String>) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1>{t}</h1>{body}</body></html>",
        t = html_escape::encode_text(title)
    );
    (status, Html(html)).into_response()
}

/// `expires_on` as App Service writes it: ISO 8601 UTC with seven fractional digits.
pub(crate) fn expires_on(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].0000000Z");
    t.format(f).unwrap_or_default()
}

fn random_hex(n: usize) -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = vec![0u8; n];
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The query parameter that carries the `#fragment` back from [`fragment_page`].
const FRAGMENT_PARAM: &str = "easyauth_fragment";

/// `preserveUrlFragmentsForLogins`: a browser never sends the `#fragment`, so the login route
/// first answers with a page whose script reads it and comes back with it in
/// [`FRAGMENT_PARAM`] (empty when there is none). Without script the link continues without it.
fn fragment_page(request: &Parts) -> Response {
    let path_and_query = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let sep = if request.uri.query().is_some() {
        '&'
    } else {
        '?'
    };
    let next = format!("{path_and_query}{sep}{FRAGMENT_PARAM}=");
    // JSON-encoded for the script, with `<` escaped so the text cannot close the element.
    let js_next = serde_json::to_string(&next)
        .unwrap_or_else(|_| "\"/\"".into())
        .replace('<', "\\u003c");
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Signing in</title>\
         <meta name=\"robots\" content=\"noindex\"></head><body>\
         <script>(function(){{var h=window.location.hash;\
         window.location.replace({js_next}+encodeURIComponent(h?h.substring(1):''));}})();</script>\
         <noscript><a href=\"{href}\">Continue to sign in</a></noscript></body></html>",
        href = html_escape::encode_double_quoted_attribute(&next),
    );
    let mut r = (StatusCode::OK, Html(html)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    r
}

/// A fragment as it may follow `#` in a Location header: anything outside RFC 3986's fragment
/// characters (and `%`, so existing escapes stay as they are) is percent-encoded.
fn fragment_suffix(fragment: &str) -> String {
    const FRAGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'!')
        .remove(b'$')
        .remove(b'&')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')')
        .remove(b'*')
        .remove(b'+')
        .remove(b',')
        .remove(b';')
        .remove(b'=')
        .remove(b':')
        .remove(b'@')
        .remove(b'/')
        .remove(b'?')
        .remove(b'%');
    format!(
        "#{}",
        percent_encoding::utf8_percent_encode(&clip_fragment(fragment), FRAGMENT)
    )
}

/// Fragments are kept to 2,000 characters: they travel in a cookie and a Location header.
fn clip_fragment(fragment: &str) -> String {
    fragment.chars().take(2000).collect()
}

/// A post-login or post-logout target, if it is this site or an allowed external URL. Every step
/// that carries a target (login start, callback, logout, its completion) checks it here.
fn redirect_target(m: &Module, site: &Site, target: &str) -> Option<String> {
    redirect::validate(
        target,
        &site.origin(),
        &m.settings.allowed_external_redirects,
    )
}

/// The callback URL registered for `provider` at `site`.
fn callback_url(m: &Module, site: &Site, provider: &Provider) -> String {
    format!(
        "{}{}/login/{}/callback",
        site.base(),
        m.settings.api_prefix,
        provider.alias()
    )
}

/// GET /.auth/login/<provider>: send the browser to the provider's authorize endpoint.
async fn start_login(m: &Module, site: &Site, provider: &Provider, request: &Parts) -> Response {
    let fragment = query_param(request, FRAGMENT_PARAM);
    if m.settings.preserve_fragments
        && fragment.is_none()
        && crate::pipeline::is_browser(&request.headers)
    {
        return fragment_page(request);
    }
    let target = query_param(request, "post_login_redirect_uri")
        .or_else(|| query_param(request, "post_login_redirect_url"))
        .and_then(|t| {
            let ok = redirect_target(m, site, &t);
            if ok.is_none() {
                tracing::warn!(target: "easyauth::module", "post_login_redirect_uri refused: not this site nor an allowed external URL");
            }
            ok
        });
    // The fragment only ever follows a target that passed validation (or the site's root); it
    // is kept apart so the callback can check the target again with the same rule.
    let fragment = match fragment.filter(|f| !f.is_empty() && m.settings.preserve_fragments) {
        // A target that names its own fragment keeps it.
        Some(_) if target.as_deref().is_some_and(|t| t.contains('#')) => None,
        Some(f) => Some(fragment_suffix(&f)),
        None => None,
    };
    let md = match provider.metadata().await {
        Ok(md) => md,
        Err(e) => {
            tracing::error!(target: "easyauth::module", error = %e, "identity provider unavailable");
            return page(
                StatusCode::BAD_GATEWAY,
                "The identity provider is unavailable",
                "<p>Try again in a moment.</p>",
            );
        }
    };
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap_or_default();
    let nonce = format!("{}_{stamp}", random_hex(16));
    let landing = match &fragment {
        Some(f) => format!("{}{f}", target.as_deref().unwrap_or("/")),
        None => target.clone().unwrap_or_else(|| "/".to_owned()),
    };
    let state = format!(
        "redir={}",
        percent_encoding::utf8_percent_encode(&landing, percent_encoding::NON_ALPHANUMERIC)
    );
    let state = format!("{state}&id={}", random_hex(8));
    let verifier = random_id();
    let challenge = {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            d.as_ref(),
        )
    };
    // App Service uses the hybrid flow with form_post. That is a cross-site POST back to the
    // callback, which carries the Nonce cookie only when it is `SameSite=None; Secure`, i.e. under
    // https. A plain-http site (local development) uses the code flow with a query response
    // instead: a top-level redirect, which carries `SameSite=Lax` cookies.
    let style = site.cookie_style();
    let secure = style.secure;
    let hybrid = secure && provider.settings.client_secret.is_some();
    let response_mode = if secure { "form_post" } else { "query" };
    let redirect_uri = callback_url(m, site, provider);
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair(
            "response_type",
            if hybrid { "code id_token" } else { "code" },
        )
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("client_id", &provider.settings.client_id)
        .append_pair("scope", &provider.settings.scope)
        .append_pair("response_mode", response_mode)
        .append_pair("nonce", &nonce)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in &provider.settings.extra_login_parameters {
        query.append_pair(k, v);
    }
    let sep = if md.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{}{sep}{}", md.authorization_endpoint, query.finish());
    let attempt = Attempt {
        provider: provider.alias().to_owned(),
        redirect_uri,
        nonce,
        state,
        verifier,
        target,
        fragment,
        exp: now() + m.settings.nonce_lifetime.as_secs() as i64,
    };
    let sealed = m.keys.seal(
        NONCE_COOKIE,
        &serde_json::to_vec(&attempt).unwrap_or_default(),
    );
    found(&location, vec![style.set(NONCE_COOKIE, &sealed)])
}

/// GET|POST /.auth/login/<provider>/callback: finish the sign-in.
async fn callback(
    m: &Module,
    site: &Site,
    provider: &Provider,
    request: &Parts,
    body: axum::body::Body,
) -> Response {
    let headers = &request.headers;
    let params = if request.method == Method::POST {
        match read_limited(headers, body, MAX_FORM).await {
            Ok(b) => form_pairs(&String::from_utf8_lossy(&b)),
            Err(_) => return refuse(m, StatusCode::PAYLOAD_TOO_LARGE, "callback body too large"),
        }
    } else {
        form_pairs(request.uri.query().unwrap_or(""))
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let fail = |reason: &str| {
        tracing::warn!(target: "easyauth::module", status = 401, reason, "sign-in failed");
        let detail = if m.settings.development {
            format!("<p>{}</p>", html_escape::encode_text(reason))
        } else {
            String::new()
        };
        let mut r = page(
            StatusCode::UNAUTHORIZED,
            "Sign-in failed",
            &format!(
                "{detail}<p><a href=\"{}/login/{}\">Try again</a></p>",
                m.settings.api_prefix,
                provider.alias()
            ),
        );
        set_cookies(&mut r, vec![site.cookie_style().clear(NONCE_COOKIE)]);
        r
    };
    if let Some(error) = get("error") {
        return fail(&format!(
            "the identity provider answered {error}: {}",
            get("error_description").unwrap_or("")
        ));
    }
    let Some(attempt) = cookie(headers, NONCE_COOKIE)
        .and_then(|c| m.keys.open(NONCE_COOKIE, &c))
        .and_then(|p| serde_json::from_slice::<Attempt>(&p).ok())
    else {
        return fail("no sign-in attempt from this browser (missing or invalid Nonce cookie)");
    };
    if attempt.provider != provider.alias() || attempt.exp <= now() {
        return fail("the sign-in attempt expired (login.nonce.nonceExpirationInterval)");
    }
    if get("state") != Some(attempt.state.as_str()) {
        return fail("state does not match this browser's sign-in attempt");
    }
    let redirect_uri = callback_url(m, site, provider);
    if attempt.redirect_uri != redirect_uri {
        return fail("the sign-in started at another site than this callback's");
    }
    // The target was checked when the sign-in started; check it again with the same rule.
    let target = match attempt.target.as_deref() {
        Some(t) => match redirect_target(m, site, t) {
            Some(t) => Some(t),
            None => return fail("the sign-in's return address is not this site"),
        },
        None => None,
    };
    let target = match (&attempt.fragment, target) {
        (Some(f), t) => Some(format!("{}{f}", t.as_deref().unwrap_or("/"))),
        (None, t) => t,
    };
    let Some(code) = get("code") else {
        return fail("the callback has no code");
    };
    let client = match provider.token_client().await {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let tokens = match client
        .exchange_code(code, &redirect_uri, Some(&attempt.verifier))
        .await
    {
        Ok(t) => t,
        Err(e) => return fail(&format!("code redemption failed: {e}")),
    };
    let Some(id_token) = tokens
        .id_token
        .clone()
        .or_else(|| get("id_token").map(str::to_owned))
    else {
        return fail("no ID token was issued (is openid in the scope?)");
    };
    let policy = match provider.id_token_policy().await {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    // Hybrid flow: the ID token that came with the code must itself be valid, for this sign-in,
    // and bound to this code (`c_hash`); a forged one means the response was tampered with.
    if let Some(front) = get("id_token") {
        let front = match m.validator.validate(front, &policy).await {
            Ok(v) => v,
            Err(e) => {
                return fail(&format!(
                    "the ID token in the authorization response was rejected: {e}"
                ));
            }
        };
        if m.settings.validate_nonce && front.str_claim("nonce") != Some(attempt.nonce.as_str()) {
            return fail("the authorization response's ID token has another nonce");
        }
        if let Some(c_hash) = front.str_claim("c_hash") {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, code.as_bytes());
            let expected = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                &digest.as_ref()[..16],
            );
            if c_hash != expected {
                return fail(
                    "the authorization response's ID token does not belong to its code (c_hash)",
                );
            }
        }
    }
    let validated = match m.validator.validate(&id_token, &policy).await {
        Ok(v) => v,
        Err(e) => return fail(&format!("ID token rejected: {e}")),
    };
    if m.settings.validate_nonce && validated.str_claim("nonce") != Some(attempt.nonce.as_str()) {
        return fail("the ID token's nonce does not match this sign-in attempt");
    }
    let keep_tokens = m.settings.token_store;
    let record = SessionRecord {
        provider: provider.alias().to_owned(),
        claims: validated.claims().clone(),
        id_token: keep_tokens.then_some(id_token),
        access_token: keep_tokens.then(|| tokens.access_token.clone()),
        refresh_token: if keep_tokens {
            tokens.refresh_token.clone()
        } else {
            None
        },
        expires_on: tokens.expires_in.map(|s| now() + s as i64),
        session_expires: m.settings.session_end(
            tokens
                .expires_in
                .map(|s| now() + s as i64)
                .or(Some(validated.exp())),
        ),
        injected: Default::default(),
    };
    // With the token store off, the session travels in the cookie alone.
    let sid = if m.settings.token_store {
        match m.create_session(&record).await {
            Ok(s) => s,
            Err(e) => return fail(&format!("the token store failed: {e}")),
        }
    } else {
        random_id()
    };
    tracing::info!(target: "easyauth::module", provider = provider.alias(), user = validated.str_claim("oid").or(validated.sub()).unwrap_or("-"), "signed in");
    let mut cookies = m.session_cookies(site, &sid, &record, 0);
    cookies.push(site.cookie_style().clear(NONCE_COOKIE));
    let location = target.unwrap_or_else(|| format!("{}/login/done", m.settings.api_prefix));
    found(&location, cookies)
}

/// POST /.auth/login/<provider>: client-directed sign-in with a provider token.
///
/// Every token kept for the session is validated first: the access token as a bearer token for
/// this app (allowed audiences, then the authorization rules), the ID token as one issued to this
/// app (signature, issuer, audience = the client id, lifetime) and for the same user. A token
/// that fails refuses the sign-in. A refresh token cannot be validated by the module (it is
/// opaque to everyone but the provider), so one posted by a client is never kept: the app is
/// never handed it as platform-issued, and `/.auth/refresh` never sends it to the provider with
/// the app's secret.
async fn client_login(
    m: &Module,
    site: &Site,
    provider: &Provider,
    request: &Parts,
    body: axum::body::Body,
) -> Response {
    let body = match read_limited(&request.headers, body, MAX_CLIENT_LOGIN).await {
        Ok(b) => b,
        Err(()) => return refuse(m, StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return refuse(
            m,
            StatusCode::BAD_REQUEST,
            "expected a JSON object with access_token or id_token",
        );
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let (access_token, id_token) = (text("access_token"), text("id_token"));
    if access_token.is_none() && id_token.is_none() {
        return refuse(
            m,
            StatusCode::BAD_REQUEST,
            "expected access_token or id_token",
        );
    }
    let refused = |what: &str, e: &dyn std::fmt::Display| {
        tracing::warn!(target: "easyauth::module", status = 401, token = what, reason = %e, "client-directed sign-in refused");
        format!("the {what} was rejected: {e}")
    };
    let access = match &access_token {
        Some(token) => {
            let policy = match provider.bearer_policy().await {
                Ok(p) => p,
                Err(e) => return unauthorized(m, Some(site), &e).await,
            };
            match m.validator.validate(token, &policy).await {
                Ok(v) => Some(v),
                Err(e) => {
                    return unauthorized(m, Some(site), &refused("access token", &e)).await;
                }
            }
        }
        None => None,
    };
    let identity = match &id_token {
        Some(token) => {
            let policy = match provider.id_token_policy().await {
                Ok(p) => p,
                Err(e) => return unauthorized(m, Some(site), &e).await,
            };
            match m.validator.validate(token, &policy).await {
                Ok(v) => Some(v),
                Err(e) => return unauthorized(m, Some(site), &refused("ID token", &e)).await,
            }
        }
        None => None,
    };
    if let (Some(a), Some(i)) = (&access, &identity)
        && !same_user(a, i)
    {
        return unauthorized(
            m,
            Some(site),
            &refused("ID token", &"it names another user than the access token"),
        )
        .await;
    }
    if body.contains_key("refresh_token") {
        tracing::info!(target: "easyauth::module", "client-directed sign-in: the posted refresh_token is not kept (the module cannot validate it)");
    }
    let (validated, is_access) = match (&access, &identity) {
        (Some(a), _) => (a, true),
        (None, Some(i)) => (i, false),
        (None, None) => return refuse(m, StatusCode::BAD_REQUEST, "no token"),
    };
    if let Err(denial) = provider
        .settings
        .authorization
        .check(validated.claims(), is_access)
    {
        return refuse(m, StatusCode::FORBIDDEN, &denial.to_string());
    }
    let session_expires = validated
        .exp()
        .min(now() + m.settings.session_lifetime.as_secs() as i64)
        .max(now() + 60);
    let keep = m.settings.token_store;
    let record = SessionRecord {
        provider: provider.alias().to_owned(),
        claims: validated.claims().clone(),
        id_token: id_token.filter(|_| keep),
        access_token: access_token.filter(|_| keep),
        refresh_token: None,
        expires_on: Some(validated.exp()),
        session_expires,
        injected: Default::default(),
    };
    match m.create_session(&record).await {
        Ok(sid) => axum::Json(json!({
            "authenticationToken": m.zumo_token(site, &sid, provider.alias(), session_expires),
            "user": {"userId": Module::zumo_user_id(&sid)},
        }))
        .into_response(),
        Err(e) => refuse(
            m,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the token store failed: {e}"),
        ),
    }
}

/// Whether an access token and an ID token are about the same user: the same object id (and
/// tenant) where both carry one, else the same subject.
fn same_user(access: &ValidatedToken, id: &ValidatedToken) -> bool {
    match (access.oid(), id.oid()) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b) && access.tid() == id.tid(),
        (None, None) => access.sub().is_some() && access.sub() == id.sub(),
        _ => false,
    }
}

/// Reads at most `limit` bytes of body: a declared larger `Content-Length` is refused before
/// reading, a longer stream as soon as it passes the limit.
async fn read_limited(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, ()> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(());
    }
    to_bytes(body, limit).await.map_err(|_| ())
}

/// The session a `/.auth` request is about: cookie or X-ZUMO-AUTH (never a bad bearer's 401).
/// `grace` admits a session that ended less than `tokenRefreshExtensionHours` ago.
async fn session_of(
    m: &Module,
    site: &Site,
    request: &Parts,
    grace: bool,
) -> Option<(String, Arc<SessionRecord>, bool)> {
    let zumo = request.extensions.get::<ZumoToken>().map(|z| z.0.as_str());
    match m.session(site, &request.headers, zumo, grace).await {
        Some(Identity::Session {
            sid,
            record,
            via_cookie,
            ..
        }) => Some((sid, record, via_cookie)),
        _ => None,
    }
}

/// GET /.auth/me
async fn me(m: &Module, site: &Site, request: &Parts) -> Response {
    let Some((_, record, _)) = session_of(m, site, request, false).await else {
        return unauthorized(m, Some(site), "/.auth/me needs a signed-in session").await;
    };
    let name_claim = m
        .provider(&record.provider)
        .and_then(|p| p.settings.name_claim.clone());
    let principal = ClientPrincipal::from_claims(
        &record.provider,
        &record.claims,
        m.settings.legacy_claims,
        name_claim.as_deref(),
    );
    // Keys in the alphabetical order App Service writes them; absent tokens are omitted.
    let mut entry = serde_json::Map::new();
    if let Some(at) = &record.access_token {
        entry.insert("access_token".into(), json!(at));
    }
    if let Some(exp) = record.expires_on.filter(|_| record.access_token.is_some()) {
        entry.insert("expires_on".into(), json!(expires_on(exp)));
    }
    if let Some(it) = &record.id_token {
        entry.insert("id_token".into(), json!(it));
    }
    entry.insert("provider_name".into(), json!(record.provider));
    if let Some(rt) = &record.refresh_token {
        entry.insert("refresh_token".into(), json!(rt));
    }
    entry.insert("user_claims".into(), json!(principal.claims));
    entry.insert("user_id".into(), json!(principal.name));
    let mut r = axum::Json(Value::Array(vec![Value::Object(entry)])).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    r
}

/// GET /.auth/refresh
async fn refresh(m: &Module, site: &Site, request: &Parts) -> Response {
    let headers = &request.headers;
    let found_session = match session_of(m, site, request, true).await {
        Some((sid, record, via_cookie)) => Some((sid, (*record).clone(), via_cookie, !via_cookie)),
        None => match bearer(headers) {
            Some(token) => m
                .session_by_access_token(token)
                .await
                .map(|(sid, r)| (sid, (*r).clone(), false, false)),
            None => None,
        },
    };
    let Some((sid, mut record, _via_cookie, via_zumo)) = found_session else {
        return unauthorized(m, Some(site), "/.auth/refresh needs a session (cookie, X-ZUMO-AUTH, or the access token the module issued)").await;
    };
    if record.session_expires + m.settings.refresh_extension.as_secs() as i64 <= now() {
        return unauthorized(
            m,
            Some(site),
            "the session ended more than tokenRefreshExtensionHours ago; sign in again",
        )
        .await;
    }
    let Some(provider) = m.provider(&record.provider) else {
        return unauthorized(
            m,
            Some(site),
            "the session's provider is no longer configured",
        )
        .await;
    };
    let Some(refresh_token) = record.refresh_token.clone() else {
        return unauthorized(
            m,
            Some(site),
            "the session has no refresh token: add offline_access to the provider's scope",
        )
        .await;
    };
    let client = match provider.token_client().await {
        Ok(c) => c,
        Err(e) => return refuse(m, StatusCode::BAD_GATEWAY, &e),
    };
    let tokens = match client
        .refresh(&refresh_token, Some(&provider.settings.scope))
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(target: "easyauth::module", status = 401, reason = %e, "refresh failed");
            return unauthorized(
                m,
                Some(site),
                &format!("the identity provider refused the refresh: {e}"),
            )
            .await;
        }
    };
    let old = record.clone();
    record.access_token = Some(tokens.access_token.clone());
    if let Some(rt) = tokens.refresh_token.clone() {
        record.refresh_token = Some(rt);
    }
    if let Some(it) = tokens.id_token.clone() {
        record.id_token = Some(it);
    }
    record.expires_on = tokens.expires_in.map(|s| now() + s as i64);
    record.session_expires = m.settings.session_end(record.expires_on);
    m.delete_session(&sid, Some(&old)).await;
    if let Err(e) = m.save_session(&sid, &record).await {
        return refuse(
            m,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the token store failed: {e}"),
        );
    }
    if via_zumo {
        return axum::Json(json!({
            "authenticationToken": m.zumo_token(site, &sid, &record.provider, record.session_expires),
            "user": {"userId": Module::zumo_user_id(&sid)},
        }))
        .into_response();
    }
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    r
}

/// GET /.auth/logout
async fn logout(m: &Module, site: &Site, request: &Parts) -> Response {
    let headers = &request.headers;
    let session = session_of(m, site, request, true).await;
    let target =
        query_param(request, "post_logout_redirect_uri").and_then(|t| redirect_target(m, site, &t));
    let style = site.cookie_style();
    let chunks = crate::session::chunked_cookie(headers, SESSION_COOKIE).map_or(1, |(_, n)| n);
    let mut cookies: Vec<String> = (0..chunks.max(1))
        .map(|i| {
            style.clear(&if i == 0 {
                SESSION_COOKIE.to_owned()
            } else {
                format!("{SESSION_COOKIE}{i}")
            })
        })
        .collect();
    cookies.push(style.clear(NONCE_COOKIE));
    let complete = format!("{}{}/logout/complete", site.base(), m.settings.api_prefix);
    let Some((sid, record, _)) = session else {
        return found(target.as_deref().unwrap_or(&complete), cookies);
    };
    m.end_session(&sid, &record).await;
    let end_session = match m.provider(&record.provider) {
        Some(p) => p
            .metadata()
            .await
            .ok()
            .and_then(|md| md.end_session_endpoint.clone())
            .map(|e| (e, p.settings.client_id.clone())),
        None => None,
    };
    let location = match end_session {
        Some((endpoint, client_id)) => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("post_logout_redirect_uri", &complete)
                .append_pair("client_id", &client_id);
            if let Some(hint) = &record.id_token {
                q.append_pair("id_token_hint", hint);
            }
            if let Some(t) = &target {
                q.append_pair("state", t);
            }
            let sep = if endpoint.contains('?') { '&' } else { '?' };
            format!("{endpoint}{sep}{}", q.finish())
        }
        None => target.unwrap_or(complete),
    };
    found(&location, cookies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_encoded_for_a_location_header() {
        assert_eq!(fragment_suffix("section-2/a b"), "#section-2/a%20b");
        assert_eq!(fragment_suffix("x=1&y=%41"), "#x=1&y=%41");
        // No header splitting, no second fragment, no markup.
        assert_eq!(
            fragment_suffix("a\r\nSet-Cookie: x"),
            "#a%0D%0ASet-Cookie:%20x"
        );
        assert_eq!(fragment_suffix("a#b<c>"), "#a%23b%3Cc%3E");
        assert_eq!(fragment_suffix(&"é".repeat(3000)).len(), 1 + 2000 * 6);
    }

    #[test]
    fn the_fragment_page_cannot_be_closed_by_the_query() {
        // As a browser sends it, and raw (if the URI parser lets it through).
        for uri in [
            "/.auth/login/aad?x=%3C/script%3E%3Cb%3E",
            "/.auth/login/aad?x=</script><b>",
        ] {
            let Ok(request) = axum::http::Request::builder().uri(uri).body(()) else {
                continue;
            };
            let body = body_text(fragment_page(&request.into_parts().0));
            assert_eq!(body.matches("</script>").count(), 1, "{body}");
            assert!(!body.contains("<b>"), "{body}");
            assert!(body.contains("easyauth_fragment="), "{body}");
        }
    }

    fn body_text(response: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let bytes = rt
            .block_on(to_bytes(response.into_body(), 1 << 20))
            .expect("body");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
