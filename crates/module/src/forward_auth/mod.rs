//! Forward-auth: the module as the authentication service of a reverse proxy the site already
//! runs (nginx `auth_request`, Caddy `forward_auth`, Traefik ForwardAuth, Envoy `ext_authz`).
//!
//! `easyauth forward-auth` serves the module's own `/.auth/*` routes (the front proxy sends
//! `/.auth/` to it, so sign-in happens on the site's host) and one check endpoint per proxy
//! style under `<apiPrefix>/forward/`. A check rebuilds the original request the proxy
//! describes and runs it through the same pipeline `easyauth proxy` runs (strip, identify,
//! authorize, inject); where the proxy would forward to the app, the check answers 200 with the
//! injected `X-MS-*` headers for the proxy to copy. Each style then shapes refusals the way its
//! proxy needs (nginx: only 2xx, 401 and 403).
//!
//! `X-Forwarded-*` / `X-Original-*` are believed only from a configured trusted proxy
//! ([`TrustedProxies`]); from any other peer they are ignored.

mod answer;
mod original;
mod style;
mod trust;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, ServiceExt};

pub use trust::{ProxyNet, ProxyNetError, TrustedProxies};

use crate::build::{BuildError, Environment, build};
use crate::config::AuthSettings;
use crate::context::{FrontProxy, peer};
use crate::headers::is_reserved;
use crate::module::Module;
use crate::pipeline::{BoxedService, EasyAuthLayer, is_route};
use crate::refusal::{ReasonCode, Refusal};
use crate::respond::refuse;
use original::Original;
use style::{STYLES, Style};

/// The module as a forward-auth service: its routes and the check endpoints.
#[derive(Debug, Clone)]
pub struct ForwardAuth {
    module: Arc<Module>,
    trusted: Arc<TrustedProxies>,
    /// The pipeline in front of the "allow" answer (checks).
    check: BoxedService,
    /// The pipeline in front of nothing: only its routes answer (`/.auth/*`).
    routes: BoxedService,
}

impl ForwardAuth {
    /// Builds the module from `settings` and `env` and serves it as a forward-auth service that
    /// believes forwarding headers from `trusted` peers only.
    pub async fn build(
        settings: &AuthSettings,
        env: Environment,
        trusted: TrustedProxies,
    ) -> Result<ForwardAuth, BuildError> {
        let module = Arc::new(build(settings, env).await?);
        Ok(ForwardAuth::new(module, trusted))
    }

    /// `module` as a forward-auth service.
    pub fn new(module: Arc<Module>, trusted: TrustedProxies) -> ForwardAuth {
        let layer = EasyAuthLayer::new(module.clone());
        // Reached only when the pipeline lets the original request through: the proxy may go
        // on, and copies the headers the inject stage put on the request (client copies were
        // stripped first).
        let allow = tower::service_fn(|request: Request| async move {
            let mut r = StatusCode::OK.into_response();
            for (name, value) in request.headers() {
                if is_reserved(name.as_str()) {
                    r.headers_mut().append(name.clone(), value.clone());
                }
            }
            Ok::<_, Infallible>(r)
        });
        // The routes answer every path `is_route` admits, so this is never reached.
        let nothing = tower::service_fn(|_: Request| async {
            Ok::<_, Infallible>(StatusCode::NOT_FOUND.into_response())
        });
        ForwardAuth {
            check: layer.layer(allow),
            routes: layer.layer(nothing),
            module,
            trusted: Arc::new(trusted),
        }
    }

    /// The module (its settings and providers, for banners and checks).
    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }

    /// The service to serve.
    pub fn into_service(self) -> BoxedService {
        BoxedService::new(tower::service_fn(move |request: Request| {
            let this = self.clone();
            async move { Ok::<_, Infallible>(this.handle(request).await) }
        }))
    }

    async fn handle(&self, mut request: Request) -> Response {
        let trusted = self.trusted.trusts(peer(&request));
        if let Some((style, rest)) = self.check_style(request.uri().path()) {
            let rest = rest.to_owned();
            return self.check(style, request, trusted, &rest).await;
        }
        request.extensions_mut().insert(FrontProxy { trusted });
        if is_route(&self.module, &request) {
            return oneshot(self.routes.clone(), request).await;
        }
        refuse(
            &self.module,
            StatusCode::NOT_FOUND,
            &Refusal::new(
                ReasonCode::UnknownRoute,
                format!(
                    "forward-auth serves {p}/* and the checks {p}/forward/{{nginx,caddy,traefik,envoy}}",
                    p = self.module.settings.api_prefix
                ),
            ),
        )
    }

    /// The style of a check path and, for Envoy, the original path after the prefix.
    fn check_style<'a>(&self, path: &'a str) -> Option<(Style, &'a str)> {
        let rest = path
            .strip_prefix(self.module.settings.api_prefix.as_str())?
            .strip_prefix("/forward/")?;
        STYLES.iter().find_map(|(name, style)| {
            let after = rest.strip_prefix(name)?;
            match style {
                Style::Envoy if after.is_empty() || after.starts_with('/') => Some((*style, after)),
                _ if after.is_empty() => Some((*style, after)),
                _ => None,
            }
        })
    }

    async fn check(&self, style: Style, request: Request, trusted: bool, rest: &str) -> Response {
        let m = &self.module;
        let (parts, _body) = request.into_parts();
        let from = peer_of(&parts.extensions);
        if !trusted && style != Style::Envoy && has_forwarding_headers(&parts.headers) {
            tracing::info!(target: "easyauth::module", peer = %from, "X-Forwarded-* / X-Original-* ignored: the peer is not a --trusted-proxy");
        }
        let original = match Original::of(style, &parts, trusted, rest) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(target: "easyauth::module", status = 400, reason = %e, peer = %from, "forward-auth check refused");
                let refusal = Refusal::new(ReasonCode::BadForwardedRequest, e.to_string());
                return answer::shape(m, style, answer::bad_request(m, &refusal), &parts.headers);
            }
        };
        if style == Style::Nginx
            && let Some(name) = answer::unremovable(m, &parts.headers)
        {
            tracing::warn!(target: "easyauth::module", status = 403, header = %name, peer = %from, "forward-auth check refused: a client-supplied identity header nginx would pass on");
            let refusal = Refusal::new(
                ReasonCode::BadForwardedRequest,
                format!(
                    "the request carries {name}, an identity header only easyauth may set, which nginx cannot remove before the app"
                ),
            );
            return refuse(m, StatusCode::FORBIDDEN, &refusal);
        }
        let mut synthetic = Request::new(Body::empty());
        *synthetic.method_mut() = original.method;
        *synthetic.uri_mut() = original.uri.into();
        *synthetic.headers_mut() = original_headers(&parts.headers);
        if let Some(c) = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>() {
            synthetic.extensions_mut().insert(*c);
        }
        synthetic.extensions_mut().insert(FrontProxy { trusted });
        // The module's own routes answer for themselves; a check about one lets it through
        // rather than running it (a check must not sign anyone out).
        if is_route(m, &synthetic) {
            return answer::shape(m, style, StatusCode::OK.into_response(), &parts.headers);
        }
        let response = oneshot(self.check.clone(), synthetic).await;
        answer::shape(m, style, response, &parts.headers)
    }
}

async fn oneshot(service: BoxedService, request: Request) -> Response {
    match service.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

fn peer_of(extensions: &axum::http::Extensions) -> std::net::IpAddr {
    extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip())
}

/// Headers that describe the original request (believed only from a trusted proxy).
const FORWARDING: &[&str] = &[
    "x-original-uri",
    "x-original-method",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-host",
    "x-forwarded-proto",
];

fn has_forwarding_headers(headers: &HeaderMap) -> bool {
    FORWARDING.iter().any(|h| headers.contains_key(*h))
}

/// The check request's headers as the original request's: the credentials, User-Agent,
/// Origin, Host and `X-Forwarded-Host`/`-Proto` the pipeline reads (the strip stage decides
/// whether to believe the latter); not the check's own body framing or the URI and method
/// headers already read.
fn original_headers(check: &HeaderMap) -> HeaderMap {
    let mut headers = check.clone();
    for name in [
        header::CONTENT_LENGTH.as_str(),
        header::TRANSFER_ENCODING.as_str(),
        header::EXPECT.as_str(),
        "x-original-uri",
        "x-original-method",
        "x-forwarded-uri",
        "x-forwarded-method",
    ] {
        headers.remove(name);
    }
    headers
}
