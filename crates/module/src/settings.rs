//! The module's settings at run time, resolved from the auth settings and the app settings by
//! [`crate::build`].

use std::time::Duration;

use crate::clock::now;
use crate::paths::Exclusion;
use crate::site::Site;

/// What happens to an unauthenticated request (after `requireAuthentication` is applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// 302 to sign-in for browsers, 401 for other clients.
    RedirectToLoginPage,
    /// The request goes to the app without an identity.
    AllowAnonymous,
    /// 401 with App Service's challenge.
    Return401,
    /// 403.
    Return403,
    /// 404.
    Return404,
}

/// Which `X-Forwarded-*` headers from the client are believed (`httpSettings.forwardProxy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardTrust {
    /// None: the module is the front door.
    NoProxy,
    /// `X-Forwarded-Host` and `X-Forwarded-Proto`.
    Standard,
    /// The headers `customHostHeaderName` / `customProtoHeaderName` name.
    Custom {
        /// The header that carries the original host.
        host_header: Option<String>,
        /// The header that carries the original scheme.
        proto_header: Option<String>,
    },
}

/// Everything the pipeline needs, resolved from the auth settings and app settings.
#[derive(Debug, Clone)]
pub struct ModuleSettings {
    /// This site's external base URL (callbacks, redirect checks) when configured; without it
    /// the site is the host each request came to (see [`Site`]).
    pub public_url: Option<url::Url>,
    /// The scheme this module is served over (`http` or `https`), for sites taken from requests.
    pub scheme: &'static str,
    /// `httpSettings.routes.apiPrefix`, `/.auth` by default.
    pub api_prefix: String,
    /// The unauthenticated action.
    pub action: Action,
    /// `globalValidation.excludedPaths`.
    pub exclusions: Vec<Exclusion>,
    /// Alias of the provider unauthenticated browsers are sent to.
    pub default_provider: Option<String>,
    /// `login.tokenStore.enabled`.
    pub token_store: bool,
    /// `login.cookieExpiration.timeToExpiration`.
    pub session_lifetime: Duration,
    /// `cookieExpiration.convention = IdentityProviderDerived`: a session lasts as long as the
    /// provider's token, not `timeToExpiration`.
    pub session_from_token: bool,
    /// `login.tokenStore.tokenRefreshExtensionHours`.
    pub refresh_extension: Duration,
    /// `login.allowedExternalRedirectUrls`.
    pub allowed_external_redirects: Vec<String>,
    /// `httpSettings.forwardProxy`.
    pub forward: ForwardTrust,
    /// Short claim names rewritten to WS-Federation claim types (`WEBSITE_AUTH_USE_LEGACY_CLAIMS`).
    pub legacy_claims: bool,
    /// `login.preserveUrlFragmentsForLogins` (or `WEBSITE_AUTH_PRESERVE_URL_FRAGMENT`): the
    /// login route first asks the browser for the `#fragment`, so the user lands back on it.
    pub preserve_fragments: bool,
    /// Refusals explain themselves in the response (body and reason headers), not only in the log.
    pub development: bool,
    /// `login.nonce.validateNonce`.
    pub validate_nonce: bool,
    /// `login.nonce.nonceExpirationInterval`.
    pub nonce_lifetime: Duration,
    /// `login.routes.logoutEndpoint`, when it replaces `<prefix>/logout`.
    pub logout_path: Option<String>,
    /// `httpSettings.requireHttps`.
    pub require_https: bool,
}

impl ModuleSettings {
    /// When a session starting now ends, given the provider token's expiry.
    pub fn session_end(&self, token_expires: Option<i64>) -> i64 {
        match token_expires.filter(|_| self.session_from_token) {
            Some(exp) => exp,
            None => now() + self.session_lifetime.as_secs() as i64,
        }
    }

    /// The configured site, if any.
    pub fn configured_site(&self) -> Option<Site> {
        self.public_url.as_ref().and_then(Site::from_url)
    }
}
