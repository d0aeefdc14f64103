//! A registration's Expose an API: the Application ID URI (Set), the scopes it defines (Add a
//! scope) and the Authorized client applications (Add a client application, Remove).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::{blade_path, form_with_app, frame, list, s, with_app};
use crate::Portal;
use crate::html::{csrf_field, esc};
use crate::pages::{back, outcome};
use crate::registration::random_uuid;

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
    let action = esc(&blade_path(&id, "/expose"));
    let csrf = csrf_field(&ctx.signed.session.csrf);
    let mut body = outcome(uri.query());
    let current = app["identifierUris"][0].as_str().unwrap_or("");
    let proposed = if current.is_empty() {
        format!("api://{}", s(&app, "appId"))
    } else {
        current.to_owned()
    };
    let _ = write!(
        body,
        "<h2>Application ID URI</h2><p>{}</p><form method=\"post\" action=\"{action}\">{csrf}<label for=\"identifierUri\">Application ID URI</label><input type=\"text\" id=\"identifierUri\" name=\"identifierUri\" value=\"{}\" required><button type=\"submit\">Set</button></form>",
        if current.is_empty() {
            "Not set.".to_owned()
        } else {
            esc(current)
        },
        esc(&proposed)
    );
    body.push_str("<h2>Scopes defined by this API</h2>");
    let scopes = list(&app["api"]["oauth2PermissionScopes"]);
    if scopes.is_empty() {
        body.push_str("<p>No scopes have been defined.</p>");
    } else {
        body.push_str("<table><tr><th>Scopes</th><th>Who can consent</th><th>Admin consent display name</th><th>State</th></tr>");
        for sc in &scopes {
            let who = if s(sc, "type") == "User" {
                "Admins and users"
            } else {
                "Admins only"
            };
            let state = if sc["isEnabled"].as_bool().unwrap_or(true) {
                "Enabled"
            } else {
                "Disabled"
            };
            let _ = write!(
                body,
                "<tr><td>{}{}</td><td>{who}</td><td>{}</td><td>{state}</td></tr>",
                if current.is_empty() {
                    String::new()
                } else {
                    esc(&format!("{current}/"))
                },
                esc(s(sc, "value")),
                esc(s(sc, "adminConsentDisplayName"))
            );
        }
        body.push_str("</table>");
    }
    let _ = write!(
        body,
        "<h3>Add a scope</h3><form method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"op\" value=\"scope\">\
<label for=\"value\">Scope name</label><input type=\"text\" id=\"value\" name=\"value\" required>\
<label for=\"type\">Who can consent?</label><select id=\"type\" name=\"type\"><option value=\"User\">Admins and users</option><option value=\"Admin\">Admins only</option></select>\
<label for=\"adminName\">Admin consent display name</label><input type=\"text\" id=\"adminName\" name=\"adminName\" required>\
<label for=\"adminDescription\">Admin consent description</label><input type=\"text\" id=\"adminDescription\" name=\"adminDescription\" required>\
<label for=\"userName\">User consent display name</label><input type=\"text\" id=\"userName\" name=\"userName\">\
<label for=\"userDescription\">User consent description</label><input type=\"text\" id=\"userDescription\" name=\"userDescription\">\
<label><input type=\"checkbox\" name=\"enabled\" value=\"1\" checked> State: Enabled</label>\
<button type=\"submit\">Add scope</button></form>"
    );
    body.push_str("<h2>Authorized client applications</h2>");
    let pre = list(&app["api"]["preAuthorizedApplications"]);
    let value_of = |scope_id: &str| {
        scopes
            .iter()
            .find(|sc| s(sc, "id") == scope_id)
            .map_or_else(|| scope_id.to_owned(), |sc| s(sc, "value").to_owned())
    };
    if pre.is_empty() {
        body.push_str("<p>No client applications have been authorized.</p>");
    } else {
        body.push_str("<table><tr><th>Client ID</th><th>Scopes</th><th></th></tr>");
        for p in &pre {
            let names: Vec<String> = p["delegatedPermissionIds"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(&value_of).collect())
                .unwrap_or_default();
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td><form class=\"inline\" method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"op\" value=\"unauthorize\"><input type=\"hidden\" name=\"appId\" value=\"{}\"><button type=\"submit\">Remove</button></form></td></tr>",
                esc(s(p, "appId")),
                esc(&names.join(", ")),
                esc(s(p, "appId"))
            );
        }
        body.push_str("</table>");
    }
    let _ = write!(
        body,
        "<h3>Add a client application</h3><form method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"op\" value=\"authorize\">\
<label for=\"clientId\">Client ID</label><input type=\"text\" id=\"clientId\" name=\"clientId\" required><p>Authorized scopes</p>"
    );
    for sc in &scopes {
        let _ = write!(
            body,
            "<label><input type=\"checkbox\" name=\"scope\" value=\"{}\"> {}</label>",
            esc(s(sc, "id")),
            esc(s(sc, "value"))
        );
    }
    body.push_str("<button type=\"submit\">Add application</button></form>");
    frame(&ctx, &id, s(&app, "displayName"), "Expose an API", &body)
}

/// `POST`: `identifierUri` sets the Application ID URI; `op=scope` adds a scope; `op=authorize`
/// adds (or replaces) an authorized client application; `op=unauthorize` removes one.
pub(crate) async fn change(
    State(portal): State<Arc<Portal>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Body,
) -> Response {
    let blade = blade_path(&id, "/expose");
    let (ctx, form, app) = match form_with_app(&portal, &headers, &uri, body, &id, &blade).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (patch, message) = match form.get("op").unwrap_or("") {
        "scope" => {
            let Some(value) = form.text("value") else {
                return back(&blade, Err("A scope needs a name.".into()));
            };
            let mut scopes = list(&app["api"]["oauth2PermissionScopes"]);
            let text = |k: &str| form.text(k).unwrap_or("").to_owned();
            let kind = if form.get("type") == Some("Admin") {
                "Admin"
            } else {
                "User"
            };
            scopes.push(json!({
                "id": random_uuid(),
                "value": value,
                "type": kind,
                "adminConsentDisplayName": text("adminName"),
                "adminConsentDescription": text("adminDescription"),
                "userConsentDisplayName": text("userName"),
                "userConsentDescription": text("userDescription"),
                "isEnabled": form.text("enabled").is_some(),
            }));
            (
                json!({"api": {"oauth2PermissionScopes": scopes}}),
                format!("Added the scope {value}."),
            )
        }
        "authorize" => {
            let Some(client) = form.text("clientId") else {
                return back(&blade, Err("Enter the client application's ID.".into()));
            };
            let ids = form.all("scope");
            if ids.is_empty() {
                return back(&blade, Err("Select at least one scope.".into()));
            }
            let mut pre = list(&app["api"]["preAuthorizedApplications"]);
            pre.retain(|p| !s(p, "appId").eq_ignore_ascii_case(client));
            pre.push(json!({"appId": client, "delegatedPermissionIds": ids}));
            (
                json!({"api": {"preAuthorizedApplications": pre}}),
                format!("Authorized the client application {client}."),
            )
        }
        "unauthorize" => {
            let client = form.text("appId").unwrap_or("");
            let mut pre = list(&app["api"]["preAuthorizedApplications"]);
            pre.retain(|p| !s(p, "appId").eq_ignore_ascii_case(client));
            (
                json!({"api": {"preAuthorizedApplications": pre}}),
                format!("Removed the client application {client}."),
            )
        }
        _ => {
            let Some(uri) = form.text("identifierUri") else {
                return back(&blade, Err("Enter an Application ID URI.".into()));
            };
            (
                json!({"identifierUris": [uri]}),
                format!("Set the Application ID URI to {uri}."),
            )
        }
    };
    back(
        &blade,
        ctx.patch(&portal, &id, &patch)
            .await
            .map(|()| message)
            .map_err(|e| e.to_string()),
    )
}
