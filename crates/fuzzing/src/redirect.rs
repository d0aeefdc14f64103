//! `redirect`: redirect-target validation (`post_login_redirect_uri` and friends).
//!
//! Input: the target; when it has several lines, the first is an extra
//! `allowedExternalRedirectUrls` entry and the rest the target.
//!
//! `is_local_path` (what a forward-auth check requires of the original request's URI) must agree
//! with `validate` on paths: it accepts exactly the relative targets `validate` passes unchanged.

use easyauth_module::redirect::{Origin, is_local_path, validate};
use url::Url;

/// Where the site's pages are; relative targets are resolved against it, as a browser does.
const PAGE: &str = "https://app.test/some/page?q=1";

pub fn redirect(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut allowed = vec![
        "https://partner.test/landing?ignored=1".to_owned(),
        "http://localhost:3000".to_owned(),
    ];
    let target = match text.split_once('\n') {
        Some((entry, target)) => {
            allowed.push(entry.to_owned());
            target
        }
        None => text,
    };
    let own = Origin {
        scheme: "https".into(),
        host: "app.test".into(),
        port: 443,
    };
    let validated = validate(target, &own, &allowed);
    assert_eq!(
        is_local_path(target),
        target.starts_with('/') && validated.as_deref() == Some(target),
        "{target:?}: is_local_path and validate disagree"
    );
    let Some(location) = validated else {
        assert!(
            !plain_relative(target),
            "{target:?} is a plain path and was refused"
        );
        return;
    };

    // Nothing a browser drops or reinterprets, before or after one decoding.
    let decoded = percent_encoding::percent_decode_str(&location).decode_utf8_lossy();
    for s in [location.as_str(), &decoded] {
        assert!(
            !s.chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '\\'),
            "{location:?} has characters browsers drop or reinterpret"
        );
    }
    let page = Url::parse(PAGE).expect("a valid page URL");
    let resolved = page
        .join(&location)
        .unwrap_or_else(|e| panic!("{location:?} does not resolve: {e}"));
    if target.starts_with('/') {
        // Relative: a single leading slash, passed on unchanged, and it stays on this site even
        // if something further on decodes it first.
        assert_eq!(location, target);
        assert!(!decoded.starts_with("//"), "{location:?}");
        assert_eq!(
            origin(&resolved),
            origin(&page),
            "{location:?} leaves the site"
        );
        if let Ok(again) = page.join(&decoded) {
            assert_eq!(origin(&again), origin(&page), "{decoded:?} leaves the site");
        }
    } else {
        // Absolute: canonical, http(s), no userinfo, this site or an allowed entry.
        let url = Url::parse(&location).expect("an absolute location parses");
        assert_eq!(url.as_str(), location);
        assert_eq!(resolved, url);
        assert!(matches!(url.scheme(), "http" | "https"), "{location:?}");
        assert!(url.username().is_empty() && url.password().is_none());
        let own_site = origin(&url) == origin(&page);
        assert!(
            own_site || allowed.iter().any(|entry| admits(entry, &url)),
            "{location:?} is neither this site nor an allowed external URL"
        );
    }
}

/// `/` then letters, digits and `-._~/`, not `//`: always acceptable.
fn plain_relative(target: &str) -> bool {
    target.starts_with('/')
        && !target.starts_with("//")
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
}

fn origin(url: &Url) -> Option<(String, String, u16)> {
    Some((
        url.scheme().to_owned(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?,
    ))
}

/// Same origin as the entry and, when the entry has a path, at or under it on a segment boundary.
fn admits(entry: &str, url: &Url) -> bool {
    let Ok(allowed) = Url::parse(entry) else {
        return false;
    };
    if origin(&allowed).is_none() || origin(&allowed) != origin(url) {
        return false;
    }
    let prefix = allowed.path().trim_end_matches('/');
    prefix.is_empty()
        || url.path() == prefix
        || url
            .path()
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}
