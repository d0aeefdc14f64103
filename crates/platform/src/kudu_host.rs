//! The platform's side of an app's SCM endpoint ([`easyauth_kudu::SiteHost`]): publishing
//! credentials and ARM tokens for authentication, the site's settings for the build, and
//! activating a built deployment behind the app's module.

use std::sync::Weak;

use easyauth_kudu::{BuiltDeployment, PublishingCredentials, SiteConfig, SiteHost};
use serde_json::Value;

use crate::app::App;
use crate::runtime::Runtime;

#[derive(Debug)]
pub(crate) struct KuduHost {
    pub(crate) app: Weak<App>,
    pub(crate) runtime: Weak<Runtime>,
}

#[async_trait::async_trait]
impl SiteHost for KuduHost {
    fn log(&self) -> easyauth_kudu::LogFeed {
        self.app.upgrade().map(|a| a.log.feed()).unwrap_or_default()
    }

    fn site_name(&self) -> String {
        self.app
            .upgrade()
            .map(|a| a.name.clone())
            .unwrap_or_default()
    }

    fn publishing_credentials(&self) -> Option<PublishingCredentials> {
        let app = self.app.upgrade()?;
        // From the ARM document as last applied: a policy change applies at once.
        let (user, password) = app.facts().credentials?;
        Some(PublishingCredentials { user, password })
    }

    async fn authorize_bearer(&self, token: &str) -> bool {
        match self.runtime.upgrade() {
            Some(r) => r.authorize_bearer(token).await,
            None => false,
        }
    }

    async fn site_config(&self) -> SiteConfig {
        let Some(app) = self.app.upgrade() else {
            return SiteConfig::default();
        };
        let config = app.config.lock().await;
        let site = &config.site;
        let text = |k: &str| {
            site.site_config
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        SiteConfig {
            app_settings: config.settings.clone(),
            linux_fx_version: if site.is_linux() {
                text("linuxFxVersion")
            } else {
                None
            },
            node_version: if site.is_linux() {
                None
            } else {
                text("nodeVersion")
            },
            app_command_line: text("appCommandLine"),
        }
    }

    async fn activate(&self, deployment: &BuiltDeployment) -> Result<(), String> {
        let (Some(app), Some(runtime)) = (self.app.upgrade(), self.runtime.upgrade()) else {
            return Err("the web app was deleted during the deployment".into());
        };
        runtime.activate(&app, deployment).await
    }
}
