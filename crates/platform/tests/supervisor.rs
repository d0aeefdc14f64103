//! App process supervision with real processes (`sh -c ...`): environment, crash restarts,
//! restart with new settings, stopping whole process groups, back-off on spawn failures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use easyauth_platform::supervisor::{
    AppCommand, AppProcess, ProcessStatus, SupervisorTiming, wait_for_port,
};
use easyauth_testkit::temp_dir;

/// The bound of every wait; reaching it fails the test.
const DEADLINE: Duration = Duration::from_secs(10);

fn fast() -> SupervisorTiming {
    SupervisorTiming {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        healthy_after: Duration::from_secs(10),
        stop_grace: Duration::from_millis(500),
    }
}

/// Back-off far longer than any test waits: a retry seen within the deadline was not the timer.
fn slow_backoff() -> SupervisorTiming {
    SupervisorTiming {
        initial_backoff: Duration::from_secs(60),
        max_backoff: Duration::from_secs(60),
        ..fast()
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after [`DEADLINE`].
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn line_count(path: &Path) -> usize {
    read(path).lines().count()
}

/// Reads a pid a child wrote (complete line) to `path`.
async fn pid_from(path: &Path) -> i32 {
    eventually("the child to write its pid", || read(path).ends_with('\n')).await;
    read(path).trim().parse().expect("a pid")
}

/// Gone, or a zombie nobody reaped yet (PID 1 of a container may not reap): not running.
fn pid_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

#[tokio::test]
async fn env_is_passed_and_parent_env_is_inherited() {
    let dir = temp_dir("supervisor");
    let out = dir.join("env");
    let line = format!(
        "printf '%s %s\\n%s\\n' \"$PORT\" \"$APPSETTING_GREETING\" \"$PATH\" > '{}.tmp' && mv '{0}.tmp' '{0}'; exec sleep 300",
        out.display()
    );
    let app = AppProcess::spawn_with_timing(
        "web",
        5,
        AppCommand::shell(&line),
        env(&[("PORT", "8123"), ("APPSETTING_GREETING", "hello world")]),
        fast(),
    );
    eventually("the child to write its environment", || out.exists()).await;
    let text = read(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("8123 hello world"));
    let parent_path = std::env::var("PATH").expect("PATH is set for tests");
    assert_eq!(lines.next(), Some(parent_path.as_str()));
    assert!(matches!(app.status(), ProcessStatus::Running { .. }));
    assert!(app.pid().is_some());
    app.stop().await;
    assert_eq!(app.status(), ProcessStatus::Stopped);
}

#[tokio::test]
async fn argv_command_runs_in_cwd() {
    let dir = temp_dir("supervisor");
    let command = AppCommand::argv(vec![
        "sh".into(),
        "-c".into(),
        "pwd > where; exec sleep 300".into(),
    ])
    .expect("non-empty")
    .with_cwd(dir.path());
    let app = AppProcess::spawn_with_timing("api", 3, command, BTreeMap::new(), fast());
    let out = dir.join("where");
    eventually("the child to write its directory", || {
        read(&out).ends_with('\n')
    })
    .await;
    let written = PathBuf::from(read(&out).trim());
    assert_eq!(
        written.canonicalize().expect("written dir exists"),
        dir.canonicalize().expect("temp dir exists")
    );
    app.stop().await;
}

#[tokio::test]
async fn crashing_command_is_restarted_with_back_off() {
    let dir = temp_dir("supervisor");
    let runs = dir.join("runs");
    let line = format!("echo run >> '{}'; echo oops >&2; exit 3", runs.display());
    let app = AppProcess::spawn_with_timing(
        "crash",
        5,
        AppCommand::shell(&line),
        BTreeMap::new(),
        fast(),
    );
    eventually("at least 3 runs", || line_count(&runs) >= 3).await;
    eventually("restarts() to count them", || app.restarts() >= 2).await;
    app.stop().await;
    assert_eq!(app.status(), ProcessStatus::Stopped);
    let after_stop = line_count(&runs);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(line_count(&runs), after_stop, "no restarts after stop");
}

#[tokio::test]
async fn clean_exit_is_restarted_too() {
    let dir = temp_dir("supervisor");
    let runs = dir.join("runs");
    let line = format!("echo run >> '{}'; exit 0", runs.display());
    let app =
        AppProcess::spawn_with_timing("once", 4, AppCommand::shell(&line), BTreeMap::new(), fast());
    eventually("at least 2 runs", || line_count(&runs) >= 2).await;
    app.stop().await;
}

#[tokio::test]
async fn status_reports_back_off_with_the_reason() {
    let dir = temp_dir("supervisor");
    let runs = dir.join("runs");
    let line = format!("echo run >> '{}'; exit 7", runs.display());
    let app = AppProcess::spawn_with_timing(
        "web",
        3,
        AppCommand::shell(&line),
        BTreeMap::new(),
        slow_backoff(),
    );
    let mut status = app.watch_status();
    let seen = tokio::time::timeout(
        DEADLINE,
        status.wait_for(|s| matches!(s, ProcessStatus::BackingOff { .. })),
    )
    .await
    .expect("backing off within the deadline")
    .expect("supervisor alive")
    .clone();
    assert_eq!(
        seen,
        ProcessStatus::BackingOff {
            attempt: 1,
            retry_in: Duration::from_secs(60),
            reason: "exited with status 7".to_owned(),
        }
    );
    assert_eq!(app.restarts(), 0, "the retry has not happened yet");
    app.stop().await;
}

#[tokio::test]
async fn restart_gives_the_new_child_the_new_environment() {
    let dir = temp_dir("supervisor");
    let out = dir.join("value");
    let line = format!(
        "echo \"$APPSETTING_COLOR\" > '{}.tmp' && mv '{0}.tmp' '{0}'; exec sleep 300",
        out.display()
    );
    let app = AppProcess::spawn_with_timing(
        "web",
        3,
        AppCommand::shell(&line),
        env(&[("APPSETTING_COLOR", "red")]),
        fast(),
    );
    eventually("the first child to see red", || read(&out) == "red\n").await;
    let first = app.pid().expect("running");
    app.restart(env(&[("APPSETTING_COLOR", "blue")])).await;
    assert!(
        matches!(app.status(), ProcessStatus::Running { .. }),
        "restart returns once the new child runs"
    );
    eventually("the new child to see blue", || read(&out) == "blue\n").await;
    let second = app.pid().expect("running again");
    assert_ne!(first, second);
    assert!(pid_gone(i32::try_from(first).expect("pid fits")));
    assert_eq!(app.restarts(), 0, "a requested restart is not a crash");
    app.stop().await;
}

#[tokio::test]
async fn restart_while_backing_off_starts_immediately() {
    let dir = temp_dir("supervisor");
    let runs = dir.join("runs");
    let line = format!("echo \"$RUN\" >> '{}'; exit 1", runs.display());
    let app = AppProcess::spawn_with_timing(
        "web",
        3,
        AppCommand::shell(&line),
        env(&[("RUN", "first")]),
        slow_backoff(),
    );
    eventually("backing off", || {
        matches!(app.status(), ProcessStatus::BackingOff { .. })
    })
    .await;
    app.restart(env(&[("RUN", "second")])).await;
    eventually("the second run despite a 60 s back-off", || {
        read(&runs) == "first\nsecond\n"
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn stop_while_backing_off_cancels_the_retry() {
    let app = AppProcess::spawn_with_timing(
        "web",
        3,
        AppCommand::shell("exit 1"),
        BTreeMap::new(),
        slow_backoff(),
    );
    eventually("backing off", || {
        matches!(app.status(), ProcessStatus::BackingOff { .. })
    })
    .await;
    tokio::time::timeout(DEADLINE, app.stop())
        .await
        .expect("stop does not wait for the back-off");
    assert_eq!(app.status(), ProcessStatus::Stopped);
    assert_eq!(app.restarts(), 0);
    // Idempotent, and restart after stop does nothing.
    app.stop().await;
    app.restart(BTreeMap::new()).await;
    assert_eq!(app.status(), ProcessStatus::Stopped);
}

#[tokio::test]
async fn stop_kills_the_whole_process_group() {
    let dir = temp_dir("supervisor");
    let pidfile = dir.join("pid");
    let line = format!(
        "sleep 300 & echo $! > '{}.tmp' && mv '{0}.tmp' '{0}'; wait",
        pidfile.display()
    );
    let app =
        AppProcess::spawn_with_timing("web", 3, AppCommand::shell(&line), BTreeMap::new(), fast());
    let grandchild = pid_from(&pidfile).await;
    let child = i32::try_from(app.pid().expect("running")).expect("pid fits");
    assert!(!pid_gone(grandchild));
    tokio::time::timeout(DEADLINE, app.stop())
        .await
        .expect("stop returns");
    assert_eq!(app.status(), ProcessStatus::Stopped);
    assert!(pid_gone(child), "the shell is gone");
    eventually("the grandchild to be gone", || pid_gone(grandchild)).await;
    app.stop().await;
}

#[tokio::test]
async fn stop_sigkills_a_child_that_ignores_sigterm() {
    let dir = temp_dir("supervisor");
    let pidfile = dir.join("pid");
    let line = format!(
        "trap '' TERM; sleep 300 & echo $! > '{}.tmp' && mv '{0}.tmp' '{0}'; wait",
        pidfile.display()
    );
    let app =
        AppProcess::spawn_with_timing("web", 3, AppCommand::shell(&line), BTreeMap::new(), fast());
    let grandchild = pid_from(&pidfile).await;
    let child = i32::try_from(app.pid().expect("running")).expect("pid fits");
    tokio::time::timeout(DEADLINE, app.stop())
        .await
        .expect("stop returns after the grace period");
    assert!(pid_gone(child), "the shell was killed");
    eventually("the grandchild to be gone", || pid_gone(grandchild)).await;
}

#[tokio::test]
async fn dropping_every_handle_stops_the_app() {
    let dir = temp_dir("supervisor");
    let pidfile = dir.join("pid");
    let line = format!(
        "sleep 300 & echo $! > '{}.tmp' && mv '{0}.tmp' '{0}'; wait",
        pidfile.display()
    );
    let app =
        AppProcess::spawn_with_timing("web", 3, AppCommand::shell(&line), BTreeMap::new(), fast());
    let grandchild = pid_from(&pidfile).await;
    let mut status = app.watch_status();
    drop(app);
    tokio::time::timeout(DEADLINE, status.wait_for(|s| *s == ProcessStatus::Stopped))
        .await
        .expect("stopped within the deadline")
        .expect("status published before the supervisor ended");
    eventually("the grandchild to be gone", || pid_gone(grandchild)).await;
}

#[tokio::test]
async fn missing_program_backs_off_without_panicking() {
    let program = "/nonexistent/easyauth-test-program";
    let app = AppProcess::spawn_with_timing(
        "ghost",
        5,
        AppCommand::argv(vec![program.to_owned(), "--flag".to_owned()]).expect("non-empty"),
        BTreeMap::new(),
        fast(),
    );
    eventually("retries of the failed spawn", || app.restarts() >= 2).await;
    let mut status = app.watch_status();
    let seen = tokio::time::timeout(
        DEADLINE,
        status.wait_for(|s| matches!(s, ProcessStatus::BackingOff { .. })),
    )
    .await
    .expect("backing off within the deadline")
    .expect("supervisor alive")
    .clone();
    let ProcessStatus::BackingOff {
        attempt, reason, ..
    } = seen
    else {
        unreachable!("matched above");
    };
    assert!(attempt >= 1);
    assert!(reason.contains(program), "{reason}");
    assert!(reason.contains("No such file"), "{reason}");
    app.stop().await;
    assert_eq!(app.status(), ProcessStatus::Stopped);
}

#[tokio::test]
async fn argv_rejects_an_empty_list() {
    let err = AppCommand::argv(Vec::new()).expect_err("empty");
    assert!(err.to_string().contains("empty"), "{err}");
}

#[tokio::test]
async fn wait_for_port_sees_a_listener() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    assert!(wait_for_port(addr, DEADLINE).await);
}

#[tokio::test]
async fn wait_for_port_gives_up_on_a_closed_port() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let start = Instant::now();
    assert!(!wait_for_port(addr, Duration::from_millis(300)).await);
    assert!(start.elapsed() < DEADLINE);
}

#[tokio::test]
async fn wait_for_port_sees_a_late_listener() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        tokio::net::TcpListener::bind(addr).await
    });
    assert!(wait_for_port(addr, DEADLINE).await);
    drop(late.await.expect("task").expect("rebind the port"));
}
