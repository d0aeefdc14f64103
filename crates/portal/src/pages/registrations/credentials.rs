//! A registration's Certificates & secrets: client secrets (New client secret, Delete). A new
//! secret's value is shown once, on the page that answers the POST itself (never in a URL), and
//! never again.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::json;

use super::{Ctx, blade_path, ctx, ctx_form, failed, frame, list, s};
use crate::Portal;
use crate::html::{csrf_field, enc, esc};
use crate::pages::{back, outcome};
use crate::registration::time_in_days;

async fn render(portal: &Portal, ctx: &Ctx, id: &str, result: &str) -> Response {
    let app = match ctx.app(portal, id).await {
        Ok(a) => a,
        // A new secret's value is still shown: it cannot be read again.
        Err(e) if !result.is_empty() => {
            let body = format!("{result}<div class=\"error\">{}</div>", esc(&e.to_string()));
            return frame(ctx, id, id, "Certificates & secrets", &body);
        }
        Err(e) => return failed(ctx, &e),
    };
    let action = esc(&blade_path(id, "/credentials"));
    let csrf = csrf_field(&ctx.signed.session.csrf);
    let mut body = result.to_owned();
    body.push_str("<h2>Client secrets</h2><p class=\"hint\">A secret string that the application uses to prove its identity when requesting a token. Its value is shown once, when it is added.</p>");
    let secrets = list(&app["passwordCredentials"]);
    if secrets.is_empty() {
        body.push_str("<p>No client secrets have been created for this application.</p>");
    } else {
        body.push_str("<table><tr><th>Description</th><th>Expires</th><th>Value</th><th>Secret ID</th><th></th></tr>");
        for p in &secrets {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}*****</td><td>{}</td><td><form class=\"inline\" method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"remove\" value=\"{}\"><button type=\"submit\">Delete</button></form></td></tr>",
                esc(s(p, "displayName")),
                esc(s(p, "endDateTime")),
                esc(s(p, "hint")),
                esc(s(p, "keyId")),
                esc(s(p, "keyId"))
            );
        }
        body.push_str("</table>");
    }
    let _ = write!(
        body,
        "<h2>New client secret</h2><form method=\"post\" action=\"{action}\">{csrf}\
<label for=\"description\">Description</label><input type=\"text\" id=\"description\" name=\"description\">\
<label for=\"expires\">Expires</label><select id=\"expires\" name=\"expires\">\
<option value=\"180\" selected>180 days (6 months)</option><option value=\"365\">365 days (12 months)</option><option value=\"730\">730 days (24 months)</option></select>\
<button type=\"submit\">Add</button></form>"
    );
    frame(
        ctx,
        id,
        s(&app, "displayName"),
        "Certificates & secrets",
        &body,
    )
}

pub(crate) async fn show(
    State(portal): State<Arc<Portal>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let ctx = match ctx(&portal, &headers, &uri).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    render(&portal, &ctx, &id, &outcome(uri.query())).await
}

/// `POST`: `remove` a secret by its keyId; otherwise a new secret (`description`, `expires`
/// days), answered with the blade itself showing the value once.
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
    let blade = blade_path(&id, "/credentials");
    if let Some(key) = form.text("remove") {
        let result = ctx
            .call(
                &portal,
                Method::POST,
                &format!("applications/{}/removePassword", enc(&id)),
                Some(&json!({"keyId": key})),
            )
            .await;
        return back(
            &blade,
            result
                .map(|_| format!("Deleted the client secret {key}."))
                .map_err(|e| e.to_string()),
        );
    }
    let days = match form.get("expires").unwrap_or("180") {
        "180" => 180,
        "365" => 365,
        "730" => 730,
        other => {
            return back(
                &blade,
                Err(format!("{other} is not one of the expiry choices.")),
            );
        }
    };
    let result = ctx
        .call(
            &portal,
            Method::POST,
            &format!("applications/{}/addPassword", enc(&id)),
            Some(&json!({"passwordCredential": {
                "displayName": form.text("description").unwrap_or(""),
                "endDateTime": time_in_days(days),
            }})),
        )
        .await;
    match result {
        Ok(v) => {
            let message = format!(
                "<div class=\"ok\">Added the client secret {}. Copy its value now: it is not shown again.<br>Value: <code id=\"secret-value\">{}</code><br>Secret ID: {}</div>",
                esc(s(&v, "displayName")),
                esc(s(&v, "secretText")),
                esc(s(&v, "keyId"))
            );
            let mut response = render(&portal, &ctx, &id, &message).await;
            response.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            response.into_response()
        }
        Err(e) => back(&blade, Err(e.to_string())),
    }
}
