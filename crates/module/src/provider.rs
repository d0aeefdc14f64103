//! One configured identity provider at run time: Entra (`aad`) or a custom OpenID Connect
//! provider. Discovery happens on first use and is retried until it succeeds, so the module
//! starts even while its provider is still coming up.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::authz::AadAuthorization;
use crate::oidc::{
    ClientCredentials, FetchTally, OidcHttp, PreparedPolicy, ProviderMetadata, TokenClient,
    ValidationPolicy, aad_issuers,
};

/// Which kind of provider: Entra's rules or a custom provider's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Microsoft Entra ID (`azureActiveDirectory`): v1 and v2 issuers, Entra's authorization rules.
    Aad,
    /// `customOpenIdConnectProviders.<name>`: `aud` must be the client id.
    Custom,
}

/// What the configuration says about a provider, resolved (secrets read from app settings).
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// URL alias: `aad`, or the custom provider's name in lower case.
    pub alias: String,
    /// Entra or custom.
    pub kind: ProviderKind,
    /// The app registration's client id.
    pub client_id: String,
    /// The client secret (from the app setting `clientSecretSettingName` names).
    pub client_secret: Option<String>,
    /// `openIdIssuer` (Entra) or the issuer a custom provider's discovery must report.
    pub issuer: Option<String>,
    /// Where the discovery document is.
    pub discovery_url: String,
    /// Bearer-token audiences (`allowedAudiences` ∪ {client id, `api://<client id>`}).
    pub audiences: Vec<String>,
    /// Scope for sign-in (`scope=` in loginParameters, else `openid profile email`).
    pub scope: String,
    /// Other `loginParameters` (`key=value`), appended to the authorize request.
    pub extra_login_parameters: Vec<(String, String)>,
    /// Entra's authorization rules (empty for custom providers).
    pub authorization: AadAuthorization,
    /// `validation.disableWWWAuthenticate`: no challenge on a 401.
    pub disable_www_authenticate: bool,
    /// Custom providers' `login.nameClaimType`.
    pub name_claim: Option<String>,
}

/// One configured identity provider at run time.
#[derive(Debug)]
pub struct IdentityProvider {
    /// What the configuration says about it.
    pub settings: ProviderSettings,
    http: OidcHttp,
    metadata: OnceCell<Arc<ProviderMetadata>>,
    /// Discovery fetches, for the metrics (shared with their collector).
    discovery: Arc<FetchTally>,
    /// [`Provider::bearer_policy`], built once with its fingerprint (it depends only on the
    /// settings and the discovery document, both fixed once fetched).
    bearer: OnceCell<Arc<PreparedPolicy>>,
}

impl IdentityProvider {
    /// A provider whose discovery happens on first use, over `http`.
    pub fn new(settings: ProviderSettings, http: OidcHttp) -> IdentityProvider {
        IdentityProvider {
            settings,
            http,
            metadata: OnceCell::new(),
            discovery: Arc::default(),
            bearer: OnceCell::new(),
        }
    }

    /// The URL alias (`aad`, a custom provider's name in lower case).
    pub fn alias(&self) -> &str {
        &self.settings.alias
    }

    /// Whether the discovery document has been fetched (readiness: no fetch, no wait).
    pub fn has_metadata(&self) -> bool {
        self.metadata.initialized()
    }

    /// The count of discovery fetches, shared with the metrics.
    pub(crate) fn discovery_tally(&self) -> Arc<FetchTally> {
        self.discovery.clone()
    }

    /// The provider's discovery document (fetched once; a failure is retried on the next call).
    pub async fn metadata(&self) -> Result<Arc<ProviderMetadata>, String> {
        self.metadata
            .get_or_try_init(|| async {
                let fetched =
                    ProviderMetadata::fetch(&self.http, &self.settings.discovery_url).await;
                self.discovery.record(fetched.is_ok());
                let md = fetched.map_err(|e| {
                    format!("discovery of {} failed: {e}", self.settings.discovery_url)
                })?;
                if let Some(expected) = &self.settings.issuer
                    && self.settings.kind == ProviderKind::Custom
                    && expected.trim_end_matches('/') != md.issuer.trim_end_matches('/')
                {
                    return Err(format!(
                        "{} reports issuer {} but the configuration says {expected}",
                        self.settings.discovery_url, md.issuer
                    ));
                }
                Ok(Arc::new(md))
            })
            .await
            .cloned()
    }

    /// Issuers accepted in tokens: for Entra both the v1 and v2 forms of the tenant.
    fn issuers(&self, md: &ProviderMetadata) -> Vec<String> {
        match self.settings.kind {
            ProviderKind::Aad => {
                let mut all = aad_issuers(self.settings.issuer.as_deref().unwrap_or(&md.issuer));
                for i in aad_issuers(&md.issuer) {
                    if !all.contains(&i) {
                        all.push(i);
                    }
                }
                all
            }
            ProviderKind::Custom => vec![md.issuer.clone()],
        }
    }

    /// Policy for bearer tokens sent to the app.
    pub async fn bearer_policy(&self) -> Result<ValidationPolicy, String> {
        let md = self.metadata().await?;
        let audiences = match self.settings.kind {
            ProviderKind::Aad => self.settings.audiences.clone(),
            ProviderKind::Custom => vec![self.settings.client_id.clone()],
        };
        Ok(ValidationPolicy::new(
            self.issuers(&md),
            audiences,
            md.jwks_uri.clone(),
        ))
    }

    /// [`Provider::bearer_policy`] for every request: built on first use, then shared.
    pub async fn prepared_bearer_policy(&self) -> Result<Arc<PreparedPolicy>, String> {
        self.bearer
            .get_or_try_init(|| async {
                Ok(Arc::new(PreparedPolicy::new(self.bearer_policy().await?)))
            })
            .await
            .cloned()
    }

    /// Policy for ID tokens from sign-in: the audience is this app's client id.
    pub async fn id_token_policy(&self) -> Result<ValidationPolicy, String> {
        let md = self.metadata().await?;
        Ok(ValidationPolicy::new(
            self.issuers(&md),
            vec![self.settings.client_id.clone()],
            md.jwks_uri.clone(),
        ))
    }

    /// A client of the provider's token endpoint with this app's credentials.
    pub async fn token_client(&self) -> Result<TokenClient, String> {
        let md = self.metadata().await?;
        let credentials = ClientCredentials {
            client_id: self.settings.client_id.clone(),
            client_secret: self.settings.client_secret.clone(),
        };
        let endpoint = md.token_endpoint.clone().ok_or_else(|| {
            format!(
                "{} publishes no token endpoint",
                self.settings.discovery_url
            )
        })?;
        Ok(TokenClient::new(self.http.clone(), endpoint, credentials))
    }

    /// The `authorization_uri` of the 401 challenge.
    pub async fn authorization_endpoint(&self) -> Option<String> {
        self.metadata()
            .await
            .ok()
            .map(|m| m.authorization_endpoint.clone())
    }
}
