//! The wheel against the real Azure CLI: install it from a file and by name through an index
//! served over local HTTP (both through `AZURE_EXTENSION_INDEX_URL` and through a cloud's
//! azmirror endpoint, which is how `easyauth up` offers it), then check the commands and their
//! arguments in az's help. The ARM calls themselves are tested with the platform's local ARM.
//!
//! Skips (passing, with a message) when az is not installed: `$EASYAUTH_AZ`, else
//! `~/.cache/easyauth/azure-cli-2.91.0/bin/az`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::Value;

fn az_binary() -> Option<PathBuf> {
    let path = match std::env::var_os("EASYAUTH_AZ") {
        Some(path) => PathBuf::from(path),
        None => {
            PathBuf::from(std::env::var_os("HOME")?).join(".cache/easyauth/azure-cli-2.91.0/bin/az")
        }
    };
    path.is_file().then_some(path)
}

macro_rules! require_az {
    () => {
        match az_binary() {
            Some(az) => az,
            None => {
                eprintln!(
                    "SKIPPED: the Azure CLI is not installed (set EASYAUTH_AZ or install it at \
                     ~/.cache/easyauth/azure-cli-2.91.0/bin/az)"
                );
                return;
            }
        }
    };
}

/// az with a configuration directory of its own (hence its own extensions folder).
struct Az {
    binary: PathBuf,
    config: tempfile::TempDir,
    index_url: Option<String>,
}

impl Az {
    fn new(binary: &Path) -> Self {
        Self {
            binary: binary.to_owned(),
            config: tempfile::tempdir().expect("a temporary directory"),
            index_url: None,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env("AZURE_CONFIG_DIR", self.config.path())
            .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
            .env("AZURE_CORE_NO_COLOR", "true")
            .env("AZURE_CORE_SURVEY_MESSAGE", "false")
            // The caller's settings must not pick another extensions folder or index.
            .env_remove("AZURE_EXTENSION_DIR")
            .env_remove("AZURE_EXTENSION_SYS_DIR")
            .env_remove("AZURE_EXTENSION_DEV_SOURCES")
            .env_remove("AZURE_EXTENSION_INDEX_URL")
            .env_remove("AZURE_CLOUD_NAME");
        if let Some(url) = &self.index_url {
            command.env("AZURE_EXTENSION_INDEX_URL", url);
        }
        command.output().expect("az runs")
    }

    /// Runs az and returns its standard output, failing the test on a non-zero exit.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "az {} failed ({}):\n{stdout}\n{stderr}",
            args.join(" "),
            output.status,
        );
        // az only warns (and goes on without its commands) when an extension fails to load.
        assert!(
            !stderr.contains("Unable to load extension"),
            "az {}:\n{stderr}",
            args.join(" ")
        );
        stdout
    }

    fn installed_version(&self) -> Option<String> {
        let list: Value =
            serde_json::from_str(&self.ok(&["extension", "list", "-o", "json"])).expect("JSON");
        list.as_array()?
            .iter()
            .find(|e| e["name"] == easyauth_azext::EXTENSION_NAME)
            .map(|e| e["version"].as_str().unwrap_or_default().to_owned())
    }
}

/// A minimal HTTP server for `/azmirror/extensions/{index.json,<wheel>}`; records the paths asked.
struct Mirror {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Mirror {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!(
            "http://{}/azmirror",
            listener.local_addr().expect("an address")
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (base, seen) = (format!("{url}/extensions"), Arc::clone(&requests));
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream, &base, &seen);
            }
        });
        Self { url, requests }
    }

    fn requested(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(mut stream: TcpStream, base: &str, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(&mut stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers; az's requests are GETs without a body.
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        line.clear();
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    if let Ok(mut seen) = seen.lock() {
        seen.push(path.clone());
    }
    let wheel = easyauth_azext::wheel();
    let (status, content_type, body) = if path == "/azmirror/extensions/index.json" {
        (
            "200 OK",
            "application/json",
            easyauth_azext::index(base).to_string().into_bytes(),
        )
    } else if path == format!("/azmirror/extensions/{}", wheel.filename) {
        ("200 OK", "application/octet-stream", wheel.bytes)
    } else {
        ("404 Not Found", "text/plain", b"not found".to_vec())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(&body));
}

/// The options each command's help must list (az prints every option name of an argument).
const HELP: &[(&str, &[&str])] = &[
    (
        "show",
        &[
            "--name",
            "--resource-group",
            "--slot",
            "--ids",
            "--subscription",
        ],
    ),
    ("set", &["--body", "--name", "--resource-group", "--slot"]),
    (
        "update",
        &[
            "--enabled",
            "--action",
            "--unauthenticated-client-action",
            "AllowAnonymous, RedirectToLoginPage, Return401, Return403, Return404",
            "--redirect-provider",
            "--require-https",
            "--proxy-convention",
            "Custom, NoProxy, Standard",
            "--proxy-custom-host-header",
            "--custom-host-header",
            "--proxy-custom-proto-header",
            "--custom-proto-header",
            "--excluded-paths",
            "--enable-token-store",
            "--runtime-version",
            "--config-file-path",
            "--set",
            "--slot",
        ],
    ),
    ("microsoft show", &["--name", "--resource-group", "--slot"]),
    (
        "microsoft update",
        &[
            "--client-id",
            "--client-secret ",
            "--client-secret-setting-name",
            "--secret-setting",
            "--client-secret-certificate-thumbprint",
            "--thumbprint",
            "--client-secret-certificate-san",
            "--client-secret-certificate-issuer",
            "--issuer",
            "--tenant-id",
            "--allowed-token-audiences",
            "--allowed-audiences",
            "--yes",
            "--slot",
        ],
    ),
];

#[test]
fn az_installs_the_wheel_and_shows_its_commands() {
    let binary = require_az!();
    let az = Az::new(&binary);
    let folder = tempfile::tempdir().expect("a temporary directory");
    let wheel = easyauth_azext::wheel();
    let path = folder.path().join(&wheel.filename);
    std::fs::write(&path, &wheel.bytes).expect("write the wheel");

    az.ok(&[
        "extension",
        "add",
        "--source",
        path.to_str().expect("a UTF-8 path"),
        "--yes",
    ]);
    assert_eq!(
        az.installed_version().as_deref(),
        Some(easyauth_azext::VERSION)
    );

    for (command, options) in HELP {
        let mut args = vec!["webapp", "auth"];
        args.extend(command.split(' '));
        args.push("--help");
        // az wraps its help at the terminal's width; compare with whitespace runs collapsed.
        let help = az
            .ok(&args)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for option in *options {
            assert!(
                help.contains(option),
                "az webapp auth {command} --help lacks {option:?}:\n{help}"
            );
        }
    }
    // The group lists our commands (and az notes the core ones we replace).
    let group = az.ok(&["webapp", "auth", "--help"]);
    for command in ["show", "set", "update", "microsoft"] {
        assert!(group.contains(command), "{group}");
    }
}

#[test]
fn az_installs_by_name_from_an_index_url() {
    let binary = require_az!();
    let mirror = Mirror::start();
    let mut az = Az::new(&binary);
    az.index_url = Some(format!("{}/extensions/index.json", mirror.url));

    let available: Value =
        serde_json::from_str(&az.ok(&["extension", "list-available", "-o", "json"])).expect("JSON");
    assert_eq!(available[0]["name"], "authV2", "{available}");
    assert_eq!(available[0]["version"], easyauth_azext::VERSION);

    az.ok(&["extension", "add", "--name", "authV2", "--yes"]);
    assert_eq!(
        az.installed_version().as_deref(),
        Some(easyauth_azext::VERSION)
    );
    let wheel_path = format!("/azmirror/extensions/{}", easyauth_azext::wheel().filename);
    assert!(
        mirror.requested().contains(&wheel_path),
        "{:?}",
        mirror.requested()
    );
}

#[test]
fn az_installs_by_name_through_the_clouds_azmirror_endpoint() {
    let binary = require_az!();
    let mirror = Mirror::start();
    let az = Az::new(&binary);
    // What `easyauth up`'s cloud metadata gives az, minus the parts this test does not need.
    let cloud = serde_json::json!({
        "profile": "latest",
        "endpoints": {
            "resourceManager": "https://127.0.0.1:1/",
            "activeDirectory": "https://127.0.0.1:2",
            "activeDirectoryResourceId": "https://management.core.windows.net/",
            "azmirrorStorageAccountResourceId": mirror.url,
        }
    });
    let config = tempfile::tempdir().expect("a temporary directory");
    let config_file = config.path().join("cloud.json");
    std::fs::write(&config_file, cloud.to_string()).expect("write the cloud");
    az.ok(&[
        "cloud",
        "register",
        "--name",
        "EasyAuthTest",
        "--cloud-config",
        &format!("@{}", config_file.display()),
        "--skip-endpoint-discovery",
    ]);
    az.ok(&["cloud", "set", "--name", "EasyAuthTest"]);

    az.ok(&["extension", "add", "--name", "authV2", "--yes"]);
    assert_eq!(
        az.installed_version().as_deref(),
        Some(easyauth_azext::VERSION)
    );
    let requested = mirror.requested();
    assert!(
        requested.contains(&"/azmirror/extensions/index.json".to_owned()),
        "{requested:?}"
    );
    let wheel_path = format!("/azmirror/extensions/{}", easyauth_azext::wheel().filename);
    assert!(requested.contains(&wheel_path), "{requested:?}");
}
