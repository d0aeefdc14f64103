//! `--session-store` / `--session-store-ca`: where `easyauth proxy` and `easyauth forward-auth`
//! keep sessions, and the banner lines both print about their module.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use easyauth_module::{AppSettings, Module, SessionBackend, redacted_url};

#[derive(Debug, Clone, Args)]
pub(crate) struct SessionStoreArgs {
    /// Where sessions live: a Redis URL (`redis://`, `redis+cluster://h:p,h:p/`,
    /// `redis+sentinel://h:p,h:p/<master>`, `rediss…` for TLS) shares them between replicas that
    /// also share the WEBSITE_AUTH_* keys; default: the token store in the data dir.
    #[arg(long, env = "EASYAUTH_SESSION_STORE")]
    pub(crate) session_store: Option<String>,
    /// PEM file of a CA to trust for a `rediss…` session store, besides the system's roots.
    #[arg(long, env = "EASYAUTH_SESSION_STORE_CA")]
    pub(crate) session_store_ca: Option<PathBuf>,
}

impl SessionStoreArgs {
    /// The backend the flags name. The URL itself is checked when the module is built (one
    /// place, one message).
    pub(crate) fn backend(&self) -> anyhow::Result<SessionBackend> {
        let Some(url) = self
            .session_store
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        else {
            return Ok(SessionBackend::TokenStore);
        };
        let ca_pem =
            match &self.session_store_ca {
                Some(path) => Some(std::fs::read(path).with_context(|| {
                    format!("--session-store-ca: cannot read {}", path.display())
                })?),
                None => None,
            };
        Ok(SessionBackend::Redis {
            url: url.to_owned(),
            ca_pem,
        })
    }
}

/// The banner's lines about the module: its providers, the unauthenticated action, and where
/// sessions are kept.
pub(crate) fn print_banner(module: &Module, backend: &SessionBackend) {
    let providers: Vec<&str> = module.providers().iter().map(|p| p.alias()).collect();
    println!("  providers       {}", providers.join(", "));
    println!("  unauthenticated {:?}", module.settings().action);
    let token_store = module.settings().token_store;
    match backend {
        SessionBackend::TokenStore => println!(
            "  token store     {}",
            if token_store {
                "on (SQLite in the data dir)"
            } else {
                "off"
            }
        ),
        SessionBackend::Redis { url, .. } => {
            println!("  session store   {} (Redis)", redacted_url(url));
            let app = AppSettings::from_env();
            if app.get("WEBSITE_AUTH_ENCRYPTION_KEY").is_none()
                || app.get("WEBSITE_AUTH_SIGNING_KEY").is_none()
            {
                println!(
                    "  warning         WEBSITE_AUTH_ENCRYPTION_KEY and WEBSITE_AUTH_SIGNING_KEY are not both set: \
                     replicas with keys generated in their own data dirs do not share sessions"
                );
            }
        }
    }
}
