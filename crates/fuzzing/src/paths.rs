//! `paths`: request-path normalisation and `excludedPaths` matching.
//!
//! Input: exclusion entries one per line, the request path on the last line (without entries,
//! `/public/*` and `/health`).

use easyauth_module::paths::{Exclusion, is_excluded, normalize};
use url::Url;

pub fn paths(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    let path = lines.pop().unwrap_or_default();
    if lines.is_empty() {
        lines = vec!["/public/*", "/health"];
    }
    let exclusions: Vec<Exclusion> = lines
        .iter()
        .filter_map(|entry| {
            let parsed = Exclusion::parse(entry);
            if let Some(e) = &parsed {
                check_exclusion(entry, e);
            }
            parsed
        })
        .collect();

    let normalized = normalize(path);
    if let Some(n) = &normalized {
        check_normal_form(n);
        assert_eq!(
            normalize(n).as_ref(),
            Some(n),
            "not idempotent for {path:?}"
        );
        same_as_a_browser(path, n);
    }
    let excluded = is_excluded(&exclusions, path);
    if excluded {
        let n = normalized
            .as_deref()
            .expect("only normalisable paths are excluded");
        assert!(is_excluded(&exclusions, n), "{n:?} itself is not excluded");
    }
    // Path parameters mean different paths to different servers: never excluded.
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    if path.contains(';') || decoded.contains(';') {
        assert!(!excluded, "{path:?} has a path parameter and was excluded");
        assert!(normalized.is_none());
    }
}

/// One slash-separated form: no empty, `.` or `..` segments, nothing another server could split
/// or decode differently.
fn check_normal_form(n: &str) {
    assert!(n.starts_with('/'), "{n:?}");
    assert!(!n.contains("//"), "{n:?}");
    for bad in ['\\', ';', '\0'] {
        assert!(!n.contains(bad), "{n:?} contains {bad:?}");
    }
    assert!(!n.bytes().any(|b| b.is_ascii_uppercase()), "{n:?}");
    for segment in n.split('/') {
        assert!(segment != "." && segment != "..", "{n:?}");
    }
}

fn check_exclusion(entry: &str, exclusion: &Exclusion) {
    match exclusion {
        Exclusion::Prefix(p) => {
            assert!(entry.ends_with("/*"));
            assert!(!p.ends_with('/'), "{p:?}");
            assert!(p.is_empty() || p.starts_with('/'), "{p:?}");
            let own = if p.is_empty() { "/" } else { p.as_str() };
            let list = std::slice::from_ref(exclusion);
            assert!(is_excluded(list, own), "{entry:?} does not cover {own:?}");
            assert!(is_excluded(list, &format!("{p}/x")));
            // A longer name is another path, not one under the prefix.
            if !p.is_empty() {
                assert!(!is_excluded(list, &format!("{p}x")), "{entry:?}");
            }
        }
        Exclusion::Exact(p) => {
            check_normal_form(p);
            assert!(is_excluded(std::slice::from_ref(exclusion), p), "{entry:?}");
        }
    }
}

/// The path an app built on a WHATWG URL parser (browsers, Node, many frameworks) resolves must
/// normalise to the same form: dot segments (also `%2e`), backslashes, repeated slashes. Limited
/// to what can arrive in a request line (visible ASCII, no query or fragment).
fn same_as_a_browser(path: &str, n: &str) {
    let request_line_safe = path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
    if !request_line_safe || has_drive_letter_segment(path) {
        return;
    }
    let Ok(url) = Url::parse(&format!("http://h{path}")) else {
        return;
    };
    // A trailing slash does not change what an exclusion matches (`/a/b/.` is `/a/b/` to a URL
    // parser and `/a/b` here), so it is not compared.
    let resolved = normalize(url.path());
    assert_eq!(
        resolved.as_deref().map(|r| r.trim_end_matches('/')),
        Some(n.trim_end_matches('/')),
        "{path:?} resolves to {:?}",
        url.path()
    );
}

/// A segment such as `c:` or `c|`: the `url` crate keeps it on `..` for http URLs too (browsers
/// and the URL Standard do so only for file URLs), so it is no reference for such paths.
fn has_drive_letter_segment(path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    decoded.split(['/', '\\']).any(|segment| {
        matches!(segment.as_bytes(), [letter, b':' | b'|'] if letter.is_ascii_alphabetic())
    })
}
