//! `cargo xtask fuzz`: coverage-guided fuzzing of every parser of attacker input with cargo-fuzz
//! (libFuzzer). The targets are `fuzz/fuzz_targets/*.rs`; their property checks live in
//! `crates/fuzzing`, whose replay test runs the checked-in corpora under `cargo xtask test`.
//!
//! cargo-fuzz is installed into `target/tools` (once), and runs on the stable toolchain with
//! `RUSTC_BOOTSTRAP=1` because it passes nightly-only compiler flags. What a run finds goes to a
//! scratch corpus under `target/fuzz-corpus/`, so `fuzz/corpus/` only changes by hand; a crash
//! leaves its input in `fuzz/artifacts/<target>/` and fails the command.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::util::{Steps, repo_root, run};

/// Pinned so every machine fuzzes with the same driver; bump deliberately.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
const DEFAULT_SECONDS: u64 = 60;
/// An input slower than this is a bug (the parsers are meant to be linear): libFuzzer reports it
/// as a timeout crash.
const TIMEOUT_SECONDS: u64 = 10;

#[derive(Debug)]
struct Options {
    seconds: u64,
    target: Option<String>,
    sanitizer: String,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut opts = Options {
        seconds: DEFAULT_SECONDS,
        target: None,
        sanitizer: "none".to_owned(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--seconds" => {
                let v = value("--seconds")?;
                opts.seconds = v
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .with_context(|| format!("--seconds {v:?} is not a positive number"))?;
            }
            "--target" => opts.target = Some(value("--target")?),
            "--sanitizer" => opts.sanitizer = value("--sanitizer")?,
            other => bail!(
                "unknown option `{other}` (expected --seconds N, --target NAME, --sanitizer none|address)"
            ),
        }
    }
    Ok(opts)
}

/// One target's run, for the summary.
#[derive(Debug)]
struct Outcome {
    target: String,
    seconds: f64,
    runs: Option<u64>,
    slow_units: usize,
    new_inputs: usize,
    crash: Option<String>,
}

pub(crate) fn main(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    let root = repo_root();
    let fuzz_dir = root.join("fuzz");
    let available = targets(&fuzz_dir)?;
    let selected: Vec<String> = match &opts.target {
        Some(t) if available.contains(t) => vec![t.clone()],
        Some(t) => bail!("no fuzz target `{t}` (have: {})", available.join(", ")),
        None => available,
    };
    let mut steps = Steps::default();

    let cargo_fuzz = steps.step("cargo-fuzz (target/tools)", || ensure_cargo_fuzz(&root))?;
    steps.step("build fuzz targets", || {
        let mut cmd = fuzz_command(&cargo_fuzz, &root, "build", &opts);
        if let [one] = selected.as_slice() {
            cmd.arg(one);
        }
        run(&mut cmd)
    })?;

    let mut outcomes = Vec::new();
    for target in &selected {
        // A crash is a finding, not a reason to skip the other targets: it is reported below.
        let outcome = steps.step(&format!("fuzz {target} ({} s)", opts.seconds), || {
            fuzz_one(&cargo_fuzz, &root, target, &opts)
        })?;
        outcomes.push(outcome);
    }

    println!("\n==> fuzzing summary");
    println!(
        "    {:<14} {:>8} {:>12} {:>9} {:>6} {:>6}  result",
        "target", "seconds", "executions", "exec/s", "new", "slow"
    );
    for o in &outcomes {
        let runs = o.runs.map_or("?".to_owned(), |r| r.to_string());
        let rate = o.runs.map_or("?".to_owned(), |r| {
            format!("{:.0}", r as f64 / o.seconds.max(1.0))
        });
        let result = o.crash.as_deref().unwrap_or("ok");
        println!(
            "    {:<14} {:>8.0} {:>12} {:>9} {:>6} {:>6}  {result}",
            o.target, o.seconds, runs, rate, o.new_inputs, o.slow_units
        );
    }
    let crashed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.crash.is_some())
        .map(|o| o.target.as_str())
        .collect();
    steps.summary(if crashed.is_empty() {
        "PASSED"
    } else {
        "FAILED"
    });
    if !crashed.is_empty() {
        bail!(
            "{} failed a property or crashed; the inputs are in fuzz/artifacts/<target>/ \
             (replay one with `cargo fuzz run <target> <file>`, and once fixed copy it to \
             fuzz/regressions/<target>/)",
            crashed.join(", ")
        );
    }
    println!(
        "    new inputs are in target/fuzz-corpus/<target>/; copy the few worth keeping to \
         fuzz/corpus/<target>/ (or minimise first with `cargo fuzz cmin`)"
    );
    Ok(())
}

/// The targets, by their file names in `fuzz/fuzz_targets/`.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("no fuzz targets in {}", dir.display());
    }
    Ok(names)
}

/// `target/tools/bin/cargo-fuzz` at the pinned version, installed on first use.
fn ensure_cargo_fuzz(root: &Path) -> Result<PathBuf> {
    let tools = root.join("target/tools");
    let bin = tools.join("bin/cargo-fuzz");
    let installed = Command::new(&bin)
        .args(["fuzz", "--version"])
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if let Some(version) = &installed
        && version.contains(CARGO_FUZZ_VERSION)
    {
        println!("    {}", version.trim());
        return Ok(bin);
    }
    run(crate::util::cargo()
        .args(["install", "cargo-fuzz", "--locked", "--version"])
        .arg(CARGO_FUZZ_VERSION)
        .arg("--root")
        .arg(&tools))?;
    Ok(bin)
}

/// `cargo fuzz <verb>` with the flags every build and run shares (so a run reuses the build).
fn fuzz_command(cargo_fuzz: &Path, root: &Path, verb: &str, opts: &Options) -> Command {
    let mut cmd = Command::new(cargo_fuzz);
    cmd.current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", verb, "--sanitizer", &opts.sanitizer])
        // Faster builds on small machines; the instrumentation is the same.
        .args(["--codegen-units", "16"])
        .arg("--target-dir")
        .arg(root.join("target/fuzz"));
    cmd
}

/// Runs one target for `opts.seconds`, teeing libFuzzer's output to `target/fuzz-logs/` and
/// showing only its summary lines (the per-input progress lines number in the thousands).
fn fuzz_one(cargo_fuzz: &Path, root: &Path, target: &str, opts: &Options) -> Result<Outcome> {
    let scratch = root.join("target/fuzz-corpus").join(target);
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let before = count_files(&scratch);
    let logs = root.join("target/fuzz-logs");
    std::fs::create_dir_all(&logs).context("creating target/fuzz-logs")?;
    let log_path = logs.join(format!("{target}.log"));
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;

    let mut cmd = fuzz_command(cargo_fuzz, root, "run", opts);
    // libFuzzer writes new inputs to the first corpus folder only: the scratch one.
    cmd.arg(target).arg(&scratch);
    for kind in ["corpus", "regressions"] {
        let dir = root.join("fuzz").join(kind).join(target);
        if dir.is_dir() {
            cmd.arg(dir);
        }
    }
    cmd.arg("--").args([
        format!("-max_total_time={}", opts.seconds),
        format!("-timeout={TIMEOUT_SECONDS}"),
        "-report_slow_units=1".to_owned(),
        "-print_final_stats=1".to_owned(),
    ]);
    println!("    log: {}", log_path.display());

    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("could not start cargo fuzz run")?;
    // libFuzzer reports on stderr; stdout (the target's own prints) is merged into the log too.
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let forward = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let mut runs = None;
    let mut fuzzed: Option<f64> = None;
    let mut slow_units = 0;
    let mut artifact = None;
    let mut tail: VecDeque<String> = VecDeque::new();
    let stderr = child.stderr.take().context("no stderr pipe")?;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let _ = writeln!(log, "{line}");
        if let Some(n) = line
            .strip_prefix("stat::number_of_executed_units:")
            .and_then(|n| n.trim().parse().ok())
        {
            runs = Some(n);
        } else if let Some(rest) = line.strip_prefix("Done ") {
            // `Done 123 runs in 60 second(s)`: the fuzzing time, without the build before it.
            let words: Vec<&str> = rest.split_whitespace().collect();
            runs = runs.or_else(|| words.first()?.parse().ok());
            fuzzed = words.get(3).and_then(|s| s.parse().ok());
        }
        if line.contains("Slowest unit:") {
            slow_units += 1;
        }
        if let Some(path) = line.split("Test unit written to ").nth(1) {
            artifact = Some(path.trim().to_owned());
        }
        if shown(&line) {
            println!("    | {line}");
        }
        tail.push_back(line);
        if tail.len() > 80 {
            tail.pop_front();
        }
    }
    let status = child.wait().context("waiting for cargo fuzz run")?;
    for line in forward.join().unwrap_or_default() {
        let _ = writeln!(log, "{line}");
    }
    let seconds = fuzzed.unwrap_or_else(|| started.elapsed().as_secs_f64());
    let crash = if status.success() {
        None
    } else {
        println!("    --- last lines of {} ---", log_path.display());
        for line in &tail {
            println!("    | {line}");
        }
        Some(match artifact {
            Some(path) => format!("CRASH: {path}"),
            None => format!("FAILED ({status})"),
        })
    };
    Ok(Outcome {
        target: target.to_owned(),
        seconds,
        runs,
        slow_units,
        new_inputs: count_files(&scratch).saturating_sub(before),
        crash,
    })
}

/// libFuzzer's start-up, final and failure lines; not the per-input progress.
fn shown(line: &str) -> bool {
    const KEEP: &[&str] = &[
        "INFO: Seed:",
        "INFO: seed corpus:",
        "INITED",
        "Done ",
        "stat::",
        "Slowest unit:",
        "ERROR:",
        "SUMMARY:",
        "panicked at",
        "Test unit written to",
        "==",
        "error:",
    ];
    KEEP.iter().any(|k| line.contains(k))
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}
