//! Home: the subscription's resource groups and App Services.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{Html, IntoResponse, Response};
use reqwest::Method;
use serde_json::Value;

use crate::Portal;
use crate::html::{enc, esc, page};
use crate::pages::signed_in;

pub(crate) async fn home(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let signed = match signed_in(&portal, &headers, &uri).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut body = String::from(
        "<h2>Microsoft Entra ID</h2><p><a href=\"/registrations\">App registrations</a></p>",
    );
    let groups = portal
        .arm(&signed.token, Method::GET, "resourcegroups", None)
        .await;
    let sites = portal
        .arm(
            &signed.token,
            Method::GET,
            "providers/Microsoft.Web/sites",
            None,
        )
        .await;
    body.push_str("<h2>App Services</h2>");
    match sites {
        Ok(v) => {
            let list = v["value"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                body.push_str("<p>No web apps yet. Create one with <code>az webapp up</code> from the app's folder.</p>");
            } else {
                body.push_str("<table><tr><th>Name</th><th>Resource group</th><th>Status</th><th>URL</th></tr>");
                for s in &list {
                    let name = s["name"].as_str().unwrap_or("");
                    let group = group_of(s);
                    let host = s["properties"]["defaultHostName"].as_str().unwrap_or("");
                    let url = s["properties"]["easyauth"]["url"]
                        .as_str()
                        .map_or_else(|| format!("http://{host}"), str::to_owned);
                    let _ = write!(
                        body,
                        "<tr><td><a href=\"/resource/{}/{}\">{}</a></td><td>{}</td><td>{}</td><td><a href=\"{}\">{}</a></td></tr>",
                        enc(&group),
                        enc(name),
                        esc(name),
                        esc(&group),
                        esc(s["properties"]["state"].as_str().unwrap_or("")),
                        esc(&url),
                        esc(&url)
                    );
                }
                body.push_str("</table>");
            }
        }
        Err(e) => {
            let _ = write!(body, "<div class=\"error\">{}</div>", esc(&e.to_string()));
        }
    }
    body.push_str("<h2>Resource groups</h2>");
    match groups {
        Ok(v) => {
            body.push_str("<ul>");
            for g in v["value"].as_array().into_iter().flatten() {
                let name = g["name"].as_str().unwrap_or("");
                let _ = write!(
                    body,
                    "<li><a href=\"/resource/{}\">{}</a> <span class=\"hint\">{}</span></li>",
                    enc(name),
                    esc(name),
                    esc(g["location"].as_str().unwrap_or(""))
                );
            }
            body.push_str("</ul>");
        }
        Err(e) => {
            let _ = write!(body, "<div class=\"error\">{}</div>", esc(&e.to_string()));
        }
    }
    Html(page("Home", signed.user(), &[], &body)).into_response()
}

/// `GET /resource/{group}`: a resource group's resources (its App Service plans and web apps).
pub(crate) async fn group(
    State(portal): State<Arc<Portal>>,
    axum::extract::Path(group): axum::extract::Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let signed = match signed_in(&portal, &headers, &uri).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let base = format!("resourceGroups/{}/providers/Microsoft.Web", enc(&group));
    let mut body = String::from("<h2>Resources</h2>");
    let sites = portal
        .arm(&signed.token, Method::GET, &format!("{base}/sites"), None)
        .await;
    let plans = portal
        .arm(
            &signed.token,
            Method::GET,
            &format!("{base}/serverfarms"),
            None,
        )
        .await;
    match (sites, plans) {
        (Ok(sites), Ok(plans)) => {
            body.push_str("<table><tr><th>Name</th><th>Type</th><th>Status</th></tr>");
            for s in sites["value"].as_array().into_iter().flatten() {
                let name = s["name"].as_str().unwrap_or("");
                let _ = write!(
                    body,
                    "<tr><td><a href=\"/resource/{}/{}\">{}</a></td><td>App Service</td><td>{}</td></tr>",
                    enc(&group),
                    enc(name),
                    esc(name),
                    esc(s["properties"]["state"].as_str().unwrap_or(""))
                );
            }
            for p in plans["value"].as_array().into_iter().flatten() {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>App Service plan</td><td>{}</td></tr>",
                    esc(p["name"].as_str().unwrap_or("")),
                    esc(p["sku"]["name"].as_str().unwrap_or(""))
                );
            }
            body.push_str("</table>");
        }
        (Err(e), _) | (_, Err(e)) => {
            let _ = write!(body, "<div class=\"error\">{}</div>", esc(&e.to_string()));
        }
    }
    Html(page(
        &group,
        signed.user(),
        &[("Home", "/".to_owned())],
        &body,
    ))
    .into_response()
}

/// The resource group named in a resource id (`/subscriptions/../resourceGroups/<g>/...`).
pub(crate) fn group_of(resource: &Value) -> String {
    let id = resource["id"].as_str().unwrap_or("");
    let parts: Vec<&str> = id.split('/').collect();
    parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("resourceGroups"))
        .and_then(|i| parts.get(i + 1))
        .map_or_else(String::new, |g| (*g).to_owned())
}
