//! The outbound HTTP client for identity providers: discovery, JWKS and the token endpoint.
//!
//! One `reqwest::Client` (rustls with aws-lc-rs) is shared by every clone so connections are
//! pooled. It trusts the operating system's roots plus the PEM file named by `SSL_CERT_FILE`
//! (merged explicitly: rustls-native-certs would otherwise use that file *instead of* the OS
//! store), plus any extra roots given by the caller, e.g. the local CA of `easyauth up`.

use std::time::Duration;

use reqwest::{Certificate, Client, StatusCode, Url, redirect};
use serde::de::DeserializeOwned;

/// Time allowed to establish a connection (TCP + TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a whole request, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read from a provider; discovery and JWKS documents are a few KiB.
pub const MAX_BODY: usize = 1 << 20;

/// Errors building the client or talking to a provider. Messages name the URL, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot set up the outbound HTTPS client: {0}")]
    Setup(String),
    #[error("{method} {url}: {reason}")]
    Request {
        method: &'static str,
        url: String,
        reason: String,
    },
    #[error("{method} {url}: HTTP {status}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
    },
    #[error("{method} {url}: the response is larger than {limit} bytes")]
    TooLarge {
        method: &'static str,
        url: String,
        limit: usize,
    },
    #[error("{method} {url}: the response is not the expected JSON: {reason}")]
    Json {
        method: &'static str,
        url: String,
        reason: String,
    },
}

/// A raw response: status and (size-bounded) body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// The shared outbound client. Cloning is cheap and shares the connection pool.
#[derive(Debug, Clone)]
pub struct OidcHttp {
    client: Client,
}

impl OidcHttp {
    /// OS roots plus `SSL_CERT_FILE`.
    pub fn new() -> Result<OidcHttp, HttpError> {
        Self::with_roots(Vec::new())
    }

    /// OS roots plus `SSL_CERT_FILE` plus every certificate in `pem` (one or more PEM blocks).
    pub fn with_extra_root_pem(pem: &[u8]) -> Result<OidcHttp, HttpError> {
        let certs = Certificate::from_pem_bundle(pem)
            .map_err(|e| HttpError::Setup(format!("the extra root PEM is unusable: {e}")))?;
        if certs.is_empty() {
            return Err(HttpError::Setup(
                "the extra root PEM holds no certificate".into(),
            ));
        }
        Self::with_roots(certs)
    }

    fn with_roots(roots: Vec<Certificate>) -> Result<OidcHttp, HttpError> {
        Self::build(std::env::var_os("SSL_CERT_FILE"), roots)
    }

    fn build(
        ssl_cert_file: Option<std::ffi::OsString>,
        mut roots: Vec<Certificate>,
    ) -> Result<OidcHttp, HttpError> {
        if let Some(path) = ssl_cert_file.filter(|p| !p.is_empty()) {
            // A named file that cannot be read is a configuration error worth stopping for: the
            // operator expects those roots to be trusted.
            let pem = std::fs::read(&path).map_err(|e| {
                HttpError::Setup(format!("SSL_CERT_FILE {}: {e}", path.to_string_lossy()))
            })?;
            let certs = Certificate::from_pem_bundle(&pem).map_err(|e| {
                HttpError::Setup(format!("SSL_CERT_FILE {}: {e}", path.to_string_lossy()))
            })?;
            roots.extend(certs);
        }
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(redirect::Policy::custom(redirect_policy))
            .user_agent(concat!("easyauth/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(roots)
            .build()
            .map_err(|e| HttpError::Setup(error_chain(&e)))?;
        Ok(OidcHttp { client })
    }

    /// GETs `url` and parses a 2xx JSON body as `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, HttpError> {
        let response = self.send("GET", self.client.get(url), url).await?;
        if !response.status.is_success() {
            return Err(HttpError::Status {
                method: "GET",
                url: url.to_owned(),
                status: response.status.as_u16(),
            });
        }
        parse_json("GET", url, &response.body)
    }

    /// POSTs an `application/x-www-form-urlencoded` body; any status is returned to the caller
    /// because OAuth errors arrive as 4xx JSON.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<HttpResponse, HttpError> {
        let request = self
            .client
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form);
        self.send("POST", request, url).await
    }

    async fn send(
        &self,
        method: &'static str,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<HttpResponse, HttpError> {
        let request_error = |e: &reqwest::Error| HttpError::Request {
            method,
            url: url.to_owned(),
            reason: error_chain(e),
        };
        let mut response = request.send().await.map_err(|e| request_error(&e))?;
        let status = response.status();
        let too_large = || HttpError::TooLarge {
            method,
            url: url.to_owned(),
            limit: MAX_BODY,
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(too_large());
        }
        // Read chunk by chunk so a provider cannot make us buffer an unbounded body.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| request_error(&e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse { status, body })
    }
}

pub(crate) fn parse_json<T: DeserializeOwned>(
    method: &'static str,
    url: &str,
    body: &[u8],
) -> Result<T, HttpError> {
    serde_json::from_slice(body).map_err(|e| HttpError::Json {
        method,
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

/// Follows at most 5 redirects and never from https to plain http on a non-loopback host, so a
/// redirect cannot silently downgrade where keys come from.
fn redirect_policy(attempt: redirect::Attempt<'_>) -> redirect::Action {
    if attempt.previous().len() >= 5 {
        return attempt.error("too many redirects");
    }
    let downgrade = attempt.url().scheme() != "https"
        && !is_loopback(attempt.url())
        && attempt.previous().iter().any(|u| u.scheme() == "https");
    if downgrade {
        return attempt.error("refusing a redirect from https to plain http");
    }
    attempt.follow()
}

/// `localhost`, `*.localhost`, 127.0.0.0/8 and ::1: hosts where plain http cannot leave the machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// reqwest's `Display` says only "error sending request"; the cause (DNS, TLS, refused) is in the
/// source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        let loopback = |s: &str| is_loopback(&Url::parse(s).expect("url"));
        assert!(loopback("http://localhost:8080/x"));
        assert!(loopback("http://idp.localhost/x"));
        assert!(loopback("http://127.0.0.1/x"));
        assert!(loopback("http://127.8.9.1/x"));
        assert!(loopback("http://[::1]:80/x"));
        assert!(!loopback("http://example.com/x"));
        assert!(!loopback("http://localhost.example.com/x"));
        assert!(!loopback("http://10.0.0.1/x"));
    }

    #[test]
    fn ssl_cert_file_is_read_when_named() {
        let missing = std::env::temp_dir().join("easyauth-no-such-bundle.pem");
        let err = OidcHttp::build(Some(missing.into_os_string()), Vec::new())
            .expect_err("a named but missing file is an error");
        assert!(err.to_string().contains("SSL_CERT_FILE"), "{err}");
        assert!(OidcHttp::build(None, Vec::new()).is_ok());
        assert!(OidcHttp::build(Some("".into()), Vec::new()).is_ok());
    }

    #[test]
    fn rejects_an_empty_extra_root() {
        assert!(matches!(
            OidcHttp::with_extra_root_pem(b"not a pem"),
            Err(HttpError::Setup(_))
        ));
    }
}
