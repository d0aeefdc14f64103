//! `GET /.auth/login` (to the default provider) and `GET /.auth/login/<provider>`: the start of
//! a browser sign-in, with PKCE, a nonce and state sealed into the `Nonce` cookie.

use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;

use super::attempt::Attempt;
use super::fragment::{FRAGMENT_PARAM, fragment_page, fragment_suffix};
use super::request::{callback_url, query_param, redirect_target};
use crate::clock::now;
use crate::context::is_browser;
use crate::ids::{random_hex, random_id};
use crate::module::Module;
use crate::provider::IdentityProvider;
use crate::refusal::{ReasonCode, Refusal};
use crate::respond::{found, page, refuse};
use crate::site::Site;

/// GET /.auth/login: the default provider's login, with the same query.
pub(super) fn default_login(m: &Module, request: &Parts) -> Response {
    let Some(provider) = m.default_provider() else {
        return refuse(
            m,
            StatusCode::NOT_FOUND,
            &Refusal::new(ReasonCode::UnknownProvider, "no provider"),
        );
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

/// GET /.auth/login/<provider>: send the browser to the provider's authorize endpoint.
pub(super) async fn start_login(
    m: &Module,
    site: &Site,
    provider: &IdentityProvider,
    request: &Parts,
) -> Response {
    let fragment = query_param(request, FRAGMENT_PARAM);
    if m.settings.preserve_fragments && fragment.is_none() && is_browser(&request.headers) {
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
    match attempt.seal(m, style) {
        Ok(cookie) => found(&location, vec![cookie]),
        Err(e) => {
            tracing::error!(target: "easyauth::module", error = %e, "the sign-in attempt could not be sealed");
            refuse(
                m,
                StatusCode::INTERNAL_SERVER_ERROR,
                &Refusal::new(
                    ReasonCode::Internal,
                    format!("the sign-in attempt could not be sealed: {e}"),
                ),
            )
        }
    }
}
