//! The running platform: the identity provider, the local Resource Manager, and one origin +
//! authentication module + SCM endpoint + process per web app.
//!
//! Start-up order matters: every listener is bound first (so `--port 0` works and every URL is
//! known), then placeholders are expanded and the site file seeds the Resource Manager's
//! documents, then the identity provider serves (each app's callback registered on its app
//! registration), then the Resource Manager, then each app's module is built and its process
//! started.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use easyauth_arm::Arm;
use easyauth_entra::InitialDirectory;
use easyauth_module::oidc::OidcHttp;
use easyauth_pki::LocalCa;
use futures_util::future::join_all;

use crate::auth::{aad_client_id, register_callback};
use crate::explain::Callers;
use crate::runtime::{Ports, Runtime};
use crate::seed::{self, Home};
use crate::site::Site;
pub use crate::start_error::StartError;
use crate::start_error::io;
use crate::startup;
use crate::state::{AppState, DemoUser, PlatformState};

const STORE: &str = "easyauth.db";

/// What `easyauth up` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    /// Each app's origin port (each app has its own loopback address); 0 = any free port.
    pub port: u16,
    /// Each app's SCM (Kudu) port on its loopback address; 0 = any free port.
    pub scm_port: u16,
    /// The identity provider's port on 127.0.0.1; 0 = any free port.
    pub idp_port: u16,
    /// The Resource Manager's port on 127.0.0.1; 0 = any free port.
    pub arm_port: u16,
    /// The local portal's port on 127.0.0.1; 0 = any free port.
    pub portal_port: u16,
    /// The platform's own store (identity provider and Resource Manager state): a PostgreSQL
    /// URL, or `None` for the SQLite file in the data dir. Sites' token stores stay SQLite.
    pub store: Option<String>,
}

/// What a site is: the tutorial, a site file, or a bare platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tutorial,
    SiteFile,
    Bare,
}

/// A started platform.
#[derive(Debug)]
pub struct Platform {
    runtime: Arc<Runtime>,
    arm: Arc<Arm>,
    state: Arc<std::sync::Mutex<PlatformState>>,
    data_dir: PathBuf,
    handles: Vec<axum_server::Handle<SocketAddr>>,
    kind: Kind,
    pub started_in: Duration,
}

impl Platform {
    /// Starts everything; returns once every app's module is in place and the apps' ports
    /// answer (or [`crate::app::APP_READY_TIMEOUT`] passed: the app is then reported and keeps starting).
    pub async fn start(site: Site, options: &Options, kind: Kind) -> Result<Platform, StartError> {
        let started = Instant::now();
        std::fs::create_dir_all(&options.data_dir).map_err(io(&format!(
            "cannot create the data dir {}",
            options.data_dir.display()
        )))?;
        let data_dir = std::fs::canonicalize(&options.data_dir).unwrap_or(options.data_dir.clone());
        let ca = Arc::new(
            LocalCa::load_or_create(&data_dir).map_err(|e| StartError::Io(e.to_string()))?,
        );
        let http = OidcHttp::with_extra_root_pem(ca.cert_pem().as_bytes())
            .map_err(|e| StartError::Io(e.to_string()))?;
        let store = match options.store.as_deref() {
            Some(url) => crate::store::open_postgres(url).await?,
            None => crate::store::open_store(&data_dir.join(STORE)).await?,
        };

        // 1. The platform's own listeners, so that every URL is known (`--port 0` included).
        let (idp_listener, idp_url) = startup::bind_local(
            options.idp_port,
            "the identity provider",
            "is `easyauth idp` or another `easyauth up` running? `--idp-port 0` picks a free port",
        )?;
        let (arm_listener, arm_url) = startup::bind_local(
            options.arm_port,
            "the Resource Manager",
            "is another `easyauth up` running? `--arm-port 0` picks a free port",
        )?;
        let (portal_listener, portal_url) = startup::bind_local(
            options.portal_port,
            "the portal",
            "is another `easyauth up` running? `--portal-port 0` picks a free port",
        )?;
        // 2. The directory, and the platform's own service principal and the portal in it.
        let InitialDirectory { mut seed, demo } =
            InitialDirectory::file_or_demo(site.directory.as_deref(), store.as_ref()).await?;
        let (client, client_secret) =
            startup::platform_client(store.as_ref(), &seed.tenant.id).await?;
        let client_id = client.app_id.clone();
        let (portal_app, portal_grants, portal_secret) =
            startup::portal_client(store.as_ref(), &seed.tenant.id, &portal_url).await?;
        let portal_client_id = portal_app.app_id.clone();
        seed.applications.retain(|a| {
            !a.app_id.eq_ignore_ascii_case(&client_id)
                && !a.app_id.eq_ignore_ascii_case(&portal_client_id)
        });
        seed.applications.push(client);
        seed.applications.push(portal_app);
        seed.grants
            .retain(|g| !portal_grants.iter().any(|p| p.id == g.id));
        seed.grants.extend(portal_grants);
        // It manages the directory through Microsoft Graph as an administrator's app would.
        let roles = startup::platform_graph_roles(&client_id);
        seed.assignments
            .retain(|a| !roles.iter().any(|r| r.id == a.id));
        seed.assignments.extend(roles);
        let issuer = format!("{idp_url}/{}/v2.0", seed.tenant.id);
        let subscription_id = store
            .get_or_create_setting(
                "arm.subscription-id",
                &uuid::Uuid::new_v5(
                    &uuid::Uuid::NAMESPACE_OID,
                    format!("easyauth-subscription/{}", seed.tenant.id).as_bytes(),
                )
                .to_string(),
            )
            .await
            .map_err(|e| StartError::Io(e.to_string()))?;
        let arm_state = easyauth_arm::State::new(store.clone(), subscription_id.clone());
        let existing = arm_state
            .sites()
            .await
            .map_err(|e| StartError::Io(e.message))?;

        // 3. Every app's listeners.
        let (hostingstart, hostingstart_handle) = startup::hostingstart().await?;
        let ports = Ports {
            site: options.port,
            scm: options.scm_port,
        };
        let seeded_names: Vec<(String, Option<std::net::IpAddr>, Option<u16>)> = site
            .apps
            .iter()
            .map(|a| (a.name.clone(), a.address, a.port))
            .collect();
        let others: Vec<easyauth_arm::WebApp> = existing
            .iter()
            .filter(|e| {
                !site
                    .apps
                    .iter()
                    .any(|a| a.name.eq_ignore_ascii_case(&e.name))
            })
            .cloned()
            .collect();
        let bound = startup::bind_all(ports, &seeded_names, &others, &existing)?;
        // 4. Placeholders, and the site file's apps as documents.
        let urls: Vec<(String, url::Url)> = bound
            .iter()
            .map(|(n, b)| (n.clone(), b.url.clone()))
            .collect();
        let placeholders = startup::placeholders(
            &urls,
            &seed,
            demo.as_ref(),
            &idp_url,
            &issuer,
            ca.cert_path(),
        );
        let home = if kind == Kind::Tutorial {
            Home::tutorial()
        } else {
            Home::site()
        };
        let mut docs = Vec::new();
        for spec in &site.apps {
            let doc =
                seed::document(spec, &home, &subscription_id, &placeholders).map_err(|reason| {
                    StartError::App {
                        app: spec.name.clone(),
                        reason,
                    }
                })?;
            docs.push(doc);
        }
        let seeded = seed::write(&arm_state, &home, docs)
            .await
            .map_err(StartError::Config)?;
        let mut all_docs: Vec<easyauth_arm::WebApp> = seeded;
        all_docs.extend(others);
        // Addresses and hosts as bound now.
        for doc in &mut all_docs {
            if let Some((_, b)) = bound
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&doc.name))
            {
                doc.address = Some(b.address.to_string());
                doc.host = Some(crate::app::host_port(&b.url));
                doc.scm_host = Some(crate::app::host_port(&b.scm_url));
            }
            arm_state
                .put_site(doc)
                .await
                .map_err(|e| StartError::Io(e.message))?;
        }
        // 5. Each app's callback on its registration, then the identity provider.
        for doc in &all_docs {
            if let (Ok((config, _)), Some((_, b))) = (
                Runtime::config_of(doc),
                bound
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&doc.name)),
            ) && let Some(client_id) = aad_client_id(&config.auth)
            {
                register_callback(&mut seed, &client_id, &b.url);
            }
        }
        let (idp, idp_handle) =
            startup::start_idp(store.clone(), &idp_url, &seed, idp_listener, &ca).await?;
        let mut handles = vec![idp_handle, hostingstart_handle];
        let runtime = Arc::new(Runtime {
            apps: Default::default(),
            http: http.clone(),
            ca: ca.clone(),
            data_dir: data_dir.clone(),
            ports,
            idp: idp.clone(),
            callers: Arc::new(arc_swap::ArcSwap::from_pointee(Callers::default())),
            hostingstart,
            arm: OnceLock::new(),
            on_apps_changed: OnceLock::new(),
            changes: tokio::sync::Mutex::new(()),
        });
        // 6. The Resource Manager.
        let arm = Arc::new(Arm::new(
            startup::arm_config(&arm_url, &idp, subscription_id.clone(), &portal_url),
            store.clone(),
            http.clone(),
            Arc::new(crate::runtime::RuntimeHandle(runtime.clone())),
            startup::mirror(&arm_url),
        ));
        let _ = runtime.arm.set(Arc::downgrade(&arm));
        handles.push(startup::serve_https(
            arm_listener,
            &ca,
            arm.router(),
            "the Resource Manager",
        )?);
        // 7. The portal (a client of the identity provider and the Resource Manager).
        let portal = easyauth_portal::Portal::new(easyauth_portal::PortalConfig {
            public_url: portal_url.clone(),
            idp_url: idp_url.clone(),
            tenant_id: seed.tenant.id.clone(),
            issuer: issuer.clone(),
            client_id: portal_client_id,
            client_secret: portal_secret,
            arm_url: arm_url.clone(),
            subscription_id: subscription_id.clone(),
            ca_pem: ca.cert_pem().as_bytes().to_vec(),
        })
        .map_err(|e| StartError::Io(e.to_string()))?;
        handles.push(startup::serve_https(
            portal_listener,
            &ca,
            portal.router(),
            "the portal",
        )?);
        // 8. Each app: origin, SCM endpoint, module, process; then wait for their ports.
        let name_width = all_docs.iter().map(|d| d.name.len()).max().unwrap_or(0);
        let mut bound = bound;
        let mut apps = Vec::new();
        for doc in &all_docs {
            let Some(i) = bound
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(&doc.name))
            else {
                continue;
            };
            let (_, b) = bound.swap_remove(i);
            let app = runtime
                .open(doc, b, name_width)
                .await
                .map_err(|reason| StartError::App {
                    app: doc.name.clone(),
                    reason,
                })?;
            runtime
                .start(&app)
                .await
                .map_err(|reason| StartError::App {
                    app: doc.name.clone(),
                    reason,
                })?;
            apps.push(app);
        }
        join_all(apps.iter().map(|a| a.wait_ready())).await;
        runtime.refresh_callers().await;

        let state = Arc::new(std::sync::Mutex::new(PlatformState {
            pid: std::process::id(),
            arm_url: arm_url.clone(),
            portal_url,
            subscription_id,
            client_id,
            client_secret,
            idp_url: idp_url.clone(),
            tenant_id: seed.tenant.id.clone(),
            issuer,
            ca_file: ca.cert_path().to_path_buf(),
            apps: BTreeMap::new(),
            demo_user: demo.map(|s| DemoUser {
                username: startup::demo_user_name(),
                password: s.user_password,
            }),
        }));
        let platform = Platform {
            runtime: runtime.clone(),
            arm,
            state: state.clone(),
            data_dir: data_dir.clone(),
            handles,
            kind,
            started_in: started.elapsed(),
        };
        platform.refresh_state().await;
        // Apps created or deleted through the Resource Manager update platform.json too.
        let weak = Arc::downgrade(&runtime);
        let dir = data_dir.clone();
        let _ = runtime
            .on_apps_changed
            .set(crate::runtime::AppsChanged(Box::new(move || {
                let (Some(runtime), state, dir) = (weak.upgrade(), state.clone(), dir.clone())
                else {
                    return;
                };
                tokio::spawn(async move {
                    write_state(&runtime, &state, &dir).await;
                });
            })));
        Ok(platform)
    }

    /// What other processes need to find this platform (`platform.json`).
    pub fn state(&self) -> PlatformState {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Rewrites `platform.json` from the apps as they are now.
    pub async fn refresh_state(&self) {
        write_state(&self.runtime, &self.state, &self.data_dir).await;
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn arm(&self) -> &Arc<Arm> {
        &self.arm
    }

    /// The apps' names, ordered by address (the site file's order for seeded apps).
    pub fn app_names(&self) -> Vec<String> {
        let mut apps = self.runtime.all();
        apps.sort_by_key(|a| {
            a.url
                .host_str()
                .and_then(|h| h.parse::<std::net::Ipv4Addr>().ok())
        });
        apps.iter().map(|a| a.name.clone()).collect()
    }

    /// The pid of the app's current process.
    pub fn process_id(&self, app: &str) -> Option<u32> {
        self.runtime.app(app)?.process()?.pid()
    }

    /// Stops the apps and the servers; removes `platform.json`.
    pub async fn shutdown(&self) {
        let stops = self.runtime.all().into_iter().map(|a| async move {
            if let Some(r) = a.set_running(None, a.hostingstart.clone()) {
                r.process.stop().await;
            }
            for h in &a.handles {
                h.graceful_shutdown(Some(Duration::from_secs(3)));
            }
        });
        join_all(stops).await;
        for handle in &self.handles {
            handle.graceful_shutdown(Some(Duration::from_secs(3)));
        }
        PlatformState::remove(&self.data_dir, std::process::id());
    }
}

async fn write_state(runtime: &Runtime, state: &std::sync::Mutex<PlatformState>, dir: &Path) {
    let mut apps = BTreeMap::new();
    for app in runtime.all() {
        let config = app.config.lock().await;
        apps.insert(
            app.name.clone(),
            AppState {
                url: app.url.as_str().trim_end_matches('/').to_owned(),
                upstream: app
                    .current_upstream()
                    .as_str()
                    .trim_end_matches('/')
                    .to_owned(),
                scm_url: app.scm_url.as_str().trim_end_matches('/').to_owned(),
                resource_group: config.site.group.clone(),
                client_id: aad_client_id(&config.auth),
            },
        );
    }
    let snapshot = {
        let mut s = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.apps = apps;
        s.clone()
    };
    if let Err(e) = snapshot.write(dir) {
        tracing::warn!(error = %e, "platform.json could not be written");
    }
}
