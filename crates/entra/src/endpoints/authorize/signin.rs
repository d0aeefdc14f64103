//! POST /{tenant}/login: the sign-in form. The password goes through smart lockout
//! ([`check_password`]); the new session then continues the flow like any other entry.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::flow::{Flow, posted_form, proceed};
use super::page;
use super::respond::error_page;
use crate::Idp;
use crate::signin::{SignInStep, check_password};

pub(crate) async fn submit(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (dir, form, req) = match posted_form(&idp, &tenant_name, &headers, body).await {
        Ok(x) => x,
        Err(response) => return *response,
    };
    let retry = |message: &str| page::sign_in(&idp, &dir, &req, &headers, Some(message));
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
