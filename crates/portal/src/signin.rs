//! Signing in through the local identity provider: authorization code with PKCE and a nonce, the
//! `state` bound to the browser by a cookie, the code redeemed with the portal's secret; the
//! session keeps the user's Resource Manager token and renews it with the refresh token.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::Portal;
use crate::respond::{csrf_refused, error_page, redirect};
use crate::session::{
    Pending, SESSION_COOKIE, SIGNIN_COOKIE, Session, Sessions, cookie, set_cookie,
};

/// The scope of the portal's access token: the Resource Manager as the signed-in user.
pub(crate) const ARM_SCOPE: &str = "https://management.core.windows.net//user_impersonation";
/// Microsoft Graph as the signed-in user.
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/User.Read offline_access";

pub(crate) fn redirect_uris(public_url: &str) -> Vec<String> {
    let mut uris = vec![format!("{public_url}/signin-oidc")];
    if let Ok(mut u) = url::Url::parse(public_url)
        && u.host_str() == Some("127.0.0.1")
        && u.set_host(Some("localhost")).is_ok()
    {
        uris.push(format!("{}/signin-oidc", u.as_str().trim_end_matches('/')));
    }
    uris
}

/// The callback for the host the browser used, when it is one of the registered ones (the
/// portal is served at 127.0.0.1 and at localhost); else the printed one.
fn redirect_uri_for(portal: &Portal, headers: &HeaderMap) -> String {
    let registered = redirect_uris(&portal.config.public_url);
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|host| format!("https://{host}/signin-oidc"))
        .filter(|uri| registered.contains(uri))
        .unwrap_or_else(|| registered[0].clone())
}

#[derive(Deserialize)]
pub(crate) struct StartQuery {
    #[serde(rename = "return")]
    return_to: Option<String>,
}

/// `GET /signin`: to the identity provider's authorization endpoint.
pub(crate) async fn start(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Response {
    // Only the portal's own pages are return targets.
    let return_to = q
        .return_to
        .filter(|r| r.starts_with('/') && !r.starts_with("//") && !r.contains('\\'))
        .unwrap_or_else(|| "/".to_owned());
    let redirect_uri = redirect_uri_for(&portal, &headers);
    let pending = Pending::new(redirect_uri.clone(), return_to);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pending.verifier.as_bytes()),
    );
    let nonce = pending.nonce.clone();
    let state = portal.sessions.begin(pending);
    let mut url = match url::Url::parse(&format!(
        "{}/{}/oauth2/v2.0/authorize",
        portal.config.idp_url, portal.config.tenant_id
    )) {
        Ok(u) => u,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    url.query_pairs_mut()
        .append_pair("client_id", &portal.config.client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("response_mode", "query")
        .append_pair(
            "scope",
            &format!("openid profile offline_access {ARM_SCOPE}"),
        )
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut r = redirect(url.as_str());
    if let Ok(v) = set_cookie(SIGNIN_COOKIE, &state, Some(600)).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /signin-oidc`: the identity provider's answer.
pub(crate) async fn callback(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    if let Some(error) = q.error {
        return error_page(
            StatusCode::UNAUTHORIZED,
            &format!(
                "Sign-in failed: {error}: {}",
                q.error_description.unwrap_or_default()
            ),
        );
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed: the answer has no code or state.",
        );
    };
    // The state must be the one this browser was sent off with (no login CSRF).
    let bound = cookie(&headers, SIGNIN_COOKIE)
        .is_some_and(|c| bool::from(c.as_bytes().ct_eq(state.as_bytes())));
    let pending = if bound {
        portal.sessions.finish(&state)
    } else {
        None
    };
    let Some(pending) = pending else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed: this sign-in was not started in this browser, or it took longer than 10 minutes. Sign in again.",
        );
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", portal.config.client_id.as_str()),
        ("client_secret", portal.config.client_secret.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", pending.redirect_uri.as_str()),
        ("code_verifier", pending.verifier.as_str()),
        (
            "scope",
            &format!("openid profile offline_access {ARM_SCOPE}"),
        ),
    ];
    let answer = match token_request(&portal, &form).await {
        Ok(a) => a,
        Err(e) => return error_page(StatusCode::BAD_GATEWAY, &format!("Sign-in failed: {e}")),
    };
    let user = match id_token_user(&portal, &answer, &pending.nonce) {
        Ok(u) => u,
        Err(e) => return error_page(StatusCode::BAD_GATEWAY, &format!("Sign-in failed: {e}")),
    };
    let session = Session::new(
        user,
        answer.access_token,
        answer.lifetime,
        answer.refresh_token,
    );
    let id = portal.sessions.create(session);
    let mut r = redirect(&pending.return_to);
    for c in [
        set_cookie(SESSION_COOKIE, &id, None),
        set_cookie(SIGNIN_COOKIE, "", Some(0)),
    ] {
        if let Ok(v) = c.parse() {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// `POST /signout`: forgets the session (CSRF-checked like every form).
pub(crate) async fn sign_out(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Some((id, session)) = portal.sessions.get(&headers) else {
        return redirect("/");
    };
    let form = match crate::form::read(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !Sessions::check_csrf(&session, form.get("csrf")) {
        return csrf_refused();
    }
    portal.sessions.remove(&id);
    let mut r = redirect(&format!(
        "{}/{}/oauth2/v2.0/logout?post_logout_redirect_uri={}",
        portal.config.idp_url,
        portal.config.tenant_id,
        url::form_urlencoded::byte_serialize(portal.config.public_url.as_bytes())
            .collect::<String>()
    ));
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", Some(0)).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r.into_response()
}

pub(crate) struct TokenAnswer {
    access_token: String,
    lifetime: Duration,
    refresh_token: Option<String>,
    id_token: Option<String>,
}

async fn token_request(portal: &Portal, form: &[(&str, &str)]) -> Result<TokenAnswer, String> {
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        portal.config.idp_url, portal.config.tenant_id
    );
    let response = portal
        .http
        .post(&url)
        .form(form)
        .send()
        .await
        .map_err(|e| format!("the identity provider did not answer: {e}"))?;
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("the identity provider's answer is not JSON: {e}"))?;
    let Some(access_token) = body.get("access_token").and_then(Value::as_str) else {
        return Err(body
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or("no access token in the answer")
            .to_owned());
    };
    Ok(TokenAnswer {
        access_token: access_token.to_owned(),
        lifetime: Duration::from_secs(
            body.get("expires_in")
                .and_then(Value::as_u64)
                .unwrap_or(3600)
                .saturating_sub(60),
        ),
        refresh_token: body
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_owned),
        id_token: body
            .get("id_token")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The signed-in user's name from the ID token. It came straight from the token endpoint over
/// TLS (OIDC Core 3.1.3.7), so the checks are issuer, audience and the nonce of this sign-in.
fn id_token_user(portal: &Portal, answer: &TokenAnswer, nonce: &str) -> Result<String, String> {
    let token = answer
        .id_token
        .as_deref()
        .ok_or("the identity provider returned no ID token")?;
    let payload = token.split('.').nth(1).ok_or("the ID token is not a JWT")?;
    let claims: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("the ID token's claims are not JSON")?;
    let s = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("");
    if s("iss") != portal.config.issuer {
        return Err(format!("the ID token's issuer is {:?}", s("iss")));
    }
    if s("aud") != portal.config.client_id {
        return Err("the ID token is for another application".into());
    }
    if !bool::from(s("nonce").as_bytes().ct_eq(nonce.as_bytes())) {
        return Err("the ID token's nonce is not this sign-in's".into());
    }
    Ok([s("preferred_username"), s("name"), s("oid")]
        .into_iter()
        .find(|v| !v.is_empty())
        .unwrap_or("signed in")
        .to_owned())
}

/// The two APIs the portal calls as the signed-in person.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Api {
    ResourceManager,
    Graph,
}

impl Api {
    fn scope(self) -> String {
        match self {
            Api::ResourceManager => format!("offline_access {ARM_SCOPE}"),
            Api::Graph => GRAPH_SCOPE.to_owned(),
        }
    }

    /// The session's token for this API, if it is still current.
    fn current(self, s: &Session) -> Option<String> {
        let now = std::time::Instant::now();
        match self {
            Api::ResourceManager => (now < s.expires).then(|| s.access_token.clone()),
            Api::Graph => s
                .graph
                .as_ref()
                .filter(|(_, expires)| now < *expires)
                .map(|(t, _)| t.clone()),
        }
    }

    fn store(self, s: &mut Session, token: String, lifetime: Duration) {
        let expires = std::time::Instant::now() + lifetime;
        match self {
            Api::ResourceManager => {
                s.access_token = token;
                s.expires = expires;
            }
            Api::Graph => s.graph = Some((token, expires)),
        }
    }
}

/// The session's token for `api`, renewed with the refresh token when it has expired (for Graph
/// the first time: the refresh token is redeemed for another resource, as Entra's allow).
/// `None`: sign in again.
pub(crate) async fn token(
    portal: &Portal,
    id: &str,
    session: &Session,
    api: Api,
) -> Option<String> {
    if let Some(t) = api.current(session) {
        return Some(t);
    }
    // One renewal at a time: the identity provider rotates refresh tokens and takes a rotated one
    // presented again for theft (revoking the whole family), so two pages of one person renewing
    // at once (the Log stream page and its frame) would sign that person out.
    let _renewal = portal.sessions.renewal.lock().await;
    let session = portal.sessions.by_id(id)?;
    if let Some(t) = api.current(&session) {
        return Some(t);
    }
    let refresh = session.refresh_token.as_deref()?;
    let answer = token_request(
        portal,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", portal.config.client_id.as_str()),
            ("client_secret", portal.config.client_secret.as_str()),
            ("refresh_token", refresh),
            ("scope", &api.scope()),
        ],
    )
    .await
    .ok()?;
    let token = answer.access_token.clone();
    portal.sessions.update(id, |s| {
        api.store(s, answer.access_token, answer.lifetime);
        if answer.refresh_token.is_some() {
            s.refresh_token = answer.refresh_token;
        }
    });
    Some(token)
}
