//! `cargo xtask bench --only proxy`: the authentication module (`easyauth proxy`) as a reverse
//! proxy, side by side with nginx (no auth) and Apache + mod_auth_openidc, in one run.
//!
//!  (a) nginx, 1 worker, reverse proxy with an upstream keep-alive pool of 32, no authentication;
//!  (b) `easyauth proxy --worker-threads 1`, requests carry a browser session cookie
//!      (`AppServiceAuthSession`, from a real sign-in against `easyauth idp`);
//!  (c) the same proxy, requests carry `Authorization: Bearer <client_credentials access token>`;
//!  (d) Apache 2.4 (mpm_event, one process) + mod_auth_openidc validating the same bearer token
//!      locally (`AuthType oauth20`, JWKS over https) and proxying with mod_proxy_http.
//!
//! Every proxy runs on core 0; wrk and the shared upstream (nginx `return 200`, 1 worker) on
//! core 1; the identity provider on core 1 too (it is idle during the loads). Each proxy is loaded
//! at peak (`wrk -t1 -c50`), then at about half of (b)'s peak with a paced wrk script (wrk's
//! `delay()` hook; Debian's wrk has no `-R`), and easyauth's resident memory is read with 1,000
//! idle keep-alive connections open (bench/proxy/idle_conns.py) and under `wrk -c1000`.
//!
//! The templates and helper scripts live in bench/proxy/. Every server started here is stopped
//! (SIGTERM, then SIGKILL after 5 s) when the step ends, also when it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::{Load, Server, curl, first_line, free_port};
use crate::bench_callgrind::{self, Count};
use crate::template::fill;
use crate::util::{self, Steps, ensure_debian_packages, output};

const TENANT_ID: &str = "5e1a9c3b-7d2f-4b8e-a6c4-1f0e2d3c4b5a";
const WEBAPP_ID: &str = "6f2b0d4c-8e3a-4c9f-b7d5-2a1f3e4d5c6b";
const WEBAPP_SECRET: &str = "bench-webapp-secret-0123456789abcdef";
const WEBAPP_ROLE_ID: &str = "7a3c1e5d-9f4b-4dae-88e6-3b2a4f5e6d7c";
const DAEMON_ID: &str = "8b4d2f6e-0a5c-4ebf-99f7-4c3b5a6f7e8d";
const DAEMON_SECRET: &str = "bench-daemon-secret-fedcba9876543210";
const USER_ID: &str = "9c5e3a7f-1b6d-4fc0-aa08-5d4c6b7a8f9e";
const USER_UPN: &str = "bench.user@bench.onmicrosoft.com";
const USER_PASSWORD: &str = "bench-user-password-42";

/// Peak-load concurrency (wrk -c) for every proxy.
const PEAK_CONNECTIONS: u32 = 50;
/// Paced load: each connection waits this long after each answer before the next request.
const PACED_DELAY_MS: u32 = 5;
/// Before each round, wait up to `QUIET_WAIT` for a second with less than this share busy.
const QUIET_BUSY_PCT: f64 = 20.0;
const QUIET_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub(crate) struct ProxyOptions {
    /// Seconds per measured wrk run.
    pub duration: u64,
    /// Connections of the peak load.
    pub connections: u32,
    /// Idle keep-alive connections for the memory figure.
    pub idle_connections: u32,
    /// Rounds of (a), (b), (c), (d) back to back; the table shows the median of each figure.
    pub rounds: u32,
    /// Requests counted under callgrind for each of nginx, the cookie and the bearer shape.
    pub callgrind_requests: u32,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            duration: 10,
            connections: PEAK_CONNECTIONS,
            idle_connections: 1000,
            rounds: 3,
            callgrind_requests: 2000,
        }
    }
}

/// The credentials one real sign-in and one token request produced.
#[derive(Debug, Clone)]
struct Credentials {
    cookie: String,
    bearer: String,
    /// The session cookie of the second proxy (token store off: the session is in the cookie).
    cookie_no_store: String,
    /// The session cookie of the third proxy (sessions in Redis).
    cookie_redis: String,
}

/// A request shape for wrk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    Cookie,
    CookieNoStore,
    CookieRedis,
    Bearer,
}

/// One wrk run and how busy core 0 was with anything but the proxy under test meanwhile.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub load: Load,
    /// Share of core 0's time spent outside the proxy's processes (other people's builds,
    /// interrupts, the kernel's loopback work not charged to the proxy), in percent.
    pub other_core0_pct: f64,
}

/// Results of one proxy (one row of the table): every round of both loads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub peak: Vec<Run>,
    pub paced: Vec<Run>,
}

/// The median of `values` (mean of the middle two for an even count; 0 when empty).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Medians over the rounds of one load.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Summary {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub other_pct: f64,
}

fn summarize(runs: &[Run]) -> Summary {
    Summary {
        rate: median(runs.iter().map(|r| r.load.rate()).collect()),
        p50_ms: median(runs.iter().map(|r| r.load.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|r| r.load.p99_ms).collect()),
        other_pct: median(runs.iter().map(|r| r.other_core0_pct).collect()),
    }
}

/// The least disturbed figures over the rounds: highest rate, lowest latencies (on a shared
/// machine, interference only ever makes a run slower).
fn best(runs: &[Run]) -> Summary {
    let pick = |f: &dyn Fn(&Run) -> f64, max: bool| {
        runs.iter()
            .map(f)
            .reduce(|x, y| if (y > x) == max { y } else { x })
            .unwrap_or(0.0)
    };
    Summary {
        rate: pick(&|r| r.load.rate(), true),
        p50_ms: pick(&|r| r.load.p50_ms, false),
        p99_ms: pick(&|r| r.load.p99_ms, false),
        other_pct: pick(&|r| r.other_core0_pct, false),
    }
}

/// Resident memory of `easyauth proxy`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Memory {
    pub start_kib: u64,
    pub after_load_kib: u64,
    pub idle_kib: u64,
    pub idle_anon_kib: u64,
    pub idle_file_kib: u64,
    pub idle_open: u64,
    pub busy_max_kib: u64,
    pub busy_requests_per_s: f64,
    pub busy_p99_ms: f64,
    /// nginx (a) under the same `wrk -c<idle connections>` load, for its p99.
    pub nginx_busy: Option<Load>,
    pub hwm_kib: u64,
}

/// Everything the proxy section of docs/benchmarks.md shows.
#[derive(Debug, Clone)]
pub(crate) struct ProxyReport {
    pub opts: ProxyOptions,
    pub upstream_direct: Run,
    pub paced_connections: u32,
    pub nginx: Row,
    pub cookie: Row,
    pub cookie_no_store: Row,
    pub cookie_redis: Row,
    pub bearer: Row,
    pub apache: Row,
    pub memory: Memory,
    /// User-space instructions per request under callgrind: nginx, cookie, bearer.
    pub instructions: Instructions,
    pub versions: Vec<(String, String)>,
}

/// The callgrind counts of one run (same number of requests each).
#[derive(Debug, Clone)]
pub(crate) struct Instructions {
    pub nginx: Count,
    pub cookie: Count,
    pub bearer: Count,
}

pub(crate) fn ensure_tools() -> Result<()> {
    let mut packages = vec![
        "nginx",
        "apache2",
        "libapache2-mod-auth-openidc",
        "wrk",
        "valgrind",
        "redis-server",
    ];
    for (tool, package) in [
        ("python3", "python3"),
        ("curl", "curl"),
        ("taskset", "util-linux"),
    ] {
        if util::which(tool).is_none() {
            packages.push(package);
        }
    }
    ensure_debian_packages(&packages)?;
    if !Path::new("/usr/lib/apache2/modules/mod_auth_openidc.so").is_file() {
        bail!("mod_auth_openidc.so is missing after installing libapache2-mod-auth-openidc");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        bail!(
            "the benchmark pins the proxies to core 0 and wrk to core 1; this machine has {cores} core(s)"
        );
    }
    Ok(())
}

/// Runs the whole proxy benchmark as steps of `steps`.
pub(crate) fn run(
    root: &Path,
    work: &Path,
    steps: &mut Steps,
    opts: &ProxyOptions,
) -> Result<ProxyReport> {
    let dir = work.join("proxy");
    steps.step("proxy: prepare target/bench/proxy", || {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).context("cleaning target/bench/proxy")?;
        }
        std::fs::create_dir_all(&dir).context("creating target/bench/proxy")
    })?;
    let bin = root.join("target/release/easyauth");
    let templates = root.join("bench/proxy");

    // Ports first: the IdP's directory registers the proxy's callback.
    let idp_port = free_port()?;
    let upstream_port = free_port()?;
    let easyauth_port = free_port()?;
    let nostore_port = free_port()?;
    let redis_proxy_port = free_port()?;
    let redis_port = free_port()?;
    let nginx_port = free_port()?;
    let apache_port = free_port()?;

    let (mut idp, ca) = steps.step(
        "proxy: easyauth idp (core 1, idle during the loads)",
        || {
            start_idp(
                &bin,
                &dir,
                idp_port,
                &[easyauth_port, nostore_port, redis_proxy_port],
            )
        },
    )?;
    let mut upstream = steps.step("proxy: upstream nginx `return 200` (core 1)", || {
        start_nginx(
            &templates.join("nginx-upstream.conf"),
            &dir.join("upstream"),
            upstream_port,
            None,
            "1",
            "upstream nginx",
        )
    })?;
    let mut easyauth = steps.step(
        "proxy: (b)/(c) easyauth proxy --worker-threads 1 (core 0)",
        || {
            start_easyauth(
                &bin,
                &dir,
                ("easyauth proxy", "easyauth", true),
                (easyauth_port, upstream_port, idp_port),
                &ca,
                None,
            )
        },
    )?;
    let mut nostore = steps.step(
        "proxy: (b') easyauth proxy --worker-threads 1, token store off (core 0)",
        || {
            start_easyauth(
                &bin,
                &dir,
                ("easyauth proxy (no token store)", "easyauth-nostore", false),
                (nostore_port, upstream_port, idp_port),
                &ca,
                None,
            )
        },
    )?;
    let mut redis = steps.step("proxy: redis-server, no persistence (core 1)", || {
        start_redis(&dir, redis_port)
    })?;
    let mut redis_proxy = steps.step(
        "proxy: (b″) easyauth proxy --worker-threads 1, sessions in Redis (core 0)",
        || {
            start_easyauth(
                &bin,
                &dir,
                ("easyauth proxy (sessions in Redis)", "easyauth-redis", true),
                (redis_proxy_port, upstream_port, idp_port),
                &ca,
                Some(&format!("redis://127.0.0.1:{redis_port}/")),
            )
        },
    )?;
    let creds = steps.step(
        "proxy: sign in through the three proxies (session cookies) + client_credentials token",
        || {
            credentials(
                &templates,
                &dir,
                (easyauth_port, nostore_port, redis_proxy_port),
                idp_port,
                &ca,
            )
        },
    )?;
    let mut nginx = steps.step("proxy: (a) nginx reverse proxy, no auth (core 0)", || {
        start_nginx(
            &templates.join("nginx-proxy.conf"),
            &dir.join("nginx"),
            nginx_port,
            Some(upstream_port),
            "0",
            "nginx proxy",
        )
    })?;
    let mut apache = steps.step(
        "proxy: (d) apache2 + mod_auth_openidc, AuthType oauth20 (core 0)",
        || {
            start_apache(
                &templates,
                &dir,
                apache_port,
                upstream_port,
                idp_port,
                &ca,
                &creds,
            )
        },
    )?;

    let easyauth_pid = easyauth.child.id();
    let start_kib = rss_kib(easyauth_pid)?;
    let url = |port: u16| format!("http://127.0.0.1:{port}/");
    let d = opts.duration;
    let c = opts.connections;
    // (label, file name, port, credential, root pid of the proxy under test)
    let targets: [(&str, &str, u16, Auth, u32); 6] = [
        (
            "(a) nginx",
            "a-nginx",
            nginx_port,
            Auth::None,
            nginx.child.id(),
        ),
        (
            "(b) easyauth cookie",
            "b-cookie",
            easyauth_port,
            Auth::Cookie,
            easyauth_pid,
        ),
        (
            "(b') easyauth cookie, token store off",
            "b2-cookie-nostore",
            nostore_port,
            Auth::CookieNoStore,
            nostore.child.id(),
        ),
        (
            "(b″) easyauth cookie, sessions in Redis",
            "b3-cookie-redis",
            redis_proxy_port,
            Auth::CookieRedis,
            redis_proxy.child.id(),
        ),
        (
            "(c) easyauth bearer",
            "c-bearer",
            easyauth_port,
            Auth::Bearer,
            easyauth_pid,
        ),
        (
            "(d) apache oauth20",
            "d-apache",
            apache_port,
            Auth::Bearer,
            apache.child.id(),
        ),
    ];

    let upstream_direct = steps.step("proxy: upstream alone (reference), wrk on core 1", || {
        wait_for_quiet(QUIET_WAIT);
        let w = Wrk::new(&dir, &creds, c, d.min(5));
        w.run("upstream-direct", &url(upstream_port), Auth::None, None)
    })?;
    // Warm-up: first connections, the JWKS fetches (easyauth, mod_auth_openidc), caches.
    steps.step("proxy: warm-up (2 s each)", || {
        let w = Wrk::new(&dir, &creds, c, 2);
        for (_, name, port, auth, pid) in targets {
            w.run(&format!("warm-{name}"), &url(port), auth, Some(pid))?;
        }
        Ok(())
    })?;
    let mut rows: Vec<Row> = vec![Row::default(); targets.len()];
    for round in 1..=opts.rounds {
        steps.step(
            &format!(
                "proxy: peak round {round}/{}: (a) (b) (c) (d), wrk -t1 -c{c} -d{d}s each",
                opts.rounds
            ),
            || {
                wait_for_quiet(QUIET_WAIT);
                let w = Wrk::new(&dir, &creds, c, d);
                for (i, (label, name, port, auth, pid)) in targets.iter().enumerate() {
                    println!("    {label}:");
                    let run = w.run(
                        &format!("{name}-peak-{round}"),
                        &url(*port),
                        *auth,
                        Some(*pid),
                    )?;
                    rows[i].peak.push(run);
                }
                Ok(())
            },
        )?;
    }
    easyauth.ensure_running()?;
    let after_load_kib = rss_kib(easyauth_pid)?;

    // Paced load at about half of easyauth's lower peak: calibrate the connection count on the
    // nginx proxy (wrk's timer fires late by a fraction of a millisecond), then offer the same
    // schedule to every proxy.
    let target = summarize(&rows[1].peak)
        .rate
        .min(summarize(&rows[4].peak).rate)
        / 2.0;
    let paced_connections = steps.step(
        &format!("proxy: calibrate a paced load of ~{target:.0} req/s ({PACED_DELAY_MS} ms pause per connection)"),
        || calibrate(&dir, &creds, &url(nginx_port), nginx.child.id(), target),
    )?;
    for round in 1..=opts.rounds {
        steps.step(
            &format!(
                "proxy: paced round {round}/{}: wrk -t1 -c{paced_connections} -d{d}s, {PACED_DELAY_MS} ms pause",
                opts.rounds
            ),
            || {
                wait_for_quiet(QUIET_WAIT);
                let w = Wrk::new(&dir, &creds, paced_connections, d).paced(PACED_DELAY_MS);
                for (i, (label, name, port, auth, pid)) in targets.iter().enumerate() {
                    println!("    {label}:");
                    let run = w.run(
                        &format!("{name}-paced-{round}"),
                        &url(*port),
                        *auth,
                        Some(*pid),
                    )?;
                    rows[i].paced.push(run);
                }
                Ok(())
            },
        )?;
    }
    easyauth.ensure_running()?;

    let idle_n = opts.idle_connections;
    let idle = steps.step(
        &format!("proxy: easyauth resident memory with {idle_n} idle keep-alive connections"),
        || idle_memory(&templates, easyauth_port, easyauth_pid, &creds, idle_n),
    )?;
    let (busy_max_kib, busy) = steps.step(
        &format!("proxy: easyauth resident memory under wrk -t1 -c{idle_n} -d5s (cookie)"),
        || busy_memory(&dir, easyauth_port, easyauth_pid, &creds, idle_n),
    )?;
    let nginx_busy = steps.step(
        &format!("proxy: (a) nginx under the same wrk -t1 -c{idle_n} -d5s, for its p99"),
        || {
            Wrk::new(&dir, &creds, idle_n, 5).run(
                "a-nginx-busy",
                &url(nginx_port),
                Auth::None,
                Some(nginx.child.id()),
            )
        },
    )?;
    easyauth.ensure_running()?;
    let hwm_kib = status_kib(easyauth_pid, "VmHWM")?;

    let versions = versions(&bin);
    // The wall-clock part is over; the callgrind runs reuse the ports, the sign-in (the proxy's
    // data dir holds the session and the cookie keys) and the token.
    for server in [
        &mut apache,
        &mut nginx,
        &mut nostore,
        &mut redis_proxy,
        &mut redis,
        &mut easyauth,
    ] {
        server.stop();
    }
    let requests = opts.callgrind_requests;
    let instructions = steps.step(
        &format!(
            "proxy: instructions per request under callgrind ({requests} requests each: nginx, cookie, bearer)"
        ),
        || {
            let cg = dir.join("callgrind");
            std::fs::create_dir_all(&cg).context("creating target/bench/proxy/callgrind")?;
            let nginx_dir = cg.join("nginx");
            std::fs::create_dir_all(&nginx_dir)?;
            let conf = nginx_dir.join("nginx.conf");
            std::fs::write(
                &conf,
                fill(
                    &templates.join("nginx-proxy.conf"),
                    &[
                        ("DIR", nginx_dir.display().to_string()),
                        ("PORT", nginx_port.to_string()),
                        ("UPSTREAM_PORT", upstream_port.to_string()),
                    ],
                )?,
            )
            .context("writing the callgrind nginx.conf")?;
            let nginx_cmd: Vec<String> = vec![
                "nginx".into(),
                "-g".into(),
                "master_process off;".into(),
                "-p".into(),
                nginx_dir.display().to_string(),
                "-e".into(),
                nginx_dir.join("error.log").display().to_string(),
                "-c".into(),
                conf.display().to_string(),
            ];
            let env = vec![
                ("SSL_CERT_FILE", ca.display().to_string()),
                (
                    "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
                    WEBAPP_SECRET.to_owned(),
                ),
            ];
            let easyauth_cmd = easyauth_command(&bin, &dir, "easyauth", easyauth_port, upstream_port);
            let target = |name, command, env, headers| bench_callgrind::Target {
                name,
                command,
                env,
                port: if name == "nginx" { nginx_port } else { easyauth_port },
                headers,
                dir: &cg,
            };
            Ok(Instructions {
                nginx: bench_callgrind::count(
                    &templates,
                    &target("nginx", nginx_cmd, Vec::new(), Vec::new()),
                    requests,
                )?,
                cookie: bench_callgrind::count(
                    &templates,
                    &target(
                        "easyauth-cookie",
                        easyauth_cmd.clone(),
                        env.clone(),
                        vec![format!("Cookie: {}", creds.cookie)],
                    ),
                    requests,
                )?,
                bearer: bench_callgrind::count(
                    &templates,
                    &target(
                        "easyauth-bearer",
                        easyauth_cmd,
                        env,
                        vec![format!("Authorization: Bearer {}", creds.bearer)],
                    ),
                    requests,
                )?,
            })
        },
    )?;
    for server in [&mut upstream, &mut idp] {
        server.stop();
    }
    let mut rows = rows.into_iter();
    let mut next_row = || rows.next().unwrap_or_default();
    Ok(ProxyReport {
        opts: opts.clone(),
        upstream_direct,
        paced_connections,
        nginx: next_row(),
        cookie: next_row(),
        cookie_no_store: next_row(),
        cookie_redis: next_row(),
        bearer: next_row(),
        apache: next_row(),
        memory: Memory {
            start_kib,
            after_load_kib,
            idle_kib: idle.rss,
            idle_anon_kib: idle.anon,
            idle_file_kib: idle.file,
            idle_open: idle.open,
            busy_max_kib,
            busy_requests_per_s: busy.rate(),
            busy_p99_ms: busy.p99_ms,
            nginx_busy: Some(nginx_busy.load),
            hwm_kib,
        },
        instructions,
        versions,
    })
}

// ------------------------------------------------------------------------------------------
// Servers

fn idp_directory(proxy_ports: &[u16]) -> String {
    let callbacks: String = proxy_ports
        .iter()
        .map(|p| format!("\"http://127.0.0.1:{p}/.auth/login/aad/callback\", "))
        .collect();
    format!(
        r#"{{
  "tenant": {{"id": "{TENANT_ID}", "domain": "bench.onmicrosoft.com", "displayName": "Bench"}},
  "users": [
    {{"id": "{USER_ID}", "userPrincipalName": "{USER_UPN}", "displayName": "Bench User",
      "givenName": "Bench", "surname": "User", "mail": "{USER_UPN}", "password": "{USER_PASSWORD}", "groups": []}}
  ],
  "applications": [
    {{"appId": "{WEBAPP_ID}", "displayName": "bench-webapp", "identifierUris": ["api://{WEBAPP_ID}"],
      "web": {{"redirectUris": [{callbacks}"http://127.0.0.1/.auth/login/aad/callback"],
               "implicitGrantSettings": {{"enableIdTokenIssuance": true, "enableAccessTokenIssuance": false}}}},
      "api": {{"requestedAccessTokenVersion": 2, "oauth2PermissionScopes": [], "preAuthorizedApplications": []}},
      "appRoles": [{{"id": "{WEBAPP_ROLE_ID}", "value": "Data.Read", "displayName": "Read data",
                     "description": "Read data", "allowedMemberTypes": ["Application"], "isEnabled": true}}],
      "passwordCredentials": [{{"displayName": "bench", "secretText": "{WEBAPP_SECRET}"}}], "keyCredentials": []}},
    {{"appId": "{DAEMON_ID}", "displayName": "bench-daemon",
      "requiredResourceAccess": [{{"resourceAppId": "{WEBAPP_ID}", "resourceAccess": [{{"id": "{WEBAPP_ROLE_ID}", "type": "Role"}}]}}],
      "passwordCredentials": [{{"displayName": "bench", "secretText": "{DAEMON_SECRET}"}}], "keyCredentials": []}}
  ],
  "oauth2PermissionGrants": [],
  "appRoleAssignments": [{{"principalId": "{DAEMON_ID}", "resourceId": "{WEBAPP_ID}", "appRoleId": "{WEBAPP_ROLE_ID}"}}]
}}
"#
    )
}

fn issuer(idp_port: u16) -> String {
    format!("https://127.0.0.1:{idp_port}/{TENANT_ID}/v2.0")
}

fn start_idp(bin: &Path, dir: &Path, port: u16, proxy_ports: &[u16]) -> Result<(Server, PathBuf)> {
    let idp_dir = dir.join("idp");
    let data = idp_dir.join("data");
    std::fs::create_dir_all(&data).context("creating the IdP data dir")?;
    let directory = idp_dir.join("directory.json");
    std::fs::write(&directory, idp_directory(proxy_ports)).context("writing directory.json")?;
    let base = format!("https://127.0.0.1:{port}");
    let mut server = Server::spawn(
        "easyauth idp",
        Command::new("taskset")
            .args(["-c", "1"])
            .arg(bin)
            .arg("idp")
            .arg("--directory")
            .arg(&directory)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--public-url", &base])
            .args(["--access-token-lifetime", "3600"])
            .args(["--worker-threads", "1"]),
        dir.join("idp.log"),
    )?;
    let ca = data.join("ca.pem");
    server.wait_ready(
        &format!("{}/.well-known/openid-configuration", issuer(port)),
        &ca,
    )?;
    Ok((server, ca))
}

fn start_nginx(
    template: &Path,
    dir: &Path,
    port: u16,
    upstream_port: Option<u16>,
    core: &str,
    name: &'static str,
) -> Result<Server> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pairs = vec![
        ("DIR", dir.display().to_string()),
        ("PORT", port.to_string()),
    ];
    if let Some(up) = upstream_port {
        pairs.push(("UPSTREAM_PORT", up.to_string()));
    }
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, fill(template, &pairs)?).context("writing nginx.conf")?;
    let mut server = Server::spawn(
        name,
        Command::new("taskset")
            .args(["-c", core, "nginx", "-p"])
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf),
        dir.join("stdout.log"),
    )?;
    server.wait_ready(&format!("http://127.0.0.1:{port}/"), &conf)?;
    Ok(server)
}

fn auth_settings(idp_port: u16, token_store: bool) -> String {
    format!(
        r#"{{
  "properties": {{
    "platform": {{"enabled": true}},
    "globalValidation": {{"requireAuthentication": true, "unauthenticatedClientAction": "Return401"}},
    "identityProviders": {{
      "azureActiveDirectory": {{
        "enabled": true,
        "registration": {{
          "openIdIssuer": "{issuer}",
          "clientId": "{WEBAPP_ID}",
          "clientSecretSettingName": "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"
        }},
        "validation": {{
          "allowedAudiences": ["api://{WEBAPP_ID}"],
          "defaultAuthorizationPolicy": {{"allowedApplications": ["{DAEMON_ID}"]}}
        }}
      }}
    }},
    "login": {{"tokenStore": {{"enabled": {token_store}}}}}
  }}
}}
"#,
        issuer = issuer(idp_port)
    )
}

/// `easyauth proxy` for the proxy under test, as `easyauth_command` runs it.
/// A private redis-server for the Redis-backed proxy (no persistence: the bench measures the
/// request path, not the disk).
fn start_redis(dir: &Path, port: u16) -> Result<Server> {
    let rdir = dir.join("redis");
    std::fs::create_dir_all(&rdir).context("creating target/bench/proxy/redis")?;
    let mut server = Server::spawn(
        "redis-server",
        Command::new("taskset")
            .args(["-c", "1", "redis-server", "--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&rdir),
        dir.join("redis.log"),
    )?;
    server.wait_listening(port)?;
    Ok(server)
}

fn start_easyauth(
    bin: &Path,
    dir: &Path,
    (name, subdir, token_store): (&'static str, &str, bool),
    (port, upstream_port, idp_port): (u16, u16, u16),
    ca: &Path,
    session_store: Option<&str>,
) -> Result<Server> {
    let pdir = dir.join(subdir);
    std::fs::create_dir_all(pdir.join("data")).context("creating the proxy data dir")?;
    let settings = pdir.join("authsettings.json");
    std::fs::write(&settings, auth_settings(idp_port, token_store))
        .context("writing authsettings.json")?;
    let mut argv = easyauth_command(bin, dir, subdir, port, upstream_port);
    if let Some(url) = session_store {
        argv.extend(["--session-store".to_owned(), url.to_owned()]);
    }
    let mut server = Server::spawn(
        name,
        Command::new("taskset")
            .args(["-c", "0"])
            .args(&argv)
            .env("SSL_CERT_FILE", ca)
            .env("MICROSOFT_PROVIDER_AUTHENTICATION_SECRET", WEBAPP_SECRET)
            .env_remove("EASYAUTH_LOG"),
        dir.join(format!("{subdir}.log")),
    )?;
    server.wait_ready(&format!("http://127.0.0.1:{port}/.auth/version"), ca)?;
    Ok(server)
}

/// The command line of `easyauth proxy` with the settings and data dir under `dir/subdir`.
fn easyauth_command(
    bin: &Path,
    dir: &Path,
    subdir: &str,
    port: u16,
    upstream_port: u16,
) -> Vec<String> {
    let pdir = dir.join(subdir);
    vec![
        bin.display().to_string(),
        "proxy".into(),
        "--worker-threads".into(),
        "1".into(),
        "--upstream".into(),
        format!("http://127.0.0.1:{upstream_port}"),
        "--auth-settings".into(),
        pdir.join("authsettings.json").display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--data-dir".into(),
        pdir.join("data").display().to_string(),
        "--public-url".into(),
        format!("http://127.0.0.1:{port}"),
    ]
}

fn credentials(
    templates: &Path,
    dir: &Path,
    (proxy_port, nostore_port, redis_proxy_port): (u16, u16, u16),
    idp_port: u16,
    ca: &Path,
) -> Result<Credentials> {
    let sign_in = |proxy_port: u16| -> Result<String> {
        output(
            Command::new("python3")
                .arg(templates.join("credentials.py"))
                .args(["--proxy", &format!("http://127.0.0.1:{proxy_port}")])
                .arg("--ca")
                .arg(ca)
                .args(["--user", USER_UPN, "--password", USER_PASSWORD])
                .args([
                    "--token-url",
                    &format!("https://127.0.0.1:{idp_port}/{TENANT_ID}/oauth2/v2.0/token"),
                ])
                .args(["--client-id", DAEMON_ID, "--client-secret", DAEMON_SECRET])
                .args(["--scope", &format!("api://{WEBAPP_ID}/.default")])
                .env("REQUESTS_CA_BUNDLE", ca)
                .env_remove("http_proxy")
                .env_remove("HTTP_PROXY")
                .env_remove("https_proxy")
                .env_remove("HTTPS_PROXY"),
        )
    };
    let value = |out: &str, key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_owned)
            .with_context(|| format!("credentials.py printed no {key} line"))
    };
    let out = sign_in(proxy_port)?;
    let out2 = sign_in(nostore_port)?;
    let out3 = sign_in(redis_proxy_port)?;
    let creds = Credentials {
        cookie: value(&out, "COOKIE=")?,
        bearer: value(&out, "BEARER=")?,
        cookie_no_store: value(&out2, "COOKIE=")?,
        cookie_redis: value(&out3, "COOKIE=")?,
    };
    std::fs::write(dir.join("cookie.txt"), &creds.cookie)?;
    std::fs::write(dir.join("cookie-no-store.txt"), &creds.cookie_no_store)?;
    std::fs::write(dir.join("bearer.txt"), &creds.bearer)?;
    Ok(creds)
}

fn start_apache(
    templates: &Path,
    dir: &Path,
    port: u16,
    upstream_port: u16,
    idp_port: u16,
    ca: &Path,
    creds: &Credentials,
) -> Result<Server> {
    let adir = dir.join("apache");
    std::fs::create_dir_all(adir.join("run")).context("creating the apache dir")?;
    // The child runs as www-data: it must be able to write its runtime dir.
    let _ = Command::new("chown")
        .args(["-R", "www-data:www-data"])
        .arg(adir.join("run"))
        .status();
    let conf = adir.join("apache2.conf");
    let text = fill(
        &templates.join("apache-oidc.conf"),
        &[
            ("DIR", adir.display().to_string()),
            ("PORT", port.to_string()),
            ("UPSTREAM_PORT", upstream_port.to_string()),
            (
                "JWKS_URI",
                format!("https://127.0.0.1:{idp_port}/{TENANT_ID}/discovery/v2.0/keys"),
            ),
            ("CA", ca.display().to_string()),
            ("AUDIENCE", WEBAPP_ID.to_owned()),
        ],
    )?;
    std::fs::write(&conf, text).context("writing apache2.conf")?;
    output(Command::new("apache2").arg("-f").arg(&conf).arg("-t"))
        .context("apache2 -t (config test)")?;
    let mut server = Server::spawn(
        "apache2",
        Command::new("taskset")
            .args(["-c", "0", "apache2", "-f"])
            .arg(&conf)
            .arg("-DFOREGROUND"),
        adir.join("stdout.log"),
    )?;
    let url = format!("http://127.0.0.1:{port}/");
    let start = Instant::now();
    loop {
        server.ensure_running()?;
        let (code, _) = curl(
            &[
                "--max-time",
                "5",
                "--header",
                &format!("Authorization: Bearer {}", creds.bearer),
            ],
            &url,
            ca,
        )?;
        if code == 200 {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let log = std::fs::read_to_string(adir.join("error.log")).unwrap_or_default();
            bail!(
                "apache2 did not answer 200 to the bearer token (last: {code}); error.log:\n{log}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (anon, _) = curl(&["--max-time", "5"], &url, ca)?;
    if anon != 401 {
        bail!("apache2 answered {anon} without a token (expected 401): the auth is not on");
    }
    let (wrong, _) = curl(
        &[
            "--max-time",
            "5",
            "--header",
            "Authorization: Bearer not.a.token",
        ],
        &url,
        ca,
    )?;
    if wrong != 401 {
        bail!("apache2 answered {wrong} to a bad token (expected 401)");
    }
    println!("    apache2: 200 with the bearer token, 401 without one and with a bad one");
    Ok(server)
}

// ------------------------------------------------------------------------------------------
// Load

fn lua_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn wrk_script(path: &Path, auth: Auth, creds: &Credentials, delay_ms: Option<u32>) -> Result<()> {
    let header = match auth {
        Auth::None => String::new(),
        Auth::Cookie => format!("wrk.headers[\"Cookie\"] = {}\n", lua_string(&creds.cookie)),
        Auth::CookieNoStore => format!(
            "wrk.headers[\"Cookie\"] = {}\n",
            lua_string(&creds.cookie_no_store)
        ),
        Auth::CookieRedis => format!(
            "wrk.headers[\"Cookie\"] = {}\n",
            lua_string(&creds.cookie_redis)
        ),
        Auth::Bearer => format!(
            "wrk.headers[\"Authorization\"] = {}\n",
            lua_string(&format!("Bearer {}", creds.bearer))
        ),
    };
    let delay = delay_ms.map_or(String::new(), |ms| {
        format!("function delay()\n  return {ms}\nend\n")
    });
    let accounting = crate::bench::wrk_accounting("status >= 200 and status <= 299", "non-2xx");
    let script = format!(
        r#"-- generated by cargo xtask bench --only proxy: one request shape, count non-2xx answers
wrk.method = "GET"
wrk.headers["User-Agent"] = "wrk-easyauth-bench"
{header}{delay}
{accounting}"#
    );
    std::fs::write(path, script).context("writing wrk script")
}

/// wrk with one shape of load; every run is checked (no non-2xx, no socket error).
struct Wrk<'a> {
    dir: &'a Path,
    creds: &'a Credentials,
    connections: u32,
    duration: u64,
    delay_ms: Option<u32>,
}

impl<'a> Wrk<'a> {
    fn new(dir: &'a Path, creds: &'a Credentials, connections: u32, duration: u64) -> Self {
        Self {
            dir,
            creds,
            connections,
            duration,
            delay_ms: None,
        }
    }

    fn paced(mut self, delay_ms: u32) -> Self {
        self.delay_ms = Some(delay_ms);
        self
    }

    /// One run against `url`; `proxy_pid` is the root process of the proxy under test (its
    /// children count as the proxy too) for the core-0 interference figure.
    fn run(&self, name: &str, url: &str, auth: Auth, proxy_pid: Option<u32>) -> Result<Run> {
        let script = self.dir.join(format!("{name}.lua"));
        wrk_script(&script, auth, self.creds, self.delay_ms)?;
        let before = CpuSnapshot::take(proxy_pid);
        let out = output(
            Command::new("taskset")
                .args(["-c", "1", "wrk", "-t1"])
                .arg(format!("-c{}", self.connections))
                .arg(format!("-d{}s", self.duration))
                .args(["--timeout", "10s", "-s"])
                .arg(&script)
                .arg(url),
        )?;
        let after = CpuSnapshot::take(proxy_pid);
        let other_core0_pct = before.other_pct(&after);
        let load = crate::bench::parse_wrk(&out, name)?;
        println!(
            "    {name}: {:.0} req/s ({} requests, {} non-2xx, {} socket errors, p50 {:.3} ms, p99 {:.3} ms; \
             core 0 busy outside the proxy {other_core0_pct:.0} %)",
            load.rate(),
            load.requests,
            load.non200,
            load.socket_errors,
            load.p50_ms,
            load.p99_ms
        );
        if let Some(bad) = out.lines().find(|l| l.starts_with("XTASK first non-2xx")) {
            println!("    {bad}");
        }
        if load.non200 > 0 {
            bail!(
                "{name}: {} of {} responses were not 2xx",
                load.non200,
                load.requests
            );
        }
        if load.socket_errors > 0 {
            bail!("{name}: {} socket errors", load.socket_errors);
        }
        if load.requests == 0 {
            bail!("{name}: wrk completed no request");
        }
        Ok(Run {
            load,
            other_core0_pct,
        })
    }
}

/// Core 0's busy and total time (/proc/stat, clock ticks) and the CPU time of a process tree.
#[derive(Debug, Clone, Copy, Default)]
struct CpuSnapshot {
    core0_busy: u64,
    core0_total: u64,
    proxy: u64,
}

impl CpuSnapshot {
    fn take(root: Option<u32>) -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let (mut busy, mut total) = (0, 0);
        if let Some(line) = stat.lines().find(|l| l.starts_with("cpu0 ")) {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal (guest time is inside user)
            total = v.iter().take(8).sum();
            busy = total - v.get(3).copied().unwrap_or(0) - v.get(4).copied().unwrap_or(0);
        }
        Self {
            core0_busy: busy,
            core0_total: total,
            proxy: root.map_or(0, tree_ticks),
        }
    }

    /// Percent of core 0's time busy with anything but the proxy tree between two snapshots.
    fn other_pct(&self, later: &Self) -> f64 {
        let total = later.core0_total.saturating_sub(self.core0_total);
        if total == 0 {
            return 0.0;
        }
        let busy = later.core0_busy.saturating_sub(self.core0_busy);
        let proxy = later.proxy.saturating_sub(self.proxy);
        100.0 * busy.saturating_sub(proxy) as f64 / total as f64
    }
}

/// Busy and total clock ticks of all cores together (/proc/stat `cpu` line).
fn all_cores() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Waits (at most `max`) for a second in which the machine is mostly idle (other people build
/// on it): fewer than `QUIET_BUSY_PCT` % of all cores busy. Returns the last busy share seen.
fn wait_for_quiet(max: Duration) -> f64 {
    let start = Instant::now();
    loop {
        let (b0, t0) = all_cores();
        std::thread::sleep(Duration::from_secs(1));
        let (b1, t1) = all_cores();
        let busy = 100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
        if busy < QUIET_BUSY_PCT {
            println!(
                "    machine quiet ({busy:.0} % busy) after {:.0} s",
                start.elapsed().as_secs_f64()
            );
            return busy;
        }
        if start.elapsed() >= max {
            println!(
                "    machine still {busy:.0} % busy after {:.0} s; measuring anyway",
                start.elapsed().as_secs_f64()
            );
            return busy;
        }
    }
}

/// utime + stime (clock ticks, all threads) of `root` and all its descendants.
fn tree_ticks(root: u32) -> u64 {
    let mut procs: Vec<(u32, u32, u64)> = Vec::new(); // (pid, ppid, ticks)
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // the fields after "(comm)": state ppid ... utime(14th field overall) stime(15th)
            let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            procs.push((pid, num(1) as u32, num(11) + num(12)));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(procs.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    procs
        .iter()
        .filter(|p| tree.contains(&p.0))
        .map(|p| p.2)
        .sum()
}

/// The connection count that, with `PACED_DELAY_MS` between an answer and the next request on
/// each connection, gives about `target` requests/s (measured on the nginx proxy, 3 s runs).
fn calibrate(dir: &Path, creds: &Credentials, url: &str, pid: u32, target: f64) -> Result<u32> {
    let guess = |rate_per_conn: f64| ((target / rate_per_conn).round() as u32).clamp(1, 2000);
    let mut connections = guess(1000.0 / f64::from(PACED_DELAY_MS));
    for round in 0..3 {
        let run = Wrk::new(dir, creds, connections, 3)
            .paced(PACED_DELAY_MS)
            .run(&format!("calibrate-{round}"), url, Auth::None, Some(pid))?;
        let rate = run.load.rate();
        let per_conn = rate / f64::from(connections);
        let next = guess(per_conn);
        println!(
            "    {connections} connections -> {rate:.0} req/s ({per_conn:.1} per connection); next {next}"
        );
        if next == connections || (rate - target).abs() / target < 0.03 {
            break;
        }
        connections = next;
    }
    Ok(connections)
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS")
}

/// Resident memory with the idle connections open.
struct Idle {
    rss: u64,
    anon: u64,
    file: u64,
    open: u64,
}

fn idle_memory(templates: &Path, port: u16, pid: u32, creds: &Credentials, n: u32) -> Result<Idle> {
    let out = output(
        Command::new("python3")
            .arg(templates.join("idle_conns.py"))
            .args(["--port", &port.to_string(), "--pid", &pid.to_string()])
            .args(["--connections", &n.to_string()])
            .args(["--header", &format!("Cookie: {}", creds.cookie)])
            .args(["--header", "User-Agent: easyauth-bench-idle"]),
    )?;
    print!("{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("IDLE "))
        .with_context(|| format!("idle_conns.py printed no IDLE line:\n{out}"))?;
    let field = |key: &str| -> Result<u64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("`{key}` missing in `{line}`"))
    };
    Ok(Idle {
        rss: field("rss_idle_kib")?,
        anon: field("anon_kib")?,
        file: field("file_kib")?,
        open: field("open")?,
    })
}

fn busy_memory(
    dir: &Path,
    port: u16,
    pid: u32,
    creds: &Credentials,
    n: u32,
) -> Result<(u64, Load)> {
    let script = dir.join("busy.lua");
    wrk_script(&script, Auth::Cookie, creds, None)?;
    let out_path = dir.join("busy.out");
    let out_file = std::fs::File::create(&out_path)?;
    let mut child = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1"])
        .arg(format!("-c{n}"))
        .args(["-d5s", "--timeout", "10s", "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting wrk")?;
    let mut max_kib = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("wrk -c{n} did not finish in 30 s");
        }
        max_kib = max_kib.max(rss_kib(pid)?);
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = std::fs::read_to_string(&out_path)?;
    if !status.success() {
        bail!("wrk -c{n} failed ({status}):\n{out}");
    }
    let load = crate::bench::parse_wrk(&out, "busy")?;
    println!(
        "    wrk -c{n}: {:.0} req/s, p99 {:.2} ms, {} non-2xx, {} socket errors; max VmRSS {:.1} MiB",
        load.rate(),
        load.p99_ms,
        load.non200,
        load.socket_errors,
        max_kib as f64 / 1024.0
    );
    if load.non200 > 0 || load.requests == 0 {
        bail!("wrk -c{n}: {} non-2xx of {}", load.non200, load.requests);
    }
    Ok((max_kib, load))
}

fn versions(bin: &Path) -> Vec<(String, String)> {
    let dpkg = |p: &str| first_line("dpkg-query", &["-W", "-f=${Version}", p]);
    vec![
        (
            "easyauth".into(),
            first_line(&bin.to_string_lossy(), &["--version"]),
        ),
        ("nginx".into(), dpkg("nginx")),
        ("apache2".into(), first_line("apache2", &["-v"])),
        (
            "libapache2-mod-auth-openidc".into(),
            dpkg("libapache2-mod-auth-openidc"),
        ),
        ("wrk".into(), dpkg("wrk")),
        ("python3".into(), first_line("python3", &["--version"])),
    ]
}

// ------------------------------------------------------------------------------------------
// Report

fn ms(x: f64) -> String {
    format!("{x:.2} ms")
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

/// The proxy section of docs/benchmarks.md: bench/templates/proxy.md, filled.
pub(crate) fn render(root: &Path, r: &ProxyReport) -> Result<String> {
    let n = r.opts.rounds;
    let a = summarize(&r.nginx.peak);
    let b = summarize(&r.cookie.peak);
    let cc = summarize(&r.bearer.peak);
    let dd = summarize(&r.apache.peak);

    let peak_row = |tag: &str, what: &str, cred: &str, runs: &[Run]| {
        let (l, top) = (summarize(runs), best(runs));
        format!(
            "| {tag} | {what} | {cred} | **{:.0}** | {} | {} | {:.0}, {} | {:.0} % |",
            l.rate,
            ms(l.p50_ms),
            ms(l.p99_ms),
            top.rate,
            ms(top.p99_ms),
            l.other_pct
        )
    };
    let peak_rows = [
        peak_row(
            "(a)",
            "nginx, 1 worker, upstream keepalive 32",
            "none",
            &r.nginx.peak,
        ),
        peak_row(
            "(b)",
            "`easyauth proxy --worker-threads 1`",
            "`AppServiceAuthSession` cookie (token store on)",
            &r.cookie.peak,
        ),
        peak_row(
            "(b′)",
            "`easyauth proxy --worker-threads 1`, second instance with `tokenStore.enabled: false`",
            "`AppServiceAuthSession` cookie (session in the cookie)",
            &r.cookie_no_store.peak,
        ),
        peak_row(
            "(b″)",
            "`easyauth proxy --worker-threads 1`, third instance with `--session-store redis://…` (redis-server on core 1)",
            "`AppServiceAuthSession` cookie (session in Redis)",
            &r.cookie_redis.peak,
        ),
        peak_row(
            "(c)",
            "`easyauth proxy --worker-threads 1`",
            "`Authorization: Bearer` (RS256 access token)",
            &r.bearer.peak,
        ),
        peak_row(
            "(d)",
            "Apache + mod_auth_openidc `AuthType oauth20`, 1 process × 256 threads",
            "`Authorization: Bearer` (same token)",
            &r.apache.peak,
        ),
        peak_row(
            "ref.",
            "no proxy: wrk straight to the upstream (one run)",
            "none",
            std::slice::from_ref(&r.upstream_direct),
        ),
    ];

    // Targets, judged on the medians and on the best rounds.
    let pick = |f: fn(&[Run]) -> Summary, row: &Row, paced: bool| {
        f(if paced { &row.paced } else { &row.peak })
    };
    let mut cells: Vec<[String; 2]> = vec![Default::default(); 4];
    let mut oks: Vec<[bool; 2]> = vec![[false; 2]; 4];
    for (k, f) in [summarize as fn(&[Run]) -> Summary, best]
        .into_iter()
        .enumerate()
    {
        let (a, b, b2, b3, c, d) = (
            pick(f, &r.nginx, false),
            pick(f, &r.cookie, false),
            pick(f, &r.cookie_no_store, false),
            pick(f, &r.cookie_redis, false),
            pick(f, &r.bearer, false),
            pick(f, &r.apache, false),
        );
        let ratio = b.rate / a.rate.max(1e-9);
        cells[0][k] = format!(
            "(b)/(a) = **{ratio:.2}** ({:.0} vs {:.0} req/s); token store off: (b′)/(a) = {:.2}; sessions in Redis: (b″)/(a) = {:.2}",
            b.rate,
            a.rate,
            b2.rate / a.rate.max(1e-9),
            b3.rate / a.rate.max(1e-9)
        );
        oks[0][k] = ratio >= 1.0;
        let ratio = c.rate / a.rate.max(1e-9);
        cells[1][k] = format!(
            "(c)/(a) = **{ratio:.2}** ({:.0} vs {:.0} req/s)",
            c.rate, a.rate
        );
        oks[1][k] = ratio >= 1.0;
        let ratio = c.rate / d.rate.max(1e-9);
        cells[2][k] = format!(
            "(c)/(d) = **{ratio:.2}** ({:.0} vs {:.0} req/s)",
            c.rate, d.rate
        );
        oks[2][k] = ratio >= 3.0;
        let (pa, pb, pc) = (
            pick(f, &r.nginx, true),
            pick(f, &r.cookie, true),
            pick(f, &r.bearer, true),
        );
        let (added_b, added_c) = (pb.p99_ms - pa.p99_ms, pc.p99_ms - pa.p99_ms);
        cells[3][k] = format!(
            "cookie {} − {} = **{added_b:+.2} ms**; bearer {} − {} = **{added_c:+.2} ms**",
            ms(pb.p99_ms),
            ms(pa.p99_ms),
            ms(pc.p99_ms),
            ms(pa.p99_ms)
        );
        oks[3][k] = added_b < 1.0 && added_c < 1.0;
    }
    let half = b.rate.min(cc.rate) / 2.0;
    let mut target_rows: Vec<String> = [
        "(b) ≥ (a): cookie session throughput at least nginx's without auth".to_owned(),
        "(c) ≥ (a): bearer throughput at least nginx's without auth".to_owned(),
        "(c) ≥ 3 × (d): bearer throughput three times Apache + mod_auth_openidc".to_owned(),
        format!("< 1 ms of added p99 at half of peak load (paced, ≈ {half:.0} req/s offered to each; p99 − nginx's p99)"),
    ]
    .iter()
    .enumerate()
    .map(|(i, target)| {
        format!(
            "| {target} | {} | {} | {} | {} |",
            cells[i][0],
            verdict(oks[i][0]),
            cells[i][1],
            verdict(oks[i][1])
        )
    })
    .collect();
    let m = &r.memory;
    let mib = |k: u64| k as f64 / 1024.0;
    let mb = |k: u64| k as f64 * 1024.0 / 1e6;
    target_rows.push(format!(
        "| ≤ 30 MB resident with {} idle keep-alive connections | {:.1} MB ({:.1} MiB) VmRSS, of which {:.1} MiB anonymous and {:.1} MiB file-backed (the mapped binary) | {} | (one measurement) | |",
        r.opts.idle_connections,
        mb(m.idle_kib),
        mib(m.idle_kib),
        mib(m.idle_anon_kib),
        mib(m.idle_file_kib),
        verdict(mb(m.idle_kib) <= 30.0)
    ));

    let i = &r.instructions;
    let instruction_rows: Vec<String> = [
        ("(a)", "nginx, `master_process off`", &i.nginx),
        (
            "(b)",
            "`easyauth proxy --worker-threads 1`, cookie",
            &i.cookie,
        ),
        (
            "(c)",
            "`easyauth proxy --worker-threads 1`, bearer",
            &i.bearer,
        ),
    ]
    .iter()
    .map(|(tag, what, count)| {
        format!(
            "| {tag} | {what} | {:.0} | {:.2} × |",
            count.per_request(),
            count.per_request() / i.nginx.per_request().max(1.0)
        )
    })
    .collect();
    let profiles: Vec<String> = [&i.nginx, &i.cookie, &i.bearer]
        .iter()
        .filter_map(|c| c.profile.file_name())
        .map(|f| format!("`{}`", f.to_string_lossy()))
        .collect();

    let pa = summarize(&r.nginx.paced);
    let paced_rows: Vec<String> = [
        ("(a)", "nginx", pa),
        ("(b)", "easyauth, cookie", summarize(&r.cookie.paced)),
        (
            "(b′)",
            "easyauth, cookie, token store off",
            summarize(&r.cookie_no_store.paced),
        ),
        (
            "(b″)",
            "easyauth, cookie, sessions in Redis",
            summarize(&r.cookie_redis.paced),
        ),
        ("(c)", "easyauth, bearer", summarize(&r.bearer.paced)),
        (
            "(d)",
            "Apache + mod_auth_openidc",
            summarize(&r.apache.paced),
        ),
    ]
    .iter()
    .map(|(tag, what, p)| {
        format!(
            "| {tag} | {what} | {:.0} | {} | {} | {:+.2} ms | {:.0} % |",
            p.rate,
            ms(p.p50_ms),
            ms(p.p99_ms),
            p.p99_ms - pa.p99_ms,
            p.other_pct
        )
    })
    .collect();

    let memory_rows = [
        format!(
            "| after start-up and the sign-in | {:.1} MiB |",
            mib(m.start_kib)
        ),
        format!(
            "| after the peak loads | {:.1} MiB |",
            mib(m.after_load_kib)
        ),
        format!(
            "| {} idle keep-alive connections open ({} sockets in the process, with the upstream pool), each after one cookie request | {:.1} MiB ({:.1} anonymous + {:.1} file-backed) |",
            r.opts.idle_connections,
            m.idle_open,
            mib(m.idle_kib),
            mib(m.idle_anon_kib),
            mib(m.idle_file_kib)
        ),
        format!(
            "| under `wrk -t1 -c{} -d5s` with the cookie ({:.0} req/s, p99 {}), highest sample | {:.1} MiB |",
            r.opts.idle_connections,
            m.busy_requests_per_s,
            ms(m.busy_p99_ms),
            mib(m.busy_max_kib)
        ),
        format!(
            "| peak over the whole run (VmHWM) | {:.1} MiB |",
            mib(m.hwm_kib)
        ),
    ];
    let busy_p99 = match &m.nginx_busy {
        Some(nb) => format!(
            "{} busy connections (`wrk -t1 -c{} -d5s`): easyauth with the cookie p99 **{}** ({:.0} req/s); nginx (a) in the same run p99 **{}** ({:.0} req/s).",
            r.opts.idle_connections,
            r.opts.idle_connections,
            ms(m.busy_p99_ms),
            m.busy_requests_per_s,
            ms(nb.p99_ms),
            nb.rate()
        ),
        None => String::new(),
    };

    let run_row = |name: &str, run: &Run| {
        let l = &run.load;
        format!(
            "| {name} | {} | {} | {} | {:.1} s | {:.0} | {} | {} | {:.0} % |",
            l.requests,
            l.non200,
            l.socket_errors,
            l.duration_s,
            l.rate(),
            ms(l.p50_ms),
            ms(l.p99_ms),
            run.other_core0_pct
        )
    };
    let mut run_rows = vec![run_row("upstream alone", &r.upstream_direct)];
    for (kind, paced) in [("peak", false), ("paced", true)] {
        for round in 0..n as usize {
            for (name, row) in [
                ("(a) nginx", &r.nginx),
                ("(b) easyauth cookie", &r.cookie),
                ("(b′) easyauth cookie, no store", &r.cookie_no_store),
                ("(b″) easyauth cookie, Redis", &r.cookie_redis),
                ("(c) easyauth bearer", &r.bearer),
                ("(d) apache", &r.apache),
            ] {
                let runs = if paced { &row.paced } else { &row.peak };
                if let Some(run) = runs.get(round) {
                    run_rows.push(run_row(&format!("{name}, {kind} {}", round + 1), run));
                }
            }
        }
    }
    let versions: Vec<String> = r
        .versions
        .iter()
        .map(|(k, v)| format!("- {k}: {v}"))
        .collect();

    crate::template::report(
        root,
        "proxy",
        &[
            ("ROUNDS", n.to_string()),
            ("DURATION", r.opts.duration.to_string()),
            ("CONNECTIONS", r.opts.connections.to_string()),
            ("PEAK_ROWS", peak_rows.join("\n")),
            ("TARGET_ROWS", target_rows.join("\n")),
            (
                "PEAK_ADDED_COOKIE",
                format!("{:+.2} ms", b.p99_ms - a.p99_ms),
            ),
            (
                "PEAK_ADDED_BEARER",
                format!("{:+.2} ms", cc.p99_ms - a.p99_ms),
            ),
            (
                "PEAK_ADDED_APACHE",
                format!("{:+.2} ms", dd.p99_ms - a.p99_ms),
            ),
            ("PEAK_NGINX_P99", ms(a.p99_ms)),
            ("INSTRUCTION_ROWS", instruction_rows.join("\n")),
            ("WARM_UP", bench_callgrind::WARM_UP_REQUESTS.to_string()),
            ("COUNTED", i.nginx.requests.to_string()),
            ("PROFILES", profiles.join(", ")),
            ("PACED_CONNECTIONS", r.paced_connections.to_string()),
            ("PACED_DELAY_MS", PACED_DELAY_MS.to_string()),
            ("PACED_ROWS", paced_rows.join("\n")),
            ("MEMORY_ROWS", memory_rows.join("\n")),
            ("BUSY_P99", busy_p99),
            ("RUN_ROWS", run_rows.join("\n")),
            ("QUIET_WAIT_S", QUIET_WAIT.as_secs().to_string()),
            ("QUIET_BUSY_PCT", format!("{QUIET_BUSY_PCT:.0}")),
            ("IDLE_CONNECTIONS", r.opts.idle_connections.to_string()),
            ("VERSIONS", versions.join("\n")),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_template_and_its_values_agree() -> Result<()> {
        let run = Run {
            load: Load {
                requests: 1000,
                duration_s: 1.0,
                ..Load::default()
            },
            other_core0_pct: 0.0,
        };
        let row = Row {
            peak: vec![run.clone()],
            paced: vec![run.clone()],
        };
        let count = |instructions| Count {
            requests: 100,
            instructions,
            profile: PathBuf::from("callgrind.x.out"),
        };
        let r = ProxyReport {
            opts: ProxyOptions::default(),
            upstream_direct: run,
            paced_connections: 10,
            nginx: row.clone(),
            cookie: row.clone(),
            cookie_no_store: row.clone(),
            cookie_redis: row.clone(),
            bearer: row.clone(),
            apache: row,
            memory: Memory::default(),
            instructions: Instructions {
                nginx: count(1_000_000),
                cookie: count(2_500_000),
                bearer: count(3_000_000),
            },
            versions: vec![("nginx".into(), "1.22".into())],
        };
        let md = render(&crate::util::repo_root(), &r)?;
        assert!(md.contains("| 25000 | 2.50 × |"), "{md}");
        assert!(md.contains("- nginx: 1.22"), "{md}");
        Ok(())
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert!((median(vec![3.0, 1.0, 2.0]) - 2.0).abs() < 1e-9);
        assert!((median(vec![4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-9);
        assert!(median(Vec::new()).abs() < 1e-9);
    }

    #[test]
    fn lua_strings_are_escaped() {
        assert_eq!(lua_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
