//! POST /{tenant}/consent: the consent form. It re-runs the sign-in rule and the consent rules
//! of the authorize request it carries (the functions [`proceed`] applies), records only what
//! those rules say the user may grant, and records nothing when they refuse.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::flow::{Flow, consent_needed, posted_form, proceed, signed_in_user};
use super::page;
use super::respond::reject;
use crate::Idp;
use crate::consent;
use crate::error::EntraError;
use crate::signin::SignInStep;
use crate::util::now;

/// How long after signing in the consent form still counts as part of that sign-in (so
/// `prompt=login` does not ask for the password twice in one flow).
const SIGN_IN_STEP_LIFETIME: i64 = 600;

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
        return page::sign_in(
            &idp,
            &dir,
            &req,
            &headers,
            Some("Your session timed out. Please sign in again."),
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
