//! The App Service authentication module ("Easy Auth"): App Service's auth layer in front of any
//! app. It reads the `authsettingsV2` JSON that `az webapp auth show` prints, signs users in with
//! Microsoft Entra ID or any OpenID Connect provider, validates bearer tokens, and injects the
//! `X-MS-*` identity and token headers apps written for App Service expect.

pub mod authz;
pub mod build;
pub mod config;
pub mod headers;
pub mod module;
pub mod oidc;
pub mod paths;
pub mod pipeline;
pub mod principal;
pub mod provider;
pub mod proxy;
pub mod redirect;
mod routes;
pub mod session;
pub mod site;
