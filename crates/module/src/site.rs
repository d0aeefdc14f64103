//! Which site a request is for. App Service builds the sign-in callback and judges "this site"
//! (post-login and post-logout targets, the CSRF rule) from the host the request came to, since
//! a site answers to several host names; a configured public URL fixes it instead, and a trusted
//! forward proxy (`httpSettings.forwardProxy`) may name it in `X-Forwarded-Host`.
//!
//! A host taken from a request is accepted only when it is a well-formed `host[:port]`: a DNS
//! name, an IPv4 address or a bracketed IPv6 address, at most 255 characters, with a port from 1
//! to 65535. Anything else (userinfo, a path, spaces, a second host) is refused with 400 before
//! the module builds a URL from it.

use axum::http::{HeaderMap, Uri, header};

use crate::cookies::CookieStyle;
use crate::redirect::Origin;

/// The scheme and host of the site a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host` or `host:port` as the browser addresses it, lower-case, the default port omitted.
    pub host: String,
}

/// Longest host name accepted from a request.
const MAX_HOST: usize = 255;

impl Site {
    /// The site a configured public URL names.
    pub fn from_url(url: &url::Url) -> Option<Site> {
        let scheme = scheme_of(url.scheme())?;
        let host = match url.host()? {
            url::Host::Ipv6(a) => format!("[{a}]"),
            h => h.to_string().to_ascii_lowercase(),
        };
        Some(Site::new(scheme, host, url.port()))
    }

    /// The site named by a `host[:port]` taken from a request, if it is well formed.
    pub fn from_authority(scheme: &'static str, value: &str) -> Option<Site> {
        let (host, port) = split_authority(value.trim())?;
        Some(Site::new(scheme, host, port))
    }

    fn new(scheme: &'static str, host: String, port: Option<u16>) -> Site {
        let default = if scheme == "https" { 443 } else { 80 };
        let host = match port.filter(|p| *p != default) {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        Site { scheme, host }
    }

    /// The site of a request that came straight to this listener: the request's authority
    /// (HTTP/2, or an absolute-form HTTP/1.1 target), else its `Host` header.
    pub fn of_request(scheme: &'static str, uri: &Uri, headers: &HeaderMap) -> Option<Site> {
        if let Some(authority) = uri.authority() {
            return Site::from_authority(scheme, authority.as_str());
        }
        let mut hosts = headers.get_all(header::HOST).iter();
        let host = hosts.next()?.to_str().ok()?;
        // Two Host headers are a smuggling attempt (RFC 9112 section 3.2: answer 400).
        if hosts.next().is_some() {
            return None;
        }
        Site::from_authority(scheme, host)
    }

    /// `scheme://host[:port]`, without a trailing slash.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    /// The host without its port or brackets (for a `WWW-Authenticate` realm).
    pub fn host_name(&self) -> String {
        let host = self.origin().host;
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned()
    }

    /// The site's origin, for redirect and CSRF checks.
    pub fn origin(&self) -> Origin {
        let (host, port) = split_authority(&self.host).unwrap_or((self.host.clone(), None));
        Origin {
            scheme: self.scheme.to_owned(),
            host,
            port: port.unwrap_or(if self.scheme == "https" { 443 } else { 80 }),
        }
    }

    /// The attributes of the cookies the module sets for this site.
    pub fn cookie_style(&self) -> CookieStyle {
        CookieStyle {
            secure: self.scheme == "https",
        }
    }
}

pub(crate) fn scheme_of(s: &str) -> Option<&'static str> {
    if s.eq_ignore_ascii_case("https") {
        Some("https")
    } else if s.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// `host[:port]` → (lower-case host, port). Linear in the input and bounded by [`MAX_HOST`].
fn split_authority(value: &str) -> Option<(String, Option<u16>)> {
    if value.is_empty() || value.len() > MAX_HOST + 6 {
        return None;
    }
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        inner.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", inner.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match value.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        };
        if !is_dns_name_or_ipv4(host) {
            return None;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|p| *p != 0)?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// Letters, digits, `-` and `.` in labels of 1 to 63 characters (which covers IPv4 addresses).
fn is_dns_name_or_ipv4(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= MAX_HOST
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_hosts_only() {
        for (value, host) in [
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("LocalHost:8080", "localhost:8080"),
            ("app.test", "app.test"),
            ("app.test:80", "app.test"),
            ("[::1]:8080", "[::1]:8080"),
            ("my-app.azurewebsites.net.", "my-app.azurewebsites.net."),
        ] {
            assert_eq!(
                Site::from_authority("http", value)
                    .map(|s| s.host)
                    .as_deref(),
                Some(host),
                "{value}"
            );
        }
        for bad in [
            "",
            "evil.test@good.test",
            "good.test/evil",
            "good.test evil.test",
            "good.test:",
            "good.test:0",
            "good.test:65536",
            "good.test:80:80",
            "good.test:+80",
            "-bad.test",
            "bad_.test",
            "[::1",
            "[not-ipv6]:80",
            "a..b",
            "\"quoted\"",
            "good.test\r\nx: y",
        ] {
            assert_eq!(Site::from_authority("http", bad), None, "{bad:?}");
        }
        assert_eq!(Site::from_authority("http", &"a".repeat(300)), None);
    }

    #[test]
    fn the_base_origin_and_cookies_follow_the_scheme() {
        let s = Site::from_authority("https", "App.Test:443").expect("site");
        assert_eq!(s.base(), "https://app.test");
        assert_eq!(s.origin().port, 443);
        assert!(s.cookie_style().secure);
        let s = Site::from_authority("http", "127.0.0.1:8080").expect("site");
        assert_eq!(s.base(), "http://127.0.0.1:8080");
        assert_eq!(s.host_name(), "127.0.0.1");
        assert_eq!(
            Site::from_authority("http", "[::1]:9")
                .expect("v6")
                .host_name(),
            "::1"
        );
        let u = url::Url::parse("https://public.test:8443/ignored").expect("url");
        assert_eq!(
            Site::from_url(&u).expect("site").base(),
            "https://public.test:8443"
        );
    }

    #[test]
    fn two_host_headers_are_refused() {
        let mut h = HeaderMap::new();
        h.append(header::HOST, "a.test".parse().expect("v"));
        let uri: Uri = "/".parse().expect("uri");
        assert!(Site::of_request("http", &uri, &h).is_some());
        h.append(header::HOST, "b.test".parse().expect("v"));
        assert!(Site::of_request("http", &uri, &h).is_none());
        assert!(Site::of_request("http", &uri, &HeaderMap::new()).is_none());
    }
}
