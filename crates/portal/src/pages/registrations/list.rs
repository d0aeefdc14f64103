//! App registrations: the tenant's applications, each linking to its Overview.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{Html, IntoResponse, Response};
use reqwest::Method;

use super::{blade_path, ctx, list, s};
use crate::Portal;
use crate::html::{esc, page};
use crate::pages::outcome;

pub(crate) async fn show(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let ctx = match ctx(&portal, &headers, &uri).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut body = outcome(uri.query());
    match ctx
        .call(
            &portal,
            Method::GET,
            "applications?$select=id,appId,displayName,createdDateTime",
            None,
        )
        .await
    {
        Ok(v) => {
            let apps = list(&v["value"]);
            if apps.is_empty() {
                body.push_str("<p>No app registrations yet.</p>");
            } else {
                body.push_str("<table><tr><th>Display name</th><th>Application (client) ID</th><th>Created on</th></tr>");
                for a in &apps {
                    let _ = write!(
                        body,
                        "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                        esc(&blade_path(s(a, "id"), "")),
                        esc(s(a, "displayName")),
                        esc(s(a, "appId")),
                        esc(s(a, "createdDateTime"))
                    );
                }
                body.push_str("</table>");
            }
        }
        Err(e) => {
            let _ = write!(body, "<div class=\"error\">{}</div>", esc(&e.to_string()));
        }
    }
    Html(page(
        "App registrations",
        ctx.signed.user(),
        &[
            ("Home", "/".to_owned()),
            ("Microsoft Entra ID", "/registrations".to_owned()),
        ],
        &body,
    ))
    .into_response()
}

/// `GET /registrations/app/{appId}`: the registration of a client ID (the web app's
/// Authentication blade links here), as a redirect to its Overview.
pub(crate) async fn by_app_id(
    axum::extract::State(portal): axum::extract::State<std::sync::Arc<Portal>>,
    axum::extract::Path(app_id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> axum::response::Response {
    let ctx = match super::ctx(&portal, &headers, &uri).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let path = format!(
        "applications(appId='{}')",
        crate::html::enc(&app_id.replace('\'', "''"))
    );
    match ctx.call(&portal, reqwest::Method::GET, &path, None).await {
        Ok(app) => crate::pages::redirect(&super::blade_path(
            app["id"].as_str().unwrap_or_default(),
            "",
        )),
        Err(e) => crate::pages::error_page(
            axum::http::StatusCode::NOT_FOUND,
            &format!(
                "No app registration of this tenant has the client ID {app_id} ({e}); a registration of another tenant, or a built-in application, has no blade here."
            ),
        ),
    }
}
