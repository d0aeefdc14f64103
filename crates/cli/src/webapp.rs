//! `easyauth webapp ...`: az-style commands against a running `easyauth up`, as clients of its
//! Resource Manager (the same endpoints the real `az` calls; see `easyauth az`).
//!
//! ```text
//! easyauth webapp auth show --name APP
//! easyauth webapp auth set --name APP --body FILE|@FILE|JSON
//! easyauth webapp config appsettings list --name APP
//! easyauth webapp config appsettings set --name APP --settings KEY=VALUE... | @FILE
//! easyauth webapp config appsettings delete --name APP --setting-names KEY...
//! ```
//!
//! Output is az's: the `authsettingsV2` resource, or `[{"name", "slotSetting", "value"}]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use easyauth_platform::client::ArmClient;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub(crate) struct WebappArgs {
    #[command(subcommand)]
    command: WebappCommand,
}

#[derive(Debug, Subcommand)]
enum WebappCommand {
    /// The site's apps with their state (`az webapp list`).
    List {
        /// The data dir of the running `easyauth up` (where platform.json is).
        #[arg(long, env = "EASYAUTH_DATA_DIR", default_value = ".easyauth")]
        data_dir: PathBuf,
        /// Accepted and ignored, so that az command lines can be pasted unchanged.
        #[arg(short = 'g', long, hide = true)]
        resource_group: Option<String>,
    },
    /// One app: state, URL, process (`az webapp show`).
    Show(Target),
    /// Restart an app's process (`az webapp restart`).
    Restart(Target),
    /// An app's authentication settings (`az webapp auth ...`, authsettingsV2).
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// An app's configuration (`az webapp config ...`).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Print the app's authsettingsV2 resource.
    Show(Target),
    /// Replace the app's auth settings; the app's module is swapped without a restart.
    Set {
        #[command(flatten)]
        target: Target,
        /// The authsettingsV2 resource or its `properties`: inline JSON (`{...}`), `@FILE`, or FILE.
        #[arg(long, value_name = "FILE|@FILE|JSON")]
        body: String,
    },
    /// The portal's "Add identity provider → Microsoft → Create new app registration": an app
    /// registration named after the app (its callback, `api://<appId>` with
    /// `user_impersonation`, a client secret in MICROSOFT_PROVIDER_AUTHENTICATION_SECRET) and
    /// auth settings that require sign-in.
    AddIdentityProvider {
        #[command(flatten)]
        target: Target,
        /// The registration's display name (default: the app's name).
        #[arg(long)]
        registration_name: Option<String>,
        /// Days until the client secret expires (the portal offers 180, 365, 730).
        #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u32).range(1..=730))]
        secret_expiry_days: u32,
        /// What unauthenticated requests get.
        #[arg(long, default_value = "RedirectToLoginPage", value_parser = ["RedirectToLoginPage", "Return401", "Return403", "Return404"])]
        unauthenticated_action: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// An app's app settings (its environment variables).
    Appsettings {
        #[command(subcommand)]
        command: AppsettingsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AppsettingsCommand {
    /// List the app's app settings.
    List(Target),
    /// Add or change app settings; the app is restarted.
    Set {
        #[command(flatten)]
        target: Target,
        /// `KEY=VALUE` pairs (split at the first `=`), or `@FILE` with a JSON list of
        /// `{"name", "value"}` (as `appsettings list` prints) or a JSON object.
        #[arg(long, num_args = 1.., required = true, value_name = "KEY=VALUE|@FILE")]
        settings: Vec<String>,
    },
    /// Remove app settings; the app is restarted.
    Delete {
        #[command(flatten)]
        target: Target,
        /// The names of the settings to remove.
        #[arg(long, num_args = 1.., required = true, value_name = "KEY")]
        setting_names: Vec<String>,
    },
}

/// Which app, of which running `easyauth up`.
#[derive(Debug, Args)]
struct Target {
    /// The app's name in the site.
    #[arg(short = 'n', long)]
    name: String,
    /// The data dir of the running `easyauth up` (where platform.json is).
    #[arg(long, env = "EASYAUTH_DATA_DIR", default_value = ".easyauth")]
    data_dir: PathBuf,
    /// Accepted and ignored (web app names are unique), so that az command lines can be pasted
    /// unchanged.
    #[arg(short = 'g', long, hide = true)]
    resource_group: Option<String>,
}

impl Target {
    async fn client(&self) -> anyhow::Result<ArmClient> {
        Ok(ArmClient::from_data_dir(&self.data_dir).await?)
    }
}

pub(crate) async fn run(args: WebappArgs) -> anyhow::Result<()> {
    match args.command {
        WebappCommand::List { data_dir, .. } => {
            let client = ArmClient::from_data_dir(&data_dir).await?;
            print_json(&Value::Array(client.sites().await?))
        }
        WebappCommand::Show(target) => {
            print_json(&target.client().await?.show(&target.name).await?)
        }
        WebappCommand::Restart(target) => {
            target.client().await?.restart(&target.name).await?;
            Ok(())
        }
        WebappCommand::Auth { command } => match command {
            AuthCommand::Show(target) => {
                let resource = target.client().await?.auth_show(&target.name).await?;
                print_json(&resource)
            }
            AuthCommand::Set { target, body } => {
                let body = parse_body(&body)?;
                let resource = target.client().await?.auth_set(&target.name, &body).await?;
                print_json(&resource)
            }
            AuthCommand::AddIdentityProvider {
                target,
                registration_name,
                secret_expiry_days,
                unauthenticated_action,
            } => {
                let resource = target
                    .client()
                    .await?
                    .add_identity_provider(
                        &target.name,
                        registration_name.as_deref(),
                        secret_expiry_days,
                        &unauthenticated_action,
                    )
                    .await?;
                print_json(&resource)
            }
        },
        WebappCommand::Config {
            command: ConfigCommand::Appsettings { command },
        } => match command {
            AppsettingsCommand::List(target) => {
                let settings = target
                    .client()
                    .await?
                    .appsettings_list(&target.name)
                    .await?;
                print_json(&az_settings_list(&settings))
            }
            AppsettingsCommand::Set { target, settings } => {
                let changes = parse_settings(&settings)?
                    .into_iter()
                    .map(|(k, v)| (k, Some(v)))
                    .collect();
                let settings = target
                    .client()
                    .await?
                    .appsettings_set(&target.name, &changes)
                    .await?;
                print_json(&az_settings_list(&settings))
            }
            AppsettingsCommand::Delete {
                target,
                setting_names,
            } => {
                let changes = setting_names.into_iter().map(|k| (k, None)).collect();
                let settings = target
                    .client()
                    .await?
                    .appsettings_set(&target.name, &changes)
                    .await?;
                print_json(&az_settings_list(&settings))
            }
        },
    }
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// az's shape: `[{"name": K, "slotSetting": false, "value": V}]`, sorted by name.
fn az_settings_list(settings: &BTreeMap<String, String>) -> Value {
    Value::Array(
        settings
            .iter()
            .map(|(name, value)| json!({"name": name, "slotSetting": false, "value": value}))
            .collect(),
    )
}

/// `--body`: inline JSON when it starts with `{`, `@FILE` (az's convention), else a file path.
fn parse_body(arg: &str) -> anyhow::Result<Value> {
    if arg.trim_start().starts_with('{') {
        return serde_json::from_str(arg).map_err(|e| json_error("--body", &e));
    }
    let path = Path::new(arg.strip_prefix('@').unwrap_or(arg));
    read_json_file(path, "--body")
}

fn read_json_file(path: &Path, arg: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{arg}: cannot read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| json_error(&path.display().to_string(), &e))
}

fn json_error(what: &str, e: &serde_json::Error) -> anyhow::Error {
    // serde_json's message ends with "at line L column C"; say it plainly either way.
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => &message,
    };
    anyhow::anyhow!(
        "{what}: invalid JSON at line {} column {}: {message}",
        e.line(),
        e.column()
    )
}

/// `--settings`: `KEY=VALUE` (split at the first `=`, the value may be empty) or `@FILE` holding
/// a JSON list of `{"name", "value"}` or a JSON object of strings. Later values win.
fn parse_settings(args: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut settings = BTreeMap::new();
    for arg in args {
        if let Some(file) = arg.strip_prefix('@') {
            let path = Path::new(file);
            let json = read_json_file(path, "--settings")?;
            settings.extend(
                settings_from_json(&json)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            );
            continue;
        }
        let Some((key, value)) = arg.split_once('=') else {
            bail!("--settings: {arg:?} is not KEY=VALUE (or @FILE)");
        };
        if key.is_empty() {
            bail!("--settings: {arg:?} has an empty setting name");
        }
        settings.insert(key.to_owned(), value.to_owned());
    }
    Ok(settings)
}

fn settings_from_json(json: &Value) -> anyhow::Result<BTreeMap<String, String>> {
    let mut settings = BTreeMap::new();
    match json {
        Value::Object(map) => {
            for (key, value) in map {
                let Value::String(value) = value else {
                    bail!("$.{key}: expected a string");
                };
                settings.insert(key.clone(), value.clone());
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let Some(name) = item.get("name").and_then(Value::as_str) else {
                    bail!("$[{i}].name: expected a string");
                };
                let Some(value) = item.get("value").and_then(Value::as_str) else {
                    bail!("$[{i}].value: expected a string");
                };
                settings.insert(name.to_owned(), value.to_owned());
            }
        }
        _ => bail!(
            "$: expected a list of {{\"name\", \"value\"}} or an object of setting names to values"
        ),
    }
    Ok(settings)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: WebappCommand,
    }

    fn temp_file(name: &str, content: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("easyauth-webapp-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn body_inline_json() {
        let v = parse_body("  {\"properties\": {}}").unwrap();
        assert_eq!(v, json!({"properties": {}}));
    }

    #[test]
    fn body_inline_json_error_names_argument_line_and_column() {
        let e = parse_body("{\"a\":\n  ,}").unwrap_err().to_string();
        assert!(
            e.starts_with("--body: invalid JSON at line 2 column 3"),
            "{e}"
        );
    }

    #[test]
    fn body_from_file_with_and_without_at() {
        let path = temp_file("body.json", "{\"platform\": {\"enabled\": true}}");
        let with_at = parse_body(&format!("@{}", path.display())).unwrap();
        let without = parse_body(&path.display().to_string()).unwrap();
        assert_eq!(with_at, json!({"platform": {"enabled": true}}));
        assert_eq!(with_at, without);
    }

    #[test]
    fn body_file_errors_name_the_file() {
        let path = temp_file("bad-body.json", "{\n\n  \"a\": ,\n}");
        let e = parse_body(&format!("@{}", path.display()))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "{}: invalid JSON at line 3 column",
                path.display()
            )),
            "{e}"
        );
        let e = format!("{:#}", parse_body("/no/such/file.json").unwrap_err());
        assert!(
            e.starts_with("--body: cannot read /no/such/file.json"),
            "{e}"
        );
    }

    #[test]
    fn settings_key_value() {
        let s = parse_settings(&strings(&["A=1", "B=x=y", "EMPTY=", "A=2"])).unwrap();
        let expected: BTreeMap<String, String> = [("A", "2"), ("B", "x=y"), ("EMPTY", "")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(s, expected);
    }

    #[test]
    fn settings_without_equals_is_an_error_naming_the_argument() {
        let e = parse_settings(&strings(&["A=1", "NOPE"]))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--settings: \"NOPE\" is not KEY=VALUE (or @FILE)");
        let e = parse_settings(&strings(&["=v"])).unwrap_err().to_string();
        assert!(e.contains("empty setting name"), "{e}");
    }

    #[test]
    fn settings_from_files() {
        let list = temp_file(
            "list.json",
            r#"[{"name": "A", "slotSetting": false, "value": "1"}, {"name": "B", "value": ""}]"#,
        );
        let object = temp_file("object.json", r#"{"C": "3"}"#);
        let s = parse_settings(&[
            format!("@{}", list.display()),
            format!("@{}", object.display()),
            "D=4".to_owned(),
        ])
        .unwrap();
        assert_eq!(
            s.into_iter().collect::<Vec<_>>(),
            [("A", "1"), ("B", ""), ("C", "3"), ("D", "4")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let bad = temp_file("bad-list.json", r#"[{"name": "A", "value": 1}]"#);
        let e = parse_settings(&[format!("@{}", bad.display())])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!("{}: $[0].value: expected a string", bad.display())
        );
    }

    #[test]
    fn az_list_shape_is_sorted() {
        let settings: BTreeMap<String, String> = [("Z", "1"), ("A", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(
            serde_json::to_string(&az_settings_list(&settings)).unwrap(),
            r#"[{"name":"A","slotSetting":false,"value":"2"},{"name":"Z","slotSetting":false,"value":"1"}]"#
        );
    }

    #[test]
    fn add_identity_provider_parses_and_bounds_its_arguments() {
        let cli = Cli::try_parse_from([
            "webapp",
            "auth",
            "add-identity-provider",
            "-n",
            "front",
            "--secret-expiry-days",
            "365",
            "--unauthenticated-action",
            "Return401",
        ])
        .unwrap();
        let WebappCommand::Auth {
            command:
                AuthCommand::AddIdentityProvider {
                    target,
                    secret_expiry_days,
                    unauthenticated_action,
                    registration_name,
                },
        } = cli.command
        else {
            panic!("wrong command: {cli:?}");
        };
        assert_eq!(target.name, "front");
        assert_eq!(secret_expiry_days, 365);
        assert_eq!(unauthenticated_action, "Return401");
        assert_eq!(registration_name, None);
        for bad in [
            ["--secret-expiry-days", "0"],
            ["--secret-expiry-days", "9999"],
            ["--unauthenticated-action", "AllowAnonymous"],
        ] {
            let mut args = vec!["webapp", "auth", "add-identity-provider", "-n", "front"];
            args.extend(bad);
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn command_lines_parse() {
        let cli = Cli::try_parse_from([
            "webapp",
            "config",
            "appsettings",
            "set",
            "-n",
            "backend",
            "-g",
            "rg",
            "--settings",
            "A=1",
            "B=2",
            "--data-dir",
            "/tmp/x",
        ])
        .unwrap();
        let WebappCommand::Config {
            command:
                ConfigCommand::Appsettings {
                    command: AppsettingsCommand::Set { target, settings },
                },
        } = cli.command
        else {
            panic!("wrong command: {cli:?}");
        };
        assert_eq!(target.name, "backend");
        assert_eq!(target.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(settings, ["A=1", "B=2"]);

        let cli = Cli::try_parse_from([
            "webapp",
            "config",
            "appsettings",
            "delete",
            "--name",
            "f",
            "--setting-names",
            "A",
            "B",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            WebappCommand::Config {
                command: ConfigCommand::Appsettings {
                    command: AppsettingsCommand::Delete { ref setting_names, .. }
                }
            } if setting_names == &["A", "B"]
        ));

        let cli =
            Cli::try_parse_from(["webapp", "auth", "set", "-n", "f", "--body", "{}"]).unwrap();
        assert!(
            matches!(cli.command, WebappCommand::Auth { command: AuthCommand::Set { ref body, .. } } if body == "{}")
        );

        assert!(Cli::try_parse_from(["webapp", "auth", "show"]).is_err());
        assert!(
            Cli::try_parse_from(["webapp", "config", "appsettings", "set", "-n", "f"]).is_err()
        );
    }
}
