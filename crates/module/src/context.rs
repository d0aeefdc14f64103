//! What the first stage of the pipeline works out about a request, for the later stages and the
//! routes: the site, the forwarding facts, whether the path is excluded, whether it is a CORS
//! preflight; and whether the client is a browser.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap, header};

use crate::proxy::Forwarded;
use crate::site::Site;

/// Facts about the request the later stages use.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    /// The site this request is for (see [`crate::site`]).
    pub(crate) site: Site,
    pub(crate) forwarded: Forwarded,
    pub(crate) excluded: bool,
    pub(crate) preflight: bool,
}

/// Set by forward-auth on each request before the pipeline: whether the TCP peer is a
/// configured trusted proxy, whose `X-Forwarded-Host` / `-Proto` then name the site (untrusted:
/// they are ignored, whatever `httpSettings.forwardProxy` says). Only code in this process can
/// set it, never a client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrontProxy {
    pub(crate) trusted: bool,
}

/// The site the strip stage worked out. It always runs first in [`crate::EasyAuthLayer`], so a
/// missing context only means a stage was mounted on its own: refuse rather than guess.
pub(crate) fn site_of(extensions: &Extensions) -> Option<&Site> {
    extensions.get::<RequestContext>().map(|c| &c.site)
}

/// Browsers get redirects; other clients get 401 (App Service decides by User-Agent).
pub(crate) fn is_browser(headers: &HeaderMap) -> bool {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let xhr = headers
        .get("x-requested-with")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"));
    ua.contains("Mozilla/") && !xhr
}

/// The address the request came from (loopback when the server recorded none).
pub(crate) fn peer(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}
