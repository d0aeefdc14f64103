//! The request a forward-auth check is about, as the front proxy describes it: its method and
//! URI from `X-Original-Method` / `X-Original-URI` (nginx), `X-Forwarded-Method` /
//! `X-Forwarded-Uri` (Caddy, Traefik), or the check's own method and the path after the check
//! prefix (Envoy). These come from whoever reaches the proxy, so they are bounded and checked
//! before anything is built from them; the URI must be a path on this site, exactly as a
//! `post_login_redirect_uri` must be, since it becomes one.

use axum::http::request::Parts;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, Method};

use super::style::Style;
use crate::redirect::is_local_path;

/// Longest original URI accepted (nginx's default `large_client_header_buffers` line).
pub(crate) const MAX_URI: usize = 8192;
/// Longest method name accepted.
const MAX_METHOD: usize = 32;

/// The original request's method and path-and-query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Original {
    pub(crate) method: Method,
    pub(crate) uri: PathAndQuery,
}

/// Why a check's description of the original request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OriginalError {
    /// The proxy did not say which URI the check is for.
    #[error("{header} is missing: the front proxy must send the original request's URI in it")]
    Missing { header: &'static str },
    /// A header sent more than once.
    #[error("{header} is sent more than once")]
    Repeated { header: &'static str },
    /// Longer than the limit.
    #[error("{header} is {len} bytes long; at most {max} are accepted")]
    TooLong {
        header: &'static str,
        len: usize,
        max: usize,
    },
    /// Not a method token.
    #[error("{header} is not an HTTP method")]
    Method { header: &'static str },
    /// Not an origin-form path on this site.
    #[error(
        "{header} is not a path on this site (/path?query; no //host, backslash, whitespace or control characters)"
    )]
    NotLocal { header: &'static str },
}

/// Where the original request's URI comes from, for error messages.
const ENVOY_PATH: &str = "the path after the check prefix";

impl Original {
    /// The original request of a check. `trusted`: the peer is a configured trusted proxy;
    /// otherwise the forwarding headers are ignored and the check is about `/` with the check's
    /// own method. `rest` is the Envoy check's path after its prefix.
    pub(crate) fn of(
        style: Style,
        parts: &Parts,
        trusted: bool,
        rest: &str,
    ) -> Result<Original, OriginalError> {
        let (uri_header, method_header) = match style {
            Style::Nginx => ("X-Original-URI", "X-Original-Method"),
            Style::Forwarded => ("X-Forwarded-Uri", "X-Forwarded-Method"),
            Style::Envoy => {
                let path = if rest.is_empty() { "/" } else { rest };
                let uri = match parts.uri.query() {
                    Some(q) => format!("{path}?{q}"),
                    None => path.to_owned(),
                };
                return Ok(Original {
                    method: parts.method.clone(),
                    uri: local_uri(&uri, ENVOY_PATH)?,
                });
            }
        };
        if !trusted {
            return Ok(Original {
                method: parts.method.clone(),
                uri: PathAndQuery::from_static("/"),
            });
        }
        let uri = single(&parts.headers, uri_header)?
            .ok_or(OriginalError::Missing { header: uri_header })?;
        let method = match single(&parts.headers, method_header)? {
            Some(m) => method(m, method_header)?,
            None => parts.method.clone(),
        };
        Ok(Original {
            method,
            uri: local_uri(uri, uri_header)?,
        })
    }
}

/// The one value of `name`, if present (as text: anything else is not a URI or a method).
fn single<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, OriginalError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OriginalError::Repeated { header: name });
    }
    if first.len() > MAX_URI {
        return Err(OriginalError::TooLong {
            header: name,
            len: first.len(),
            max: MAX_URI,
        });
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| OriginalError::NotLocal { header: name })
}

fn method(value: &str, header: &'static str) -> Result<Method, OriginalError> {
    if value.len() > MAX_METHOD {
        return Err(OriginalError::TooLong {
            header,
            len: value.len(),
            max: MAX_METHOD,
        });
    }
    // A token of upper-case letters: what the proxies send, and nothing a log line or a
    // request line could be confused by.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(OriginalError::Method { header });
    }
    Method::from_bytes(value.as_bytes()).map_err(|_| OriginalError::Method { header })
}

fn local_uri(value: &str, header: &'static str) -> Result<PathAndQuery, OriginalError> {
    if value.len() > MAX_URI {
        return Err(OriginalError::TooLong {
            header,
            len: value.len(),
            max: MAX_URI,
        });
    }
    if !is_local_path(value) {
        return Err(OriginalError::NotLocal { header });
    }
    value
        .parse::<PathAndQuery>()
        .ok()
        .filter(|p| p.as_str() == value)
        .ok_or(OriginalError::NotLocal { header })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn trusted_headers_name_the_original_request() {
        let p = parts(
            "GET",
            "/.auth/forward/nginx",
            &[
                ("x-original-uri", "/orders?id=1"),
                ("x-original-method", "POST"),
            ],
        );
        let o = Original::of(Style::Nginx, &p, true, "").expect("original");
        assert_eq!((o.method, o.uri.as_str()), (Method::POST, "/orders?id=1"));
        let p = parts("GET", "/.auth/forward/caddy", &[("x-forwarded-uri", "/a")]);
        let o = Original::of(Style::Forwarded, &p, true, "").expect("original");
        assert_eq!((o.method, o.uri.as_str()), (Method::GET, "/a"));
    }

    #[test]
    fn an_untrusted_peer_cannot_name_the_original_request() {
        let p = parts(
            "GET",
            "/.auth/forward/caddy",
            &[
                ("x-forwarded-uri", "//evil.test/x"),
                ("x-forwarded-method", "DELETE"),
            ],
        );
        let o = Original::of(Style::Forwarded, &p, false, "").expect("original");
        assert_eq!((o.method, o.uri.as_str()), (Method::GET, "/"));
    }

    #[test]
    fn envoy_takes_the_path_after_the_prefix() {
        let p = parts("PUT", "/.auth/forward/envoy/api/x?y=1", &[]);
        let o = Original::of(Style::Envoy, &p, false, "/api/x").expect("original");
        assert_eq!((o.method, o.uri.as_str()), (Method::PUT, "/api/x?y=1"));
        let p = parts("GET", "/.auth/forward/envoy", &[]);
        let o = Original::of(Style::Envoy, &p, false, "").expect("original");
        assert_eq!(o.uri.as_str(), "/");
        let p = parts("GET", "/.auth/forward/envoy//evil.test", &[]);
        assert!(Original::of(Style::Envoy, &p, false, "//evil.test").is_err());
    }

    #[test]
    fn malformed_descriptions_are_refused_precisely() {
        let long = format!("/{}", "a".repeat(MAX_URI));
        let cases: Vec<(Vec<(&str, &str)>, OriginalError)> = vec![
            (
                vec![],
                OriginalError::Missing {
                    header: "X-Original-URI",
                },
            ),
            (
                vec![("x-original-uri", "//evil.test/")],
                OriginalError::NotLocal {
                    header: "X-Original-URI",
                },
            ),
            (
                vec![("x-original-uri", "/%2F%2Fevil.test")],
                OriginalError::NotLocal {
                    header: "X-Original-URI",
                },
            ),
            (
                vec![("x-original-uri", "/a\tb")],
                OriginalError::NotLocal {
                    header: "X-Original-URI",
                },
            ),
            (
                vec![("x-original-uri", "https://evil.test/")],
                OriginalError::NotLocal {
                    header: "X-Original-URI",
                },
            ),
            (
                vec![("x-original-uri", "/"), ("x-original-uri", "/b")],
                OriginalError::Repeated {
                    header: "X-Original-URI",
                },
            ),
            (
                vec![("x-original-uri", long.as_str())],
                OriginalError::TooLong {
                    header: "X-Original-URI",
                    len: long.len(),
                    max: MAX_URI,
                },
            ),
            (
                vec![("x-original-uri", "/"), ("x-original-method", "get")],
                OriginalError::Method {
                    header: "X-Original-Method",
                },
            ),
            (
                vec![("x-original-uri", "/"), ("x-original-method", "G T")],
                OriginalError::Method {
                    header: "X-Original-Method",
                },
            ),
        ];
        for (headers, want) in cases {
            let p = parts("GET", "/.auth/forward/nginx", &headers);
            assert_eq!(
                Original::of(Style::Nginx, &p, true, ""),
                Err(want),
                "{headers:?}"
            );
        }
    }
}
