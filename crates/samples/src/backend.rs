//! The tutorial's back end (the Node sample's `backend/src/server.js`): `GET /get-profile`
//! answers `{"route":"/profile success","profile":{"displayName":…,"withAuthentication":…},…}`,
//! `GET /debug` shows what the app received.
//!
//! `displayName` is the signed-in user's (the bearer token's `name` claim, else the principal
//! headers the authentication module injected), not the Node sample's fixed "John Doe", which is
//! kept only for anonymous calls. With `BACKEND_USE_GRAPH=true` (the tutorial's next step) the back
//! end exchanges the user's token on-behalf-of for a Microsoft Graph token and returns the user's
//! profile from Graph `/v1.0/me`; that needs `WEBSITE_AUTH_CLIENT_ID`,
//! `WEBSITE_AUTH_OPENID_ISSUER` (its discovery document names the token endpoint) and
//! `MICROSOFT_PROVIDER_AUTHENTICATION_SECRET`, and reads Graph at `GRAPH_URL` / `GRAPH_BASE_URL`
//! (default `https://graph.microsoft.com`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::common::{
    Reply, Settings, claim, decode_jwt, esc, http_client, json_block, mask, masked_headers, page,
    send, to_json, token_section,
};

/// Graph's public address, the default of `GRAPH_URL`.
pub const GRAPH_DEFAULT: &str = "https://graph.microsoft.com";
/// The delegated permission asked for in the on-behalf-of exchange.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/User.Read";
/// The display name the Node sample always answers; here only for anonymous calls.
pub const ANONYMOUS_NAME: &str = "John Doe";

/// The app settings the on-behalf-of exchange needs.
pub const OBO_SETTINGS: [&str; 3] = [
    "WEBSITE_AUTH_CLIENT_ID",
    "WEBSITE_AUTH_OPENID_ISSUER",
    "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
];

#[derive(Debug)]
struct Backend {
    settings: Settings,
    http: reqwest::Client,
    use_graph: bool,
    graph_base: String,
    token_endpoint: OnceCell<String>,
}

/// The back end's routes, configured from `settings`.
pub fn router(settings: Settings) -> Result<Router, String> {
    router_with_roots(settings, &[])
}

/// [`router`], also trusting the PEM certificates in `extra_roots` for the identity provider
/// and Graph.
pub fn router_with_roots(settings: Settings, extra_roots: &[u8]) -> Result<Router, String> {
    let http = http_client(&settings, extra_roots)?;
    let graph_base = settings
        .first(&["GRAPH_URL", "GRAPH_BASE_URL"])
        .unwrap_or(GRAPH_DEFAULT)
        .trim_end_matches('/')
        .trim_end_matches("/v1.0")
        .to_owned();
    let state = Arc::new(Backend {
        use_graph: settings.flag("BACKEND_USE_GRAPH"),
        graph_base,
        settings,
        http,
        token_endpoint: OnceCell::new(),
    });
    Ok(Router::new()
        .route("/get-profile", get(get_profile))
        .route("/debug", get(debug))
        .fallback(fallback)
        .with_state(state))
}

/// The on-behalf-of settings that are missing from `settings` (empty when OBO is off).
pub fn missing_obo_settings(settings: &Settings) -> Vec<&'static str> {
    if !settings.flag("BACKEND_USE_GRAPH") {
        return Vec::new();
    }
    OBO_SETTINGS
        .into_iter()
        .filter(|n| settings.get(n).is_none())
        .collect()
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The `name` claim of `X-MS-CLIENT-PRINCIPAL` (base64 JSON with a `claims` array).
fn principal_name(headers: &HeaderMap) -> Option<String> {
    let raw = header_text(headers, "x-ms-client-principal")?;
    let json: Value = serde_json::from_slice(&STANDARD.decode(raw).ok()?).ok()?;
    json.get("claims")?
        .as_array()?
        .iter()
        .find(|c| c.get("typ").and_then(Value::as_str) == Some("name"))?
        .get("val")?
        .as_str()
        .map(str::to_owned)
}

/// The user's display name: the bearer token's `name`, the principal's `name` claim, then
/// `X-MS-CLIENT-PRINCIPAL-NAME`.
fn display_name(headers: &HeaderMap, token: Option<&str>) -> Option<String> {
    token
        .and_then(|t| decode_jwt(t).ok())
        .and_then(|c| claim(&c, "name").map(str::to_owned))
        .or_else(|| principal_name(headers))
        .or_else(|| header_text(headers, "x-ms-client-principal-name"))
}

fn error_json(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

async fn get_profile(State(app): State<Arc<Backend>>, headers: HeaderMap) -> Response {
    // As the Node sample: the token is what follows the scheme; a header without one is a 401.
    let token = match header_text(&headers, header::AUTHORIZATION.as_str()) {
        None => None,
        Some(value) => {
            let token = value
                .split_once(' ')
                .map(|(_, t)| t.trim().to_owned())
                .unwrap_or_default();
            if token.is_empty() || token == "undefined" || token == "null" {
                return error_json(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": "No access token found"}),
                );
            }
            Some(token)
        }
    };
    let profile = if app.use_graph {
        let Some(token) = &token else {
            return error_json(
                StatusCode::UNAUTHORIZED,
                json!({"error": "No access token found",
                       "message": "BACKEND_USE_GRAPH is on: the back end needs the user's bearer token to ask Microsoft Graph on the user's behalf"}),
            );
        };
        match app.graph_profile(token).await {
            Ok(mut me) => {
                if let Value::Object(m) = &mut me {
                    m.insert("withAuthentication".into(), Value::Bool(true));
                }
                me
            }
            Err(f) => {
                return error_json(
                    f.status,
                    json!({"error": {"route": "/profile error", "profile": "error",
                                     "server_response": f.server_response, "message": f.message}}),
                );
            }
        }
    } else {
        json!({
            "displayName": display_name(&headers, token.as_deref()).unwrap_or_else(|| ANONYMOUS_NAME.into()),
            "withAuthentication": token.is_some(),
        })
    };
    let mut answer = json!({
        "route": "/profile success",
        "profile": profile,
        "headers": to_json(&masked_headers(&headers)),
        "env": to_json(&app.settings.shown()),
        "error": null,
    });
    if let (Some(t), Value::Object(m)) = (&token, &mut answer) {
        m.insert("bearerToken".into(), json!(format!("Bearer {}", mask(t))));
    }
    Json(answer).into_response()
}

/// Why the Graph profile could not be fetched: the status to answer with, a message and what
/// the failing server said.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    message: String,
    server_response: Value,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            server_response: Value::Null,
        }
    }

    fn from_reply(message: String, reply: &Reply) -> Failure {
        Failure {
            status: StatusCode::BAD_GATEWAY,
            message,
            server_response: json!({"status": reply.status,
                                    "body": reply.json().unwrap_or_else(|| Value::String(reply.text()))}),
        }
    }
}

impl Backend {
    /// The user's Graph `/v1.0/me`, via the on-behalf-of exchange of `user_token`.
    async fn graph_profile(&self, user_token: &str) -> Result<Value, Failure> {
        let missing: Vec<&str> = OBO_SETTINGS
            .into_iter()
            .filter(|n| self.settings.get(n).is_none())
            .collect();
        let (Some(client_id), Some(secret)) = (
            self.settings.get("WEBSITE_AUTH_CLIENT_ID"),
            self.settings
                .get("MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"),
        ) else {
            return Err(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "BACKEND_USE_GRAPH is on but these app settings are missing: {}",
                    missing.join(", ")
                ),
            ));
        };
        let token_endpoint = self.token_endpoint().await?;
        let reply = send(self.http.post(token_endpoint).form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("requested_token_use", "on_behalf_of"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("assertion", user_token),
            ("scope", GRAPH_SCOPE),
        ]))
        .await
        .map_err(|e| {
            Failure::new(
                StatusCode::BAD_GATEWAY,
                format!("cannot reach the token endpoint {token_endpoint}: {e}"),
            )
        })?;
        let body = reply.json().unwrap_or(Value::Null);
        let access_token = body.get("access_token").and_then(Value::as_str);
        let Some(access_token) = access_token.filter(|_| reply.status == 200) else {
            let error = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let mut message = format!(
                "the on-behalf-of exchange was refused (HTTP {}): {} {}",
                reply.status,
                error("error"),
                error("error_description")
            );
            let codes = body.get("error_codes").map(Value::to_string);
            if error("suberror") == "consent_required" || codes.is_some_and(|c| c.contains("65001"))
            {
                message.push_str(
                    " — grant the back end's app registration the delegated Microsoft Graph \
                     permission User.Read (with admin consent).",
                );
            }
            return Err(Failure::from_reply(message.trim_end().to_owned(), &reply));
        };
        let me = format!("{}/v1.0/me", self.graph_base);
        let reply = send(self.http.get(&me).bearer_auth(access_token))
            .await
            .map_err(|e| {
                Failure::new(
                    StatusCode::BAD_GATEWAY,
                    format!("cannot reach Microsoft Graph at {me}: {e}"),
                )
            })?;
        match reply.json() {
            Some(profile @ Value::Object(_)) if reply.status == 200 => Ok(profile),
            _ => Err(Failure::from_reply(
                format!("Microsoft Graph {me} answered HTTP {}", reply.status),
                &reply,
            )),
        }
    }

    /// The token endpoint from the issuer's discovery document, fetched once.
    async fn token_endpoint(&self) -> Result<&str, Failure> {
        let issuer = self
            .settings
            .get("WEBSITE_AUTH_OPENID_ISSUER")
            .ok_or_else(|| {
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "BACKEND_USE_GRAPH is on but WEBSITE_AUTH_OPENID_ISSUER is not set",
                )
            })?;
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        self.token_endpoint
            .get_or_try_init(|| async {
                let reply = send(self.http.get(&discovery)).await.map_err(|e| {
                    Failure::new(
                        StatusCode::BAD_GATEWAY,
                        format!("cannot read the discovery document {discovery}: {e}"),
                    )
                })?;
                reply
                    .json()
                    .filter(|_| reply.status == 200)
                    .and_then(|d| {
                        d.get("token_endpoint")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .ok_or_else(|| {
                        Failure::from_reply(
                            format!("the discovery document {discovery} names no token_endpoint"),
                            &reply,
                        )
                    })
            })
            .await
            .map(String::as_str)
    }
}

async fn debug(State(app): State<Arc<Backend>>, headers: HeaderMap) -> Response {
    let token = header_text(&headers, header::AUTHORIZATION.as_str())
        .and_then(|v| v.split_once(' ').map(|(_, t)| t.trim().to_owned()))
        .filter(|t| !t.is_empty());
    let mut body = String::from("<h2>API server - Debug</h2>\n");
    body.push_str(&token_section(
        "Bearer token",
        "Authorization",
        token.as_deref(),
    ));
    body.push_str(&format!(
        "<p>Microsoft Graph on-behalf-of: {}</p>\n",
        esc(if app.use_graph {
            "on (BACKEND_USE_GRAPH)"
        } else {
            "off"
        })
    ));
    body.push_str(&json_block(&json!({
        "env": to_json(&app.settings.shown()),
        "headers": to_json(&masked_headers(&headers)),
        "route": "debug",
    })));
    page("Easy auth - API server debug", &body).into_response()
}

async fn fallback() -> Response {
    Json(json!({"status": "unknown url request"})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_name_from_the_principal_header() {
        let principal = STANDARD.encode(
            r#"{"auth_typ":"aad","claims":[{"typ":"name","val":"Alice Smith"}],"name_typ":"x","role_typ":"y"}"#,
        );
        let mut h = HeaderMap::new();
        h.insert("x-ms-client-principal", principal.parse().expect("v"));
        h.insert(
            "x-ms-client-principal-name",
            "alice@contoso.test".parse().expect("v"),
        );
        assert_eq!(display_name(&h, None).as_deref(), Some("Alice Smith"));
        h.insert("x-ms-client-principal", "%%%".parse().expect("v"));
        assert_eq!(
            display_name(&h, Some("not-a-jwt")).as_deref(),
            Some("alice@contoso.test")
        );
        assert_eq!(display_name(&HeaderMap::new(), None), None);
    }

    #[test]
    fn obo_settings_are_checked_only_when_on() {
        assert!(missing_obo_settings(&Settings::default()).is_empty());
        let s = Settings::from_pairs([
            ("BACKEND_USE_GRAPH", "true"),
            ("WEBSITE_AUTH_CLIENT_ID", "x"),
        ]);
        assert_eq!(
            missing_obo_settings(&s),
            vec![
                "WEBSITE_AUTH_OPENID_ISSUER",
                "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"
            ]
        );
    }
}
