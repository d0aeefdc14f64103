//! `GET|POST /.auth/login/<provider>/callback`: the end of a browser sign-in. The attempt in
//! the `Nonce` cookie must match; the code is redeemed with its PKCE verifier, the ID token
//! validated (and in the hybrid flow the front-channel one bound to the code), the session
//! stored and its cookie set.

use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::attempt::Attempt;
use super::request::{MAX_FORM, callback_url, form_pairs, read_limited, redirect_target};
use crate::clock::now;
use crate::cookies::NONCE_COOKIE;
use crate::ids::random_id;
use crate::module::Module;
use crate::provider::IdentityProvider;
use crate::refusal::{ReasonCode, Refusal};
use crate::respond::{found, page, refuse, set_cookies};
use crate::session_cookie::SessionCookie;
use crate::session_store::SessionRecord;
use crate::site::Site;

/// GET|POST /.auth/login/<provider>/callback: finish the sign-in.
pub(super) async fn callback(
    m: &Module,
    site: &Site,
    provider: &IdentityProvider,
    request: &Parts,
    body: axum::body::Body,
) -> Response {
    let headers = &request.headers;
    let params = if request.method == Method::POST {
        match read_limited(headers, body, MAX_FORM).await {
            Ok(b) => form_pairs(&String::from_utf8_lossy(&b)),
            Err(_) => {
                return refuse(
                    m,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &Refusal::new(ReasonCode::BodyTooLarge, "callback body too large"),
                );
            }
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
    let Some(attempt) = Attempt::open(m, headers) else {
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
        refreshed_at: None,
        injected: Default::default(),
    };
    // With the token store off, the session travels in the cookie alone.
    let sid = if m.settings.token_store {
        match m.create_session(&record).await {
            Ok(s) => s,
            // Not the user's fault and not a refusal: the session store is down. The attempt
            // is spent (its code is redeemed), so the page offers a new one.
            Err(e) => {
                tracing::error!(target: "easyauth::module", status = 503, error = %e, "sign-in not stored");
                let mut r = page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in could not be completed",
                    &format!(
                        "<p>The session could not be stored. Try again in a moment.</p><p><a href=\"{}/login/{}\">Try again</a></p>",
                        m.settings.api_prefix,
                        provider.alias()
                    ),
                );
                set_cookies(&mut r, vec![site.cookie_style().clear(NONCE_COOKIE)]);
                return r;
            }
        }
    } else {
        random_id()
    };
    tracing::info!(target: "easyauth::module", provider = provider.alias(), user = validated.str_claim("oid").or(validated.sub()).unwrap_or("-"), "signed in");
    let session_cookie = SessionCookie {
        sid,
        record: (!m.settings.token_store).then(|| record.clone()),
    };
    let mut cookies = match session_cookie.seal(&m.keys, site.cookie_style(), 0) {
        Ok(cookies) => cookies,
        Err(e) => return fail(&format!("the session cookie could not be sealed: {e}")),
    };
    cookies.push(site.cookie_style().clear(NONCE_COOKIE));
    let location = target.unwrap_or_else(|| format!("{}/login/done", m.settings.api_prefix));
    found(&location, cookies)
}
