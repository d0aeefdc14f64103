//! Preparing a person's own Azure CLI for the local cloud, without touching their Azure
//! configuration: a private `AZURE_CONFIG_DIR` in the data dir, a CA bundle with the local CA,
//! instance discovery off (MSAL would otherwise ask the public cloud about our login host),
//! telemetry off, the cloud registered from the Resource Manager's metadata document and
//! selected, and a sign-in with the platform's service principal unless someone is signed in
//! to this cloud already (`az login --use-device-code` as a user works too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::state::{PlatformState, StateError};

/// The cloud's name in `az cloud list`.
pub const CLOUD: &str = "easyauth";

/// Why the Azure CLI could not be prepared; `Display` is what the person sees.
#[derive(Debug, thiserror::Error)]
pub enum AzError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "the Azure CLI (`az`) was not found on PATH (or at $EASYAUTH_AZ). Install it, e.g. `pip install azure-cli` or https://learn.microsoft.com/cli/azure/install-azure-cli, then run this again"
    )]
    NotInstalled,
    #[error("{0}")]
    Io(String),
    #[error("`az {args}` failed (exit {code}):\n{output}")]
    Step {
        args: String,
        code: i32,
        output: String,
    },
}

/// The environment in which `az` talks to the local cloud.
#[derive(Debug, Clone)]
pub struct AzEnvironment {
    pub az: PathBuf,
    pub vars: BTreeMap<String, String>,
}

/// Finds `az`: `$EASYAUTH_AZ`, else `az` on `PATH`.
pub fn find_az() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EASYAUTH_AZ").map(PathBuf::from)
        && p.is_file()
    {
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("az"))
        .find(|p| p.is_file())
}

/// The variables that point `az` at the local cloud (the config dir is created).
pub fn variables(
    data_dir: &Path,
    state: &PlatformState,
) -> Result<BTreeMap<String, String>, AzError> {
    let config = data_dir.join("az");
    std::fs::create_dir_all(&config)
        .map_err(|e| AzError::Io(format!("{}: {e}", config.display())))?;
    let bundle = config.join("ca-bundle.pem");
    let mut pem = std::fs::read_to_string(&state.ca_file)
        .map_err(|e| AzError::Io(format!("{}: {e}", state.ca_file.display())))?;
    // The machine's roots too, so that anything else az reaches still verifies.
    for system in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ] {
        if let Ok(roots) = std::fs::read_to_string(system) {
            pem.push('\n');
            pem.push_str(&roots);
            break;
        }
    }
    if std::fs::read_to_string(&bundle).ok().as_deref() != Some(pem.as_str()) {
        std::fs::write(&bundle, &pem)
            .map_err(|e| AzError::Io(format!("{}: {e}", bundle.display())))?;
    }
    let mut vars = BTreeMap::new();
    let text = |p: &Path| p.to_string_lossy().into_owned();
    vars.insert("AZURE_CONFIG_DIR".into(), text(&config));
    vars.insert("REQUESTS_CA_BUNDLE".into(), text(&bundle));
    vars.insert("CURL_CA_BUNDLE".into(), text(&bundle));
    vars.insert("AZURE_CORE_INSTANCE_DISCOVERY".into(), "false".into());
    vars.insert("AZURE_CORE_COLLECT_TELEMETRY".into(), "false".into());
    vars.insert("AZURE_CORE_SURVEY_MESSAGE".into(), "false".into());
    vars.insert("AZURE_CORE_NO_COLOR".into(), "true".into());
    Ok(vars)
}

/// Registers and selects the cloud and signs in when needed; returns the environment.
pub fn prepare(data_dir: &Path) -> Result<AzEnvironment, AzError> {
    let state = PlatformState::read(data_dir)?;
    let az = find_az().ok_or(AzError::NotInstalled)?;
    let vars = variables(data_dir, &state)?;
    let env = AzEnvironment { az, vars };
    let config = data_dir.join("az");
    let arm = format!("{}/", state.arm_url.trim_end_matches('/'));
    let registered = registered_endpoint(&config.join("clouds.config"));
    if registered.as_deref() != Some(arm.as_str()) {
        if registered.is_some() {
            // The platform moved (other ports): register the cloud again, and forget the
            // accounts and tokens of the old one (they name the old login endpoint).
            run(&env, &["cloud", "set", "--name", "AzureCloud"])?;
            run(&env, &["cloud", "unregister", "--name", CLOUD])?;
            forget_accounts(&config);
        }
        run(
            &env,
            &[
                "cloud",
                "register",
                "--name",
                CLOUD,
                "--endpoint-resource-manager",
                &arm,
            ],
        )?;
    }
    if current_cloud(&config.join("config")).as_deref() != Some(CLOUD) {
        run(&env, &["cloud", "set", "--name", CLOUD])?;
    }
    if !signed_in(&config.join("azureProfile.json"), &state) {
        // One argument: a secret starting with '-' would otherwise be read as an option.
        let password = format!("--password={}", state.client_secret);
        run(
            &env,
            &[
                "login",
                "--service-principal",
                "--username",
                &state.client_id,
                &password,
                "--tenant",
                &state.tenant_id,
                "--output",
                "none",
            ],
        )?;
    }
    Ok(env)
}

/// Removes az's accounts and token caches from its config dir.
fn forget_accounts(config: &Path) {
    let Ok(entries) = std::fs::read_dir(config) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "azureProfile.json"
            || name.starts_with("msal_token_cache")
            || name.starts_with("msal_http_cache")
            || name.starts_with("service_principal_entries")
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Runs one preparation step quietly; its output is shown only when it fails.
fn run(env: &AzEnvironment, args: &[&str]) -> Result<(), AzError> {
    let output = Command::new(&env.az)
        .args(args)
        .envs(&env.vars)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| AzError::Io(format!("cannot run {}: {e}", env.az.display())))?;
    if output.status.success() {
        return Ok(());
    }
    // Never echo the service principal's secret.
    let shown: Vec<&str> = args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if i > 0 && args[i - 1] == "--password" {
                "<secret>"
            } else {
                a
            }
        })
        .collect();
    Err(AzError::Step {
        args: shown.join(" "),
        code: output.status.code().unwrap_or(-1),
        output: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The resource manager endpoint of the `easyauth` cloud in `clouds.config`, if registered.
fn registered_endpoint(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == format!("[{CLOUD}]");
            continue;
        }
        if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == "endpoint_resource_manager"
        {
            return Some(v.trim().to_owned());
        }
    }
    None
}

/// The selected cloud in az's `config` file (`[cloud] name = ...`).
fn current_cloud(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[cloud]";
            continue;
        }
        if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == "name"
        {
            return Some(v.trim().to_owned());
        }
    }
    None
}

/// Whether az has an account of this platform's tenant and subscription in the local cloud.
fn signed_in(path: &Path, state: &PlatformState) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    // az writes the profile with a byte-order mark.
    let text = text.trim_start_matches('\u{feff}');
    let Ok(profile) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    profile
        .get("subscriptions")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|subs| {
            subs.iter().any(|s| {
                let field = |k: &str| s.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
                field("environmentName") == CLOUD
                    && field("tenantId").eq_ignore_ascii_case(&state.tenant_id)
                    && field("id").eq_ignore_ascii_case(&state.subscription_id)
            })
        })
}

/// `export NAME='value'` lines for a POSIX shell.
pub fn shell_exports(vars: &BTreeMap<String, String>) -> String {
    vars.iter()
        .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', "'\\''")))
        .collect()
}

/// A path for messages.
pub fn config_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("az")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_quote_for_the_shell() {
        let mut v = BTreeMap::new();
        v.insert("A".to_owned(), "it's here".to_owned());
        assert_eq!(shell_exports(&v), "export A='it'\\''s here'\n");
    }

    #[test]
    fn reads_az_config_files() {
        let dir = std::env::temp_dir().join(format!("easyauth-azcli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let clouds = dir.join("clouds.config");
        std::fs::write(
            &clouds,
            "[AzureCloud]\nendpoint_resource_manager = https://management.azure.com/\n[easyauth]\nendpoint_resource_manager = https://127.0.0.1:5444/\n",
        )
        .expect("write");
        assert_eq!(
            registered_endpoint(&clouds).as_deref(),
            Some("https://127.0.0.1:5444/")
        );
        let config = dir.join("config");
        std::fs::write(&config, "[core]\noutput = json\n[cloud]\nname = easyauth\n")
            .expect("write");
        assert_eq!(current_cloud(&config).as_deref(), Some("easyauth"));
        assert_eq!(current_cloud(&dir.join("missing")), None);
    }
}
