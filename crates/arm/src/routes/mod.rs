//! The HTTP surface: one dispatcher that routes by [`crate::ids::parse`], authenticates, reads a
//! bounded JSON body, and hands the request to the handler of its resource type.

pub(crate) mod config;
mod deployments;
mod groups;
mod meta;
mod plans;
mod sites;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::Arm;
use crate::error::{ArmError, ArmResult};
use crate::ids::{self, Target};

/// The largest request body read: auth settings and app settings are far smaller.
const MAX_BODY: usize = 1024 * 1024;

pub(crate) fn router(arm: Arc<Arm>) -> Router {
    Router::new().fallback(dispatch).with_state(arm)
}

/// A parsed request: method, query, and the JSON body (for writes).
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
}

impl Call {
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The JSON body, which a write must have.
    pub(crate) fn body(&self) -> ArmResult<&Value> {
        self.body.as_ref().ok_or_else(|| {
            ArmError::invalid_body("The request content was empty; a JSON body is required.")
        })
    }
}

async fn dispatch(State(arm): State<Arc<Arm>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let result = handle(&arm, request).await;
    match result {
        Ok(r) => {
            tracing::info!(target: "easyauth::arm", %method, %path, status = r.status().as_u16(), ms = started.elapsed().as_secs_f64() * 1000.0, "request");
            r
        }
        Err(e) => {
            if e.status.is_server_error() {
                tracing::error!(target: "easyauth::arm", %method, %path, status = e.status.as_u16(), code = e.code, message = %e.message, "request failed");
            } else {
                tracing::info!(target: "easyauth::arm", %method, %path, status = e.status.as_u16(), code = e.code, message = %e.message, "request refused");
            }
            e.into_response()
        }
    }
}

async fn handle(arm: &Arm, request: Request) -> ArmResult<Response> {
    let (parts, body) = request.into_parts();
    let target = ids::parse(parts.uri.path())?;
    let public = matches!(target, Target::Metadata | Target::Mirror(_));
    if !public {
        arm.authenticate(&parts.headers).await?;
    }
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .take(32)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let body = read_json(&parts.headers, body, &parts.method).await?;
    let call = Call {
        method: parts.method,
        query,
        body,
    };
    let path = parts.uri.path();
    match target {
        Target::Metadata => meta::metadata(arm),
        Target::Mirror(rest) => meta::mirror(arm, &call, &rest),
        Target::Tenants => meta::tenants(arm, &call),
        Target::Subscriptions => meta::subscriptions(arm, &call),
        Target::Subscription(s) => meta::subscription(arm, &call, &s),
        Target::Locations(s) => meta::locations(arm, &call, &s),
        Target::Providers(s, ns) => meta::providers(arm, &call, &s, ns.as_deref()),
        Target::WebAppStacks => meta::stacks(&call),
        Target::CheckName(s) => meta::check_name(arm, &call, &s).await,
        Target::GeoRegions(s) => meta::geo_regions(arm, &call, &s),
        Target::SubscriptionList(s, kind) => {
            meta::subscription_of(arm, &s)?;
            match kind {
                ids::Kind::Sites => sites::list(arm, &call, None).await,
                ids::Kind::ServerFarms => plans::list(arm, &call, None).await,
            }
        }
        Target::Groups(s) => groups::list(arm, &call, &s).await,
        Target::Group(scope) => groups::one(arm, &call, &scope).await,
        Target::GroupList(scope, kind) => {
            groups::existing(arm, &scope).await?;
            match kind {
                ids::Kind::Sites => sites::list(arm, &call, Some(&scope.group)).await,
                ids::Kind::ServerFarms => plans::list(arm, &call, Some(&scope.group)).await,
            }
        }
        Target::Plan(scope, name) => plans::one(arm, &call, &scope, &name).await,
        Target::Site(scope, name) => sites::one(arm, &call, &scope, &name).await,
        Target::SiteChild(scope, name, child) => {
            let site = sites::existing(arm, &scope, &name).await?;
            let child: Vec<&str> = child.iter().map(String::as_str).collect();
            match child.as_slice() {
                ["config", rest @ ..] => config::handle(arm, &call, site, rest).await,
                ["basicpublishingcredentialspolicies", which] => {
                    config::basic_auth_policy(arm, &call, site, which).await
                }
                ["deploymentstatus", rest @ ..] => {
                    deployments::handle(arm, &call, &site, rest.first().copied()).await
                }
                [action @ ("start" | "stop" | "restart")] => {
                    sites::action(arm, &call, site, action).await
                }
                ["publishxml"] => sites::publish_xml(arm, &call, &site),
                ["instances", ..] => sites::instances(arm, &call, &site),
                _ => Err(ArmError::unknown_type(path)),
            }
        }
    }
}

/// Reads a JSON body (PUT, PATCH, POST) of at most [`MAX_BODY`]; errors name the place.
async fn read_json(
    headers: &axum::http::HeaderMap,
    body: Body,
    method: &Method,
) -> ArmResult<Option<Value>> {
    if matches!(*method, Method::GET | Method::HEAD | Method::DELETE) {
        return Ok(None);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = || {
        ArmError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("The request content is larger than {MAX_BODY} bytes."),
        )
    };
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| too_large())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value: Value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let place = e.path().to_string();
        ArmError::invalid_body(format!(
            "The request content is not valid JSON at '{}': {}",
            if place == "." {
                "$".to_owned()
            } else {
                format!("$.{place}")
            },
            e.inner()
        ))
    })?;
    Ok(Some(value))
}

pub(crate) fn ok(value: Value) -> ArmResult<Response> {
    Ok((StatusCode::OK, axum::Json(value)).into_response())
}

pub(crate) fn created(value: Value) -> ArmResult<Response> {
    Ok((StatusCode::CREATED, axum::Json(value)).into_response())
}

pub(crate) fn not_allowed(call: &Call, what: &str) -> ArmResult<Response> {
    Err(ArmError::method_not_allowed(call.method.as_str(), what))
}

/// A string field of a JSON object, with the place named when it has another type.
pub(crate) fn opt_str<'a>(v: &'a Value, key: &str, place: &str) -> ArmResult<Option<&'a str>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ArmError::invalid_body(format!(
            "{place}.{key}: expected a string, found {}",
            kind_of(other)
        ))),
    }
}

pub(crate) fn opt_bool(v: &Value, key: &str, place: &str) -> ArmResult<Option<bool>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(ArmError::invalid_body(format!(
            "{place}.{key}: expected true or false, found {}",
            kind_of(other)
        ))),
    }
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
