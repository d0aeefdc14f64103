//! Settings → Authentication: add the Microsoft identity provider (with an existing app
//! registration), edit it (allowed token audiences, allowed client applications, login
//! parameters, what unauthenticated requests get), or remove it. Everything is the web app's
//! `authsettingsV2`, read and written through the Resource Manager as `az webapp auth` does.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Portal;
use crate::arm::{ArmCallError, site_path};
use crate::form::Form;
use crate::html::{csrf_field, enc, esc};
use crate::pages::{back, outcome, signed_form, signed_in, webapp_page};

use crate::registration::{self, SECRET_SETTING};

/// The unauthenticated actions, with the portal's words for them.
const ACTIONS: [(&str, &str); 4] = [
    (
        "RedirectToLoginPage",
        "HTTP 302 Found redirect: recommended for websites",
    ),
    ("Return401", "HTTP 401 Unauthorized: recommended for APIs"),
    ("Return403", "HTTP 403 Forbidden"),
    ("Return404", "HTTP 404 Not found"),
];

async fn current(
    portal: &Portal,
    token: &str,
    group: &str,
    site: &str,
) -> Result<Value, ArmCallError> {
    let v = portal
        .arm(
            token,
            Method::GET,
            &format!("{}/config/authsettingsV2", site_path(group, site)),
            None,
        )
        .await?;
    Ok(v.get("properties").cloned().unwrap_or_else(|| json!({})))
}

fn list(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// A comma- or line-separated field as a list.
fn parse_list(form: &Form, name: &str) -> Vec<String> {
    form.get(name)
        .unwrap_or("")
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn action_select(selected: &str) -> String {
    let mut html = String::from(
        "<label for=\"action\">Unauthenticated requests</label><select id=\"action\" name=\"action\">",
    );
    for (value, label) in ACTIONS {
        let sel = if value == selected { " selected" } else { "" };
        let _ = write!(html, "<option value=\"{value}\"{sel}>{label}</option>");
    }
    html.push_str("</select>");
    html
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
    let action = format!("/resource/{}/{}/authentication", enc(&group), enc(&site));
    let csrf = csrf_field(&signed.session.csrf);
    match current(&portal, &signed.token, &group, &site).await {
        Err(e) => {
            let _ = write!(body, "<div class=\"error\">{}</div>", esc(&e.to_string()));
        }
        Ok(p) => {
            let aad = &p["identityProviders"]["azureActiveDirectory"];
            let enabled = p["platform"]["enabled"].as_bool().unwrap_or(false)
                && aad["enabled"].as_bool().unwrap_or(true)
                && aad["registration"]["clientId"].is_string();
            if enabled {
                provider_view(&mut body, &p, &action, &csrf);
            } else {
                add_view(&mut body, &portal, &site, &action, &csrf);
            }
        }
    }
    webapp_page(&signed, &group, &site, "Authentication", &body)
}

fn add_view(body: &mut String, portal: &Portal, site: &str, action: &str, csrf: &str) {
    let _ = write!(
        body,
        "<p>Authentication is not configured. Add an identity provider to require sign-in.</p>\
<h2>Add an identity provider</h2><form method=\"post\" action=\"{}\">{csrf}\
<input type=\"hidden\" name=\"op\" value=\"add\">\
<label for=\"provider\">Identity provider</label><select id=\"provider\" name=\"provider\"><option value=\"microsoft\">Microsoft</option></select>\
<h3>App registration</h3>\
<label><input type=\"radio\" name=\"type\" value=\"new\" checked> Create new app registration</label>\
<label for=\"name\">Name</label><input type=\"text\" id=\"name\" name=\"name\" value=\"{}\">\
<label for=\"secretDays\">Client secret expiration</label><select id=\"secretDays\" name=\"secretDays\">\
<option value=\"180\" selected>Recommended: 180 days</option><option value=\"365\">365 days (12 months)</option><option value=\"730\">730 days (24 months)</option></select>\
<p class=\"hint\">Supported account types: current tenant, single tenant. The secret is stored in the app setting {SECRET_SETTING}; the registration's Application ID URI is <code>api://&lt;client ID&gt;</code> with a <code>user_impersonation</code> scope.</p>\
<label><input type=\"radio\" name=\"type\" value=\"existing\"> Provide the details of an existing app registration</label>\
<label for=\"clientId\">Application (client) ID</label><input type=\"text\" id=\"clientId\" name=\"clientId\">\
<label for=\"clientSecret\">Client secret (recommended)</label><input type=\"text\" id=\"clientSecret\" name=\"clientSecret\" autocomplete=\"off\">\
<label for=\"issuer\">Issuer URL</label><input type=\"text\" id=\"issuer\" name=\"issuer\" value=\"{}\">\
<label for=\"audiences\">Allowed token audiences (one per line or comma-separated)</label><textarea id=\"audiences\" name=\"audiences\" rows=\"2\"></textarea>\
<h3>App Service authentication settings</h3>\
<label><input type=\"radio\" name=\"restrict\" value=\"require\" checked> Require authentication</label>\
<label><input type=\"radio\" name=\"restrict\" value=\"allow\"> Allow unauthenticated access</label>\
{}<label><input type=\"checkbox\" name=\"tokenStore\" value=\"on\" checked> Token store</label>\
<button type=\"submit\">Add</button></form>",
        esc(action),
        esc(site),
        esc(&portal.config.issuer),
        action_select("RedirectToLoginPage")
    );
}

fn provider_view(body: &mut String, p: &Value, action: &str, csrf: &str) {
    let aad = &p["identityProviders"]["azureActiveDirectory"];
    let client_id = aad["registration"]["clientId"].as_str().unwrap_or("");
    let issuer = aad["registration"]["openIdIssuer"].as_str().unwrap_or("");
    let audiences = list(&aad["validation"]["allowedAudiences"]);
    let clients = list(&aad["validation"]["defaultAuthorizationPolicy"]["allowedApplications"]);
    let login = list(&aad["login"]["loginParameters"]);
    let unauth = p["globalValidation"]["unauthenticatedClientAction"]
        .as_str()
        .unwrap_or("RedirectToLoginPage");
    let require = p["globalValidation"]["requireAuthentication"]
        .as_bool()
        .unwrap_or(false);
    let _ = write!(
        body,
        "<h2>Identity provider: Microsoft</h2><table>\
<tr><th>App (client) ID</th><td id=\"clientId\">{}</td></tr>\
<tr><th>Issuer URL</th><td>{}</td></tr>\
<tr><th>Client secret setting name</th><td>{}</td></tr>\
<tr><th>Allowed token audiences</th><td id=\"audiences\">{}</td></tr>\
<tr><th>Allowed client applications</th><td id=\"clients\">{}</td></tr>\
<tr><th>Login parameters</th><td id=\"loginParameters\">{}</td></tr>\
<tr><th>App Service authentication</th><td>{}</td></tr></table>\
<p>App registration: <a id=\"registration\" href=\"/registrations/app/{}\">{}</a> (Microsoft Entra ID → App registrations)</p>",
        esc(client_id),
        esc(issuer),
        esc(aad["registration"]["clientSecretSettingName"]
            .as_str()
            .unwrap_or("(none)")),
        esc(&audiences.join(", ")),
        esc(&clients.join(", ")),
        esc(&login.join(" ")),
        if require {
            "Require authentication"
        } else {
            "Allow unauthenticated access"
        },
        esc(&enc(client_id)),
        esc(client_id),
    );
    let _ = write!(
        body,
        "<h2>Edit identity provider</h2><form method=\"post\" action=\"{}\">{csrf}\
<input type=\"hidden\" name=\"op\" value=\"edit\">\
<label for=\"e-audiences\">Allowed token audiences</label><textarea id=\"e-audiences\" name=\"audiences\" rows=\"2\">{}</textarea>\
<label for=\"e-clients\">Allowed client applications (client IDs)</label><textarea id=\"e-clients\" name=\"clients\" rows=\"2\">{}</textarea>\
<p class=\"hint\">Only these applications' tokens are accepted (the tutorial adds the front end's client ID to the back end). Empty: any application of the tenant.</p>\
<label for=\"e-login\">Login parameters (one per line)</label><textarea id=\"e-login\" name=\"loginParameters\" rows=\"2\">{}</textarea>\
<p class=\"hint\">For the app to call another app's API with the signed-in user's token (<code>X-MS-TOKEN-AAD-ACCESS-TOKEN</code>), ask for that API's scope here, e.g. <code>scope=openid offline_access api://&lt;back end's client ID&gt;/user_impersonation</code>. Without it the access token is for Microsoft Graph, and the other app answers 401 (wrong audience). Users sign in again to get a token with the new scope.</p>\
<label><input type=\"radio\" name=\"restrict\" value=\"require\"{}> Require authentication</label>\
<label><input type=\"radio\" name=\"restrict\" value=\"allow\"{}> Allow unauthenticated access</label>\
{}<button type=\"submit\">Save</button></form>\
<h2>Remove</h2><form method=\"post\" action=\"{}\">{csrf}<input type=\"hidden\" name=\"op\" value=\"remove\"><button type=\"submit\">Remove identity provider</button></form>",
        esc(action),
        esc(&audiences.join("\n")),
        esc(&clients.join("\n")),
        esc(&login.join("\n")),
        if require { " checked" } else { "" },
        if require { "" } else { " checked" },
        action_select(unauth),
        esc(action),
    );
}

/// `POST`: `op` = add | edit | remove.
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
    let blade = format!("/resource/{}/{}/authentication", enc(&group), enc(&site));
    let mut p = match current(&portal, &signed.token, &group, &site).await {
        Ok(p) => p,
        Err(e) => return back(&blade, Err(e.to_string())),
    };
    let (message, secret) = match form.get("op") {
        Some("add") => {
            let added = if form.get("type") == Some("new") {
                add_new(&portal, &signed, &group, &site, &form).await
            } else {
                add_existing(&portal, &form)
            };
            let added = match added {
                Ok(a) => a,
                Err(message) => return back(&blade, Err(message)),
            };
            p = registration::with_microsoft_provider(
                p,
                &added.client_id,
                &added.issuer,
                added.secret.is_some().then_some(SECRET_SETTING),
                &added.audiences,
            );
            set_restrictions(&mut p, &form);
            p["login"]["tokenStore"]["enabled"] = json!(form.get("tokenStore") == Some("on"));
            (added.message, added.secret)
        }
        Some("edit") => {
            let aad = &mut p["identityProviders"]["azureActiveDirectory"];
            aad["validation"]["allowedAudiences"] = json!(parse_list(&form, "audiences"));
            aad["validation"]["defaultAuthorizationPolicy"]["allowedApplications"] =
                json!(parse_list(&form, "clients"));
            aad["login"]["loginParameters"] = json!(
                form.get("loginParameters")
                    .unwrap_or("")
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
            );
            set_restrictions(&mut p, &form);
            ("Saved the identity provider.".to_owned(), None)
        }
        Some("remove") => {
            if let Some(providers) = p["identityProviders"].as_object_mut() {
                providers.remove("azureActiveDirectory");
            }
            p["platform"]["enabled"] = json!(false);
            ("Removed the identity provider.".to_owned(), None)
        }
        _ => return back(&blade, Err("Unknown change.".into())),
    };
    // The secret first, as the portal does: the settings then name an existing setting.
    if let Some(secret) = secret {
        let path = format!("{}/config/appsettings", site_path(&group, &site));
        let mut settings = match portal
            .arm(&signed.token, Method::POST, &format!("{path}/list"), None)
            .await
        {
            Ok(v) => v["properties"].as_object().cloned().unwrap_or_default(),
            Err(e) => return back(&blade, Err(e.to_string())),
        };
        settings.insert(SECRET_SETTING.into(), Value::String(secret));
        if let Err(e) = portal
            .arm(
                &signed.token,
                Method::PUT,
                &path,
                Some(&json!({"properties": settings})),
            )
            .await
        {
            return back(&blade, Err(e.to_string()));
        }
    }
    let result = portal
        .arm(
            &signed.token,
            Method::PUT,
            &format!("{}/config/authsettingsV2", site_path(&group, &site)),
            Some(&json!({"properties": p})),
        )
        .await;
    back(&blade, result.map(|_| message).map_err(|e| e.to_string()))
}

/// The provider to add: from a new registration or an existing one.
struct Added {
    client_id: String,
    issuer: String,
    secret: Option<String>,
    audiences: Vec<String>,
    message: String,
}

fn add_existing(portal: &Portal, form: &Form) -> Result<Added, String> {
    let client_id = form
        .text("clientId")
        .ok_or("The Application (client) ID is required.")?;
    Ok(Added {
        client_id: client_id.to_owned(),
        issuer: form
            .text("issuer")
            .unwrap_or(portal.config.issuer.as_str())
            .to_owned(),
        secret: form.text("clientSecret").map(str::to_owned),
        audiences: parse_list(form, "audiences"),
        message: "Added the Microsoft identity provider.".to_owned(),
    })
}

/// Creates the app registration through Microsoft Graph, as the portal's default choice does.
async fn add_new(
    portal: &Portal,
    signed: &crate::pages::Signed,
    group: &str,
    site: &str,
    form: &Form,
) -> Result<Added, String> {
    let graph_token = signed
        .graph_token(portal)
        .await
        .map_err(|_| "Microsoft Graph refused this session's token; sign out and in again.")?;
    let resource = portal
        .arm(&signed.token, Method::GET, &site_path(group, site), None)
        .await
        .map_err(|e| e.to_string())?;
    let host = resource["properties"]["defaultHostName"]
        .as_str()
        .unwrap_or_default();
    let app_url = resource["properties"]["easyauth"]["url"]
        .as_str()
        .map_or_else(|| format!("http://{host}"), str::to_owned);
    let name = form.text("name").unwrap_or(site).to_owned();
    let secret_days = form
        .get("secretDays")
        .and_then(|d| d.parse::<u32>().ok())
        .filter(|d| [180, 365, 730].contains(d))
        .unwrap_or(180);
    let created = registration::create(
        &registration::GraphClient {
            http: &portal.http,
            base: &portal.config.idp_url,
            token: &graph_token,
        },
        &registration::NewRegistration {
            display_name: name.clone(),
            app_url,
            secret_days,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(Added {
        audiences: vec![format!("api://{}", created.app_id)],
        message: format!(
            "Added the Microsoft identity provider with the new app registration {name} ({}).",
            created.app_id
        ),
        client_id: created.app_id,
        issuer: portal.config.issuer.clone(),
        secret: Some(created.secret),
    })
}

fn set_restrictions(p: &mut Value, form: &Form) {
    let require = form.get("restrict") != Some("allow");
    let action = form
        .get("action")
        .filter(|a| ACTIONS.iter().any(|(v, _)| v == a))
        .unwrap_or("RedirectToLoginPage");
    p["globalValidation"]["requireAuthentication"] = json!(require);
    p["globalValidation"]["unauthenticatedClientAction"] =
        json!(if require { action } else { "AllowAnonymous" });
    if require && action == "RedirectToLoginPage" {
        p["globalValidation"]["redirectToProvider"] = json!("azureactivedirectory");
    }
}
