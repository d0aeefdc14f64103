//! The site file (or the built-in tutorial) as Resource Manager documents: one resource group,
//! one Linux App Service plan, and a web app per app of the site, whose platform part says what
//! to run (a command or an upstream URL).
//!
//! The documents are the state: what `az` or `easyauth webapp` changes later survives a restart.
//! The site file seeds an app when the app is new, and again only when the app's definition in
//! the file changed since it last seeded it (then the file wins and the log says so).

use std::collections::BTreeMap;

use aws_lc_rs::digest;
use easyauth_arm::{Plan, ResourceGroup, State, WebApp};
use serde_json::{Map, Value, json};

use crate::site::{AppRun, AppSpec, AuthSource, Placeholders};

/// Where a site's apps live, as ARM names them.
#[derive(Debug, Clone)]
pub(crate) struct Home {
    pub(crate) group: String,
    pub(crate) plan: String,
    pub(crate) location: String,
}

impl Home {
    /// The tutorial's names: `myAuthResourceGroup`, `myPlan`, West Europe.
    pub(crate) fn tutorial() -> Home {
        Home {
            group: "myAuthResourceGroup".into(),
            plan: "myPlan".into(),
            location: "West Europe".into(),
        }
    }

    pub(crate) fn site() -> Home {
        Home {
            group: "easyauth".into(),
            plan: "easyauth-plan".into(),
            location: "West Europe".into(),
        }
    }
}

/// The seeded app's document (placeholders expanded), without addresses.
pub(crate) fn document(
    spec: &AppSpec,
    home: &Home,
    subscription: &str,
    placeholders: &Placeholders,
) -> Result<WebApp, String> {
    let auth_v2 = match &spec.auth {
        AuthSource::Off => None,
        source => Some(crate::auth::load_auth_json(source, placeholders)?),
    };
    let mut settings = BTreeMap::new();
    for (k, v) in &spec.app_settings {
        settings.insert(
            k.clone(),
            placeholders
                .expand(v)
                .map_err(|e| format!("app setting {k}: {e}"))?,
        );
    }
    let run = match &spec.run {
        AppRun::Command(c) => json!({"command": c}),
        AppRun::Upstream(u) => json!({"upstream": u.as_str()}),
    };
    let plan_id = format!(
        "/subscriptions/{subscription}/resourceGroups/{}/providers/Microsoft.Web/serverfarms/{}",
        home.group, home.plan
    );
    let mut site = WebApp {
        name: spec.name.clone(),
        group: home.group.clone(),
        location: home.location.clone(),
        kind: "app,linux".into(),
        server_farm_id: plan_id,
        stopped: false,
        https_only: false,
        client_cert_enabled: false,
        tags: Map::new(),
        site_config: Map::new(),
        app_settings: settings,
        auth_v2,
        logs: None,
        metadata: Map::new(),
        publishing_password: String::new(),
        basic_auth_scm: true,
        basic_auth_ftp: true,
        host: None,
        scm_host: None,
        address: None,
        platform: json!({"run": run}),
        created: easyauth_arm::model::now_iso(),
    };
    let seed = fingerprint(&site);
    site.platform["seed"] = Value::String(seed);
    Ok(site)
}

/// What identifies a seeding: the run, the auth settings and the app settings as the file
/// gives them (not the addresses, which are the platform's).
fn fingerprint(site: &WebApp) -> String {
    let text = json!({
        "run": site.platform.get("run"),
        "auth": site.auth_v2,
        "settings": site.app_settings,
    })
    .to_string();
    let d = digest::digest(&digest::SHA256, text.as_bytes());
    d.as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes the group, the plan and each seeded app's document; an app whose document exists and
/// was seeded from the same definition keeps its document (and every change made since).
pub(crate) async fn write(
    state: &State,
    home: &Home,
    docs: Vec<WebApp>,
) -> Result<Vec<WebApp>, String> {
    let err = |e: easyauth_arm::ArmError| e.message;
    if state.group(&home.group).await.map_err(err)?.is_none() {
        state
            .put_group(&ResourceGroup {
                name: home.group.clone(),
                location: home.location.clone(),
                tags: Map::new(),
            })
            .await
            .map_err(err)?;
    }
    if state.plan(&home.plan).await.map_err(err)?.is_none() {
        state
            .put_plan(&Plan {
                name: home.plan.clone(),
                group: home.group.clone(),
                location: home.location.clone(),
                sku: json!({"name": "F1", "tier": "Free", "size": "F1", "family": "F", "capacity": 1}),
                reserved: true,
                per_site_scaling: false,
                tags: Map::new(),
            })
            .await
            .map_err(err)?;
    }
    let mut out = Vec::with_capacity(docs.len());
    for mut doc in docs {
        let existing = state.site(&doc.name).await.map_err(err)?;
        let same = existing
            .as_ref()
            .is_some_and(|e| e.platform.get("seed") == doc.platform.get("seed"));
        match existing {
            Some(e) if same => out.push(e),
            existing => {
                if let Some(e) = &existing {
                    tracing::warn!(app = %doc.name, "the site file's definition of this app changed: its settings were reset from the file");
                    doc.publishing_password = e.publishing_password.clone();
                    doc.address = e.address.clone();
                    doc.group = e.group.clone();
                    doc.server_farm_id = e.server_farm_id.clone();
                }
                if doc.publishing_password.is_empty() {
                    doc.publishing_password = random_password();
                }
                state.put_site(&doc).await.map_err(err)?;
                out.push(doc);
            }
        }
    }
    Ok(out)
}

fn random_password() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 45];
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source failed");
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}
