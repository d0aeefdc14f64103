//! The admin API: `az webapp`-style control of a running platform over loopback HTTP, with a
//! bearer token kept in the data dir.
//!
//! Routes (modeled on ARM's `Microsoft.Web/sites/config` paths; JSON in, JSON out):
//!
//! | method  | path                                  | does                                   |
//! |---------|---------------------------------------|----------------------------------------|
//! | `GET`   | `/apps`                               | `{"value": [names]}`                   |
//! | `GET`   | `/apps/{name}/config/authsettingsV2`  | [`Control::auth_show`]                 |
//! | `PUT`   | `/apps/{name}/config/authsettingsV2`  | [`Control::auth_set`] → [`AuthSetOutcome`] |
//! | `GET`   | `/apps/{name}/config/appsettings`     | `{"properties": {K: V}}`               |
//! | `PATCH` | `/apps/{name}/config/appsettings`     | `{"properties": {K: "V" \| null}}` (null deletes) → `{"properties": {..}}` |
//!
//! Failures use ARM's shape `{"error": {"code": ..., "message": ...}}`:
//!
//! | status | code                   | when                                                      |
//! |--------|------------------------|-----------------------------------------------------------|
//! | 400    | `BadRequest`           | body not JSON / wrong shape (message names the JSON path), invalid setting name, [`ControlError::Invalid`] |
//! | 401    | `AuthenticationFailed` | missing or wrong bearer token (with `WWW-Authenticate: Bearer`) |
//! | 403    | `Forbidden`            | non-loopback `Host`, or an `Origin` header               |
//! | 404    | `ResourceNotFound`     | [`ControlError::NoSuchApp`] (lists the apps), unknown route |
//! | 405    | `MethodNotAllowed`     | known path, wrong method (keeps the `Allow` header)      |
//! | 413    | `PayloadTooLarge`      | body over [`MAX_BODY`]                                    |
//! | 500    | `OperationFailed`      | [`ControlError::Failed`]: the request was valid but applying it failed; the previous configuration stays in place |
//!
//! # Who may call it
//!
//! The listener is on loopback only, but "loopback" includes every web page open in the user's
//! browser, so three checks run before any route, in this order:
//!
//! 1. **`Host` must be a loopback name** (`localhost`, `127.x.y.z`, `[::1]`, any port), else 403.
//!    This defeats DNS rebinding: a page from `evil.example` that re-points its own name at
//!    127.0.0.1 still sends `Host: evil.example`.
//! 2. **No `Origin` header at all**, else 403. Browsers attach `Origin` to every cross-origin
//!    request that could change state (POST/PUT/PATCH/DELETE, and fetches with CORS); the CLI and
//!    scripts never send one. This also refuses same-origin browser requests, which is intended:
//!    nothing legitimate reaches the admin API from a browser.
//! 3. **`Authorization: Bearer <token>`** where the token is the content of
//!    `<data-dir>/admin-token` (mode 0600, so only the user who runs `up` can read it), compared
//!    in constant time (of SHA-256 digests, so neither content nor length leaks); else 401 with
//!    `WWW-Authenticate: Bearer`. The token is never logged, and [`AdminToken`]'s `Debug` hides it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use easyauth_module::config::kind_of;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq as _;

use crate::control::{Control, ControlError};
use crate::state::TOKEN_FILE;

/// The largest request body the admin API reads: 1 MiB; larger → 413.
pub const MAX_BODY: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// The token

/// The admin API's bearer token. `Debug` does not print it; use [`AdminToken::expose`] to send it.
#[derive(Clone)]
pub struct AdminToken(String);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl From<String> for AdminToken {
    fn from(token: String) -> AdminToken {
        AdminToken(token)
    }
}

impl From<&str> for AdminToken {
    fn from(token: &str) -> AdminToken {
        AdminToken(token.to_owned())
    }
}

/// Why the token file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no admin token at {path} (start `easyauth up`, or pass the same --data-dir it uses)")]
    Missing { path: PathBuf },
    #[error("{path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("{path}: cannot write: {message}")]
    Write { path: PathBuf, message: String },
}

impl AdminToken {
    /// The token file in `data_dir`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(TOKEN_FILE)
    }

    /// The token `up` serves with: the existing `<data_dir>/admin-token` when it is sound (a
    /// regular file holding 64 hex digits with no group/other permission bits), so scripts that
    /// kept the token keep working across restarts; otherwise a new one — 32 random bytes from
    /// the system CSPRNG, hex — written atomically (a 0600 temporary file created with
    /// `create_new`, then renamed over the old one: no reader ever sees a partial token or a
    /// wider mode). Delete the file to rotate the token on the next start.
    pub fn load_or_create(data_dir: &Path) -> Result<AdminToken, AdminError> {
        let path = Self::path(data_dir);
        if let Some(token) = Self::existing_sound(&path) {
            return Ok(token);
        }
        let write_err = |e: std::io::Error| AdminError::Write {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(data_dir).map_err(write_err)?;
        let token = AdminToken(random_hex(32).map_err(|message| AdminError::Write {
            path: path.clone(),
            message,
        })?);
        let tmp = data_dir.join(format!("{TOKEN_FILE}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let result = options.open(&tmp).and_then(|mut file| {
            file.write_all(token.0.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        });
        if let Err(e) = result.and_then(|()| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(write_err(e));
        }
        Ok(token)
    }

    fn existing_sound(path: &Path) -> Option<AdminToken> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        #[cfg(unix)]
        if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
            return None;
        }
        let text = std::fs::read_to_string(path).ok()?;
        let token = text.trim();
        (token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| AdminToken(token.to_owned()))
    }

    /// Reads `<data_dir>/admin-token` (for the client).
    pub fn read(data_dir: &Path) -> Result<AdminToken, AdminError> {
        let path = Self::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AdminError::Missing { path });
            }
            Err(e) => {
                return Err(AdminError::Unreadable {
                    path,
                    message: e.to_string(),
                });
            }
        };
        let token = text.trim();
        if token.is_empty() {
            return Err(AdminError::Unreadable {
                path,
                message: "the file is empty".into(),
            });
        }
        Ok(AdminToken(token.to_owned()))
    }

    /// The token itself, for an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison (of SHA-256 digests, so lengths do not leak either).
    fn matches(&self, presented: &[u8]) -> bool {
        use aws_lc_rs::digest::{SHA256, digest};
        let ours = digest(&SHA256, self.0.as_bytes());
        let theirs = digest(&SHA256, presented);
        bool::from(ours.as_ref().ct_eq(theirs.as_ref()))
    }
}

fn random_hex(bytes: usize) -> Result<String, String> {
    use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| "the system random number generator failed".to_owned())?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

// ---------------------------------------------------------------------------------------------
// The router

#[derive(Clone)]
struct AdminState {
    control: Arc<dyn Control>,
    token: Arc<AdminToken>,
}

/// The admin API over `control`, requiring `token` (see the module docs for routes and checks).
pub fn router(control: Arc<dyn Control>, token: AdminToken) -> Router {
    let state = AdminState {
        control,
        token: Arc::new(token),
    };
    Router::new()
        .route("/apps", get(list_apps))
        .route("/apps/{name}", get(show_app))
        .route("/apps/{name}/restart", axum::routing::post(restart_app))
        .route(
            "/apps/{name}/config/authsettingsV2",
            get(auth_show).put(auth_set),
        )
        .route(
            "/apps/{name}/config/appsettings",
            get(appsettings_list).patch(appsettings_set),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::map_response(json_method_not_allowed))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// An ARM-shaped error response.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        let (status, code) = match &e {
            ControlError::NoSuchApp { .. } => (StatusCode::NOT_FOUND, "ResourceNotFound"),
            ControlError::Invalid(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ControlError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "OperationFailed"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

type ApiResult = Result<Response, ApiError>;

/// Host / Origin / bearer-token checks (module docs, "Who may call it").
async fn guard(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    if let Err(e) = check_caller(&state.token, request.headers(), request.uri()) {
        tracing::warn!(
            method = %request.method(),
            path = request.uri().path(),
            status = e.status.as_u16(),
            "admin API request refused: {}",
            e.message
        );
        return e.into_response();
    }
    next.run(request).await
}

fn check_caller(
    token: &AdminToken,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> Result<(), ApiError> {
    let forbidden = |m: String| ApiError::new(StatusCode::FORBIDDEN, "Forbidden", m);
    // HTTP/1.1 carries Host; HTTP/2 carries :authority, which hyper puts in the URI.
    let host = match headers.get(header::HOST) {
        Some(h) => h
            .to_str()
            .map_err(|_| forbidden("the Host header is not ASCII".into()))?
            .to_owned(),
        None => match uri.authority() {
            Some(a) => a.as_str().to_owned(),
            None => return Err(forbidden("the request has no Host header".into())),
        },
    };
    if !is_loopback_host(&host) {
        return Err(forbidden(format!(
            "the admin API only answers requests addressed to a loopback host (localhost, 127.0.0.1, [::1]), not {host:?}"
        )));
    }
    if headers.contains_key(header::ORIGIN) {
        return Err(forbidden(
            "the admin API does not answer browser requests (the request carries an Origin header)"
                .into(),
        ));
    }
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "AuthenticationFailed", m);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "missing `Authorization: Bearer <token>`; the token is in the admin-token file of `easyauth up`'s data dir",
        ));
    };
    let value = value.as_bytes();
    let presented = match value.iter().position(|&b| b == b' ') {
        Some(i) if value[..i].eq_ignore_ascii_case(b"bearer") => value[i + 1..].trim_ascii(),
        _ => {
            return Err(unauthorized(
                "the Authorization header is not `Bearer <token>`",
            ));
        }
    };
    if !token.matches(presented) {
        return Err(unauthorized(
            "the bearer token is not this platform's admin token (read it from the admin-token file in `easyauth up`'s data dir)",
        ));
    }
    Ok(())
}

/// `localhost`, 127.0.0.0/8 or `[::1]`, with or without a port (not `*.localhost`: keep it narrow).
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        match rest.split_once(']') {
            Some((addr, tail)) if tail.is_empty() || is_port_suffix(tail) => addr,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port_suffix(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        }
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_port_suffix(tail: &str) -> bool {
    tail.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// axum's own 405 has an empty body; give it the JSON error body, keeping its `Allow` header.
async fn json_method_not_allowed(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let message = match allow.as_ref().and_then(|a| a.to_str().ok()) {
        Some(allow) => format!("method not allowed here (allowed: {allow})"),
        None => "method not allowed here".to_owned(),
    };
    let mut fixed =
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", message).into_response();
    if let Some(allow) = allow {
        fixed.headers_mut().insert(header::ALLOW, allow);
    }
    fixed
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "no such admin API route: {} {} (routes: GET /apps, GET /apps/{{name}}, POST /apps/{{name}}/restart, GET|PUT /apps/{{name}}/config/authsettingsV2, GET|PATCH /apps/{{name}}/config/appsettings)",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn show_app(
    State(state): State<AdminState>,
    path: Result<UrlPath<String>, PathRejection>,
) -> ApiResult {
    let name = app_name(path)?;
    Ok(json_ok(state.control.show(&name).await?))
}

async fn restart_app(
    State(state): State<AdminState>,
    path: Result<UrlPath<String>, PathRejection>,
) -> ApiResult {
    let name = app_name(path)?;
    state.control.restart(&name).await?;
    tracing::info!(app = %name, "admin API: app restarted");
    Ok(json_ok(json!({})))
}

fn app_name(path: Result<UrlPath<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|UrlPath(name)| name)
        .map_err(|e| ApiError::bad_request(format!("invalid app name in the path: {e}")))
}

fn json_ok(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

/// The body as JSON, or 413 / 400 naming where it went wrong.
fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                format!("the request body is larger than {MAX_BODY} bytes"),
            )
        } else {
            ApiError::bad_request(format!("cannot read the request body: {e}"))
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("$: the request body is not valid JSON: {e}")))
}

async fn list_apps(State(state): State<AdminState>) -> ApiResult {
    Ok(json_ok(json!({"value": state.control.app_names()})))
}

async fn auth_show(
    State(state): State<AdminState>,
    path: Result<UrlPath<String>, PathRejection>,
) -> ApiResult {
    let app = app_name(path)?;
    Ok(json_ok(state.control.auth_show(&app).await?))
}

async fn auth_set(
    State(state): State<AdminState>,
    path: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let app = app_name(path)?;
    let body = json_body(body)?;
    if !body.is_object() {
        return Err(ApiError::bad_request(format!(
            "$: expected a JSON object (the authsettingsV2 resource or its properties), found {}",
            kind_of(&body)
        )));
    }
    let outcome = state.control.auth_set(&app, body).await?;
    tracing::info!(
        app,
        warnings = outcome.warnings.len(),
        "auth settings replaced via the admin API"
    );
    let value = serde_json::to_value(&outcome).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "OperationFailed",
            e.to_string(),
        )
    })?;
    Ok(json_ok(value))
}

async fn appsettings_list(
    State(state): State<AdminState>,
    path: Result<UrlPath<String>, PathRejection>,
) -> ApiResult {
    let app = app_name(path)?;
    let settings = state.control.appsettings_list(&app).await?;
    Ok(json_ok(json!({"properties": settings})))
}

async fn appsettings_set(
    State(state): State<AdminState>,
    path: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let app = app_name(path)?;
    let changes = parse_appsettings_patch(&json_body(body)?)?;
    let keys: Vec<&str> = changes.keys().map(String::as_str).collect();
    // Names only: values may be secrets.
    tracing::info!(app, settings = ?keys, "app settings changed via the admin API");
    let settings = state.control.appsettings_set(&app, changes).await?;
    Ok(json_ok(json!({"properties": settings})))
}

/// `{"properties": {K: "V" | null}}` → changes; other top-level members (`id`, `name`, `kind`…)
/// are ignored, as ARM does.
fn parse_appsettings_patch(body: &Value) -> Result<BTreeMap<String, Option<String>>, ApiError> {
    let Value::Object(top) = body else {
        return Err(ApiError::bad_request(format!(
            "$: expected an object like {{\"properties\": {{\"NAME\": \"value\"}}}}, found {}",
            kind_of(body)
        )));
    };
    let properties: &Map<String, Value> = match top.get("properties") {
        Some(Value::Object(p)) => p,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "$.properties: expected an object of setting names to strings or null, found {}",
                kind_of(other)
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "$.properties: missing (send {\"properties\": {\"NAME\": \"value\" or null}})",
            ));
        }
    };
    let mut changes = BTreeMap::new();
    for (name, value) in properties {
        let at = json_path_member("$.properties", name);
        if let Err(why) = check_setting_name(name) {
            return Err(ApiError::bad_request(format!(
                "{at}: invalid setting name {name:?}: {why}"
            )));
        }
        let value = match value {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => {
                return Err(ApiError::bad_request(format!(
                    "{at}: expected a string or null, found {}",
                    kind_of(other)
                )));
            }
        };
        changes.insert(name.clone(), value);
    }
    Ok(changes)
}

/// App setting names become environment variable names: non-empty, no `=`, no NUL.
pub fn check_setting_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("a setting name must not be empty")
    } else if name.contains('=') {
        Err("a setting name must not contain '='")
    } else if name.contains('\0') {
        Err("a setting name must not contain NUL")
    } else {
        Ok(())
    }
}

fn json_path_member(parent: &str, key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{}]", Value::String(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:41234",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:9000",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:80",
            "0.0.0.0:80",
            "[::2]:80",
            "127.0.0.1:",
            "127.0.0.1:abc",
            "[::1]x",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn json_paths() {
        assert_eq!(
            json_path_member("$.properties", "FOO_1"),
            "$.properties.FOO_1"
        );
        assert_eq!(
            json_path_member("$.properties", "A=B"),
            "$.properties[\"A=B\"]"
        );
        assert_eq!(json_path_member("$.properties", ""), "$.properties[\"\"]");
    }
}
