//! HTML building: escaping and the page frame (header, breadcrumbs, the blade menu).

use std::fmt::Write as _;

pub(crate) fn esc(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(s).into_owned()
}

/// A path segment or query value in a link.
pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const STYLE: &str = "body{font-family:Segoe UI,system-ui,sans-serif;margin:0;color:#222}\
header{background:#1b1b1b;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center;flex-wrap:wrap}\
header a{color:#fff;text-decoration:none}header form{margin-left:auto}\
main{padding:1em;max-width:60em}nav.blades{display:flex;gap:.3em 1em;flex-wrap:wrap;border-bottom:1px solid #ccc;padding:.4em 0;margin-bottom:1em}\
nav.blades a.current{font-weight:bold}table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em;border-bottom:1px solid #eee;vertical-align:top}td{word-break:break-all}th{width:35%}\
.error{background:#fde7e9;border-left:4px solid #a4262c;padding:.6em;margin:.6em 0}.ok{background:#dff6dd;border-left:4px solid #107c10;padding:.6em;margin:.6em 0}\
.hint{color:#555;font-size:.9em}label{display:block;margin-top:.6em}input[type=text],textarea,select{width:100%;max-width:40em;box-sizing:border-box}\
button{margin-top:.6em}td button{word-break:normal}form.inline{display:inline}";

/// One page: `title`, the signed-in user, breadcrumbs (label, href), and the body.
pub(crate) fn page(
    title: &str,
    user: Option<(&str, &str)>,
    crumbs: &[(&str, String)],
    body: &str,
) -> String {
    let mut html = String::with_capacity(body.len() + 2048);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} - Microsoft Azure (easyauth)</title><style>{STYLE}</style></head><body>\
<header><a href=\"/\"><strong>Microsoft Azure</strong> (easyauth, local)</a>\
<a href=\"/registrations\">App registrations</a>",
        esc(title)
    );
    if let Some((name, csrf)) = user {
        let _ = write!(
            html,
            "<span>{}</span><form method=\"post\" action=\"/signout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form>",
            esc(name),
            esc(csrf)
        );
    }
    html.push_str("</header><main>");
    if !crumbs.is_empty() {
        html.push_str("<p class=\"hint\">");
        for (i, (label, href)) in crumbs.iter().enumerate() {
            if i > 0 {
                html.push_str(" &gt; ");
            }
            let _ = write!(html, "<a href=\"{}\">{}</a>", esc(href), esc(label));
        }
        html.push_str("</p>");
    }
    let _ = write!(html, "<h1>{}</h1>{body}</main></body></html>", esc(title));
    html
}

/// A hidden CSRF field for a form.
pub(crate) fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}
