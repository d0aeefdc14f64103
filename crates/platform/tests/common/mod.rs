//! What the platform's integration tests share besides the test kit: the echo app, options on
//! free ports, an HTTPS client that trusts the platform's local CA, and the platform service
//! principal's tokens.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use easyauth_platform::platform::Options;
use easyauth_platform::state::PlatformState;
use serde_json::Value;

pub(crate) use easyauth_testkit::temp_dir;

/// tests/e2e/apps/echo_app.py: answers every request with what it received.
pub(crate) fn echo_app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/apps/echo_app.py")
}

/// `dir/data` as the data dir; every listener on a free port.
pub(crate) fn options(dir: &Path) -> Options {
    Options {
        store: None,
        data_dir: dir.join("data"),
        port: 0,
        scm_port: 0,
        idp_port: 0,
        arm_port: 0,
        portal_port: 0,
    }
}

/// An HTTPS client that trusts the platform's local CA (no cookies, no redirects followed).
pub(crate) fn https(state: &PlatformState) -> reqwest::Client {
    easyauth_testkit::https_client(&std::fs::read(&state.ca_file).expect("local CA"))
}

/// The token endpoint's answer to a client-credentials request of `client_id` for `scope`.
pub(crate) async fn client_credentials(
    state: &PlatformState,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> Value {
    https(state)
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            state.idp_url, state.tenant_id
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON")
}

/// A client-credentials token of the platform's service principal for `scope`.
pub(crate) async fn sp_token(state: &PlatformState, scope: &str) -> String {
    let body = client_credentials(state, &state.client_id, &state.client_secret, scope).await;
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"))
        .to_owned()
}
