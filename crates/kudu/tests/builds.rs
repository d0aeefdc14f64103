//! Real builds against the npm registry and PyPI: an Express app (cold then warm npm cache), a
//! Flask app (venv + gunicorn), and a build that fails. Every wait is bounded.

mod common;

use std::time::{Duration, Instant};

use common::{Site, get_text, node_server, node_settings, zip};
use easyauth_kudu::{Deployment, DeploymentState, Limits, SiteConfig};

/// The most one networked deployment may take here.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(300);

fn limits() -> Limits {
    Limits {
        build_timeout: Duration::from_secs(240),
        activate_timeout: Duration::from_secs(60),
        ..Limits::default()
    }
}

fn express_app(tag: &str) -> Vec<u8> {
    let package = r#"{
  "name": "express-kudu-test",
  "version": "1.0.0",
  "private": true,
  "scripts": { "start": "node server.js" },
  "dependencies": { "express": "^4.21.0" }
}"#;
    let server = format!(
        "const express = require('express');\n\
         const app = express();\n\
         app.get('/', (req, res) => res.send('{tag}'));\n\
         app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('express up'));\n"
    );
    zip(&[("package.json", package), ("server.js", &server)])
}

/// Deploys and records every state the deployment went through.
async fn deploy_watching(site: &Site, body: Vec<u8>) -> (Deployment, Vec<DeploymentState>) {
    let accepted = site
        .kudu
        .start_deploy(body.into(), None, None)
        .await
        .expect("accepted");
    let mut states = vec![accepted.state];
    let watch = async {
        loop {
            let d = site.kudu.deployment(&accepted.id).expect("record");
            if states.last() != Some(&d.state) {
                states.push(d.state);
            }
            if d.state.is_final() {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let d = tokio::time::timeout(DEPLOY_TIMEOUT, watch)
        .await
        .expect("deployment finishes in time");
    (d, states)
}

fn build_seconds(d: &Deployment) -> f64 {
    let ms = d.end_ms.unwrap_or(0) - d.start_ms.unwrap_or(0);
    ms as f64 / 1000.0
}

#[tokio::test]
async fn express_app_builds_runs_and_is_replaced() {
    let cache = common::TempDir::new("kudu-npm-cache");
    let mut config = node_settings(true);
    // A cache of this test's own: the first install is cold, the second warm.
    config.app_settings.insert(
        "npm_config_cache".to_owned(),
        cache.0.to_string_lossy().into_owned(),
    );
    let site = Site::new(config, limits()).await;

    let started = Instant::now();
    let (v1, states) = deploy_watching(&site, express_app("express v1")).await;
    let cold = started.elapsed();
    assert_eq!(v1.state, DeploymentState::RuntimeSuccessful, "{v1:?}");
    assert!(
        states.contains(&DeploymentState::BuildInProgress),
        "{states:?}"
    );
    assert_eq!(states.last(), Some(&DeploymentState::RuntimeSuccessful));
    let site_dir = site.root.join("deployments").join(&v1.id).join("site");
    assert!(site_dir.join("node_modules/express/package.json").is_file());
    assert_eq!(
        v1.start_command.as_ref().map(|c| c.display.as_str()),
        Some("npm start")
    );
    let (_, port1) = site.host.running().expect("running");
    assert_eq!(get_text(port1, "/").await.expect("v1"), "express v1");

    let started = Instant::now();
    let (v2, _) = deploy_watching(&site, express_app("express v2")).await;
    let warm = started.elapsed();
    assert_eq!(v2.state, DeploymentState::RuntimeSuccessful, "{v2:?}");
    let (running, port2) = site.host.running().expect("running");
    assert_eq!(running, v2.id);
    assert_eq!(get_text(port2, "/").await.expect("v2"), "express v2");
    assert!(
        get_text(port1, "/").await.is_err(),
        "the old app is stopped"
    );
    assert_eq!(site.kudu.current_id().as_deref(), Some(v2.id.as_str()));
    let log = site.kudu.log_text(&v2.id).await.expect("log");
    assert!(
        log.contains("Running npm install") && log.contains("added"),
        "{log}"
    );
    eprintln!(
        "npm install + start: cold {:.1} s (build {:.1} s), warm {:.1} s (build {:.1} s)",
        cold.as_secs_f64(),
        build_seconds(&v1),
        warm.as_secs_f64(),
        build_seconds(&v2)
    );
    site.host.stop();
}

#[tokio::test]
async fn flask_app_runs_under_gunicorn_from_the_venv() {
    let mut config = SiteConfig {
        linux_fx_version: Some("PYTHON|3.11".to_owned()),
        ..SiteConfig::default()
    };
    config.app_settings.insert(
        "SCM_DO_BUILD_DURING_DEPLOYMENT".to_owned(),
        "true".to_owned(),
    );
    let site = Site::new(config, limits()).await;
    let app = "from flask import Flask\n\
               app = Flask(__name__)\n\
               \n\
               @app.route('/')\n\
               def hello():\n    return 'hello flask'\n";
    let started = Instant::now();
    let (d, states) = deploy_watching(
        &site,
        zip(&[("requirements.txt", "Flask>=3,<4\n"), ("app.py", app)]),
    )
    .await;
    assert_eq!(d.state, DeploymentState::RuntimeSuccessful, "{d:?}");
    assert!(
        states.contains(&DeploymentState::BuildInProgress),
        "{states:?}"
    );
    let site_dir = site.root.join("deployments").join(&d.id).join("site");
    let start = d.start_command.clone().expect("start command");
    let script = start.args.join(" ");
    assert!(
        script.contains(&*site_dir.join("antenv/bin/gunicorn").to_string_lossy())
            && script.contains("--bind=127.0.0.1:$PORT")
            && script.ends_with(" app:app"),
        "{script}"
    );
    assert_eq!(
        start.env.get("VIRTUAL_ENV").map(String::as_str),
        Some(&*site_dir.join("antenv").to_string_lossy())
    );
    let (_, port) = site.host.running().expect("running");
    assert_eq!(get_text(port, "/").await.expect("flask"), "hello flask");
    let log = site.kudu.log_text(&d.id).await.expect("log");
    assert!(
        log.contains("PYTHON 3.11") && log.contains("python3 Python 3."),
        "{log}"
    );
    eprintln!(
        "flask venv + pip install + start: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    site.host.stop();
}

#[tokio::test]
async fn failing_npm_install_keeps_the_previous_deployment() {
    let site = Site::new(node_settings(false), limits()).await;
    let v1 = site
        .kudu
        .deploy_zip(zip(&[("server.js", &node_server("still v1"))]))
        .await
        .expect("v1");
    assert_eq!(v1.state, DeploymentState::RuntimeSuccessful, "{v1:?}");

    site.host
        .set_setting("SCM_DO_BUILD_DURING_DEPLOYMENT", "true");
    let package = r#"{"name":"broken","version":"1.0.0","scripts":{"start":"node server.js"},
"dependencies":{"easyauth-kudu-test-no-such-package-4f2a9c":"1.0.0"}}"#;
    let (d, _) = deploy_watching(
        &site,
        zip(&[
            ("package.json", package),
            ("server.js", &node_server("broken")),
        ]),
    )
    .await;
    assert_eq!(d.state, DeploymentState::BuildFailed, "{d:?}");
    let error = d.error.clone().unwrap_or_default();
    assert!(
        error.contains("npm install") && error.contains("404"),
        "{error}"
    );
    let log = site.kudu.log_text(&d.id).await.expect("log");
    assert!(log.contains("E404"), "{log}");
    assert_eq!(site.kudu.current_id().as_deref(), Some(v1.id.as_str()));
    let (_, port) = site.host.running().expect("running");
    assert_eq!(get_text(port, "/").await.expect("v1"), "still v1");
    site.host.stop();
}
