//! A web app's Overview: URL, state, and Browse / Restart / Stop / Start.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use reqwest::Method;

use crate::Portal;
use crate::arm::site_path;
use crate::html::{csrf_field, enc, esc};
use crate::pages::{back, outcome, signed_form, signed_in, webapp_page};

pub(crate) async fn overview(
    State(portal): State<Arc<Portal>>,
    Path((group, site)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let signed = match signed_in(&portal, &headers, &uri).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut body = String::new();
    body.push_str(&outcome(uri.query()));
    match portal
        .arm(&signed.token, Method::GET, &site_path(&group, &site), None)
        .await
    {
        Ok(s) => {
            let p = &s["properties"];
            let host = p["defaultHostName"].as_str().unwrap_or("");
            let url = p["easyauth"]["url"]
                .as_str()
                .map_or_else(|| format!("http://{host}"), str::to_owned);
            let _ = write!(
                body,
                "<table><tr><th>Status</th><td id=\"state\">{}</td></tr>\
<tr><th>Default domain</th><td><a id=\"url\" href=\"{}\">{}</a></td></tr>\
<tr><th>Resource group</th><td>{}</td></tr><tr><th>Location</th><td>{}</td></tr>\
<tr><th>Operating System</th><td>{}</td></tr><tr><th>Runtime stack</th><td>{}</td></tr></table>",
                esc(p["state"].as_str().unwrap_or("")),
                esc(&url),
                esc(&url),
                esc(&group),
                esc(s["location"].as_str().unwrap_or("")),
                if p["reserved"].as_bool().unwrap_or(false) {
                    "Linux"
                } else {
                    "Windows"
                },
                esc(p["siteConfig"]["linuxFxVersion"].as_str().unwrap_or(""))
            );
            let action = format!("/resource/{}/{}/action", enc(&group), enc(&site));
            for verb in ["Restart", "Stop", "Start"] {
                let _ = write!(
                    body,
                    "<form class=\"inline\" method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"verb\" value=\"{}\"><button type=\"submit\">{verb}</button></form> ",
                    esc(&action),
                    csrf_field(&signed.session.csrf),
                    verb.to_ascii_lowercase()
                );
            }
        }
        Err(e) => {
            let _ = write!(body, "<div class=\"error\">{}</div>", esc(&e.to_string()));
        }
    }
    webapp_page(&signed, &group, &site, "Overview", &body)
}

/// `POST .../action` with `verb` = restart | stop | start.
pub(crate) async fn action(
    State(portal): State<Arc<Portal>>,
    Path((group, site)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Body,
) -> Response {
    let (signed, form) = match signed_form(&portal, &headers, &uri, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let blade = format!("/resource/{}/{}", enc(&group), enc(&site));
    let Some(verb @ ("restart" | "stop" | "start")) = form.get("verb") else {
        return back(&blade, Err("Unknown action.".into()));
    };
    let result = portal
        .arm(
            &signed.token,
            Method::POST,
            &format!("{}/{verb}", site_path(&group, &site)),
            None,
        )
        .await;
    back(
        &blade,
        result
            .map(|_| {
                let done = match verb {
                    "restart" => "restarted",
                    "stop" => "stopped",
                    _ => "started",
                };
                format!("Successfully {done} {site}.")
            })
            .map_err(|e| e.to_string()),
    )
}
