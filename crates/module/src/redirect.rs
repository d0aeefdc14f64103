//! Redirect targets (`post_login_redirect_uri`, `post_logout_redirect_uri`, the `redir` carried
//! in `state`): relative paths on this site, this site's own origin, or an origin (and path
//! prefix) listed in `login.allowedExternalRedirectUrls`. Everything else is refused, including
//! the tricks that repeatedly hit oauth2-proxy: `//host`, `/\host`, encoded whitespace and
//! backslashes, userinfo (`https://good@evil`), and non-http schemes.

use url::Url;

/// This site's origin: scheme, host and port as the browser sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The scheme, lower-case.
    pub scheme: String,
    /// The host, lower-case.
    pub host: String,
    /// The port, the scheme's default when the URL names none.
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute URL with a host.
    pub fn from_url(url: &Url) -> Option<Origin> {
        Some(Origin {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }

    fn matches(&self, url: &Url) -> bool {
        Origin::from_url(url).as_ref() == Some(self)
    }
}

/// Returns the target to put in `Location` if it is allowed, `None` otherwise.
pub fn validate(target: &str, own: &Origin, allowed_external: &[String]) -> Option<String> {
    let decoded = plain_and_decoded(target)?;
    if target.starts_with('/') {
        return is_local(&decoded).then(|| target.to_owned());
    }
    let url = Url::parse(target).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    if own.matches(&url)
        || allowed_external
            .iter()
            .any(|entry| external_allows(entry, &url))
    {
        return Some(url.to_string());
    }
    None
}

/// Whether `target` is a path on this site (`/...`) that [`validate`] accepts: what a
/// forward-auth check requires of the original request's URI before it becomes a
/// `post_login_redirect_uri`.
pub fn is_local_path(target: &str) -> bool {
    target.starts_with('/') && plain_and_decoded(target).is_some_and(|d| is_local(&d))
}

/// The percent-decoded target, when both forms are plain (an app or proxy further on may decode
/// it before redirecting).
fn plain_and_decoded(target: &str) -> Option<std::borrow::Cow<'_, str>> {
    if target.is_empty() || !is_plain(target) {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(target)
        .decode_utf8()
        .ok()?;
    (is_plain(&decoded) && !decoded.contains('\\')).then_some(decoded)
}

/// A single leading slash only: `//host` and `/\host` are network-path references.
fn is_local(decoded: &str) -> bool {
    !decoded.starts_with("//")
}

/// No control characters, whitespace or backslashes: browsers drop or reinterpret them.
fn is_plain(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

/// An `allowedExternalRedirectUrls` entry admits its origin and, when it has one, its path
/// prefix (on a segment boundary). Its query string is ignored, as App Service does.
fn external_allows(entry: &str, target: &Url) -> bool {
    let Ok(allowed) = Url::parse(entry) else {
        return false;
    };
    let Some(origin) = Origin::from_url(&allowed) else {
        return false;
    };
    if !origin.matches(target) {
        return false;
    }
    let prefix = allowed.path().trim_end_matches('/');
    prefix.is_empty() || target.path() == prefix || target.path().starts_with(&format!("{prefix}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Origin {
        Origin {
            scheme: "https".into(),
            host: "app.test".into(),
            port: 443,
        }
    }

    #[test]
    fn open_redirect_tricks_never_leave_the_site() {
        let allowed = vec!["https://partner.test/landing?ignored=1".to_string()];
        for evil in [
            "//evil.test",
            "//evil.test/path",
            "/\\evil.test",
            "\\\\evil.test",
            "/%5Cevil.test",
            "/%2F%2Fevil.test",
            "https://evil.test",
            "http://app.test",
            "https://app.test:444/x",
            "https://app.test@evil.test/",
            "https://evil.test@app.test/",
            "https://user:pw@app.test/",
            "javascript:alert(1)",
            "data:text/html,x",
            "/%09/evil.test",
            "/\t/evil.test",
            " /x",
            "/x\r\nSet-Cookie: a=b",
            "/%0d%0aSet-Cookie:a=b",
            "https:evil.test",
            "https://partner.test/other",
            "https://partner.test/landingpage",
            "https://partner.test.evil.test/landing",
            "evil.test",
            "",
        ] {
            assert_eq!(
                validate(evil, &own(), &allowed),
                None,
                "{evil:?} must be refused"
            );
        }
        for (ok, location) in [
            ("/", "/"),
            ("/profile?x=1#top", "/profile?x=1#top"),
            ("https://app.test/a", "https://app.test/a"),
            ("https://APP.test:443/b", "https://app.test/b"),
            (
                "https://partner.test/landing",
                "https://partner.test/landing",
            ),
            (
                "https://partner.test/landing/deeper?q=1",
                "https://partner.test/landing/deeper?q=1",
            ),
        ] {
            assert_eq!(
                validate(ok, &own(), &allowed).as_deref(),
                Some(location),
                "{ok}"
            );
        }
    }
}
