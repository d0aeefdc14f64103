//! Scope strings, as Entra reads them: OpenID Connect scopes with no resource, and
//! `<resource identifier>/<permission>` where the identifier is an App ID URI or an appId, split
//! at the last `/`; a bare permission means Microsoft Graph; `/.default` means every permission
//! granted for that resource.

use std::sync::Arc;

use crate::directory::{Application, Directory, GRAPH_RESOURCE};
use crate::error::EntraError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OidcScopes {
    pub openid: bool,
    pub profile: bool,
    pub email: bool,
    pub offline_access: bool,
}

impl OidcScopes {
    fn set(&mut self, name: &str) -> bool {
        match name.to_ascii_lowercase().as_str() {
            "openid" => self.openid = true,
            "profile" => self.profile = true,
            "email" => self.email = true,
            "offline_access" => self.offline_access = true,
            _ => return false,
        }
        true
    }

    /// The granted OIDC scopes in the order Entra lists them in a token response.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (self.profile, "profile"),
            (self.openid, "openid"),
            (self.email, "email"),
            (self.offline_access, "offline_access"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
    }
}

/// The permissions requested of one resource.
#[derive(Debug, Clone)]
pub struct ResourceScopes {
    pub app: Arc<Application>,
    /// The identifier as the client wrote it (`api://...`, an appId, Graph's URI): v1 tokens use
    /// it as `aud`.
    pub identifier: String,
    pub default: bool,
    /// Permission values as the resource defines them (canonical case).
    pub values: Vec<String>,
    /// The full scope strings as the client wrote them (echoed in the token response).
    pub requested: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Scopes {
    pub oidc: OidcScopes,
    pub resources: Vec<ResourceScopes>,
}

impl Scopes {
    pub fn parse(dir: &Directory, raw: &str) -> Result<Scopes, EntraError> {
        let mut out = Scopes::default();
        for item in raw.split_whitespace() {
            if out.oidc.set(item) {
                continue;
            }
            let (identifier, value) = match item.rfind('/') {
                Some(i) => (&item[..i], &item[i + 1..]),
                None => (GRAPH_RESOURCE, item),
            };
            let invalid = |reason: &str| EntraError::InvalidScope {
                scope: item.into(),
                reason: reason.into(),
            };
            if identifier.is_empty() || value.is_empty() {
                return Err(invalid(
                    "A scope is a resource identifier and a permission separated by '/'.",
                ));
            }
            let app = dir
                .resource(identifier)
                .ok_or_else(|| EntraError::UnknownResource {
                    identifier: identifier.into(),
                    tenant: dir.tenant.id.clone(),
                })?;
            let index = match out.resources.iter().position(|r| Arc::ptr_eq(&r.app, app)) {
                Some(i) => i,
                None => {
                    out.resources.push(ResourceScopes {
                        app: app.clone(),
                        identifier: identifier.into(),
                        default: false,
                        values: Vec::new(),
                        requested: Vec::new(),
                    });
                    out.resources.len() - 1
                }
            };
            let resource = &mut out.resources[index];
            if value == ".default" {
                resource.default = true;
            } else {
                let scope = app.scope_by_value(value).ok_or_else(|| {
                    invalid(&format!(
                        "The resource {} exposes no permission named '{value}'.",
                        app.display_name
                    ))
                })?;
                if !resource.values.contains(&scope.value) {
                    resource.values.push(scope.value.clone());
                }
            }
            if resource.default && !resource.values.is_empty() {
                return Err(invalid(
                    ".default scope can't be combined with resource-specific scopes.",
                ));
            }
            resource.requested.push(item.into());
        }
        Ok(out)
    }

    /// The one resource a token is for (Entra issues single-audience tokens).
    pub fn single_resource(&self, raw: &str) -> Result<Option<&ResourceScopes>, EntraError> {
        match self.resources.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(EntraError::MultipleResources(raw.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{demo, graph_application};

    fn dir() -> Directory {
        let seed = demo::seed(&demo::DemoSecrets {
            user_password: "p".into(),
            frontend_secret: "f".into(),
            backend_secret: "b".into(),
        });
        let _ = graph_application();
        Directory::new(
            seed.tenant,
            seed.users,
            seed.applications,
            seed.grants,
            seed.assignments,
        )
    }

    #[test]
    fn resolves_resources_and_oidc_scopes() {
        let d = dir();
        let raw = format!(
            "openid offline_access api://{}/user_impersonation",
            demo::BACKEND_APP_ID
        );
        let s = Scopes::parse(&d, &raw).expect("valid");
        assert!(s.oidc.openid && s.oidc.offline_access && !s.oidc.profile);
        let r = s.single_resource(&raw).expect("one").expect("some");
        assert_eq!(r.app.app_id, demo::BACKEND_APP_ID);
        assert_eq!(r.identifier, format!("api://{}", demo::BACKEND_APP_ID));
        assert_eq!(r.values, vec!["user_impersonation"]);
    }

    #[test]
    fn bare_permissions_mean_graph_and_two_resources_are_refused_for_tokens() {
        let d = dir();
        let raw = format!("User.Read {}/.default", demo::BACKEND_APP_ID);
        let s = Scopes::parse(&d, &raw).expect("valid");
        assert_eq!(s.resources.len(), 2);
        assert_eq!(s.resources[0].identifier, GRAPH_RESOURCE);
        assert!(s.resources[1].default);
        assert_eq!(s.single_resource(&raw).err().map(|e| e.code()), Some(28000));
    }

    #[test]
    fn precise_errors() {
        let d = dir();
        let code = |raw: &str| Scopes::parse(&d, raw).err().map(|e| e.code());
        assert_eq!(code("api://nobody/x"), Some(500011));
        assert_eq!(
            code(&format!("api://{}/nope", demo::BACKEND_APP_ID)),
            Some(70011)
        );
        assert_eq!(
            code(&format!(
                "api://{0}/.default api://{0}/user_impersonation",
                demo::BACKEND_APP_ID
            )),
            Some(70011)
        );
        assert_eq!(
            code("https://graph.microsoft.com//.default"),
            None,
            "documented double-slash form"
        );
    }
}
