//! What both apps share: app settings, JWT payload decoding, masking, HTML and the outbound
//! HTTP client.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Html;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The port App Service's Node image listens on when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 8080;
/// Largest body read from the back end, the token endpoint or Graph.
pub const MAX_BODY: usize = 1 << 20;

/// App settings as App Service hands them to an app: environment variables, captured once.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    vars: BTreeMap<String, String>,
}

impl Settings {
    /// The process environment (variables that are not UTF-8 are skipped).
    pub fn from_env() -> Settings {
        Settings::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Settings from explicit pairs (tests, embedding).
    pub fn from_pairs<I, K, V>(pairs: I) -> Settings
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Settings {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The trimmed value of `name`, if set and not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first of `names` that is set.
    pub fn first(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.get(n))
    }

    /// `true`, `1` or `yes` in any case. The Node sample compares with `'true'` case-sensitively,
    /// but App Service has been seen to set `True`; both count here.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| {
            v.eq_ignore_ascii_case("true") || v == "1" || v.eq_ignore_ascii_case("yes")
        })
    }

    /// Whether App Service authentication is on for this app.
    pub fn auth_enabled(&self) -> bool {
        self.flag("APPSETTING_WEBSITE_AUTH_ENABLED") || self.flag("WEBSITE_AUTH_ENABLED")
    }

    /// `PORT` (App Service), else `WEB_PORT` (the Node sample's `.env`), else 8080.
    pub fn port(&self) -> Result<u16, String> {
        match self.first(&["PORT", "WEB_PORT"]) {
            None => Ok(DEFAULT_PORT),
            Some(p) => p
                .parse()
                .map_err(|_| format!("PORT must be a port number, not {p:?}")),
        }
    }

    /// The settings a debug page shows: App Service's own variables and the ones these apps read,
    /// with secret-looking values masked. The rest of the environment (a developer's shell when
    /// run locally) is left out.
    pub fn shown(&self) -> BTreeMap<String, String> {
        const PREFIXES: [&str; 4] = [
            "APPSETTING_",
            "WEBSITE_",
            "MICROSOFT_PROVIDER_",
            "EASYAUTH_",
        ];
        const NAMES: [&str; 9] = [
            "PORT",
            "WEB_PORT",
            "BACKEND_URL",
            "BACKEND_USE_GRAPH",
            "GRAPH_URL",
            "GRAPH_BASE_URL",
            "SSL_CERT_FILE",
            "HOST",
            "BIND_ADDRESS",
        ];
        self.vars
            .iter()
            .filter(|(k, _)| {
                PREFIXES.iter().any(|p| k.starts_with(p)) || NAMES.contains(&k.as_str())
            })
            .map(|(k, v)| {
                let value = if is_secret_name(k) {
                    format!("(hidden, {} characters)", v.chars().count())
                } else {
                    v.clone()
                };
                (k.clone(), value)
            })
            .collect()
    }
}

fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["SECRET", "PASSWORD", "PWD", "CONNECTIONSTRING"]
        .iter()
        .any(|w| upper.contains(w))
        || upper.ends_with("KEY")
        || upper.ends_with("TOKEN")
}

/// A credential shown on a page: its first 8 characters and an ellipsis; nothing of a short one.
pub fn mask(value: &str) -> String {
    if value.chars().count() <= 8 {
        return "…".to_owned();
    }
    let mut out: String = value.chars().take(8).collect();
    out.push('…');
    out
}

/// Request headers, sorted by (lower-case) name, with credentials masked: `Authorization`,
/// `Cookie` values, `X-ZUMO-AUTH` and the `X-MS-TOKEN-*` tokens (not their `EXPIRES-ON`).
pub fn masked_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str();
        let text = String::from_utf8_lossy(value.as_bytes());
        let shown = if name == "authorization" {
            match text.split_once(' ') {
                Some((scheme, rest)) => format!("{scheme} {}", mask(rest.trim())),
                None => mask(&text),
            }
        } else if name == "cookie" {
            text.split(';')
                .map(|c| match c.trim().split_once('=') {
                    Some((k, v)) => format!("{k}={}", mask(v)),
                    None => mask(c.trim()),
                })
                .collect::<Vec<_>>()
                .join("; ")
        } else if name == "x-zumo-auth"
            || (name.starts_with("x-ms-token-") && !name.ends_with("-expires-on"))
        {
            mask(&text)
        } else {
            text.into_owned()
        };
        out.entry(name.to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&shown);
            })
            .or_insert(shown);
    }
    out
}

/// Why a token's payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    Empty,
    /// Not `header.payload.signature`: the count of `.`-separated parts.
    Parts(usize),
    /// Five parts: an encrypted JWT (JWE), whose payload only its audience can read.
    Encrypted,
    Base64,
    Json(String),
    NotObject,
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::Empty => f.write_str("the token is empty"),
            JwtError::Parts(n) => write!(
                f,
                "it is not a JWT: a JWT has three base64url parts separated by '.', this value has {n}"
            ),
            JwtError::Encrypted => f.write_str(
                "it is an encrypted JWT (five parts); only the API it was issued for can read it",
            ),
            JwtError::Base64 => f.write_str("its middle part (the payload) is not base64url"),
            JwtError::Json(e) => write!(f, "its payload is not JSON: {e}"),
            JwtError::NotObject => f.write_str("its payload is JSON but not an object of claims"),
        }
    }
}

impl std::error::Error for JwtError {}

/// The claims of a JWT, read WITHOUT checking its signature, as the Node samples do with
/// `jwt-decode`: the authentication module in front of the app has already validated it. Never
/// use the result for an access decision.
pub fn decode_jwt(token: &str) -> Result<Map<String, Value>, JwtError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(JwtError::Empty);
    }
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => return Err(JwtError::Encrypted),
        n => return Err(JwtError::Parts(n)),
    }
    let payload = parts[1].trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwtError::Base64)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(claims)) => Ok(claims),
        Ok(_) => Err(JwtError::NotObject),
        Err(e) => Err(JwtError::Json(e.to_string())),
    }
}

/// A string claim.
pub fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// `scp` (delegated scopes), or for an app-only token its `roles`, space-separated.
pub fn scopes(claims: &Map<String, Value>) -> Option<String> {
    if let Some(scp) = claim(claims, "scp") {
        return Some(scp.to_owned());
    }
    let roles = claims.get("roles")?.as_array()?;
    Some(
        roles
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// `exp` as Unix seconds (an integer or, leniently, a number).
pub fn expiry(claims: &Map<String, Value>) -> Option<i64> {
    let exp = claims.get("exp")?;
    exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64))
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix seconds as RFC 3339, or the number if it is out of range.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// The bearer token of an `Authorization` header value: `Some("")` when the scheme is there
/// but the token is not.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

// ---- HTML ----

/// Text content, escaped.
pub fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

/// A double-quoted attribute value, escaped.
pub fn attr(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(s).into_owned()
}

/// A whole page. `title` is text; `body` is HTML the caller built with [`esc`].
pub fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}\
         pre{{background:#f4f4f4;padding:.8em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}}\
         .error{{color:#a00}}.advice{{background:#fff6d6;padding:.6em}}</style>\n</head>\n<body>\n{}\n\
         <p><a href=\"/\">Home</a></p>\n</body>\n</html>\n",
        esc(title),
        body
    ))
}

/// Pretty JSON in a `<pre>`, escaped.
pub fn json_block(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|e| e.to_string());
    format!("<pre>{}</pre>", esc(&text))
}

/// A collapsible section.
pub fn details(summary: &str, inner: &str) -> String {
    format!(
        "<details><summary>{}</summary>\n{inner}\n</details>\n",
        esc(summary)
    )
}

/// A string map as a JSON object.
pub fn to_json(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// An access token's section of a debug page: the decoded `name` and `scp`, audience, client,
/// expiry and the masked value; or why it cannot be read.
pub fn token_section(heading: &str, header: &str, raw: Option<&str>) -> String {
    let mut out = format!("<h3>{}</h3>\n", esc(heading));
    let Some(raw) = raw else {
        out.push_str(&format!(
            "<p>No access token: the request has no <code>{}</code> header.</p>\n",
            esc(header)
        ));
        return out;
    };
    match decode_jwt(raw) {
        Ok(claims) => {
            let show = |v: Option<&str>| esc(v.unwrap_or("(none)"));
            let exp = expiry(&claims);
            let expiry_text = match exp {
                Some(e) if e <= now() => format!("{} (expired)", rfc3339(e)),
                Some(e) => format!("{} ({} minutes left)", rfc3339(e), (e - now()) / 60),
                None => "(none)".to_owned(),
            };
            out.push_str(&format!(
                "<ul>\n<li>Name (name): <b class=\"name\">{}</b></li>\n\
                 <li>Scopes (scp): <b class=\"scp\">{}</b></li>\n\
                 <li>Audience (aud): {}</li>\n<li>Client (azp/appid): {}</li>\n\
                 <li>Expires (exp): {}</li>\n<li>Token: <code>{}</code></li>\n</ul>\n",
                show(claim(&claims, "name")),
                show(scopes(&claims).as_deref()),
                show(claim(&claims, "aud")),
                show(claim(&claims, "azp").or_else(|| claim(&claims, "appid"))),
                esc(&expiry_text),
                esc(&mask(raw)),
            ));
        }
        Err(e) => {
            out.push_str(&format!(
                "<p class=\"error\">The <code>{}</code> value cannot be read as a JWT: {}.</p>\n\
                 <p class=\"advice\">{}</p>\n<p>Token: <code>{}</code></p>\n",
                esc(header),
                esc(&e.to_string()),
                esc(NOT_A_JWT_ADVICE),
                esc(&mask(raw)),
            ));
        }
    }
    out
}

/// What an unreadable access token usually means in this tutorial.
pub const NOT_A_JWT_ADVICE: &str = "Entra access tokens are JWTs an app can read when they are \
issued for that app's own API. An unreadable one is usually meant for another resource (Microsoft \
Graph, or a personal Microsoft account): the front end's sign-in did not ask for the back end's \
scope. Set the front end's loginParameters to \
\"scope=openid offline_access api://<back-end-client-id>/user_impersonation\", then sign out \
(/.auth/logout) and in again.";

// ---- outbound HTTP ----

/// The client for calls to the back end, the token endpoint and Graph: rustls with the OS roots
/// plus the PEM bundle named by `SSL_CERT_FILE` (the local CA of `easyauth up`) plus
/// `extra_roots`; redirects are not followed, so a sign-in redirect is reported as such.
pub fn http_client(settings: &Settings, extra_roots: &[u8]) -> Result<reqwest::Client, String> {
    let mut roots = Vec::new();
    if let Some(path) = settings.get("SSL_CERT_FILE") {
        let pem = std::fs::read(path).map_err(|e| format!("SSL_CERT_FILE {path}: {e}"))?;
        roots.extend(
            reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("SSL_CERT_FILE {path}: {e}"))?,
        );
    }
    if !extra_roots.is_empty() {
        roots.extend(
            reqwest::Certificate::from_pem_bundle(extra_roots)
                .map_err(|e| format!("the extra root certificates are unusable: {e}"))?,
        );
    }
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("easyauth-samples/", env!("CARGO_PKG_VERSION")))
        .tls_certs_merge(roots)
        .build()
        .map_err(|e| format!("cannot set up the HTTPS client: {}", error_chain(&e)))
}

/// A response read with a size bound.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Sends `request` and reads at most [`MAX_BODY`] bytes of the answer.
pub async fn send(request: reqwest::RequestBuilder) -> Result<Reply, String> {
    let mut response = request.send().await.map_err(|e| error_chain(&e))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("the response is larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// An error and its causes: reqwest's own text says only "error sending request".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Serves `app` on `addr` until Ctrl-C / SIGTERM.
pub async fn serve(app: axum::Router, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The address to listen on: `HOST` (default `127.0.0.1`, so that locally nothing bypasses the
/// authentication proxy in front of the app) and [`Settings::port`].
pub fn listen_addr(settings: &Settings) -> Result<std::net::SocketAddr, String> {
    let host = settings.get("HOST").unwrap_or("127.0.0.1");
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| format!("HOST must be an IP address, not {host:?}"))?;
    Ok(std::net::SocketAddr::new(ip, settings.port()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn decodes_payloads_and_explains_failures() {
        let token = format!(
            "{}.{}.sig",
            b64("{}"),
            b64(r#"{"name":"Alice","scp":"a b"}"#)
        );
        let claims = decode_jwt(&token).expect("decodes");
        assert_eq!(claim(&claims, "name"), Some("Alice"));
        assert_eq!(scopes(&claims).as_deref(), Some("a b"));
        assert_eq!(decode_jwt(""), Err(JwtError::Empty));
        assert_eq!(decode_jwt("opaque-token"), Err(JwtError::Parts(1)));
        assert_eq!(decode_jwt("a.b.c.d.e"), Err(JwtError::Encrypted));
        assert_eq!(decode_jwt("a.!!!.c"), Err(JwtError::Base64));
        assert!(matches!(
            decode_jwt(&format!("a.{}.c", b64("not json"))),
            Err(JwtError::Json(_))
        ));
        assert_eq!(
            decode_jwt(&format!("a.{}.c", b64("[1]"))),
            Err(JwtError::NotObject)
        );
        // Padded payloads are tolerated.
        let padded = format!("a.{}==.c", b64(r#"{"a":1}"#));
        assert!(decode_jwt(&padded).is_ok());
    }

    #[test]
    fn masks_keep_eight_characters() {
        assert_eq!(mask("eyJ0eXAiOiJKV1Qi"), "eyJ0eXAi…");
        assert_eq!(mask("short"), "…");
        assert_eq!(mask("ééééééééé"), "éééééééé…");
    }

    #[test]
    fn headers_are_masked() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "Bearer abcdefghijklmnop".parse().expect("v"),
        );
        h.insert(
            "x-ms-token-aad-access-token",
            "abcdefghijklmnop".parse().expect("v"),
        );
        h.insert(
            "x-ms-token-aad-expires-on",
            "2026-01-01T00:00:00Z".parse().expect("v"),
        );
        h.insert(
            "cookie",
            "AppServiceAuthSession=abcdefghijklmnop; a=b"
                .parse()
                .expect("v"),
        );
        h.insert(
            "x-ms-client-principal-name",
            "alice@contoso.test".parse().expect("v"),
        );
        let m = masked_headers(&h);
        assert_eq!(m["authorization"], "Bearer abcdefgh…");
        assert_eq!(m["x-ms-token-aad-access-token"], "abcdefgh…");
        assert_eq!(m["x-ms-token-aad-expires-on"], "2026-01-01T00:00:00Z");
        assert_eq!(m["cookie"], "AppServiceAuthSession=abcdefgh…; a=…");
        assert_eq!(m["x-ms-client-principal-name"], "alice@contoso.test");
    }

    #[test]
    fn settings() {
        let s = Settings::from_pairs([
            ("APPSETTING_WEBSITE_AUTH_ENABLED", "True"),
            (
                "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
                "supersecretvalue",
            ),
            ("PATH", "/bin"),
            ("PORT", " 3000 "),
        ]);
        assert!(s.auth_enabled());
        assert_eq!(s.port(), Ok(3000));
        let shown = s.shown();
        assert_eq!(
            shown["MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"],
            "(hidden, 16 characters)"
        );
        assert!(!shown.contains_key("PATH"));
        assert!(!Settings::default().auth_enabled());
        assert_eq!(Settings::default().port(), Ok(DEFAULT_PORT));
        assert!(Settings::from_pairs([("PORT", "x")]).port().is_err());
    }

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Bearer"), Some(""));
        assert_eq!(bearer("Basic abc"), None);
    }
}
