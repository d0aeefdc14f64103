//! App Service's built-in authorization for Entra identities: after a token has
//! been validated, the logical AND of `allowedApplications`, `allowedPrincipals`,
//! `jwtClaimChecks` and the tenant list. Any failure is a 403 whose reason says exactly which
//! rule failed and what to change.

use serde_json::{Map, Value};

/// The authorization rules of one Entra provider configuration.
#[derive(Debug, Clone, Default)]
pub struct AadAuthorization {
    /// `defaultAuthorizationPolicy.allowedApplications`: client ids (`azp`/`appid`).
    pub allowed_applications: Vec<String>,
    /// `jwtClaimChecks.allowedClientApplications`: client ids, the older spelling of the same rule.
    pub allowed_client_applications: Vec<String>,
    /// `defaultAuthorizationPolicy.allowedPrincipals.identities`: object ids (`oid`).
    pub allowed_identities: Vec<String>,
    /// `defaultAuthorizationPolicy.allowedPrincipals.groups`: group object ids.
    pub allowed_principal_groups: Vec<String>,
    /// `jwtClaimChecks.allowedGroups`: group object ids that must appear in `groups`.
    pub allowed_groups: Vec<String>,
    /// `WEBSITE_AUTH_AAD_ALLOWED_TENANTS`: tenant ids (`tid`).
    pub allowed_tenants: Vec<String>,
    /// `WEBSITE_AUTH_AAD_REQUIRE_CLIENT_SERVICE_PRINCIPAL`: the token must carry `oid`.
    pub require_oid: bool,
}

/// Why a validated identity is refused (403).
// Each variant's message says which rule failed with which values; that is its documentation.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error(
        "client app {client} not in allowedApplications {allowed:?}: add it to identityProviders.azureActiveDirectory.validation.defaultAuthorizationPolicy.allowedApplications"
    )]
    Application {
        client: String,
        allowed: Vec<String>,
    },
    #[error("client app {client} not in jwtClaimChecks.allowedClientApplications {allowed:?}")]
    ClientApplication {
        client: String,
        allowed: Vec<String>,
    },
    #[error("the token names no client application (azp/appid) but allowedApplications is set")]
    NoClientApplication,
    #[error(
        "principal {oid} is not in allowedPrincipals (identities {identities:?}, groups {groups:?})"
    )]
    Principal {
        oid: String,
        identities: Vec<String>,
        groups: Vec<String>,
    },
    #[error("the token has no groups claim but jwtClaimChecks.allowedGroups {allowed:?} is set")]
    NoGroups { allowed: Vec<String> },
    #[error("none of the token's groups is in jwtClaimChecks.allowedGroups {allowed:?}")]
    Groups { allowed: Vec<String> },
    #[error("tenant {tid} is not in WEBSITE_AUTH_AAD_ALLOWED_TENANTS {allowed:?}")]
    Tenant { tid: String, allowed: Vec<String> },
    #[error("the token has no oid claim, which this app requires")]
    NoObjectId,
}

fn contains(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v.eq_ignore_ascii_case(value))
}

fn strings<'a>(claims: &'a Map<String, Value>, name: &str) -> Vec<&'a str> {
    match claims.get(name) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

impl AadAuthorization {
    /// Checks validated claims. `is_access_token` is false for ID tokens (browser sessions),
    /// which carry no client application and are not subject to the application rules.
    pub fn check(&self, claims: &Map<String, Value>, is_access_token: bool) -> Result<(), Denial> {
        let text = |k: &str| claims.get(k).and_then(Value::as_str);
        let client = text("azp").or_else(|| text("appid"));
        if is_access_token {
            for (list, jwt_rule) in [
                (&self.allowed_applications, false),
                (&self.allowed_client_applications, true),
            ] {
                if list.is_empty() {
                    continue;
                }
                let Some(client) = client else {
                    return Err(Denial::NoClientApplication);
                };
                if !contains(list, client) {
                    return Err(if jwt_rule {
                        Denial::ClientApplication {
                            client: client.into(),
                            allowed: list.clone(),
                        }
                    } else {
                        Denial::Application {
                            client: client.into(),
                            allowed: list.clone(),
                        }
                    });
                }
            }
        }
        let oid = text("oid");
        if (self.require_oid || !self.allowed_identities.is_empty()) && oid.is_none() {
            return Err(Denial::NoObjectId);
        }
        let groups = strings(claims, "groups");
        if !self.allowed_identities.is_empty() || !self.allowed_principal_groups.is_empty() {
            let by_identity = oid.is_some_and(|o| contains(&self.allowed_identities, o));
            let by_group = groups
                .iter()
                .any(|g| contains(&self.allowed_principal_groups, g));
            if !by_identity && !by_group {
                return Err(Denial::Principal {
                    oid: oid.unwrap_or("(none)").into(),
                    identities: self.allowed_identities.clone(),
                    groups: self.allowed_principal_groups.clone(),
                });
            }
        }
        if !self.allowed_groups.is_empty() {
            // App Service answers 500 when the claim is missing; a 403 that says why is what the
            // caller can act on (docs/authentication-module.md).
            if !claims.contains_key("groups") {
                return Err(Denial::NoGroups {
                    allowed: self.allowed_groups.clone(),
                });
            }
            if !groups.iter().any(|g| contains(&self.allowed_groups, g)) {
                return Err(Denial::Groups {
                    allowed: self.allowed_groups.clone(),
                });
            }
        }
        if !self.allowed_tenants.is_empty() {
            let tid = text("tid").unwrap_or("(none)");
            if !contains(&self.allowed_tenants, tid) {
                return Err(Denial::Tenant {
                    tid: tid.into(),
                    allowed: self.allowed_tenants.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn allowed_applications_use_azp_or_appid() {
        let policy = AadAuthorization {
            allowed_applications: vec!["FRONT".into()],
            ..Default::default()
        };
        assert!(policy.check(&claims(json!({"azp": "front"})), true).is_ok());
        assert!(
            policy
                .check(&claims(json!({"appid": "front"})), true)
                .is_ok()
        );
        let denied = policy
            .check(&claims(json!({"azp": "other"})), true)
            .expect_err("denied");
        assert!(
            denied
                .to_string()
                .starts_with("client app other not in allowedApplications"),
            "{denied}"
        );
        assert_eq!(
            policy.check(&claims(json!({})), true),
            Err(Denial::NoClientApplication)
        );
        assert!(
            policy.check(&claims(json!({})), false).is_ok(),
            "ID tokens carry no client app"
        );
    }

    #[test]
    fn principals_groups_and_tenants() {
        let policy = AadAuthorization {
            allowed_identities: vec!["o1".into()],
            allowed_principal_groups: vec!["g1".into()],
            ..Default::default()
        };
        assert!(policy.check(&claims(json!({"oid": "o1"})), true).is_ok());
        assert!(
            policy
                .check(&claims(json!({"oid": "o2", "groups": ["g1"]})), true)
                .is_ok()
        );
        assert!(matches!(
            policy.check(&claims(json!({"oid": "o2"})), true),
            Err(Denial::Principal { .. })
        ));
        let groups = AadAuthorization {
            allowed_groups: vec!["g1".into()],
            ..Default::default()
        };
        assert!(matches!(
            groups.check(&claims(json!({"oid": "o"})), true),
            Err(Denial::NoGroups { .. })
        ));
        assert!(matches!(
            groups.check(&claims(json!({"groups": ["g2"]})), true),
            Err(Denial::Groups { .. })
        ));
        let tenants = AadAuthorization {
            allowed_tenants: vec!["t1".into()],
            ..Default::default()
        };
        assert!(tenants.check(&claims(json!({"tid": "t1"})), true).is_ok());
        assert!(matches!(
            tenants.check(&claims(json!({"tid": "t2"})), true),
            Err(Denial::Tenant { .. })
        ));
    }
}
