//! Small helpers shared by the xtask commands (std only).

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of the xtask crate).
pub(crate) fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo that runs us (so rustup toolchain selection is preserved).
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root());
    cmd
}

/// Whether `program` can be found on PATH (or is an existing path).
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(' ') {
            let _ = write!(s, " '{arg}'");
        } else {
            let _ = write!(s, " {arg}");
        }
    }
    s
}

/// Runs a command with inherited stdio; fails when it exits non-zero.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let shown = describe(cmd);
    println!("    $ {shown}");
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs a command and returns its stdout (stderr is inherited); fails when it exits non-zero.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let shown = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !out.status.success() {
        bail!("`{shown}` failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command quietly and returns stdout+stderr whatever the exit status (None if it cannot start).
pub(crate) fn probe<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Option<(bool, String)> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Some((out.status.success(), text))
}

fn is_root() -> bool {
    probe("id", &["-u"]).is_some_and(|(ok, out)| ok && out.trim() == "0")
}

fn dpkg_installed(package: &str) -> bool {
    probe("dpkg-query", &["-W", "-f=${Status}", package])
        .is_some_and(|(ok, out)| ok && out.contains("install ok installed"))
}

/// Installs the Debian packages that are not installed yet (one `apt-get update`, then one
/// non-interactive `apt-get install`). Uses sudo only when not root.
pub(crate) fn ensure_debian_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("    missing Debian packages: {}", missing.join(" "));
    if which("apt-get").is_none() {
        bail!(
            "Debian packages {missing:?} are missing and apt-get is not available; install them by hand"
        );
    }
    let sudo = !is_root();
    if sudo && which("sudo").is_none() {
        bail!("Debian packages {missing:?} are missing; not root and no sudo to install them");
    }
    let apt = |args: &[&str]| {
        let mut cmd = if sudo {
            let mut c = Command::new("sudo");
            c.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
            c
        } else {
            let mut c = Command::new("apt-get");
            c.env("DEBIAN_FRONTEND", "noninteractive");
            c
        };
        cmd.args(args);
        cmd
    };
    run(&mut apt(&["update"]))?;
    let mut install = apt(&["install", "-y", "--no-install-recommends"]);
    install.args(&missing);
    run(&mut install)
}

/// FNV-1a 64-bit hash of several byte strings (stamp files; not security relevant).
pub(crate) fn fnv1a(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(b"\0") {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Reads a file, or an empty vector when it does not exist.
pub(crate) fn read_or_empty(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// Outcome of the steps of one xtask command, for the final summary line.
#[derive(Debug, Default)]
pub(crate) struct Steps {
    done: Vec<(String, Duration, &'static str)>,
}

impl Steps {
    /// Prints the `==> name` header, runs the step and records how it went.
    pub(crate) fn step<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        println!("\n==> {name}");
        let start = Instant::now();
        let result = f();
        let outcome = if result.is_ok() { "ok" } else { "FAILED" };
        self.done.push((name.to_owned(), start.elapsed(), outcome));
        if result.is_err() {
            self.summary("FAILED");
        }
        result.with_context(|| format!("step `{name}`"))
    }

    /// Records a step that was skipped on purpose.
    pub(crate) fn skipped(&mut self, name: &str, why: &str) {
        println!("\n==> {name} (skipped: {why})");
        self.done.push((name.to_owned(), Duration::ZERO, "skipped"));
    }

    pub(crate) fn summary(&self, verdict: &str) {
        let total: Duration = self.done.iter().map(|(_, d, _)| *d).sum();
        let parts: Vec<String> = self
            .done
            .iter()
            .map(|(n, d, o)| format!("{n}: {o} ({:.1}s)", d.as_secs_f64()))
            .collect();
        println!(
            "\n==> summary: {verdict} in {:.1}s — {}",
            total.as_secs_f64(),
            parts.join("; ")
        );
    }
}
