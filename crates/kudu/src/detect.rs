//! The start command, found the way App Service's Linux images find it: an explicit startup
//! command wins; Node: `npm start` when package.json has a start script, else the first of
//! `bin/www`, `server.js`, `app.js`, `index.js`, `hostingstart.js` with `node`; Python: Django
//! (`<pkg>/wsgi.py` next to `<pkg>/settings.py`) -> `gunicorn <pkg>.wsgi`, else
//! `application.py` / `app.py` -> `gunicorn application:app` / `app:app`. Gunicorn binds
//! `127.0.0.1:$PORT` with App Service's `--timeout 600`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::deployment::StartCommand;
use crate::runtime::Stack;

/// The virtual environment's folder name (App Service's default).
pub(crate) const VENV: &str = "antenv";

const NODE_FILES: [&str; 5] = [
    "bin/www",
    "server.js",
    "app.js",
    "index.js",
    "hostingstart.js",
];

/// Folders never searched for a Django project.
const SKIP_DIRS: [&str; 4] = [VENV, "node_modules", "__pycache__", "venv"];

/// The start command for the app in `site_dir`, or why there is none.
pub(crate) fn start_command(
    stack: Stack,
    site_dir: &Path,
    app_command_line: Option<&str>,
) -> Result<StartCommand, String> {
    let venv = site_dir.join(VENV);
    let has_venv = stack == Stack::Python && venv.join("bin").join("python").exists();
    let mut env = BTreeMap::new();
    let mut path_prepend = Vec::new();
    if stack == Stack::Python {
        // Output reaches the log as it is printed.
        env.insert("PYTHONUNBUFFERED".to_owned(), "1".to_owned());
        if has_venv {
            env.insert(
                "VIRTUAL_ENV".to_owned(),
                venv.to_string_lossy().into_owned(),
            );
            path_prepend.push(venv.join("bin"));
        }
    }
    let make = |program: &str, args: Vec<String>, display: String| StartCommand {
        program: program.to_owned(),
        args,
        cwd: site_dir.to_owned(),
        env: env.clone(),
        path_prepend: path_prepend.clone(),
        display,
    };

    if let Some(line) = app_command_line.map(str::trim).filter(|l| !l.is_empty()) {
        return Ok(make(
            "sh",
            vec!["-c".to_owned(), line.to_owned()],
            line.to_owned(),
        ));
    }

    match stack {
        Stack::Node => {
            if has_start_script(site_dir)? {
                return Ok(make(
                    "npm",
                    vec!["start".to_owned()],
                    "npm start".to_owned(),
                ));
            }
            NODE_FILES
                .iter()
                .find(|f| site_dir.join(f).is_file())
                .map(|f| make("node", vec![(*f).to_owned()], format!("node {f}")))
                .ok_or_else(|| {
                    "no start command: package.json has no \"start\" script and there is no bin/www, server.js, app.js, index.js or hostingstart.js; set a startup command (appCommandLine)".to_owned()
                })
        }
        Stack::Python => {
            let module = django_module(site_dir)
                .map(|pkg| format!("{pkg}.wsgi"))
                .or_else(|| {
                    [("application.py", "application:app"), ("app.py", "app:app")]
                        .into_iter()
                        .find(|(f, _)| site_dir.join(f).is_file())
                        .map(|(_, m)| m.to_owned())
                })
                .ok_or_else(|| {
                    "no start command: no Django project (<package>/wsgi.py next to settings.py), application.py or app.py; set a startup command (appCommandLine)".to_owned()
                })?;
            let gunicorn = if has_venv {
                quote(&venv.join("bin").join("gunicorn").to_string_lossy())
            } else {
                // App Service's image has gunicorn; here the machine's python3 must.
                "python3 -m gunicorn".to_owned()
            };
            let display = format!(
                "gunicorn --bind=127.0.0.1:$PORT --timeout 600 --access-logfile - --error-logfile - {module}"
            );
            // The shell expands $PORT, which the platform sets when it starts the app.
            let script = format!(
                "exec {gunicorn} --bind=127.0.0.1:$PORT --timeout 600 --access-logfile - --error-logfile - {module}"
            );
            Ok(make("sh", vec!["-c".to_owned(), script], display))
        }
    }
}

/// Whether package.json (if any) has a non-empty `scripts.start`.
pub(crate) fn has_start_script(site_dir: &Path) -> Result<bool, String> {
    Ok(script(site_dir, "start")?.is_some())
}

/// `scripts.<name>` of package.json, when there is one and it is not empty.
pub(crate) fn script(site_dir: &Path, name: &str) -> Result<Option<String>, String> {
    let path = site_dir.join("package.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read package.json: {e}")),
    };
    let json: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| format!("package.json is not valid JSON: {e}"))?;
    Ok(json
        .get("scripts")
        .and_then(|s| s.get(name))
        .and_then(|s| s.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned))
}

/// The first sub-folder (by name) holding both `wsgi.py` and `settings.py`.
fn django_module(site_dir: &Path) -> Option<String> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(site_dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs.into_iter().find_map(|dir| {
        let name = dir.file_name()?.to_str()?.to_owned();
        let valid = !name.starts_with('.')
            && !SKIP_DIRS.contains(&name.as_str())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        (valid && dir.join("wsgi.py").is_file() && dir.join("settings.py").is_file())
            .then_some(name)
    })
}

/// `'...'` for sh.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);
    impl Dir {
        fn new(files: &[(&str, &str)]) -> Dir {
            let d = std::env::temp_dir().join(format!("kudu-detect-{}", uuid::Uuid::new_v4()));
            for (f, content) in files {
                let p = d.join(f);
                std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                std::fs::write(p, content).expect("write");
            }
            std::fs::create_dir_all(&d).expect("mkdir");
            Dir(d)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn node(files: &[(&str, &str)]) -> Result<String, String> {
        let d = Dir::new(files);
        start_command(Stack::Node, &d.0, None).map(|c| c.display)
    }

    fn python(files: &[(&str, &str)]) -> Result<String, String> {
        let d = Dir::new(files);
        start_command(Stack::Python, &d.0, None).map(|c| c.args.join(" "))
    }

    #[test]
    fn node_rules() {
        assert_eq!(
            node(&[
                ("package.json", r#"{"scripts":{"start":"node x.js"}}"#),
                ("server.js", "")
            ]),
            Ok("npm start".to_owned())
        );
        assert_eq!(
            node(&[
                ("package.json", r#"{"scripts":{"start":" "}}"#),
                ("app.js", ""),
                ("index.js", "")
            ]),
            Ok("node app.js".to_owned())
        );
        assert_eq!(
            node(&[("bin/www", ""), ("server.js", "")]),
            Ok("node bin/www".to_owned())
        );
        assert_eq!(
            node(&[("hostingstart.js", "")]),
            Ok("node hostingstart.js".to_owned())
        );
        let err = node(&[("readme.md", "")]).expect_err("none");
        assert!(err.starts_with("no start command:"), "{err}");
        assert!(
            node(&[("package.json", "{")])
                .expect_err("bad json")
                .contains("not valid JSON")
        );
    }

    #[test]
    fn python_rules() {
        let django = python(&[
            ("mysite/wsgi.py", ""),
            ("mysite/settings.py", ""),
            ("app.py", ""),
        ])
        .expect("django");
        assert!(django.contains("mysite.wsgi"), "{django}");
        assert!(
            django.contains("--bind=127.0.0.1:$PORT --timeout 600"),
            "{django}"
        );
        assert!(!django.contains("0.0.0.0"));
        let app = python(&[("app.py", ""), ("x/wsgi.py", "")]).expect("flask");
        assert!(app.ends_with(" app:app"), "{app}");
        let application = python(&[("app.py", ""), ("application.py", "")]).expect("application");
        assert!(application.ends_with(" application:app"), "{application}");
        assert!(
            python(&[("main.py", "")])
                .expect_err("none")
                .starts_with("no start command:")
        );
    }

    #[test]
    fn explicit_command_wins_and_venv_goes_first_on_path() {
        let d = Dir::new(&[("app.py", ""), ("antenv/bin/python", "")]);
        let c = start_command(Stack::Python, &d.0, Some("gunicorn -w 2 app:app")).expect("cmd");
        assert_eq!(c.program, "sh");
        assert_eq!(c.args, ["-c", "gunicorn -w 2 app:app"]);
        assert_eq!(c.path_prepend, [d.0.join("antenv/bin")]);
        let env = c.environment();
        assert!(env["PATH"].starts_with(&*d.0.join("antenv/bin").to_string_lossy()));
        assert_eq!(env["VIRTUAL_ENV"], d.0.join("antenv").to_string_lossy());
        let auto = start_command(Stack::Python, &d.0, Some("  ")).expect("auto");
        assert!(
            auto.args[1].contains("antenv/bin/gunicorn'"),
            "{:?}",
            auto.args
        );
    }
}
