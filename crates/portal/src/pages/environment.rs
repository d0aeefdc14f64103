//! Settings → Environment variables: the app settings (add, edit, delete). A change restarts the
//! app, as on App Service.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::Portal;
use crate::arm::{ArmCallError, site_path};
use crate::html::{csrf_field, enc, esc};
use crate::pages::{back, outcome, signed_form, signed_in, webapp_page};

async fn settings(
    portal: &Portal,
    token: &str,
    group: &str,
    site: &str,
) -> Result<Map<String, Value>, ArmCallError> {
    let v = portal
        .arm(
            token,
            Method::POST,
            &format!("{}/config/appsettings/list", site_path(group, site)),
            None,
        )
        .await?;
    Ok(v["properties"].as_object().cloned().unwrap_or_default())
}

pub(crate) async fn show(
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
    let action = format!("/resource/{}/{}/environment", enc(&group), enc(&site));
    let csrf = csrf_field(&signed.session.csrf);
    body.push_str("<h2>App settings</h2><p class=\"hint\">App settings are passed to the app as environment variables. Applying a change restarts the app.</p>");
    match settings(&portal, &signed.token, &group, &site).await {
        Ok(map) => {
            body.push_str("<table><tr><th>Name</th><th>Value</th><th></th></tr>");
            for (k, v) in &map {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td><form class=\"inline\" method=\"post\" action=\"{}\">{csrf}<input type=\"hidden\" name=\"delete\" value=\"{}\"><button type=\"submit\">Delete</button></form></td></tr>",
                    esc(k),
                    esc(v.as_str().unwrap_or("")),
                    esc(&action),
                    esc(k)
                );
            }
            body.push_str("</table>");
        }
        Err(e) => {
            let _ = write!(body, "<div class=\"error\">{}</div>", esc(&e.to_string()));
        }
    }
    let _ = write!(
        body,
        "<h2>Add / Edit application setting</h2><form method=\"post\" action=\"{}\">{csrf}\
<label for=\"name\">Name</label><input type=\"text\" id=\"name\" name=\"name\" required>\
<label for=\"value\">Value</label><input type=\"text\" id=\"value\" name=\"value\">\
<button type=\"submit\">Apply</button></form>",
        esc(&action)
    );
    webapp_page(&signed, &group, &site, "Environment variables", &body)
}

/// `POST`: `name` + `value` sets one setting; `delete` removes one.
pub(crate) async fn change(
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
    let blade = format!("/resource/{}/{}/environment", enc(&group), enc(&site));
    let mut map = match settings(&portal, &signed.token, &group, &site).await {
        Ok(m) => m,
        Err(e) => return back(&blade, Err(e.to_string())),
    };
    let message = if let Some(name) = form.text("delete") {
        if map.remove(name).is_none() {
            return back(&blade, Err(format!("There is no setting {name}.")));
        }
        format!("Deleted {name}; the app restarts.")
    } else if let Some(name) = form.text("name") {
        map.insert(
            name.to_owned(),
            Value::String(form.get("value").unwrap_or("").to_owned()),
        );
        format!("Saved {name}; the app restarts.")
    } else {
        return back(&blade, Err("A setting needs a name.".into()));
    };
    let result = portal
        .arm(
            &signed.token,
            Method::PUT,
            &format!("{}/config/appsettings", site_path(&group, &site)),
            Some(&json!({ "properties": map })),
        )
        .await;
    back(&blade, result.map(|_| message).map_err(|e| e.to_string()))
}
