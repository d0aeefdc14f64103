//! A registration's Authentication: Web redirect URIs and ID tokens (implicit grant), saved
//! with a Graph PATCH of `web`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::{blade_path, form_with_app, frame, s, with_app};
use crate::Portal;
use crate::html::{csrf_field, esc};
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
    let action = esc(&blade_path(&id, "/authentication"));
    let csrf = csrf_field(&ctx.signed.session.csrf);
    let mut body = outcome(uri.query());
    body.push_str("<h2>Web</h2><h3>Redirect URIs</h3>");
    let uris: Vec<&str> = app["web"]["redirectUris"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if uris.is_empty() {
        body.push_str("<p>No redirect URIs.</p>");
    } else {
        body.push_str("<table>");
        for u in &uris {
            let _ = write!(
                body,
                "<tr><td>{}</td><td><form class=\"inline\" method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"remove\" value=\"{}\"><button type=\"submit\">Remove</button></form></td></tr>",
                esc(u),
                esc(u)
            );
        }
        body.push_str("</table>");
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{action}\">{csrf}<label for=\"add\">Add URI</label><input type=\"text\" id=\"add\" name=\"add\" required><button type=\"submit\">Add</button></form>"
    );
    let id_tokens = app["web"]["implicitGrantSettings"]["enableIdTokenIssuance"]
        .as_bool()
        .unwrap_or(false);
    let _ = write!(
        body,
        "<h3>Implicit grant and hybrid flows</h3><form method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"implicit\" value=\"1\"><label><input type=\"checkbox\" name=\"idTokens\" value=\"1\"{}> ID tokens (used for implicit and hybrid flows)</label><button type=\"submit\">Save</button></form>",
        if id_tokens { " checked" } else { "" }
    );
    frame(&ctx, &id, s(&app, "displayName"), "Authentication", &body)
}

/// `POST`: `add` a redirect URI, `remove` one, or `implicit` with `idTokens` checked or not.
pub(crate) async fn change(
    State(portal): State<Arc<Portal>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Body,
) -> Response {
    let blade = blade_path(&id, "/authentication");
    let (ctx, form, app) = match form_with_app(&portal, &headers, &uri, body, &id, &blade).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut uris: Vec<String> = app["web"]["redirectUris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let (patch, message) = if let Some(add) = form.text("add") {
        if uris.iter().any(|u| u == add) {
            return back(&blade, Err(format!("{add} is already a redirect URI.")));
        }
        uris.push(add.to_owned());
        (
            json!({"web": {"redirectUris": uris}}),
            format!("Added {add}."),
        )
    } else if let Some(remove) = form.text("remove") {
        uris.retain(|u| u != remove);
        (
            json!({"web": {"redirectUris": uris}}),
            format!("Removed {remove}."),
        )
    } else if form.text("implicit").is_some() {
        let on = form.text("idTokens").is_some();
        let mut implicit = app["web"]["implicitGrantSettings"].clone();
        if !implicit.is_object() {
            implicit = json!({"enableAccessTokenIssuance": false});
        }
        implicit["enableIdTokenIssuance"] = json!(on);
        (
            json!({"web": {"implicitGrantSettings": implicit}}),
            format!("ID tokens {}.", if on { "on" } else { "off" }),
        )
    } else {
        return back(&blade, Err("Nothing to save.".into()));
    };
    back(
        &blade,
        ctx.patch(&portal, &id, &patch)
            .await
            .map(|()| message)
            .map_err(|e| e.to_string()),
    )
}
