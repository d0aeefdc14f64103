//! `login.preserveUrlFragmentsForLogins`: the `#fragment` a browser never sends, fetched by a
//! small page and carried through the sign-in to the landing URL.

use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};

use crate::respond::no_store;

/// The query parameter that carries the `#fragment` back from [`fragment_page`].
pub(super) const FRAGMENT_PARAM: &str = "easyauth_fragment";

/// `preserveUrlFragmentsForLogins`: a browser never sends the `#fragment`, so the login route
/// first answers with a page whose script reads it and comes back with it in
/// [`FRAGMENT_PARAM`] (empty when there is none). Without script the link continues without it.
pub(super) fn fragment_page(request: &Parts) -> Response {
    let path_and_query = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let sep = if request.uri.query().is_some() {
        '&'
    } else {
        '?'
    };
    let next = format!("{path_and_query}{sep}{FRAGMENT_PARAM}=");
    // JSON-encoded for the script, with `<` escaped so the text cannot close the element.
    let js_next = serde_json::to_string(&next)
        .unwrap_or_else(|_| "\"/\"".into())
        .replace('<', "\\u003c");
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Signing in</title>\
         <meta name=\"robots\" content=\"noindex\"></head><body>\
         <script>(function(){{var h=window.location.hash;\
         window.location.replace({js_next}+encodeURIComponent(h?h.substring(1):''));}})();</script>\
         <noscript><a href=\"{href}\">Continue to sign in</a></noscript></body></html>",
        href = html_escape::encode_double_quoted_attribute(&next),
    );
    let mut r = (StatusCode::OK, Html(html)).into_response();
    no_store(&mut r);
    r
}

/// A fragment as it may follow `#` in a Location header: anything outside RFC 3986's fragment
/// characters (and `%`, so existing escapes stay as they are) is percent-encoded.
pub(super) fn fragment_suffix(fragment: &str) -> String {
    const FRAGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'!')
        .remove(b'$')
        .remove(b'&')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')')
        .remove(b'*')
        .remove(b'+')
        .remove(b',')
        .remove(b';')
        .remove(b'=')
        .remove(b':')
        .remove(b'@')
        .remove(b'/')
        .remove(b'?')
        .remove(b'%');
    format!(
        "#{}",
        percent_encoding::utf8_percent_encode(&clip_fragment(fragment), FRAGMENT)
    )
}

/// Fragments are kept to 2,000 characters: they travel in a cookie and a Location header.
fn clip_fragment(fragment: &str) -> String {
    fragment.chars().take(2000).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    #[test]
    fn fragments_are_encoded_for_a_location_header() {
        assert_eq!(fragment_suffix("section-2/a b"), "#section-2/a%20b");
        assert_eq!(fragment_suffix("x=1&y=%41"), "#x=1&y=%41");
        // No header splitting, no second fragment, no markup.
        assert_eq!(
            fragment_suffix("a\r\nSet-Cookie: x"),
            "#a%0D%0ASet-Cookie:%20x"
        );
        assert_eq!(fragment_suffix("a#b<c>"), "#a%23b%3Cc%3E");
        assert_eq!(fragment_suffix(&"é".repeat(3000)).len(), 1 + 2000 * 6);
    }

    #[test]
    fn the_fragment_page_cannot_be_closed_by_the_query() {
        // As a browser sends it, and raw (if the URI parser lets it through).
        for uri in [
            "/.auth/login/aad?x=%3C/script%3E%3Cb%3E",
            "/.auth/login/aad?x=</script><b>",
        ] {
            let Ok(request) = axum::http::Request::builder().uri(uri).body(()) else {
                continue;
            };
            let body = body_text(fragment_page(&request.into_parts().0));
            assert_eq!(body.matches("</script>").count(), 1, "{body}");
            assert!(!body.contains("<b>"), "{body}");
            assert!(body.contains("easyauth_fragment="), "{body}");
        }
    }

    fn body_text(response: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let bytes = rt
            .block_on(to_bytes(response.into_body(), 1 << 20))
            .expect("body");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
