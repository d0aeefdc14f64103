//! The blades. Each handler: the signed-in session (else to the sign-in), ARM calls with the
//! person's token, HTML. Writes are POSTs with the session's CSRF token, answered with a
//! redirect back to the blade (post/redirect/get) carrying the outcome in the query.

pub(crate) mod authentication;
pub(crate) mod environment;
pub(crate) mod home;
pub(crate) mod logstream;
pub(crate) mod registrations;
pub(crate) mod webapp;

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

use crate::Portal;
use crate::html::{enc, esc, page};
use crate::session::{Session, Sessions};

pub(crate) use crate::respond::{csrf_refused, error_page, redirect};

/// A signed-in request: the session, and a current Resource Manager token.
pub(crate) struct Signed {
    pub(crate) id: String,
    pub(crate) session: Session,
    pub(crate) token: String,
}

impl Signed {
    pub(crate) fn user(&self) -> Option<(&str, &str)> {
        Some((self.session.user.as_str(), self.session.csrf.as_str()))
    }

    /// A Microsoft Graph token for the same person.
    pub(crate) async fn graph_token(&self, portal: &Portal) -> Result<String, Response> {
        crate::signin::token(portal, &self.id, &self.session, crate::signin::Api::Graph)
            .await
            .ok_or_else(|| {
                error_page(
                    StatusCode::UNAUTHORIZED,
                    "Microsoft Graph refused this session's token; sign out and in again.",
                )
            })
    }
}

/// The session and token, or the response that sends the browser to sign in.
pub(crate) async fn signed_in(
    portal: &Portal,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Signed, Response> {
    let to_signin = || {
        let back = uri.path_and_query().map_or("/", |p| p.as_str());
        redirect(&format!("/signin?return={}", enc(back)))
    };
    let Some((id, session)) = portal.sessions.get(headers) else {
        return Err(to_signin());
    };
    match crate::signin::token(portal, &id, &session, crate::signin::Api::ResourceManager).await {
        Some(token) => Ok(Signed { id, session, token }),
        None => {
            portal.sessions.remove(&id);
            Err(to_signin())
        }
    }
}

/// For POSTs: signed in (a POST without a session is refused, not redirected) and the form's
/// CSRF token is the session's.
pub(crate) async fn signed_form(
    portal: &Portal,
    headers: &HeaderMap,
    uri: &Uri,
    body: axum::body::Body,
) -> Result<(Signed, crate::form::Form), Response> {
    if portal.sessions.get(headers).is_none() {
        return Err(error_page(
            StatusCode::UNAUTHORIZED,
            "You are not signed in (or your session ended). Sign in and try again.",
        ));
    }
    let signed = signed_in(portal, headers, uri).await?;
    let form = crate::form::read(body).await?;
    if !Sessions::check_csrf(&signed.session, form.get("csrf")) {
        return Err(csrf_refused());
    }
    Ok((signed, form))
}

/// On every answer: no framing by other sites (clickjacking), no sniffing, no caching of pages
/// that show settings, no Referer with a portal path to the apps it links to.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        ("x-frame-options", "SAMEORIGIN"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
    ] {
        h.insert(name, axum::http::HeaderValue::from_static(value));
    }
    response
}

pub(crate) async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "There is no such page in this portal.",
    )
}

/// The outcome of the last write, carried in the query of the redirect (`?ok=` or `?error=`).
pub(crate) fn outcome(query: Option<&str>) -> String {
    let Some(q) = query else {
        return String::new();
    };
    let mut html = String::new();
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()).take(4) {
        match k.as_ref() {
            "ok" => html.push_str(&format!("<div class=\"ok\">{}</div>", esc(&v))),
            "error" => html.push_str(&format!("<div class=\"error\">{}</div>", esc(&v))),
            _ => {}
        }
    }
    html
}

/// Back to `blade` with a message.
pub(crate) fn back(blade: &str, result: Result<String, String>) -> Response {
    let (k, v) = match result {
        Ok(m) => ("ok", m),
        Err(m) => ("error", m),
    };
    redirect(&format!("{blade}?{k}={}", enc(&v)))
}

/// A web app's blade: the page titled `<site> | <blade>` (the Overview is titled by the site
/// alone), with the breadcrumbs Home > group > site and the blade menu above `body`.
pub(crate) fn webapp_page(
    signed: &Signed,
    group: &str,
    site: &str,
    blade: &str,
    body: &str,
) -> Response {
    let base = format!("/resource/{}/{}", enc(group), enc(site));
    let mut html = String::from("<nav class=\"blades\">");
    for (label, path) in [
        ("Overview", ""),
        ("Environment variables", "/environment"),
        ("Authentication", "/authentication"),
        ("Log stream", "/logstream"),
    ] {
        let class = if label == blade {
            " class=\"current\""
        } else {
            ""
        };
        html.push_str(&format!(
            "<a href=\"{}{path}\"{class}>{label}</a>",
            esc(&base)
        ));
    }
    html.push_str("</nav>");
    html.push_str(body);
    let title = if blade == "Overview" {
        site.to_owned()
    } else {
        format!("{site} | {blade}")
    };
    let mut crumbs = vec![
        ("Home", "/".to_owned()),
        (group, format!("/resource/{}", enc(group))),
    ];
    if blade != "Overview" {
        crumbs.push((site, base));
    }
    Html(page(&title, signed.user(), &crumbs, &html)).into_response()
}
