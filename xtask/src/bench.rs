//! `cargo xtask bench`: client_credentials tokens per second on ONE core.
//!
//! Side by side in one run:
//!  (a) `openssl speed rsa2048` signs/s on core 0 (the ceiling for an RS256 token issuer),
//!  (b) `easyauth idp --worker-threads 1` on core 0, loaded by `wrk` on core 1,
//!  (c) node `oidc-provider` (client_credentials, RS256 JWT access tokens) on core 0, same `wrk`.
//!
//! Writes `docs/benchmarks.md` and prints it. Every server started here is stopped (SIGTERM, then
//! SIGKILL after 5 s), also when a step fails.

use std::fmt::Write as _;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench_proxy::{self, ProxyOptions};
use crate::util::{self, Steps, cargo, ensure_debian_packages, output, repo_root, run};

const TENANT_ID: &str = "7d3b1f0e-5a7c-4e1b-9c2d-0b6a1e2f3c4d";
const CLIENT_ID: &str = "1b7e2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
const CLIENT_SECRET: &str = "bench-daemon-secret-0123456789abcdef";
const API_ID: &str = "2c8f3d4e-5a6b-4c7d-9e8f-0a1b2c3d4e5f";
const ROLE_ID: &str = "3d9a4e5f-6b7c-4d8e-8f9a-1b2c3d4e5f60";

const PEER_CLIENT_ID: &str = "bench-client";
const PEER_CLIENT_SECRET: &str = "bench-client-secret-0123456789";
const PEER_RESOURCE: &str = "api://bench-api";
const PEER_SCOPE: &str = "Data.Read";

const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Options {
    duration: u64,
    connections: u32,
    skip_peer: bool,
    only: Option<Part>,
    proxy: ProxyOptions,
}

/// The parts of the benchmark (`--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Idp,
    Proxy,
    Deploy,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut opts = Options {
        duration: 10,
        connections: 16,
        skip_peer: false,
        only: None,
        proxy: ProxyOptions::default(),
    };
    let mut duration_given = false;
    let mut quick = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--duration" => {
                opts.duration = it
                    .next()
                    .context("--duration needs a value")?
                    .parse()
                    .context("--duration SECS")?;
                duration_given = true;
            }
            "--connections" => {
                opts.connections = it
                    .next()
                    .context("--connections needs a value")?
                    .parse()
                    .context("--connections N")?;
            }
            "--skip-peer" => opts.skip_peer = true,
            "--only" => {
                opts.only = Some(match it.next().map(String::as_str) {
                    Some("idp") => Part::Idp,
                    Some("proxy") => Part::Proxy,
                    Some("deploy") => Part::Deploy,
                    other => bail!("--only needs `idp`, `proxy` or `deploy`, got {other:?}"),
                });
            }
            "--proxy-connections" => {
                opts.proxy.connections = it
                    .next()
                    .context("--proxy-connections needs a value")?
                    .parse()
                    .context("--proxy-connections N")?;
            }
            "--rounds" => {
                opts.proxy.rounds = it
                    .next()
                    .context("--rounds needs a value")?
                    .parse()
                    .context("--rounds N")?;
            }
            "--callgrind-requests" => {
                opts.proxy.callgrind_requests = it
                    .next()
                    .context("--callgrind-requests needs a value")?
                    .parse()
                    .context("--callgrind-requests N")?;
            }
            "--quick" => quick = true,
            "--idle-connections" => {
                opts.proxy.idle_connections = it
                    .next()
                    .context("--idle-connections needs a value")?
                    .parse()
                    .context("--idle-connections N")?;
            }
            other => bail!(
                "unknown option `{other}` (expected --only idp|proxy|deploy, --duration SECS, --connections N, \
                 --skip-peer, --proxy-connections N, --idle-connections N, --rounds N, \
                 --callgrind-requests N, --quick)"
            ),
        }
    }
    // A smoke run of every step: short, one round, few counted requests.
    if quick {
        opts.duration = 2;
        opts.proxy.duration = 2;
        opts.proxy.rounds = 1;
        opts.proxy.callgrind_requests = 200;
    }
    if opts.duration == 0
        || opts.duration > 120
        || opts.proxy.callgrind_requests == 0
        || opts.connections == 0
        || opts.proxy.connections == 0
        || opts.proxy.idle_connections == 0
        || opts.proxy.idle_connections > 10_000
        || opts.proxy.rounds == 0
        || opts.proxy.rounds > 9
    {
        bail!(
            "--duration must be 1..=120, --connections and --proxy-connections > 0, \
             --idle-connections 1..=10000, --rounds 1..=9, --callgrind-requests > 0"
        );
    }
    if duration_given && !quick {
        opts.proxy.duration = opts.duration;
    }
    Ok(opts)
}

/// One result of a wrk run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Load {
    pub requests: u64,
    pub non200: u64,
    pub socket_errors: u64,
    pub duration_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Load {
    fn tokens_per_s(&self) -> f64 {
        self.rate()
    }

    /// Successful answers per second.
    pub(crate) fn rate(&self) -> f64 {
        if self.duration_s <= 0.0 {
            return 0.0;
        }
        (self.requests.saturating_sub(self.non200)) as f64 / self.duration_s
    }
}

pub(crate) fn main(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    let root = repo_root();
    let work = root.join("target/bench");
    let mut steps = Steps::default();
    let idp = opts.only.is_none_or(|p| p == Part::Idp);
    let proxy = opts.only.is_none_or(|p| p == Part::Proxy);
    let deploy = opts.only.is_none_or(|p| p == Part::Deploy);

    if idp {
        steps.step(
            "ensure tools (openssl, wrk, taskset, curl, node, npm)",
            || ensure_tools(opts.skip_peer),
        )?;
    }
    if proxy {
        steps.step(
            "ensure tools (nginx, apache2, libapache2-mod-auth-openidc, wrk, python3)",
            bench_proxy::ensure_tools,
        )?;
    }
    steps.step("cargo build --release -p easyauth", || {
        run(cargo().args(["build", "--release", "-p", "easyauth"]))
    })?;
    if idp && !opts.skip_peer {
        steps.step("npm packages (bench/node)", || {
            crate::test::npm_install(&root.join("bench/node"))
        })?;
    }
    steps.step("prepare target/bench", || {
        std::fs::create_dir_all(&work).context("creating target/bench")?;
        if idp {
            // the IdP part's files; target/bench/proxy is the proxy part's own
            for entry in std::fs::read_dir(&work).context("listing target/bench")? {
                let path = entry?.path();
                if path.file_name().is_some_and(|n| n == "proxy") {
                    continue;
                }
                if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                }
                .with_context(|| format!("removing {}", path.display()))?;
            }
        }
        Ok(())
    })?;

    let idp_section = if idp {
        Some(bench_idp(&root, &work, &opts, &mut steps)?)
    } else {
        None
    };
    let proxy_section = if proxy {
        let report = bench_proxy::run(&root, &work, &mut steps, &opts.proxy)?;
        Some(format!(
            "{}\n{}",
            generated_line("proxy"),
            bench_proxy::render(&root, &report)?
        ))
    } else {
        None
    };

    let deploy_section = if deploy {
        let report = crate::bench_deploy::run(&root, &work, &mut steps)?;
        Some(format!(
            "{}\n{}",
            generated_line("deploy"),
            crate::bench_deploy::render(&root, &report)?
        ))
    } else {
        None
    };

    let report = steps.step("write docs/benchmarks.md", || {
        let path = root.join("docs/benchmarks.md");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let report = compose(
            &old,
            idp_section.as_deref(),
            proxy_section.as_deref(),
            deploy_section.as_deref(),
        );
        std::fs::create_dir_all(root.join("docs")).context("creating docs/")?;
        std::fs::write(&path, &report).context("writing docs/benchmarks.md")?;
        Ok(report)
    })?;
    println!("\n{report}");
    steps.summary("PASSED");
    Ok(())
}

/// The identity-provider part: openssl, easyauth idp, oidc-provider; returns its section.
fn bench_idp(root: &Path, work: &Path, opts: &Options, steps: &mut Steps) -> Result<String> {
    // (a) is measured before and after (b), and the mean is the ceiling: the machine's speed
    // drifts by several percent between runs.
    let signs_before = steps.step(
        "(a) openssl speed -seconds 5 rsa2048 on core 0",
        openssl_speed,
    )?;
    println!("    RSA-2048 signs/s on core 0: {signs_before:.1}");

    let easyauth = steps.step(
        "(b) easyauth idp --worker-threads 1 on core 0, wrk on core 1",
        || bench_easyauth(root, work, opts),
    )?;
    let signs_after = steps.step(
        "(a) again: openssl speed -seconds 5 rsa2048 on core 0",
        openssl_speed,
    )?;
    println!("    RSA-2048 signs/s on core 0: {signs_after:.1}");
    let signs = (signs_before, signs_after);
    let peer = if opts.skip_peer {
        steps.skipped("(c) node oidc-provider", "--skip-peer");
        None
    } else {
        Some(
            steps.step("(c) node oidc-provider on core 0, wrk on core 1", || {
                bench_peer(root, work, opts)
            })?,
        )
    };
    render(root, opts, signs, &easyauth, peer.as_ref())
}

const TITLE: &str = "# Benchmarks\n\n\
Generated by `cargo xtask bench` (one part alone: `--only idp`, `--only proxy`, `--only deploy`; a part not re-run \
keeps its previous section). Do not edit by hand; re-run the command.\n";

fn generated_line(part: &str) -> String {
    let date = first_line("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]);
    format!("<!-- {part} part generated by `cargo xtask bench` on {date} -->\n")
}

fn marker(part: &str) -> (String, String) {
    (
        format!("<!-- xtask-bench:{part} -->"),
        format!("<!-- /xtask-bench:{part} -->"),
    )
}

/// The section of `part` in an earlier docs/benchmarks.md, if any. A file written before the
/// sections existed is all identity-provider text.
fn old_section(old: &str, part: &str) -> Option<String> {
    let (start, end) = marker(part);
    if let Some(i) = old.find(&start) {
        let rest = &old[i + start.len()..];
        let j = rest.find(&end)?;
        return Some(rest[..j].trim().to_owned());
    }
    if part == "idp" && !old.contains("<!-- xtask-bench:") && old.starts_with("# Benchmarks") {
        // the pre-section layout: title, "Generated by ..." line, then the IdP report
        let body = old.split_once("\n\n").map_or(old, |(_, rest)| rest);
        let body = body.split_once("\n\n").map_or(body, |(_, rest)| rest);
        return Some(format!(
            "## Identity provider (earlier layout)\n\n{}",
            body.trim()
        ));
    }
    None
}

/// docs/benchmarks.md from the sections just measured and, for the others, the old file.
fn compose(old: &str, idp: Option<&str>, proxy: Option<&str>, deploy: Option<&str>) -> String {
    let mut md = String::from(TITLE);
    for (part, new) in [("idp", idp), ("proxy", proxy), ("deploy", deploy)] {
        let text = new
            .map(|s| s.trim().to_owned())
            .or_else(|| old_section(old, part));
        if let Some(text) = text {
            let (start, end) = marker(part);
            let _ = write!(md, "\n{start}\n\n{text}\n\n{end}\n");
        }
    }
    md
}

fn ensure_tools(skip_peer: bool) -> Result<()> {
    let mut packages = Vec::new();
    for (tool, package) in [
        ("openssl", "openssl"),
        ("wrk", "wrk"),
        ("taskset", "util-linux"),
        ("curl", "curl"),
    ] {
        if util::which(tool).is_none() {
            packages.push(package);
        }
    }
    if !skip_peer {
        if util::which("node").is_none() {
            packages.push("nodejs");
        }
        if util::which("npm").is_none() {
            packages.push("npm");
        }
    }
    ensure_debian_packages(&packages)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        bail!(
            "the benchmark pins the server to core 0 and wrk to core 1; this machine has {cores} core(s)"
        );
    }
    Ok(())
}

fn openssl_speed() -> Result<f64> {
    let out = output(
        Command::new("taskset").args(["-c", "0", "openssl", "speed", "-seconds", "5", "rsa2048"]),
    )?;
    parse_openssl_speed(&out)
        .with_context(|| format!("could not find the rsa 2048 line in:\n{out}"))
}

/// Parses `rsa 2048 bits 0.000230s 0.000014s   4356.2  70682.0` → 4356.2 (sign/s).
fn parse_openssl_speed(out: &str) -> Option<f64> {
    out.lines().find_map(|line| {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let bits = tokens.iter().position(|t| *t == "bits")?;
        if tokens.first() != Some(&"rsa") || tokens.get(bits - 1) != Some(&"2048") {
            return None;
        }
        tokens.get(bits + 3)?.parse().ok()
    })
}

pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A server process; stopped (SIGTERM, then SIGKILL after 5 s) when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    name: &'static str,
    pub child: Child,
    log: PathBuf,
}

impl Server {
    pub(crate) fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Result<Self> {
        let file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let file2 = file.try_clone()?;
        println!("    starting {name} (log: {})", log.display());
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self { name, child, log })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub(crate) fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}); last log lines:\n{}",
                self.name,
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Waits until the server accepts TCP connections on loopback `port`.
    pub(crate) fn wait_listening(&mut self, port: u16) -> Result<()> {
        let start = Instant::now();
        loop {
            self.ensure_running()?;
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!(
                    "{} not listening on {port} after {}s; last log lines:\n{}",
                    self.name,
                    READY_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `url` with curl until it answers 200.
    pub(crate) fn wait_ready(&mut self, url: &str, ca: &Path) -> Result<()> {
        let start = Instant::now();
        loop {
            self.ensure_running()?;
            if ca.is_file() {
                let (code, _) = curl(&["--max-time", "2"], url, ca)?;
                if code == 200 {
                    println!(
                        "    {} ready after {:.1}s",
                        self.name,
                        start.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!(
                    "{} not ready after {}s ({url}); last log lines:\n{}",
                    self.name,
                    READY_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILL, for a server whose state on disk no longer matters.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                println!("    stopped {}", self.name);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!("    {} ignored SIGTERM for 5s; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs curl (extra args, URL) and returns (HTTP status, body). Status 0 = no answer.
pub(crate) fn curl(extra: &[&str], url: &str, ca: &Path) -> Result<(u16, String)> {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--cacert"])
        .arg(ca)
        .args(extra)
        .args(["--write-out", "\n%{http_code}", url])
        .stdin(Stdio::null())
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    Ok((code.trim().parse().unwrap_or(0), body.to_owned()))
}

/// One token request by curl before the load, to fail early with a readable answer.
fn sanity_check(url: &str, body: &str, ca: &Path) -> Result<()> {
    let (code, answer) = curl(&["--max-time", "10", "--data", body], url, ca)?;
    if code != 200 || !answer.contains("\"access_token\"") {
        bail!("token request to {url} answered {code}: {answer}");
    }
    println!("    sanity check: token endpoint answered 200 with an access_token");
    Ok(())
}

/// The part of every generated wrk script that counts unacceptable answers and prints the
/// `XTASK requests=...` line [`parse_wrk`] reads. `accept` is a Lua condition on `status`;
/// `label` names what is counted in the `XTASK first <label>:` sample line.
pub(crate) fn wrk_accounting(accept: &str, label: &str) -> String {
    format!(
        r#"local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  rejected = 0
  first_bad = ""
end
function response(status, headers, body)
  if not ({accept}) then
    rejected = rejected + 1
    if first_bad == "" then first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 300) end
  end
end
function done(summary, latency, requests)
  local bad = 0
  local sample = ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("rejected")
    local s = t:get("first_bad")
    if s ~= nil and s ~= "" and sample == "" then sample = s end
  end
  local e = summary.errors
  io.write(string.format("XTASK requests=%d duration_us=%d non200=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, bad, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
  if sample ~= "" then io.write("XTASK first {label}: " .. sample .. "\n") end
end
"#
    )
}

fn wrk_script(path: &Path, body: Option<&str>) -> Result<()> {
    let request = match body {
        Some(body) => format!(
            "wrk.method = \"POST\"\nwrk.body = \"{}\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n",
            body.replace('\\', "\\\\").replace('"', "\\\"")
        ),
        None => "wrk.method = \"GET\"\n".to_owned(),
    };
    let accounting = wrk_accounting("status == 200", "non-200");
    let script = format!(
        r#"-- generated by cargo xtask bench: send one request shape, count non-200 answers
{request}
{accounting}"#
    );
    std::fs::write(path, script).context("writing wrk script")
}

fn run_wrk(
    url: &str,
    body: Option<&str>,
    work: &Path,
    name: &str,
    opts: &Options,
    duration: u64,
) -> Result<Load> {
    let script = work.join(format!("{name}.lua"));
    wrk_script(&script, body)?;
    let out = output(
        Command::new("taskset")
            .args(["-c", "1", "wrk", "-t1"])
            .arg(format!("-c{}", opts.connections))
            .arg(format!("-d{duration}s"))
            .args(["--timeout", "10s", "-s"])
            .arg(&script)
            .arg(url),
    )?;
    print!("{out}");
    let load = parse_wrk(&out, name)?;
    println!(
        "    {name}: {:.1} answers/s ({} requests, {} non-200, {} socket errors, p50 {:.2} ms, p99 {:.2} ms)",
        load.tokens_per_s(),
        load.requests,
        load.non200,
        load.socket_errors,
        load.p50_ms,
        load.p99_ms
    );
    if load.non200 > 0 {
        bail!(
            "{name}: {} of {} responses were not 200",
            load.non200,
            load.requests
        );
    }
    if load.requests == 0 {
        bail!("{name}: wrk completed no request");
    }
    Ok(load)
}

/// Parses the `XTASK requests=...` line the generated wrk scripts print in `done`.
pub(crate) fn parse_wrk(out: &str, name: &str) -> Result<Load> {
    let line = out
        .lines()
        .find(|l| l.starts_with("XTASK requests="))
        .with_context(|| format!("{name}: wrk printed no result line:\n{out}"))?;
    let field = |key: &str| -> Result<u64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .with_context(|| format!("`{key}` missing in `{line}`"))?
            .parse()
            .with_context(|| format!("`{key}` in `{line}`"))
    };
    Ok(Load {
        requests: field("requests")?,
        non200: field("non200")?,
        socket_errors: field("socket_errors")?,
        duration_s: field("duration_us")? as f64 / 1e6,
        p50_ms: field("p50_us")? as f64 / 1e3,
        p99_ms: field("p99_us")? as f64 / 1e3,
    })
}

fn easyauth_directory() -> String {
    format!(
        r#"{{
  "tenant": {{"id": "{TENANT_ID}", "domain": "bench.onmicrosoft.com", "displayName": "Bench"}},
  "users": [],
  "applications": [
    {{"appId": "{API_ID}", "displayName": "bench-api", "identifierUris": ["api://{API_ID}"],
      "api": {{"requestedAccessTokenVersion": 2, "oauth2PermissionScopes": [], "preAuthorizedApplications": []}},
      "appRoles": [{{"id": "{ROLE_ID}", "value": "Data.Read", "displayName": "Read data",
                     "description": "Read data", "allowedMemberTypes": ["Application"], "isEnabled": true}}],
      "passwordCredentials": [], "keyCredentials": []}},
    {{"appId": "{CLIENT_ID}", "displayName": "bench-daemon",
      "requiredResourceAccess": [{{"resourceAppId": "{API_ID}", "resourceAccess": [{{"id": "{ROLE_ID}", "type": "Role"}}]}}],
      "passwordCredentials": [{{"displayName": "bench", "secretText": "{CLIENT_SECRET}"}}], "keyCredentials": []}}
  ],
  "oauth2PermissionGrants": [],
  "appRoleAssignments": [{{"principalId": "{CLIENT_ID}", "resourceId": "{API_ID}", "appRoleId": "{ROLE_ID}"}}]
}}
"#
    )
}

fn bench_easyauth(root: &Path, work: &Path, opts: &Options) -> Result<EasyauthLoad> {
    let bin = root.join("target/release/easyauth");
    let dir = work.join("easyauth");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).context("creating easyauth data dir")?;
    let directory = dir.join("directory.json");
    std::fs::write(&directory, easyauth_directory()).context("writing directory.json")?;
    let port = free_port()?;
    let base = format!("https://127.0.0.1:{port}");
    let mut server = Server::spawn(
        "easyauth idp",
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(&bin)
            .arg("idp")
            .arg("--directory")
            .arg(&directory)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--public-url", &base])
            .args(["--worker-threads", "1"]),
        work.join("easyauth.log"),
    )?;
    let ca = data.join("ca.pem");
    server.wait_ready(
        &format!("{base}/{TENANT_ID}/v2.0/.well-known/openid-configuration"),
        &ca,
    )?;
    let url = format!("{base}/{TENANT_ID}/oauth2/v2.0/token");
    let body = format!(
        "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&scope=api%3A%2F%2F{API_ID}%2F.default"
    );
    sanity_check(&url, &body, &ca)?;
    let load = run_wrk(&url, Some(&body), work, "easyauth", opts, opts.duration)?;
    server.ensure_running()?;
    // Informational: the same server answering a request that needs no signature (TLS, HTTP,
    // routing, JSON), to split the per-token cost into signing and everything else.
    let discovery = format!("{base}/{TENANT_ID}/v2.0/.well-known/openid-configuration");
    let plain = run_wrk(
        &discovery,
        None,
        work,
        "easyauth-discovery",
        opts,
        opts.duration.min(5),
    )?;
    server.ensure_running()?;
    server.stop();
    Ok(EasyauthLoad {
        tokens: load,
        discovery: plain,
    })
}

/// The easyauth results: the token load and the no-signature comparison.
#[derive(Debug)]
struct EasyauthLoad {
    tokens: Load,
    discovery: Load,
}

fn bench_peer(root: &Path, work: &Path, opts: &Options) -> Result<Load> {
    let dir = work.join("oidc-provider");
    std::fs::create_dir_all(&dir).context("creating oidc-provider dir")?;
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    output(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    )?;
    let port = free_port()?;
    let base = format!("https://127.0.0.1:{port}");
    let mut server = Server::spawn(
        "node oidc-provider",
        Command::new("taskset")
            .args(["-c", "0", "node"])
            .arg(root.join("bench/node/server.mjs"))
            .env("BENCH_PORT", port.to_string())
            .env("BENCH_ISSUER", &base)
            .env("BENCH_TLS_CERT", &cert)
            .env("BENCH_TLS_KEY", &key)
            .env("NODE_ENV", "production"),
        work.join("oidc-provider.log"),
    )?;
    server.wait_ready(&format!("{base}/.well-known/openid-configuration"), &cert)?;
    let url = format!("{base}/token");
    let body = format!(
        "grant_type=client_credentials&client_id={PEER_CLIENT_ID}&client_secret={PEER_CLIENT_SECRET}&scope={PEER_SCOPE}&resource=api%3A%2F%2Fbench-api"
    );
    debug_assert!(PEER_RESOURCE == "api://bench-api");
    sanity_check(&url, &body, &cert)?;
    let load = run_wrk(
        &url,
        Some(&body),
        work,
        "oidc-provider",
        opts,
        opts.duration,
    );
    server.ensure_running()?;
    server.stop();
    load
}

pub(crate) fn first_line(program: &str, args: &[&str]) -> String {
    util::probe(program, args)
        .map(|(_, out)| out.lines().next().unwrap_or("").trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn package_version(package_json: &Path) -> String {
    let text = std::fs::read_to_string(package_json).unwrap_or_default();
    text.split("\"version\"")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap_or("unknown")
        .to_owned()
}

fn render(
    root: &Path,
    opts: &Options,
    (signs_before, signs_after): (f64, f64),
    easyauth_runs: &EasyauthLoad,
    peer: Option<&Load>,
) -> Result<String> {
    let signs = (signs_before + signs_after) / 2.0;
    let easyauth = &easyauth_runs.tokens;
    let discovery = &easyauth_runs.discovery;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let nproc = first_line("nproc", &[] as &[&str]);
    let kernel = first_line("uname", &["-sr"]);
    let git = first_line(
        "git",
        &[
            "-C",
            &root.to_string_lossy(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    let easyauth_version = first_line(
        &root.join("target/release/easyauth").to_string_lossy(),
        &["--version"],
    );
    let pct = |x: f64| if signs > 0.0 { 100.0 * x / signs } else { 0.0 };
    let rate = easyauth.tokens_per_s();
    let peer_row = match peer {
        Some(p) => format!(
            "| (c) | node `oidc-provider` (client_credentials, RS256 JWT access tokens) | {:.0} | {:.1} % |",
            p.tokens_per_s(),
            pct(p.tokens_per_s())
        ),
        None => "| (c) | node `oidc-provider` | skipped (`--skip-peer`) | |".to_owned(),
    };
    let verdict = if pct(rate) >= IDP_TARGET_PCT {
        "meets"
    } else {
        "does NOT meet"
    };
    let per_token_us = 1e6 / rate.max(1e-9);
    let per_sign_us = 1e6 / signs.max(1e-9);
    let per_plain_us = 1e6 / discovery.tokens_per_s().max(1e-9);
    let load_row = |name: &str, l: &Load| {
        format!(
            "| {name} | {} | {} | {} | {:.1} s | {:.2} ms | {:.2} ms |",
            l.requests, l.non200, l.socket_errors, l.duration_s, l.p50_ms, l.p99_ms
        )
    };
    let mut load_rows = vec![
        load_row("easyauth idp (token endpoint)", easyauth),
        load_row("easyauth idp (GET discovery, no signing)", discovery),
    ];
    let mut peer_versions = String::new();
    if let Some(p) = peer {
        load_rows.push(load_row("oidc-provider", p));
        peer_versions = format!(
            "- node: {}\n- oidc-provider: {}",
            first_line("node", &["--version"]),
            package_version(&root.join("bench/node/node_modules/oidc-provider/package.json"))
        );
    }
    let body = crate::template::report(
        root,
        "idp",
        &[
            ("SIGNS_BEFORE", format!("{signs_before:.0}")),
            ("SIGNS_AFTER", format!("{signs_after:.0}")),
            ("SIGNS", format!("{signs:.0}")),
            ("EASYAUTH_RATE", format!("{rate:.0}")),
            ("EASYAUTH_PCT", format!("{:.1}", pct(rate))),
            ("TARGET_PCT", format!("{IDP_TARGET_PCT:.0}")),
            ("PEER_ROW", peer_row),
            ("VERDICT", verdict.to_owned()),
            ("PER_TOKEN_US", format!("{per_token_us:.0}")),
            ("PER_SIGN_US", format!("{per_sign_us:.0}")),
            ("OUTSIDE_US", format!("{:.0}", per_token_us - per_sign_us)),
            ("PER_PLAIN_US", format!("{per_plain_us:.0}")),
            ("PLAIN_RATE", format!("{:.0}", discovery.tokens_per_s())),
            (
                "BUDGET_US",
                format!(
                    "{:.0}",
                    per_sign_us / (IDP_TARGET_PCT / 100.0) - per_sign_us
                ),
            ),
            ("LOAD_ROWS", load_rows.join("\n")),
            ("CONNECTIONS", opts.connections.to_string()),
            ("DURATION", opts.duration.to_string()),
            ("DISCOVERY_DURATION", opts.duration.min(5).to_string()),
            ("CPU", cpu),
            ("NPROC", nproc),
            ("KERNEL", kernel),
            ("EASYAUTH_VERSION", easyauth_version),
            ("GIT", git),
            ("RUSTC", first_line("rustc", &["--version"])),
            ("OPENSSL", first_line("openssl", &["version"])),
            ("WRK", first_line("wrk", &["-v"])),
            ("PEER_VERSIONS", peer_versions),
        ],
    )?;
    Ok(format!("{}\n{body}", generated_line("idp")))
}

/// The issue's target: tokens/s as a share of `openssl speed rsa2048` signs/s on one core.
const IDP_TARGET_PCT: f64 = 95.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idp_template_and_its_values_agree() -> Result<()> {
        let opts = parse(&[])?;
        let load = Load {
            requests: 1000,
            duration_s: 1.0,
            ..Load::default()
        };
        let runs = EasyauthLoad {
            tokens: load.clone(),
            discovery: load.clone(),
        };
        let root = repo_root();
        let md = render(&root, &opts, (1100.0, 1000.0), &runs, None)?;
        assert!(md.contains("**95.2 %** (target ≥ 95 %)"), "{md}");
        assert!(render(&root, &opts, (1.0, 1.0), &runs, Some(&load))?.contains("oidc-provider"));
        Ok(())
    }

    #[test]
    fn parses_openssl_speed() {
        let out = "                  sign    verify    sign/s verify/s\nrsa 2048 bits 0.000230s 0.000014s   4356.2  70682.0\n";
        assert_eq!(parse_openssl_speed(out), Some(4356.2));
    }

    #[test]
    fn compose_keeps_the_part_not_rerun() {
        let first = compose(
            "",
            Some("## IdP\n\nold idp"),
            Some("## Proxy\n\nold proxy"),
            None,
        );
        let second = compose(&first, None, Some("## Proxy\n\nnew proxy"), None);
        assert!(second.contains("old idp"));
        assert!(second.contains("new proxy"));
        assert!(!second.contains("old proxy"));
        let legacy = "# Benchmarks\n\nGenerated by ...\n\n**Question:** tokens\n";
        assert!(compose(legacy, None, Some("p"), None).contains("**Question:** tokens"));
    }

    #[test]
    fn load_rate_excludes_failures() {
        let l = Load {
            requests: 110,
            non200: 10,
            duration_s: 10.0,
            ..Load::default()
        };
        assert!((l.tokens_per_s() - 10.0).abs() < 1e-9);
    }
}
