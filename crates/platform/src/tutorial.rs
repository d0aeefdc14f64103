//! The built-in site: Microsoft's tutorial "Authenticate and authorize users end-to-end in Azure
//! App Service", configured as the tutorial configures it. The two sample apps run as ordinary
//! app processes (`easyauth sample frontend|backend`), each behind its own module.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use crate::site::{AppRun, AppSpec, AuthSource, Site};
use crate::supervisor::AppCommand;

pub const FRONTEND: &str = "frontend";
pub const BACKEND: &str = "backend";

/// The tutorial's site; `exe` is the `easyauth` binary that runs the sample apps.
pub fn site(exe: &Path) -> Site {
    let sample = |which: &str| {
        AppRun::Command(AppCommand {
            program: exe.to_string_lossy().into_owned(),
            args: vec!["sample".into(), which.into()],
            cwd: None,
        })
    };
    let settings = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    Site {
        file: None,
        directory: None,
        apps: vec![
            AppSpec {
                name: FRONTEND.into(),
                run: sample("frontend"),
                auth: AuthSource::Inline {
                    name: "the tutorial's front end".into(),
                    json: frontend_auth(),
                },
                app_settings: settings(&[
                    ("BACKEND_URL", "${apps.backend.url}"),
                    (
                        "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
                        "${demo.frontend.secret}",
                    ),
                    // Additive for the Rust samples: the local CA next to the system roots.
                    ("SSL_CERT_FILE", "${ca_file}"),
                ]),
                address: None,
                port: None,
            },
            AppSpec {
                name: BACKEND.into(),
                run: sample("backend"),
                auth: AuthSource::Inline {
                    name: "the tutorial's back end".into(),
                    json: backend_auth(),
                },
                // Everything the next tutorial step (on-behalf-of to Graph) needs except the
                // switch itself: `easyauth webapp config appsettings set --name backend
                // --settings BACKEND_USE_GRAPH=true`.
                app_settings: settings(&[
                    (
                        "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
                        "${demo.backend.secret}",
                    ),
                    ("GRAPH_URL", "${idp.url}"),
                    ("SSL_CERT_FILE", "${ca_file}"),
                ]),
                address: None,
                port: None,
            },
        ],
    }
}

/// The front end: sign users in (302 to the sign-in page) and ask for the back end's scope,
/// as the tutorial does with `az rest` on `loginParameters`.
fn frontend_auth() -> serde_json::Value {
    json!({
        "platform": { "enabled": true },
        "globalValidation": {
            "requireAuthentication": true,
            "unauthenticatedClientAction": "RedirectToLoginPage",
            "redirectToProvider": "azureactivedirectory"
        },
        "identityProviders": {
            "azureActiveDirectory": {
                "enabled": true,
                "registration": {
                    "clientId": "${demo.frontend.client_id}",
                    "clientSecretSettingName": "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
                    "openIdIssuer": "${idp.issuer}"
                },
                "login": {
                    "loginParameters": [
                        "scope=openid offline_access api://${demo.backend.client_id}/user_impersonation"
                    ]
                },
                "validation": {
                    "allowedAudiences": ["api://${demo.frontend.client_id}"]
                }
            }
        },
        "login": { "tokenStore": { "enabled": true } }
    })
}

/// The back end: an API. Tokens must be for it (`api://<backend>`) and come from the front end
/// (`allowedApplications`); anything else is 401/403, never a redirect.
fn backend_auth() -> serde_json::Value {
    json!({
        "platform": { "enabled": true },
        "globalValidation": {
            "requireAuthentication": true,
            "unauthenticatedClientAction": "Return401"
        },
        "identityProviders": {
            "azureActiveDirectory": {
                "enabled": true,
                "registration": {
                    "clientId": "${demo.backend.client_id}",
                    "clientSecretSettingName": "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
                    "openIdIssuer": "${idp.issuer}"
                },
                "validation": {
                    "allowedAudiences": ["api://${demo.backend.client_id}"],
                    "defaultAuthorizationPolicy": {
                        "allowedApplications": ["${demo.frontend.client_id}"]
                    }
                }
            }
        },
        "login": { "tokenStore": { "enabled": true } }
    })
}
