//! The module's run-time state: settings, identity providers, the token validator, the cookie
//! keys and the session store. What it does with them lives by concern: identification in
//! [`crate::identity`], the injected headers in [`crate::injected`], the routes in
//! [`crate::routes`].

use std::sync::Arc;

use easyauth_store::Store;
use prometheus_client::registry::Registry;

use crate::cookies::CookieKeys;
use crate::ids::random_id;
use crate::metrics::{MeteredSessions, ModuleMetrics};
use crate::oidc::{OidcHttp, TokenValidator};
use crate::provider::IdentityProvider;
use crate::session_store::{SessionRecord, SessionStore, SessionStoreError, TokenStoreSessions};
use crate::settings::ModuleSettings;

/// The authentication module: settings, providers, keys, sessions, validator. Built by
/// [`crate::build()`]; served by [`crate::EasyAuthLayer`].
#[derive(Debug)]
pub struct Module {
    pub(crate) settings: ModuleSettings,
    pub(crate) providers: Vec<IdentityProvider>,
    pub(crate) validator: TokenValidator,
    pub(crate) keys: CookieKeys,
    pub(crate) sessions: Arc<dyn SessionStore>,
    /// Present once [`Module::instrument`] registered the metrics.
    pub(crate) metrics: Option<Arc<ModuleMetrics>>,
}

impl Module {
    /// A module whose sessions live in `store` (the token store).
    pub fn new(
        settings: ModuleSettings,
        providers: Vec<IdentityProvider>,
        http: OidcHttp,
        keys: CookieKeys,
        store: Arc<dyn Store>,
    ) -> Module {
        let sessions = Arc::new(TokenStoreSessions::new(store, settings.refresh_extension));
        Module::with_sessions(settings, providers, http, keys, sessions)
    }

    /// A module whose sessions live in `sessions` (e.g. [`crate::RedisSessions`]).
    pub fn with_sessions(
        settings: ModuleSettings,
        providers: Vec<IdentityProvider>,
        http: OidcHttp,
        keys: CookieKeys,
        sessions: Arc<dyn SessionStore>,
    ) -> Module {
        Module {
            settings,
            providers,
            validator: TokenValidator::new(http),
            keys,
            sessions,
            metrics: None,
        }
    }

    /// Where the sessions live.
    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.sessions
    }

    /// Records this module's metrics (requests, latencies, session store operations, refreshes,
    /// upstream errors, JWKS and discovery fetches) into `registry`, for a `/metrics` endpoint.
    /// Without it the module records nothing.
    pub fn instrument(mut self, registry: &mut Registry) -> Module {
        let discovery = self
            .providers
            .iter()
            .map(IdentityProvider::discovery_tally)
            .collect();
        let metrics = Arc::new(ModuleMetrics::register(
            registry,
            self.validator.jwks().clone(),
            discovery,
        ));
        self.sessions = Arc::new(MeteredSessions {
            inner: self.sessions,
            metrics: metrics.clone(),
        });
        self.metrics = Some(metrics);
        self
    }

    /// The resolved settings.
    pub fn settings(&self) -> &ModuleSettings {
        &self.settings
    }

    /// The configured identity providers, Entra first.
    pub fn providers(&self) -> &[IdentityProvider] {
        &self.providers
    }

    /// The provider `/.auth/login/<alias>` names.
    pub fn provider(&self, alias: &str) -> Option<&IdentityProvider> {
        self.providers
            .iter()
            .find(|p| p.alias().eq_ignore_ascii_case(alias))
    }

    /// The provider unauthenticated browsers are sent to.
    pub fn default_provider(&self) -> Option<&IdentityProvider> {
        match &self.settings.default_provider {
            Some(alias) => self.provider(alias),
            None => self.providers.first(),
        }
    }

    /// Stores a new session; returns its id.
    pub(crate) async fn create_session(
        &self,
        record: &SessionRecord,
    ) -> Result<String, SessionStoreError> {
        let sid = random_id();
        self.sessions.save(&sid, record).await?;
        Ok(sid)
    }

    /// Ends a session: remembers it as revoked until it would have expired (a replayed
    /// self-contained cookie is then refused), then deletes it from the token store.
    pub(crate) async fn end_session(
        &self,
        sid: &str,
        record: &SessionRecord,
    ) -> Result<(), SessionStoreError> {
        // Revoke first: a request between the two steps must not re-cache the session as live.
        self.sessions.revoke(sid, record).await?;
        self.sessions.delete(sid, Some(record)).await
    }
}
