//! The tutorial's front end (the Node sample's `frontend/src/server.js`): a home page, `/debug`,
//! and `/get-profile`, which calls `BACKEND_URL/get-profile` with the signed-in user's access
//! token from `X-MS-TOKEN-AAD-ACCESS-TOKEN` and shows the answer — or, when the back end's
//! authentication refuses the call, the status, the module's reason and what to change.
//!
//! Settings: `BACKEND_URL` (the back end's base URL), `APPSETTING_WEBSITE_AUTH_ENABLED` or
//! `WEBSITE_AUTH_ENABLED`, `PORT`, `SSL_CERT_FILE`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::common::{
    JwtError, NOT_A_JWT_ADVICE, Reply, Settings, claim, decode_jwt, details, esc, expiry,
    http_client, json_block, masked_headers, now, page, rfc3339, send, to_json, token_section,
};

/// The header the authentication module puts the user's access token in.
pub const ACCESS_TOKEN_HEADER: &str = "x-ms-token-aad-access-token";
/// The header the module adds to its 401/403 answers in development mode.
pub use easyauth_module::REASON_HEADER;
/// Title and first heading of the home page, as in the Node sample.
pub const TITLE: &str = "Easy auth - Get Profile from API server";

#[derive(Debug)]
struct Frontend {
    backend_url: Option<String>,
    auth_enabled: bool,
    settings: Settings,
    http: reqwest::Client,
}

/// The front end's routes, configured from `settings`.
pub fn router(settings: Settings) -> Result<Router, String> {
    router_with_roots(settings, &[])
}

/// [`router`], also trusting the PEM certificates in `extra_roots` for the call to the back end.
pub fn router_with_roots(settings: Settings, extra_roots: &[u8]) -> Result<Router, String> {
    let http = http_client(&settings, extra_roots)?;
    let state = Arc::new(Frontend {
        backend_url: settings.get("BACKEND_URL").map(str::to_owned),
        auth_enabled: settings.auth_enabled(),
        settings,
        http,
    });
    Ok(Router::new()
        .route("/", get(home))
        .route("/debug", get(debug))
        .route("/get-profile", get(get_profile))
        .fallback(fallback)
        .with_state(state))
}

/// The user's access token as the module injected it.
#[derive(Debug)]
struct UserToken {
    value: HeaderValue,
    text: String,
    claims: Result<Map<String, Value>, JwtError>,
}

fn user_token(headers: &HeaderMap) -> Option<UserToken> {
    let value = headers.get(ACCESS_TOKEN_HEADER)?;
    let text = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
    if text.is_empty() {
        return None;
    }
    Some(UserToken {
        value: value.clone(),
        claims: decode_jwt(&text),
        text,
    })
}

async fn home(headers: HeaderMap) -> Response {
    let who = match headers
        .get("x-ms-client-principal-name")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    {
        Some(name) => format!("<p>Signed in as <b>{}</b>.</p>", esc(&name)),
        None => "<p>Not signed in (no <code>X-MS-CLIENT-PRINCIPAL-NAME</code> header).</p>".into(),
    };
    let links = [
        ("/.auth/login", "/.auth/login"),
        ("/.auth/me", "/.auth/me"),
        ("/.auth/refresh", "/.auth/refresh"),
        ("/.auth/logout", "/.auth/logout"),
        ("/debug", "/debug"),
        (
            "https://developer.microsoft.com/graph/graph-explorer",
            "Graph Explorer",
        ),
        ("https://jwt.ms", "jwt.ms"),
    ]
    .iter()
    .map(|(href, text)| format!("<li><a href=\"{href}\">{}</a></li>", esc(text)))
    .collect::<Vec<_>>()
    .join("\n");
    let body = format!(
        "<h1>{} - 1</h1>\n{who}\n<p><a href=\"/get-profile\">Get user's profile</a></p>\n{}",
        esc(TITLE),
        details("Links", &format!("<ul>\n{links}\n</ul>")),
    );
    page(TITLE, &body).into_response()
}

async fn debug(State(app): State<Arc<Frontend>>, headers: HeaderMap) -> Response {
    let token = user_token(&headers);
    let mut body = String::from("<h2>Client server - Profile</h2>\n");
    body.push_str(&token_section(
        "Access token",
        "X-MS-TOKEN-AAD-ACCESS-TOKEN",
        token.as_ref().map(|t| t.text.as_str()),
    ));
    body.push_str(&details(
        "Token expiry",
        &json_block(&expiry_report(token.as_ref())),
    ));
    body.push_str(&details(
        "HTTP Headers",
        &json_block(&to_json(&masked_headers(&headers))),
    ));
    body.push_str(&details(
        "App Service environment variables",
        &json_block(&to_json(&app.settings.shown())),
    ));
    page("Easy auth - debug", &body).into_response()
}

/// The Node sample's "token refresh middleware" record, without the refresh call: the module
/// refreshes on `/.auth/refresh`, which the page links to.
fn expiry_report(token: Option<&UserToken>) -> Value {
    let now = now();
    let Some(exp) = token.and_then(|t| t.claims.as_ref().ok()).and_then(expiry) else {
        return json!({"expired": Value::Null, "cause": "no readable access token", "currentTimeDate": rfc3339(now)});
    };
    let expired = exp <= now;
    json!({
        "expired": expired,
        "expirationDate": rfc3339(exp),
        "currentTimeDate": rfc3339(now),
        "minutes_remaining": (exp - now) / 60,
        "cause": if expired { "token expired: visit /.auth/refresh" } else { "token NOT expired" },
    })
}

async fn get_profile(State(app): State<Arc<Frontend>>, headers: HeaderMap) -> Response {
    let token = user_token(&headers);
    let Some(base) = &app.backend_url else {
        return profile_page(
            "(BACKEND_URL is not set)",
            &failure(
                "BACKEND_URL is not set",
                None,
                None,
                "Set the front end's app setting BACKEND_URL to the back end's base URL, \
                 e.g. https://<back-end-app-name>.azurewebsites.net (no trailing slash).",
            ),
        );
    };
    let remote = format!("{}/get-profile", base.trim_end_matches('/'));
    let mut notes = String::new();
    if let Some(UserToken { claims: Err(e), .. }) = &token {
        notes = format!(
            "<p class=\"error\">Note: the access token cannot be read as a JWT: {}.</p>\n\
             <p class=\"advice\">{}</p>\n",
            esc(&e.to_string()),
            esc(NOT_A_JWT_ADVICE)
        );
    }
    if let Some(exp) = token
        .as_ref()
        .and_then(|t| t.claims.as_ref().ok())
        .and_then(expiry)
        .filter(|e| *e <= now())
    {
        notes.push_str(&format!(
            "<p class=\"advice\" id=\"expired\">Note: the access token expired at {}; the \
             back end will refuse it. Refresh it with <a href=\"/.auth/refresh\">/.auth/refresh</a> \
             (needs offline_access in the front end's loginParameters scope) or sign in again.</p>\n",
            esc(&rfc3339(exp))
        ));
    }
    if app.auth_enabled && token.is_none() {
        return profile_page(
            &remote,
            &failure(
                "Client: No access token found",
                None,
                None,
                "The front end got no X-MS-TOKEN-AAD-ACCESS-TOKEN header. Sign in first \
                 (/.auth/login), and check that the front end's authentication has the token \
                 store enabled (login.tokenStore.enabled) and requires authentication.",
            ),
        );
    }
    let mut request = app
        .http
        .get(&remote)
        .header(header::ACCEPT, "application/json");
    if let Some(t) = &token {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(t.value.as_bytes());
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            request = request.header(header::AUTHORIZATION, v);
        }
    }
    let reply = match send(request).await {
        Ok(r) => r,
        Err(e) => {
            let body = failure(
                &format!("Cannot call the back end: {e}"),
                None,
                None,
                "Check BACKEND_URL (scheme, host and port) and that the back end is running. \
                 For an https back end with a local certificate, SSL_CERT_FILE must name a PEM \
                 file holding its CA.",
            );
            return profile_page(&remote, &format!("{notes}{body}"));
        }
    };
    let body = if (200..300).contains(&reply.status) {
        match reply.json() {
            Some(v) => success(&v),
            None => failure(
                &format!(
                    "The back end answered {} but not with JSON",
                    status_line(reply.status)
                ),
                None,
                Some(&reply),
                "BACKEND_URL may point at something other than the back end (the front end \
                 itself, or a sign-in page).",
            ),
        }
    } else {
        let reason = reply.header(REASON_HEADER);
        failure(
            &format!("The back end answered {}", status_line(reply.status)),
            reason.as_deref(),
            Some(&reply),
            &advice(&reply, token.as_ref()),
        )
    };
    profile_page(&remote, &format!("{notes}{body}"))
}

fn status_line(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("{status} {reason}").trim_end().to_owned()
}

/// What to change, by status: the tutorial's troubleshooting table.
fn advice(reply: &Reply, token: Option<&UserToken>) -> String {
    let claims = token.and_then(|t| t.claims.as_ref().ok());
    let text = |name: &str| claims.and_then(|c| claim(c, name)).map(str::to_owned);
    match reply.status {
        401 => {
            let mut out = String::from(
                "The back end's authentication did not accept the user's access token: it is \
                 missing, expired, or not issued for the back end (wrong audience). Check the \
                 front end's loginParameters: the scope must ask for the back end's API, e.g. \
                 \"scope=openid offline_access api://<back-end-client-id>/user_impersonation\", \
                 so the access token's audience is the back end; then sign out (/.auth/logout) \
                 and in again to get a new token.",
            );
            match token {
                None => out.push_str(" The front end had no access token to send."),
                Some(_) => {
                    if let Some(aud) = text("aud") {
                        out.push_str(&format!(" This token's audience (aud) is {aud}."));
                    }
                    if let Some(exp) = claims.and_then(expiry).filter(|e| *e <= now()) {
                        out.push_str(&format!(
                            " This token expired at {}: refresh it with /.auth/refresh \
                             (needs offline_access in the scope).",
                            rfc3339(exp)
                        ));
                    }
                }
            }
            out
        }
        403 => {
            let mut out = String::from(
                "The back end accepted the token but not the application that sent it. Add the \
                 front end's client ID to the back end's \
                 identityProviders.azureActiveDirectory.validation.defaultAuthorizationPolicy.allowedApplications \
                 (and to validation.jwtClaimChecks.allowedClientApplications if that list is set).",
            );
            if let Some(client) = text("azp").or_else(|| text("appid")) {
                out.push_str(&format!(" This token's client (azp) is {client}."));
            }
            out
        }
        404 => "Check BACKEND_URL: it must be the back end's base URL, without a path or a \
                trailing slash, and the back end must serve /get-profile."
            .into(),
        300..=399 => format!(
            "The back end redirected (Location: {}), most likely to sign-in: it treated the call \
             as a browser without a valid token. Make sure a valid access token for the back end \
             is sent (see the 401 advice: loginParameters).",
            reply.header("location").unwrap_or_default()
        ),
        500..=599 => "The back end failed; its answer below says why.".into(),
        _ => String::new(),
    }
}

fn failure(message: &str, reason: Option<&str>, reply: Option<&Reply>, advice: &str) -> String {
    let mut out = format!(
        "<h3 class=\"error\">Error</h3>\n<p class=\"error\" id=\"error\">{}</p>\n",
        esc(message)
    );
    if let Some(reason) = reason {
        out.push_str(&format!(
            "<p>Reason (<code>{REASON_HEADER}</code>): <b id=\"reason\">{}</b></p>\n",
            esc(reason)
        ));
    }
    if !advice.is_empty() {
        out.push_str(&format!(
            "<p class=\"advice\" id=\"advice\">What to change: {}</p>\n",
            esc(advice)
        ));
    }
    if let Some(reply) = reply {
        let mut text = reply.text();
        if text.chars().count() > 4000 {
            text = text.chars().take(4000).collect::<String>() + "…";
        }
        let shown = if text.trim().is_empty() {
            "(empty body)".to_owned()
        } else {
            text
        };
        out.push_str(&details(
            "Back end response body",
            &format!("<pre>{}</pre>", esc(&shown)),
        ));
    }
    out
}

fn success(answer: &Value) -> String {
    let profile = answer.get("profile").unwrap_or(answer);
    let field = |name: &str| match profile.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "(none)".into(),
    };
    let mut out = format!(
        "<h3>Success</h3>\n<ul>\n<li>displayName: <b id=\"displayName\">{}</b></li>\n\
         <li>withAuthentication: <b id=\"withAuthentication\">{}</b></li>\n</ul>\n{}",
        esc(&field("displayName")),
        esc(&field("withAuthentication")),
        json_block(profile),
    );
    if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
        out.push_str(&format!(
            "<p class=\"error\">The back end reported an error:</p>\n{}",
            json_block(error)
        ));
    }
    for (key, summary) in [
        ("headers", "API Service HTTP Headers"),
        ("env", "API Service environment variables"),
        ("bearerToken", "API Service bearer token"),
    ] {
        if let Some(v) = answer.get(key) {
            out.push_str(&details(summary, &json_block(v)));
        }
    }
    out
}

fn profile_page(remote: &str, inner: &str) -> Response {
    let body = format!(
        "<h2>API server - Profile</h2>\n<h5>Remote url: {}</h5>\n{inner}",
        esc(remote)
    );
    page("Easy auth - Profile", &body).into_response()
}

/// Any other GET goes home, as in the Node sample.
async fn fallback(method: Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        (StatusCode::FOUND, [(header::LOCATION, "/")]).into_response()
    } else {
        (StatusCode::NOT_FOUND, "Not found").into_response()
    }
}
