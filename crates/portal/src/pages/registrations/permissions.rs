//! A registration's API permissions: the configured permissions (`requiredResourceAccess`)
//! resolved to names through the resources' service principals, with their admin consent;
//! Add a permission (Microsoft APIs, My APIs → Delegated permissions → Add permissions), Grant
//! admin consent (an `AllPrincipals` grant per resource), Remove.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Ctx, GRAPH_APP_ID, blade_path, form_with_app, frame, list, s, with_app};
use crate::Portal;
use crate::graph::GraphCallError;
use crate::html::{csrf_field, enc, esc};
use crate::pages::{back, outcome};

/// An API as the portal shows it: its name, scopes and app roles, and its service principal.
struct Api {
    name: String,
    scopes: Vec<Value>,
    roles: Vec<Value>,
    sp: Option<Value>,
}

fn filter_app_id(resource: &str, app_id: &str) -> String {
    format!(
        "{resource}?$filter={}",
        enc(&format!("appId eq '{}'", app_id.replace('\'', "''")))
    )
}

/// The API with `app_id`: its service principal, else (an app made through Graph without one)
/// its application.
async fn api(portal: &Portal, ctx: &Ctx, app_id: &str) -> Result<Api, GraphCallError> {
    if let Some(sp) = ctx
        .first(portal, &filter_app_id("servicePrincipals", app_id))
        .await?
    {
        return Ok(Api {
            name: s(&sp, "displayName").to_owned(),
            scopes: list(&sp["oauth2PermissionScopes"]),
            roles: list(&sp["appRoles"]),
            sp: Some(sp),
        });
    }
    let app = ctx
        .first(portal, &filter_app_id("applications", app_id))
        .await?
        .unwrap_or(Value::Null);
    Ok(Api {
        name: if app.is_null() {
            app_id.to_owned()
        } else {
            s(&app, "displayName").to_owned()
        },
        scopes: list(&app["api"]["oauth2PermissionScopes"]),
        roles: list(&app["appRoles"]),
        sp: None,
    })
}

/// The `AllPrincipals` grants of the client's service principal: (resource SP id, scopes).
async fn admin_grants(
    portal: &Portal,
    ctx: &Ctx,
    client_app_id: &str,
) -> Result<(Option<Value>, Vec<Value>), GraphCallError> {
    let Some(sp) = ctx
        .first(portal, &filter_app_id("servicePrincipals", client_app_id))
        .await?
    else {
        return Ok((None, Vec::new()));
    };
    let grants = ctx
        .call(
            portal,
            Method::GET,
            &format!(
                "oauth2PermissionGrants?$filter={}",
                enc(&format!("clientId eq '{}'", s(&sp, "id")))
            ),
            None,
        )
        .await?;
    let all = list(&grants["value"])
        .into_iter()
        .filter(|g| s(g, "consentType") == "AllPrincipals")
        .collect();
    Ok((Some(sp), all))
}

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
    let tenant = s(&app, "publisherDomain").to_owned();
    let action = esc(&blade_path(&id, "/permissions"));
    let csrf = csrf_field(&ctx.signed.session.csrf);
    let mut body = outcome(uri.query());
    let grants = match admin_grants(&portal, &ctx, s(&app, "appId")).await {
        Ok((_, g)) => g,
        Err(e) => {
            let _ = write!(body, "<div class=\"error\">{}</div>", esc(&e.to_string()));
            Vec::new()
        }
    };
    let _ = write!(
        body,
        "<h2>Configured permissions</h2><p><a href=\"{}\">Add a permission</a></p>\
<form method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"op\" value=\"grant\"><button type=\"submit\">Grant admin consent for {}</button></form>",
        esc(&blade_path(&id, "/permissions/add")),
        esc(&tenant)
    );
    let rra = list(&app["requiredResourceAccess"]);
    if rra.is_empty() {
        body.push_str("<p>No permissions are configured.</p>");
    }
    body.push_str(
        "<table><tr><th>API / Permissions name</th><th>Type</th><th>Status</th><th></th></tr>",
    );
    for r in &rra {
        let resource = s(r, "resourceAppId");
        let api = match api(&portal, &ctx, resource).await {
            Ok(a) => a,
            Err(e) => {
                let _ = write!(
                    body,
                    "<tr><td colspan=\"4\"><div class=\"error\">{}</div></td></tr>",
                    esc(&e.to_string())
                );
                continue;
            }
        };
        let granted: Vec<String> = api
            .sp
            .as_ref()
            .and_then(|sp| grants.iter().find(|g| s(g, "resourceId") == s(sp, "id")))
            .map(|g| {
                s(g, "scope")
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let _ = write!(body, "<tr><th colspan=\"4\">{}</th></tr>", esc(&api.name));
        for access in list(&r["resourceAccess"]) {
            let pid = s(&access, "id");
            let delegated = s(&access, "type") == "Scope";
            let found = if delegated { &api.scopes } else { &api.roles };
            let value = found
                .iter()
                .find(|x| s(x, "id") == pid)
                .map_or_else(|| pid.to_owned(), |x| s(x, "value").to_owned());
            let status = if delegated && granted.iter().any(|g| g == &value) {
                format!("Granted for {tenant}")
            } else {
                String::new()
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><form class=\"inline\" method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"op\" value=\"remove\"><input type=\"hidden\" name=\"api\" value=\"{}\"><input type=\"hidden\" name=\"permission\" value=\"{}\"><button type=\"submit\">Remove permission</button></form></td></tr>",
                esc(&value),
                if delegated {
                    "Delegated"
                } else {
                    "Application"
                },
                esc(&status),
                esc(resource),
                esc(pid)
            );
        }
    }
    body.push_str("</table>");
    frame(&ctx, &id, s(&app, "displayName"), "API permissions", &body)
}

#[derive(serde::Deserialize)]
pub(crate) struct AddQuery {
    tab: Option<String>,
    api: Option<String>,
}

/// Request API permissions: the tabs, and an API's delegated permissions to pick.
pub(crate) async fn add(
    State(portal): State<Arc<Portal>>,
    Path(id): Path<String>,
    Query(q): Query<AddQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (ctx, app) = match with_app(&portal, &headers, &uri, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let here = blade_path(&id, "/permissions/add");
    let mut body = String::from("<h2>Request API permissions</h2><nav class=\"blades\">");
    let my = q.tab.as_deref() == Some("my");
    for (label, tab, current) in [("Microsoft APIs", "microsoft", !my), ("My APIs", "my", my)] {
        let _ = write!(
            body,
            "<a href=\"{}\"{}>{label}</a>",
            esc(&format!("{here}?tab={tab}")),
            if current { " class=\"current\"" } else { "" }
        );
    }
    body.push_str("</nav>");
    if let Some(api_id) = q.api.as_deref() {
        match api(&portal, &ctx, api_id).await {
            Ok(a) => {
                let _ = write!(
                    body,
                    "<h3>{}</h3><p>What type of permissions does your application require?</p><h4>Delegated permissions</h4><form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"op\" value=\"add\"><input type=\"hidden\" name=\"api\" value=\"{}\">",
                    esc(&a.name),
                    esc(&blade_path(&id, "/permissions")),
                    csrf_field(&ctx.signed.session.csrf),
                    esc(api_id)
                );
                if a.scopes.is_empty() {
                    body.push_str("<p>This API exposes no delegated permissions.</p>");
                }
                for sc in &a.scopes {
                    let _ = write!(
                        body,
                        "<label><input type=\"checkbox\" name=\"scope\" value=\"{}\"> {} <span class=\"hint\">{}</span></label>",
                        esc(s(sc, "id")),
                        esc(s(sc, "value")),
                        esc(s(sc, "adminConsentDisplayName"))
                    );
                }
                body.push_str("<button type=\"submit\">Add permissions</button></form>");
            }
            Err(e) => {
                let _ = write!(body, "<div class=\"error\">{}</div>", esc(&e.to_string()));
            }
        }
    } else if my {
        match ctx
            .call(
                &portal,
                Method::GET,
                "applications?$select=id,appId,displayName,api",
                None,
            )
            .await
        {
            Ok(v) => {
                let apis: Vec<Value> = list(&v["value"])
                    .into_iter()
                    .filter(|a| !list(&a["api"]["oauth2PermissionScopes"]).is_empty())
                    .collect();
                if apis.is_empty() {
                    body.push_str("<p>No application of this tenant exposes an API.</p>");
                } else {
                    body.push_str("<table><tr><th>Name</th><th>Application (client) ID</th></tr>");
                    for a in &apis {
                        let _ = write!(
                            body,
                            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td></tr>",
                            esc(&format!("{here}?tab=my&api={}", enc(s(a, "appId")))),
                            esc(s(a, "displayName")),
                            esc(s(a, "appId"))
                        );
                    }
                    body.push_str("</table>");
                }
            }
            Err(e) => {
                let _ = write!(body, "<div class=\"error\">{}</div>", esc(&e.to_string()));
            }
        }
    } else {
        let _ = write!(
            body,
            "<p><a href=\"{}\">Microsoft Graph</a> <span class=\"hint\">Take advantage of the tremendous amount of data in Office 365, Enterprise Mobility + Security, and Windows 10.</span></p>",
            esc(&format!("{here}?tab=microsoft&api={GRAPH_APP_ID}"))
        );
    }
    frame(&ctx, &id, s(&app, "displayName"), "API permissions", &body)
}

/// `POST`: `op=add` (`api`, `scope` ids), `op=remove` (`api`, `permission`), `op=grant`.
pub(crate) async fn change(
    State(portal): State<Arc<Portal>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Body,
) -> Response {
    let blade = blade_path(&id, "/permissions");
    let (ctx, form, app) = match form_with_app(&portal, &headers, &uri, body, &id, &blade).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut rra = list(&app["requiredResourceAccess"]);
    let api_id = form.text("api").unwrap_or("").to_owned();
    let message = match form.get("op").unwrap_or("") {
        "add" => {
            let ids = form.all("scope");
            if ids.is_empty() {
                return back(&blade, Err("Select at least one permission.".into()));
            }
            let at = match rra.iter().position(|r| s(r, "resourceAppId") == api_id) {
                Some(i) => i,
                None => {
                    rra.push(json!({"resourceAppId": api_id, "resourceAccess": []}));
                    rra.len() - 1
                }
            };
            let mut access = list(&rra[at]["resourceAccess"]);
            for sid in ids {
                if !access
                    .iter()
                    .any(|a| s(a, "id") == sid && s(a, "type") == "Scope")
                {
                    access.push(json!({"id": sid, "type": "Scope"}));
                }
            }
            rra[at]["resourceAccess"] = json!(access);
            "Added the permissions.".to_owned()
        }
        "remove" => {
            let pid = form.text("permission").unwrap_or("");
            for r in &mut rra {
                if s(r, "resourceAppId") == api_id {
                    let mut access = list(&r["resourceAccess"]);
                    access.retain(|a| s(a, "id") != pid);
                    r["resourceAccess"] = json!(access);
                }
            }
            rra.retain(|r| !list(&r["resourceAccess"]).is_empty());
            "Removed the permission.".to_owned()
        }
        "grant" => {
            return back(
                &blade,
                grant(&portal, &ctx, &app, &rra)
                    .await
                    .map_err(|e| e.to_string()),
            );
        }
        _ => return back(&blade, Err("Nothing to do.".into())),
    };
    back(
        &blade,
        ctx.patch(&portal, &id, &json!({"requiredResourceAccess": rra}))
            .await
            .map(|()| message)
            .map_err(|e| e.to_string()),
    )
}

/// The service principal of `app_id`, created when it has none.
async fn ensure_sp(portal: &Portal, ctx: &Ctx, app_id: &str) -> Result<Value, GraphCallError> {
    if let Some(sp) = ctx
        .first(portal, &filter_app_id("servicePrincipals", app_id))
        .await?
    {
        return Ok(sp);
    }
    ctx.call(
        portal,
        Method::POST,
        "servicePrincipals",
        Some(&json!({"appId": app_id})),
    )
    .await
}

/// Grant admin consent: an `AllPrincipals` grant for each resource's delegated permissions.
async fn grant(
    portal: &Portal,
    ctx: &Ctx,
    app: &Value,
    rra: &[Value],
) -> Result<String, GraphCallError> {
    let tenant = s(app, "publisherDomain");
    let client = ensure_sp(portal, ctx, s(app, "appId")).await?;
    let (_, grants) = admin_grants(portal, ctx, s(app, "appId")).await?;
    let mut done = 0;
    for r in rra {
        let scope_ids: Vec<String> = list(&r["resourceAccess"])
            .iter()
            .filter(|a| s(a, "type") == "Scope")
            .map(|a| s(a, "id").to_owned())
            .collect();
        if scope_ids.is_empty() {
            continue;
        }
        let resource_app = s(r, "resourceAppId");
        let api = api(portal, ctx, resource_app).await?;
        let resource = match api.sp {
            Some(sp) => sp,
            None => ensure_sp(portal, ctx, resource_app).await?,
        };
        let mut values: Vec<String> = scope_ids
            .iter()
            .filter_map(|sid| {
                api.scopes
                    .iter()
                    .find(|sc| s(sc, "id") == sid)
                    .map(|sc| s(sc, "value").to_owned())
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        match grants
            .iter()
            .find(|g| s(g, "resourceId") == s(&resource, "id"))
        {
            Some(g) => {
                for old in s(g, "scope").split_whitespace() {
                    if !values.iter().any(|v| v == old) {
                        values.push(old.to_owned());
                    }
                }
                ctx.call(
                    portal,
                    Method::PATCH,
                    &format!("oauth2PermissionGrants/{}", enc(s(g, "id"))),
                    Some(&json!({"scope": values.join(" ")})),
                )
                .await?;
            }
            None => {
                ctx.call(
                    portal,
                    Method::POST,
                    "oauth2PermissionGrants",
                    Some(&json!({
                        "clientId": s(&client, "id"),
                        "consentType": "AllPrincipals",
                        "resourceId": s(&resource, "id"),
                        "scope": values.join(" "),
                    })),
                )
                .await?;
            }
        }
        done += 1;
    }
    Ok(if done == 0 {
        "There are no delegated permissions to consent to.".to_owned()
    } else {
        format!("Granted admin consent for {tenant}.")
    })
}
