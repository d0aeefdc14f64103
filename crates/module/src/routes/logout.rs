//! `GET /.auth/logout` (or `login.routes.logoutEndpoint`): ends the session, clears its
//! cookies and goes through the provider's end-session endpoint; `/.auth/logout/complete` is
//! where the provider sends the browser back.

use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;

use super::request::{query_param, redirect_target, session_of};
use crate::cookies::{NONCE_COOKIE, SESSION_COOKIE, chunked_cookie};
use crate::module::Module;
use crate::respond::{found, page, set_cookies, store_unavailable};
use crate::site::Site;

/// GET /.auth/logout
pub(super) async fn logout(m: &Module, site: &Site, request: &Parts) -> Response {
    let headers = &request.headers;
    let session = session_of(m, site, request, true).await;
    let target =
        query_param(request, "post_logout_redirect_uri").and_then(|t| redirect_target(m, site, &t));
    let style = site.cookie_style();
    let chunks = chunked_cookie(headers, SESSION_COOKIE).map_or(1, |(_, n)| n);
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
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            // Without the store the session cannot be revoked: same answer as a failed
            // revocation, and this browser's cookies are cleared either way.
            let mut r = store_unavailable(m, &e);
            set_cookies(&mut r, cookies);
            return r;
        }
    };
    let Some((sid, record, _)) = session else {
        return found(target.as_deref().unwrap_or(&complete), cookies);
    };
    if let Err(e) = m.end_session(&sid, &record).await {
        // Without the revocation a copy of the cookie would still sign in: say so rather than
        // pretend the sign-out happened. This browser's cookies are cleared either way.
        tracing::error!(target: "easyauth::module", error = %e, "sign-out failed: the session could not be revoked");
        let mut r = page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-out could not be completed",
            "<p>The session could not be ended on the server. Try again in a moment.</p>",
        );
        set_cookies(&mut r, cookies);
        return r;
    }
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

/// GET /.auth/logout/complete: back from the provider, to the checked target or a page.
pub(super) fn logout_complete(m: &Module, site: &Site, request: &Parts) -> Response {
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
