//! App processes: start with an environment, prefix output with the app's name, restart after a
//! crash with back-off, restart on demand with a new environment, stop gracefully.
//!
//! Each [`AppProcess`] is one tokio task that owns the child and takes commands (restart, stop)
//! over a channel; the handle only reads the published status. Children run in their own
//! process group so that `sh -c "node a.js"` and whatever it forks are signalled together.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The longest line re-printed as one; longer output is flushed in pieces of this size so a
/// child writing without newlines cannot make us buffer without bound.
pub const MAX_LINE: usize = 64 * 1024;

/// How long output pipes may stay open after the app's process group is gone (something that
/// left the group may still hold them); after this we stop copying them.
const PIPE_DRAIN: Duration = Duration::from_secs(1);

/// Errors the user sees; `Display` is the message.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// A command given as a list must name at least the program.
    #[error("the app's command is empty: give at least the program to run")]
    EmptyCommand,
    /// The OS refused to start the program (not found, not executable, bad working directory).
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
}

/// What to run for an app.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppCommand {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
}

impl AppCommand {
    /// A command line given as one string runs through `sh -c` (shell syntax allowed, like a
    /// Procfile).
    pub fn shell(line: &str) -> AppCommand {
        AppCommand {
            program: "sh".to_owned(),
            args: vec!["-c".to_owned(), line.to_owned()],
            cwd: None,
        }
    }

    /// Given as a list: the first item is exec'd directly with the rest as arguments.
    pub fn argv(list: Vec<String>) -> Result<AppCommand, SupervisorError> {
        let mut items = list.into_iter();
        let program = items.next().ok_or(SupervisorError::EmptyCommand)?;
        if program.is_empty() {
            return Err(SupervisorError::EmptyCommand);
        }
        Ok(AppCommand {
            program,
            args: items.collect(),
            cwd: None,
        })
    }

    /// Runs the command in `dir` instead of the platform's working directory.
    #[must_use]
    pub fn with_cwd(mut self, dir: impl Into<PathBuf>) -> AppCommand {
        self.cwd = Some(dir.into());
        self
    }
}

/// The timing knobs, separate so tests can use short ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorTiming {
    /// Wait before the first restart after an exit; doubled for each further consecutive one.
    pub initial_backoff: Duration,
    /// The longest wait between restarts.
    pub max_backoff: Duration,
    /// A child that ran this long was healthy: the back-off starts again from the beginning.
    pub healthy_after: Duration,
    /// Time between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
}

impl Default for SupervisorTiming {
    /// 0.5 s doubling up to 30 s, reset after 10 s of running, 5 s to stop.
    fn default() -> Self {
        SupervisorTiming {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            healthy_after: Duration::from_secs(10),
            stop_grace: Duration::from_secs(5),
        }
    }
}

impl SupervisorTiming {
    /// The wait before restart number `attempt + 1` of a series of consecutive failures:
    /// `initial_backoff * 2^attempt`, capped at `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.initial_backoff
            .saturating_mul(1u32 << attempt.min(30))
            .min(self.max_backoff)
    }
}

/// Where an app is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessStatus {
    /// Being spawned (or being stopped to be started again).
    Starting,
    /// The child is running with this pid (also its process group id).
    Running { pid: u32 },
    /// The child exited or could not be started; retry number `attempt` of the current series
    /// comes after `retry_in`. `reason` is what the terminal showed, e.g. `exited with status 1`.
    BackingOff {
        attempt: u32,
        retry_in: Duration,
        reason: String,
    },
    /// Stopped on request (or because every handle was dropped); no further restarts.
    Stopped,
}

/// What an [`AppProcess`] handle asks of the task supervising its process.
enum ProcessControl {
    Restart(BTreeMap<String, String>, oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

/// The last lines an app printed (stdout and stderr interleaved), for explaining a failed start
/// and for showing the app's log.
#[derive(Debug, Clone, Default)]
pub struct OutputTail {
    lines: Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
    /// The app's log, which outlives this process.
    mirror: Option<crate::applog::AppLog>,
}

/// Lines kept per app.
const TAIL_LINES: usize = 400;

impl OutputTail {
    /// A tail whose lines also go to the app's log.
    pub fn mirrored(log: crate::applog::AppLog) -> OutputTail {
        OutputTail {
            lines: Arc::default(),
            mirror: Some(log),
        }
    }

    pub fn push(&self, line: String) {
        if let Some(log) = &self.mirror {
            log.push(&line);
        }
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

/// A supervised app. Cheap to clone; all clones control the same app. When the last clone is
/// dropped the app is stopped gracefully (the supervising task keeps running until the child is
/// reaped); if the runtime itself shuts down, the process group is SIGKILLed.
#[derive(Clone)]
pub struct AppProcess {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    control: mpsc::UnboundedSender<ProcessControl>,
    status: watch::Receiver<ProcessStatus>,
    restarts: Arc<AtomicU64>,
    tail: OutputTail,
}

impl fmt::Debug for AppProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppProcess")
            .field("name", &self.inner.name)
            .field("status", &*self.inner.status.borrow())
            .field("restarts", &self.restarts())
            .finish()
    }
}

impl AppProcess {
    /// Starts supervising `command` with the default [`SupervisorTiming`]. See
    /// [`AppProcess::spawn_with_timing`].
    pub fn spawn(
        name: &str,
        name_width: usize,
        command: AppCommand,
        env: BTreeMap<String, String>,
    ) -> AppProcess {
        AppProcess::spawn_with_timing(name, name_width, command, env, SupervisorTiming::default())
    }

    /// [`AppProcess::spawn`] whose output also goes to the app's log.
    pub fn spawn_logged(
        name: &str,
        name_width: usize,
        command: AppCommand,
        env: BTreeMap<String, String>,
        log: crate::applog::AppLog,
    ) -> AppProcess {
        AppProcess::spawn_inner(
            name,
            name_width,
            command,
            env,
            SupervisorTiming::default(),
            OutputTail::mirrored(log),
        )
    }

    /// Starts supervising: spawns the command with the current process environment overlaid
    /// with `env`, stdin null, and its stdout/stderr re-printed line by line as
    /// `<name> | <line>` to our stdout/stderr (the name padded to `name_width`). Exits and
    /// spawn failures are restarted with back-off. Must be called within a tokio runtime.
    pub fn spawn_with_timing(
        name: &str,
        name_width: usize,
        command: AppCommand,
        env: BTreeMap<String, String>,
        timing: SupervisorTiming,
    ) -> AppProcess {
        AppProcess::spawn_inner(
            name,
            name_width,
            command,
            env,
            timing,
            OutputTail::default(),
        )
    }

    fn spawn_inner(
        name: &str,
        name_width: usize,
        command: AppCommand,
        env: BTreeMap<String, String>,
        timing: SupervisorTiming,
        tail: OutputTail,
    ) -> AppProcess {
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (status_tx, status_rx) = watch::channel(ProcessStatus::Starting);
        let restarts = Arc::new(AtomicU64::new(0));
        let supervisor = Supervisor {
            name: name.to_owned(),
            prefix: format!("{name:<name_width$} | "),
            command,
            env,
            timing,
            status: status_tx,
            restarts: Arc::clone(&restarts),
            control: control_rx,
            tail: tail.clone(),
        };
        tokio::spawn(supervisor.run());
        AppProcess {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                control: control_tx,
                status: status_rx,
                restarts,
                tail,
            }),
        }
    }

    /// The app's name as given to `spawn`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Stops the current child gracefully and starts it again with `env` (used when app
    /// settings change); resets the back-off and cancels a pending retry. Returns once the new
    /// child has been spawned (or failed to spawn). Does nothing after [`AppProcess::stop`].
    pub async fn restart(&self, env: BTreeMap<String, String>) {
        let (done_tx, done_rx) = oneshot::channel();
        if self
            .inner
            .control
            .send(ProcessControl::Restart(env, done_tx))
            .is_ok()
        {
            // An error means the supervisor ended (stopped meanwhile): nothing to wait for.
            let _ = done_rx.await;
        }
    }

    /// Graceful stop: SIGTERM to the child's whole process group, SIGKILL after the grace
    /// period, then reaps; no further restarts. Idempotent; returns once the child is gone.
    pub async fn stop(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self
            .inner
            .control
            .send(ProcessControl::Stop(done_tx))
            .is_ok()
        {
            let _ = done_rx.await;
        }
    }

    /// The current status.
    pub fn status(&self) -> ProcessStatus {
        self.inner.status.borrow().clone()
    }

    /// Follows status changes (e.g. to wait until the app runs or report it to an admin API).
    pub fn watch_status(&self) -> watch::Receiver<ProcessStatus> {
        self.inner.status.clone()
    }

    /// The pid of the running child, if one runs.
    pub fn pid(&self) -> Option<u32> {
        match *self.inner.status.borrow() {
            ProcessStatus::Running { pid } => Some(pid),
            _ => None,
        }
    }

    /// Restarts after an exit or a failed spawn so far (not those asked for with `restart`).
    pub fn restarts(&self) -> u64 {
        self.inner.restarts.load(Ordering::Relaxed)
    }

    /// What the app printed last (and the platform's notices about it).
    pub fn output(&self) -> &OutputTail {
        &self.inner.tail
    }
}

/// Polls a TCP connect to `addr` until it succeeds or `timeout` passes: apps are ready when
/// their port accepts.
pub async fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        if let Ok(Ok(_)) =
            tokio::time::timeout(deadline - now, tokio::net::TcpStream::connect(addr)).await
        {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep((deadline - now).min(Duration::from_millis(50))).await;
    }
}

/// What the task does after a child ends or fails to start.
enum Next {
    /// Restart after back-off.
    BackOff { reason: String, ran: Duration },
    /// Start again right away with this environment (a `restart` was asked for).
    RestartNow(BTreeMap<String, String>, oneshot::Sender<()>),
    /// End supervision; acknowledge to whoever asked.
    Stop(Option<oneshot::Sender<()>>),
}

struct Supervisor {
    name: String,
    prefix: String,
    command: AppCommand,
    env: BTreeMap<String, String>,
    timing: SupervisorTiming,
    status: watch::Sender<ProcessStatus>,
    restarts: Arc<AtomicU64>,
    control: mpsc::UnboundedReceiver<ProcessControl>,
    tail: OutputTail,
}

impl Supervisor {
    async fn run(mut self) {
        // Consecutive unhealthy exits: the exponent of the back-off.
        let mut attempt: u32 = 0;
        // Whoever asked for a restart waits until the new child was spawned.
        let mut restart_ack: Option<oneshot::Sender<()>> = None;
        loop {
            self.status.send_replace(ProcessStatus::Starting);
            let next = self.run_once(restart_ack.take()).await;
            let (reason, ran) = match next {
                Next::Stop(ack) => {
                    self.status.send_replace(ProcessStatus::Stopped);
                    if let Some(ack) = ack {
                        let _ = ack.send(());
                    }
                    return;
                }
                Next::RestartNow(env, ack) => {
                    self.env = env;
                    attempt = 0;
                    restart_ack = Some(ack);
                    continue;
                }
                Next::BackOff { reason, ran } => (reason, ran),
            };
            if ran >= self.timing.healthy_after {
                attempt = 0;
            }
            let delay = self.timing.backoff(attempt);
            attempt = attempt.saturating_add(1);
            tracing::warn!(app = %self.name, status = %reason, retry_in = ?delay, "app exited; restarting");
            self.notice(&format!("{reason}; restarting in {}", human(delay)))
                .await;
            self.status.send_replace(ProcessStatus::BackingOff {
                attempt,
                retry_in: delay,
                reason,
            });
            tokio::select! {
                () = tokio::time::sleep(delay) => {
                    self.restarts.fetch_add(1, Ordering::Relaxed);
                }
                control = self.control.recv() => match control {
                    Some(ProcessControl::Restart(env, ack)) => {
                        self.env = env;
                        attempt = 0;
                        restart_ack = Some(ack);
                    }
                    Some(ProcessControl::Stop(ack)) => {
                        self.notice("stopped").await;
                        self.status.send_replace(ProcessStatus::Stopped);
                        let _ = ack.send(());
                        return;
                    }
                    None => {
                        self.notice("stopped").await;
                        self.status.send_replace(ProcessStatus::Stopped);
                        return;
                    }
                },
            }
        }
    }

    /// Spawns one child and supervises it until it ends or a command arrives.
    async fn run_once(&mut self, restart_ack: Option<oneshot::Sender<()>>) -> Next {
        // Whoever asked for a restart learns the outcome once the status shows it.
        let acknowledge = |ack: Option<oneshot::Sender<()>>| {
            if let Some(ack) = ack {
                let _ = ack.send(());
            }
        };
        let mut child = match self.spawn_child() {
            Ok(child) => child,
            Err(err) => {
                acknowledge(restart_ack);
                return Next::BackOff {
                    reason: err.to_string(),
                    ran: Duration::ZERO,
                };
            }
        };
        let Some(pid) = child.id() else {
            // Already reaped: cannot happen right after spawn, but treat it as an exit.
            acknowledge(restart_ack);
            return Next::BackOff {
                reason: "exited immediately".to_owned(),
                ran: Duration::ZERO,
            };
        };
        let started = Instant::now();
        let mut guard = GroupGuard::new(pid);
        let pumps = self.start_pumps(&mut child);
        self.status.send_replace(ProcessStatus::Running { pid });
        acknowledge(restart_ack);
        tracing::info!(app = %self.name, pid, "app started");

        let next = tokio::select! {
            exit = child.wait() => {
                let ran = started.elapsed();
                // Whatever the app left behind in its group goes too, so the restart finds its
                // port free.
                reap_group(guard.pgid, self.timing.stop_grace).await;
                let reason = match exit {
                    Ok(status) => describe_exit(status),
                    Err(err) => format!("could not be waited for: {err}"),
                };
                Next::BackOff { reason, ran }
            }
            control = self.control.recv() => {
                terminate(&mut child, guard.pgid, self.timing.stop_grace).await;
                match control {
                    Some(ProcessControl::Restart(env, ack)) => Next::RestartNow(env, ack),
                    Some(ProcessControl::Stop(ack)) => Next::Stop(Some(ack)),
                    None => Next::Stop(None),
                }
            }
        };
        guard.disarm();
        drain(pumps).await;
        match &next {
            Next::RestartNow(..) => self.notice("restarting").await,
            Next::Stop(_) => self.notice("stopped").await,
            Next::BackOff { .. } => {}
        }
        next
    }

    fn spawn_child(&self) -> Result<Child, SupervisorError> {
        let mut command = Command::new(&self.command.program);
        command
            .args(&self.command.args)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.command.cwd {
            command.current_dir(dir);
        }
        command.spawn().map_err(|source| SupervisorError::Spawn {
            program: self.command.program.clone(),
            source,
        })
    }

    fn start_pumps(&self, child: &mut Child) -> Vec<JoinHandle<()>> {
        let mut pumps = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(
                stdout,
                tokio::io::stdout(),
                self.prefix.clone(),
                self.tail.clone(),
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(
                stderr,
                tokio::io::stderr(),
                self.prefix.clone(),
                self.tail.clone(),
            )));
        }
        pumps
    }

    /// A line from the platform itself about this app, on stderr, in the app's column.
    async fn notice(&self, text: &str) {
        self.tail.push(format!("[easyauth] {text}"));
        let line = format!("{}[easyauth] {text}\n", self.prefix);
        let mut err = tokio::io::stderr();
        let _ = err.write_all(line.as_bytes()).await;
        let _ = err.flush().await;
    }
}

/// SIGKILLs the child's process group if the supervising task is dropped while the child runs
/// (the runtime shutting down): `kill_on_drop` alone would only reach the group leader.
struct GroupGuard {
    pgid: Pid,
    armed: bool,
}

impl GroupGuard {
    fn new(pid: u32) -> GroupGuard {
        GroupGuard {
            pgid: Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)),
            armed: true,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

/// SIGTERM to the group; SIGKILL to it when the leader is still there after `grace`. Reaps the
/// leader and waits (within `grace`) for the rest of the group.
async fn terminate(child: &mut Child, pgid: Pid, grace: Duration) {
    let deadline = Instant::now() + grace;
    signal_group(pgid, Signal::SIGTERM);
    if tokio::time::timeout_at(deadline, child.wait())
        .await
        .is_err()
    {
        signal_group(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    let left = deadline.saturating_duration_since(Instant::now());
    wait_group_gone(pgid, left).await;
    signal_group(pgid, Signal::SIGKILL);
}

/// After the leader exited on its own: stop what is left of its group the same graceful way.
async fn reap_group(pgid: Pid, grace: Duration) {
    if !group_alive(pgid).await {
        return;
    }
    signal_group(pgid, Signal::SIGTERM);
    wait_group_gone(pgid, grace).await;
    signal_group(pgid, Signal::SIGKILL);
}

async fn wait_group_gone(pgid: Pid, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && group_alive(pgid).await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a process of the group still runs. Signal 0 alone also counts zombies: orphans
/// reparented to a PID 1 that does not reap (common in containers) would make every stop wait
/// out the whole grace period, so on Linux the group's members are looked up in `/proc`.
async fn group_alive(pgid: Pid) -> bool {
    if killpg(pgid, None).is_err() {
        return false;
    }
    #[cfg(target_os = "linux")]
    let alive = {
        let raw = pgid.as_raw();
        tokio::task::spawn_blocking(move || group_has_live_member(raw))
            .await
            .unwrap_or(true)
    };
    #[cfg(not(target_os = "linux"))]
    let alive = true;
    alive
}

/// Scans `/proc/<pid>/stat` for a member of process group `pgid` that is not a zombie.
/// Unreadable `/proc` counts as alive (then the grace period decides).
#[cfg(target_os = "linux")]
fn group_has_live_member(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // After the command name in parentheses: state, ppid, pgrp, ...
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && !matches!(state, Some("Z" | "X"))
    })
}

fn signal_group(pgid: Pid, signal: Signal) {
    match killpg(pgid, signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(err) => tracing::debug!(pgid = pgid.as_raw(), %signal, %err, "cannot signal app"),
    }
}

/// Lets the output copiers finish what the pipes still hold, without waiting on a pipe kept
/// open by a process that escaped the group.
async fn drain(pumps: Vec<JoinHandle<()>>) {
    let deadline = Instant::now() + PIPE_DRAIN;
    for mut pump in pumps {
        if tokio::time::timeout_at(deadline, &mut pump).await.is_err() {
            pump.abort();
        }
    }
}

/// `exited with status 1`, `killed by signal 9 (SIGKILL)`.
fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exited with status {code}")
    } else if let Some(signal) = status.signal() {
        match Signal::try_from(signal) {
            Ok(name) => format!("killed by signal {signal} ({name})"),
            Err(_) => format!("killed by signal {signal}"),
        }
    } else {
        format!("exited ({status})")
    }
}

/// `500ms`, `1s`, `1.5s`.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Copies `reader` to `out` line by line, each line prefixed; non-UTF-8 is replaced, a line
/// longer than [`MAX_LINE`] is written in pieces, a missing final newline is added. When `out`
/// fails the pipe is still drained so the app never blocks on a full pipe.
async fn pump<R, W>(reader: R, mut out: W, prefix: String, tail: OutputTail)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::with_capacity(16 * 1024, reader);
    let mut line: Vec<u8> = Vec::new();
    let mut out_ok = true;
    while let Ok(buf) = reader.fill_buf().await {
        if buf.is_empty() {
            break;
        }
        let room = MAX_LINE - line.len();
        let (take, complete) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) if i <= room => (i + 1, true),
            _ => (buf.len().min(room), false),
        };
        if complete {
            line.extend_from_slice(&buf[..take - 1]);
        } else {
            line.extend_from_slice(&buf[..take]);
        }
        reader.consume(take);
        if complete || line.len() >= MAX_LINE {
            tail.push(
                String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(&line)).into_owned(),
            );
            if out_ok {
                out_ok = emit(&mut out, &prefix, &line).await;
            }
            line.clear();
        }
    }
    if !line.is_empty() {
        tail.push(String::from_utf8_lossy(&line).into_owned());
        if out_ok {
            emit(&mut out, &prefix, &line).await;
        }
    }
}

async fn emit<W: AsyncWrite + Unpin>(out: &mut W, prefix: &str, line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    let mut buf = String::with_capacity(prefix.len() + text.len() + 1);
    buf.push_str(prefix);
    buf.push_str(&text);
    buf.push('\n');
    out.write_all(buf.as_bytes()).await.is_ok() && out.flush().await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pumped(input: &[u8]) -> String {
        let mut out = Vec::new();
        pump(input, &mut out, "web | ".to_owned(), OutputTail::default()).await;
        String::from_utf8(out).expect("pump writes UTF-8")
    }

    #[tokio::test]
    async fn pump_prefixes_lines() {
        assert_eq!(
            pumped(b"a\nb\r\n\nc").await,
            "web | a\nweb | b\nweb | \nweb | c\n"
        );
    }

    #[tokio::test]
    async fn pump_replaces_invalid_utf8() {
        assert_eq!(pumped(b"x\xffy\n").await, "web | x\u{fffd}y\n");
    }

    #[tokio::test]
    async fn pump_caps_long_lines() {
        let input = vec![b'a'; MAX_LINE * 2 + 10];
        let out = pumped(&input).await;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), "web | ".len() + MAX_LINE);
        assert_eq!(lines[2], format!("web | {}", "a".repeat(10)));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let t = SupervisorTiming::default();
        let got: Vec<Duration> = (0..8).map(|a| t.backoff(a)).collect();
        let ms = |m| Duration::from_millis(m);
        assert_eq!(
            got,
            [
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(8000),
                ms(16000),
                ms(30000),
                ms(30000)
            ]
        );
        assert_eq!(t.backoff(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_millis(500)), "500ms");
        assert_eq!(human(Duration::from_secs(1)), "1s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn argv_rejects_empty() {
        assert!(matches!(
            AppCommand::argv(vec![]),
            Err(SupervisorError::EmptyCommand)
        ));
        let cmd = AppCommand::argv(vec!["node".into(), "a.js".into()]).expect("non-empty");
        assert_eq!(cmd.program, "node");
        assert_eq!(cmd.args, ["a.js"]);
    }
}
