//! `easyauth az ...` runs the person's own Azure CLI against the local cloud (as `awslocal`
//! wraps `aws`), and `easyauth env` prints the variables that make a plain `az` do the same.

use std::path::PathBuf;

use anyhow::Context;
use easyauth_platform::azcli;

#[derive(Debug, clap::Args)]
pub(crate) struct AzArgs {
    /// The data dir of the running `easyauth up`.
    #[arg(long, env = "EASYAUTH_DATA_DIR", default_value = ".easyauth")]
    data_dir: PathBuf,
    /// The az command line, e.g. `webapp up --name myapp --runtime NODE:20-lts`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "AZ ARGUMENTS"
    )]
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct EnvArgs {
    /// The data dir of the running `easyauth up`.
    #[arg(long, env = "EASYAUTH_DATA_DIR", default_value = ".easyauth")]
    data_dir: PathBuf,
}

fn data_dir(path: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Prepares az (blocking: it runs az itself) and runs it with the arguments; its exit status
/// becomes ours.
pub(crate) async fn run(args: AzArgs) -> anyhow::Result<std::process::ExitCode> {
    let dir = data_dir(&args.data_dir);
    let env = tokio::task::spawn_blocking(move || azcli::prepare(&dir))
        .await
        .context("preparing az")??;
    let status = tokio::process::Command::new(&env.az)
        .args(&args.args)
        .envs(&env.vars)
        .status()
        .await
        .with_context(|| format!("cannot run {}", env.az.display()))?;
    Ok(std::process::ExitCode::from(
        u8::try_from(status.code().unwrap_or(1)).unwrap_or(1),
    ))
}

/// Prepares az and prints `export` lines: `eval "$(easyauth env)"`.
pub(crate) async fn env(args: EnvArgs) -> anyhow::Result<()> {
    let dir = data_dir(&args.data_dir);
    let env = tokio::task::spawn_blocking(move || azcli::prepare(&dir))
        .await
        .context("preparing az")??;
    print!("{}", azcli::shell_exports(&env.vars));
    println!(
        "# az ({}) now talks to the local cloud in this shell; `az cloud set --name AzureCloud` with another AZURE_CONFIG_DIR goes back",
        env.az.display()
    );
    Ok(())
}
