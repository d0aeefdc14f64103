//! Runs one build command (`npm install`, `pip install`, `node --version`): its own process
//! group, output into the deployment log line by line, a timeout, and nothing left behind.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::Mutex;

use crate::log::DeployLog;

/// The longest line copied as one; longer output is split so a command printing without
/// newlines cannot make us buffer without bound.
const MAX_LINE: usize = 16 * 1024;
/// How many of the last output lines a failure message quotes.
pub(crate) const TAIL_LINES: usize = 30;
/// How long output pipes may stay open after the command's group is gone.
const PIPE_DRAIN: Duration = Duration::from_secs(2);

/// What to run.
#[derive(Debug)]
pub(crate) struct Cmd<'a> {
    pub(crate) program: &'a str,
    pub(crate) args: Vec<String>,
    pub(crate) cwd: &'a Path,
    pub(crate) env: &'a BTreeMap<String, String>,
}

impl Cmd<'_> {
    pub(crate) fn display(&self) -> String {
        std::iter::once(self.program.to_owned())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A finished command: whether it succeeded, and its output (the last lines on failure).
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) first_line: String,
}

/// Runs `cmd`; `Err(message)` names the command, how it ended and quotes the last lines.
pub(crate) async fn run(log: &DeployLog, cmd: &Cmd<'_>, timeout: Duration) -> Result<Ran, String> {
    let shown = cmd.display();
    let mut command = Command::new(cmd.program);
    command
        .args(&cmd.args)
        .current_dir(cmd.cwd)
        .envs(cmd.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    let Some(pid) = child.id() else {
        return Err(format!("`{shown}` exited before it could be watched"));
    };
    let mut guard = GroupGuard::new(pid);
    let tail: Arc<Mutex<VecDeque<String>>> = Arc::new(Mutex::new(VecDeque::new()));
    let first: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    // The pumps borrow the log, so they run here (joined), not as spawned tasks.
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let pumps = async {
        let a = async {
            if let Some(out) = stdout {
                pump(out, log, &tail, &first).await;
            }
        };
        let b = async {
            if let Some(err) = stderr {
                pump(err, log, &tail, &first).await;
            }
        };
        tokio::join!(a, b);
    };
    tokio::pin!(pumps);

    // Output is copied while waiting (a full pipe would block the command); once the command
    // exits, whatever it left in its group is killed and the pipes get a moment to drain.
    let mut pumps_done = false;
    let waited = tokio::time::timeout(timeout, async {
        loop {
            tokio::select! {
                status = child.wait() => break status,
                () = &mut pumps, if !pumps_done => pumps_done = true,
            }
        }
    })
    .await;
    let outcome = match waited {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("`{shown}` failed ({status})")),
        Ok(Err(e)) => Err(format!("`{shown}` could not be waited for: {e}")),
        Err(_) => Err(format!(
            "`{shown}` did not finish within {} s and was stopped",
            timeout.as_secs()
        )),
    };
    guard.kill();
    let _ = child.wait().await;
    if !pumps_done {
        let _ = tokio::time::timeout(PIPE_DRAIN, &mut pumps).await;
    }
    guard.disarm();
    match outcome {
        Ok(()) => Ok(Ran {
            first_line: first.lock().await.clone().unwrap_or_default(),
        }),
        Err(message) => {
            let tail = tail.lock().await;
            if tail.is_empty() {
                Err(message)
            } else {
                let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
                Err(format!("{message}; its last output:\n{}", lines.join("\n")))
            }
        }
    }
}

/// Copies `reader` into the log line by line, keeping the last [`TAIL_LINES`] lines.
async fn pump<R: AsyncRead + Unpin>(
    reader: R,
    log: &DeployLog,
    tail: &Mutex<VecDeque<String>>,
    first: &Mutex<Option<String>>,
) {
    let mut reader = BufReader::with_capacity(16 * 1024, reader);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let buf = match reader.fill_buf().await {
            Ok(buf) if !buf.is_empty() => buf,
            _ => break,
        };
        let room = MAX_LINE - line.len();
        let (take, complete) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) if i <= room => (i + 1, true),
            _ => (buf.len().min(room), false),
        };
        let end = if complete { take - 1 } else { take };
        line.extend_from_slice(&buf[..end]);
        reader.consume(take);
        if complete || line.len() >= MAX_LINE {
            emit(&line, log, tail, first).await;
            line.clear();
        }
    }
    if !line.is_empty() {
        emit(&line, log, tail, first).await;
    }
}

async fn emit(
    line: &[u8],
    log: &DeployLog,
    tail: &Mutex<VecDeque<String>>,
    first: &Mutex<Option<String>>,
) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line).into_owned();
    log.output(&text).await;
    {
        let mut first = first.lock().await;
        if first.is_none() && !text.trim().is_empty() {
            *first = Some(text.trim().to_owned());
        }
    }
    let mut tail = tail.lock().await;
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(text);
}

/// SIGKILLs the command's process group when dropped armed (the deployment task dropped with
/// the runtime): `kill_on_drop` alone only reaches the group leader.
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

    fn kill(&self) {
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn log_in(dir: &Path) -> DeployLog {
        DeployLog::create(&dir.join("log.txt"), "t")
            .await
            .expect("log")
    }

    fn tmp() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("kudu-proc-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    #[tokio::test]
    async fn success_failure_and_timeout() {
        let dir = tmp();
        let log = log_in(&dir).await;
        let env = BTreeMap::new();
        let sh = |script: &str| Cmd {
            program: "sh",
            args: vec!["-c".into(), script.into()],
            cwd: &dir,
            env: &env,
        };
        let ok = run(
            &log,
            &sh("echo hello; echo err >&2"),
            Duration::from_secs(10),
        )
        .await
        .expect("runs");
        assert!(ok.first_line == "hello" || ok.first_line == "err");

        let err = run(
            &log,
            &sh("echo one; echo two; exit 3"),
            Duration::from_secs(10),
        )
        .await
        .expect_err("fails");
        assert!(
            err.contains("exit status: 3") && err.contains("one\ntwo"),
            "{err}"
        );

        // A command that leaves something behind holding its pipes still ends when it exits.
        let started = std::time::Instant::now();
        run(&log, &sh("sleep 30 & echo done"), Duration::from_secs(20))
            .await
            .expect("runs");
        assert!(started.elapsed() < Duration::from_secs(5));

        let started = std::time::Instant::now();
        let err = run(&log, &sh("sleep 30 & sleep 30"), Duration::from_millis(300))
            .await
            .expect_err("times out");
        assert!(err.contains("did not finish"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));

        let err = run(
            &log,
            &Cmd {
                program: "/nonexistent/program",
                args: vec![],
                cwd: &dir,
                env: &env,
            },
            Duration::from_secs(1),
        )
        .await
        .expect_err("cannot spawn");
        assert!(err.contains("cannot run"), "{err}");
        let text = std::fs::read_to_string(dir.join("log.txt")).expect("log");
        assert!(text.contains("hello") && text.contains("two"), "{text}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
