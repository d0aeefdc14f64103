//! The per-request pipeline as small stages, each with one concern:
//!
//! `strip` (spoofable headers out, request context in) → `routes` (`/.auth/*`) → `identify`
//! (cookie | X-ZUMO-AUTH | bearer) → `authorize` (403 rules, CSRF, the unauthenticated action)
//! → `inject` (principal and token headers) → the app.
//!
//! [`EasyAuthLayer`] runs them in order inside one tower service, so a Rust app can embed the
//! module in-process; the reverse proxy is the same service in front of [`crate::Upstream`]
//! ([`crate::ProxyStack`]). One service rather than a layer per stage: each
//! `axum::middleware::from_fn` layer boxes a future and a service and clones the rest of the
//! stack on every request, which was most of the module's own cost per proxied request.

use std::convert::Infallible;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service};

use crate::context::{FrontProxy, RequestContext, is_browser, peer, site_of};
use crate::headers::{apply_connection, strip_front_end, strip_other_upgrades, strip_reserved};
use crate::identity::{CredentialError, Identity};
use crate::metrics::{Outcome, RefusedFor, UpstreamFailure};
use crate::module::Module;
use crate::paths::is_excluded;
use crate::provider::ProviderKind;
use crate::proxy::{Forwarded, forwarded_for};
use crate::refusal::{ReasonCode, Refusal};
use crate::respond::{bad_request, refuse, store_unavailable, unauthorized};
use crate::settings::{Action, ForwardTrust};
use crate::site::Site;
use crate::zumo::ZumoToken;

/// The whole module as one layer.
#[derive(Debug, Clone)]
pub struct EasyAuthLayer {
    module: Arc<Module>,
}

impl EasyAuthLayer {
    /// The layer that puts `module` in front of a service.
    pub fn new(module: Arc<Module>) -> EasyAuthLayer {
        EasyAuthLayer { module }
    }
}

/// A service the module's stack (or anything in front of an app) is boxed as.
pub type BoxedService = BoxCloneSyncService<Request, Response, Infallible>;

impl<S> Layer<S> for EasyAuthLayer
where
    S: tower::Service<Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Service = BoxedService;

    fn layer(&self, inner: S) -> BoxedService {
        BoxCloneSyncService::new(EasyAuthService {
            configured_site: self.module.settings.configured_site().map(Arc::new),
            module: self.module.clone(),
            inner,
        })
    }
}

/// The stages in front of `inner`.
#[derive(Debug, Clone)]
struct EasyAuthService<S> {
    module: Arc<Module>,
    /// The settings' public URL as a site, worked out once rather than per request.
    configured_site: Option<Arc<Site>>,
    inner: S,
}

impl<S> Service<Request> for EasyAuthService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone takes the place of the service that was polled ready, which goes with
        // this request (tower's usual hand-over).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let module = self.module.clone();
        let configured = self.configured_site.clone();
        Box::pin(async move { Ok(run(&module, configured.as_deref(), request, inner).await) })
    }
}

/// One request through every stage, counted when the module has metrics.
async fn run<S>(m: &Arc<Module>, configured: Option<&Site>, request: Request, inner: S) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let Some(metrics) = m.metrics.as_deref() else {
        return serve(m, configured, request, inner).await.0;
    };
    let _in_flight = metrics.in_flight();
    let started = Instant::now();
    let (response, outcome) = serve(m, configured, request, inner).await;
    // Only the module's own answers carry a reason; an app's response never does.
    let reason = match outcome {
        Outcome::Passed | Outcome::Anonymous => None,
        _ => response.extensions().get::<RefusedFor>().map(|r| r.0),
    };
    metrics.request(outcome, reason, started);
    response
}

/// Every stage; the answer and what the module did.
async fn serve<S>(
    m: &Module,
    configured: Option<&Site>,
    mut request: Request,
    inner: S,
) -> (Response, Outcome)
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let own_scheme = match strip(m, configured, &mut request) {
        ControlFlow::Continue(scheme) => scheme,
        ControlFlow::Break(response) => {
            let outcome = Outcome::of_refusal(response.status());
            return (response, outcome);
        }
    };
    let (mut response, outcome) = if is_route(m, &request) {
        (
            crate::routes::handle(m, request).await,
            Outcome::AuthEndpoint,
        )
    } else {
        guard(m, request, inner).await
    };
    // App Service sends HSTS on every https response (middleware 1.4.13).
    if own_scheme == "https"
        && !response
            .headers()
            .contains_key(header::STRICT_TRANSPORT_SECURITY)
    {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    (response, outcome)
}

/// Stages 3 to 5 and the app.
async fn guard<S>(m: &Module, request: Request, mut inner: S) -> (Response, Outcome)
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let request = match identify(m, request).await {
        Ok(request) => request,
        Err(response) => {
            let outcome = Outcome::of_refusal(response.status());
            return (response, outcome);
        }
    };
    let mut request = match authorize(m, request).await {
        Ok(request) => request,
        Err(response) => {
            let outcome = Outcome::of_refusal(response.status());
            return (response, outcome);
        }
    };
    let outcome = if inject(m, &mut request) {
        Outcome::Passed
    } else {
        Outcome::Anonymous
    };
    let Some(metrics) = m.metrics.as_deref() else {
        return match inner.call(request).await {
            Ok(response) => (response, outcome),
            Err(never) => match never {},
        };
    };
    let started = Instant::now();
    let response = match inner.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    metrics.upstream(
        started.elapsed(),
        response.extensions().get::<UpstreamFailure>().copied(),
    );
    (response, outcome)
}

static NO_PROXY: ForwardTrust = ForwardTrust::NoProxy;
static STANDARD: ForwardTrust = ForwardTrust::Standard;

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').next().unwrap_or(v).trim())
        .filter(|v| !v.is_empty())
}

/// Stage 1: remove every client-supplied identity/token header; work out scheme and host.
/// `configured` is the settings' public URL as a site. `Ok` carries the module's own scheme for
/// the response (HSTS); `Err` is the answer.
fn strip(
    m: &Module,
    configured: Option<&Site>,
    request: &mut Request,
) -> ControlFlow<Response, &'static str> {
    let zumo = request
        .headers()
        .get("x-zumo-auth")
        .and_then(|v| v.to_str().ok())
        .map(|v| ZumoToken(v.to_owned()));
    apply_connection(request.headers_mut());
    if strip_other_upgrades(request.headers_mut()) {
        tracing::info!(target: "easyauth::module", path = %request.uri().path(), "a protocol upgrade other than WebSocket was removed");
    }
    let s = &m.settings;
    // Forward-auth decides per connection whether the peer is a trusted front proxy.
    let forward = match request.extensions_mut().remove::<FrontProxy>() {
        None => &s.forward,
        Some(FrontProxy { trusted: false }) => &NO_PROXY,
        Some(FrontProxy { trusted: true }) if s.forward == ForwardTrust::NoProxy => &STANDARD,
        Some(FrontProxy { trusted: true }) => &s.forward,
    };
    strip_front_end(request.headers_mut(), *forward != ForwardTrust::NoProxy);
    let removed = strip_reserved(request.headers_mut());
    if let Some(zumo) = zumo {
        request.extensions_mut().insert(zumo);
    }
    if removed > 0 {
        tracing::info!(target: "easyauth::module", removed, path = %request.uri().path(), "client-supplied X-MS-* / X-ZUMO-AUTH headers removed");
    }
    let headers = request.headers();
    // The site: a configured public URL, else the host this request came to; a trusted forward
    // proxy may name another (`X-Forwarded-Host` / `-Proto`, or the custom headers).
    let direct = match configured {
        Some(site) => Some(site.clone()),
        None => Site::of_request(s.scheme, request.uri(), headers),
    };
    let own_scheme = direct.as_ref().map_or(s.scheme, |d| d.scheme);
    let (forwarded_proto, forwarded_host) = match forward {
        ForwardTrust::NoProxy => (None, None),
        ForwardTrust::Standard => (
            header_str(headers, "x-forwarded-proto"),
            header_str(headers, "x-forwarded-host"),
        ),
        ForwardTrust::Custom {
            host_header,
            proto_header,
        } => (
            proto_header.as_deref().and_then(|h| header_str(headers, h)),
            host_header.as_deref().and_then(|h| header_str(headers, h)),
        ),
    };
    let trust_chain = *forward != ForwardTrust::NoProxy;
    let scheme = match forwarded_proto {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(_) => "http",
        None => own_scheme,
    };
    let site = match (forwarded_host, direct) {
        (Some(h), _) => Site::from_authority(scheme, h),
        (None, Some(d)) => Some(Site {
            scheme,
            host: d.host,
        }),
        (None, None) => None,
    };
    let Some(site) = site else {
        tracing::warn!(target: "easyauth::module", status = 400, path = %request.uri().path(), "request refused: no well-formed Host (host[:port])");
        return ControlFlow::Break(bad_request(
            m,
            &Refusal::new(
                ReasonCode::NoSite,
                "the request has no well-formed Host header (host[:port])",
            ),
        ));
    };
    // requireHttps: App Service sends http requests to https. Here that applies when the site
    // itself is https; a plain-http site (local development) is left alone.
    if s.require_https && site.scheme == "http" && own_scheme == "https" {
        let target = format!(
            "https://{}{}",
            site.host,
            request.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
        if let Ok(v) = HeaderValue::from_str(&target) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return ControlFlow::Break(r);
    }
    let forwarded = Forwarded {
        for_chain: forwarded_for(headers, peer(request), trust_chain),
        proto: site.scheme,
        host: site.host.clone(),
    };
    let preflight = request.method() == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let excluded = is_excluded(&s.exclusions, request.uri().path());
    request.extensions_mut().insert(RequestContext {
        site,
        forwarded,
        excluded,
        preflight,
    });
    ControlFlow::Continue(own_scheme)
}

/// Stage 2: the module's own routes under the API prefix (and a custom logout path).
pub(crate) fn is_route(m: &Module, request: &Request) -> bool {
    let path = request.uri().path();
    let prefix = m.settings.api_prefix.as_str();
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
        || m.settings.logout_path.as_deref() == Some(path)
}

/// `(excluded, preflight)` as the strip stage worked them out.
fn flags(request: &Request) -> (bool, bool) {
    request
        .extensions()
        .get::<RequestContext>()
        .map_or((false, false), |c| (c.excluded, c.preflight))
}

/// Stage 3: who is calling. `Err` is the answer (401, or 400 without the first stage).
async fn identify(m: &Module, mut request: Request) -> Result<Request, Response> {
    let (excluded, preflight) = flags(&request);
    if preflight {
        request.extensions_mut().insert(Identity::Anonymous);
        return Ok(request);
    }
    let Some(site) = site_of(request.extensions()) else {
        return Err(bad_request(
            m,
            &Refusal::new(
                ReasonCode::NoSite,
                "the request did not pass the module's first stage",
            ),
        ));
    };
    let zumo = request
        .extensions()
        .get::<ZumoToken>()
        .map(|z| z.0.as_str());
    let identified = m.identify(site, request.headers(), zumo).await;
    match identified {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            Ok(request)
        }
        Err(e) if excluded => {
            tracing::info!(target: "easyauth::module", reason = %e, path = %request.uri().path(), "credential ignored on an excluded path");
            request.extensions_mut().insert(Identity::Anonymous);
            Ok(request)
        }
        Err(CredentialError::SessionStore(e)) => {
            Err(finish_body(&request, store_unavailable(m, &e)))
        }
        Err(e) => {
            tracing::warn!(target: "easyauth::module", status = 401, reason = %e, path = %request.uri().path(), "request refused");
            let response = unauthorized(m, site_of(request.extensions()), &Refusal::from(&e)).await;
            Err(finish_body(&request, response))
        }
    }
}

/// Stage 4: built-in authorization, the CSRF rule, and the unauthenticated action. `Err` is
/// the answer that stops the request.
async fn authorize(m: &Module, request: Request) -> Result<Request, Response> {
    let (excluded, preflight) = flags(&request);
    if preflight {
        return Ok(request);
    }
    // The body is not `Sync`: only the head is borrowed across the await.
    let (parts, body) = request.into_parts();
    let identity = parts
        .extensions
        .get::<Identity>()
        .unwrap_or(&Identity::Anonymous);
    match refusal(m, identity, excluded, &parts).await {
        Some(response) => Err(finish_body(&Request::from_parts(parts, body), response)),
        None => Ok(Request::from_parts(parts, body)),
    }
}

/// The response that stops this request, if any: a 403 rule, the CSRF rule, or the
/// unauthenticated action.
async fn refusal(
    m: &Module,
    identity: &Identity,
    excluded: bool,
    request: &Parts,
) -> Option<Response> {
    let path = request.uri.path();
    let site = site_of(&request.extensions);
    if let (Some(alias), Some(claims)) = (identity.provider(), identity.claims())
        && let Some(provider) = m.provider(alias)
        && provider.settings.kind == ProviderKind::Aad
    {
        let is_access_token = matches!(identity, Identity::Bearer { .. });
        if let Err(denial) = provider
            .settings
            .authorization
            .check(claims, is_access_token)
        {
            tracing::warn!(target: "easyauth::module", status = 403, reason = %denial, path = %path, "request refused");
            return Some(refuse(m, StatusCode::FORBIDDEN, &Refusal::from(&denial)));
        }
    }
    if let Identity::Session {
        via_cookie: true, ..
    } = identity
        && let Err(reason) = csrf_check(m, site, request)
    {
        tracing::warn!(target: "easyauth::module", status = 403, reason = %reason, path = %path, "request refused");
        return Some(refuse(
            m,
            StatusCode::FORBIDDEN,
            &Refusal::new(ReasonCode::CrossSiteRequest, reason),
        ));
    }
    if !matches!(identity, Identity::Anonymous) || excluded {
        return None;
    }
    let required = |reason: &str| Refusal::new(ReasonCode::AuthenticationRequired, reason);
    let reason = match m.settings.action {
        Action::AllowAnonymous => return None,
        Action::RedirectToLoginPage if is_browser(&request.headers) => {
            return Some(redirect_to_login(m, request));
        }
        Action::RedirectToLoginPage => "authentication is required",
        Action::Return401 => "authentication is required (Return401)",
        Action::Return403 => {
            return Some(refuse(
                m,
                StatusCode::FORBIDDEN,
                &required("authentication is required (Return403)"),
            ));
        }
        Action::Return404 => {
            return Some(refuse(
                m,
                StatusCode::NOT_FOUND,
                &required("authentication is required (Return404)"),
            ));
        }
    };
    Some(unauthorized(m, site, &required(reason)).await)
}

/// A refusal leaves the request body unread; hyper then closes an HTTP/1 connection, so say so
/// (`Connection: close`) instead of closing silently. Reading the body first would deadlock with
/// clients that wait for an answer before sending it (`Expect: 100-continue`).
fn finish_body(request: &Request, mut response: Response) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if has_body && request.version() < axum::http::Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Stage 5: the headers App Service gives the app. Returns whether the caller is signed in.
fn inject(m: &Module, request: &mut Request) -> bool {
    let identity = request.extensions().get::<Identity>();
    let signed_in = identity.is_some_and(|i| !matches!(i, Identity::Anonymous));
    if let Some(injected) = identity.and_then(|identity| m.injected_headers(identity)) {
        let headers = request.headers_mut();
        for (name, value) in injected.iter() {
            headers.insert(name.clone(), value.clone());
        }
    }
    signed_in
}

/// App Service's CSRF rule: a cookie-authenticated, state-changing request from a browser needs
/// an `Origin` (or `Referer`) that is this site or an allowed external redirect origin.
fn csrf_check(m: &Module, site: Option<&Site>, request: &Parts) -> Result<(), String> {
    if matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS)
        || !is_browser(&request.headers)
    {
        return Ok(());
    }
    let source =
        header_str(&request.headers, "origin").or_else(|| header_str(&request.headers, "referer"));
    let Some(source) = source.and_then(|s| url::Url::parse(s).ok()) else {
        return Err(format!(
            "{} with the session cookie from a browser without Origin or Referer (CSRF rule)",
            request.method
        ));
    };
    let own = site.map(Site::origin);
    let allowed = crate::redirect::Origin::from_url(&source).is_some_and(|o| {
        own.as_ref() == Some(&o)
            || m.settings
                .allowed_external_redirects
                .iter()
                .filter_map(|e| url::Url::parse(e).ok())
                .any(|e| crate::redirect::Origin::from_url(&e).as_ref() == Some(&o))
    });
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "{} with the session cookie from origin {} (CSRF rule): add it to login.allowedExternalRedirectUrls",
            request.method,
            source.origin().ascii_serialization()
        ))
    }
}

fn redirect_to_login(m: &Module, request: &Parts) -> Response {
    let Some(provider) = m.default_provider() else {
        return refuse(
            m,
            StatusCode::UNAUTHORIZED,
            &Refusal::new(
                ReasonCode::UnknownProvider,
                "no identity provider is configured",
            ),
        );
    };
    let target = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!(
        "{}/login/{}?post_login_redirect_uri={}",
        m.settings.api_prefix,
        provider.alias(),
        percent_encoding::utf8_percent_encode(target, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if m.metrics.is_some() {
        r.extensions_mut()
            .insert(RefusedFor(ReasonCode::AuthenticationRequired));
    }
    r
}
