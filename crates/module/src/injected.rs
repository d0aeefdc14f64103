//! What the app is told about the caller: the `X-MS-CLIENT-PRINCIPAL*` headers and, with the
//! token store on, the `X-MS-TOKEN-<PROVIDER>-*` headers. `/.auth/me` builds its principal with
//! the same [`Module::principal_for`].

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::clock::expires_on;
use crate::identity::Identity;
use crate::module::Module;
use crate::principal::{ClientPrincipal, InjectedHeaders};

impl Module {
    /// The principal of a user of `provider` with these claims, as the app sees it.
    pub(crate) fn principal_for(
        &self,
        provider: &str,
        claims: &Map<String, Value>,
    ) -> ClientPrincipal {
        let name_claim = self
            .provider(provider)
            .and_then(|p| p.settings.name_claim.as_deref());
        ClientPrincipal::from_claims(provider, claims, self.settings.legacy_claims, name_claim)
    }

    /// The principal of `identity`, if it is not anonymous.
    pub fn principal(&self, identity: &Identity) -> Option<ClientPrincipal> {
        Some(self.principal_for(identity.provider()?, identity.claims()?))
    }

    /// The principal and token headers for `identity`, built once per session record or
    /// validated token.
    pub(crate) fn injected_headers(&self, identity: &Identity) -> Option<InjectedHeaders> {
        let cell = match identity {
            Identity::Anonymous => return None,
            Identity::Session { record, .. } => &record.injected,
            Identity::Bearer { token, .. } => token.injected(),
        };
        Some(cell.get_or_init(|| self.build_injected_headers(identity)))
    }

    fn build_injected_headers(&self, identity: &Identity) -> InjectedHeaders {
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
            put("expires-on", record.expires_on.map(expires_on));
        }
        headers
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }
}
