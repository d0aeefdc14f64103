//! Which language stack a site asks for: Linux `linuxFxVersion` (`NODE|20-lts`,
//! `PYTHON|3.12`), a Windows site's Node version (`~20`, `20-lts`, `NODE:20LTS`), or, when
//! neither is set, the files in the zip. Every Node version runs on the machine's `node` and
//! every Python version on its `python3`; the log says both.

use std::path::Path;

use crate::SiteConfig;

/// A language stack this platform can build and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    Node,
    Python,
}

impl Stack {
    /// The machine's program that runs the stack.
    pub fn program(self) -> &'static str {
        match self {
            Stack::Node => "node",
            Stack::Python => "python3",
        }
    }
}

/// The stack a site asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    pub stack: Stack,
    /// The version part as given (`20-lts`, `3.12`), if any.
    pub version: Option<String>,
    /// Where it came from, for the log: `linuxFxVersion NODE|20-lts`, `nodeVersion ~20`,
    /// `detected from package.json`.
    pub source: String,
}

impl Runtime {
    /// Parses a `linuxFxVersion` (case-insensitive stack name). `Ok(None)` when empty.
    pub fn from_linux_fx_version(fx: &str) -> Result<Option<Runtime>, String> {
        let fx = fx.trim();
        if fx.is_empty() {
            return Ok(None);
        }
        let (stack, version) = fx.split_once('|').unwrap_or((fx, ""));
        let stack = match stack.trim().to_ascii_uppercase().as_str() {
            "NODE" => Stack::Node,
            "PYTHON" => Stack::Python,
            _ => {
                return Err(format!(
                    "unsupported runtime stack in linuxFxVersion `{fx}`: this platform builds and runs NODE (e.g. NODE|20-lts) and PYTHON (e.g. PYTHON|3.12) apps"
                ));
            }
        };
        let version = version.trim();
        Ok(Some(Runtime {
            stack,
            version: (!version.is_empty()).then(|| version.to_owned()),
            source: format!("linuxFxVersion {fx}"),
        }))
    }

    /// Parses a Windows site's Node version (`~20`, `20-lts`, `NODE:20LTS`, `20.11.1`).
    pub fn from_windows_node_version(value: &str, source: &str) -> Result<Runtime, String> {
        let raw = value.trim();
        let lower = raw.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("node:")
            .or_else(|| lower.strip_prefix("node|"))
            .unwrap_or(&lower);
        let rest = rest.trim_start_matches('~');
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "unrecognized Node version `{raw}` in {source}: expected a form like ~20, 20-lts or NODE:20LTS"
            ));
        }
        Ok(Runtime {
            stack: Stack::Node,
            version: Some(raw.to_owned()),
            source: format!("{source} {raw}"),
        })
    }

    /// What the site asks for, else what the files say.
    pub fn resolve(config: &SiteConfig, site_dir: &Path) -> Result<Runtime, String> {
        if let Some(fx) = &config.linux_fx_version
            && let Some(runtime) = Runtime::from_linux_fx_version(fx)?
        {
            return Ok(runtime);
        }
        if let Some(v) = config
            .node_version
            .as_deref()
            .filter(|v| !v.trim().is_empty())
        {
            return Runtime::from_windows_node_version(v, "nodeVersion");
        }
        if let Some(v) = config
            .app_settings
            .get("WEBSITE_NODE_DEFAULT_VERSION")
            .filter(|v| !v.trim().is_empty())
        {
            return Runtime::from_windows_node_version(v, "WEBSITE_NODE_DEFAULT_VERSION");
        }
        Runtime::detect(site_dir).ok_or_else(|| {
            "no runtime: the site sets no linuxFxVersion (e.g. NODE|20-lts or PYTHON|3.12) and the zip has neither package.json nor requirements.txt / app.py".to_owned()
        })
    }

    /// Oryx-style detection: `package.json` means Node; `requirements.txt`, `app.py`,
    /// `application.py`, `manage.py` or `pyproject.toml` mean Python.
    fn detect(site_dir: &Path) -> Option<Runtime> {
        let has = |f: &str| site_dir.join(f).is_file();
        if has("package.json") {
            return Some(Runtime {
                stack: Stack::Node,
                version: None,
                source: "detected from package.json".to_owned(),
            });
        }
        [
            "requirements.txt",
            "app.py",
            "application.py",
            "manage.py",
            "pyproject.toml",
        ]
        .into_iter()
        .find(|f| has(f))
        .map(|f| Runtime {
            stack: Stack::Python,
            version: None,
            source: format!("detected from {f}"),
        })
    }

    /// `NODE 20-lts`, `PYTHON (no version)`.
    pub fn describe(&self) -> String {
        let stack = match self.stack {
            Stack::Node => "NODE",
            Stack::Python => "PYTHON",
        };
        match &self.version {
            Some(v) => format!("{stack} {v}"),
            None => format!("{stack} (no version given)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fx(s: &str) -> Result<Option<Runtime>, String> {
        Runtime::from_linux_fx_version(s)
    }

    #[test]
    fn linux_forms() {
        for (input, stack, version) in [
            ("NODE|20-lts", Stack::Node, "20-lts"),
            ("node|22-LTS", Stack::Node, "22-LTS"),
            ("NODE|18-lts", Stack::Node, "18-lts"),
            ("NODE|16-lts", Stack::Node, "16-lts"),
            ("PYTHON|3.11", Stack::Python, "3.11"),
            ("python|3.12", Stack::Python, "3.12"),
        ] {
            let r = fx(input).expect("parses").expect("some");
            assert_eq!(r.stack, stack, "{input}");
            assert_eq!(r.version.as_deref(), Some(version), "{input}");
        }
        assert_eq!(fx("  ").expect("empty is fine"), None);
        let err = fx("DOTNETCORE|8.0").expect_err("unknown stack");
        assert!(
            err.contains("DOTNETCORE|8.0") && err.contains("NODE"),
            "{err}"
        );
        assert!(fx("DOCKER|nginx").is_err());
    }

    #[test]
    fn windows_forms() {
        for v in [
            "~20",
            "20-lts",
            "NODE:20LTS",
            "node|20-lts",
            "20.11.1",
            "~18",
        ] {
            let r = Runtime::from_windows_node_version(v, "nodeVersion").expect(v);
            assert_eq!(r.stack, Stack::Node);
        }
        assert!(Runtime::from_windows_node_version("lts", "nodeVersion").is_err());
        assert!(Runtime::from_windows_node_version("PYTHON:3.11", "nodeVersion").is_err());
    }

    #[test]
    fn precedence() {
        let dir = std::env::temp_dir();
        let mut c = SiteConfig {
            linux_fx_version: Some("PYTHON|3.12".into()),
            node_version: Some("~20".into()),
            ..SiteConfig::default()
        };
        assert_eq!(Runtime::resolve(&c, &dir).expect("fx").stack, Stack::Python);
        c.linux_fx_version = Some(String::new());
        assert_eq!(Runtime::resolve(&c, &dir).expect("node").stack, Stack::Node);
        c.node_version = None;
        c.app_settings
            .insert("WEBSITE_NODE_DEFAULT_VERSION".into(), "~22".into());
        let r = Runtime::resolve(&c, &dir).expect("setting");
        assert_eq!(r.version.as_deref(), Some("~22"));
    }
}
