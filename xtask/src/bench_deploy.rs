//! `cargo xtask bench --only deploy`: the tutorial's Azure CLI commands against a bare
//! `easyauth up` (release build), each timed end to end with az's own start-up measured apart,
//! and Kudu's zip deploy of the Express front end timed from the upload to `RuntimeSuccessful`
//! with a warm npm cache. The driver is `bench/deploy/bench_deploy.py` (it reuses the e2e
//! suite's az helpers); this module installs what it needs and renders its JSON.
//!
//! There is no peer to run side by side: the thing imitated is App Service itself.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::util::Steps;

const DEPLOYS: usize = 5;

/// What the driver measured.
#[derive(Debug)]
pub(crate) struct Report {
    az_startup: Vec<f64>,
    commands: Vec<(String, f64)>,
    zip_bytes: u64,
    deploys: Vec<f64>,
    az: String,
    node: String,
}

pub(crate) fn run(root: &Path, work: &Path, steps: &mut Steps) -> Result<Report> {
    let venv = root.join("target/e2e/venv");
    steps.step("python venv (target/e2e/venv)", || {
        crate::test::python_venv(&root.join("tests/e2e"), &venv)
    })?;
    steps.step("azure-cli (cached)", crate::test::ensure_azure_cli)?;
    let dir = work.join("deploy");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).context("cleaning target/bench/deploy")?;
    }
    std::fs::create_dir_all(&dir).context("creating target/bench/deploy")?;
    let out = steps.step(
        "tutorial commands and zip deploys (bench_deploy.py)",
        || {
            let output = Command::new(venv.join("bin/python"))
                .current_dir(root)
                .arg(root.join("bench/deploy/bench_deploy.py"))
                .args(["--binary"])
                .arg(root.join("target/release/easyauth"))
                .arg("--work")
                .arg(&dir)
                .args(["--deploys", &DEPLOYS.to_string()])
                .env("EASYAUTH_AZ", crate::test::azure_cli_binary())
                .env("EASYAUTH_ARTIFACTS", dir.join("artifacts"))
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .stderr(std::process::Stdio::inherit())
                .output()
                .context("running bench_deploy.py")?;
            if !output.status.success() {
                anyhow::bail!(
                    "bench_deploy.py failed ({}); logs in {}",
                    output.status,
                    dir.join("artifacts").display()
                );
            }
            let text = String::from_utf8_lossy(&output.stdout);
            let last = text.lines().last().unwrap_or("");
            serde_json::from_str::<Value>(last)
                .with_context(|| format!("bench_deploy.py printed no JSON: {text}"))
        },
    )?;
    let floats = |v: &Value| -> Vec<f64> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    let version = |program: &Path, args: &[&str]| -> String {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    Ok(Report {
        az_startup: floats(&out["az_startup_s"]),
        commands: out["commands"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c["label"].as_str().unwrap_or("").to_owned(),
                            c["s"].as_f64().unwrap_or(0.0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        zip_bytes: out["zip_bytes"].as_u64().unwrap_or(0),
        deploys: floats(&out["deploys_s"]),
        az: version(
            &crate::test::azure_cli_binary(),
            &["version", "--query", "\"azure-cli\"", "-o", "tsv"],
        ),
        node: version(Path::new("node"), &["--version"]),
    })
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// The deploy section of docs/benchmarks.md: bench/templates/deploy.md, filled.
pub(crate) fn render(root: &Path, r: &Report) -> Result<String> {
    let startup = median(&r.az_startup);
    let deploy = median(&r.deploys);
    let verdict = if deploy <= 3.0 {
        "meets"
    } else {
        "does NOT meet"
    };
    let rows: Vec<String> = r
        .commands
        .iter()
        .map(|(label, s)| format!("| `{label}` | {s:.2} s | {:.2} s |", (s - startup).max(0.0)))
        .collect();
    let times: Vec<String> = r.az_startup.iter().map(|s| format!("{s:.2} s")).collect();
    crate::template::report(
        root,
        "deploy",
        &[
            ("DEPLOY_S", format!("{deploy:.2}")),
            ("DEPLOYS", r.deploys.len().to_string()),
            (
                "DEPLOY_MIN_S",
                format!(
                    "{:.2}",
                    r.deploys.iter().copied().fold(f64::INFINITY, f64::min)
                ),
            ),
            (
                "DEPLOY_MAX_S",
                format!("{:.2}", r.deploys.iter().copied().fold(0.0, f64::max)),
            ),
            ("ZIP_KIB", (r.zip_bytes / 1024).to_string()),
            ("VERDICT", verdict.to_owned()),
            ("STARTUP_S", format!("{startup:.2}")),
            ("COMMAND_ROWS", rows.join("\n")),
            ("STARTUP_RUNS", r.az_startup.len().to_string()),
            ("STARTUP_TIMES", times.join(", ")),
            ("AZ", r.az.clone()),
            ("NODE", r.node.clone()),
            (
                "NPROC",
                std::thread::available_parallelism()
                    .map_or(0, std::num::NonZero::get)
                    .to_string(),
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_template_and_its_values_agree() -> Result<()> {
        let r = Report {
            az_startup: vec![0.5],
            commands: vec![("az webapp up".into(), 10.0)],
            zip_bytes: 4096,
            deploys: vec![2.0, 2.5],
            az: "2.0".into(),
            node: "v20".into(),
        };
        let md = render(&crate::util::repo_root(), &r)?;
        assert!(md.contains("| `az webapp up` | 10.00 s | 9.50 s |"), "{md}");
        assert!(md.contains("median **2.25 s**"), "{md}");
        Ok(())
    }

    #[test]
    fn median_of_odd_and_even() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-9);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-9);
        assert!(median(&[]).abs() < 1e-9);
    }
}
