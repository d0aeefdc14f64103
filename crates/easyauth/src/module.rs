//! The module's run-time state and the identities it recognises: a browser session (cookie), a
//! client-directed session (`X-ZUMO-AUTH`), or a validated bearer token.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use easyauth_store::Store;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::oidc::{OidcHttp, Rejection, TokenValidator, ValidatedToken};
use crate::paths::Exclusion;
use crate::principal::ClientPrincipal;
use crate::provider::Provider;
use crate::session::{CookieKeys, SESSION_COOKIE, chunked_cookie};
use crate::site::Site;

/// What happens to an unauthenticated request (after `requireAuthentication` is applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// 302 to sign-in for browsers, 401 for other clients.
    RedirectToLoginPage,
    AllowAnonymous,
    Return401,
    Return403,
    Return404,
}

/// Which `X-Forwarded-*` headers from the client are believed (`httpSettings.forwardProxy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardTrust {
    NoProxy,
    Standard,
    Custom {
        host_header: Option<String>,
        proto_header: Option<String>,
    },
}

/// Everything the pipeline needs, resolved from the auth settings and app settings.
#[derive(Debug, Clone)]
pub struct ModuleSettings {
    /// This site's external base URL (callbacks, redirect checks) when configured; without it
    /// the site is the host each request came to (see [`crate::site`]).
    pub public_url: Option<url::Url>,
    /// The scheme this module is served over (`http` or `https`), for sites taken from requests.
    pub scheme: &'static str,
    pub api_prefix: String,
    pub action: Action,
    pub exclusions: Vec<Exclusion>,
    /// Alias of the provider unauthenticated browsers are sent to.
    pub default_provider: Option<String>,
    pub token_store: bool,
    pub session_lifetime: Duration,
    /// `cookieExpiration.convention = IdentityProviderDerived`: a session lasts as long as the
    /// provider's token, not `timeToExpiration`.
    pub session_from_token: bool,
    pub refresh_extension: Duration,
    pub allowed_external_redirects: Vec<String>,
    pub forward: ForwardTrust,
    pub legacy_claims: bool,
    /// `login.preserveUrlFragmentsForLogins` (or `WEBSITE_AUTH_PRESERVE_URL_FRAGMENT`): the
    /// login route first asks the browser for the `#fragment`, so the user lands back on it.
    pub preserve_fragments: bool,
    pub development: bool,
    pub validate_nonce: bool,
    pub nonce_lifetime: Duration,
    /// `login.routes.logoutEndpoint`, when it replaces `<prefix>/logout`.
    pub logout_path: Option<String>,
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

/// The authentication module: settings, providers, keys, store, validator.
#[derive(Debug)]
pub struct Module {
    pub settings: ModuleSettings,
    pub providers: Vec<Provider>,
    pub validator: TokenValidator,
    pub keys: CookieKeys,
    pub store: Arc<dyn Store>,
    sessions: SessionCache,
}

/// Recently read sessions, so a signed-in browser's requests do not each query the token store.
/// Entries live [`SESSION_CACHE_TTL`]; this instance's own writes and sign-outs update them at
/// once, another instance's sign-out is seen within the TTL.
#[derive(Debug, Default)]
struct SessionCache {
    entries: std::sync::Mutex<
        std::collections::HashMap<String, (Arc<SessionRecord>, std::time::Instant)>,
    >,
}

const SESSION_CACHE_TTL: Duration = Duration::from_secs(5);
const SESSION_CACHE_MAX: usize = 10_000;

impl SessionCache {
    fn get(&self, sid: &str) -> Option<Arc<SessionRecord>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(sid)
            .filter(|(_, at)| at.elapsed() < SESSION_CACHE_TTL)
            .map(|(r, _)| r.clone())
    }

    fn put(&self, sid: &str, record: Arc<SessionRecord>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= SESSION_CACHE_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < SESSION_CACHE_TTL);
            if entries.len() >= SESSION_CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(sid.to_owned(), (record, std::time::Instant::now()));
    }

    fn remove(&self, sid: &str) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(sid);
    }
}

const SESSION_KIND: &str = "easyauth-session";
const ACCESS_TOKEN_INDEX: &str = "easyauth-access-token";
const REVOKED_KIND: &str = "easyauth-revoked-session";

/// A signed-in session, kept in the store (the token store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub provider: String,
    /// Claims of the ID token (or of the token used for client-directed sign-in).
    pub claims: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix time the access token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<i64>,
    /// Unix time the session itself ends (then `/.auth/refresh` may revive it for the grace).
    pub session_expires: i64,
    /// The headers the module injects for this session, built on first use; a refreshed
    /// session is a new record, so they never outlive the tokens they carry.
    #[serde(skip)]
    pub injected: crate::principal::InjectedCell,
}

/// What the session cookie holds: only a reference to the stored session.
#[derive(Debug, Serialize, Deserialize)]
struct SessionCookie {
    sid: String,
    /// With the token store off the cookie carries the session itself (no tokens), so instances
    /// sharing `WEBSITE_AUTH_ENCRYPTION_KEY` share sessions without sharing a store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<SessionRecord>,
}

/// The `X-ZUMO-AUTH` value, taken out of the headers before anything else runs (the app must never
/// see it) and handed to identification in the request's extensions.
#[derive(Debug, Clone)]
pub struct ZumoToken(pub String);

/// Who the request is from.
#[derive(Debug, Clone)]
pub enum Identity {
    Anonymous,
    /// A browser session (cookie) or client-directed session (`X-ZUMO-AUTH`).
    Session {
        sid: String,
        record: Arc<SessionRecord>,
        via_cookie: bool,
        chunks: usize,
    },
    /// A bearer token validated against a provider.
    Bearer {
        provider: String,
        token: Arc<ValidatedToken>,
    },
}

impl Identity {
    pub fn provider(&self) -> Option<&str> {
        match self {
            Identity::Anonymous => None,
            Identity::Session { record, .. } => Some(&record.provider),
            Identity::Bearer { provider, .. } => Some(provider),
        }
    }

    pub fn claims(&self) -> Option<&Map<String, Value>> {
        match self {
            Identity::Anonymous => None,
            Identity::Session { record, .. } => Some(&record.claims),
            Identity::Bearer { token, .. } => Some(token.claims()),
        }
    }
}

/// Why a presented credential was not accepted (the reason reaches the log).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("bearer token rejected: {0}")]
    Bearer(Rejection),
    #[error("no provider can validate bearer tokens: {0}")]
    NoProvider(String),
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn sha256_hex(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Claims of the `X-ZUMO-AUTH` token (App Service's "authenticationToken").
#[derive(Debug, Serialize, Deserialize)]
struct ZumoClaims {
    sub: String,
    sid: String,
    idp: String,
    ver: String,
    iss: String,
    aud: String,
    exp: i64,
    nbf: i64,
}

impl Module {
    pub fn new(
        settings: ModuleSettings,
        providers: Vec<Provider>,
        http: OidcHttp,
        keys: CookieKeys,
        store: Arc<dyn Store>,
    ) -> Module {
        Module {
            settings,
            providers,
            validator: TokenValidator::new(http),
            keys,
            store,
            sessions: SessionCache::default(),
        }
    }

    pub fn provider(&self, alias: &str) -> Option<&Provider> {
        self.providers
            .iter()
            .find(|p| p.alias().eq_ignore_ascii_case(alias))
    }

    /// The provider unauthenticated browsers are sent to.
    pub fn default_provider(&self) -> Option<&Provider> {
        match &self.settings.default_provider {
            Some(alias) => self.provider(alias),
            None => self.providers.first(),
        }
    }

    // ---- sessions ----------------------------------------------------------------------

    /// Stores a new session; returns its id.
    pub async fn create_session(
        &self,
        record: &SessionRecord,
    ) -> Result<String, easyauth_store::StoreError> {
        let sid = random_id();
        self.save_session(&sid, record).await?;
        Ok(sid)
    }

    pub async fn save_session(
        &self,
        sid: &str,
        record: &SessionRecord,
    ) -> Result<(), easyauth_store::StoreError> {
        self.sessions.remove(sid);
        let json = serde_json::to_string(record).unwrap_or_default();
        let keep_until = record.session_expires + self.settings.refresh_extension.as_secs() as i64;
        self.store
            .put_ephemeral(SESSION_KIND, sid, &json, keep_until)
            .await?;
        if let Some(at) = &record.access_token {
            self.store
                .put_ephemeral(
                    ACCESS_TOKEN_INDEX,
                    &sha256_hex(at.as_bytes()),
                    sid,
                    keep_until,
                )
                .await?;
        }
        Ok(())
    }

    /// The stored session `sid`; shared, not copied, so what is built from it once (the
    /// injected headers) serves every request of the session while it is cached.
    pub async fn load_session(&self, sid: &str) -> Option<Arc<SessionRecord>> {
        if let Some(record) = self.sessions.get(sid) {
            return Some(record);
        }
        let json = self
            .store
            .get_ephemeral(SESSION_KIND, sid, now())
            .await
            .ok()??;
        let record: Arc<SessionRecord> = Arc::new(serde_json::from_str(&json).ok()?);
        self.sessions.put(sid, record.clone());
        Some(record)
    }

    pub async fn delete_session(&self, sid: &str, record: Option<&SessionRecord>) {
        self.sessions.remove(sid);
        let _ = self.store.delete_ephemeral(SESSION_KIND, sid).await;
        if let Some(at) = record.and_then(|r| r.access_token.as_ref()) {
            let _ = self
                .store
                .delete_ephemeral(ACCESS_TOKEN_INDEX, &sha256_hex(at.as_bytes()))
                .await;
        }
    }

    /// The session whose current access token is exactly `access_token` (the bearer style of
    /// `/.auth/refresh` the tutorial's sample uses).
    pub async fn session_by_access_token(
        &self,
        access_token: &str,
    ) -> Option<(String, Arc<SessionRecord>)> {
        let sid = self
            .store
            .get_ephemeral(
                ACCESS_TOKEN_INDEX,
                &sha256_hex(access_token.as_bytes()),
                now(),
            )
            .await
            .ok()??;
        let record = self.load_session(&sid).await?;
        (record.access_token.as_deref() == Some(access_token)).then_some((sid, record))
    }

    /// `Set-Cookie` values for a session cookie.
    pub fn session_cookies(
        &self,
        site: &Site,
        sid: &str,
        record: &SessionRecord,
        previous_chunks: usize,
    ) -> Vec<String> {
        let cookie = SessionCookie {
            sid: sid.to_owned(),
            record: (!self.settings.token_store).then(|| record.clone()),
        };
        let sealed = self.keys.seal(
            SESSION_COOKIE,
            &serde_json::to_vec(&cookie).unwrap_or_default(),
        );
        site.cookie_style()
            .set_chunked(SESSION_COOKIE, &sealed, previous_chunks)
    }

    /// Ends a session: deletes it from the token store, and remembers self-contained cookie
    /// sessions as revoked until they would have expired (a replayed cookie is then refused).
    pub async fn end_session(&self, sid: &str, record: &SessionRecord) {
        // Revoke first: a request between the two steps must not re-cache the session as live.
        let until = record.session_expires + self.settings.refresh_extension.as_secs() as i64;
        let _ = self
            .store
            .put_ephemeral(REVOKED_KIND, sid, "1", until)
            .await;
        self.delete_session(sid, Some(record)).await;
    }

    // ---- X-ZUMO-AUTH ----------------------------------------------------------------------

    /// An `authenticationToken` for a client-directed session; issued by and for `site`.
    pub fn zumo_token(&self, site: &Site, sid: &str, provider: &str, expires: i64) -> String {
        let claims = ZumoClaims {
            sub: format!("sid:{}", &sha256_hex(sid.as_bytes())[..32]),
            sid: sid.to_owned(),
            idp: provider.to_owned(),
            ver: "3".into(),
            iss: site.base(),
            aud: site.base(),
            exp: expires,
            nbf: now(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.keys.signing),
        )
        .unwrap_or_default()
    }

    pub fn zumo_user_id(sid: &str) -> String {
        format!("sid:{}", &sha256_hex(sid.as_bytes())[..32])
    }

    /// The session id in a valid `X-ZUMO-AUTH` token (HS256 with this site's signing key only).
    fn zumo_session(&self, site: &Site, token: &str, grace: bool) -> Option<String> {
        if token.len() > crate::oidc::validate::MAX_TOKEN_LEN {
            return None;
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[site.base()]);
        validation.set_issuer(&[site.base()]);
        validation.leeway = if grace {
            self.settings.refresh_extension.as_secs()
        } else {
            0
        };
        jsonwebtoken::decode::<ZumoClaims>(
            token,
            &DecodingKey::from_secret(&self.keys.signing),
            &validation,
        )
        .ok()
        .map(|d| d.claims.sid)
    }

    // ---- identification ----------------------------------------------------------------

    /// The session named by the request's cookie or `X-ZUMO-AUTH`. With `grace`, a session past
    /// its end but within `tokenRefreshExtensionHours` counts (only `/.auth/refresh` asks that).
    pub async fn session(
        &self,
        site: &Site,
        headers: &HeaderMap,
        zumo: Option<&str>,
        grace: bool,
    ) -> Option<Identity> {
        let live = |r: &Arc<SessionRecord>| grace || r.session_expires > now();
        if let Some((sealed, chunks)) = chunked_cookie(headers, SESSION_COOKIE)
            && let Some(cookie) = self
                .keys
                .open(SESSION_COOKIE, &sealed)
                .and_then(|p| serde_json::from_slice::<SessionCookie>(&p).ok())
            && let Some(record) = self.cookie_record(&cookie).await.filter(live)
        {
            return Some(Identity::Session {
                sid: cookie.sid,
                record,
                via_cookie: true,
                chunks,
            });
        }
        if let Some(zumo) = zumo
            && let Some(sid) = self.zumo_session(site, zumo.trim(), grace)
            && let Some(record) = self.load_session(&sid).await.filter(live)
        {
            return Some(Identity::Session {
                sid,
                record,
                via_cookie: false,
                chunks: 0,
            });
        }
        None
    }

    /// The session a cookie names: carried in it (token store off) unless revoked, or stored.
    async fn cookie_record(&self, cookie: &SessionCookie) -> Option<Arc<SessionRecord>> {
        let Some(record) = &cookie.record else {
            return self.load_session(&cookie.sid).await;
        };
        // "Not revoked" is remembered like a stored session (same TTL); this instance's own
        // sign-outs remove the entry at once.
        // The same record as last time is shared, so what was built from it (the injected
        // headers) is reused; a different one (a refreshed cookie) is checked again below.
        if let Some(cached) = self.sessions.get(&cookie.sid)
            && *cached == *record
        {
            return Some(cached);
        }
        let revoked = self
            .store
            .get_ephemeral(REVOKED_KIND, &cookie.sid, now())
            .await
            .ok()
            .flatten()
            .is_some();
        if revoked {
            return None;
        }
        let record = Arc::new(record.clone());
        self.sessions.put(&cookie.sid, record.clone());
        Some(record)
    }

    /// Identifies the caller. `Err` means a bearer token was presented and refused (401).
    pub async fn identify(
        &self,
        site: &Site,
        headers: &HeaderMap,
        zumo: Option<&str>,
    ) -> Result<Identity, CredentialError> {
        if let Some(session) = self.session(site, headers, zumo, false).await {
            return Ok(session);
        }
        if let Some(token) = bearer(headers) {
            return self
                .validate_bearer(token)
                .await
                .map(|(provider, token)| Identity::Bearer { provider, token });
        }
        Ok(Identity::Anonymous)
    }

    /// Validates a bearer token against the providers that accept bearer tokens (Entra first).
    pub async fn validate_bearer(
        &self,
        token: &str,
    ) -> Result<(String, Arc<ValidatedToken>), CredentialError> {
        let mut last = None;
        for provider in &self.providers {
            let policy = match provider.bearer_policy().await {
                Ok(p) => p,
                Err(e) => {
                    last = Some(CredentialError::NoProvider(e));
                    continue;
                }
            };
            match self.validator.validate(token, &policy).await {
                Ok(t) => return Ok((provider.alias().to_owned(), t)),
                Err(e) => last = Some(CredentialError::Bearer(e)),
            }
        }
        Err(last.unwrap_or_else(|| {
            CredentialError::NoProvider("no identity provider is configured".into())
        }))
    }

    /// The principal for an identity.
    /// The principal and token headers for `identity`, built once per session record or
    /// validated token.
    pub fn injected_headers(
        &self,
        identity: &Identity,
    ) -> Option<crate::principal::InjectedHeaders> {
        let cell = match identity {
            Identity::Anonymous => return None,
            Identity::Session { record, .. } => &record.injected,
            Identity::Bearer { token, .. } => token.injected(),
        };
        Some(cell.get_or_init(|| self.build_injected_headers(identity)))
    }

    fn build_injected_headers(&self, identity: &Identity) -> crate::principal::InjectedHeaders {
        let mut headers = HeaderMap::new();
        if let Some(principal) = self.principal(identity) {
            principal.insert_headers(&mut headers);
        }
        if let Identity::Session { record, .. } = identity
            && self.settings.token_store
        {
            let prefix = format!("x-ms-token-{}-", record.provider.to_ascii_lowercase());
            let mut put = |suffix: &str, value: Option<String>| {
                if let (Some(v), Ok(name)) = (
                    value,
                    HeaderName::from_bytes(format!("{prefix}{suffix}").as_bytes()),
                ) && let Ok(v) = HeaderValue::from_str(&v)
                {
                    headers.insert(name, v);
                }
            };
            put("access-token", record.access_token.clone());
            put("id-token", record.id_token.clone());
            put("refresh-token", record.refresh_token.clone());
            put(
                "expires-on",
                record.expires_on.map(crate::routes::expires_on),
            );
        }
        headers
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    pub fn principal(&self, identity: &Identity) -> Option<ClientPrincipal> {
        let provider = identity.provider()?;
        let name_claim = self
            .provider(provider)
            .and_then(|p| p.settings.name_claim.clone());
        Some(ClientPrincipal::from_claims(
            provider,
            identity.claims()?,
            self.settings.legacy_claims,
            name_claim.as_deref(),
        ))
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub(crate) fn random_id() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source failed");
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}
