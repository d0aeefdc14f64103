//! Microsoft Graph v1.0 for the directory, as `az ad …` and `az rest` call it: applications,
//! service principals, delegated permission grants, users and `/me`. Every route checks a Graph
//! token this tenant issued ([`authenticate`]) and the permission the operation needs
//! ([`Call::require`]); writes are validated first, then stored and swapped into the running
//! identity provider under one lock, so a refused write changes nothing and concurrent writes
//! do not lose each other.

mod applications;
mod error;
mod grants;
pub(crate) mod me;
pub mod odata;
mod role_assignments;
mod service_principals;
mod users;
mod validate;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

pub(crate) use error::GraphError;
use odata::Query;

use crate::Idp;
use crate::directory::{Directory, GRAPH_APP_ID, GRAPH_RESOURCE};
use crate::util::{new_guid, now};

/// The largest request body a Graph route reads (an application with many scopes and
/// certificates is far below it).
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;

/// Who is calling, from a valid Graph token.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// An app-only token: the client's appId and its Graph app roles (`roles`).
    App { roles: Vec<String> },
    /// A delegated token of an enabled user of this tenant.
    User,
}

/// The parts of Graph a permission covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    /// Applications and service principals.
    Applications,
    Grants,
    Users,
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// The app roles that allow `access` to `area` for an app-only token.
fn roles_for(area: Area, access: Access) -> &'static [&'static str] {
    match (area, access) {
        (Area::Applications, Access::Read) => &[
            "Application.Read.All",
            "Application.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        (Area::Applications, Access::Write) => {
            &["Application.ReadWrite.All", "Directory.ReadWrite.All"]
        }
        (Area::Grants, Access::Read) => &[
            "DelegatedPermissionGrant.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
            "Application.Read.All",
            "Application.ReadWrite.All",
        ],
        (Area::Grants, Access::Write) => &[
            "DelegatedPermissionGrant.ReadWrite.All",
            "Directory.ReadWrite.All",
        ],
        (Area::Users, Access::Read) => &[
            "User.Read.All",
            "User.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        (Area::Users, Access::Write) => &["User.ReadWrite.All", "Directory.ReadWrite.All"],
    }
}

/// One Graph request being served.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) idp: Arc<Idp>,
    pub(crate) dir: Arc<Directory>,
    pub(crate) caller: Caller,
    pub(crate) query: Query,
    body: Option<Value>,
}

impl Call {
    /// Refuses (403) unless the caller may do `access` on `area`. A delegated token of a user of
    /// this tenant may do anything: on a local emulator every user acts as the tenant's
    /// administrator would.
    pub(crate) fn require(&self, area: Area, access: Access) -> Result<(), GraphError> {
        match &self.caller {
            Caller::User => Ok(()),
            Caller::App { roles } => {
                let allowed = roles_for(area, access);
                if roles
                    .iter()
                    .any(|r| allowed.iter().any(|a| a.eq_ignore_ascii_case(r)))
                {
                    Ok(())
                } else {
                    Err(GraphError::Denied)
                }
            }
        }
    }

    /// The JSON object the request carried.
    pub(crate) fn body(&self) -> Result<&Map<String, Value>, GraphError> {
        match &self.body {
            Some(Value::Object(o)) => Ok(o),
            Some(_) => Err(GraphError::invalid_body("", "expected a JSON object")),
            None => Err(GraphError::invalid_body("", "the request has no body")),
        }
    }

    /// The body as `T`; errors name the JSON path of the bad value.
    pub(crate) fn body_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, GraphError> {
        let body = Value::Object(self.body()?.clone());
        serde_path_to_error::deserialize(body).map_err(|e| {
            let path = e.path().to_string();
            GraphError::invalid_body(&path, e.into_inner())
        })
    }

    /// `<base>/v1.0/$metadata#<what>`
    pub(crate) fn context(&self, what: &str) -> String {
        format!("{}/v1.0/$metadata#{what}", self.idp.config.public_url)
    }

    /// A list answer: `@odata.context` and `value`, with `$top` and `$select` applied.
    pub(crate) fn list(&self, what: &str, items: Vec<Map<String, Value>>) -> Response {
        let mut body = Map::new();
        body.insert("@odata.context".into(), Value::String(self.context(what)));
        body.insert("value".into(), Value::Array(self.query.page(items)));
        json_response(StatusCode::OK, Value::Object(body))
    }

    /// One object: `@odata.context` first, then the object with `$select` applied.
    pub(crate) fn entity(
        &self,
        status: StatusCode,
        what: &str,
        object: Map<String, Value>,
    ) -> Response {
        let mut body = Map::new();
        body.insert(
            "@odata.context".into(),
            Value::String(self.context(&format!("{what}/$entity"))),
        );
        if let Value::Object(o) = self.query.project(object) {
            body.extend(o);
        }
        json_response(status, Value::Object(body))
    }
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A Graph access token this tenant issued, read from `Authorization: Bearer`: its claims, or why
/// it is not acceptable (the text Graph's 401 carries).
pub(crate) fn graph_token(
    idp: &Idp,
    headers: &HeaderMap,
) -> Result<Map<String, Value>, &'static str> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("Access token is empty.")?;
    let claims = idp
        .keys()
        .verify_own(token)
        .map_err(|_| "Access token validation failure.")?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let iss = text("iss").unwrap_or_default();
    if iss != idp.issuer_v1 && iss != idp.issuer_v2 {
        return Err("Access token validation failure. Invalid issuer.");
    }
    if !matches!(text("aud"), Some(GRAPH_RESOURCE) | Some(GRAPH_APP_ID)) {
        return Err("Access token validation failure. Invalid audience.");
    }
    if claims.get("exp").and_then(Value::as_i64).unwrap_or(0) <= now() {
        return Err("Lifetime validation failed, the token is expired.");
    }
    Ok(claims)
}

/// The caller of a directory route: an app-only token, or a delegated token of an enabled user
/// of this tenant (403 for a user who is gone or disabled).
fn authenticate(idp: &Idp, dir: &Directory, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let claims = graph_token(idp, headers).map_err(|m| GraphError::InvalidToken(m.into()))?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("scp").is_some() {
        text("oid")
            .and_then(|oid| dir.user(oid))
            .filter(|u| u.account_enabled)
            .ok_or(GraphError::Denied)?;
        return Ok(Caller::User);
    }
    let roles = claims
        .get("roles")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Caller::App { roles })
}

/// `/v1.0/<anything>`: the directory routes, dispatched by path and method.
pub(crate) async fn serve(
    State(idp): State<Arc<Idp>>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = new_guid();
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| crate::util::clip(v, 100))
        .unwrap_or_default();
    let result = handle(&idp, &method, uri.path(), query.as_deref(), &headers, body).await;
    let mut response = match result {
        Ok(r) => r,
        Err(e) => e.response(&request_id, &client_request_id, &idp.config.public_url),
    };
    for (name, value) in [
        ("request-id", request_id.as_str()),
        ("client-request-id", client_request_id.as_str()),
    ] {
        if let Ok(v) = HeaderValue::from_str(value)
            && !value.is_empty()
        {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

async fn handle(
    idp: &Arc<Idp>,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, GraphError> {
    let rest = path.strip_prefix("/v1.0/").unwrap_or_default();
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    // The route is known before the caller is: a typo is a 400 whoever asks.
    let route = Route::parse(&segments)?;
    if route == Route::Me {
        return me::me(idp, method.as_str(), headers, raw_query);
    }
    let dir = idp.directory();
    let caller = authenticate(idp, &dir, headers)?;
    let query = Query::parse(raw_query)?;
    let body = read_body(method, body).await?;
    let call = Call {
        idp: idp.clone(),
        dir,
        caller,
        query,
        body,
    };
    let m = method.as_str();
    match route {
        // Answered above, before the directory's caller checks.
        Route::Me => Err(method_not_allowed(m)),
        Route::Applications(r) => applications::serve(&call, m, r).await,
        Route::ServicePrincipals(id) => service_principals::serve(&call, m, id).await,
        Route::RoleAssignments {
            service_principal,
            relation,
            id,
        } => role_assignments::serve(&call, m, &service_principal, relation, id).await,
        Route::Grants(id) => grants::serve(&call, m, id).await,
        Route::Users(id) => users::serve(&call, m, id).await,
    }
}

async fn read_body(method: &Method, body: Body) -> Result<Option<Value>, GraphError> {
    if !matches!(*method, Method::POST | Method::PATCH | Method::PUT) {
        return Ok(None);
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| GraphError::TooLarge(MAX_BODY_BYTES))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| GraphError::invalid_body("", format!("not valid JSON ({e})")))
}

/// Which side of an app role assignment a service principal route looks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    /// The service principal is the resource whose role is assigned.
    AssignedTo,
    /// The service principal is the one the role is assigned to.
    Assignments,
}

/// How a request addresses an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppRoute {
    List,
    /// `/applications/{id}` (object id) or `/applications(appId='…')`, and an optional action.
    One {
        key: AppKey,
        action: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppKey {
    ObjectId(String),
    AppId(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Me,
    Applications(AppRoute),
    ServicePrincipals(Option<String>),
    /// `/servicePrincipals/{id}/appRoleAssignedTo[/{assignmentId}]` (roles of this resource
    /// given to others) or `.../appRoleAssignments[/{assignmentId}]` (roles it was given).
    RoleAssignments {
        service_principal: String,
        relation: Relation,
        id: Option<String>,
    },
    Grants(Option<String>),
    Users(Option<String>),
}

impl Route {
    fn parse(segments: &[String]) -> Result<Route, GraphError> {
        let mut it = segments.iter().map(String::as_str);
        let first = it.next().unwrap_or_default();
        let second = it.next();
        let third = it.next();
        let fourth = it.next();
        if let Some(extra) = it.next() {
            return Err(GraphError::NoSegment(crate::util::clip(extra, 100)));
        }
        if first == "servicePrincipals"
            && let (Some(sp), Some(relation)) = (second, third)
        {
            let relation = match relation {
                "appRoleAssignedTo" => Relation::AssignedTo,
                "appRoleAssignments" => Relation::Assignments,
                other => return Err(GraphError::NoSegment(crate::util::clip(other, 100))),
            };
            return Ok(Route::RoleAssignments {
                service_principal: sp.to_owned(),
                relation,
                id: fourth.map(str::to_owned),
            });
        }
        if let Some(extra) = fourth {
            return Err(GraphError::NoSegment(crate::util::clip(extra, 100)));
        }
        let only = |r: Route| match third {
            Some(s) => Err(GraphError::NoSegment(crate::util::clip(s, 100))),
            None => Ok(r),
        };
        if let Some(app_id) = first
            .strip_prefix("applications(appId='")
            .and_then(|r| r.strip_suffix("')"))
        {
            if let Some(extra) = third {
                return Err(GraphError::NoSegment(crate::util::clip(extra, 100)));
            }
            return Ok(Route::Applications(AppRoute::One {
                key: AppKey::AppId(app_id.to_owned()),
                action: second.map(str::to_owned),
            }));
        }
        match first {
            "me" if second.is_none() => Ok(Route::Me),
            "applications" => match second {
                None => Ok(Route::Applications(AppRoute::List)),
                Some(id) => Ok(Route::Applications(AppRoute::One {
                    key: AppKey::ObjectId(id.to_owned()),
                    action: third.map(str::to_owned),
                })),
            },
            "servicePrincipals" => only(Route::ServicePrincipals(second.map(str::to_owned))),
            "oauth2PermissionGrants" => only(Route::Grants(second.map(str::to_owned))),
            "users" => only(Route::Users(second.map(str::to_owned))),
            other => Err(GraphError::NoSegment(crate::util::clip(other, 100))),
        }
    }
}

/// The answer to a method a route does not serve.
pub(crate) fn method_not_allowed(method: &str) -> GraphError {
    GraphError::MethodNotAllowed(crate::util::clip(method, 16))
}

/// Serialises directory writes (shared with consent and redirect-URI writes, which change the
/// same snapshot): each write reads the current snapshot under the lock.
pub(crate) async fn write_lock(idp: &Idp) -> tokio::sync::MutexGuard<'_, ()> {
    idp.consent_lock.lock().await
}

/// Serialises a directory object for the store.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, GraphError> {
    serde_json::to_string(value).map_err(|e| GraphError::Internal(e.to_string()))
}

/// An RFC 3339 timestamp (UTC, whole seconds) `offset` seconds from now.
pub(crate) fn timestamp(offset: i64) -> String {
    let t = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        + time::Duration::seconds(offset);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
