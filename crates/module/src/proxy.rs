//! The reverse proxy to the app: pooled keep-alive connections, bodies streamed both ways (an
//! upload is never buffered, a server-sent event reaches the client as soon as the app writes
//! it), hop-by-hop headers dropped, WebSocket upgrades tunnelled, and the failures a platform
//! answers for the app: 502 when it cannot be reached, 504 when it does not answer in time.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::uri::{Authority, Scheme};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::headers::is_websocket_upgrade;
use crate::metrics::UpstreamFailure;

/// Headers that describe one hop, not the message (RFC 9110 section 7.6.1; `HTTP2-Settings` only makes
/// sense with an `Upgrade: h2c`, which never passes).
const HOP_BY_HOP: [HeaderName; 9] = [
    HeaderName::from_static("http2-settings"),
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Why an upstream cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Not an absolute `http://` URL.
    #[error("upstream URL {0} must be an absolute http:// URL")]
    BadUrl(String),
}

/// What the proxy says about the original request (`X-Forwarded-*`).
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// The value for `X-Forwarded-For`: the trusted chain plus the peer address.
    pub for_chain: String,
    /// The value for `X-Forwarded-Proto`.
    pub proto: &'static str,
    /// The value for `X-Forwarded-Host`.
    pub host: String,
}

/// The app behind the module.
#[derive(Debug, Clone)]
pub struct Upstream {
    scheme_authority: String,
    /// The same, parsed once: most apps live at `/`, where the request's own path and query
    /// are reused as they are.
    authority: Authority,
    base_path: String,
    client: Client<HttpConnector, Body>,
    timeout: Duration,
}

impl Upstream {
    /// The app at `url` (http only); a request that takes longer than `timeout` is a 504.
    pub fn new(url: &url::Url, timeout: Duration) -> Result<Upstream, UpstreamError> {
        if url.scheme() != "http" || url.host_str().is_none() {
            return Err(UpstreamError::BadUrl(url.to_string()));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(connector);
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        Ok(Upstream {
            scheme_authority: format!("http://{authority}"),
            authority: authority
                .parse()
                .map_err(|_| UpstreamError::BadUrl(url.to_string()))?,
            base_path: url.path().trim_end_matches('/').to_owned(),
            client,
            timeout,
        })
    }

    /// The app's URI for a request's target.
    fn target(&self, request: &Uri) -> Option<Uri> {
        match request.path_and_query() {
            Some(pq) if self.base_path.is_empty() => {
                let mut parts = axum::http::uri::Parts::default();
                parts.scheme = Some(Scheme::HTTP);
                parts.authority = Some(self.authority.clone());
                parts.path_and_query = Some(pq.clone());
                Uri::from_parts(parts).ok()
            }
            pq => format!(
                "{}{}{}",
                self.scheme_authority,
                self.base_path,
                pq.map_or("/", |p| p.as_str())
            )
            .parse()
            .ok(),
        }
    }

    /// Sends `request` (already authenticated, with the module's headers) to the app.
    pub async fn forward(
        &self,
        mut request: Request<Body>,
        forwarded: &Forwarded,
    ) -> Response<Body> {
        let Some(uri) = self.target(request.uri()) else {
            return failed(
                plain(StatusCode::BAD_REQUEST, "bad request target"),
                UpstreamFailure::BadTarget,
            );
        };
        // Only WebSocket is tunnelled; the strip stage removed every other `Upgrade`, and this
        // repeats the check so the proxy is safe on its own.
        let upgrade = is_websocket_upgrade(request.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();
        parts.uri = uri;
        // The app sees HTTP/1.1 whatever the client spoke (h2 pseudo-headers become Host).
        parts.version = axum::http::Version::HTTP_11;
        let upgrade_value = parts.headers.get(header::UPGRADE).cloned();
        strip_hop_by_hop(&mut parts.headers);
        if let Some(value) = upgrade_value.filter(|_| upgrade) {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, value);
        }
        set_forwarded(&mut parts.headers, forwarded);
        let outbound = Request::from_parts(parts, body);

        let response = match tokio::time::timeout(self.timeout, self.client.request(outbound)).await
        {
            Err(_) => {
                return failed(
                    plain(
                        StatusCode::GATEWAY_TIMEOUT,
                        "the app did not answer in time",
                    ),
                    UpstreamFailure::Timeout,
                );
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "upstream request failed");
                return failed(
                    plain(StatusCode::BAD_GATEWAY, "the app could not be reached"),
                    UpstreamFailure::Unreachable,
                );
            }
            Ok(Ok(r)) => r,
        };
        let (mut parts, body) = response.into_parts();
        if parts.status == StatusCode::SWITCHING_PROTOCOLS && client_upgrade.is_none() {
            tracing::warn!("the app switched protocols without being asked; answered 502");
            return failed(
                plain(
                    StatusCode::BAD_GATEWAY,
                    "the app switched protocols without being asked",
                ),
                UpstreamFailure::Protocol,
            );
        }
        if parts.status == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_upgrade) = client_upgrade
        {
            let upstream_upgrade = hyper::upgrade::on(Response::from_parts(parts.clone(), ()));
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client, upstream)) => {
                        let mut client = TokioIo::new(client);
                        let mut upstream = TokioIo::new(upstream);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                }
            });
            return Response::from_parts(parts, Body::empty());
        }
        strip_hop_by_hop(&mut parts.headers);
        Response::from_parts(parts, Body::new(body))
    }
}

/// Drops hop-by-hop headers, including any the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

fn set_forwarded(headers: &mut HeaderMap, f: &Forwarded) {
    let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set(headers, "x-forwarded-for", &f.for_chain);
    match f.proto {
        // The usual two without copying the value.
        "http" | "https" => {
            headers.insert(
                HeaderName::from_static("x-forwarded-proto"),
                HeaderValue::from_static(f.proto),
            );
        }
        other => set(headers, "x-forwarded-proto", other),
    }
    set(headers, "x-forwarded-host", &f.host);
}

/// The `X-Forwarded-For` chain: the client's own claims are kept only when the peer is a trusted
/// proxy (`httpSettings.forwardProxy`); otherwise only the peer address is reported.
pub(crate) fn forwarded_for(headers: &HeaderMap, peer: IpAddr, trust_client_chain: bool) -> String {
    let claimed = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match claimed {
        Some(chain) if trust_client_chain => format!("{chain}, {peer}"),
        _ => peer.to_string(),
    }
}

/// An answer the proxy gives for the app, marked with why (the metrics count it).
fn failed(mut response: Response<Body>, why: UpstreamFailure) -> Response<Body> {
    response.extensions_mut().insert(why);
    response
}

pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_connection_named_ones_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn client_forwarded_for_is_trusted_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        assert_eq!(forwarded_for(&h, peer, false), "127.0.0.1");
        assert_eq!(forwarded_for(&h, peer, true), "1.2.3.4, 127.0.0.1");
    }
}
