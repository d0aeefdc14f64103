//! A registration's Overview: its ids and Delete.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use reqwest::Method;

use super::{blade_path, ctx_form, frame, s, with_app};
use crate::Portal;
use crate::html::{csrf_field, enc, esc};
use crate::pages::{back, outcome};

pub(crate) async fn show(
    State(portal): State<Arc<Portal>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (ctx, app) = match with_app(&portal, &headers, &uri, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut body = outcome(uri.query());
    body.push_str("<h2>Essentials</h2><table>");
    let uris = app["identifierUris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let redirects = app["web"]["redirectUris"].as_array().map_or(0, Vec::len);
    for (k, v) in [
        ("Display name", s(&app, "displayName").to_owned()),
        ("Application (client) ID", s(&app, "appId").to_owned()),
        ("Object ID", s(&app, "id").to_owned()),
        ("Directory (tenant) ID", portal.config.tenant_id.clone()),
        ("Application ID URI", uris),
        ("Redirect URIs", format!("{redirects} web")),
    ] {
        let _ = write!(body, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    let _ = write!(
        body,
        "</table><h2>Delete</h2><form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"delete\" value=\"yes\"><button type=\"submit\">Delete</button></form>",
        esc(&blade_path(&id, "")),
        csrf_field(&ctx.signed.session.csrf)
    );
    frame(&ctx, &id, s(&app, "displayName"), "Overview", &body)
}

/// `POST`: `delete` removes the registration (and, in the directory, its service principal).
pub(crate) async fn change(
    State(portal): State<Arc<Portal>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Body,
) -> Response {
    let (ctx, form) = match ctx_form(&portal, &headers, &uri, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let blade = blade_path(&id, "");
    if form.text("delete").is_none() {
        return back(&blade, Err("Nothing to do.".into()));
    }
    let name = ctx
        .app(&portal, &id)
        .await
        .map(|a| s(&a, "displayName").to_owned())
        .unwrap_or_default();
    match ctx
        .call(
            &portal,
            Method::DELETE,
            &format!("applications/{}", enc(&id)),
            None,
        )
        .await
    {
        Ok(_) => back("/registrations", Ok(format!("Deleted {name}."))),
        Err(e) => back(&blade, Err(e.to_string())),
    }
}
