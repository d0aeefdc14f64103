//! The site: which apps run, how each starts (a command or an upstream URL), its auth settings
//! and app settings, and the directory the identity provider is seeded with. Read from a TOML
//! site file (`easyauth up --site`) or built in (the tutorial, see `tutorial.rs`).
//!
//! ```toml
//! directory = "directory.json"          # optional: without it, the demo tenant
//!
//! [[apps]]
//! name = "frontend"
//! command = "node server.js"            # a string runs through `sh -c`; a list is exec'd
//! cwd = "web"                           # optional, relative to the site file
//! auth_settings = "frontend.auth.json"  # optional: without it, authentication is off
//! address = "127.0.0.2"                 # optional: default 127.0.0.2, .3, ... in order
//! port = 8080                           # optional: default `up --port`
//! [apps.app_settings]
//! BACKEND_URL = "${apps.backend.url}"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::supervisor::AppCommand;
use easyauth_arm::check_setting_name;

/// A whole site.
#[derive(Debug, Clone)]
pub struct Site {
    /// The site file, when there is one (errors and relative paths refer to it).
    pub file: Option<PathBuf>,
    /// The directory file; `None` = the built-in demo tenant.
    pub directory: Option<PathBuf>,
    pub apps: Vec<AppSpec>,
}

/// One app of the site.
#[derive(Debug, Clone)]
pub struct AppSpec {
    pub name: String,
    pub run: AppRun,
    pub auth: AuthSource,
    /// Values may hold `${...}` placeholders, expanded once the platform's URLs are known.
    pub app_settings: BTreeMap<String, String>,
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
}

/// How the app is reached.
#[derive(Debug, Clone)]
pub enum AppRun {
    /// The platform starts it, with `PORT` and the app settings in its environment.
    Command(AppCommand),
    /// It already runs somewhere (http only); the platform only puts the module in front.
    Upstream(url::Url),
}

/// Where the app's auth settings come from.
#[derive(Debug, Clone)]
pub enum AuthSource {
    /// Authentication off (App Service's default for a new app).
    Off,
    File(PathBuf),
    /// Built in (the tutorial); the string names it in errors.
    Inline {
        name: String,
        json: Value,
    },
}

/// A site file problem; `Display` names the file and the place in it.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("{file}: cannot read the site file: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}: {reason}")]
    Syntax { file: String, reason: String },
    #[error("{file}: {path}: {reason}")]
    Invalid {
        file: String,
        path: String,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    directory: Option<PathBuf>,
    #[serde(default)]
    apps: Vec<RawApp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    name: String,
    command: Option<RawCommand>,
    upstream: Option<String>,
    cwd: Option<PathBuf>,
    auth_settings: Option<PathBuf>,
    address: Option<IpAddr>,
    port: Option<u16>,
    #[serde(default)]
    app_settings: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawCommand {
    Line(String),
    Argv(Vec<String>),
}

impl Site {
    pub fn load(path: &Path) -> Result<Site, SiteError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SiteError::Read {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut site = Site::parse(&file, &text, base)?;
        site.file = Some(path.to_path_buf());
        Ok(site)
    }

    /// Parses site TOML; relative paths are resolved against `base` (the site file's folder).
    pub fn parse(file: &str, text: &str, base: &Path) -> Result<Site, SiteError> {
        let raw: RawSite = toml::from_str(text).map_err(|e| SiteError::Syntax {
            file: file.to_owned(),
            reason: e.to_string().trim_end().replace('\n', " "),
        })?;
        let invalid = |path: String, reason: String| SiteError::Invalid {
            file: file.to_owned(),
            path,
            reason,
        };
        if raw.apps.is_empty() {
            return Err(invalid(
                "apps".into(),
                "no apps: add at least one [[apps]] table with a name and a command or upstream"
                    .into(),
            ));
        }
        let mut names = HashMap::new();
        let mut apps = Vec::with_capacity(raw.apps.len());
        for (i, app) in raw.apps.into_iter().enumerate() {
            let at = |field: &str| format!("apps[{i}].{field}");
            check_name(&app.name).map_err(|r| invalid(at("name"), r))?;
            if let Some(first) = names.insert(app.name.to_ascii_lowercase(), i) {
                return Err(invalid(
                    at("name"),
                    format!("{:?} is already the name of apps[{first}]", app.name),
                ));
            }
            let run = match (app.command, app.upstream) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        format!("apps[{i}]"),
                        "give either command or upstream, not both".into(),
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        format!("apps[{i}]"),
                        "missing command (how to start the app) or upstream (where it runs)".into(),
                    ));
                }
                (Some(command), None) => {
                    let mut command = match command {
                        RawCommand::Line(line) if line.trim().is_empty() => {
                            return Err(invalid(at("command"), "is empty".into()));
                        }
                        RawCommand::Line(line) => AppCommand::shell(&line),
                        RawCommand::Argv(argv) => AppCommand::argv(argv)
                            .map_err(|e| invalid(at("command"), e.to_string()))?,
                    };
                    command.cwd = Some(match app.cwd {
                        Some(dir) => base.join(dir),
                        None => base.to_path_buf(),
                    });
                    AppRun::Command(command)
                }
                (None, Some(upstream)) => {
                    if app.cwd.is_some() {
                        return Err(invalid(at("cwd"), "applies only to a command".into()));
                    }
                    let url = url::Url::parse(&upstream)
                        .ok()
                        .filter(|u| u.scheme() == "http" && u.host_str().is_some())
                        .ok_or_else(|| {
                            invalid(
                                at("upstream"),
                                format!("expected an http:// URL, found {upstream:?}"),
                            )
                        })?;
                    AppRun::Upstream(url)
                }
            };
            for key in app.app_settings.keys() {
                check_setting_name(key)
                    .map_err(|r| invalid(format!("apps[{i}].app_settings.{key}"), r.to_owned()))?;
            }
            apps.push(AppSpec {
                name: app.name,
                run,
                auth: match app.auth_settings {
                    Some(p) => AuthSource::File(base.join(p)),
                    None => AuthSource::Off,
                },
                app_settings: app.app_settings,
                address: app.address,
                port: app.port,
            });
        }
        let mut seen = HashMap::new();
        for (i, app) in apps.iter().enumerate() {
            if let (Some(addr), Some(port)) = (app.address, app.port)
                && port != 0
                && let Some(first) = seen.insert((addr, port), i)
            {
                return Err(invalid(
                    format!("apps[{i}].address"),
                    format!("{addr}:{port} is already used by apps[{first}]"),
                ));
            }
        }
        Ok(Site {
            file: None,
            directory: raw.directory.map(|d| base.join(d)),
            apps,
        })
    }
}

/// App Service app names: letters, digits and hyphens, not at either end, at most 60.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 60
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid app name (letters, digits and hyphens, not at either end, at most 60)"
        ))
    }
}

/// The `${...}` values a site can refer to, known once everything listens.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    values: HashMap<String, String>,
}

impl Placeholders {
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values.insert(key.into(), value.into());
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Replaces every `${key}` in `text`; `$${` stays a literal `${`. An unknown key is an error
    /// that lists the known ones.
    pub fn expand(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
            } else if let Some(after) = tail.strip_prefix("${") {
                let Some(end) = after.find('}') else {
                    return Err(format!("unclosed placeholder in {text:?}"));
                };
                let key = after[..end].trim();
                match self.values.get(key) {
                    Some(v) => out.push_str(v),
                    None => {
                        let mut known: Vec<&str> = self.values.keys().map(String::as_str).collect();
                        known.sort_unstable();
                        return Err(format!(
                            "unknown placeholder ${{{key}}} (known: {})",
                            known.join(", ")
                        ));
                    }
                }
                rest = &after[end + 1..];
            } else {
                out.push('$');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Expands every string in a JSON document; errors name the JSON path.
    pub fn expand_json(&self, value: &mut Value) -> Result<(), String> {
        fn walk(p: &Placeholders, v: &mut Value, path: &mut String) -> Result<(), String> {
            match v {
                Value::String(s) if s.contains("${") => {
                    *s = p.expand(s).map_err(|e| format!("{path}: {e}"))?;
                }
                Value::Array(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        walk(p, item, path)?;
                        path.truncate(len);
                    }
                }
                Value::Object(map) => {
                    for (k, item) in map.iter_mut() {
                        let len = path.len();
                        path.push('.');
                        path.push_str(k);
                        walk(p, item, path)?;
                        path.truncate(len);
                    }
                }
                _ => {}
            }
            Ok(())
        }
        walk(self, value, &mut "$".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Site, SiteError> {
        Site::parse("site.toml", text, Path::new("/srv/site"))
    }

    #[test]
    fn a_command_app_and_an_upstream_app() {
        let site = parse(
            r#"
            directory = "dir.json"
            [[apps]]
            name = "web"
            command = "node server.js"
            auth_settings = "web.auth.json"
            [apps.app_settings]
            API = "${apps.api.url}"
            [[apps]]
            name = "api"
            upstream = "http://127.0.0.1:9000"
            address = "127.0.0.9"
            port = 8090
            "#,
        )
        .expect("valid site");
        assert_eq!(site.directory, Some(PathBuf::from("/srv/site/dir.json")));
        assert_eq!(site.apps.len(), 2);
        let AppRun::Command(c) = &site.apps[0].run else {
            panic!("command expected")
        };
        assert_eq!(c.cwd.as_deref(), Some(Path::new("/srv/site")));
        assert!(
            matches!(&site.apps[0].auth, AuthSource::File(p) if p == Path::new("/srv/site/web.auth.json"))
        );
        assert!(
            matches!(&site.apps[1].run, AppRun::Upstream(u) if u.as_str() == "http://127.0.0.1:9000/")
        );
        assert!(matches!(site.apps[1].auth, AuthSource::Off));
        assert_eq!(site.apps[1].port, Some(8090));
    }

    #[test]
    fn errors_name_the_file_and_the_place() {
        let cases = [
            ("", "site.toml: apps: no apps"),
            (
                "[[apps]]\nname = \"a\"\n",
                "site.toml: apps[0]: missing command",
            ),
            (
                "[[apps]]\nname = \"a\"\ncommand = \"x\"\nupstream = \"http://h\"\n",
                "site.toml: apps[0]: give either",
            ),
            (
                "[[apps]]\nname = \"a b\"\ncommand = \"x\"\n",
                "site.toml: apps[0].name: \"a b\" is not a valid app name",
            ),
            (
                "[[apps]]\nname = \"a\"\ncommand = \"x\"\n[[apps]]\nname = \"A\"\ncommand = \"y\"\n",
                "site.toml: apps[1].name: \"A\" is already the name of apps[0]",
            ),
            (
                "[[apps]]\nname = \"a\"\nupstream = \"https://h\"\n",
                "site.toml: apps[0].upstream: expected an http:// URL",
            ),
            (
                "[[apps]]\nname = \"a\"\ncommand = []\n",
                "site.toml: apps[0].command:",
            ),
            (
                "[[apps]]\nname = \"a\"\ncommand = \"x\"\n[apps.app_settings]\n\"A=B\" = \"1\"\n",
                "site.toml: apps[0].app_settings.A=B:",
            ),
            (
                "[[apps]]\nname = \"a\"\ncommand = \"x\"\ncolour = 1\n",
                "unknown field `colour`",
            ),
            (
                "[[apps]]\nname = \"a\"\ncommand = \"x\"\naddress = \"127.0.0.5\"\nport = 80\n[[apps]]\nname = \"b\"\ncommand = \"x\"\naddress = \"127.0.0.5\"\nport = 80\n",
                "site.toml: apps[1].address: 127.0.0.5:80 is already used by apps[0]",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(want), "{text:?}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn placeholders_expand_and_unknown_ones_are_errors() {
        let mut p = Placeholders::default();
        p.insert("apps.api.url", "http://127.0.0.3:8080");
        assert_eq!(
            p.expand("${apps.api.url}/x and $HOME and $${literal}")
                .as_deref(),
            Ok("http://127.0.0.3:8080/x and $HOME and ${literal}")
        );
        let err = p.expand("${apps.apj.url}").expect_err("unknown");
        assert!(
            err.contains("unknown placeholder ${apps.apj.url}") && err.contains("apps.api.url")
        );
        assert!(p.expand("${oops").is_err());
        let mut doc = serde_json::json!({"a": ["x", {"b": "${nope}"}]});
        let err = p.expand_json(&mut doc).expect_err("unknown");
        assert!(err.starts_with("$.a[1].b: unknown placeholder"), "{err}");
        let mut doc = serde_json::json!({"a": ["${apps.api.url}"]});
        p.expand_json(&mut doc).expect("expands");
        assert_eq!(doc["a"][0], "http://127.0.0.3:8080");
    }
}
