//! `cargo xtask test`, `cargo xtask bench` and `cargo xtask fuzz`.
//!
//! Both commands must work on a fresh machine and in CI (`CI=true`, no stdin, running as root):
//! they install what is missing (Debian packages through apt, a Python virtual environment, npm
//! packages), print a `==> step` header for every step and stop at the first failure with a
//! non-zero exit status.

mod bench;
mod bench_callgrind;
mod bench_deploy;
mod bench_proxy;
mod fuzz;
mod template;
mod test;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test [--skip-lint] [--only-e2e] [--no-e2e] [-- <pytest args>]
        tools + Python venv + npm packages, cargo fmt/clippy, cargo nextest, e2e suite (pytest)
  bench [--only idp|proxy|deploy] [--duration SECS] [--connections N] [--skip-peer]
        [--proxy-connections N] [--idle-connections N] [--rounds N] [--callgrind-requests N]
        [--quick]
        idp:   client_credentials tokens/s on one core: openssl speed, easyauth idp, node oidc-provider
        proxy: easyauth proxy (session cookie, bearer token) vs nginx (no auth) vs Apache +
               mod_auth_openidc: req/s, p99 at peak and at half load, memory with 1,000 connections,
               instructions per request under callgrind (nginx, cookie, bearer)
        --quick: 2 s runs, one round, 200 counted requests (checks that every step runs)
        writes docs/benchmarks.md (both parts by default; a part not re-run keeps its section)
  fuzz [--seconds N] [--target NAME] [--sanitizer none|address]
        coverage-guided fuzzing (cargo-fuzz, installed into target/tools) of every parser of
        attacker input, N seconds per target (default 60); new inputs go to target/fuzz-corpus,
        crashes to fuzz/artifacts/<target>/ and fail the command (docs/fuzzing.md)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match cmd.as_str() {
        "test" => test::main(rest),
        "bench" => bench::main(rest),
        "fuzz" => fuzz::main(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("xtask: unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nxtask {cmd}: FAILED: {err:#}");
            ExitCode::FAILURE
        }
    }
}
