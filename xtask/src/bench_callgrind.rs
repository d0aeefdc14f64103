//! The figure of the proxy benchmark that does not drift with the machine's load: user-space
//! instructions per request, counted by `valgrind --tool=callgrind`.
//!
//! The server runs under callgrind with instrumentation off; a client
//! (bench/proxy/fixed_requests.py) sends warm-up requests on one keep-alive connection,
//! instrumentation is switched on (`callgrind_control -i on`, through valgrind's gdbserver), a
//! fixed number of requests follow on the same connection, the counts are dumped
//! (`callgrind_control -d`, into `<profile>.1`) and the server is killed. The dump's total
//! instruction count (`Ir`) over the request count is the figure; the dump is kept for
//! `callgrind_annotate`. Start-up, warm-up and shutdown are not counted. (Killed, not stopped:
//! nginx in single-process mode under valgrind does not always act on SIGTERM.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::Server;
use crate::util::output;

/// Requests sent before counting starts: connections, caches, the JWKS fetch.
pub(crate) const WARM_UP_REQUESTS: u32 = 200;
/// How long a server under callgrind gets to start answering.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// One server measured under callgrind.
#[derive(Debug, Clone)]
pub(crate) struct Count {
    /// Requests sent while collecting.
    pub requests: u32,
    /// Instructions executed in user space (all threads) while they were served.
    pub instructions: u64,
    /// The callgrind profile, for `callgrind_annotate`.
    pub profile: PathBuf,
}

impl Count {
    pub(crate) fn per_request(&self) -> f64 {
        self.instructions as f64 / f64::from(self.requests.max(1))
    }
}

/// What to measure: the server's command line (run under valgrind as is) and its request shape.
pub(crate) struct Target<'a> {
    pub name: &'static str,
    /// Program and arguments of the server.
    pub command: Vec<String>,
    /// Extra environment of the server.
    pub env: Vec<(&'static str, String)>,
    pub port: u16,
    /// Header lines (`Name: value`) every request carries.
    pub headers: Vec<String>,
    pub dir: &'a Path,
}

/// The valgrind command line every server runs under.
fn valgrind_args(profile: &Path) -> Vec<String> {
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "--instr-atstart=no".into(),
        "--vgdb=yes".into(),
        format!("--callgrind-out-file={}", profile.display()),
    ]
}

/// Runs `target` under callgrind and counts `requests` requests.
pub(crate) fn count(templates: &Path, target: &Target<'_>, requests: u32) -> Result<Count> {
    let profile = target.dir.join(format!("callgrind.{}.out", target.name));
    let _ = std::fs::remove_file(&profile);
    let _ = std::fs::remove_file(dump_of(&profile));
    let mut argv = valgrind_args(&profile);
    argv.extend(target.command.iter().cloned());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    for (k, v) in &target.env {
        cmd.env(k, v);
    }
    // The server's default log level, as in the wall-clock runs.
    cmd.env_remove("EASYAUTH_LOG");
    let mut server = Server::spawn(
        target.name,
        &mut cmd,
        target.dir.join(format!("callgrind.{}.log", target.name)),
    )?;
    let pid = server.child.id();
    let client = |n: u32| -> Result<()> {
        let mut c = Command::new("python3");
        c.arg(templates.join("fixed_requests.py"))
            .args(["--port", &target.port.to_string()])
            .args(["--requests", &n.to_string()]);
        for h in &target.headers {
            c.args(["--header", h]);
        }
        output(&mut c).map(|_| ())
    };
    // Ready when one request passes (the first answers are slow under valgrind).
    let start = Instant::now();
    loop {
        server.ensure_running()?;
        if client(1).is_ok() {
            break;
        }
        if start.elapsed() > READY_TIMEOUT {
            bail!(
                "{} did not answer 2xx under callgrind within {} s",
                target.name,
                READY_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    client(WARM_UP_REQUESTS)?;
    callgrind_control(pid, &["-i", "on"])?;
    client(requests).with_context(|| format!("{}: the counted requests", target.name))?;
    callgrind_control(pid, &["-d"])?;
    server.kill();
    let profile = dump_of(&profile);
    let instructions = total_instructions(&profile)?;
    println!(
        "    {}: {instructions} instructions for {requests} requests = {:.0} per request (profile {})",
        target.name,
        instructions as f64 / f64::from(requests.max(1)),
        profile.display()
    );
    println!("{}", top_functions(&profile, 40));
    Ok(Count {
        requests,
        instructions,
        profile,
    })
}

fn callgrind_control(pid: u32, args: &[&str]) -> Result<()> {
    output(
        Command::new("callgrind_control")
            .args(args)
            .arg(pid.to_string()),
    )
    .with_context(|| format!("callgrind_control {} {pid}", args.join(" ")))
    .map(|_| ())
}

/// The file of the first `callgrind_control -d` dump of a profile.
fn dump_of(profile: &Path) -> PathBuf {
    let mut name = profile.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// The `totals:` (or, failing that, `summary:`) line of a callgrind profile: its `Ir`.
fn total_instructions(profile: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(profile)
        .with_context(|| format!("reading {}", profile.display()))?;
    parse_total(&text).with_context(|| format!("no totals line in {}", profile.display()))
}

fn parse_total(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("totals:"))
        .or_else(|| text.lines().find(|l| l.starts_with("summary:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The first lines of `callgrind_annotate` for a profile (functions by inclusive cost).
fn top_functions(profile: &Path, lines: usize) -> String {
    let out = Command::new("callgrind_annotate")
        .arg(profile)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines().take(lines).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_total_of_a_profile() {
        let text = "version: 1\nevents: Ir\nsummary: 120\nfn=main\n3 4\ntotals: 123456\n";
        assert_eq!(parse_total(text), Some(123_456));
        assert_eq!(parse_total("events: Ir\nsummary: 99\n"), Some(99));
        assert_eq!(parse_total("events: Ir\n"), None);
    }
}
