//! `cargo xtask test`: tools, Python venv, npm packages, lint, unit tests, end-to-end suite.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{
    self, Steps, cargo, ensure_debian_packages, fnv1a, read_or_empty, repo_root, run,
};

#[derive(Debug, Default)]
struct Options {
    skip_lint: bool,
    only_e2e: bool,
    no_e2e: bool,
    pytest_args: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut opts = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--skip-lint" => opts.skip_lint = true,
            "--only-e2e" => opts.only_e2e = true,
            "--no-e2e" => opts.no_e2e = true,
            "--" => {
                opts.pytest_args = it.by_ref().cloned().collect();
            }
            other => bail!(
                "unknown option `{other}` (expected --skip-lint, --only-e2e, --no-e2e, -- <pytest args>)"
            ),
        }
    }
    if opts.only_e2e && opts.no_e2e {
        bail!("--only-e2e and --no-e2e exclude each other");
    }
    Ok(opts)
}

pub(crate) fn main(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    let root = repo_root();
    let e2e = root.join("tests/e2e");
    let venv = root.join("target/e2e/venv");
    let artifacts = root.join("target/test-artifacts");
    let mut steps = Steps::default();

    if std::env::var_os("CI").is_some() {
        println!("CI detected: non-interactive run");
    }

    if opts.no_e2e {
        steps.skipped("tools / venv / npm", "--no-e2e");
    } else {
        steps.step("ensure tools (python3, node, npm, chromium)", ensure_tools)?;
        steps.step("promtool (Debian's prometheus)", ensure_promtool)?;
        steps.step("python venv (target/e2e/venv)", || python_venv(&e2e, &venv))?;
        steps.step("npm packages (tests/e2e)", || npm_packages(&e2e))?;
        steps.step(
            &format!(
                "azure-cli {AZURE_CLI_VERSION} (cached in {})",
                azure_cli_dir().display()
            ),
            ensure_azure_cli,
        )?;
    }

    if opts.skip_lint || opts.only_e2e {
        steps.skipped("lint (cargo fmt, cargo clippy)", "--skip-lint/--only-e2e");
    } else {
        steps.step("cargo fmt --check", || {
            run(cargo().args(["fmt", "--all", "--", "--check"]))
        })?;
        steps.step("cargo clippy", || {
            run(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
    }

    // Before the unit tests: the Rust tests and the e2e suite both start private servers from
    // these packages (crates/testservers, tests/e2e/services.py).
    steps.step(
        "servers for the tests (Debian packages: postgresql, redis-server, nginx with auth_request, caddy)",
        ensure_service_packages,
    )?;

    if opts.only_e2e {
        steps.skipped("unit tests", "--only-e2e");
    } else {
        steps.step("unit tests", unit_tests)?;
    }

    if opts.no_e2e {
        steps.skipped("e2e", "--no-e2e");
    } else {
        steps.step("cargo build -p easyauth", || {
            run(cargo().args(["build", "-p", "easyauth"]))
        })?;
        steps.step("e2e suite (pytest tests/e2e)", || {
            e2e_suite(&root, &venv, &artifacts, &opts.pytest_args)
        })?;
    }

    steps.summary("PASSED");
    Ok(())
}

/// Whether `pattern` (a path with at most one `*` for a whole folder name) names a file.
fn binary_present(pattern: &str) -> bool {
    let Some((before, after)) = pattern.split_once("/*/") else {
        return Path::new(pattern).is_file();
    };
    std::fs::read_dir(before).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.path().join(after).is_file())
    })
}

/// Where Debian's `chromium` package puts the browser (tests/e2e/node/browser_tutorial.mjs).
const CHROMIUM: &str = "/usr/bin/chromium";

fn ensure_tools() -> Result<()> {
    let mut packages: Vec<&str> = Vec::new();
    match util::which("python3") {
        None => packages.extend(["python3", "python3-venv"]),
        Some(python) => {
            // Debian's own python3 ships venv/ensurepip separately.
            let ok = util::probe(&python.to_string_lossy(), &["-c", "import venv, ensurepip"])
                .is_some_and(|(ok, _)| ok);
            if !ok {
                packages.push("python3-venv");
            }
        }
    }
    if util::which("node").is_none() {
        packages.push("nodejs");
    }
    if util::which("npm").is_none() {
        packages.push("npm");
    }
    // The browser of the `easyauth up` acceptance tests (playwright-core drives it; it never
    // downloads a browser of its own).
    if !Path::new(CHROMIUM).is_file() {
        packages.push("chromium");
    }
    // The tutorial pipes `az webapp auth show` through jq (tests/e2e/test_az_tutorial.py).
    if util::which("jq").is_none() {
        packages.push("jq");
    }
    ensure_debian_packages(&packages)?;
    for (tool, program) in [
        ("python3", "python3"),
        ("node", "node"),
        ("npm", "npm"),
        ("chromium", CHROMIUM),
    ] {
        let (_, version) = util::probe(program, &["--version"])
            .with_context(|| format!("`{tool}` is still not runnable"))?;
        // Debian's chromium is a shell wrapper that may complain on stderr first
        // ("/usr/bin/chromium: 9: [: ...") before "Chromium 156.0...".
        let line = version
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('/'))
            .unwrap_or(version.trim());
        println!("    {tool}: {line}");
    }
    Ok(())
}

/// The real servers the suites start privately on free loopback ports (never the machine's own
/// instances; the packages' services are not started here, there is no init system).
fn ensure_service_packages() -> Result<()> {
    let mut packages: Vec<&str> = Vec::new();
    // Sessions shared by replicas (crates/module/tests/session_stores.rs, test_proxy_replicas.py).
    if !Path::new(REDIS_SERVER).is_file() {
        packages.push("redis-server");
    }
    // The load balancer in front of replicas, and nginx `auth_request` in front of
    // `easyauth forward-auth` (test_forward_auth.py). nginx-light has no auth_request module;
    // Debian's `nginx` (nginx-core) has.
    let has_auth_request = util::probe(NGINX, &["-V"])
        .is_some_and(|(ok, out)| ok && out.contains("http_auth_request_module"));
    if !has_auth_request {
        packages.push("nginx");
    }
    // Caddy `forward_auth` (test_forward_auth.py).
    if util::which("caddy").is_none() {
        packages.push("caddy");
    }
    // PostgreSQL for the store and identity-provider replicas (crates/store/tests/postgres.rs,
    // test_idp_replicas.py). Installing it may create and start the machine's own cluster; the
    // tests never use it (they run `initdb` into a temporary folder).
    if !binary_present(POSTGRES_INITDB) {
        packages.push("postgresql");
    }
    ensure_debian_packages(&packages)?;
    let (_, redis) =
        util::probe(REDIS_SERVER, &["-v"]).context("`redis-server` is still not runnable")?;
    let (_, nginx) = util::probe(NGINX, &["-V"]).context("`nginx` is still not runnable")?;
    if !nginx.contains("http_auth_request_module") {
        bail!(
            "{NGINX} has no http_auth_request_module: install Debian's `nginx` (not nginx-light)"
        );
    }
    let (_, caddy) = util::probe("caddy", &["version"]).context("`caddy` is still not runnable")?;
    println!(
        "    redis-server: {}",
        redis.lines().next().unwrap_or("").trim()
    );
    println!("    nginx: {}", nginx.lines().next().unwrap_or("").trim());
    println!("    caddy: {}", caddy.trim());
    Ok(())
}

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const POSTGRES_INITDB: &str = "/usr/lib/postgresql/*/bin/initdb";
/// Debian's nginx binary.
const NGINX: &str = "/usr/sbin/nginx";

/// `promtool check metrics` judges the operations listener's `/metrics` (tests/e2e/test_ops.py);
/// Debian ships it in `prometheus` (the server comes along; nothing here starts it).
const PROMTOOL: &str = "/usr/bin/promtool";

fn ensure_promtool() -> Result<()> {
    if Path::new(PROMTOOL).is_file() {
        return Ok(());
    }
    ensure_debian_packages(&["prometheus"])?;
    if !Path::new(PROMTOOL).is_file() {
        bail!("the Debian package prometheus is installed but {PROMTOOL} is missing");
    }
    Ok(())
}

pub(crate) fn python_venv(e2e: &Path, venv: &Path) -> Result<()> {
    let requirements = e2e.join("requirements.txt");
    let python_version = util::probe("python3", &["--version"])
        .map(|(_, v)| v)
        .unwrap_or_default();
    let want = fnv1a(&[
        &read_or_empty(&requirements),
        python_version.trim().as_bytes(),
    ]);
    let stamp = venv.join(".xtask-requirements-stamp");
    let venv_python = venv.join("bin/python");

    let healthy = venv_python.is_file()
        && util::probe(&venv_python.to_string_lossy(), &["-c", "import sys"])
            .is_some_and(|(ok, _)| ok);
    if healthy && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        println!("    up to date (requirements.txt unchanged)");
        return Ok(());
    }
    if !healthy {
        if venv.exists() {
            std::fs::remove_dir_all(venv)
                .with_context(|| format!("removing broken venv {}", venv.display()))?;
        }
        run(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
    }
    run(Command::new(&venv_python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
        ])
        .arg(&requirements))?;
    std::fs::write(&stamp, want).context("writing venv stamp")?;
    Ok(())
}

/// The Azure CLI the tests drive: pinned, from PyPI, installed once into a cache outside the
/// checkout (about 700 MB, 1.5 min), reused by every later run and checkout on the machine.
const AZURE_CLI_VERSION: &str = "2.91.0";

fn azure_cli_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| repo_root().join("target/tools"));
    cache
        .join("easyauth")
        .join(format!("azure-cli-{AZURE_CLI_VERSION}"))
}

pub(crate) fn azure_cli_binary() -> PathBuf {
    azure_cli_dir().join("bin/az")
}

pub(crate) fn ensure_azure_cli() -> Result<()> {
    let dir = azure_cli_dir();
    let az = azure_cli_binary();
    let stamp = dir.join(".xtask-installed");
    if az.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(AZURE_CLI_VERSION) {
        println!("    up to date ({})", az.display());
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("removing an incomplete install at {}", dir.display()))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).context("creating the tools cache")?;
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    run(Command::new(dir.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
        ])
        .arg(format!("azure-cli=={AZURE_CLI_VERSION}")))?;
    let (ok, version) = util::probe(&az.to_string_lossy(), &["version", "--output", "tsv"])
        .context("the installed az does not run")?;
    if !ok {
        bail!("the installed az does not run: {version}");
    }
    std::fs::write(&stamp, AZURE_CLI_VERSION).context("writing the azure-cli stamp")?;
    Ok(())
}

fn npm_packages(e2e: &Path) -> Result<()> {
    npm_install(e2e)
}

/// `npm ci` (or `npm install` without a lockfile) in `dir`, skipped when a stamp in
/// node_modules shows package.json and package-lock.json unchanged.
pub(crate) fn npm_install(dir: &Path) -> Result<()> {
    let lock = dir.join("package-lock.json");
    let node_version = util::probe("node", &["--version"])
        .map(|(_, v)| v)
        .unwrap_or_default();
    let fingerprint = |dir: &Path| {
        fnv1a(&[
            &read_or_empty(&dir.join("package.json")),
            &read_or_empty(&dir.join("package-lock.json")),
            node_version.trim().as_bytes(),
        ])
    };
    let stamp: PathBuf = dir.join("node_modules/.xtask-stamp");
    if lock.is_file()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(fingerprint(dir).as_str())
    {
        println!("    up to date (package.json / package-lock.json unchanged)");
        return Ok(());
    }
    let verb = if lock.is_file() { "ci" } else { "install" };
    run(Command::new("npm")
        .args([verb, "--no-audit", "--no-fund"])
        .current_dir(dir))?;
    std::fs::write(&stamp, fingerprint(dir)).context("writing npm stamp")?;
    Ok(())
}

fn unit_tests() -> Result<()> {
    let nextest = util::probe("cargo-nextest", &["nextest", "--version"]).is_some_and(|(ok, _)| ok)
        || cargo()
            .args(["nextest", "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
    if nextest {
        run(cargo().args(["nextest", "run", "--workspace", "--no-tests=warn"]))
    } else {
        println!("    cargo-nextest not found; falling back to cargo test");
        run(cargo().args(["test", "--workspace"]))
    }
}

fn e2e_suite(root: &Path, venv: &Path, artifacts: &Path, extra: &[String]) -> Result<()> {
    let bin = root.join("target/debug/easyauth");
    if !bin.is_file() {
        bail!("{} was not built", bin.display());
    }
    if artifacts.exists() {
        std::fs::remove_dir_all(artifacts).context("cleaning target/test-artifacts")?;
    }
    std::fs::create_dir_all(artifacts).context("creating target/test-artifacts")?;
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.current_dir(root)
        .args(["-m", "pytest", "tests/e2e", "-v", "-o"])
        .arg(format!(
            "cache_dir={}",
            root.join("target/e2e/pytest-cache").display()
        ))
        .arg(format!(
            "--junitxml={}",
            artifacts.join("junit.xml").display()
        ))
        .args(extra)
        .env("EASYAUTH_BIN", &bin)
        .env("EASYAUTH_AZ", azure_cli_binary())
        .env("EASYAUTH_ARTIFACTS", artifacts)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    let result = run(&mut cmd);
    println!(
        "    artifacts (server logs, junit.xml): {}",
        artifacts.display()
    );
    result
}
