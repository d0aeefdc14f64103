//! App Service's build during deployment, as Oryx does it. Node: `npm install`, then
//! `npm run build` when package.json has a build script, with npm's normal cache. Python: a
//! virtual environment `antenv` in the app's folder and `antenv/bin/pip install -r
//! requirements.txt`, plus gunicorn when the requirements do not name it (App Service's Python
//! image has it).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::detect::{self, VENV};
use crate::log::DeployLog;
use crate::process::{Cmd, run};
use crate::runtime::Stack;

/// What every build command gets.
#[derive(Debug)]
pub(crate) struct BuildContext<'a> {
    pub(crate) log: &'a DeployLog,
    pub(crate) site_dir: &'a Path,
    /// The app settings and the tools' quiet switches, over this process's environment.
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) timeout: Duration,
}

impl BuildContext<'_> {
    async fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let cmd = Cmd {
            program,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            cwd: self.site_dir,
            env: self.env,
        };
        self.log.info(&format!("Running {}", cmd.display())).await;
        run(self.log, &cmd, self.timeout)
            .await
            .map(|r| r.first_line)
    }
}

/// The environment of build commands: the app settings (as Kudu gives them, so they can
/// override these) and switches that keep npm and pip from asking or nagging. npm prefers its
/// cache: a warm install takes about 1.5 s instead of 4 s of revalidating every package's
/// metadata (a lock file still pins versions; anything missing is fetched).
pub(crate) fn build_env(app_settings: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("npm_config_prefer_offline", "true"),
        ("npm_config_update_notifier", "false"),
        ("npm_config_fund", "false"),
        ("npm_config_audit", "false"),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        ("PIP_NO_INPUT", "1"),
        ("PYTHONUNBUFFERED", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.extend(app_settings.clone());
    env
}

/// The machine's version of the stack's program, e.g. `v20.20.2` or `Python 3.11.7`.
pub(crate) async fn machine_version(
    ctx: &BuildContext<'_>,
    stack: Stack,
) -> Result<String, String> {
    ctx.run(stack.program(), &["--version"]).await
}

/// Builds the app in `ctx.site_dir`.
pub(crate) async fn build(ctx: &BuildContext<'_>, stack: Stack) -> Result<(), String> {
    match stack {
        Stack::Node => build_node(ctx).await,
        Stack::Python => build_python(ctx).await,
    }
}

async fn build_node(ctx: &BuildContext<'_>) -> Result<(), String> {
    if !ctx.site_dir.join("package.json").is_file() {
        ctx.log.info("No package.json: nothing to install").await;
        return Ok(());
    }
    ctx.run("npm", &["install"]).await?;
    if detect::script(ctx.site_dir, "build")?.is_some() {
        ctx.run("npm", &["run", "build"]).await?;
    }
    Ok(())
}

async fn build_python(ctx: &BuildContext<'_>) -> Result<(), String> {
    ctx.run("python3", &["-m", "venv", VENV]).await?;
    let pip = ctx.site_dir.join(VENV).join("bin").join("pip");
    let pip = pip.to_string_lossy();
    let requirements = ctx.site_dir.join("requirements.txt");
    let text = match tokio::fs::read_to_string(&requirements).await {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read requirements.txt: {e}")),
    };
    let mut args = vec!["install"];
    match &text {
        Some(_) => args.extend(["-r", "requirements.txt"]),
        None => {
            ctx.log
                .warn("No requirements.txt: installing only gunicorn")
                .await;
        }
    }
    if !text.as_deref().is_some_and(names_gunicorn) {
        args.push("gunicorn");
    }
    ctx.run(&pip, &args).await?;
    Ok(())
}

/// Whether a requirements file asks for gunicorn itself (any version or extras).
fn names_gunicorn(requirements: &str) -> bool {
    requirements.lines().any(|line| {
        let line = line.split('#').next().unwrap_or("").trim();
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(line.len());
        line[..name_end].eq_ignore_ascii_case("gunicorn")
    })
}

/// The leading version numbers of `text` (`v20.20.2` -> [20, 20, 2], `20-lts` -> [20],
/// `Python 3.11.7` -> [3, 11, 7], `~20` -> [20]).
pub(crate) fn version_numbers(text: &str) -> Vec<u64> {
    let start = text
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(text.len());
    text[start..]
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap_or("")
        .split('.')
        .map_while(|p| p.parse().ok())
        .collect()
}

/// Whether what runs matches what was asked for, as far as it was specified (`20-lts` vs
/// `v20.20.2` matches; `3.12` vs `Python 3.11.7` does not).
pub(crate) fn version_matches(requested: &str, actual: &str) -> bool {
    let want = version_numbers(requested);
    let have = version_numbers(actual);
    want.is_empty() || (have.len() >= want.len() && have[..want.len()] == want[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunicorn_in_requirements() {
        assert!(names_gunicorn("flask\ngunicorn==22.0\n"));
        assert!(names_gunicorn("Gunicorn[gevent]>=20 # server"));
        assert!(!names_gunicorn("flask\n# gunicorn\ngunicorn-extras\n"));
    }

    #[test]
    fn versions() {
        assert_eq!(version_numbers("v20.20.2"), [20, 20, 2]);
        assert_eq!(version_numbers("Python 3.11.7"), [3, 11, 7]);
        assert_eq!(version_numbers("NODE:20LTS"), [20]);
        assert!(version_matches("20-lts", "v20.20.2"));
        assert!(version_matches("~20", "v20.1.0"));
        assert!(!version_matches("22-lts", "v20.20.2"));
        assert!(version_matches("3.11", "Python 3.11.7"));
        assert!(!version_matches("3.12", "Python 3.11.7"));
        assert!(version_matches("lts", "v20.20.2"));
    }
}
