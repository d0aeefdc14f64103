//! One structured log line per request: method, path (never the query string, which can carry
//! codes), status, duration, and what the handler reported: tenant, client, grant, outcome.
//! Handlers report through a response extension, so no secret or token can reach the log.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// What a handler tells the log about the request it served.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogFields {
    pub(crate) tenant: Option<String>,
    pub(crate) client: Option<String>,
    pub(crate) grant: Option<&'static str>,
}

pub(crate) async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let fields = response
        .extensions()
        .get::<LogFields>()
        .cloned()
        .unwrap_or_default();
    let outcome = match response.extensions().get::<Outcome>() {
        Some(Outcome::Error(code)) => format!("AADSTS{code}"),
        Some(Outcome::Graph(code)) => (*code).to_owned(),
        None if response.status().is_server_error() => "error".to_owned(),
        None => "ok".to_owned(),
    };
    tracing::info!(
        target: "easyauth::idp::request",
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        tenant = fields.tenant.as_deref().unwrap_or("-"),
        client = fields.client.as_deref().unwrap_or("-"),
        grant = fields.grant.unwrap_or("-"),
        outcome = %outcome,
    );
    response
}

/// What a request ended in, recorded for the one log line per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Error(u32),
    /// A Microsoft Graph error code (`Request_ResourceNotFound`, ...).
    Graph(&'static str),
}
