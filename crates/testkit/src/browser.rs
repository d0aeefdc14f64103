//! A browser for tests: cookies, no automatic redirects, forms filled in as a person would.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderMap;
use url::Url;

/// What a browser sends as `User-Agent`: the module tells browsers from other clients by it.
const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) easyauth-testkit";

/// An HTTPS client with a cookie jar that trusts a local CA. It follows no redirect by itself:
/// each hop is the test's to check ([`Browser::follow`]). A form is posted with the `Origin` of
/// the page it came from, as browsers do.
#[derive(Clone, Debug)]
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<Jar>,
}

/// One answer: where it came from, status, headers and body.
#[derive(Debug)]
pub struct Page {
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// An HTML form: its absolute action and its hidden fields.
#[derive(Clone, Debug)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

impl Browser {
    /// A browser with an empty cookie jar that trusts `ca_pem` besides the system roots.
    ///
    /// # Panics
    /// When `ca_pem` is not a PEM certificate.
    pub fn new(ca_pem: &[u8]) -> Browser {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).expect("CA certificate"))
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("browser client");
        Browser { client, jar }
    }

    /// The underlying client, for requests the helpers do not cover.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The cookie jar: `add_cookie_str` plants or overwrites a cookie.
    pub fn jar(&self) -> &Jar {
        &self.jar
    }

    /// The value of cookie `name` the jar would send to `url`.
    ///
    /// # Panics
    /// When `url` is not a URL.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let url = Url::parse(url).expect("URL");
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    /// Drops cookie `name` for `url` (an expired cookie replaces it).
    ///
    /// # Panics
    /// When `url` is not a URL.
    pub fn forget(&self, url: &str, name: &str) {
        let url = Url::parse(url).expect("URL");
        self.jar
            .add_cookie_str(&format!("{name}=; Path=/; Max-Age=0"), &url);
    }

    /// GET `url`.
    pub async fn get(&self, url: &str) -> Page {
        self.get_with(url, &[]).await
    }

    /// GET `url` with extra `headers`.
    ///
    /// # Panics
    /// When the request fails (connection, TLS, timeout).
    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Page {
        let mut request = self.client.get(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        Page::read(
            request
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}")),
        )
        .await
    }

    /// POST `fields` as a form to `url` with extra `headers` (no `Origin` unless given).
    ///
    /// # Panics
    /// When the request fails (connection, TLS, timeout).
    pub async fn post_form(
        &self,
        url: &str,
        fields: &[(String, String)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self.client.post(url).form(fields);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        Page::read(
            request
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST {url}: {e}")),
        )
        .await
    }

    /// Submits `form` (found on `from`) with `extra` fields, from `from`'s origin.
    pub async fn submit(&self, from: &Page, form: &Form, extra: &[(&str, &str)]) -> Page {
        let mut fields = form.fields.clone();
        fields.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let origin = from.url.origin().ascii_serialization();
        self.post_form(&form.action, &fields, &[("origin", &origin)])
            .await
    }

    /// Follows `page`'s redirect (GET its `Location`).
    ///
    /// # Panics
    /// When `page` is not a redirect.
    pub async fn follow(&self, page: &Page) -> Page {
        let next = page
            .location()
            .unwrap_or_else(|| panic!("no Location from {} ({})", page.url, page.status));
        self.get(&next).await
    }

    /// Signs in on the identity provider's sign-in page `page` (the answer to an authorize
    /// request) as `username` with `password`, and accepts the consent page if one follows.
    /// Returns the provider's last answer: a redirect to the app, its `form_post` page, or an
    /// error page. A page without a sign-in form (a session already there) is returned as is.
    ///
    /// # Panics
    /// When a request fails.
    pub async fn sign_in(&self, page: Page, username: &str, password: &str) -> Page {
        let mut page = page;
        if page.status == StatusCode::OK && page.body.contains("name=\"passwd\"") {
            let form = page.form();
            page = self
                .submit(&page, &form, &[("login", username), ("passwd", password)])
                .await;
        }
        if page.status == StatusCode::OK && page.body.contains("name=\"consent\"") {
            let form = page.form();
            page = self.submit(&page, &form, &[("consent", "accept")]).await;
        }
        page
    }

    /// What a browser does with a `form_post` page (its script submits the form at once).
    pub async fn auto_submit(&self, page: &Page) -> Page {
        let form = page.form();
        self.submit(page, &form, &[]).await
    }
}

impl Page {
    async fn read(response: reqwest::Response) -> Page {
        let url = response.url().clone();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Page {
            url,
            status,
            headers,
            body,
        }
    }

    /// The redirect target, made absolute against this page's URL.
    pub fn location(&self) -> Option<String> {
        let location = self.headers.get("location")?.to_str().ok()?;
        self.url.join(location).ok().map(String::from)
    }

    /// Every `Set-Cookie` header's `name=value`, without its attributes.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
            .collect()
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }

    /// The page's first form.
    ///
    /// # Panics
    /// When there is no form.
    pub fn form(&self) -> Form {
        form_of(self.url.as_str(), &self.body)
    }

    /// The value of the hidden field `name`, if any.
    pub fn hidden(&self, name: &str) -> Option<String> {
        html_hidden(&self.body, name)
    }
}

/// The first form of a page: its absolute action and its hidden fields.
///
/// # Panics
/// When the page has no form, or `page_url` is not a URL.
pub fn form_of(page_url: &str, html: &str) -> Form {
    let start = html
        .find("<form ")
        .unwrap_or_else(|| panic!("no form in {html}"));
    let rest = &html[start..];
    let tag = &rest[..rest.find('>').expect("form tag end")];
    let action = attribute(tag, "action").unwrap_or_default();
    let form = &rest[..rest.find("</form>").expect("form end")];
    let fields = form
        .split("<input type=\"hidden\"")
        .skip(1)
        .filter_map(|input| {
            let input = &input[..input.find('>')?];
            Some((
                attribute(input, "name")?,
                attribute(input, "value").unwrap_or_default(),
            ))
        })
        .collect();
    let action = Url::parse(page_url)
        .expect("page URL")
        .join(&action)
        .expect("form action")
        .to_string();
    Form { action, fields }
}

/// The value of the field `name` in `html` (`name="..." value="..."`), if any.
pub fn html_hidden(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = start + html[start..].find('"')?;
    Some(html_escape::decode_html_entities(&html[start..end]).into_owned())
}

/// `name="..."` in a tag's text, decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = start + tag[start..].find('"')?;
    Some(html_escape::decode_html_entities(&tag[start..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_read_as_the_identity_provider_writes_them() {
        // The sign-in page: a relative action, entity-encoded values, visible inputs skipped.
        let html = "<form method=\"post\" action=\"/t/login?a=1&amp;b=2\">\
            <input type=\"hidden\" name=\"ctx\" value=\"x&quot;y\">\
            <input type=\"hidden\" name=\"csrf\" value=\"c1\">\
            <input type=\"email\" name=\"login\" value=\"\"></form>";
        let form = form_of("https://idp.test/t/oauth2/v2.0/authorize?x", html);
        assert_eq!(form.action, "https://idp.test/t/login?a=1&b=2");
        assert_eq!(
            form.fields,
            [
                ("ctx".to_owned(), "x\"y".to_owned()),
                ("csrf".to_owned(), "c1".to_owned())
            ]
        );
        assert_eq!(html_hidden(html, "ctx").as_deref(), Some("x\"y"));
        assert_eq!(html_hidden(html, "nonce"), None);

        // The form_post page: an upper-case method and an absolute action.
        let html = "<body onload=\"document.forms[0].submit()\"><form method=\"POST\" \
            name=\"hiddenform\" action=\"https://app.test/cb\">\
            <input type=\"hidden\" name=\"code\" value=\"k\"></form>";
        let form = form_of("https://idp.test/", html);
        assert_eq!(form.action, "https://app.test/cb");
        assert_eq!(form.fields, [("code".to_owned(), "k".to_owned())]);
    }
}
