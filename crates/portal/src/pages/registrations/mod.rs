//! Microsoft Entra ID → App registrations: the tenant's applications through Microsoft Graph with
//! the signed-in person's Graph token. A refused write shows Graph's own error ("(Code) message").

pub(crate) mod authentication;
pub(crate) mod credentials;
pub(crate) mod expose;
pub(crate) mod list;
pub(crate) mod overview;
pub(crate) mod permissions;

use axum::http::{HeaderMap, Uri};
use axum::response::{Html, IntoResponse, Response};
use reqwest::Method;
use serde_json::Value;

use crate::Portal;
use crate::graph::GraphCallError;
use crate::html::{enc, esc, page};
use crate::pages::{Signed, signed_form, signed_in};

/// Microsoft Graph's appId.
pub(crate) const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// A signed-in request with a Graph token.
pub(crate) struct Ctx {
    pub(crate) signed: Signed,
    pub(crate) graph: String,
}

impl Ctx {
    pub(crate) async fn call(
        &self,
        portal: &Portal,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, GraphCallError> {
        crate::graph::call(
            &portal.http,
            &portal.config.idp_url,
            &self.graph,
            method,
            path,
            body,
        )
        .await
    }

    /// The registration with object id `id`.
    pub(crate) async fn app(&self, portal: &Portal, id: &str) -> Result<Value, GraphCallError> {
        self.call(
            portal,
            Method::GET,
            &format!("applications/{}", enc(id)),
            None,
        )
        .await
    }

    pub(crate) async fn patch(
        &self,
        portal: &Portal,
        id: &str,
        body: &Value,
    ) -> Result<(), GraphCallError> {
        self.call(
            portal,
            Method::PATCH,
            &format!("applications/{}", enc(id)),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// The first item of a `$filter`ed list (`None` when there is none).
    pub(crate) async fn first(
        &self,
        portal: &Portal,
        path: &str,
    ) -> Result<Option<Value>, GraphCallError> {
        let v = self.call(portal, Method::GET, path, None).await?;
        Ok(v["value"].as_array().and_then(|a| a.first()).cloned())
    }
}

/// Signed in with a Graph token (GET).
pub(crate) async fn ctx(portal: &Portal, headers: &HeaderMap, uri: &Uri) -> Result<Ctx, Response> {
    let signed = signed_in(portal, headers, uri).await?;
    let graph = signed.graph_token(portal).await?;
    Ok(Ctx { signed, graph })
}

/// Signed in, CSRF checked, with a Graph token (POST).
pub(crate) async fn ctx_form(
    portal: &Portal,
    headers: &HeaderMap,
    uri: &Uri,
    body: axum::body::Body,
) -> Result<(Ctx, crate::form::Form), Response> {
    let (signed, form) = signed_form(portal, headers, uri, body).await?;
    let graph = signed.graph_token(portal).await?;
    Ok((Ctx { signed, graph }, form))
}

/// A registration's blade (GET): the signed-in context and the registration `id`, or the page
/// that says why not.
pub(crate) async fn with_app(
    portal: &Portal,
    headers: &HeaderMap,
    uri: &Uri,
    id: &str,
) -> Result<(Ctx, Value), Response> {
    let ctx = ctx(portal, headers, uri).await?;
    match ctx.app(portal, id).await {
        Ok(app) => Ok((ctx, app)),
        Err(e) => Err(failed(&ctx, &e)),
    }
}

/// A registration's form (POST): signed in, CSRF checked, and the registration `id`; a failure to
/// read it goes back to `blade` with Graph's error.
pub(crate) async fn form_with_app(
    portal: &Portal,
    headers: &HeaderMap,
    uri: &Uri,
    body: axum::body::Body,
    id: &str,
    blade: &str,
) -> Result<(Ctx, crate::form::Form, Value), Response> {
    let (ctx, form) = ctx_form(portal, headers, uri, body).await?;
    match ctx.app(portal, id).await {
        Ok(app) => Ok((ctx, form, app)),
        Err(e) => Err(crate::pages::back(blade, Err(e.to_string()))),
    }
}

/// The blade's path for registration `id` (`""` is the Overview).
pub(crate) fn blade_path(id: &str, blade: &str) -> String {
    format!("/registrations/{}{blade}", enc(id))
}

/// The registration's blade menu, with `current` marked.
pub(crate) fn menu(id: &str, current: &str) -> String {
    let mut html = String::from("<nav class=\"blades\">");
    for (label, path) in [
        ("Overview", ""),
        ("Authentication", "/authentication"),
        ("Certificates & secrets", "/credentials"),
        ("API permissions", "/permissions"),
        ("Expose an API", "/expose"),
    ] {
        let class = if label == current {
            " class=\"current\""
        } else {
            ""
        };
        html.push_str(&format!(
            "<a href=\"{}\"{class}>{}</a>",
            esc(&blade_path(id, path)),
            esc(label)
        ));
    }
    html.push_str("</nav>");
    html
}

/// A registration blade's page: `<name> | <blade>`, the menu, and `body`.
pub(crate) fn frame(ctx: &Ctx, id: &str, name: &str, blade: &str, body: &str) -> Response {
    let html = format!("{}{body}", menu(id, blade));
    Html(page(
        &format!("{name} | {blade}"),
        ctx.signed.user(),
        &[
            ("Home", "/".to_owned()),
            ("App registrations", "/registrations".to_owned()),
            (name, blade_path(id, "")),
        ],
        &html,
    ))
    .into_response()
}

/// A page that only shows Graph's error (the registration could not be read).
pub(crate) fn failed(ctx: &Ctx, e: &GraphCallError) -> Response {
    let status =
        axum::http::StatusCode::from_u16(e.status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    (
        status,
        Html(page(
            "App registrations",
            ctx.signed.user(),
            &[
                ("Home", "/".to_owned()),
                ("App registrations", "/registrations".to_owned()),
            ],
            &format!("<div class=\"error\">{}</div>", esc(&e.to_string())),
        )),
    )
        .into_response()
}

pub(crate) fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

pub(crate) fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}
