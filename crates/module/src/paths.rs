//! Request paths as the authorization decision sees them, and `excludedPaths` matching.
//!
//! Decisions are made on ONE normalised form of the path: percent-decoded once, `\` read as
//! `/`, repeated slashes collapsed, `.`/`..` segments resolved, ASCII case folded. The app may
//! resolve a path with any of those rules, so an exclusion must never match a path that the app
//! would route elsewhere (`/public/../private`, `/public/%2e%2e/private`, `//public`, `/PUBLIC`).
//! Paths that cannot be normalised safely (encoded NUL, invalid UTF-8, `..` above the root, an
//! encoded `/` or `\`) are never excluded: they stay protected.

/// The normalised path, or `None` when the path is not safe to match at all.
pub fn normalize(raw_path: &str) -> Option<String> {
    // An encoded separator is one segment to a URL parser (browsers, Node, Express route
    // `/private/..%5cpublic/x` under `/private`) and two after decoding (`/public/x` here):
    // either reading could be used to reach a protected path, so neither is matched.
    if has_encoded_separator(raw_path) {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(raw_path)
        .decode_utf8()
        .ok()?;
    // After one decoding pass, a remaining `%XX` can only come from `%25XX`: a second layer of
    // encoding that the app might decode again. Refuse it, and NUL.
    if decoded.contains('\0') || has_encoded_escape(&decoded) {
        return None;
    }
    let unified = decoded.replace('\\', "/");
    // Path parameters (`/public/..;/private`, `;jsessionid=`) are dot segments or different paths
    // to some servers (Tomcat, Spring): such a path is never excluded.
    if unified.contains(';') {
        return None;
    }
    let mut segments: Vec<&str> = Vec::new();
    // `..` after an empty segment has two meanings: servers that merge slashes first (nginx,
    // Tomcat, Go) read `/a/b//../c` as `/a/c`, URL parsers (browsers, Node, RFC 3986) as
    // `/a/b/c`. Either reading could be used to reach a protected path, so neither is matched.
    let mut empty_before = false;
    for (i, segment) in unified.split('/').enumerate() {
        match segment {
            "" => empty_before |= i > 0,
            "." => {}
            ".." if empty_before => return None,
            ".." => {
                segments.pop()?;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(unified.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || unified.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    Some(out.to_ascii_lowercase())
}

fn has_encoded_separator(raw: &str) -> bool {
    raw.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'f') | (b'5', b'c')
            )
    })
}

fn has_encoded_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// One `excludedPaths` entry: an exact path, or a prefix when it ends in `/*` (the only wildcard
/// App Service supports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    /// Matches this path only.
    Exact(String),
    /// Matches the prefix itself and everything under it (`/api/*` matches `/api` and `/api/x`).
    Prefix(String),
}

impl Exclusion {
    /// Parses a configured entry (already validated to start with `/`).
    pub fn parse(entry: &str) -> Option<Exclusion> {
        match entry.strip_suffix("/*") {
            Some(prefix) => normalize(if prefix.is_empty() { "/" } else { prefix })
                .map(|p| Exclusion::Prefix(p.trim_end_matches('/').to_owned())),
            None => normalize(entry).map(Exclusion::Exact),
        }
    }

    fn matches(&self, normalized: &str) -> bool {
        match self {
            Exclusion::Exact(p) => {
                normalized == p || normalized.trim_end_matches('/') == p.trim_end_matches('/')
            }
            Exclusion::Prefix(p) => {
                normalized == p
                    || normalized.starts_with(p.as_str()) && normalized[p.len()..].starts_with('/')
            }
        }
    }
}

/// Whether the request path (raw, as received, without the query) is excluded.
pub fn is_excluded(exclusions: &[Exclusion], raw_path: &str) -> bool {
    // Most sites exclude nothing: no need to normalise the path of every request then.
    if exclusions.is_empty() {
        return false;
    }
    match normalize(raw_path) {
        Some(path) => exclusions.iter().any(|e| e.matches(&path)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excl(entries: &[&str]) -> Vec<Exclusion> {
        entries
            .iter()
            .map(|e| Exclusion::parse(e).expect("valid"))
            .collect()
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize("/a/./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(normalize("//a///b").as_deref(), Some("/a/b"));
        assert_eq!(normalize("/A/%42").as_deref(), Some("/a/b"));
        assert_eq!(normalize("/a\\b").as_deref(), Some("/a/b"));
        assert_eq!(normalize("/a/b/").as_deref(), Some("/a/b/"));
        assert_eq!(normalize("/").as_deref(), Some("/"));
        assert_eq!(normalize("/../etc"), None, "above the root");
        assert_eq!(normalize("/a%00b"), None, "encoded NUL");
        assert_eq!(normalize("/a/%252e%252e/b"), None, "double encoding");
        assert_eq!(normalize("/%ff"), None, "not UTF-8");
        assert_eq!(normalize("/a//b/../c").as_deref(), None, "`..` after `//`");
        assert_eq!(
            normalize("/a/.%2f/../c").as_deref(),
            None,
            "`..` after an encoded `//`"
        );
        assert_eq!(normalize("//a/b/").as_deref(), Some("/a/b/"));
    }

    #[test]
    fn excluded_paths_cannot_reach_protected_paths() {
        let ex = excl(&["/public/*", "/health"]);
        for allowed in [
            "/public",
            "/public/",
            "/public/a.css",
            "/PUBLIC/x",
            "/health",
            "/health/",
        ] {
            assert!(is_excluded(&ex, allowed), "{allowed} should be excluded");
        }
        for protected in [
            "/private",
            "/public/../private",
            "/public/%2e%2e/private",
            "/public/%2E%2E/private",
            "/public/..%2fprivate",
            "/public/..%5cprivate",
            "/public\\..\\private",
            "//private",
            "/publicity",
            "/public-not",
            "/healthz",
            "/health/x",
            "/public/%252e%252e/private",
            "/public/%00/../private",
            "/public/..;/private",
            "/public/%2e%2e;x/private",
            "/public;x/../private",
            // Found by fuzzing: `/private/public` to a URL parser, `/public` to nginx.
            "/private//../public",
            "/private/%2f../health",
        ] {
            assert!(
                !is_excluded(&ex, protected),
                "{protected} must stay protected"
            );
        }
        // Found by fuzzing: an encoded separator is part of a segment to a URL parser, so these
        // are `/private/...` to the app (Express routes them there), `/public/...` once decoded.
        for protected in [
            "/private/..%5cpublic/x",
            "/private/..%5Cpublic/x",
            "/private/..%2fpublic/x",
            "/private%2F..%2Fpublic/x",
            "/private/..%2fhealth",
        ] {
            assert!(
                !is_excluded(&ex, protected),
                "{protected} must stay protected"
            );
        }
    }
}
